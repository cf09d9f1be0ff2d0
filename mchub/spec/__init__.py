"""The cluster spec and the grammar of its fields: hostnames, SSH keys, one-line text,
pet names."""
