"""Every refusal dispatch gives, one exception each, carrying what its problem says.

The domain and the handlers raise these; `entrypoints/problems.py` maps each class to its
status, problem type and title (one table), so the contract's slugs live in one place. (A
missing demand or community is `shared.http.problems.not_found`, the one 404.)
"""

import re
from typing import Any


class Refusal(Exception):
    """A request the rules refuse; its message says why, `field` names the part of the body
    at fault (the problem's `errors[0].loc`) when there is one."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    @property
    def errors(self) -> list[dict[str, Any]] | None:
        """The problem's `errors[]`: the field at fault, and the rule (this class's name)."""
        if self.field is None:
            return None
        rule = re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()
        return [{"loc": ["body", self.field], "msg": self.detail, "type": rule}]


class NotYours(Refusal):
    """The principal may not do or read this (403)."""


class CommunityExists(Refusal):
    def __init__(self, community_id: str) -> None:
        super().__init__(f"a community with id '{community_id}' is already registered")


class IdTaken(Refusal):
    """A community, street or district id already names another kind of place."""


class InThePast(Refusal):
    """A moment of the demand has already passed (a 422 on that field)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"the request is not valid: body.{field} is in the past", field=field)


class UnknownCommunity(Refusal):
    def __init__(self, community_id: str) -> None:
        super().__init__(f"community '{community_id}' is not registered", field="community_id")


class VersionMismatch(Refusal):
    """If-Match named versions the demand is not at (412)."""

    def __init__(self, expected: frozenset[int], actual: int) -> None:
        asked = ", ".join(str(version) for version in sorted(expected)) or "none"
        super().__init__(f"If-Match asked for version {asked}; the demand is at {actual}")


class DemandClosed(Refusal):
    """The demand is completed, cancelled or expired: no command changes it any more."""


class DemandNotStarted(Refusal):
    """Completing a demand nobody claimed or checked in for: cancel it instead."""


class SlotsBelowAccepted(Refusal):
    """An edit would leave fewer slots than the people already accepted."""

    def __init__(self, slots: int, filled: int) -> None:
        super().__init__(
            f"{filled} people are already accepted on this demand: slots cannot go below that"
            f" (asked for {slots}); withdraw or release claims first",
            field="slots",
        )


class InvalidCursor(Refusal):
    def __init__(self) -> None:
        super().__init__("the cursor is not one this service gave")


class FillByPassed(Refusal):
    """`fill_by` is behind the demand (it went up the ladder then): it moves no more."""

    def __init__(self) -> None:
        super().__init__(
            "the demand's fill_by has passed (the whistle went on from there): it can no"
            " longer be moved",
            field="fill_by",
        )


class FillByAfterStart(Refusal):
    def __init__(self) -> None:
        super().__init__(
            "the request is not valid: body.fill_by is after starts_at", field="fill_by"
        )


# --- relay rosters (issue 14) ---------------------------------------------------------------


class UnknownUnit(Refusal):
    def __init__(self, unit_id: str) -> None:
        super().__init__(
            f"unit '{unit_id}' is not known to dispatch (not registered, or its registration "
            "has not arrived yet)",
            field="units",
        )


class RosterNotProposed(Refusal):
    """Only a proposal is confirmed, once (409)."""

    def __init__(self, roster_id: str, status: str) -> None:
        super().__init__(f"roster '{roster_id}' is {status}; only a proposed roster is confirmed")


class RosterEmpty(Refusal):
    def __init__(self, roster_id: str) -> None:
        super().__init__(f"roster '{roster_id}' has no turn: no unit can serve any of its days")


class UnknownGrid(Refusal):
    """A demand names a grid its community's uploaded grid does not have."""

    def __init__(self, community_id: str, grid_id: str) -> None:
        super().__init__(
            f"community '{community_id}' has no grid '{grid_id}' (see its uploaded grid)",
            field="location.grid",
        )


# --- repeating demands (issue 14) ---------------------------------------------------------


class InvalidRrule(Refusal):
    """A series' rule python-dateutil cannot read, or one with parts a series does not take."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"the recurrence rule is not valid: {detail}", field="rrule")


class RuleTooLong(Refusal):
    """A series' rule with no end, or with more occurrences than a series may have."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, field="rrule")


class NoOccurrences(Refusal):
    """A series whose rule leaves no occurrence ahead of now."""

    def __init__(self) -> None:
        super().__init__(
            "the recurrence rule gives no occurrence that starts after now", field="rrule"
        )


class SeriesClosed(Refusal):
    """The series was cancelled (or every occurrence is behind it): it changes no more."""


class SeriesTimes(Refusal):
    """An edit of a series' times that leaves an occurrence ending before it starts."""

    def __init__(self) -> None:
        super().__init__(
            "the request is not valid: body.ends_at must be after starts_at", field="ends_at"
        )


class UnknownTimeZone(Refusal):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown time zone {name!r} (e.g. Asia/Shanghai)", field="timezone")
