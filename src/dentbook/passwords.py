"""Staff passwords: argon2id through argon2-cffi.

Parameters are RFC 9106's second recommended option (t=3, m=64 MiB, p=4): about 50 ms
per hash on these 2-core machines, costly to brute-force on GPUs, light enough that a
burst of sign-ins does not exhaust memory. Hashes made with older parameters are
re-hashed on the next successful sign-in.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4)
# Verified against when the e-mail is unknown, so both failures take the same time.
DUMMY_HASH = HASHER.hash("not a real password")


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify(stored: str, password: str) -> bool:
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return HASHER.check_needs_rehash(stored)
