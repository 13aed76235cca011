"""Who hears what, against the real broker and a running notify."""

import asyncio
from datetime import timedelta

import pytest

from shared.clock import utcnow
from shared.events.catalogue import ClaimAccepted, ClaimNoShow, ClaimReleased, ClaimWaitlisted
from tests.notify import scenario as s
from tests.notify.receivers import eventually
from tests.notify.scenario import Notify
from tests.support.events import publish

pytestmark = pytest.mark.e2e


async def test_each_event_reaches_exactly_the_people_it_concerns(
    notify: Notify, rabbitmq: str
) -> None:
    c, far = s.uid("c"), s.uid("c")
    street, district = s.uid("s"), s.uid("d")
    u_aid, u_tutor, u_far = s.uid("u"), s.uid("u"), s.uid("u")
    v_aid, v_cook, v_far = s.uid("v"), s.uid("v"), s.uid("v")
    registry = [
        s.community(c, street, district),
        s.community(far),
        s.unit(u_aid, [c, far], ["First Aid"]),
        s.unit(u_tutor, [c], ["tutoring"]),
        s.unit(u_far, [far], ["first aid"]),
        s.volunteer(v_aid, c, ["first aid", "driving"]),
        s.volunteer(v_cook, c, ["cooking"]),
        s.volunteer(v_far, far, ["first aid"]),
    ]
    await publish(rabbitmq, *registry)
    await notify.processed(*registry)

    routine, critical = s.uid("dem"), s.uid("dem")
    whistles = [
        s.published(routine, c, ["first aid"]),
        s.published(critical, c, ["rare skill"], priority="critical"),
    ]
    await publish(rabbitmq, *whistles)
    await notify.processed(*whistles)

    def demands(items: list[dict[str, object]]) -> set[object]:
        return {item["demand_id"] for item in items}

    assert demands((await notify.inbox(f"unit:{u_aid}"))["items"]) == {routine, critical}
    assert demands((await notify.inbox(f"volunteer:{v_aid}"))["items"]) == {routine, critical}
    # Skills do not cover the routine demand: only the critical one reaches them.
    assert demands((await notify.inbox(f"unit:{u_tutor}"))["items"]) == {critical}
    assert demands((await notify.inbox(f"volunteer:{v_cook}"))["items"]) == {critical}
    # Another community's people hear nothing of it.
    assert (await notify.inbox(f"unit:{u_far}"))["items"] == []
    assert (await notify.inbox(f"volunteer:{v_far}"))["items"] == []

    accepted_claim = s.uid("clm")
    claims = [
        s.claim(ClaimAccepted, routine, c, ("volunteer", v_aid), claim_id=accepted_claim),
        s.claim(ClaimWaitlisted, routine, c, ("unit", u_aid)),
        s.claim(ClaimAccepted, critical, c, ("unit", u_tutor), claim_id=s.uid("clm")),
    ]
    await publish(rabbitmq, *claims)
    await notify.processed(*claims)
    no_show = s.claim(ClaimNoShow, critical, c, ("unit", u_tutor))
    later = [
        s.filled(routine, c),
        s.escalated(critical, c, "street", street),
        s.escalated(critical, c, "district", district),
        no_show,
    ]
    await publish(rabbitmq, *later)
    await notify.processed(*later)
    # The cancellation is said twice (the demand, then its released claim): heard once.
    cancel = s.cancelled(routine, c)
    await publish(rabbitmq, cancel)
    await notify.processed(cancel)
    release = s.claim(ClaimReleased, routine, c, ("volunteer", v_aid), claim_id=accepted_claim)
    await publish(rabbitmq, release)
    await notify.processed(release)

    assert sorted(await notify.kinds(f"volunteer:{v_aid}")) == [
        "claim.accepted",
        "demand.cancelled",
        "demand.published",
        "demand.published",
    ]
    # Waitlisted: it held no place, so the cancellation is not its concern.
    assert sorted(await notify.kinds(f"unit:{u_aid}")) == [
        "claim.waitlisted",
        "demand.published",
        "demand.published",
    ]
    assert sorted(await notify.kinds(f"unit:{u_tutor}")) == [
        "claim.accepted",
        "claim.no_show",
        "demand.published",
    ]
    assert sorted(await notify.kinds(f"office:{c}")) == [
        "claim.no_show",
        "demand.escalated",
        "demand.escalated",
        "demand.filled",
    ]
    assert await notify.kinds(f"office:{street}") == ["demand.escalated"]
    assert await notify.kinds(f"office:{district}") == ["demand.escalated"]
    street_item = (await notify.inbox(f"office:{street}"))["items"][0]
    assert street_item["recipient"] == {"type": "street", "id": street}
    assert street_item["demand_id"] == critical


