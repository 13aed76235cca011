"""Two audit processes on one log, one killed mid-stream; verify; tampering behind its back.

Each test has its own vhost and database, so it can edit the stored records directly.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.audit.domain.chain import GENESIS_HASH, chain_hash
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
    [head_gauge] = [
        line
        for line in metrics.splitlines()
        if line.startswith('whistle_audit_head_seq{partition="d-1"}')
    ]
    assert 0 <= float(head_gauge.split()[1]) <= len(wanted)
    [chain] = verdict.pop("partitions")
    assert chain == {
        "partition": "d-1",
        "ok": True,
        "events": len(wanted),
        "head_hash": items[-1]["hash"],
        "walked_from_seq": 0,
        "walked": len(wanted),
    }
    assert verdict == {
        "ok": True,
        "events": len(wanted),
        "root": verdict["root"],
        "walked": len(wanted),
    }
    # Every partition's head is logged every 10 events so that an outside copy can pin it.
    pinned = [
        json.loads(line)
        for line in (first.logs() + second.logs()).splitlines()
        if '"log_head"' in line
    ]
    assert pinned
    by_seq = {item["seq"]: item["hash"] for item in items}
    assert all(pin["heads"]["d-1"]["hash"] == by_seq[pin["heads"]["d-1"]["seq"]] for pin in pinned)
    result = whistle("verify", "--url", second.url, "--token", auditor)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ok: {len(wanted)} events in 1 partitions, root ")


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
            {"partition": "d-1", "seq": 5}, {"$set": {"event.data.name": "Forged"}}
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
        assert "TAMPERED: partition d-1: first bad seq 5" in cli.stdout

        # Put it back: the chain is whole again. Then drop the newest record instead.
        await audit_db["events"].update_one(
            {"partition": "d-1", "seq": 5}, {"$set": {"event": items[4]["event"]}}
        )
        assert (await client.get(verify_url, params=full, headers=bearer(auditor))).json()["ok"]
        await audit_db["events"].delete_one({"partition": "d-1", "seq": 8})
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
        one = {"partition": "d-1"}
        first = (await client.get(verify_url, params=one, headers=bearer(auditor))).json()
        assert (first["ok"], first["walked_from_seq"], first["walked"]) == (True, 0, 6)
        await publish(service_env["RABBITMQ_URL"], *fresh(3, "w"))
        items = await wait_for_log(client, audit.url, auditor, lambda items: len(items) == 9)
        again = (await client.get(verify_url, params=one, headers=bearer(auditor))).json()
        assert (again["ok"], again["events"], again["walked_from_seq"], again["walked"]) == (
            True,
            9,
            6,
            3,
        )
        assert again["head_hash"] == items[-1]["hash"]
        # The checkpoint's own record rewritten: the repeat notices and walks from the start.
        await audit_db["events"].update_one(
            {"partition": "d-1", "seq": 9}, {"$set": {"hash": "0" * 64}}
        )
        bad = (await client.get(verify_url, params=one, headers=bearer(auditor))).json()
        assert (bad["ok"], bad["first_bad_seq"], bad["walked_from_seq"]) == (False, 9, 0)


async def test_a_rewritten_and_rehashed_chain_passes_plain_verify_but_not_the_checkpoints(
    start_service: Callable[..., ServiceProcess],
    service_env: dict[str, str],
    token: Callable[..., str],
    audit_db: Database,
    tmp_path: Path,
) -> None:
    checkpoint_file = tmp_path / "audit-checkpoints.jsonl"
    audit = start_service(
        "audit",
        WHISTLE_AUDIT_HEAD_LOG_EVERY="2",
        WHISTLE_AUDIT_CHECKPOINT_FILE=str(checkpoint_file),
        **QUIET_RELAY,
    )
    auditor = token("auditor")
    await publish(service_env["RABBITMQ_URL"], *fresh(8, "k"))
    async with httpx.AsyncClient(timeout=30) as client:
        items = await wait_for_log(client, audit.url, auditor, lambda items: len(items) == 8)
    assert len(items) == 8
    lines = [json.loads(line) for line in checkpoint_file.read_text().splitlines()]
    assert lines, "no checkpoint was signed"
    assert all(
        line["heads"]["d-1"][1] == items[line["heads"]["d-1"][0] - 1]["hash"] for line in lines
    )
    assert "audit_development_signing_key_generated" in audit.logs()
    args = ("verify", "--full", "--url", audit.url, "--token", auditor)
    good = whistle(*args, "--checkpoints", str(checkpoint_file))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "checkpoints ok" in good.stdout

    # Someone with write access to the database rewrites event 1 and re-hashes everything
    # after it, head included: the chain itself is consistent again.
    previous = GENESIS_HASH
    async for record in audit_db["events"].find({"partition": "d-1"}).sort("seq", 1):
        event = record["event"]
        if record["seq"] == 1:
            event = {**event, "data": {**event["data"], "name": "Forged"}}
        digest = chain_hash(previous, event)
        await audit_db["events"].update_one(
            {"_id": record["_id"]},
            {"$set": {"event": event, "prev_hash": previous, "hash": digest}},
        )
        previous = digest
    await audit_db["log_head"].update_one({"_id": "d-1"}, {"$set": {"hash": previous}})

    plain = whistle(*args)
    assert plain.returncode == 0, plain.stdout  # the rewrite is invisible to the chain alone
    assert plain.stdout.startswith("ok: 8 events in 1 partitions")
    caught = whistle(*args, "--checkpoints", str(checkpoint_file))
    assert caught.returncode == 1
    assert "REWRITTEN: partition d-1 seq" in caught.stdout

    # A forged line (signed by another key) is refused too.
    forged = tmp_path / "forged.jsonl"
    stolen = {**lines[0], "heads": {"d-1": [8, previous]}}
    forged.write_text(json.dumps(stolen) + "\n")
    refused = whistle(*args, "--checkpoints", str(forged))
    assert refused.returncode == 1
    assert "signature does not verify" in refused.stdout
