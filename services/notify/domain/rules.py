"""Notify's decisions, as pure functions: who hears of what, that each hears it once, and
when a failed delivery is tried again.

Identities: a unit and a volunteer by their ids; the secretary of community C by C; the
street or district an escalation reaches by the street or district id.
"""

import hashlib
import random
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from services.notify.domain.model import HOLDING, Channel, Claim, Demand, Unit, Volunteer
from shared.clock import as_utc
from shared.events.catalogue import Claimant, Level, Recipient

# Alert fatigue is real: a person hears of one demand's call for help at most twice.
MAX_ALERTS_PER_DEMAND = 2


def normalise_skill(skill: str) -> str:
    return " ".join(skill.split()).casefold()


def skills_cover(have: Iterable[str], need: Iterable[str]) -> bool:
    return {normalise_skill(s) for s in need} <= {normalise_skill(s) for s in have}


def _matches(demand: Demand, skills: Iterable[str]) -> bool:
    # A critical demand goes to everyone who serves the community, whatever their skills.
    return demand.priority == "critical" or skills_cover(skills, demand.skills)


def matching_units(demand: Demand, units: Iterable[Unit]) -> list[Unit]:
    return [
        unit
        for unit in units
        if demand.community_id in unit.communities and _matches(demand, unit.skills)
    ]


def matching_volunteers(demand: Demand, volunteers: Iterable[Volunteer]) -> list[Volunteer]:
    return [
        volunteer
        for volunteer in volunteers
        if volunteer.community_id == demand.community_id and _matches(demand, volunteer.skills)
    ]


def unit(unit_id: str) -> Recipient:
    return Recipient(type="unit", id=unit_id)


def volunteer(volunteer_id: str) -> Recipient:
    return Recipient(type="volunteer", id=volunteer_id)


def secretary(community_id: str) -> Recipient:
    return Recipient(type="secretary", id=community_id)


def claimant(who: Claimant) -> Recipient:
    return Recipient(type=who.type, id=who.id)


def for_published(
    demand: Demand, units: Iterable[Unit], volunteers: Iterable[Volunteer]
) -> list[Recipient]:
    """The whistle: units serving the community and its volunteers whose skills cover it."""
    return [unit(u.id) for u in matching_units(demand, units)] + [
        volunteer(v.id) for v in matching_volunteers(demand, volunteers)
    ]


def for_realert(
    demand: Demand,
    volunteers: Iterable[Volunteer],
    alerts: Mapping[str, int],
    claimant_ids: Iterable[str],
) -> list[Recipient]:
    """Still unfilled at half time: matching volunteers not yet alerted twice.

    `alerts` counts the alerts each volunteer already had for this demand; volunteers who
    already claimed it have answered and are left alone.
    """
    if not demand.unfilled:
        return []
    answered = set(claimant_ids)
    return [
        volunteer(v.id)
        for v in matching_volunteers(demand, volunteers)
        if v.id not in answered and alerts.get(v.id, 0) < MAX_ALERTS_PER_DEMAND
    ]


def for_escalation(community_id: str, to_level: Level, target: str) -> list[Recipient]:
    """The secretary hears the whistle went up; the street or district it reached hears it."""
    recipients = [secretary(community_id)]
    if to_level in ("street", "district"):
        recipients.append(Recipient(type=to_level, id=target))
    return recipients


def holders(claims: Iterable[Claim]) -> list[Recipient]:
    """Everyone who held a place on the demand (they must not cross a city for nothing)."""
    seen: dict[tuple[str, str], Recipient] = {}
    for claim in claims:
        if claim.status in HOLDING:
            recipient = claimant(claim.claimant)
            seen.setdefault((recipient.type, recipient.id), recipient)
    return list(seen.values())


def owner_key(recipient: Recipient) -> str:
    """Whose inbox: a unit, a volunteer, or an office (a community, street or district)."""
    if recipient.type in ("unit", "volunteer"):
        return f"{recipient.type}:{recipient.id}"
    return f"office:{recipient.id}"


# --- once: deterministic identities, so a redelivered or repeated cause never notifies twice


def notification_id(dedupe_key: str, recipient: Recipient) -> str:
    digest = hashlib.sha256(f"{dedupe_key}\x1f{recipient.type}\x1f{recipient.id}".encode())
    return f"ntf_{digest.hexdigest()[:32]}"


def delivery_id(notification: str, channel: Channel) -> str:
    return f"{notification}:{channel}"


def cancellation_key(demand_id: str) -> str:
    # `demand.cancelled` and each `claim.released` announce one fact: tell each holder once.
    return f"cancelled:{demand_id}"


def reminder_key(claim_id: str) -> str:
    return f"reminder:{claim_id}"


def realert_key(demand_id: str) -> str:
    return f"realert:{demand_id}"


def reminder_due(demand: Demand, lead: timedelta, now: datetime) -> datetime | None:
    """When to remind a claimant of the shift; None when the acceptance was the reminder
    (accepted within the lead time)."""
    due = as_utc(demand.starts_at) - lead
    return due if due > now else None


def realert_at(demand: Demand) -> datetime | None:
    """Half of the time to `fill_by`: late enough to see who answered, early enough to act."""
    published_at, fill_by = as_utc(demand.published_at), as_utc(demand.fill_by)
    if fill_by <= published_at:
        return None
    return published_at + (fill_by - published_at) / 2


# --- retries: exponential backoff with full jitter, then give up -------------------------


def next_attempt_at(
    now: datetime,
    attempts: int,
    *,
    base_s: float,
    max_s: float,
    rng: random.Random | None = None,
) -> datetime:
    """After `attempts` failures: wait a random time up to base * 2^(attempts-1), capped.

    Full jitter spreads the retries of many deliveries to one receiver that comes back.
    Half of the ceiling is kept as a floor so that retries never come back immediately.
    """
    ceiling = min(max_s, base_s * 2 ** max(0, attempts - 1))
    draw = (rng or random).uniform(ceiling / 2, ceiling)
    return now + timedelta(seconds=draw)


def exhausted(attempts: int, max_attempts: int) -> bool:
    return attempts >= max_attempts
