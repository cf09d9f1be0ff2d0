"""Text a person types on one line: no character that is invisible or breaks the line.

Control characters (NUL, CR, LF, tab, escape …), format characters (bidirectional overrides,
zero-width joiners), lone surrogates and the Unicode line and paragraph separators (U+2028,
U+2029) change what a value means where it ends up (a YAML file, an authorized_keys line, a
log) while looking the same, or not at all, to the person who reads it.
"""

import unicodedata

_HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
# Unicode gives control characters no names; these are the ones people meet.
_CONTROL_NAMES = {"\0": "NUL", "\t": "TAB", "\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\x1b": "ESCAPE"}


def hidden_character(text: str, allowed: str = "") -> str | None:
    """The first character of `text` that is invisible or breaks the line and is not in
    `allowed`, described for a message ("U+2028 LINE SEPARATOR"); None if there is none."""
    for char in text:
        if char not in allowed and unicodedata.category(char) in _HIDDEN_CATEGORIES:
            name = _CONTROL_NAMES.get(char) or unicodedata.name(char, "CONTROL CHARACTER")
            return f"U+{ord(char):04X} {name}"
    return None


def visible_lines(text: str) -> str:
    """`text` without its hidden characters but line feeds: lines fit to quote in a mail or a
    chat message, where no control character of someone else's choosing belongs."""
    return "".join(char for char in text if char == "\n" or unicodedata.category(char) not in _HIDDEN_CATEGORIES)
