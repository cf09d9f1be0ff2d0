"""People, projects and roles (mchub.access): who a provider's claims make a person, who may act
on which cluster, and the hub-signed person the flows trust; the cluster's recorded owner, and
a build refused before its request is used."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mchub.access.people import Person, Role, person_from_claims
from mchub.access.rights import AccessDenied, Ownership, check_act, check_create, is_admin_of, may_act
from mchub.access.signed import KEY_FILE, Mandate, answer_act, hub_key, sign, signed, verified
from mchub.cluster import lifecycle
from mchub.cluster.workspace import create, ownership_of
from mchub.settings import Settings, get_settings
from mchub.spec.model import default_spec_data, parse_spec

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILvnN/o+Ku37TEhyolHdgfl4IfQfJwrnlXUB7/f1IHjH instructor@laptop"

HOST = "atom.sandbox.mchub.dev"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings with a home of their own and the sandbox's projects and groups."""
    monkeypatch.setenv("MCHUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MCHUB_CLUSTERS_DIR", str(tmp_path / "clusters"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def claims(sub: str, *groups: str) -> dict[str, object]:
    return {"sub": sub, "name": sub.title(), "email": f"{sub}@example.org", "groups": list(groups), "iat": 0}


def someone(sub: str, *groups: str) -> Person:
    return person_from_claims(claims(sub, *groups), get_settings())


ALICE_OWNS = Ownership(owner=someone("alice", "physics").ref, project="physics")


def test_groups_become_projects_and_roles_through_the_settings_mapping() -> None:
    assert someone("alice", "physics").projects == {"physics": Role.MEMBER}
    # The highest role wins, whatever the order of the groups; unknown groups give nothing.
    assert someone("pat", "physics-admins", "physics", "unknown").projects == {"physics": Role.ADMIN}
    ada = someone("ada", "mchub-admins")
    assert ada.hub_admin and ada.projects == {}
    assert ada.describe() == "hub admin" and someone("x").describe() == "no project"
    one_group = person_from_claims({"sub": "s", "groups": "chemistry"}, get_settings())
    assert one_group.projects == {"chemistry": Role.MEMBER} and one_group.name == "s"


def test_a_mapping_from_the_environment_is_read_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCHUB_OIDC_GROUPS", '{"hpc-staff": {"role": "hub_admin"}, "g1": {"project": "p1"}}')
    monkeypatch.setenv("MCHUB_OIDC_GROUPS_CLAIM", "roles")
    settings = Settings()
    person = person_from_claims({"sub": "s", "roles": ["hpc-staff", "g1"]}, settings)
    assert person.hub_admin and person.projects == {"p1": Role.MEMBER}
    with pytest.raises(ValueError, match="not both"):
        Settings(oidc_groups={"g": {"role": "hub_admin", "project": "p"}})


@pytest.mark.parametrize(
    ("who", "allowed", "admin"),
    [
        (someone("alice", "physics"), True, False),  # the owner
        (someone("bob", "physics"), False, False),  # another member of the project
        (someone("alice", "chemistry"), False, False),  # the owner, no longer in the project
        (someone("pat", "physics-admins"), True, True),  # the project's admin
        (someone("cat", "chemistry-admins"), False, False),  # another project's admin
        (someone("ada", "mchub-admins"), True, True),  # a hub admin
    ],
)
def test_who_may_act_on_a_cluster(who: Person, allowed: bool, admin: bool) -> None:
    assert may_act(who, ALICE_OWNS) is allowed
    assert is_admin_of(who, ALICE_OWNS) is admin
    if not allowed:
        with pytest.raises(AccessDenied, match=rf"{who.name} may not destroy {HOST}: it belongs to Alice"):
            check_act(who, ALICE_OWNS, HOST, "destroy")


def test_a_cluster_without_an_owner_is_the_hub_admins() -> None:
    assert may_act(someone("ada", "mchub-admins"), None)
    assert not may_act(someone("pat", "physics-admins"), None)


def test_creating_needs_the_project_and_one_of_its_clouds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCHUB_PROJECTS", '{"physics": ["arbutus"], "chemistry": ["sandbox"]}')
    get_settings.cache_clear()
    alice = someone("alice", "physics")
    check_create(alice, "physics", "arbutus")
    with pytest.raises(AccessDenied, match="may not create clusters in project 'chemistry'"):
        check_create(alice, "chemistry", "sandbox")
    with pytest.raises(AccessDenied, match="project physics may build only on arbutus, not on 'sandbox'"):
        check_create(alice, "physics", "sandbox")
    check_create(someone("ada", "mchub-admins"), "chemistry", "sandbox")


def test_a_signed_person_holds_only_for_its_cluster_and_act(home: Path) -> None:
    alice = someone("alice", "physics")
    token = signed(alice, HOST, "build")
    assert verified(token, HOST, "build") == alice
    key = home / "home" / KEY_FILE
    assert key.stat().st_mode & 0o777 == 0o600 and hub_key() == key.read_bytes()
    for other_host, act in ((HOST, "destroy"), ("other.sandbox.mchub.dev", "build")):
        with pytest.raises(AccessDenied, match="was signed to build"):
            verified(token, other_host, act)
    with pytest.raises(AccessDenied, match="no person signed by the hub"):
        verified("", HOST, "build")
    forged = sign(Mandate(person=alice.model_copy(update={"hub_admin": True}), hostname=HOST, act="build"), os.urandom(32))
    body, _, mac = token.rpartition(".")
    for bad in (forged, f"{forged.rpartition('.')[0]}.{mac}", f"{body}.{'0' * len(mac)}"):
        with pytest.raises(AccessDenied, match="not signed by this hub"):
            verified(bad, HOST, "build")
    answer = signed(alice, HOST, answer_act("approve-1"))
    with pytest.raises(AccessDenied):
        verified(answer, HOST, answer_act("approve-1-1"))  # another plan's answer


def test_a_new_cluster_records_its_owner_and_a_refused_build_removes_its_request(home: Path) -> None:
    clusters = home / "clusters"
    spec = parse_spec({**default_spec_data(name="atom"), "public_keys": [PUBLIC_KEY], "guest_passwd": "a-guest-pass-1"})
    alice, bob = someone("alice", "physics"), someone("bob", "physics")
    request = lifecycle.new_cluster_request(spec, clusters_dir=clusters)
    with pytest.raises(AccessDenied, match="may not create clusters in project 'chemistry'"):
        lifecycle.check_build(request, new=True, hostname=spec.hostname, person=alice, project="chemistry")
    assert not request.exists()  # it held the guest password

    ws = create(clusters, spec)
    ws.propose(spec)
    assert ws.ownership() is None
    ws.record_ownership(Ownership(owner=alice.ref, project="physics"))
    assert ws.ownership() == ALICE_OWNS and ws.owner_file.stat().st_mode & 0o777 == 0o600
    assert ownership_of(clusters, spec.hostname) == ALICE_OWNS
    assert ownership_of(clusters, "other.sandbox.mchub.dev") is None  # no folder, no archive: the hub admins'
    change = lifecycle.new_cluster_request(spec, new=False, clusters_dir=clusters)
    assert lifecycle.check_build(change, new=False, hostname=spec.hostname, person=alice, project="") is None
    with pytest.raises(AccessDenied, match=f"Bob may not change {spec.hostname}"):
        lifecycle.check_build(change, new=False, hostname=spec.hostname, person=bob, project="")
    assert not change.exists()
