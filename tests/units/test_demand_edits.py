"""A secretary's edit (`demand.updated`) reaching a real units process over the real broker:
more slots move the waitlist up into them, and an edit that overtakes its demand's
publication is applied when the demand arrives."""

import pytest

from shared.clock import utcnow
from shared.events.catalogue import DemandUpdated
from tests.support.events import event_of, publish
from tests.units.support import UnitsWorld, wait_until

pytestmark = pytest.mark.e2e


def edit(demand_id: str, community_id: str, version: int, *, slots: int) -> DemandUpdated:
    return DemandUpdated(
        demand_id=demand_id,
        community_id=community_id,
        version=version,
        changed=("title", "slots"),
        title="North gate, both lanes",
        slots=slots,
        priority="urgent",
        fill_by=utcnow(),
    )


async def test_more_slots_promote_the_waitlist(world: UnitsWorld) -> None:
    community = await world.community()
    demand = await world.demand(community, slots=1)
    first, second = await world.volunteer(community), await world.volunteer(community)
    assert (await world.claim(first.token, demand)).status_code == 201
    waiting = await world.claim(second.token, demand, waitlist=True)
    assert waiting.json()["status"] == "waitlisted"

    data = edit(demand, community, 2, slots=2)
    await publish(world.rabbitmq_url, event_of(data, subject=demand))

    async def claim() -> str:
        status: str = (await world.get_claim(waiting.json()["id"]))["status"]
        return status

    assert await wait_until(claim, lambda status: status == "accepted") == "accepted"
    document = await world.demand_document(demand)
    assert (document["slots"], document["accepted"], document["title"]) == (
        2,
        2,
        "North gate, both lanes",
    )


async def test_an_edit_ahead_of_its_demand_waits_for_it(world: UnitsWorld) -> None:
    community = await world.community()
    demand_id = f"dem_early_{community}"
    data = edit(demand_id, community, 3, slots=4)
    await publish(world.rabbitmq_url, event_of(data, subject=demand_id))

    async def kept() -> int:
        async with world.database() as db:
            count: int = await db["early_edits"].count_documents({"_id": demand_id})
            return count

    assert await wait_until(kept, lambda count: count == 1) == 1
    await world.demand(community, slots=1, demand_id=demand_id)
    document = await world.demand_document(demand_id)
    assert (document["slots"], document["edit_version"]) == (4, 3)
