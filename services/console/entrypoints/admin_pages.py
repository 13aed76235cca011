"""The admin's screens: communities (with street and district), units, volunteers, and the
accounts: invite one with any role and scope, disable or enable, reset a password (a new
invitation)."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.console.adapters import store
from services.console.domain.accounts import SCOPE_OF, AccountError, Role, Scope
from services.console.entrypoints import forms
from services.console.entrypoints.acting import Shown, act, invitation_shown, posting
from services.console.entrypoints.web import (
    Db,
    Forbidden,
    PagesDep,
    Settings,
    Visit,
    go,
    page,
    signed_in,
)
from services.console.entrypoints.words import account_error
from services.console.handlers import commands
from shared.clock import utcnow

router = APIRouter()
Admin = signed_in(Role.ADMIN)
Posting = posting(Role.ADMIN)

UNIT_KINDS = (
    "department",
    "enterprise",
    "school",
    "social_org",
    "party_branch",
    "property",
    "other",
)
# Roles an admin may invite from the accounts form (units and volunteers come with their
# registration; their ids are what the scope names).
INVITABLE = (
    Role.SECRETARY,
    Role.STREET,
    Role.DISTRICT,
    Role.AUDITOR,
    Role.ADMIN,
    Role.UNIT,
    Role.VOLUNTEER,
)


async def _admin_page(
    pages: PagesDep, visit: Visit, db: Db, *, status: int = 200, **context: Any
) -> Response:
    context.setdefault("errors", {})
    context.setdefault("values", {})
    accounts = await store.list_accounts(db)
    return page(
        pages,
        visit,
        "admin.html",
        status=status,
        accounts=accounts,
        communities=await store.remembered(db, "community"),
        units=await store.remembered(db, "unit"),
        volunteers=[a for a in accounts if a.role is Role.VOLUNTEER],
        unit_kinds=UNIT_KINDS,
        invitable=INVITABLE,
        **context,
    )


@router.get("/admin")
async def admin_home(pages: PagesDep, db: Db, visit: Visit = Admin) -> Response:
    return await _admin_page(pages, visit, db)


@router.post("/admin/communities")
async def register_community(
    request: Request, pages: PagesDep, db: Db, visit: Visit = Posting
) -> Response:
    _ = pages.translator(visit.language)
    form = await request.form()
    body = {key: forms.text(form, key, 200) for key in ("id", "name", "street", "district")}

    async def again(said: Shown) -> Response:
        errors = {"community": said.errors}
        return await _admin_page(
            pages, visit, db, **{**said.context(), "errors": errors}, form="community", values=body
        )

    async def then(community: dict[str, Any]) -> Response:
        await store.remember(db, "community", community, utcnow())
        done = _("Community %(name)s registered.") % {"name": body["name"]}
        return await _admin_page(pages, visit, db, done=done)

    return await act(
        visit,
        "dispatch",
        "POST",
        "/v1/communities",
        json=body,
        idem=forms.text(form, "idem", 100),
        again=again,
        then=then,
    )


@router.post("/admin/secretaries")
async def invite_secretary(
    request: Request, pages: PagesDep, db: Db, settings: Settings, visit: Visit = Posting
) -> Response:
    """The secretary's invitation (the form on the first screen an admin uses)."""
    form = await request.form()
    values = {key: forms.text(form, key, 200) for key in ("name", "login", "community")}
    return await _invite(
        pages, visit, db, settings, Role.SECRETARY, values["community"], values, "secretary"
    )


@router.post("/admin/invitations")
async def invite_account(
    request: Request, pages: PagesDep, db: Db, settings: Settings, visit: Visit = Posting
) -> Response:
    """An invitation for any role, with the scope that role needs."""
    form = await request.form()
    values = {key: forms.text(form, key, 200) for key in ("name", "login", "role", "scope")}
    role = next((r for r in INVITABLE if r.value == values["role"]), None)
    if role is None:
        _ = pages.translator(visit.language)
        errors = {"invite": {"role": _("Not valid.")}}
        return await _admin_page(pages, visit, db, status=422, errors=errors, values=values)
    return await _invite(pages, visit, db, settings, role, values["scope"], values, "invite")