async def test_a_registration_handled_after_a_later_whistle_still_hears_it_once(
    notify: Notify, rabbitmq: str
) -> None:
    c, unit, early, late = s.uid("c"), s.uid("u"), s.uid("v"), s.uid("v")
    registered_at = utcnow() - timedelta(seconds=1)
    # Registered before the whistle, but (consumed concurrently) handled after it.
    before = [
        s.unit(unit, [c], ["first aid"]).model_copy(update={"time": registered_at}),
        s.volunteer(early, c, ["first aid"]).model_copy(update={"time": registered_at}),
    ]
    whistle = s.published(s.uid("dem"), c, ["first aid"])
    # Registered after the whistle: the whistle was not for them.
    after = s.volunteer(late, c, ["first aid"]).model_copy(
        update={"time": whistle.time + timedelta(seconds=1)}
    )
    first = [s.community(c), whistle]
    await publish(rabbitmq, *first)
    await notify.processed(*first)
    await publish(rabbitmq, *before, after)
    await notify.processed(*before, after)
    await publish(rabbitmq, whistle)  # a redelivered whistle changes nothing

    for owner in (f"unit:{unit}", f"volunteer:{early}"):
        [item] = (await notify.inbox(owner))["items"]
        assert item["kind"] == "demand.published"
        assert item["cause_event_id"] == whistle.id
    assert (await notify.inbox(f"volunteer:{late}"))["items"] == []
    alerts = await notify.db["alerts"].find_one({"_id": f"{whistle.data['demand_id']}:{early}"})
    assert alerts is not None
    assert alerts["count"] == 1


async def test_a_critical_demand_fans_out_in_bounded_batches_each_person_once(
    notify: Notify, rabbitmq: str
) -> None:
    c = s.uid("c")
    people = [s.uid("v") for _ in range(11)]
    registry = [s.community(c), *(s.volunteer(person, c, ["cooking"]) for person in people)]
    await publish(rabbitmq, *registry)
    await notify.processed(*registry)
    demand = s.uid("dem")
    whistle = s.published(demand, c, ["rare skill"], priority="critical")
    await publish(rabbitmq, whistle, whistle)  # and once more: still once each
    await notify.processed(whistle)

    async def all_told() -> bool:
        return await notify.db["notifications"].count_documents({"demand_id": demand}) >= 11

    await eventually(all_told, timeout=15)
    await asyncio.sleep(0.5)  # nothing more arrives
    stored = await notify.db["notifications"].find({"demand_id": demand}).to_list(None)
    assert sorted(n["recipient"]["id"] for n in stored) == sorted(people)
    # The event's own transaction told the first 4 (WHISTLE_FANOUT_BATCH); two stored
    # batches, each its own transaction, told 4 and 3.
    batches = await notify.db["timers"].find({"kind": "notify.fanout"}).to_list(None)
    batches = [b for b in batches if b["payload"]["cause"]["demand_id"] == demand]
    assert sorted(len(b["payload"]["notices"]) for b in batches) == [3, 4]
    assert {b["state"] for b in batches} == {"fired"}
    alerts = await notify.db["alerts"].find({"demand_id": demand}).to_list(None)
    assert sorted(a["count"] for a in alerts) == [1] * 11
