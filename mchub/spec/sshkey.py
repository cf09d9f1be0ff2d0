"""SSH public keys as people paste them: one OpenSSH line, checked down to its key data.

A key that is refused says why and how to get a good one; a private key pasted by mistake
is recognised and never repeated back.
"""

import base64
import binascii

from mchub.spec.plain_text import hidden_character

MIN_RSA_BITS = 2048
# A 16384-bit RSA key's line is under 3000 characters; the rest of the limit is its comment.
MAX_KEY_LINE = 8192

KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
# Length of an uncompressed elliptic-curve point (0x04 || x || y) on each curve.
_EC_POINT_BYTES = {"nistp256": 65, "nistp384": 97, "nistp521": 133}
_ED25519_BYTES = 32


def shorten(value: object, limit: int = 60) -> str:
    """`value` quoted for a message, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 4]}...{text[-1]}"


class _Damaged(Exception):
    """The key blob is shorter than its fields say, or has bytes left over."""


class _Blob:
    """Reads the length-prefixed fields of an SSH public key blob (RFC 4253, section 6.6)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def string(self) -> bytes:
        start = self._at + 4
        if start > len(self._data):
            raise _Damaged
        end = start + int.from_bytes(self._data[self._at : start], "big")
        if end > len(self._data):
            raise _Damaged
        self._at = end
        return self._data[start:end]

    def mpint(self) -> int:
        return int.from_bytes(self.string(), "big", signed=True)

    @property
    def exhausted(self) -> bool:
        return self._at == len(self._data)


def _check_key_blob(kind: str, blob: _Blob) -> None:
    inner = blob.string().decode("ascii", "replace")
    if inner != kind:
        raise ValueError(
            f"the line says {kind} but its key data holds a {shorten(inner)} key; "
            "paste the line of the .pub file unchanged"
        )
    if kind == "ssh-rsa":
        blob.mpint()  # the public exponent
        bits = blob.mpint().bit_length()
        if bits < MIN_RSA_BITS:
            raise ValueError(
                f"this RSA key has {bits} bits, at least {MIN_RSA_BITS} are needed; "
                "make a new key with `ssh-keygen -t ed25519`"
            )
    elif "ed25519" in kind:
        if len(blob.string()) != _ED25519_BYTES:
            raise _Damaged
    else:
        curve = kind.removeprefix("sk-").removeprefix("ecdsa-sha2-").removesuffix("@openssh.com")
        if blob.string() != curve.encode() or len(blob.string()) != _EC_POINT_BYTES[curve]:
            raise _Damaged
    if kind.startswith("sk-"):
        blob.string()  # the security key's application, usually "ssh:"
    if not blob.exhausted:
        raise _Damaged


def check_public_key(text: str) -> str:
    """`text` as one OpenSSH public key line, stripped; a ValueError saying the fix otherwise."""
    line = text.strip()
    if "PRIVATE KEY" in line or line.startswith("PuTTY-User-Key-File"):
        # Never echoed: the message says what it is without repeating any of it.
        raise ValueError("this is a PRIVATE key; paste the .pub file instead (e.g. ~/.ssh/id_ed25519.pub)")
    if not line:
        raise ValueError("empty; paste the contents of your .pub file (e.g. ~/.ssh/id_ed25519.pub)")
    if "BEGIN SSH2 PUBLIC KEY" in line:
        raise ValueError(
            "this key is in the SSH2 (RFC 4716) format; convert it with `ssh-keygen -i -f key.pub` "
            "and paste the line it prints"
        )
    if "\n" in line:
        raise ValueError("holds several lines; give one key per entry")
    if len(line) > MAX_KEY_LINE:
        raise ValueError(
            f"has {len(line)} characters, at most {MAX_KEY_LINE} are allowed; "
            "paste only the one line of the .pub file"
        )
    hidden = hidden_character(line)
    if hidden:
        # The comment ends up in authorized_keys and in Terraform's values: a line break or
        # invisible character there changes what the line means.
        raise ValueError(
            f"holds an invisible or line-breaking character ({hidden}); paste the line of the .pub "
            "file unchanged, or write its comment with visible characters only"
        )
    kind, *rest = line.split(maxsplit=2)
    if kind == "ssh-dss":
        raise ValueError("DSA keys are refused by current OpenSSH; make a new key with `ssh-keygen -t ed25519`")
    if kind not in KEY_TYPES:
        raise ValueError(
            f"does not start with a known key type ({shorten(kind)}); an OpenSSH public key line looks "
            f"like 'ssh-ed25519 AAAA... you@host', with one of: {', '.join(KEY_TYPES)}"
        )
    if not rest:
        raise ValueError(f"the {kind} key has no key data after its type; paste the whole line of the .pub file")
    try:
        blob = base64.b64decode(rest[0], validate=True)
    except binascii.Error:
        raise ValueError("the key data is not valid base64; paste the line of the .pub file unchanged") from None
    try:
        _check_key_blob(kind, _Blob(blob))
    except _Damaged:
        raise ValueError(
            f"the {kind} key data is cut short or damaged; paste the whole line of the .pub file unchanged"
        ) from None
    return line