async def _invite(
    pages: PagesDep,
    visit: Visit,
    db: Db,
    settings: Settings,
    role: Role,
    scope_id: str,
    values: dict[str, str],
    form: str,
) -> Response:
    assert visit.account is not None
    _ = pages.translator(visit.language)
    scope_key = SCOPE_OF.get(role)
    scope = Scope(**({scope_key: scope_id} if scope_key and scope_id else {}))
    errors: dict[str, str] = {}
    link = ""
    if not values["name"]:
        errors["name"] = _("Required.")
    else:
        try:
            link, _doc = await commands.invite(
                db,
                settings,
                role=role,
                scope=scope,
                name=values["name"],
                login_hint=values["login"] or None,
                community=scope.community,
                invited_by=visit.account.login,
                now=utcnow(),
            )
        except AccountError as error:
            errors["community" if form == "secretary" else "scope"] = account_error(
                pages, visit, error
            )
    if errors:
        return await _admin_page(
            pages, visit, db, status=422, errors={form: errors}, values=values, form=form
        )
    return await _admin_page(
        pages, visit, db, **invitation_shown(pages, visit, link, values["name"])
    )


@router.post("/admin/units")
async def register_unit(
    request: Request, pages: PagesDep, db: Db, settings: Settings, visit: Visit = Posting
) -> Response:
    """Register a unit with units, then invite its first member."""
    assert visit.account is not None
    account = visit.account
    form = await request.form()
    values = {
        key: forms.text(form, key, 400)
        for key in ("name", "kind", "communities", "skills", "login")
    }
    body = {
        "name": values["name"],
        "kind": values["kind"] or "other",
        "communities": forms.items(form, "communities"),
        "skills": forms.items(form, "skills"),
    }

    async def again(said: Shown) -> Response:
        errors = {"unit": said.errors}
        return await _admin_page(
            pages, visit, db, **{**said.context(), "errors": errors}, form="unit", values=values
        )

    async def then(unit: dict[str, Any]) -> Response:
        await store.remember(
            db,
            "unit",
            {k: unit.get(k) for k in ("id", "name", "kind", "communities", "skills")},
            utcnow(),
        )
        link, _doc = await commands.invite(
            db,
            settings,
            role=Role.UNIT,
            scope=Scope(unit=unit["id"]),
            name=unit["name"],
            login_hint=values["login"] or None,
            community=body["communities"][0] if body["communities"] else None,
            invited_by=account.login,
            now=utcnow(),
        )
        return await _admin_page(
            pages, visit, db, **invitation_shown(pages, visit, link, unit["name"])
        )

    return await act(
        visit,
        "units",
        "POST",
        "/v1/units",
        json=body,
        idem=forms.text(form, "idem", 100),
        again=again,
        then=then,
    )


@router.post("/admin/accounts/{account_id}/{action}")
async def switch_account(
    account_id: str,
    action: str,
    request: Request,
    pages: PagesDep,
    db: Db,
    settings: Settings,
    visit: Visit = Posting,
) -> Response:
    """Disable, enable, or reset the password of an account (not one's own)."""
    assert visit.account is not None
    target = await store.account_by_id(db, account_id)
    if target is None or account_id == visit.account.id:
        raise Forbidden()
    if action in ("disable", "enable"):
        await store.set_active(db, account_id, action == "enable")
        return go("/admin", request)
    if action != "reset":
        return go("/admin", request)
    link, _doc = await commands.invite(
        db,
        settings,
        role=target.role,
        scope=target.scope,
        name=target.name,
        login_hint=target.login,
        community=None,
        invited_by=visit.account.login,
        now=utcnow(),
        account_id=target.id,
    )
    return await _admin_page(pages, visit, db, **invitation_shown(pages, visit, link, target.name))
