"""The one shape of every form that asks a service to do something: parse the form, call the
service on the person's behalf, and either go on (a redirect, or a page) or show the page
again with the refusal inline, in the person's language, beside the fields it names.

A screen's route then reads as: who may post (`posting`), what the form says, which call,
where to go on, how to show it again.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import Response

from services.console.adapters.qr import qr_svg
from services.console.adapters.services import Refused, Service
from services.console.domain.accounts import Role
from services.console.entrypoints.web import (
    Forbidden,
    Pages,
    Visit,
    check_csrf,
    go,
    page,
    pages_of,
    services_of,
    visit_of,
)
from services.console.entrypoints.words import fields, refusal


@dataclass(frozen=True)
class Shown:
    """A refusal as a page shows it: the status to answer with, the sentence, field errors."""

    status: int
    problem: str
    slug: str
    errors: dict[str, str] = field(default_factory=dict)

    def context(self) -> dict[str, Any]:
        return {"status": self.status, "problem": self.problem, "errors": self.errors}


def shown(pages: Pages, visit: Visit, refused: Refused) -> Shown:
    return Shown(
        refused.problem.status,
        refusal(pages, visit, refused.problem),
        refused.problem.slug,
        fields(pages, visit, refused.problem),
    )


def problem_page(pages: Pages, visit: Visit, refused: Refused) -> Response:
    """A page that could not be shown at all, saying why."""
    said = shown(pages, visit, refused)
    return page(pages, visit, "problem.html", status=said.status, problem=said.problem)


Again = Callable[[Shown], Awaitable[Response]]
Then = Callable[[Any], Awaitable[Response] | Response]


async def act(
    visit: Visit,
    service: Service,
    method: str,
    path: str,
    *,
    again: Again,
    then: Then,
    json: Any = None,
    idem: str | None = None,
) -> Response:
    """Call `service`; on a refusal show the form `again`, else go on with `then(answer)`."""
    assert visit.account is not None
    try:
        answer = await services_of(visit.request).call(
            visit.account, service, method, path, json=json, idempotency_key=idem or None
        )
    except Refused as refused:
        return await again(shown(pages_of(visit.request), visit, refused))
    result = then(answer)
    return await result if isinstance(result, Awaitable) else result


def to(path: str, request: Request) -> Then:
    """Go on to `path` (a redirect htmx follows too)."""
    return lambda _answer: go(path, request)


def posting(*roles: Role) -> Any:
    """A dependency for a form's POST: the CSRF token checked, then the account's role."""

    async def dependency(request: Request) -> Visit:
        visit = await check_csrf(request, await visit_of(request))
        if visit.account is None or (roles and visit.account.role not in roles):
            raise Forbidden()
        return visit

    return Depends(dependency)


def invitation_shown(pages: Pages, visit: Visit, link: str, name: str) -> dict[str, Any]:
    """What a page shows once it has invited someone: the link, for whom, its QR code."""
    _ = pages.translator(visit.language)
    return {
        "invitation": link,
        "invited": name,
        "invitation_qr": qr_svg(link, label=_("Invitation QR code")),
    }
