"""Team API keys: long random tokens, stored only as SHA-256 hashes, compared in constant time.

A key reads ``tl_<key id>_<secret>``. The key id (12 hex characters) finds the team's row;
the hash of the whole key is then compared with :func:`hmac.compare_digest`. Keys carry 256
bits of randomness, so a fast hash is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "tl_"


def new_key() -> tuple[str, str, str]:
    """A fresh key: ``(key, key_id, key_hash)``."""
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return key, key_id, hash_key(key)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_of(key: str) -> str | None:
    """The key id of a well-formed key, else None."""
    if not key.startswith(PREFIX):
        return None
    key_id, sep, secret = key[len(PREFIX) :].partition("_")
    if not sep or len(key_id) != 12 or not secret:
        return None
    return key_id


def matches(key: str, key_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), key_hash)
