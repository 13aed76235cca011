"""What a volunteer sees before claiming: the fatigue limits that apply to them, what this
shift counts toward them (night hours weighted), and whether a claim now would be refused and
why. The same rules the claim applies (`commands._time_refusal`, the exposure rule), read
without a transaction: the claim itself still decides, atomically."""

from dataclasses import dataclass
from datetime import tzinfo

from services.units.adapters import repository
from services.units.domain import refusals as no
from services.units.domain import rules
from services.units.domain.model import Volunteer
from services.units.handlers import queries
from services.units.handlers.commands import _time_refusal
from shared.auth import Principal
from shared.events.catalogue import Claimant
from shared.http.problems import not_found
from shared.store.mongo import Database


@dataclass(frozen=True)
class Fitness:
    volunteer: Volunteer
    limits: rules.FatigueLimits
    hours: float  # the shift's clock hours
    weighted_hours: float  # what it counts toward the caps (night hours x NIGHT_WEIGHT)
    night_hours: float
    refusal: no.Refusal | None  # what a claim now would be refused with, if anything


async def fitness(db: Database, principal: Principal, demand_id: str, zone: tzinfo) -> Fitness:
    if principal.volunteer is None:
        # An admin passes the role check, but has no limits of their own to read.
        raise no.Forbidden("the limits before a claim are read by the volunteer themselves")
    volunteer = await queries.volunteer_record(db, principal.volunteer)
    demand = await repository.get_demand(db, demand_id)
    if demand is None:
        raise not_found("demand", demand_id)
    communities = await repository.get_communities(db, (volunteer.community_id,))
    limits = rules.limits_of(volunteer, communities[0] if communities else None)
    window = rules.window_of(demand)
    claimant = Claimant(type="volunteer", id=volunteer.id)
    committed = [
        claim
        for claim in await repository.committed_near(
            db, claimant, window, rules.rules_reach(limits)
        )
        if claim.demand_id != demand.id
    ]
    refusal: no.Refusal | None = _time_refusal(window, committed, volunteer, limits, zone)
    if refusal is None and not rules.may_take_exposure(volunteer, demand):
        refusal = no.NotEligible(demand, rules.HIGH_EXPOSURE_RULE)
    hours = window.hours_within(window.starts_at, window.ends_at)
    weighted = rules.weighted_hours(window, window.starts_at, window.ends_at, zone)
    night = (weighted - hours) / (rules.NIGHT_WEIGHT - 1)
    return Fitness(volunteer, limits, round(hours, 2), round(weighted, 2), round(night, 2), refusal)
