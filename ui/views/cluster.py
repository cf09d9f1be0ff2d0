"""/cluster?hostname=...: one cluster, from its plan to its connection details."""

from ui.chosen_cluster import chosen_hostname
from ui.cluster_page import cluster_page
from ui.page_errors import shown_errors
from ui.signed_in import person

with shown_errors("The cluster's page"):
    hostname = chosen_hostname()
    if hostname:
        cluster_page(hostname, person())
