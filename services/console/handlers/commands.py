"""The console's commands: sign in, make accounts, invite, accept an invitation.

Each takes the database and plain values and raises a domain error to its caller; the
pages put those into words.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.console.adapters import store
from services.console.adapters.passwords import hash_password, verify_password
from services.console.config import ConsoleSettings
from services.console.domain.accounts import (
    Account,
    AccountError,
    Language,
    Role,
    Scope,
    check_login,
    check_password,
    check_scope,
    normalise_login,
)
from services.console.domain.refusals import InvitationUnusable, SignInFailed, SignInThrottled
from services.console.domain.throttle import locked_until
from shared.store.mongo import Database, Document


@dataclass(frozen=True)
class SignedIn:
    account: Account
    session_secret: str
    csrf: str


def _throttle_keys(login: str, address: str) -> list[str]:
    return [f"login:{normalise_login(login)}", f"address:{address}"]


async def sign_in(
    db: Database, settings: ConsoleSettings, login: str, password: str, address: str, now: datetime
) -> SignedIn:
    window = timedelta(seconds=settings.sign_in_window_s)
    keys = _throttle_keys(login, address)
    failures = await store.failures_since(db, keys, now - window)
    locks = [
        until
        for times in failures.values()
        if (until := locked_until(times, now=now, limit=settings.sign_in_limit, window=window))
    ]
    if locks:
        raise SignInThrottled(max(locks))
    found = await store.account_by_login(db, normalise_login(login))
    account, stored_hash = found if found else (None, None)
    # The hash is checked even for an unknown login, so timing does not tell logins apart.
    if not verify_password(stored_hash, password) or account is None or not account.active:
        await store.record_failure(db, keys, now)
        await store.forget_failures(db, now - window)
        raise SignInFailed()
    secret, csrf = await store.open_session(db, account.id, now)
    return SignedIn(account, secret, csrf)


async def create_account(
    db: Database,
    *,
    login: str,
    password: str,
    role: Role,
    scope: Scope,
    name: str | None,
    now: datetime,
    language: Language | None = None,
    community_of: str | None = None,
) -> Account:
    login = check_login(login)
    check_password(password)
    check_scope(role, scope)
    try:
        account = await store.create_account(
            db,
            login=login,
            password_hash=hash_password(password),
            role=role,
            scope=scope,
            name=(name or login).strip()[:200],
            now=now,
            language=language,
        )
    except store.LoginTaken:
        raise AccountError("login", "login-taken") from None
    if community_of or scope.community:
        await store.tag_community(db, account.id, community_of or scope.community or "")
    return account


async def ensure_admin(db: Database, now: datetime) -> str | None:
    """On a store with no admin, make `admin` with a random password and return it (once)."""
    if await store.has_admin(db):
        return None
    password = secrets.token_urlsafe(12)
    try:
        await create_account(
            db,
            login="admin",
            password=password,
            role=Role.ADMIN,
            scope=Scope(),
            name="admin",
            now=now,
        )
    except AccountError:
        return None  # another process made it first
    return password


async def invite(
    db: Database,
    settings: ConsoleSettings,
    *,
    role: Role,
    scope: Scope,
    name: str,
    login_hint: str | None,
    community: str | None,
    invited_by: str,
    now: datetime,
    account_id: str | None = None,
) -> tuple[str, Document]:
    """A link (valid 7 days, once) to make the account, or to set a new password for
    `account_id`: a reset is an invitation too, so no one ever sends a password around."""
    check_scope(role, scope)
    token, doc = await store.create_invitation(
        db,
        role=role,
        scope=scope,
        name=name,
        login_hint=normalise_login(login_hint) if login_hint else None,
        community=community,
        invited_by=invited_by,
        now=now,
        ttl=timedelta(seconds=settings.invitation_ttl_s),
        account_id=account_id,
    )
    return f"{settings.public_url.rstrip('/')}/invite/{token}", doc


async def usable_invitation(db: Database, token: str, now: datetime) -> Document:
    doc = await store.invitation(db, token)
    if doc is None:
        raise InvitationUnusable("unknown")
    if doc.get("used_at") is not None:
        raise InvitationUnusable("used")
    if doc["expires_at"] <= now:
        raise InvitationUnusable("expired")
    return doc


async def accept_invitation(
    db: Database, token: str, login: str, password: str, now: datetime, language: Language
) -> Account:
    doc = await usable_invitation(db, token, now)
    if doc.get("account_id"):
        return await _reset_password(db, token, doc["account_id"], password, now)
    login = check_login(login)
    check_password(password)
    taken = await store.use_invitation(db, token, now)
    if taken is None:
        raise InvitationUnusable("used")
    try:
        return await create_account(
            db,
            login=login,
            password=password,
            role=store.role_of(doc),
            scope=store.scope_of(doc),
            name=doc.get("name"),
            now=now,
            language=language,
            community_of=doc.get("community"),
        )
    except AccountError:
        await store.release_invitation(db, token)
        raise


async def _reset_password(
    db: Database, token: str, account_id: str, password: str, now: datetime
) -> Account:
    check_password(password)
    account = await store.account_by_id(db, account_id)
    if account is None:
        raise InvitationUnusable("unknown")
    if await store.use_invitation(db, token, now) is None:
        raise InvitationUnusable("used")
    await store.set_password(db, account_id, hash_password(password))
    return account
