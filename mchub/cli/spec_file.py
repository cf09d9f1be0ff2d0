"""A cluster spec file as the CLI reads it: parsed, checked against the cloud, or refused."""

from pathlib import Path
from typing import TYPE_CHECKING

from mchub.errors import MCHubError
from mchub.spec.model import ClusterSpec, SpecError, load_spec, parse_spec

if TYPE_CHECKING:
    from mchub.cloud.quota import Allocation


class SpecProblemsError(MCHubError):
    """A spec file that cannot be used as it is."""


def checked_spec(path: Path, held: "Allocation | None" = None) -> ClusterSpec:
    """The spec in `path`, checked against its cloud's flavors, images and quotas (`held`: what
    the cluster it modifies holds already, counted as its own); SpecProblemsError otherwise."""
    # Imported here: openstacksdk takes a noticeable part of a second to import, and most
    # commands never reach a cloud.
    from mchub.cloud.quota import check_quota
    from mchub.cloud.resources import reader

    try:
        spec = load_spec(path)
        found = reader(spec.cloud).read(fresh_quotas=True)
        spec = parse_spec(
            spec.to_data(include_secrets=True),
            flavors=[f.name for f in found.flavors],
            images=[i.name for i in found.images],
        )
    except SpecError as error:
        raise SpecProblemsError(f"{path} cannot be used:\n{error}") from error
    shortfalls = check_quota(spec, found, held)
    if shortfalls:
        lines = "\n".join(s.message for s in shortfalls)
        raise SpecProblemsError(f"{spec.hostname} does not fit in the quotas of cloud {spec.cloud!r}:\n{lines}")
    return spec
