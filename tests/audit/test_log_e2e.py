"""The audit log against a real audit process, the real broker and the Mongo wire server.

One audit process and one log serve the whole module; each test publishes its own events
(unique ids) into the module's vhost as the other services would.
"""

import asyncio
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import aio_pika
import httpx
import pytest

from services.audit.domain.chain import chain_hash
from services.audit.entrypoints.events import AUDIT_EVENTS
from shared.auth import Role, issue_token
from shared.broker.topology import EVENTS_EXCHANGE
from shared.events import catalogue as c
from shared.events.envelope import CloudEvent
from shared.settings import DEV_JWT_SECRET
from tests.audit.scenario import PERIOD_FROM, PERIOD_TO, T0, History, scenario
from tests.audit.support import (
    assert_gap_free,
    by_partition,
    event_ids,
    page_all,
    publish_raw,
    stream_all,
    wait_for_log,
    whistle,
)
from tests.conftest import bearer
from tests.shared.runtime_support import drain, eventually
from tests.support.events import event_of, publish
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e


# The embedded stand-in fails a transaction when anything at all was written meanwhile; the
# idle outbox relay renewing its lease every 0.1 s would make appends conflict needlessly.
QUIET_RELAY = {"WHISTLE_OUTBOX_POLL_S": "2"}


@pytest.fixture(scope="module")
def audit(start_module_service: Callable[..., ServiceProcess]) -> ServiceProcess:
    return start_module_service("audit", **QUIET_RELAY)


@pytest.fixture(scope="module")
def amqp_url(module_service_env: dict[str, str]) -> str:
    return module_service_env["RABBITMQ_URL"]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as http:
        yield http


@pytest.fixture
def auditor(token: Callable[..., str]) -> str:
    return token("auditor")


def registered(community: str) -> CloudEvent:
    data = c.CommunityRegistered(community_id=community, name="N", street="s-1", district="d-1")
    return event_of(data, subject=community)


def fresh(n: int, tag: str = "") -> list[CloudEvent]:
    return [registered(f"c-{tag}{uuid.uuid4().hex[:8]}") for _ in range(n)]


@pytest.fixture(scope="module")
async def history(audit: ServiceProcess, amqp_url: str) -> History:
    """The hand-computed scenario, published once for the module's timeline/state/report tests."""
    h = scenario()
    await publish(amqp_url, *h.events)
    tok = issue_token(DEV_JWT_SECRET, sub="auditor", role=Role.AUDITOR)
    wanted = {event.id for event in h.events}
    async with httpx.AsyncClient(timeout=30) as http:
        items = await wait_for_log(
            http, audit.url, tok, lambda items: wanted <= set(event_ids(items))
        )
    assert wanted <= set(event_ids(items))
    return h


async def test_duplicate_deliveries_are_stored_once(
    audit: ServiceProcess, amqp_url: str, client: httpx.AsyncClient, auditor: str
) -> None:
    [event] = fresh(1)
    await publish(amqp_url, event, event)
    await publish(amqp_url, event)
    [marker] = fresh(1)
    await publish(amqp_url, marker)
    items = await wait_for_log(
        client, audit.url, auditor, lambda items: marker.id in event_ids(items)
    )
    assert event_ids(items).count(event.id) == 1
    assert event_ids(items).index(event.id) < event_ids(items).index(marker.id)
    stored = next(item for item in items if item["event"]["id"] == event.id)
    assert stored["event"] == event.wire()


async def test_the_event_is_stored_as_sent_and_its_hash_covers_that(
    audit: ServiceProcess, amqp_url: str, client: httpx.AsyncClient, auditor: str
) -> None:
    [event] = fresh(1)
    sent = {**event.wire(), "time": "2026-03-01T00:00:00.5Z", "traceparent": "00-ab-cd-01"}
    await publish_raw(amqp_url, event.type, json.dumps(sent).encode())
    items = await wait_for_log(
        client, audit.url, auditor, lambda items: event.id in event_ids(items)
    )
    stored = next(item for item in items if item["event"]["id"] == event.id)
    assert stored["event"] == sent
    assert stored["hash"] == chain_hash(stored["prev_hash"], sent)


