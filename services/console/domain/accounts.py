"""Accounts: who may sign in, with which role and whose scope. Pure rules, no I/O."""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from shared.auth import Role

Language = Literal["zh-CN", "en"]
LANGUAGES: tuple[Language, ...] = ("zh-CN", "en")
DEFAULT_LANGUAGE: Language = "zh-CN"

# A login is a phone number or a user name: letters, digits and . _ - (and + for phones).
_LOGIN = re.compile(r"^[A-Za-z0-9._+-]{2,64}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 256

# The claim that scopes each role (admin and auditor need none).
SCOPE_OF: dict[Role, str] = {
    Role.SECRETARY: "community",
    Role.UNIT: "unit",
    Role.VOLUNTEER: "volunteer",
}


class AccountError(ValueError):
    """A request to make or change an account that breaks a rule; `field` says where."""

    def __init__(self, field: str, code: str) -> None:
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code


@dataclass(frozen=True)
class Scope:
    community: str | None = None
    unit: str | None = None
    volunteer: str | None = None


@dataclass(frozen=True)
class Account:
    id: str
    login: str
    role: Role
    scope: Scope
    name: str
    active: bool
    language: Language | None
    created_at: datetime
    calendar_token: str | None = None

    @property
    def home(self) -> str:
        """Where the person lands after signing in."""
        if self.role is Role.SECRETARY:
            return "/board"
        if self.role in (Role.VOLUNTEER, Role.UNIT):
            return "/needs"
        return "/admin"


def normalise_login(login: str) -> str:
    return login.strip().lower()


def check_login(login: str) -> str:
    login = normalise_login(login)
    if not _LOGIN.match(login):
        raise AccountError("login", "login-shape")
    return login


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError("password", "password-short")
    if len(password) > MAX_PASSWORD:
        raise AccountError("password", "password-long")
    return password


def check_scope(role: Role, scope: Scope) -> Scope:
    """Each role carries exactly the one identity that scopes it, so a token minted for the
    account passes the services' checks."""
    needed = SCOPE_OF.get(role)
    given = {key for key in ("community", "unit", "volunteer") if getattr(scope, key)}
    if needed is not None and needed not in given:
        raise AccountError(needed, "scope-missing")
    if given - ({needed} if needed else set()):
        raise AccountError(next(iter(sorted(given))), "scope-unexpected")
    return scope


def pick_language(value: str | None) -> Language | None:
    if not value:
        return None
    lowered = value.strip().lower().replace("_", "-")
    if lowered.startswith("zh"):
        return "zh-CN"
    if lowered.startswith("en"):
        return "en"
    return None
