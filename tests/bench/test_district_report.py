"""bench/district_report.py: what the district simulation reads from /metrics, rabbitmqctl and
/v1/verify, and the report it builds from them (no timings: made-up observations)."""

from collections import Counter

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import Counter as PromCounter

from bench.district_report import (
    Counters,
    Observations,
    Request,
    build_report,
    partition_verdicts,
    published_vs_recorded,
    read_counters,
    read_list_queues,
    table,
)

pytestmark = pytest.mark.unit


def metrics_page() -> str:
    """A /metrics page written by prometheus_client itself, with the services' metric names."""
    registry = CollectorRegistry()
    consumed = PromCounter(
        "whistle_messages_consumed_total",
        "Events consumed",
        ["service", "queue", "type", "outcome"],
        registry=registry,
    )
    published = PromCounter(
        "whistle_messages_published_total", "published", ["service", "type"], registry=registry
    )
    requests = PromCounter(
        "whistle_http_requests_total",
        "HTTP",
        ["service", "method", "route", "status"],
        registry=registry,
    )
    consumed.labels("notify", "notify.events", "demand.published", "ok").inc(7)
    consumed.labels("notify", "notify.private", "volunteer.details", "ok").inc(2)
    consumed.labels("notify", "notify.events", "claim.accepted", "retried").inc(3)
    published.labels("notify", "notification.sent").inc(5)
    requests.labels("notify", "GET", "/v1/inbox", "200").inc(11)
    requests.labels("notify", "GET", "/metrics", "200").inc(4)
    return generate_latest(registry).decode()


def test_counters_from_a_metrics_page() -> None:
    counters = read_counters(metrics_page())
    assert counters.consumed_ok == 9
    assert counters.consumed_other == 3
    assert counters.published == {"notification.sent": 5}
    assert counters.requests == 11  # /metrics itself is not the API's work


def test_queue_depths_from_rabbitmqctl() -> None:
    text = (
        "name\tmessages_ready\tmessages_unacknowledged\n"
        "audit.events\t12\t32\n"
        "notify.events.dlq\t0\t0\n"
    )
    assert read_list_queues(text) == {"audit.events": (12, 32), "notify.events.dlq": (0, 0)}


def test_the_single_chain_is_partition_default() -> None:
    verdict = {"ok": True, "events": 10, "head_hash": "ab"}
    assert partition_verdicts(verdict) == {"default": verdict}


@pytest.mark.parametrize(
    "body",
    [
        {"ok": False, "partitions": [
            {"partition": "d-1", "ok": True, "events": 4},
            {"partition": "d-2", "ok": False, "first_bad_seq": 3},
        ]},
        {"ok": False, "partitions": {
            "d-1": {"ok": True, "events": 4},
            "d-2": {"ok": False, "first_bad_seq": 3},
        }},
    ],
)  # fmt: skip
def test_every_partition_gets_its_own_verdict(body: dict[str, object]) -> None:
    verdicts = partition_verdicts(body)
    assert set(verdicts) == {"d-1", "d-2"}
    assert verdicts["d-1"]["ok"] is True
    assert verdicts["d-2"]["ok"] is False


def test_an_event_published_but_not_recorded_is_counted_and_private_ones_are_not() -> None:
    after = {
        "units-1": Counters(published={"claim.accepted": 3, "volunteer.details": 2}),
        "units-2": Counters(published={"claim.accepted": 2}),
        "dispatch-1": Counters(published={"demand.published": 4}),
    }
    result = published_vs_recorded(
        after,
        {"claim.accepted": 5, "demand.published": 3},
        private=["volunteer.details"],
    )
    assert result["published"] == 9
    assert result["recorded"] == 8
    assert result["published_not_recorded"] == 1
    assert result["by_type"]["demand.published"] == {"published": 4, "recorded": 3}
    assert "volunteer.details" not in result["by_type"]


def observations(**checks: object) -> Observations:
    before = {
        "units-1": Counters(consumed_ok=10),
        "units-2": Counters(consumed_ok=10),
        "console-1": Counters(),
    }
    middle = {"units-1": Counters(consumed_ok=40), "units-2": Counters(consumed_ok=20)}
    after = {
        "units-1": Counters(consumed_ok=70, requests=30),
        "units-2": Counters(consumed_ok=50, requests=30, consumed_other=2),
        "console-1": Counters(),
    }
    return Observations(
        traffic={
            "communities": 300,
            "speed": 10.0,
            "start_hour": 9,
            "minutes": 3.0,
            "demands": 90,
            "planned_events_per_s": 11.1,
            "replicas": 2,
        },
        replay_s=20.0,
        before=before,
        after=after,
        samples=[(0.0, before), (10.0, middle), (20.0, after)],
        queues=[
            (0.0, {"units.demand-events": (0, 0), "units.demand-events.dlq": (1, 0)}),
            (10.0, {"units.demand-events": (5, 8), "units.demand-events.dlq": (1, 0)}),
            (20.0, {"units.demand-events": (0, 0), "units.demand-events.dlq": (1, 0)}),
        ],
        requests=[
            Request("POST /v1/demands", 201, 0.05),
            Request("POST /v1/demands", 503, 2.0),
            Request("POST /v1/demands", 500, 0.1),
        ],
        to_audit_ms=[100.0, 300.0, 200.0],
        to_inbox_ms=[400.0],
        probes_missed={"audit": 0, "inbox": 1},
        outcomes=Counter({"post: 201": 1}),
        checks={
            "demands_checked": 90,
            "demands_overbooked": 0,
            "partitions": {"default": {"ok": True, "events": 900}},
            "events": {"published": 900, "recorded": 900, "published_not_recorded": 0},
            "events_by_id": {
                "checked": True,
                "relayed": 900,
                "lost": 0,
                "still_pending_in_outboxes": 0,
            },
            "writes_missing_in_audit": 0,
            "dead_lettered_in_setup": 1,
            **checks,
        },
    )


