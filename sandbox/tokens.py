"""Keystone tokens that carry their own claims, signed with a key kept in the data dir.

Like Keystone's Fernet tokens they need no token table: a client's token stays valid across
a restart or a reset of the sandbox, because the key does.
"""

import base64
import binascii
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ValidationError

from sandbox.private_files import read_or_create_secret
from sandbox.state import utcnow

KEY_FILE = "token.key"
LIFETIME = timedelta(hours=24)
# Ours are about 400 characters; a longer one is not worth decoding.
MAX_TOKEN_LENGTH = 4096


class TokenClaims(BaseModel):
    methods: list[str]
    user_id: str
    project_id: str
    issued_at: datetime
    expires_at: datetime
    audit_id: str
    application_credential_id: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(self, data_dir: Path) -> None:
        self._key = read_or_create_secret(data_dir / KEY_FILE, lambda: secrets.token_bytes(32))

    def issue(
        self, *, methods: list[str], user_id: str, project_id: str, application_credential_id: str | None = None
    ) -> tuple[str, TokenClaims]:
        now = utcnow().replace(microsecond=0)
        claims = TokenClaims(
            methods=methods,
            user_id=user_id,
            project_id=project_id,
            issued_at=now,
            expires_at=now + LIFETIME,
            audit_id=_b64(secrets.token_bytes(16)),
            application_credential_id=application_credential_id,
        )
        payload = _b64(claims.model_dump_json().encode())
        return f"{payload}.{self._sign(payload)}", claims

    def verify(self, token: str) -> TokenClaims | None:
        """The claims of `token` if this sandbox issued it and it has not expired, else None.

        `token` comes from a header, so it may hold any characters: only ASCII can be ours.
        """
        if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            return None
        payload, _, signature = token.partition(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            claims = TokenClaims.model_validate_json(_unb64(payload))
        except (ValidationError, binascii.Error, ValueError):
            return None
        return claims if claims.expires_at > utcnow() else None

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())
