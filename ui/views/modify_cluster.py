"""/modify-cluster?hostname=...: the form prefilled from an existing cluster's spec."""

from ui.chosen_cluster import chosen_hostname
from ui.modify import modify_page
from ui.page_errors import shown_errors
from ui.signed_in import person

with shown_errors("The modification form"):
    hostname = chosen_hostname()
    if hostname:
        modify_page(hostname, person())
