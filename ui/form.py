"""The cluster form's widgets: every field with its problems beside it, and the quota bars.

The form's values live in Streamlit's session state under one namespace per form (a new
cluster, or the modification of one hostname), so they survive a visit to another page.
Each run reads the widgets, checks the whole form (ui.form_check) and draws the fields
with what is wrong with each; nothing is written until the page submits a checked spec.
"""

import secrets
import string
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import streamlit as st
from pydantic import BaseModel, SecretStr

from mchub.cloud.quota import Allocation
from mchub.cloud.resources import CloudResources
from mchub.settings import get_settings
from mchub.spec.model import MAX_COUNT, MAX_USERS, TAGS
from ui.flavor_choice import flavors_for
from ui.form_check import FormCheck, check_form
from ui.form_values import (
    GENERAL,
    INSTANCES,
    QUOTA,
    VOLUMES,
    FormValues,
    InstanceRow,
    VolumeRow,
    row_target,
    volume_target,
)
from ui.quota_bars import quota_bars
from ui.text import literal

PASSWORD_LENGTH = 16
_PASSWORD_ALPHABET = string.ascii_letters + string.digits
LOCKED_HELP = "An existing cluster keeps this: it cannot change after creation."


class FormMode(BaseModel):
    """Which form: a new cluster's, or an existing cluster's modification."""

    key: str
    """Namespace of the form's session state and widget keys: letters, digits and dashes."""
    initial: FormValues
    existing: bool = False
    """Modifying a cluster: its name, domain, image and guest password are locked."""
    kept_password: SecretStr | None = None
    """Modifying: the cluster's guest password, kept while its field is empty. It stays on the
    server: the field is never filled with it, so it never reaches the browser."""
    held: Allocation | None = None
    """What the existing cluster holds: counted as available to it."""
    clusters_dir: Path | None = None
    """For a new cluster: where a folder of the same name would clash."""


def cluster_form(mode: FormMode, resources: CloudResources) -> FormCheck:
    """Draw the form and return its check (the spec to submit when nothing is wrong)."""
    form = _Form(mode)
    values = form.read()
    check = check_form(values, resources, held=mode.held, clusters_dir=mode.clusters_dir)
    fields, bars = st.columns([5, 2], gap="large")
    with bars:
        st.subheader("Quotas")
        st.caption("Grey: used by others · blue: this cluster · empty: free")
        quota_bars(check.quota)
        _problems(check, QUOTA)
    with fields:
        form.draw(values, check, resources)
    form.keep(values)
    return check


