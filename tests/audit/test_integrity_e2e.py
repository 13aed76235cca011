"""Two audit processes on one log, one killed mid-stream; verify; tampering behind its back.

Each test has its own vhost and database, so it can edit the stored records directly.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from pymongo import AsyncMongoClient

from shared.store.mongo import Database, Document
from tests.audit.support import assert_gap_free, event_ids, page_all, wait_for_log, whistle
from tests.audit.test_log_e2e import QUIET_RELAY, fresh
from tests.conftest import bearer
from tests.support.events import publish
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
async def audit_db(service_env: dict[str, str]) -> AsyncIterator[Database]:
    """The audit service's own database, opened directly: the way a tamperer would."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(service_env["MONGODB_URL"])
    yield client[service_env["WHISTLE_DB_PREFIX"] + "audit"]
    await client.close()


async def test_two_recorders_one_killed_leave_one_gap_free_chain_that_verifies(
    start_service: Callable[..., ServiceProcess],
    service_env: dict[str, str],
    token: Callable[..., str],
) -> None:
    first = start_service("audit", WHISTLE_AUDIT_HEAD_LOG_EVERY="10", **QUIET_RELAY)
    second = start_service("audit", WHISTLE_AUDIT_HEAD_LOG_EVERY="10", **QUIET_RELAY)
    amqp = service_env["RABBITMQ_URL"]
    auditor = token("auditor")
    batches = [fresh(10, f"q{n}") for n in range(4)]
    repeated = batches[0][:3]  # delivered twice, through other connections
    publishing = asyncio.gather(
        *(publish(amqp, *batch) for batch in batches), publish(amqp, *repeated)
    )
    async with httpx.AsyncClient(timeout=30) as client:
        # Kill one recorder as soon as it has stored something: its unacked deliveries
        # go to the other, which must not store any event twice.
        await wait_for_log(client, first.url, auditor, lambda items: len(items) >= 5)
        first.kill()
        await publishing
        wanted = {event.id for batch in batches for event in batch}
        items = await wait_for_log(
            client, second.url, auditor, lambda items: wanted <= set(event_ids(items))
        )
        assert set(event_ids(items)) == wanted
        assert_gap_free(items)
        verdict = (await client.get(f"{second.url}/v1/verify", headers=bearer(auditor))).json()
        metrics = (await client.get(f"{second.url}/metrics")).text
    # The survivor's last append saw a head at most the final one (the other may have made it).
    [head_gauge] = [line for line in metrics.splitlines() if line.startswith("whistle_audit_head")]
    assert 0 <= float(head_gauge.split()[1]) <= len(wanted)
    assert verdict == {
        "ok": True,
        "events": len(wanted),
        "head_hash": items[-1]["hash"],
        "walked_from_seq": 0,
        "walked": len(wanted),
    }
    # The head is logged every 10 events so that an outside copy can pin it.
    pinned = [
        json.loads(line)
        for line in (first.logs() + second.logs()).splitlines()
        if '"log_head"' in line
    ]
    assert pinned
    by_seq = {item["seq"]: item["hash"] for item in items}
    assert all(pin["hash"] == by_seq[pin["seq"]] for pin in pinned)
    result = whistle("verify", "--url", second.url, "--token", auditor)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ok: {len(wanted)} events, head hash {items[-1]['hash']}")


async def test_editing_a_stored_event_makes_verify_fail(
    start_service: Callable[..., ServiceProcess],
    service_env: dict[str, str],
    token: Callable[..., str],
    audit_db: Database,
) -> None:
    audit = start_service("audit", **QUIET_RELAY)
    auditor = token("auditor")
    events = fresh(8, "t")
    await publish(service_env["RABBITMQ_URL"], *events)
    async with httpx.AsyncClient(timeout=30) as client:
        items = await wait_for_log(client, audit.url, auditor, lambda items: len(items) == 8)
        assert len(items) == 8
        ok = (await client.get(f"{audit.url}/v1/verify", headers=bearer(auditor))).json()
        assert ok["ok"] is True

        # Rewrite one event's content, leaving its stored hash alone.
        edited = await audit_db["events"].update_one(
            {"_id": 5}, {"$set": {"event.data.name": "Forged"}}
        )
        assert edited.modified_count == 1
        # A repeat walks only what is new since the last ok walk; the full walk finds it.
        full = {"full": "true"}
        verify_url = f"{audit.url}/v1/verify"
        bad = (await client.get(verify_url, params=full, headers=bearer(auditor))).json()
        assert bad["ok"] is False
        assert bad["first_bad_seq"] == 5
        cli = whistle("verify", "--full", "--url", audit.url, "--token", auditor)
        assert cli.returncode == 1
        assert "TAMPERED: first bad seq 5" in cli.stdout

        # Put it back: the chain is whole again. Then drop the newest record instead.
        await audit_db["events"].update_one({"_id": 5}, {"$set": {"event": items[4]["event"]}})
        assert (await client.get(verify_url, params=full, headers=bearer(auditor))).json()["ok"]
        await audit_db["events"].delete_one({"_id": 8})
        cut = (await client.get(f"{audit.url}/v1/verify", headers=bearer(auditor))).json()
        assert (cut["ok"], cut["first_bad_seq"]) == (False, 8)
        assert len(await page_all(client, audit.url, auditor)) == 7


async def test_a_repeated_verify_walks_only_what_is_new(
    start_service: Callable[..., ServiceProcess],
    service_env: dict[str, str],
    token: Callable[..., str],
    audit_db: Database,
) -> None:
    audit = start_service("audit", **QUIET_RELAY)
    auditor = token("auditor")
    await publish(service_env["RABBITMQ_URL"], *fresh(6, "v"))
    async with httpx.AsyncClient(timeout=30) as client:
        await wait_for_log(client, audit.url, auditor, lambda items: len(items) == 6)
        verify_url = f"{audit.url}/v1/verify"
        first = (await client.get(verify_url, headers=bearer(auditor))).json()
        assert (first["ok"], first["walked_from_seq"], first["walked"]) == (True, 0, 6)
        await publish(service_env["RABBITMQ_URL"], *fresh(3, "w"))
        items = await wait_for_log(client, audit.url, auditor, lambda items: len(items) == 9)
        again = (await client.get(verify_url, headers=bearer(auditor))).json()
        assert (again["ok"], again["events"], again["walked_from_seq"], again["walked"]) == (
            True,
            9,
            6,
            3,
        )
        assert again["head_hash"] == items[-1]["hash"]
        # The checkpoint's own record rewritten: the repeat notices and walks from the start.
        await audit_db["events"].update_one({"_id": 9}, {"$set": {"hash": "0" * 64}})
        bad = (await client.get(verify_url, headers=bearer(auditor))).json()
        assert (bad["ok"], bad["first_bad_seq"], bad["walked_from_seq"]) == (False, 9, 0)
