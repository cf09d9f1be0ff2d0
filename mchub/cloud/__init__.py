"""An OpenStack project: the connection, what it offers (flavors, images, quotas), and
quota arithmetic."""
