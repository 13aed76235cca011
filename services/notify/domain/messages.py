"""What a notification says: a short title and a line of text a busy person reads on a phone."""

from datetime import datetime

from services.notify.domain.model import Demand
from shared.events import catalogue as ev
from shared.events.catalogue import ClaimData, EventData, Recipient


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")


def _about(demand: Demand | None, demand_id: str) -> str:
    return f"'{demand.title}'" if demand is not None else f"demand {demand_id}"


def published(demand: Demand) -> tuple[str, str]:
    urgency = "" if demand.priority == "routine" else f"[{demand.priority}] "
    open_slots = demand.slots - demand.filled
    return (
        f"{urgency}Whistle: {demand.title}",
        f"{open_slots} of {demand.slots} people needed from {_when(demand.starts_at)} "
        f"to {_when(demand.ends_at)}; claim by {_when(demand.fill_by)}.",
    )


def realert(demand: Demand) -> tuple[str, str]:
    return (
        f"Still needed: {demand.title}",
        f"{demand.filled} of {demand.slots} places taken; the shift starts "
        f"{_when(demand.starts_at)} and the call closes {_when(demand.fill_by)}.",
    )


def escalated(demand: Demand | None, demand_id: str, to: Recipient) -> tuple[str, str]:
    about = _about(demand, demand_id)
    return (
        f"Escalated to {to.type} {to.id}: {about}",
        f"{about} was not filled in time and now reaches the {to.type} level.",
    )


def reminder(demand: Demand) -> tuple[str, str]:
    return (
        f"Reminder: {demand.title} starts {_when(demand.starts_at)}",
        f"Your shift '{demand.title}' starts at {_when(demand.starts_at)}. "
        "Withdraw now if you cannot come, so someone else can.",
    )


_CLAIM_LINES: dict[type[ClaimData], str] = {
    ev.ClaimAccepted: "Your claim is accepted: you have a place",
    ev.ClaimWaitlisted: "You are on the waiting list",
    ev.ClaimPromoted: "A place opened: you are now accepted",
    ev.ClaimWithdrawn: "Your claim is withdrawn",
    ev.ClaimReleased: "Called off: you no longer have a place",
    ev.ClaimCheckedIn: "Checked in on site",
    ev.ClaimCompleted: "Your work is recorded as completed, thank you",
    ev.ClaimNoShow: "Recorded as not there by the end of the shift",
}

_DEMAND_LINES: dict[type[EventData], str] = {
    ev.DemandFilled: "Filled: every place is taken",
    ev.DemandCancelled: "Cancelled: do not come",
    ev.DemandCompleted: "Completed",
}


def about_claim(model: type[ClaimData], demand: Demand | None, demand_id: str) -> tuple[str, str]:
    line = _CLAIM_LINES.get(model, model.TYPE)
    about = _about(demand, demand_id)
    return f"{line}: {about}", f"{line} for {about}."


def about_demand(
    model: type[EventData], demand: Demand | None, demand_id: str, detail: str | None = None
) -> tuple[str, str]:
    line = _DEMAND_LINES.get(model, model.TYPE)
    about = _about(demand, demand_id)
    body = f"{line}: {about}." + (f" {detail}" if detail else "")
    return f"{line}: {about}", body


def no_show_for_secretary(demand: Demand | None, demand_id: str, who: str) -> tuple[str, str]:
    about = _about(demand, demand_id)
    return f"No-show on {about}", f"{who} did not check in on {about} by the end of the shift."
