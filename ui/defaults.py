"""What the create-cluster form starts from: the original MC Hub's defaults, fitted to the cloud."""

from datetime import date, timedelta

from mchub.cloud.resources import CloudResources
from mchub.settings import get_settings
from mchub.spec.model import default_spec_data
from ui.flavor_choice import flavors_for
from ui.form_values import FormValues


def new_cluster_values(resources: CloudResources) -> FormValues:
    """A pet-named cluster (mgmt, login and node rows; home, project and scratch volumes)
    expiring after cluster_lifetime_days; where the cloud lacks the default image or a
    row's flavor, its first image and the row's smallest fitting flavor instead."""
    values = FormValues.from_spec_data(default_spec_data())
    images = [image.name for image in resources.images]
    rows = []
    for row in values.rows:
        fitting = [flavor.name for flavor in flavors_for(resources.flavors, row.tags)]
        if fitting and row.type not in fitting:
            row = row.model_copy(update={"type": fitting[0]})
        rows.append(row)
    return values.model_copy(
        update={
            "cloud": resources.cloud,
            "image": values.image if values.image in images or not images else images[0],
            "rows": rows,
            "expiration_date": date.today() + timedelta(days=get_settings().cluster_lifetime_days),
        }
    )
