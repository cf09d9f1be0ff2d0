"""What a page shows when drawing it fails: a refusal (a bad hostname, a cluster that cannot
be read, a cloud or Prefect that does not answer) in its own words; anything else as a short
message with a reference, while its traceback goes to the web pages' log (Streamlit's
stderr: `web-pages.log` in MCHUB_HOME/logs under `mchub up`). A traceback never reaches the
browser.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import uuid4

import streamlit as st

from mchub.errors import MCHubError
from ui.text import literal

_log = logging.getLogger("mchub.ui")
if not _log.handlers:  # Streamlit re-runs a changed module; the logger outlives it
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    _log.addHandler(_handler)
    _log.propagate = False  # Prefect gives the root logger a console handler of its own


@contextmanager
def shown_errors(part: str) -> Iterator[None]:
    """Draw `part` of a page ("The cluster's page"), showing whatever stops it as above.
    Also a decorator, for fragments and dialogs, which Streamlit re-runs on their own."""
    try:
        yield
    except MCHubError as error:  # says what is wrong and what to do, and nothing secret
        st.error(literal(str(error)), icon=":material/error:")
    except Exception:
        reference = uuid4().hex[:8]
        _log.exception("%s failed (reference %s)", part, reference)
        st.error(
            f"**{literal(part)} could not be shown: something went wrong in MC Hub.** "
            f"Reload the page to try again; if it goes on, give the hub's operators the reference "
            f"{reference}: the details are in the web pages' log.",
            icon=":material/error:",
        )