class _Form:
    def __init__(self, mode: FormMode) -> None:
        self.mode = mode
        self.state = st.session_state
        snapshot = self.state.get(self._key("values"))
        self.snapshot: FormValues = snapshot if isinstance(snapshot, FormValues) else mode.initial
        self._hold(self.snapshot)

    # --- state -------------------------------------------------------------------

    def _key(self, *parts: object) -> str:
        return "-".join([self.mode.key, *map(str, parts)])

    def _widget_values(self, values: FormValues) -> dict[str, Any]:
        lifetime = timedelta(days=get_settings().cluster_lifetime_days)
        found: dict[str, Any] = {
            self._key("cluster_name"): values.cluster_name,
            self._key("domain"): values.domain,
            self._key("image"): values.image,
            self._key("nb_users"): values.nb_users,
            self._key("public_keys"): values.public_keys,
            # A kept password never fills the field (a widget's value goes to the browser).
            self._key("guest_passwd"): "" if self.mode.kept_password is not None else values.guest_passwd.get_secret_value(),
            self._key("hieradata"): values.hieradata,
            self._key("expires"): values.expiration_date is not None,
            self._key("expiration_date"): values.expiration_date or date.today() + lifetime,
        }
        for row in values.rows:
            found.update({
                self._key("row", row.uid, "prefix"): row.prefix,
                self._key("row", row.uid, "type"): row.type,
                self._key("row", row.uid, "count"): row.count,
                self._key("row", row.uid, "tags"): list(row.tags),
            })
        for volume in values.volumes:
            found.update({
                self._key("vol", volume.uid, "tag"): volume.tag,
                self._key("vol", volume.uid, "name"): volume.name,
                self._key("vol", volume.uid, "size"): volume.size,
            })
        return found

    def _hold(self, values: FormValues) -> None:
        # Streamlit forgets a widget's value once a run does not draw it: another page was
        # shown, or a rerun (a click, a page's refresh) interrupted the run before reaching
        # it, and the widget came back empty. Every value is written back before the widgets
        # are drawn, so that none is lost; a forgotten one comes from `values`.
        for key, value in self._widget_values(values).items():
            self.state[key] = self.state[key] if key in self.state else value

    def read(self) -> FormValues:
        s, k = self.state, self._key
        return FormValues(
            cluster_name=s[k("cluster_name")].strip(),
            domain=s[k("domain")],
            image=s[k("image")],
            nb_users=int(s[k("nb_users")] or 0),
            rows=[
                InstanceRow(
                    uid=row.uid,
                    prefix=s[k("row", row.uid, "prefix")].strip(),
                    type=s[k("row", row.uid, "type")],
                    count=int(s[k("row", row.uid, "count")] or 0),
                    tags=list(s[k("row", row.uid, "tags")]),
                )
                for row in self.snapshot.rows
            ],
            volumes=[
                VolumeRow(
                    uid=volume.uid,
                    tag=s[k("vol", volume.uid, "tag")],
                    name=s[k("vol", volume.uid, "name")].strip(),
                    size=int(s[k("vol", volume.uid, "size")] or 0),
                    existing=volume.existing,
                )
                for volume in self.snapshot.volumes
            ],
            public_keys=s[k("public_keys")],
            guest_passwd=SecretStr(s[k("guest_passwd")]) if s[k("guest_passwd")] or self.mode.kept_password is None
            else self.mode.kept_password,
            hieradata=s[k("hieradata")],
            expiration_date=s[k("expiration_date")] if s[k("expires")] else None,
            cloud=self.snapshot.cloud,
        )

    def keep(self, values: FormValues) -> None:
        self.state[self._key("values")] = values

    def _changed(self, change: Callable[[FormValues], FormValues]) -> Callable[[], None]:
        """A button callback: change the rows of the latest values, before the next run reads them."""

        def callback() -> None:
            values = change(self.read())
            self._hold(values)
            self.keep(values)

        return callback

    # --- drawing -------------------------------------------------------------------

    def draw(self, values: FormValues, check: FormCheck, resources: CloudResources) -> None:
        k, locked = self._key, self.mode.existing
        _problems(check, GENERAL)
        st.subheader("Cluster")
        left, right = st.columns(2)
        with left:
            st.text_input("Cluster name", key=k("cluster_name"), disabled=locked,
                          help=LOCKED_HELP if locked else "With the domain, the cluster's hostname.")
            _problems(check, "cluster_name")
            images = _with(values.image, [image.name for image in resources.images])
            st.selectbox("Image", images, key=k("image"), disabled=locked,
                         help=LOCKED_HELP if locked else "The OS every machine boots from.")
            _problems(check, "image")
        with right:
            domains = _with(values.domain, list(dict.fromkeys([get_settings().domain, *get_settings().dns])))
            st.selectbox("Domain", domains, key=k("domain"), disabled=locked,
                         help=LOCKED_HELP if locked else "Domains this MC Hub manages.")
            _problems(check, "domain")
            st.number_input("Guest accounts", min_value=0, max_value=MAX_USERS, step=1, key=k("nb_users"),
                            help="user01, user02, … sharing the guest password.")
            _problems(check, "nb_users")

        st.subheader("Instances")
        _problems(check, INSTANCES)
        self._instance_rows(values, check, resources)
        st.subheader("Volumes")
        st.caption("Attached to the instance carrying their tag (nfs: shared by NFS as /home, /project, /scratch).")
        _problems(check, VOLUMES)
        self._volume_rows(values, check)

        st.subheader("Access")
        st.text_area("SSH public keys, one per line", key=k("public_keys"), height=100,
                     placeholder="ssh-ed25519 AAAA… you@laptop",
                     help="They log in as the sudoer account; paste e.g. ~/.ssh/id_ed25519.pub.")
        _problems(check, "public_keys")
        password, generate = st.columns([4, 1], vertical_alignment="bottom")
        with password:
            st.text_input("Guest password", type="password", key=k("guest_passwd"), disabled=locked,
                          placeholder="unchanged (not shown here)" if locked else "",
                          help=LOCKED_HELP if locked else "Empty: one is generated. Otherwise at least 8 characters.")
        with generate:
            st.button("Generate", key=k("generate"), disabled=locked, on_click=self._generate_password,
                      icon=":material/key:")
        _problems(check, "guest_passwd")

        st.subheader("Options")
        st.text_area("Hieradata (YAML)", key=k("hieradata"), height=100,
                     help="Extra Puppet settings, e.g. `jupyterhub::enable_otp_auth: false`.")
        _problems(check, "hieradata")
        expires, day = st.columns([2, 3], vertical_alignment="bottom")
        with expires:
            st.checkbox("Destroy automatically", key=k("expires"))
        with day:
            st.date_input("Expiration date", key=k("expiration_date"), min_value=date.today() + timedelta(days=1),
                          disabled=not values.expiration_date)
        _problems(check, "expiration_date")
        _problems(check, "cloud")

    def _instance_rows(self, values: FormValues, check: FormCheck, resources: CloudResources) -> None:
        k = self._key
        widths = [2, 4, 1.4, 4, 0.6]
        for column, title in zip(st.columns(widths), ["Prefix", "Flavor", "Count", "Tags", ""]):
            column.caption(title)
        labels = {flavor.name: flavor.label for flavor in resources.flavors}
        for row in values.rows:
            prefix, flavor, count, tags, remove = st.columns(widths, vertical_alignment="top")
            with prefix:
                st.text_input("Prefix", key=k("row", row.uid, "prefix"), label_visibility="collapsed")
                _problems(check, row_target(row.uid, "prefix"))
            with flavor:
                names = _with(row.type, [f.name for f in flavors_for(resources.flavors, row.tags)])
                st.selectbox("Flavor", names, key=k("row", row.uid, "type"), label_visibility="collapsed",
                             format_func=lambda name: labels.get(name, name))
                _problems(check, row_target(row.uid, "type"))
            with count:
                st.number_input("Count", min_value=0, max_value=MAX_COUNT, step=1,
                                key=k("row", row.uid, "count"), label_visibility="collapsed")
                _problems(check, row_target(row.uid, "count"))
            with tags:
                st.multiselect("Tags", _with_all(row.tags, list(TAGS)), key=k("row", row.uid, "tags"),
                               label_visibility="collapsed", help=_tags_help())
                _problems(check, row_target(row.uid, "tags"))
            with remove:
                st.button("", key=k("row", row.uid, "remove"), icon=":material/delete:", help="Remove this row",
                          on_click=self._changed(lambda v, uid=row.uid: _without_row(v, uid)))
            _problems(check, row_target(row.uid))
        smallest = flavors_for(resources.flavors, ["node"])
        st.button("Add instances", key=k("add-row"), icon=":material/add:", disabled=not smallest,
                  on_click=self._changed(lambda v: _with_new_row(v, smallest[0].name if smallest else "")))

    def _volume_rows(self, values: FormValues, check: FormCheck) -> None:
        k = self._key
        widths = [2, 3, 2, 0.6]
        if values.volumes:
            for column, title in zip(st.columns(widths), ["Tag", "Name", "Size (GB)", ""]):
                column.caption(title)
        for volume in values.volumes:
            locked = volume.existing
            tag, name, size, remove = st.columns(widths, vertical_alignment="top")
            with tag:
                st.selectbox("Tag", _with(volume.tag, list(TAGS)), key=k("vol", volume.uid, "tag"),
                             label_visibility="collapsed", disabled=locked)
                _problems(check, volume_target(volume.uid, "tag"))
            with name:
                st.text_input("Name", key=k("vol", volume.uid, "name"), label_visibility="collapsed",
                              disabled=locked, help=LOCKED_HELP if locked else None)
                _problems(check, volume_target(volume.uid, "name"))
            with size:
                st.number_input("Size (GB)", min_value=1, step=10, key=k("vol", volume.uid, "size"),
                                label_visibility="collapsed", disabled=locked)
                _problems(check, volume_target(volume.uid, "size"))
            with remove:
                st.button("", key=k("vol", volume.uid, "remove"), icon=":material/delete:", disabled=locked,
                          help=LOCKED_HELP if locked else "Remove this volume",
                          on_click=self._changed(lambda v, uid=volume.uid: _without_volume(v, uid)))
            _problems(check, volume_target(volume.uid))
        st.button("Add a volume", key=k("add-volume"), icon=":material/add:", on_click=self._changed(_with_new_volume))

    def _generate_password(self) -> None:
        self.state[self._key("guest_passwd")] = "".join(
            secrets.choice(_PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH)
        )


