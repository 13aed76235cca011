"""The admin's screen: communities, secretaries, units and the accounts list."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.console import handlers
from services.console.adapters import store
from services.console.adapters.qr import qr_svg
from services.console.adapters.services import Refused
from services.console.domain.accounts import Scope
from services.console.entrypoints import forms
from services.console.entrypoints.web import (
    CsrfChecked,
    Db,
    PagesDep,
    ServicesDep,
    Settings,
    Visit,
    go,
    page,
    signed_in,
)
from services.console.entrypoints.words import fields, refusal
from shared.auth import Role
from shared.clock import utcnow

router = APIRouter()
Admin = signed_in(Role.ADMIN)

UNIT_KINDS = (
    "department",
    "enterprise",
    "school",
    "social_org",
    "party_branch",
    "property",
    "other",
)


async def _admin_page(
    pages: PagesDep, visit: Visit, db: Db, *, status: int = 200, **context: Any
) -> Response:
    accounts = await store.list_accounts(db)
    context.setdefault("errors", {})
    context.setdefault("values", {})
    return page(
        pages,
        visit,
        "admin.html",
        status=status,
        accounts=accounts,
        unit_kinds=UNIT_KINDS,
        **context,
    )


@router.get("/admin")
async def admin_home(pages: PagesDep, db: Db, visit: Visit = Admin) -> Response:
    return await _admin_page(pages, visit, db)


@router.post("/admin/communities")
async def register_community(
    request: Request, pages: PagesDep, db: Db, services: ServicesDep, visit: CsrfChecked
) -> Response:
    _ = pages.translator(visit.language)
    if visit.role is not Role.ADMIN:
        return go("/", request)
    form = await request.form()
    body = {key: forms.text(form, key, 200) for key in ("id", "name", "street", "district")}
    assert visit.account is not None
    try:
        await services.call(
            visit.account,
            "dispatch",
            "POST",
            "/v1/communities",
            json=body,
            idempotency_key=forms.text(form, "idem", 100) or None,
        )
    except Refused as refused:
        return await _admin_page(
            pages,
            visit,
            db,
            status=refused.problem.status,
            form="community",
            problem=refusal(pages, visit, refused.problem),
            errors={"community": fields(pages, visit, refused.problem)},
            values=body,
        )
    return await _admin_page(
        pages, visit, db, done=_("Community %(name)s registered.") % {"name": body["name"]}
    )


@router.post("/admin/secretaries")
async def invite_secretary(
    request: Request, pages: PagesDep, db: Db, settings: Settings, visit: CsrfChecked
) -> Response:
    if visit.role is not Role.ADMIN or visit.account is None:
        return go("/", request)
    form = await request.form()
    values = {key: forms.text(form, key, 200) for key in ("name", "login", "community")}
    errors: dict[str, str] = {}
    _ = pages.translator(visit.language)
    for key in ("name", "community"):
        if not values[key]:
            errors[key] = _("Required.")
    if errors:
        return await _admin_page(
            pages, visit, db, status=422, errors={"secretary": errors}, values=values
        )
    link, _doc = await handlers.invite(
        db,
        settings,
        role=Role.SECRETARY,
        scope=Scope(community=values["community"]),
        name=values["name"],
        login_hint=values["login"] or None,
        community=values["community"],
        invited_by=visit.account.login,
        now=utcnow(),
    )
    return await _admin_page(
        pages,
        visit,
        db,
        invitation=link,
        invited=values["name"],
        invitation_qr=qr_svg(link, label=_("Invitation QR code")),
    )


@router.post("/admin/units")
async def register_unit(
    request: Request,
    pages: PagesDep,
    db: Db,
    settings: Settings,
    services: ServicesDep,
    visit: CsrfChecked,
) -> Response:
    if visit.role is not Role.ADMIN or visit.account is None:
        return go("/", request)
    _ = pages.translator(visit.language)
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
    try:
        unit = await services.call(
            visit.account,
            "units",
            "POST",
            "/v1/units",
            json=body,
            idempotency_key=forms.text(form, "idem", 100) or None,
        )
    except Refused as refused:
        return await _admin_page(
            pages,
            visit,
            db,
            status=refused.problem.status,
            form="unit",
            problem=refusal(pages, visit, refused.problem),
            errors={"unit": fields(pages, visit, refused.problem)},
            values=values,
        )
    link, _doc = await handlers.invite(
        db,
        settings,
        role=Role.UNIT,
        scope=Scope(unit=unit["id"]),
        name=unit["name"],
        login_hint=values["login"] or None,
        community=body["communities"][0] if body["communities"] else None,
        invited_by=visit.account.login,
        now=utcnow(),
    )
    return await _admin_page(
        pages,
        visit,
        db,
        invitation=link,
        invited=unit["name"],
        invitation_qr=qr_svg(link, label=_("Invitation QR code")),
    )


@router.post("/admin/accounts/{account_id}/{action}")
async def switch_account(
    account_id: str, action: str, request: Request, pages: PagesDep, db: Db, visit: CsrfChecked
) -> Response:
    if visit.role is not Role.ADMIN or visit.account is None:
        return go("/", request)
    if action not in ("disable", "enable") or account_id == visit.account.id:
        return go("/admin", request)
    await store.set_active(db, account_id, action == "enable")
    return go("/admin", request)
