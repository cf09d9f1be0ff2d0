"""Everything the form checks before anything is written: the spec's own rules, the cloud's
flavors and images, each row's minimum size, a free cluster name, and the quotas."""

from pathlib import Path

from pydantic import BaseModel

from mchub.cloud.quota import Allocation, QuotaLine, quota_lines
from mchub.cloud.resources import CloudResources
from mchub.cluster.workspace import WorkspaceError, check_name_free
from mchub.spec.hostname import cluster_name_problem, domain_problem
from mchub.spec.model import ClusterSpec, SpecError, parse_spec
from ui.flavor_choice import too_small
from ui.form_values import QUOTA, FormValues, Problems, add, merge, place, row_target


class FormCheck(BaseModel):
    spec: ClusterSpec | None
    """The spec to submit; None while any problem remains."""
    problems: Problems
    quota: list[QuotaLine]

    def messages(self) -> list[str]:
        return [message for messages in self.problems.values() for message in messages]


def check_form(
    values: FormValues,
    resources: CloudResources,
    *,
    held: Allocation | None = None,
    clusters_dir: Path | None = None,
) -> FormCheck:
    """The form's spec, or every reason it cannot be submitted.

    `held`: what the cluster being modified already holds (counted as available to it).
    `clusters_dir`: for a new cluster, where a folder of the same name would clash.
    """
    data, problems = values.to_spec_data()
    problems = merge(problems, _size_problems(values, resources))
    spec: ClusterSpec | None = None
    try:
        spec = parse_spec(
            data,
            flavors=[f.name for f in resources.flavors],
            images=[i.name for i in resources.images],
        )
    except SpecError as error:
        problems = merge(problems, place(error.problems, values))
    # A name or domain the spec refuses is said beside its field already, and is no path to look at.
    if clusters_dir is not None and not (cluster_name_problem(values.cluster_name) or domain_problem(values.domain)):
        try:
            check_name_free(clusters_dir, f"{values.cluster_name}.{values.domain}")
        except WorkspaceError as error:
            add(problems, "cluster_name", str(error).removeprefix("cluster_name: "))
    lines = quota_lines(spec or values.quota_request({f.name for f in resources.flavors}), resources, held)
    for line in lines:
        if line.shortfall is not None:
            add(problems, QUOTA, line.shortfall.message)
    return FormCheck(spec=None if problems else spec, problems=problems, quota=lines)


def _size_problems(values: FormValues, resources: CloudResources) -> Problems:
    problems: Problems = {}
    for row in values.rows:
        flavor = resources.flavor(row.type)
        reason = too_small(flavor, row.tags) if flavor is not None else None
        if reason:
            add(problems, row_target(row.uid, "type"), reason)
    return problems