def _problems(check: FormCheck, target: str) -> None:
    """The problems of one place of the form, in red right under it."""
    for message in check.problems.get(target, []):
        st.markdown(f":red[:material/error: {literal(message)}]")


def _with(current: str, choices: list[str]) -> list[str]:
    """`choices`, keeping the current value selectable (e.g. an existing cluster's old image)."""
    return choices if current in choices or not current else [current, *choices]


def _with_all(current: list[str], choices: list[str]) -> list[str]:
    return choices + [value for value in current if value not in choices]


def _tags_help() -> str:
    return "  \n".join(f"**{tag}**: {meaning}" for tag, meaning in TAGS.items())


def _with_new_row(values: FormValues, flavor: str) -> FormValues:
    prefix = _unused("compute", {row.prefix for row in values.rows})
    row = InstanceRow(uid=values.next_uid(), prefix=prefix, type=flavor, count=1, tags=["node"])
    return values.model_copy(update={"rows": [*values.rows, row]})


def _without_row(values: FormValues, uid: int) -> FormValues:
    return values.model_copy(update={"rows": [row for row in values.rows if row.uid != uid]})


def _with_new_volume(values: FormValues) -> FormValues:
    name = _unused("data", {volume.name for volume in values.volumes})
    volume = VolumeRow(uid=values.next_uid(), tag="nfs", name=name, size=50)
    return values.model_copy(update={"volumes": [*values.volumes, volume]})


def _without_volume(values: FormValues, uid: int) -> FormValues:
    return values.model_copy(update={"volumes": [v for v in values.volumes if v.uid != uid]})


def _unused(base: str, used: set[str]) -> str:
    """`base`, or `base2`, `base3`, … whichever is not used yet."""
    return next(name for n in range(1, len(used) + 2) if (name := base if n == 1 else f"{base}{n}") not in used)


def forget_form(key: str) -> None:
    """Drop a form's values, e.g. once submitted, so that it opens fresh next time."""
    for name in [name for name in st.session_state if str(name).startswith(f"{key}-")]:
        del st.session_state[name]
