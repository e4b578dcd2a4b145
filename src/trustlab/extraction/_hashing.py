"""Stable hashing and hash-derived random numbers, identical on every platform and version.

Python's ``hash()`` is salted per process and NumPy's generators may change their streams
between releases, so per-client secrets (a noise stream, an embedding transform) are derived
here from BLAKE2b and SHAKE-256 only.
"""

from __future__ import annotations

import hashlib

import numpy as np

from trustlab.core.typing import FloatArray

_TWO_53 = float(2**53)


def stable_key(*parts: str | bytes | int) -> bytes:
    """A 32-byte BLAKE2b digest of ``parts``; each part is length-prefixed, so no two
    different sequences of parts collide by concatenation."""
    digest = hashlib.blake2b(digest_size=32)
    for part in parts:
        if isinstance(part, int):
            data = str(part).encode("ascii")
            tag = b"i"
        elif isinstance(part, str):
            data = part.encode("utf-8")
            tag = b"s"
        else:
            data = bytes(part)
            tag = b"b"
        digest.update(tag + len(data).to_bytes(8, "little") + data)
    return digest.digest()


def stable_uniform(key: bytes, size: int) -> FloatArray:
    """``size`` floats in the open interval (0, 1), drawn from SHAKE-256 of ``key``."""
    raw = hashlib.shake_256(key).digest(8 * size)
    words = np.frombuffer(raw, dtype="<u8") >> np.uint64(11)  # 53 random bits each
    uniform: FloatArray = (words.astype(np.float64) + 0.5) / _TWO_53
    return uniform


def stable_normal(key: bytes, size: int) -> FloatArray:
    """``size`` standard-normal floats from SHAKE-256 of ``key`` (Box-Muller transform)."""
    pairs = (size + 1) // 2
    uniform = stable_uniform(key, 2 * pairs)
    radius = np.sqrt(-2.0 * np.log(uniform[:pairs]))
    angle = 2.0 * np.pi * uniform[pairs:]
    normal: FloatArray = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])[:size]
    return normal
