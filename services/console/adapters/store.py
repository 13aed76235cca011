"""The console's own database: accounts, sessions, sign-in failures, invitations.

Nothing here is a demand, a claim or an event: those live in the services.
Session ids and invitation tokens are stored only as SHA-256 digests, so a copy of the
database signs no one in. A calendar token is kept as it is: its owner reads it again on
every visit to their duties, and it opens nothing but that read-only feed.
"""

import hashlib
import secrets
from datetime import datetime, timedelta

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.console.domain.accounts import Account, Language, Role, Scope
from shared.ids import new_id
from shared.store.mongo import Database, Document


class LoginTaken(Exception):
    pass


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


async def ensure_indexes(db: Database) -> None:
    await db.accounts.create_index("login", unique=True)
    await db.accounts.create_index("volunteer")
    await db.accounts.create_index("calendar_token")
    await db.sessions.create_index("account_id")
    await db.sign_in_failures.create_index([("key", ASCENDING), ("at", ASCENDING)])
    await db.invitations.create_index("community")
    await db.walls.create_index("owner")
    await db.walls.create_index("id", unique=True)
    await db.directory.create_index("kind")


# --- accounts -------------------------------------------------------------------------------


def _account(doc: Document) -> Account:
    return Account(
        id=doc["_id"],
        login=doc["login"],
        role=Role(doc["role"]),
        scope=Scope(
            doc.get("community"),
            doc.get("unit"),
            doc.get("volunteer"),
            doc.get("street"),
            doc.get("district"),
        ),
        name=doc.get("name") or doc["login"],
        active=doc.get("active", True),
        language=doc.get("language"),
        created_at=doc["created_at"],
        calendar_token=doc.get("calendar_token"),
    )


async def create_account(
    db: Database,
    *,
    login: str,
    password_hash: str,
    role: Role,
    scope: Scope,
    name: str,
    now: datetime,
    language: Language | None = None,
) -> Account:
    doc: Document = {
        "_id": new_id("acct"),
        "login": login,
        "password_hash": password_hash,
        "role": role.value,
        "community": scope.community,
        "unit": scope.unit,
        "volunteer": scope.volunteer,
        "street": scope.street,
        "district": scope.district,
        "name": name,
        "active": True,
        "language": language,
        "created_at": now,
    }
    try:
        await db.accounts.insert_one(doc)
    except DuplicateKeyError:
        raise LoginTaken(login) from None
    return _account(doc)


async def account_by_login(db: Database, login: str) -> tuple[Account, str] | None:
    doc = await db.accounts.find_one({"login": login})
    return (_account(doc), doc["password_hash"]) if doc else None


async def account_by_id(db: Database, account_id: str) -> Account | None:
    doc = await db.accounts.find_one({"_id": account_id})
    return _account(doc) if doc else None


async def has_admin(db: Database) -> bool:
    return await db.accounts.find_one({"role": Role.ADMIN.value}) is not None


async def accounts_of_community(db: Database, community: str) -> list[Account]:
    cursor = db.accounts.find({"community_of": community}).sort("created_at", -1).limit(500)
    return [_account(doc) async for doc in cursor]


async def list_accounts(db: Database, limit: int = 200) -> list[Account]:
    cursor = db.accounts.find({}).sort("created_at", -1).limit(limit)
    return [_account(doc) async for doc in cursor]


async def set_active(db: Database, account_id: str, active: bool) -> bool:
    result = await db.accounts.update_one({"_id": account_id}, {"$set": {"active": active}})
    if not active:
        await db.sessions.delete_many({"account_id": account_id})
    return result.matched_count == 1


async def set_language(db: Database, account_id: str, language: Language) -> None:
    await db.accounts.update_one({"_id": account_id}, {"$set": {"language": language}})


async def tag_community(db: Database, account_id: str, community: str) -> None:
    """A volunteer's or unit member's community, for their secretary's list (not a scope)."""
    await db.accounts.update_one({"_id": account_id}, {"$set": {"community_of": community}})


async def calendar_token(db: Database, account_id: str) -> str:
    """A fresh secret for the person's calendar feed (the old link stops working)."""
    token = new_secret()
    await db.accounts.update_one({"_id": account_id}, {"$set": {"calendar_token": token}})
    return token


async def account_by_calendar(db: Database, token: str) -> Account | None:
    doc = await db.accounts.find_one({"calendar_token": token, "active": True})
    return _account(doc) if doc else None


# --- sessions -------------------------------------------------------------------------------


async def open_session(db: Database, account_id: str, now: datetime) -> tuple[str, str]:
    """A new session: (cookie value, CSRF token)."""
    secret, csrf = new_secret(), new_secret()
    await db.sessions.insert_one(
        {
            "_id": digest(secret),
            "account_id": account_id,
            "csrf": csrf,
            "created_at": now,
            "seen_at": now,
        }
    )
    return secret, csrf


async def live_session(
    db: Database, secret: str, now: datetime, idle: timedelta
) -> Document | None:
    """The session if it was used within `idle`; an idle one is ended, not revived."""
    key = digest(secret)
    doc = await db.sessions.find_one({"_id": key})
    if doc is None:
        return None
    if doc["seen_at"] <= now - idle:
        await db.sessions.delete_one({"_id": key})
        return None
    # Writing on every request would cost a write per page; a minute's precision is enough.
    if now - doc["seen_at"] > timedelta(minutes=1):
        await db.sessions.update_one({"_id": key}, {"$set": {"seen_at": now}})
    return doc