async def test_concurrent_publishers_leave_a_gap_free_chain(
    audit: ServiceProcess, amqp_url: str, client: httpx.AsyncClient, auditor: str
) -> None:
    batches = [fresh(12, f"p{n}") for n in range(5)]
    await asyncio.gather(*(publish(amqp_url, *batch) for batch in batches))
    wanted = {event.id for batch in batches for event in batch}
    items = await wait_for_log(
        client, audit.url, auditor, lambda items: wanted <= set(event_ids(items))
    )
    assert wanted <= set(event_ids(items))
    assert_gap_free(items)
    # Each publisher's own order survives (one connection, one channel, FIFO queue).
    positions = {event_id: n for n, event_id in enumerate(event_ids(items))}
    for batch in batches:
        assert [positions[e.id] for e in batch] == sorted(positions[e.id] for e in batch)


async def test_paging_while_events_arrive_never_skips_or_repeats(
    audit: ServiceProcess, amqp_url: str, client: httpx.AsyncClient, auditor: str
) -> None:
    # Every `fresh` community is in district d-1: one partition, paged by its seq.
    start = len(await page_all(client, audit.url, auditor, limit=1000, partition="d-1"))
    batches = [fresh(10, f"r{n}") for n in range(3)]
    wanted = {event.id for batch in batches for event in batch}
    publishing = asyncio.gather(*(publish(amqp_url, *batch) for batch in batches))
    seen: list[dict[str, Any]] = []
    after = start
    for _ in range(2000):
        response = await client.get(
            f"{audit.url}/v1/events",
            params={"partition": "d-1", "after": after, "limit": 4},
            headers=bearer(auditor),
        )
        body = response.json()
        seen.extend(body["items"])
        after = body["next_after"]
        if wanted <= set(event_ids(seen)):
            break
        if not body["items"]:
            await asyncio.sleep(0.02)
    await publishing
    assert wanted <= set(event_ids(seen))
    assert [item["seq"] for item in seen] == list(range(start + 1, start + len(seen) + 1))
    whole = await page_all(client, audit.url, auditor, limit=1000, partition="d-1")
    assert seen == whole[start:][: len(seen)]


async def test_ndjson_stream_equals_the_paged_result(
    audit: ServiceProcess,
    history: History,
    client: httpx.AsyncClient,
    auditor: str,
) -> None:
    paged = await page_all(client, audit.url, auditor, limit=7)
    assert await stream_all(client, audit.url, auditor) == paged
    assert len(paged) >= len(history.events)
    filtered = {"type": "claim.accepted", "community_id": "c-north"}
    paged = await page_all(client, audit.url, auditor, limit=2, **filtered)
    assert len(paged) == 5  # k1, k2, k3, k4 and k6 (d5's, after the report's period)
    assert await stream_all(client, audit.url, auditor, **filtered) == paged
    partition, after = paged[1]["partition"], paged[1]["seq"]
    rest = [item for item in paged[2:] if item["partition"] == partition]
    assert (
        await stream_all(client, audit.url, auditor, partition=partition, after=after, **filtered)
        == rest
    )


async def test_filters_compare_instants_whatever_the_offset(
    audit: ServiceProcess, history: History, client: httpx.AsyncClient, auditor: str
) -> None:
    since = (T0 + timedelta(minutes=20)).astimezone(UTC)
    until = (T0 + timedelta(minutes=120)).astimezone(timezone(timedelta(hours=-5)))
    items = await page_all(
        client, audit.url, auditor, since=since.isoformat(), until=until.isoformat()
    )
    expected = [e.id for e in history.events if since <= e.time < until]
    assert event_ids(items) == expected
    assert len(expected) == 4  # the two at +20 min are in, the three at +120 min are out
    by_subject = await page_all(client, audit.url, auditor, subject="d3")
    assert {item["event"]["type"] for item in by_subject} == {
        "demand.published",
        "claim.accepted",
        "claim.checked_in",
        "claim.completed",
        "demand.completed",
    }


