"""Who is using the pages: the person signed in with Streamlit's own OpenID Connect sign-in
(`st.login`, configured by mchub.orchestration.identity), their groups mapped to projects and
roles (mchub.access.people). A session lasts settings.session_seconds from the sign-in; after
that the person is signed out and asked to sign in again."""

import time

import streamlit as st

from mchub.access.people import Person, person_from_claims
from mchub.settings import get_settings


def signed_in_person() -> Person | None:
    """The signed-in person; None after drawing the sign-in screen instead (not signed in, or
    their session has expired)."""
    if not st.user.is_logged_in:
        _sign_in_screen("Sign in to see and build your clusters.")
        return None
    if session_over():
        _sign_in_screen("Your session has expired: sign in again.")
        return None
    return person_from_claims(st.user.to_dict(), get_settings())


def session_over() -> bool:
    """Whether the person is signed out or their session has lasted settings.session_seconds.
    The parts of a page that re-run by themselves (fragments) ask it before acting: they do not
    go through the app's sign-in."""
    if not st.user.is_logged_in:
        return True
    signed_in_at = st.user.to_dict().get("iat")
    return not isinstance(signed_in_at, int | float) or time.time() - signed_in_at > get_settings().session_seconds


def person() -> Person:
    """The signed-in person, for a page that the app only draws for one (ui/app.py)."""
    found = st.session_state.get("person")
    if not isinstance(found, Person):
        raise RuntimeError("a page was drawn with no one signed in")
    return found


def who_bar(signed: Person) -> None:
    """Who is signed in, what they are, and the way out."""
    _, who, out = st.columns([6, 3, 1], vertical_alignment="center")
    who.markdown(f":material/person: **{signed.name}** · {signed.describe()}", width="content")
    if out.button("Sign out", icon=":material/logout:", key="sign-out"):
        st.session_state.clear()
        st.logout()


def _sign_in_screen(why: str) -> None:
    st.title("MC Hub")
    st.write(why)
    if st.button("Sign in", type="primary", icon=":material/login:", key="sign-in"):
        st.login()
