"""Accounts: who may sign in, with which role and whose scope. Pure rules, no I/O."""

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from shared.auth import Role as ServiceRole

Language = Literal["zh-CN", "en"]
LANGUAGES: tuple[Language, ...] = ("zh-CN", "en")
DEFAULT_LANGUAGE: Language = "zh-CN"

# A login is a phone number or a user name: letters, digits and . _ - (and + for phones).
_LOGIN = re.compile(r"^[A-Za-z0-9._+-]{2,64}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 256


class Role(StrEnum):
    """The console's roles: the services' five, and street and district staff.

    The services know no street or district role: they model that staff as a secretary whose
    `community` claim is the street's or district's id (dispatch reads demands escalated to
    that id for it). The console keeps the two apart, because their screens differ, and mints
    the services' form of it for every call (`service_role`, `adapters/tokens.py`)."""

    SECRETARY = "secretary"
    UNIT = "unit"
    VOLUNTEER = "volunteer"
    AUDITOR = "auditor"
    ADMIN = "admin"
    STREET = "street"
    DISTRICT = "district"


# The claim that scopes each role (admin and auditor need none).
SCOPE_OF: dict[Role, str] = {
    Role.SECRETARY: "community",
    Role.UNIT: "unit",
    Role.VOLUNTEER: "volunteer",
    Role.STREET: "street",
    Role.DISTRICT: "district",
}
SCOPE_KEYS = ("community", "unit", "volunteer", "street", "district")
OVERSIGHT = (Role.STREET, Role.DISTRICT)


def service_role(role: Role) -> ServiceRole:
    """The role the services know the account by (street/district staff: a secretary)."""
    return ServiceRole.SECRETARY if role in OVERSIGHT else ServiceRole(role.value)


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
    street: str | None = None
    district: str | None = None

    @property
    def place(self) -> str | None:
        """The community, street or district id the services' `community` claim carries."""
        return self.community or self.street or self.district

    def describe(self) -> str:
        return ", ".join(f"{key} {getattr(self, key)}" for key in SCOPE_KEYS if getattr(self, key))


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
        if self.role in OVERSIGHT:
            return "/oversight"
        if self.role is Role.AUDITOR:
            return "/audit/events"
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
    given = {key for key in SCOPE_KEYS if getattr(scope, key)}
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
