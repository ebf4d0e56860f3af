"""Secrets, their keyed hashes, and sealing of idempotent replays.

A plaintext key exists only in memory, in the response that issues it. What is
stored is HMAC-SHA256(hash secret, plaintext): without the server's hash secret
a copy of the database cannot even test a guessed key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keyserver.errors import InvalidArgument

KEY_PREFIX = "sk-"
#: Caller-chosen keys must be at least this long to be hard to guess.
MIN_CUSTOM_KEY_LENGTH = 24
MAX_KEY_LENGTH = 256


def new_secret() -> str:
    """Draw a fresh key: `sk-` and 256 bits from the OS CSPRNG, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_name(plaintext: str) -> str:
    """Return the display form of a key: `sk-...` and its last four characters."""
    return f"{KEY_PREFIX}...{plaintext[-4:]}"


def check_custom_key(value: str, *, param: str) -> str:
    """Return a caller-chosen key if it is acceptable, else raise InvalidArgument.

    The message never repeats the value: it is meant to be a secret.
    """
    if not value.startswith(KEY_PREFIX):
        raise InvalidArgument(f"{param} must start with {KEY_PREFIX!r}", param=param)
    if not MIN_CUSTOM_KEY_LENGTH <= len(value) <= MAX_KEY_LENGTH:
        raise InvalidArgument(
            f"{param} must be {MIN_CUSTOM_KEY_LENGTH} to {MAX_KEY_LENGTH} "
            "characters long",
            param=param,
        )
    if not all("!" <= ch <= "~" for ch in value):
        raise InvalidArgument(
            f"{param} may hold only printable ASCII without spaces", param=param
        )
    return value


class Hasher:
    """Keyed hashing of secrets with the server's hash secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the hash secret must be at least 32 bytes")
        # Keyed once; each hash copies it. Under load, a one-shot hmac.digest
        # (which sets the key up again, through OpenSSL's algorithm lookup)
        # measured twice the cost of a copy in the server.
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)

    def __repr__(self) -> str:
        return "Hasher(<secret>)"

    def token(self, plaintext: str) -> str:
        """Return the token id of a plaintext key (hex HMAC-SHA256)."""
        mac = self._keyed.copy()
        mac.update(plaintext.encode())
        return mac.hexdigest()

    def matches(self, token: str, plaintext: str) -> bool:
        """Tell, in constant time, whether `plaintext` hashes to `token`."""
        return hmac.compare_digest(token, self.token(plaintext))

    def derive(self, purpose: str, *parts: str) -> bytes:
        """Derive 32 bytes for `purpose` from the secret and `parts`."""
        mac = self._keyed.copy()
        mac.update("\x00".join((purpose, *parts)).encode())
        return mac.digest()


def seal(key: bytes, payload: bytes) -> bytes:
    """Encrypt and authenticate `payload` (AES-256-GCM, random nonce first)."""
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, payload, None)


def unseal(key: bytes, sealed: bytes) -> bytes:
    """Reverse `seal`; raises cryptography's InvalidTag when tampered with."""
    return AESGCM(key).decrypt(sealed[:12], sealed[12:], None)
