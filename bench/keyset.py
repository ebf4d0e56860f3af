"""The benchmark's keys: deterministic plaintexts, so nothing needs remembering.

Key `i` has the plaintext `plaintext(i)`; its token is the server's HMAC of it,
which the seeder and the load generator both compute from the hash secret they
share with the server. The key space is cut in three disjoint parts so that a
rotation in one scenario never invalidates a key another scenario reads:

- the first half is read by Verify and Info;
- the third quarter is rotated by Regenerate over gRPC;
- the last quarter is rotated by Regenerate over REST.
"""

from __future__ import annotations

import hmac

PREFIX = "sk-bench-keyservice-benchmark-"


def plaintext(i: int) -> str:
    # As long as a real key (46 characters), and its last four characters
    # differ from key to key like real ones do.
    return f"{PREFIX}{i:016d}"


def token(hash_secret: bytes, i: int) -> str:
    """The token id of key `i`: what keyserver.tokens.Hasher.token computes."""
    return hmac.digest(hash_secret, plaintext(i).encode(), "sha256").hex()


def read_range(size: int) -> range:
    return range(0, max(1, size // 2))


def grpc_rotation_range(size: int) -> range:
    return range(size // 2, size // 2 + size // 4)


def rest_rotation_range(size: int) -> range:
    return range(size // 2 + size // 4, size)