def test_throughput_is_both_replicas_over_the_replay_with_each_one_s_share() -> None:
    report = build_report(observations(), {"at": "now"})
    units = report["throughput"]["units"]
    assert units["events_consumed"] == 100
    assert units["events_consumed_per_s"] == 5.0
    assert units["replica_share"] == {"units-1": 0.6, "units-2": 0.4}
    assert units["peak_consumed_per_s"] == 6.0  # 20 + 40 in the second ten seconds
    assert units["deliveries_not_ok"] == 2
    assert units["requests_per_s"] == 3.0
    assert report["consumed_per_s_over_time"]["units"] == [(10.0, 4.0), (20.0, 6.0)]


def test_a_replica_missing_from_a_sample_is_no_fall_in_its_rate() -> None:
    obs = observations()
    obs.samples[1][1].pop("units-2")  # its /metrics did not answer at 10 s
    series = build_report(obs, {"at": "now"})["consumed_per_s_over_time"]["units"]
    assert series == [(10.0, 3.0), (20.0, 3.0)]  # units-1 alone, then units-1 only again
    assert all(rate >= 0 for _, rate in series)


def test_queues_latency_and_verdicts() -> None:
    report = build_report(observations(), {"at": "now"})
    assert report["queues"]["units.demand-events"] == {"max": 13, "max_at_s": 10.0, "end": 0}
    assert report["latency"]["whistle_to_audit"]["p50_ms"] == 200.0
    assert report["latency"]["whistle_to_inbox"]["n"] == 1
    assert report["requests"]["routes"]["POST /v1/demands"]["by_status"] == {
        "201": 1,
        "500": 1,
        "503": 1,
    }
    verdicts = {v["check"]: v["ok"] for v in report["verdicts"]}
    assert verdicts == {
        "no demand overbooked": True,
        "every partition verifies": True,
        "no event lost (published = recorded in audit)": True,
        "every answered write's event in audit": True,
        "nothing dead-lettered during the replay": True,  # the one in the queue is the setup's
        "no 5xx but 503 busy": False,  # the 500 (the 503 is contention, retried)
    }


@pytest.mark.parametrize(
    ("checks", "failing"),
    [
        ({"demands_overbooked": 1}, "no demand overbooked"),
        ({"demands_checked": 0}, "no demand overbooked"),
        (
            {"partitions": {"d-1": {"ok": True}, "d-2": {"ok": False}}},
            "every partition verifies",
        ),
        ({"partitions": {}}, "every partition verifies"),
        (
            {"events_by_id": {"checked": True, "relayed": 900, "lost": 1}},
            "no event lost (published = recorded in audit)",
        ),
        (
            {
                "events_by_id": {
                    "checked": True,
                    "relayed": 900,
                    "lost": 0,
                    "still_pending_in_outboxes": 3,
                }
            },
            "no event lost (published = recorded in audit)",
        ),
        (
            {
                "events_by_id": {"checked": False},
                "events": {"published": 900, "recorded": 899, "published_not_recorded": 1},
            },
            "no event lost (published = recorded in audit)",
        ),
        ({"writes_missing_in_audit": 2}, "every answered write's event in audit"),
        ({"dead_lettered_in_setup": 0}, "nothing dead-lettered during the replay"),
    ],
)
def test_each_failure_fails_its_check(checks: dict[str, object], failing: str) -> None:
    report = build_report(observations(**checks), {"at": "now"})
    verdicts = {v["check"]: v["ok"] for v in report["verdicts"]}
    assert verdicts[failing] is False


def test_a_republished_event_is_not_a_lost_one_when_ids_are_compared() -> None:
    report = build_report(
        observations(events={"published": 901, "recorded": 900, "published_not_recorded": 1}),
        {"at": "now"},
    )
    verdicts = {v["check"]: v["ok"] for v in report["verdicts"]}
    assert verdicts["no event lost (published = recorded in audit)"] is True


def test_the_table_shows_the_figures_and_leaves_the_idle_console_out() -> None:
    printed = table(build_report(observations(), {"at": "now"}))
    assert "units" in printed
    assert "console" not in printed
    assert "units-1 0.6, units-2 0.4" in printed
    assert "FAIL  no 5xx but 503 busy" in printed
    assert "1 (503 busy, retried: 1)" in printed
    assert "PASS  every partition verifies" in printed
    assert "units.demand-events.dlq" in printed  # a dead-letter queue that holds something
