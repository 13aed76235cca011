"""Password hashes: argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile)."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verifying against this when the login is unknown costs the same as a real check, so the
# answer's timing does not tell which logins exist.
_DUMMY = _hasher.hash("not-a-password-anyone-has")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False
