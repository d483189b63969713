"""Encrypted credentials in the state database (docs/ARCHITECTURE.md, promise 6).

Each value is encrypted with AES-256-GCM under a key that never enters the database: from
VTP_SECRET_KEY (urlsafe base64 of 32 bytes) or a key file only its owner can read. The secret's
name is the associated data, so a ciphertext copied to another name fails to decrypt. Each row
carries a fingerprint of its key, so a wrong key is told apart from a tampered row. Values appear
in no repr, log line or error message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select

from visma_tableau_pipeline.state.db import StateDB
from visma_tableau_pipeline.state.errors import (
    SecretKeyError,
    SecretKeyFileError,
    SecretKeyMissingError,
    SecretNameError,
    SecretTamperedError,
)
from visma_tableau_pipeline.state.schema import secrets, utc_now
from visma_tableau_pipeline.state.upsert import insert_on_conflict

log = logging.getLogger(__name__)

KEY_ENV_VAR = "VTP_SECRET_KEY"
KEY_FILE_NAME = "secret.key"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_MAX_NAME = 300
# The names settings read (settings.StoredSecrets): a secret under any other name is never used.
KNOWN_NAMES = ("visma/<company_id>/client_id", "visma/<company_id>/client_secret",
               "tableau/pat_secret", "tableau/connected_app_secret_value")
_KNOWN_NAME = re.compile(r"visma/[^/\s]+/(client_id|client_secret)|tableau/(pat_secret|connected_app_secret_value)")
_WRONG_KEY = (
    "the secret key does not match the one the stored secrets were encrypted with. Set "
    f"{KEY_ENV_VAR} (or restore the key file) to the original key; if that key is lost, remove "
    "the secrets with `vtp secrets remove` and store them again with `vtp secrets set`."
)


@dataclass(frozen=True)
class SecretInfo:
    """A stored secret's name and when it was last set; never its value."""

    name: str
    updated_at: datetime


def default_key_file(home: Path) -> Path:
    """Where the key file lives by default: $VTP_HOME/secret.key."""
    return home / KEY_FILE_NAME


def generate_key_file(path: Path) -> Path:
    """Create a new random key file readable only by its owner (mode 0600).

    Refuses to overwrite: secrets stored under the old key would become unreadable.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    key_text = base64.urlsafe_b64encode(os.urandom(_KEY_BYTES)).decode("ascii")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SecretKeyFileError(
            f"key file {path} already exists; it is not replaced, because secrets stored with "
            "it could no longer be read",
            path=str(path),
        ) from None
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(key_text + "\n")
    log.info("created secret key file %s", path)
    return path


def load_key(key_file: Path, environ: Mapping[str, str] | None = None) -> bytes:
    """The secret key: VTP_SECRET_KEY if set, else the key file; a clear error otherwise."""
    environ = os.environ if environ is None else environ
    if environ.get(KEY_ENV_VAR):
        return _decode_key(environ[KEY_ENV_VAR], KEY_ENV_VAR)
    try:
        mode = key_file.stat().st_mode
    except FileNotFoundError:
        raise SecretKeyMissingError(
            f"no secret key: set {KEY_ENV_VAR} to urlsafe base64 of 32 random bytes, or create "
            f"the key file {key_file} with `vtp secrets init`",
            key_file=str(key_file),
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretKeyFileError(
            f"key file {key_file} can be read or changed by group or others (mode "
            f"{stat.S_IMODE(mode):o}); run `chmod 600 {key_file}`",
            key_file=str(key_file),
        )
    return _decode_key(key_file.read_text(encoding="ascii", errors="replace"), str(key_file))


def _decode_key(text: str, origin: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode("ascii", errors="replace"))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != _KEY_BYTES:
        raise SecretKeyError(
            f"{origin} does not hold a key: expected urlsafe base64 of 32 bytes (make one with "
            "`vtp secrets init`)",
            origin=origin,
        )
    return key


class SecretStore:
    """Named credentials, encrypted at rest in the state database."""

    def __init__(self, db: StateDB, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise SecretKeyError("the secret key must be 32 bytes (AES-256)")
        self._db = db
        self._cipher = AESGCM(key)
        self._key_id = hmac.new(key, b"vtp secret key id", hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"SecretStore({self._db!r}, key=<hidden>)"

    def set(self, name: str, value: str) -> None:
        """Store or replace a secret."""
        check_secret_name(name)
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = self._cipher.encrypt(nonce, value.encode("utf-8"), _associated_data(name))
        with self._db.transaction() as conn:
            other_key = conn.execute(
                select(secrets.c.name).where(secrets.c.key_id != self._key_id).limit(1)
            ).scalar_one_or_none()
            if other_key is not None:
                raise SecretKeyError(_WRONG_KEY, name=name)
            conn.execute(
                insert_on_conflict(
                    conn, secrets, key=("name",),
                    update=("key_id", "nonce", "ciphertext", "updated_at"),
                ),
                {
                    "name": name, "key_id": self._key_id, "nonce": nonce,
                    "ciphertext": ciphertext, "updated_at": utc_now(),
                },
            )
        log.info("stored secret %s", name)

    def get(self, name: str) -> str | None:
        """The secret's value, or None when no secret has this name."""
        with self._db.connect() as conn:
            row = conn.execute(
                select(secrets.c.key_id, secrets.c.nonce, secrets.c.ciphertext).where(
                    secrets.c.name == name
                )
            ).one_or_none()
        if row is None:
            return None
        if row.key_id != self._key_id:
            raise SecretKeyError(_WRONG_KEY, name=name)
        try:
            plaintext = self._cipher.decrypt(
                bytes(row.nonce), bytes(row.ciphertext), _associated_data(name)
            )
        except InvalidTag:
            raise SecretTamperedError(
                f"secret {name!r} does not decrypt under its own name: its row was altered or "
                "copied from another secret; store it again with `vtp secrets set`",
                name=name,
            ) from None
        return plaintext.decode("utf-8")

    def list(self) -> list[SecretInfo]:
        """Names and update times of all stored secrets, by name.

        Refused under a key the secrets were not stored with: a list that looks fine would hide
        that none of them can be read (the settings would then ask for credentials already stored).
        """
        with self._db.connect() as conn:
            rows = conn.execute(
                select(secrets.c.name, secrets.c.updated_at, secrets.c.key_id).order_by(secrets.c.name)
            ).all()
        if any(key_id != self._key_id for _, _, key_id in rows):
            raise SecretKeyError(_WRONG_KEY)
        return [SecretInfo(name, updated_at) for name, updated_at, _ in rows]

    def remove(self, name: str) -> bool:
        """Delete a secret; False when there was none."""
        with self._db.transaction() as conn:
            removed = conn.execute(delete(secrets).where(secrets.c.name == name)).rowcount == 1
        if removed:
            log.info("removed secret %s", name)
        return removed


def _associated_data(name: str) -> bytes:
    return b"vtp-secret:" + name.encode("utf-8")


def check_secret_name(name: str) -> None:
    """Refuse a name the settings never read: a typo would store a secret nothing uses."""
    if len(name) > _MAX_NAME or not _KNOWN_NAME.fullmatch(name):
        raise SecretNameError(
            f"unknown secret name {name[:60]!r}; the names vtp reads are {', '.join(KNOWN_NAMES)}",
            name=name[:60],
        )
