"""Text from elsewhere (error messages, names) shown literally inside Streamlit's markdown."""

import re

# What markdown or Streamlit's directives (:red[...], :material/icon:, $math$) would
# interpret; brackets guard links and images, -, + and # lists and headings at a line's start.
_SPECIAL = re.compile(r"([\\`*_\[\]#+\-<>|~$:])")


def literal(text: str) -> str:
    return _SPECIAL.sub(r"\\\1", text)