async def test_timeline_is_in_order_with_time_since_the_whistle(
    audit: ServiceProcess, history: History, client: httpx.AsyncClient, auditor: str
) -> None:
    response = await client.get(f"{audit.url}/v1/timeline/d1", headers=bearer(auditor))
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    expected = [e for e in history.events if e.data.get("demand_id") == "d1"]
    assert event_ids(items) == [e.id for e in expected]
    assert "notification.sent" in [item["event"]["type"] for item in items]
    seqs = [item["seq"] for item in items]
    assert seqs == sorted(seqs)
    assert [item["since_whistle_s"] for item in items] == [
        (e.time - T0).total_seconds() for e in expected
    ]
    missing = await client.get(f"{audit.url}/v1/timeline/nope", headers=bearer(auditor))
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_timeline_comes_in_bounded_pages_that_add_up_to_the_whole(
    audit: ServiceProcess, history: History, client: httpx.AsyncClient, auditor: str
) -> None:
    whole = (await client.get(f"{audit.url}/v1/timeline/d1", headers=bearer(auditor))).json()
    assert whole["next_after"] is None
    pages: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await client.get(
            f"{audit.url}/v1/timeline/d1",
            params={"after": after, "limit": 2},
            headers=bearer(auditor),
        )
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 2
        pages.extend(body["items"])
        if body["next_after"] is None:
            break
        after = body["next_after"]
    assert pages == whole["items"]  # the time since the whistle too, on every page
    refused = await client.get(
        f"{audit.url}/v1/timeline/d1", params={"limit": 100_000}, headers=bearer(auditor)
    )
    assert refused.status_code == 422


async def test_state_as_of_before_and_after_a_claim(
    audit: ServiceProcess, history: History, client: httpx.AsyncClient, auditor: str
) -> None:
    async def state(at: Any) -> httpx.Response:
        return await client.get(
            f"{audit.url}/v1/demands/d1/state",
            params={"as_of": at.isoformat()},
            headers=bearer(auditor),
        )

    before = await state(T0 + timedelta(minutes=4))
    assert before.status_code == 200, before.text
    assert (before.json()["status"], before.json()["filled"]) == ("open", 0)
    assert before.json()["claimants"] == []
    after_one = (await state(T0 + timedelta(minutes=5))).json()
    assert (after_one["status"], after_one["filled"], after_one["level"]) == (
        "open",
        2,
        "community",
    )
    assert [k["claimant"]["id"] for k in after_one["claimants"]] == ["u-a"]
    full = (await state((T0 + timedelta(minutes=20)).astimezone(UTC))).json()
    assert (full["status"], full["filled"], full["slots"]) == ("filled", 4, 4)
    assert [k["claimant"]["id"] for k in full["claimants"]] == ["u-a", "u-b"]
    too_early = await state(T0 - timedelta(seconds=1))
    assert too_early.status_code == 404


