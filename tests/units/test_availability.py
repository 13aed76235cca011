"""A demand's `availability` (room, full, closed) moves with every update of its status,
accepted places and slots, so the open-demands page asks one indexed field; demands stored
before the field existed get it at start-up. On the real Mongo wire server."""

from datetime import timedelta

import pytest

from services.units.adapters import repository
from services.units.domain.model import Demand
from shared.clock import utcnow
from shared.events.catalogue import DemandUpdated
from shared.runtime import ServiceRuntime
from shared.store.unit_of_work import Tx

pytestmark = pytest.mark.broker


@pytest.fixture
def runtime(units_store: ServiceRuntime) -> ServiceRuntime:
    return units_store


def demand(demand_id: str, slots: int = 2) -> Demand:
    starts = utcnow() + timedelta(days=1)
    return Demand(
        id=demand_id,
        community_id="c-a",
        street="s-a",
        district="d-a",
        kind="task",
        title="Sandbags to the river gate",
        skills=(),
        slots=slots,
        starts_at=starts,
        ends_at=starts + timedelta(hours=2),
        fill_by=starts,
        priority="urgent",
    )


async def stored(runtime: ServiceRuntime, demand_id: str) -> tuple[str, int, int]:
    document = await runtime.db[repository.DEMANDS].find_one({"_id": demand_id})
    assert document is not None
    return document["availability"], document["accepted"], document["slots"]


async def open_ids(runtime: ServiceRuntime) -> list[str]:
    found = await repository.open_demands(
        runtime.db, scopes=None, community_ids=None, skill=None, now=utcnow()
    )
    return [each.id for each, _ in found]


async def take(runtime: ServiceRuntime, demand_id: str, headcount: int) -> Demand | None:
    async def work(tx: Tx) -> Demand | None:
        current = await repository.get_demand(tx.db, demand_id, tx)
        assert current is not None
        return await repository.take_slots(tx, current, headcount)

    return await runtime.uow.run(work)


def edit(demand_id: str, version: int, slots: int, title: str = "Sandbags") -> DemandUpdated:
    base = demand(demand_id)
    return DemandUpdated(
        demand_id=demand_id,
        community_id=base.community_id,
        version=version,
        changed=("slots", "title"),
        title=title,
        slots=slots,
        priority="urgent",
        skills=(),
        fill_by=base.fill_by,
    )


async def test_availability_follows_every_take_give_back_edit_and_closure(
    runtime: ServiceRuntime,
) -> None:
    async def insert(tx: Tx) -> None:
        await repository.insert_demand(tx, demand("dem_av1"), "1234")

    await runtime.uow.run(insert)
    assert await stored(runtime, "dem_av1") == ("room", 0, 2)
    assert await open_ids(runtime) == ["dem_av1"]

    assert await take(runtime, "dem_av1", 1) is not None
    assert await stored(runtime, "dem_av1") == ("room", 1, 2)
    assert await take(runtime, "dem_av1", 2) is None  # one place left, two asked: nothing taken
    assert await stored(runtime, "dem_av1") == ("room", 1, 2)
    taken = await take(runtime, "dem_av1", 1)
    assert taken is not None
    assert taken.accepted == 2
    assert await stored(runtime, "dem_av1") == ("full", 2, 2)
    assert await open_ids(runtime) == []

    async def give_back(tx: Tx) -> None:
        await repository.give_back_slots(tx, "dem_av1", 1)

    await runtime.uow.run(give_back)
    assert await stored(runtime, "dem_av1") == ("room", 1, 2)
    assert await open_ids(runtime) == ["dem_av1"]

    async def apply(tx: Tx, update: DemandUpdated) -> Demand | None:
        return await repository.apply_edit(tx, update)

    # Down to one place: full again; then three, with a title an expression would misread.
    await runtime.uow.run(lambda tx: apply(tx, edit("dem_av1", 2, slots=1)))
    assert await stored(runtime, "dem_av1") == ("full", 1, 1)
    after = await runtime.uow.run(lambda tx: apply(tx, edit("dem_av1", 3, 3, title="$5 tools")))
    assert after is not None
    assert (after.title, after.slots) == ("$5 tools", 3)
    assert await stored(runtime, "dem_av1") == ("room", 1, 3)

    async def close(tx: Tx) -> None:
        assert await repository.close_demand(tx, "dem_av1", "cancelled") is not None

    await runtime.uow.run(close)
    assert await stored(runtime, "dem_av1") == ("closed", 1, 3)
    assert await take(runtime, "dem_av1", 1) is None
    assert await open_ids(runtime) == []


async def test_slots_edited_since_the_read_take_nothing(runtime: ServiceRuntime) -> None:
    async def insert(tx: Tx) -> None:
        await repository.insert_demand(tx, demand("dem_av2", slots=3), "1234")

    await runtime.uow.run(insert)
    read_before = demand("dem_av2", slots=3)
    await runtime.uow.run(lambda tx: repository.apply_edit(tx, edit("dem_av2", 2, slots=1)))

    async def stale(tx: Tx) -> Demand | None:
        return await repository.take_slots(tx, read_before, 2)

    assert await runtime.uow.run(stale) is None  # two of three, but only one place is left
    assert await stored(runtime, "dem_av2") == ("room", 0, 1)


async def test_demands_stored_before_availability_get_it_at_start_up(
    runtime: ServiceRuntime,
) -> None:
    base = repository._document(demand("dem_old"))
    base["priority_rank"] = 1
    older = [
        {**base, "_id": "dem_old_room", "accepted": 1},
        {**base, "_id": "dem_old_full", "accepted": 2},
        {**base, "_id": "dem_old_done", "status": "completed"},
    ]
    await runtime.db[repository.DEMANDS].insert_many(older)

    await repository.ensure_indexes(runtime.db)

    assert await stored(runtime, "dem_old_room") == ("room", 1, 2)
    assert await stored(runtime, "dem_old_full") == ("full", 2, 2)
    assert (await stored(runtime, "dem_old_done"))[0] == "closed"
    assert await open_ids(runtime) == ["dem_old_room"]
