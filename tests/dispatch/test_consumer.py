"""Dispatch's consumer, each case written once and run twice: in memory (TestRabbitBroker) and
on the real RabbitMQ, with dispatch's real consumer map and the embedded MongoDB: units'
facts move a demand, a redelivery changes nothing, registrations set the reach, and data that
cannot be read is dead-lettered without a change."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from services.dispatch.adapters import reach, repository
from services.dispatch.config import DispatchSettings
from services.dispatch.domain.commands import PublishDemand, RegisterCommunity
from services.dispatch.domain.model import Demand
from services.dispatch.entrypoints import events
from services.dispatch.handlers import commands
from shared.auth import Principal, Role
from shared.events.catalogue import (
    ClaimAccepted,
    Claimant,
    ClaimWithdrawn,
    DemandFilled,
    UnitRegistered,
    VolunteerRegistered,
)
from shared.events.envelope import CloudEvent
from shared.runtime import ServiceRuntime
from shared.store.unit_of_work import Cause
from tests.dispatch.support import demand_body
from tests.support.brokers import Brokers
from tests.support.events import event_of

COMMUNITY = "c-consumer"
ADMIN = Principal(sub="admin", role=Role.ADMIN)


@dataclass
class Dispatch:
    runtime: ServiceRuntime
    brokers: Brokers
    demand: Demand

    async def deliver(self, event: CloudEvent | bytes, routing_key: str | None = None) -> None:
        await self.brokers.deliver(
            self.runtime.broker, event, to=self.runtime.consumers, routing_key=routing_key
        )

    async def current(self) -> Demand:
        demand = await repository.get_demand(self.runtime.db, self.demand.id)
        assert demand is not None
        return demand


@pytest.fixture
async def dispatch(brokers: Brokers, mongodb_url: str) -> AsyncIterator[Dispatch]:
    settings = DispatchSettings(
        env="development",
        rabbitmq_url=brokers.url,
        mongodb_url=mongodb_url,
        db_prefix=f"t{uuid.uuid4().hex[:10]}_",
    )
    runtime = ServiceRuntime("dispatch", settings)
    events.register_consumers(runtime, settings)
    cause = Cause.of_request("dispatch", ADMIN.sub)
    community = RegisterCommunity(id=COMMUNITY, name="C", street="s-c", district="d-c")
    await runtime.uow.run(lambda tx: commands.register_community(tx, community, ADMIN), cause=cause)
    whistle = PublishDemand.model_validate(demand_body(COMMUNITY, slots=3))
    demand = await runtime.uow.run(
        lambda tx: commands.publish_demand(tx, whistle, ADMIN), cause=cause
    )
    async with brokers.running(runtime.broker):
        yield Dispatch(runtime, brokers, demand)
    await runtime.client.close()


def _claim(demand: Demand, claim_id: str, headcount: int) -> dict[str, Any]:
    return {
        "claim_id": claim_id,
        "demand_id": demand.id,
        "community_id": demand.community_id,
        "claimant": Claimant(type="volunteer", id=f"vol-{claim_id}"),
        "headcount": headcount,
    }


def _accepted(demand: Demand, claim_id: str, headcount: int, filled: int) -> CloudEvent:
    data = ClaimAccepted(**_claim(demand, claim_id, headcount), filled=filled, slots=demand.slots)
    return event_of(data, subject=demand.id, source="/whistle/units", actor="units")


async def test_units_facts_fill_the_demand_and_a_withdrawal_reopens_it(
    dispatch: Dispatch,
) -> None:
    demand = dispatch.demand
    await dispatch.deliver(_accepted(demand, "a", 3, filled=3))
    filled = await dispatch.current()
    assert (filled.filled, filled.status) == (3, "filled")
    withdrawn = ClaimWithdrawn(**_claim(demand, "a", 3), filled=0, slots=demand.slots)
    await dispatch.deliver(event_of(withdrawn, subject=demand.id))
    reopened = await dispatch.current()
    assert (reopened.filled, reopened.status) == (0, "open")


async def test_a_redelivered_fact_changes_nothing(dispatch: Dispatch) -> None:
    event = _accepted(dispatch.demand, "a", 1, filled=1)
    await dispatch.deliver(event)
    once = await dispatch.current()
    await dispatch.deliver(event)
    assert await dispatch.current() == once
    assert once.filled == 1


async def test_registrations_set_who_reads_which_community(dispatch: Dispatch) -> None:
    unit = UnitRegistered(unit_id="u-1", name="School", kind="school", communities=(COMMUNITY,))
    volunteer = VolunteerRegistered(volunteer_id="v-1", community_id=COMMUNITY)
    await dispatch.deliver(event_of(unit, subject="u-1"))
    await dispatch.deliver(event_of(volunteer, subject="v-1"))
    db = dispatch.runtime.db
    as_unit = Principal(sub="u", role=Role.UNIT, unit="u-1")
    as_volunteer = Principal(sub="v", role=Role.VOLUNTEER, volunteer="v-1")
    assert await reach.communities_of(db, as_unit) == (COMMUNITY,)
    assert await reach.communities_of(db, as_volunteer) == (COMMUNITY,)


@pytest.mark.parametrize("case", ["data that does not fit", "a newer dataversion"])
async def test_unreadable_data_is_set_aside_and_changes_nothing(
    dispatch: Dispatch, case: str
) -> None:
    demand = dispatch.demand
    good = event_of(
        DemandFilled(
            demand_id=demand.id, community_id=demand.community_id, filled=3, slots=demand.slots
        ),
        subject=demand.id,
    )
    if case == "data that does not fit":
        bad = good.model_copy(update={"data": {**good.data, "filled": "three"}})
    else:
        bad = good.model_copy(update={"dataversion": DemandFilled.DATAVERSION + 1})
    before = await dispatch.current()
    await dispatch.deliver(bad)
    assert await dispatch.current() == before
    # The consumer goes on: the readable fact after it applies.
    await dispatch.deliver(good)
    assert (await dispatch.current()).status == "filled"