async def test_report_json_and_csv_match_the_hand_computed_fixture(
    audit: ServiceProcess, history: History, client: httpx.AsyncClient, auditor: str
) -> None:
    from tests.audit.test_responsiveness import EXPECTED

    params = {"from": PERIOD_FROM.isoformat(), "to": PERIOD_TO.isoformat()}
    for by in ("community", "unit", "volunteer"):
        response = await client.get(
            f"{audit.url}/v1/reports/responsiveness",
            params={**params, "by": by},
            headers=bearer(auditor),
        )
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["rules"]["version"] == "responsiveness/1"
        assert (report["from"], report["to"], report["by"]) == (
            PERIOD_FROM.astimezone(UTC).isoformat(),
            PERIOD_TO.astimezone(UTC).isoformat(),
            by,
        )
        assert report["rows"] == EXPECTED[by]
        # Whatever the grouping: how evenly units and volunteers shared the hours.
        assert report["fairness"] == {
            "unit": {"index": 0.9, "claimants": 2, "hours": 6.0},
            "volunteer": {"index": 1.0, "claimants": 1, "hours": 3.0},
        }
        assert report["rules"]["night"] == "22:00-06:00 Asia/Shanghai"
    # As the log stood ten minutes after the first whistle: d1 with one claim, nothing else.
    early = await client.get(
        f"{audit.url}/v1/reports/responsiveness",
        params={**params, "by": "community", "as_of": (T0 + timedelta(minutes=10)).isoformat()},
        headers=bearer(auditor),
    )
    [row] = early.json()["rows"]
    assert (row["key"], row["demands"], row["claims"], row["fill_rate"]) == ("c-north", 1, 1, 0.5)
    assert (row["median_first_claim_s"], row["attendance_rate"]) == (300.0, None)
    assert row["score"] == 75.0  # speed 1 (weight 30) and fill 0.5 (30): 45 of 60
    response = await client.get(
        f"{audit.url}/v1/reports/responsiveness",
        params={**params, "by": "unit", "format": "csv"},
        headers=bearer(auditor),
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["rank"], r["key"], r["score"], r["rules_version"]) for r in rows] == [
        ("1", "u-a", "79.0", "responsiveness/1"),
        ("2", "u-b", "71.6", "responsiveness/1"),
    ]
    assert rows[1]["median_first_claim_s"] == "2400.0"
    assert rows[1]["no_shows"] == "1"
    assert [(r["hours"], r["night_hours"], r["person_times"]) for r in rows] == [
        ("4.0", "0.0", "2"),
        ("2.0", "0.0", "1"),
    ]
    assert {(r["fairness_units"], r["fairness_volunteers"]) for r in rows} == {("0.9", "1.0")}


async def test_a_report_without_from_and_to_covers_the_last_30_days(
    audit: ServiceProcess, client: httpx.AsyncClient, auditor: str
) -> None:
    asked_at = datetime.now(UTC)
    response = await client.get(f"{audit.url}/v1/reports/responsiveness", headers=bearer(auditor))
    assert response.status_code == 200, response.text
    report = response.json()
    start, end = datetime.fromisoformat(report["from"]), datetime.fromisoformat(report["to"])
    assert end - start == timedelta(days=30)
    assert abs((end - asked_at).total_seconds()) < 60
    longest = await client.get(
        f"{audit.url}/v1/reports/responsiveness",
        params={"from": "2029-01-01T00:00:00Z", "to": "2030-02-05T00:00:00Z"},
        headers=bearer(auditor),
    )
    assert longest.status_code == 200, longest.text  # exactly 400 days


