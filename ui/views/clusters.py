"""/ (and /clusters): every cluster, its status, age and expiration."""

from ui.clusters_list import clusters_list

clusters_list()
