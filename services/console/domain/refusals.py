"""A service's refusal (RFC 9457 problem+json) put into words for the person, in their
language. The slugs are the services' contract; the sentences are the console's."""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Gettext = Callable[[str], str]
TimeFormat = Callable[[datetime], str]

_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})")


@dataclass(frozen=True)
class Problem:
    """What a service answered when it refused: status, slug, its detail and field errors."""

    status: int
    slug: str
    detail: str
    errors: list[Mapping[str, Any]] = field(default_factory=list)

    @classmethod
    def from_body(cls, status: int, body: Any) -> "Problem":
        if not isinstance(body, dict):
            return cls(status, "unavailable" if status >= 500 else "bad-request", "")
        slug = str(body.get("type", "")).rsplit("/", 1)[-1] or "bad-request"
        errors = body.get("errors") if isinstance(body.get("errors"), list) else []
        return cls(status, slug, str(body.get("detail", "")), list(errors or []))


def instants(detail: str) -> list[datetime]:
    return [
        datetime.fromisoformat(text.replace("Z", "+00:00")) for text in _INSTANT.findall(detail)
    ]


def explain(problem: Problem, _: Gettext, when: TimeFormat) -> str:
    """One sentence that says why, with any times in the person's zone."""
    times = instants(problem.detail)
    slug = problem.slug
    if slug == "overlapping-shift" and len(times) >= 2:
        return _("You are already on a shift from %(start)s to %(end)s.") % {
            "start": when(times[0]),
            "end": when(times[1]),
        }
    if slug == "check-in-closed" and len(times) >= 2:
        return _("Check-in is open from %(start)s to %(end)s.") % {
            "start": when(times[0]),
            "end": when(times[1]),
        }
    if slug == "reason-required":
        return _("The shift starts within the hour: say why you withdraw.")
    if slug == "skills-missing":
        missing = [str(error.get("msg", "")).removeprefix("missing: ") for error in problem.errors]
        return _("This needs skills you have not registered: %(skills)s.") % {
            "skills": ", ".join(skill for skill in missing if skill)
        }
    if slug == "hours-exceeded":
        numbers = re.findall(r"(\d+(?:\.\d+)?) hours", problem.detail)
        if len(numbers) >= 2:
            return _(
                "This shift would bring you to %(hours)s hours this week, over your cap of %(cap)s."
            ) % {
                "hours": numbers[0],
                "cap": numbers[1],
            }
    sentence = _sentences(_).get(slug)
    if sentence is not None:
        return sentence
    if problem.status >= 500:
        return _("The service is busy or unreachable. Try again in a moment.")
    return _("The request was refused (%(reason)s).") % {"reason": slug}


def _sentences(_: Gettext) -> dict[str, str]:
    return {
        "demand-full": _("Every place is taken. You can join the waitlist."),
        "demand-closed": _("This demand is closed: it takes no more claims."),
        "already-claimed": _("You have already claimed this demand."),
        "too-many-claims": _("You have claimed this demand too many times."),
        "hours-exceeded": _("This shift would take you over your weekly hours."),
        "daily-hours-exceeded": _("This shift would take you over your hours for the day."),
        "rest-too-short": _("You would not have enough rest between two shifts."),
        "too-many-consecutive-days": _("You would work too many days in a row."),
        "not-eligible": _("You are not eligible for this demand."),
        "wrong-check-in-code": _(
            "That check-in code is not this demand's. Ask the secretary on site."
        ),
        "invalid-claim-state": _("Your claim is not in a state that allows this."),
        "unknown-community": _("There is no such community."),
        "not-found": _("Not found: it may have been removed."),
        "forbidden": _("This is outside what your account may see or do."),
        "unauthorized": _("Your sign-in could not be confirmed. Sign in again."),
        "conflict": _("Someone else changed this at the same time. Reload and try again."),
        "busy": _("The service is busy. Try again in a moment."),
        "unavailable": _("The service is busy or unreachable. Try again in a moment."),
        "too-many-requests": _("Too many requests. Wait a little and try again."),
        "too-many-streams": _("Too many open pages. Close some and try again."),
        "validation-error": _("Some fields need correcting."),
        "unknown-unit": _("One of the units is not known yet: reload and choose again."),
        "roster-not-proposed": _("This roster is already confirmed."),
        "roster-empty": _("No unit can serve any of these days: nothing to confirm."),
        "not-committed": _("This turn was not committed by a roster."),
        "members-fixed": _("Checked in already: who came is fixed from check-in on."),
    }


def field_errors(problem: Problem, _: Gettext) -> dict[str, str]:
    """Field name -> a sentence, from a 422's `errors` (pydantic's `loc` and `type`)."""
    found: dict[str, str] = {}
    for error in problem.errors:
        loc = [str(part) for part in error.get("loc", []) if part not in ("body",)]
        name = _field_of(loc, str(error.get("msg", "")))
        if name and name not in found:
            found[name] = _error_sentence(str(error.get("type", "")), str(error.get("msg", "")), _)
    return found


def _field_of(loc: list[str], message: str) -> str | None:
    if loc:
        return loc[0]
    # A model-level check names its fields only in its message.
    for name in ("ends_at", "fill_by", "starts_at", "last_day"):
        if message.startswith(f"Value error, {name}") or message.startswith(name):
            return name
    return None


def _error_sentence(kind: str, message: str, _: Gettext) -> str:
    if kind in ("missing", "string_too_short") or "at least 1 character" in message:
        return _("Required.")
    if kind.startswith("int_") or kind == "int_parsing":
        return _("A whole number, please.")
    if kind in ("greater_than_equal", "less_than_equal", "too_short", "too_long"):
        return _("Out of the allowed range.")
    if kind.startswith("datetime") or "datetime" in kind:
        return _("A date and time, please.")
    if "ends_at must be after starts_at" in message:
        return _("The end must be after the start.")
    if "last_day must not be before first_day" in message:
        return _("The last day must not be before the first.")
    if "fill_by must not be after starts_at" in message:
        return _("Must not be after the start.")
    if "within 5 years" in message:
        return _("Too far ahead.")
    if kind == "unknown_community":
        return _("There is no such community.")
    if kind == "string_pattern_mismatch":
        return _("Letters, digits and . _ : - only.")
    return _("Not valid.")


# --- the console's own refusals (sign-in and invitations) -------------------------------------


class SignInThrottled(Exception):
    def __init__(self, until: datetime) -> None:
        super().__init__(f"sign-in locked until {until.isoformat()}")
        self.until = until


class SignInFailed(Exception):
    pass


class InvitationUnusable(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why  # "unknown", "used" or "expired"