async def test_a_secretary_reads_only_their_community(
    audit: ServiceProcess,
    history: History,
    client: httpx.AsyncClient,
    token: Callable[..., str],
    auditor: str,
) -> None:
    north = token("secretary", community="c-north")
    items = await page_all(client, audit.url, north, limit=1000)
    assert items
    assert {item["event"]["data"].get("community_id") for item in items} == {"c-north"}
    assert await stream_all(client, audit.url, north) == items
    other = await client.get(
        f"{audit.url}/v1/events", params={"community_id": "c-south"}, headers=bearer(north)
    )
    assert other.status_code == 403
    assert other.json()["type"] == "https://whistle.dev/problems/forbidden"
    assert (
        await client.get(f"{audit.url}/v1/timeline/d1", headers=bearer(north))
    ).status_code == 200
    for path in ("/v1/timeline/d3", "/v1/demands/d3/state"):
        assert (await client.get(f"{audit.url}{path}", headers=bearer(north))).status_code == 403
    report = await client.get(
        f"{audit.url}/v1/reports/responsiveness",
        params={"from": PERIOD_FROM.isoformat(), "to": PERIOD_TO.isoformat(), "by": "community"},
        headers=bearer(north),
    )
    assert [row["key"] for row in report.json()["rows"]] == ["c-north"]
    assert (await client.get(f"{audit.url}/v1/verify", headers=bearer(north))).status_code == 403
    for role, scope in (("unit", {"unit": "u-a"}), ("volunteer", {"volunteer": "v-1"})):
        tok = token(role, **scope)
        for path in ("/v1/events", "/v1/timeline/d1", "/v1/verify"):
            response = await client.get(f"{audit.url}{path}", headers=bearer(tok))
            assert response.status_code == 403, path
    assert (await client.get(f"{audit.url}/v1/events")).status_code == 401
    admin = await client.get(f"{audit.url}/v1/verify", headers=bearer(token("admin")))
    assert admin.status_code == 200


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/events", {"since": "yesterday"}),
        ("/v1/events", {"since": "2030-03-01T00:00:00"}),  # no offset: ambiguous
        ("/v1/events", {"limit": "0"}),
        ("/v1/events", {"limit": "1001"}),
        ("/v1/events", {"after": "-1"}),
        ("/v1/events", {"after": "3"}),  # a seq of which partition?
        ("/v1/events", {"cursor": "nope"}),
        ("/v1/events", {"cursor": "d-1/3", "partition": "d-1"}),
        ("/v1/events", {"partition": ""}),
        ("/v1/events", {"since": "2030-03-02T00:00:00Z", "until": "2030-03-01T00:00:00Z"}),
        ("/v1/demands/d1/state", {"as_of": "soon"}),
        ("/v1/timeline/" + "x" * 201, {}),
        ("/v1/reports/responsiveness", {"from": "2030-03-01T00:00:00Z"}),
        (  # a window is at most 400 days
            "/v1/reports/responsiveness",
            {"from": "2029-01-01T00:00:00Z", "to": "2030-02-05T00:00:01Z"},
        ),
        (
            "/v1/reports/responsiveness",
            {"from": "2030-03-02T00:00:00Z", "to": "2030-03-01T00:00:00Z"},
        ),
        (
            "/v1/reports/responsiveness",
            {"from": "2030-03-01T00:00:00Z", "to": "2030-03-02T00:00:00Z", "by": "street"},
        ),
        (
            "/v1/reports/responsiveness",
            {"from": "2030-03-01T00:00:00Z", "to": "2030-03-02T00:00:00Z", "format": "xls"},
        ),
    ],
)
async def test_bad_input_is_a_422_problem(
    audit: ServiceProcess,
    client: httpx.AsyncClient,
    auditor: str,
    path: str,
    params: dict[str, str],
) -> None:
    response = await client.get(f"{audit.url}{path}", params=params, headers=bearer(auditor))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "https://whistle.dev/problems/validation-error"


