"""/ (and /clusters): every cluster, its status, age and expiration."""

from ui.clusters_list import clusters_list
from ui.page_errors import shown_errors
from ui.signed_in import person

with shown_errors("The clusters list"):
    clusters_list(person())
