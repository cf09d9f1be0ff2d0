"""A loading animation with a line saying what is being waited for."""

from html import escape

import streamlit as st

_STYLE = (
    "<style>@keyframes mchub-spin { to { transform: rotate(360deg); } }"
    ".mchub-loading { display: flex; align-items: center; gap: 0.6rem; padding: 0.8rem 0; }"
    ".mchub-loading .spinner { width: 1.2rem; height: 1.2rem; border: 3px solid #c9d6ea;"
    " border-top-color: #1c6ed6; border-radius: 50%; animation: mchub-spin 0.8s linear infinite; }</style>"
)


def loading(text: str) -> None:
    # The element is the same on every refresh of the page, so the animation runs on smoothly.
    st.markdown(
        f'{_STYLE}<div class="mchub-loading" role="status"><span class="spinner"></span>'
        f"<span>{escape(text)}</span></div>",
        unsafe_allow_html=True,
    )