@pytest.mark.parametrize("accept", ["application/json", "application/x-ndjson"])
async def test_an_after_beyond_mongodbs_integers_is_a_422_before_any_stream(
    audit: ServiceProcess, client: httpx.AsyncClient, auditor: str, accept: str
) -> None:
    response = await client.get(
        f"{audit.url}/v1/events",
        params={"after": str(2**63)},
        headers={**bearer(auditor), "Accept": accept},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_log_negotiates_accept_with_q_values_and_says_vary(
    audit: ServiceProcess, client: httpx.AsyncClient, auditor: str
) -> None:
    url = f"{audit.url}/v1/events"
    refused_ndjson = await client.get(
        url, headers={**bearer(auditor), "Accept": "application/x-ndjson;q=0, application/json"}
    )
    assert refused_ndjson.headers["content-type"] == "application/json"
    assert "accept" in refused_ndjson.headers["vary"].lower()
    streamed = await client.get(
        url,
        headers={**bearer(auditor), "Accept": "application/json;q=0.2, application/x-ndjson"},
    )
    assert streamed.headers["content-type"] == "application/x-ndjson"
    assert "accept" in streamed.headers["vary"].lower()
    nothing = await client.get(url, headers={**bearer(auditor), "Accept": "text/html"})
    assert nothing.status_code == 406


async def test_verify_walks_the_whole_chain(
    audit: ServiceProcess, history: History, client: httpx.AsyncClient, auditor: str
) -> None:
    items = await page_all(client, audit.url, auditor, limit=1000)
    response = await client.get(f"{audit.url}/v1/verify", headers=bearer(auditor))
    verdict = response.json()
    assert verdict["ok"] is True
    assert verdict["events"] == len(items)
    chains = by_partition(items)
    assert {p["partition"]: p["head_hash"] for p in verdict["partitions"]} == {
        name: chain[-1]["hash"] for name, chain in chains.items()
    }
    for name, chain in chains.items():
        one = await client.get(
            f"{audit.url}/v1/verify", params={"partition": name}, headers=bearer(auditor)
        )
        assert (one.json()["ok"], one.json()["events"]) == (True, len(chain))


async def test_cli_replay_prints_the_filtered_log_as_ndjson(
    audit: ServiceProcess, history: History, client: httpx.AsyncClient, auditor: str
) -> None:
    def replay(*args: str) -> list[dict[str, Any]]:
        result = whistle("replay", "--url", audit.url, *args, env={"WHISTLE_TOKEN": auditor})
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""  # no progress bar when stderr is not a terminal
        return [json.loads(line) for line in result.stdout.splitlines()]

    assert replay() == await page_all(client, audit.url, auditor)
    accepted = await page_all(client, audit.url, auditor, type="claim.accepted")
    assert replay("--type", "claim.accepted") == accepted
    partition = accepted[1]["partition"]
    rest = [item for item in accepted[2:] if item["partition"] == partition]
    assert (
        replay(
            "--type", "claim.accepted", "--partition", partition, "--after", str(accepted[1]["seq"])
        )
        == rest
    )
    since = (T0 + timedelta(minutes=500)).isoformat()
    assert event_ids(replay("--subject", "d3", "--since", since)) == [
        e.id for e in history.events if e.subject == "d3" and e.time >= T0 + timedelta(minutes=500)
    ]
    refused = whistle("replay", "--url", audit.url, "--since", "noon")
    assert refused.returncode == 2
    assert "RFC 3339" in refused.stderr


async def test_an_event_that_cannot_be_stored_goes_aside_and_its_batch_neighbours_are_recorded(
    audit: ServiceProcess, amqp_url: str, client: httpx.AsyncClient, auditor: str
) -> None:
    before = fresh(15, "nb")
    [bad] = fresh(1, "bad")
    after = fresh(15, "na")
    # A valid CloudEvent whose data MongoDB cannot hold (integers are at most 8 bytes): its
    # append fails every time, and so did every batch it rode in.
    unstorable = {**bad.wire(), "data": {**bad.wire()["data"], "n": 2**70}}
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(EVENTS_EXCHANGE.name)
        for body in [
            *(json.dumps(e.wire()).encode() for e in before),
            json.dumps(unstorable).encode(),
            *(json.dumps(e.wire()).encode() for e in after),
        ]:
            await exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=bad.type,
            )

    async def dead_lettered() -> list[aio_pika.abc.AbstractIncomingMessage]:
        return await drain(amqp_url, AUDIT_EVENTS.dead_letter_name, quiet_s=0.1)

    dead = await eventually(dead_lettered, timeout=40, interval=0.3)
    assert [json.loads(message.body)["id"] for message in dead] == [bad.id]
    neighbours = {event.id for event in [*before, *after]}
    items = await wait_for_log(
        client, audit.url, auditor, lambda items: neighbours <= set(event_ids(items))
    )
    assert neighbours <= set(event_ids(items))
    assert bad.id not in event_ids(items)
    assert_gap_free(items)
