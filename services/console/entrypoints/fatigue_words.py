"""The fatigue limits a volunteer reads before claiming, from units' `fitness` of the demand:
the limits in words, what this shift counts, and why a claim now would be refused."""

from typing import Any

from services.console.adapters.services import Refused, Services
from services.console.domain.refusals import Problem
from services.console.entrypoints.web import Pages, Visit
from services.console.entrypoints.words import refusal


async def fatigue_shown(
    pages: Pages, visit: Visit, services: Services, demand_id: str
) -> dict[str, Any]:
    """`fitness` (limits and shift) and `fitness_refusal` (a sentence, or None) for the page;
    nothing when units cannot say (the claim itself still decides)."""
    assert visit.account is not None
    try:
        found = await services.call(
            visit.account, "units", "GET", f"/v1/demands/{demand_id}/fitness"
        )
    except Refused:
        return {}
    would = found.get("would_refuse")
    said = (
        refusal(pages, visit, Problem.from_body(int(would.get("status", 409)), would))
        if isinstance(would, dict)
        else None
    )
    return {"fitness": found, "fitness_refusal": said}
