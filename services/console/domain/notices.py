"""A notification in the person's language. Notify stores its text in English; the console
says it again from the notification's `kind` and the demand it is about (read from dispatch),
so a Chinese reader never sees notify's English sentence.

What notify's inbox does not carry (an escalation's target, who did not come, a cancellation's
reason) is taken from the demand as it is now, or left out; never guessed."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.events import catalogue as ev

Gettext = Callable[[str], str]
Format = Callable[[Any], str]


@dataclass(frozen=True)
class Said:
    title: str
    body: str


def say(
    kind: str,
    demand: Mapping[str, Any] | None,
    _: Gettext,
    when: Format,
    *,
    office: bool = False,
) -> Said:
    """The title and line of a notification of `kind` about `demand` (None: unknown demand);
    `office`: the reader is a community, street or district office, not the claimant."""
    about = f"“{demand['title']}”" if demand else _("a demand")
    if demand is not None and kind in (ev.DemandPublished.TYPE, "demand.realert", "claim.reminder"):
        slots, filled = int(demand.get("slots", 0)), int(demand.get("filled", 0))
        times = {
            "start": when(demand.get("starts_at")),
            "end": when(demand.get("ends_at")),
            "fill_by": when(demand.get("fill_by")),
        }
        if kind == ev.DemandPublished.TYPE:
            return Said(
                _("Whistle: %(title)s") % {"title": demand["title"]},
                _(
                    "%(open)s of %(slots)s people needed from %(start)s to %(end)s; "
                    "claim by %(fill_by)s."
                )
                % {"open": max(0, slots - filled), "slots": slots, **times},
            )
        if kind == "demand.realert":
            return Said(
                _("Still needed: %(title)s") % {"title": demand["title"]},
                _(
                    "%(filled)s of %(slots)s places taken; the shift starts %(start)s and "
                    "the call closes %(fill_by)s."
                )
                % {"filled": filled, "slots": slots, **times},
            )
        return Said(
            _("Reminder: %(title)s starts %(start)s") % {"title": demand["title"], **times},
            _(
                "Your shift %(about)s starts at %(start)s. Withdraw now if you cannot come, "
                "so someone else can."
            )
            % {"about": about, **times},
        )
    if kind == ev.DemandEscalated.TYPE:
        line = _("Escalated")
        body = _("%(about)s was not filled in time and was escalated.") % {"about": about}
        if demand is not None and demand.get("level") in ("street", "district"):
            level = _("the street") if demand["level"] == "street" else _("the district")
            body += " " + _("It is now at %(level)s.") % {"level": level}
        return Said(f"{line}: {about}", body)
    found = _lines(_).get(kind)
    if kind == ev.ClaimNoShow.TYPE and office:
        found = _("Someone did not check in by the end of the shift")
    if found is None:
        return Said(_("Notification: %(about)s") % {"about": about}, "")
    line = found
    body = _("%(line)s for %(about)s.") % {"line": line, "about": about}
    if kind == ev.DemandCancelled.TYPE and demand is not None and demand.get("cancel_reason"):
        body += " " + _("Reason: %(reason)s") % {"reason": demand["cancel_reason"]}
    return Said(f"{line}: {about}", body)


def _lines(_: Gettext) -> dict[str, str]:
    return {
        ev.ClaimAccepted.TYPE: _("Your claim is accepted: you have a place"),
        ev.ClaimWaitlisted.TYPE: _("You are on the waiting list"),
        ev.ClaimPromoted.TYPE: _("A place opened: you are now accepted"),
        ev.ClaimWithdrawn.TYPE: _("Your claim is withdrawn"),
        ev.ClaimReleased.TYPE: _("Called off: you no longer have a place"),
        ev.ClaimCheckedIn.TYPE: _("Checked in on site"),
        ev.ClaimCompleted.TYPE: _("Your work is recorded as completed, thank you"),
        ev.ClaimNoShow.TYPE: _("Recorded as not there by the end of the shift"),
        ev.DemandFilled.TYPE: _("Filled: every place is taken"),
        ev.DemandReopened.TYPE: _("A place opened again"),
        ev.DemandCancelled.TYPE: _("Cancelled: do not come"),
        ev.DemandCompleted.TYPE: _("Completed"),
    }