async def end_session(db: Database, secret: str) -> None:
    await db.sessions.delete_one({"_id": digest(secret)})


# --- sign-in failures -----------------------------------------------------------------------


async def failures_since(
    db: Database, keys: list[str], since: datetime
) -> dict[str, list[datetime]]:
    found: dict[str, list[datetime]] = {key: [] for key in keys}
    async for doc in db.sign_in_failures.find({"key": {"$in": keys}, "at": {"$gt": since}}):
        found[doc["key"]].append(doc["at"])
    return found


async def record_failure(db: Database, keys: list[str], now: datetime) -> None:
    await db.sign_in_failures.insert_many([{"key": key, "at": now} for key in keys])


async def forget_failures(db: Database, before: datetime) -> None:
    await db.sign_in_failures.delete_many({"at": {"$lte": before}})


# --- invitations ----------------------------------------------------------------------------


async def create_invitation(
    db: Database,
    *,
    role: Role,
    scope: Scope,
    name: str,
    login_hint: str | None,
    community: str | None,
    invited_by: str,
    now: datetime,
    ttl: timedelta,
    account_id: str | None = None,
) -> tuple[str, Document]:
    """An invitation to make an account, or (with `account_id`) to set a new password."""
    token = new_secret()
    doc: Document = {
        "_id": digest(token),
        "id": new_id("inv"),
        "role": role.value,
        "community_scope": scope.community,
        "unit": scope.unit,
        "volunteer": scope.volunteer,
        "street": scope.street,
        "district": scope.district,
        "name": name,
        "login_hint": login_hint,
        "community": community,
        "invited_by": invited_by,
        "created_at": now,
        "expires_at": now + ttl,
        "used_at": None,
        "account_id": account_id,
    }
    await db.invitations.insert_one(doc)
    return token, doc


async def invitation(db: Database, token: str) -> Document | None:
    return await db.invitations.find_one({"_id": digest(token)})


async def use_invitation(db: Database, token: str, now: datetime) -> Document | None:
    """Take the invitation once: atomically, so two tabs cannot both use it."""
    doc: Document | None = await db.invitations.find_one_and_update(
        {"_id": digest(token), "used_at": None, "expires_at": {"$gt": now}},
        {"$set": {"used_at": now}},
        return_document=ReturnDocument.AFTER,
    )
    return doc


async def release_invitation(db: Database, token: str) -> None:
    """Give an invitation back when the account it was taken for could not be made."""
    await db.invitations.update_one({"_id": digest(token)}, {"$set": {"used_at": None}})


async def invitations_of_community(db: Database, community: str) -> list[Document]:
    cursor = db.invitations.find({"community": community}).sort("created_at", -1).limit(500)
    return [doc async for doc in cursor]


def scope_of(doc: Document) -> Scope:
    return Scope(
        doc.get("community_scope"),
        doc.get("unit"),
        doc.get("volunteer"),
        doc.get("street"),
        doc.get("district"),
    )


def role_of(doc: Document) -> Role:
    return Role(doc["role"])


# --- what the admin registered through the console -------------------------------------------
# The services have no list of communities or units; the console keeps its own index of those
# its admins registered, for the admin's and the street's screens (the services stay the
# authority: every page reads the demands themselves from dispatch).


async def remember(db: Database, kind: str, entry: Document, now: datetime) -> None:
    await db.directory.update_one(
        {"_id": f"{kind}:{entry['id']}"},
        {"$set": {**entry, "kind": kind, "at": now}},
        upsert=True,
    )


async def remembered(db: Database, kind: str, limit: int = 500) -> list[Document]:
    cursor = db.directory.find({"kind": kind}).sort("at", -1).limit(limit)
    return [doc async for doc in cursor]


async def communities_under(db: Database, place: str) -> list[Document]:
    """The communities whose street or district is `place`."""
    cursor = db.directory.find(
        {"kind": "community", "$or": [{"street": place}, {"district": place}]}
    ).sort("id", 1)
    return [doc async for doc in cursor.limit(500)]


async def set_password(db: Database, account_id: str, password_hash: str) -> None:
    """A new password (a reset invitation used): every open session of the account ends."""
    await db.accounts.update_one(
        {"_id": account_id}, {"$set": {"password_hash": password_hash, "active": True}}
    )
    await db.sessions.delete_many({"account_id": account_id})


# --- wall screens ----------------------------------------------------------------------------
# A wall link's token is its only key (a screen on the office wall cannot sign in); it is
# stored as a digest, opens only the read-only wall of one place, and is revoked at once.


async def create_wall(
    db: Database, *, owner: str, place: str, label: str, now: datetime
) -> tuple[str, Document]:
    token = new_secret()
    doc: Document = {
        "_id": digest(token),
        "id": new_id("wall"),
        "owner": owner,
        "place": place,
        "label": label,
        "created_at": now,
        "revoked_at": None,
    }
    await db.walls.insert_one(doc)
    return token, doc


async def live_wall(db: Database, token: str) -> Document | None:
    doc: Document | None = await db.walls.find_one({"_id": digest(token), "revoked_at": None})
    return doc


async def walls_of(db: Database, owner: str) -> list[Document]:
    cursor = db.walls.find({"owner": owner}).sort("created_at", -1).limit(100)
    return [doc async for doc in cursor]


async def revoke_wall(db: Database, owner: str, wall_id: str, now: datetime) -> bool:
    result = await db.walls.update_one(
        {"id": wall_id, "owner": owner, "revoked_at": None}, {"$set": {"revoked_at": now}}
    )
    return result.modified_count == 1
