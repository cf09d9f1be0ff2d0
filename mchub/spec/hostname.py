"""A cluster's hostname, `<cluster_name>.<domain>`: its grammar, and the one check of every
hostname that comes from outside (a page's URL, a command's argument, a flow's parameter).

A hostname is also the name of the cluster's folder, so text that is not one (`../x`, an
absolute path, a name too long for the file system) must be refused before it is joined to a
path. The grammar is the spec's: a cluster_name and a domain as mchub.spec.model accepts them,
at most 253 characters in all (DNS's limit).
"""

import re

from mchub.errors import MCHubError
from mchub.spec.sshkey import shorten

CLUSTER_NAME = re.compile(r"[a-z][0-9a-z-]{1,40}")
DOMAIN = re.compile(r"[a-z][0-9a-z-.]*")
MAX_DNS_LABEL = 63
MAX_HOSTNAME = 253
EXAMPLE = "hpc1.sandbox.mchub.dev"


class HostnameError(MCHubError, ValueError):
    """Text that is not a cluster's hostname; the message names `hostname` and says what one is."""


def cluster_name_problem(name: str) -> str | None:
    """Why `name` is not a cluster_name, None when it is one."""
    if CLUSTER_NAME.fullmatch(name):
        return None
    return (
        f"{shorten(name)} must start with a lowercase letter and contain only lowercase "
        "letters, digits and '-' (2 to 41 characters)"
    )


def domain_problem(domain: str) -> str | None:
    """Why `domain` is not a cluster's domain, None when it is one."""
    if not DOMAIN.fullmatch(domain):
        return (
            f"{shorten(domain)} must start with a lowercase letter and contain only lowercase "
            "letters, digits, '-' and '.'"
        )
    labels = domain.split(".")
    if "" in labels:
        return f"{shorten(domain)} has an empty part between dots; write it like sandbox.mchub.dev"
    if any(len(label) > MAX_DNS_LABEL for label in labels):
        return f"{shorten(domain)} has a part between dots longer than {MAX_DNS_LABEL} characters"
    return None


def hostname_problem(text: str) -> str | None:
    """Why `text` is not a cluster's hostname, None when it is one."""
    if not text:
        return "it is empty"
    if len(text) > MAX_HOSTNAME:
        return f"it has {len(text)} characters, at most {MAX_HOSTNAME} are allowed"
    name, dot, domain = text.partition(".")
    if not dot:
        return "it has no '.' between a cluster_name and a domain"
    name_problem = cluster_name_problem(name)
    if name_problem:
        return f"its cluster_name {name_problem}"
    problem = domain_problem(domain)
    return f"its domain {problem}" if problem else None


def checked_hostname(text: str) -> str:
    """`text` when it is a cluster's hostname; HostnameError saying why not otherwise."""
    # Not only str: a flow parameter or a query parameter may arrive as anything.
    problem = hostname_problem(text) if isinstance(text, str) else "it is not text"
    if problem:
        raise HostnameError(
            f"hostname: {shorten(text)} is not a cluster's hostname: {problem}. "
            f"A hostname is <cluster_name>.<domain>, like {EXAMPLE}"
        )
    return text
