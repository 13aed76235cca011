"""The partitioned log with real processes: two audit replicas on four partitions, one of them
SIGKILLed midway; and a log written by the single-chain version, adopted as `default`.

Each test has its own vhost and database.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from shared.clock import as_utc
from shared.events import catalogue as c
from shared.events.envelope import CloudEvent
from shared.store.mongo import Database, Document
from tests.audit.support import (
    assert_gap_free,
    by_partition,
    event_ids,
    page_all,
    wait_for_log,
    whistle,
)
from tests.audit.test_log_e2e import QUIET_RELAY
from tests.conftest import bearer
from tests.support.events import event_of, publish
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e

DISTRICTS = ("d-east", "d-north", "d-south", "d-west")
READY_S = 120.0
FIXTURE = Path(__file__).parent / "fixtures" / "single_chain_log.json"


@pytest.fixture
async def audit_db(service_env: dict[str, str]) -> AsyncIterator[Database]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(service_env["MONGODB_URL"])
    yield client[service_env["WHISTLE_DB_PREFIX"] + "audit"]
    await client.close()


def district_story(district: str, n: int, tag: str) -> list[CloudEvent]:
    """A community registered in `district`, then demands of it cancelled (no district on
    them: audit must route them by the community)."""
    community = f"c-{district}-{tag}"
    registered = c.CommunityRegistered(
        community_id=community, name="N", street="s", district=district
    )
    story = [event_of(registered, subject=community)]
    for i in range(n - 1):
        demand = f"dem-{district}-{tag}-{i}"
        cancelled = c.DemandCancelled(demand_id=demand, community_id=community, reason="r")
        story.append(event_of(cancelled, subject=demand))
    return story


async def test_two_replicas_on_four_partitions_one_sigkilled_stay_gap_free_and_verify(
    start_service: Callable[..., ServiceProcess],
    service_env: dict[str, str],
    token: Callable[..., str],
    tmp_path: Path,
) -> None:
    checkpoint_file = tmp_path / "checkpoints.jsonl"
    common = {
        "WHISTLE_AUDIT_HEAD_LOG_EVERY": "5",
        "WHISTLE_AUDIT_CHECKPOINT_FILE": str(checkpoint_file),
        **QUIET_RELAY,
    }
    # Started together; ready waits longer than the default (a loaded machine starts slowly).
    first = start_service("audit", wait=False, **common)
    second = start_service("audit", wait=False, **common)
    first.wait_ready(timeout=READY_S)
    second.wait_ready(timeout=READY_S)
    amqp = service_env["RABBITMQ_URL"]
    auditor = token("auditor")
    # The registrations first, stored before their demands' events are sent, as in life (a
    # community is registered long before its first demand). An event racing its community's
    # registration would go to `default` (see domain/partitions.py).
    stories = {d: [district_story(d, 12, f"{n}") for n in range(2)] for d in DISTRICTS}
    registrations = [story[0] for d in DISTRICTS for story in stories[d]]
    await publish(amqp, *registrations)
    rest = [story[1:] for d in DISTRICTS for story in stories[d]]
    repeated = rest[0][:3]  # delivered twice, through another connection
    wanted = {event.id for d in DISTRICTS for story in stories[d] for event in story}
    async with httpx.AsyncClient(timeout=30) as client:
        registered = {e.id for e in registrations}
        await wait_for_log(
            client, first.url, auditor, lambda items: registered <= set(event_ids(items))
        )
        publishing = asyncio.gather(
            *(publish(amqp, *events) for events in rest), publish(amqp, *repeated)
        )
        # Kill one replica once it has stored something: its unacked deliveries go to the
        # other, which must store none of them twice and leave no partition with a gap.
        await wait_for_log(client, first.url, auditor, lambda items: len(items) >= 30)
        first.kill()
        await publishing
        items = await wait_for_log(
            client, second.url, auditor, lambda items: wanted <= set(event_ids(items))
        )
        verdict = (await client.get(f"{second.url}/v1/verify", headers=bearer(auditor))).json()
        one = (
            await client.get(
                f"{second.url}/v1/verify",
                params={"partition": "d-north", "full": "true"},
                headers=bearer(auditor),
            )
        ).json()
        partitions = (
            await client.get(f"{second.url}/v1/partitions", headers=bearer(auditor))
        ).json()
        metrics = (await client.get(f"{second.url}/metrics")).text
    [survivor_appended] = [
        float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("whistle_audit_events_appended_total")
    ]
    assert set(event_ids(items)) == wanted
    assert_gap_free(items)
    chains = by_partition(items)
    assert sorted(chains) == list(DISTRICTS)
    for district in DISTRICTS:  # every event of a district's stories is in its partition
        expected = {e.id for story in stories[district] for e in story}
        assert set(event_ids(chains[district])) == expected
    print(
        "\npartitions:",
        {name: len(chain) for name, chain in sorted(chains.items())},
        "\nverify:",
        json.dumps({k: v for k, v in verdict.items() if k != "partitions"}),
        "\nappended by the survivor:",
        survivor_appended,
    )
    # The killed replica had appended its share before it died: both wrote the partitions.
    assert 0 < survivor_appended < len(wanted)
    assert verdict["ok"] is True, verdict
    assert verdict["events"] == len(wanted)
    assert [p["partition"] for p in verdict["partitions"]] == list(DISTRICTS)
    assert all(p["head_hash"] == chains[p["partition"]][-1]["hash"] for p in verdict["partitions"])
    assert verdict["root"] == partitions["root"]
    assert (one["ok"], one["partition"], one["events"]) == (True, "d-north", 24)
    # Both replicas signed checkpoints into the one file; each holds against the log.
    lines = checkpoint_file.read_text().splitlines()
    assert lines
    cli = whistle(
        "verify", "--url", second.url, "--token", auditor, "--checkpoints", str(checkpoint_file)
    )
    print(cli.stdout)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert cli.stdout.startswith(f"ok: {len(wanted)} events in 4 partitions, root ")
    assert "checkpoints ok" in cli.stdout


def _as_stored(document: dict[str, Any]) -> dict[str, Any]:
    stored = dict(document)
    for name in ("at", "received_at"):
        if isinstance(stored.get(name), str):
            stored[name] = as_utc(datetime.fromisoformat(stored[name]))
    return stored


async def test_a_log_of_the_single_chain_version_is_partition_default_and_still_verifies(
    start_service: Callable[..., ServiceProcess],
    service_env: dict[str, str],
    token: Callable[..., str],
    audit_db: Database,
    tmp_path: Path,
) -> None:
    # Written by main at 8eac29a (single chain; see tests/audit/fixtures): records with
    # `_id` = seq, one head `head`, and a checkpoint line of format 1.
    written = json.loads(FIXTURE.read_text())
    await audit_db["events"].insert_many([_as_stored(r) for r in written["events"]])
    await audit_db["log_head"].insert_many(written["log_head"])
    old_checkpoints = tmp_path / "old-checkpoints.jsonl"
    old_checkpoints.write_text("\n".join(written["checkpoints"]) + "\n")
    old = len(written["events"])

    audit = start_service("audit", wait=False, **QUIET_RELAY).wait_ready(timeout=READY_S)
    auditor = token("auditor")
    legacy_demand = next(r["demand_id"] for r in written["events"] if r["demand_id"])
    legacy_community = written["events"][0]["community_id"]
    # New events: a legacy demand's (its story stays in `default`) and a new community's.
    completed = c.DemandCompleted(demand_id=legacy_demand, community_id=legacy_community)
    fresh = district_story("d-new", 3, "x")
    news = [event_of(completed, subject=legacy_demand), *fresh]
    await publish(service_env["RABBITMQ_URL"], *news)
    async with httpx.AsyncClient(timeout=30) as client:
        items = await wait_for_log(
            client, audit.url, auditor, lambda items: len(items) == old + len(news)
        )
        verdict = (await client.get(f"{audit.url}/v1/verify", headers=bearer(auditor))).json()
        state = (
            await client.get(
                f"{audit.url}/v1/demands/{legacy_demand}/state", headers=bearer(auditor)
            )
        ).json()
        timeline = (
            await client.get(f"{audit.url}/v1/timeline/{legacy_demand}", headers=bearer(auditor))
        ).json()
        default = await page_all(client, audit.url, auditor, partition="default")
    assert_gap_free(items)
    chains = by_partition(items)
    assert sorted(chains) == ["d-new", "default"]
    assert [i["seq"] for i in default] == list(range(1, old + 2))
    assert [i["hash"] for i in default[:old]] == [r["hash"] for r in written["events"]]
    assert default[-1]["event"]["id"] == news[0].id  # the old demand's story stays whole
    assert set(event_ids(chains["d-new"])) == {e.id for e in fresh}
    assert verdict["ok"] is True, verdict
    assert verdict["events"] == old + len(news)
    assert (state["status"], state["events"]) == ("completed", 3)
    assert timeline["partition"] == "default"
    assert len(timeline["items"]) == 3
    # The format 1 checkpoint the old version signed still holds.
    cli = whistle(
        "verify", "--url", audit.url, "--token", auditor, "--checkpoints", str(old_checkpoints)
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "checkpoints ok: 1 signed checkpoints hold" in cli.stdout
    # Tampering with an adopted record is caught in partition default.
    await audit_db["events"].update_one({"_id": 2}, {"$set": {"event.data.title": "Forged"}})
    bad = whistle("verify", "--full", "--url", audit.url, "--token", auditor)
    assert bad.returncode == 1
    assert "TAMPERED: partition default: first bad seq 2" in bad.stdout
