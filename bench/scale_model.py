"""The numbers, written down: events per second by hour for a district, a city, a province and
the country, normal and in an outbreak, and what each level needs to run them.

`python -m bench.scale_model` prints the tables docs/scale.md quotes. Inputs are issue 15's
figures (about 650,000 communities, 5 demands a day each, about 20 events a demand, about four
consumers an event, an outbreak ten times the normal load), an explicit daily curve, and the
per-event costs `python -m bench.costs` measured (MEASURED below, with the run they came from).
Anything else is a planning assumption, named as one where it is defined.
"""

import math
from dataclasses import dataclass

COMMUNITIES_NATIONAL = 650_000  # State Council 2020 white paper: 65万 (MCA end-2020: 61.5万)
DEMANDS_PER_COMMUNITY_PER_DAY = 5
EVENTS_PER_DEMAND = 20
CONSUMERS_PER_EVENT = 4
OUTBREAK_FACTOR = 10


@dataclass(frozen=True)
class Level:
    name: str
    communities: int
    basis: str


LEVELS = (
    Level("district", 300, "the issue's simulated district"),
    Level("city", 2_000, "650,000 / 333 prefecture-level divisions, rounded"),
    Level("province", 21_000, "650,000 / 31 provincial-level divisions, rounded"),
    Level("country", COMMUNITIES_NATIONAL, "the national count"),
)

# Share of a day's events in each hour, Beijing time, in percent: quiet at night, the morning
# round of posting and claiming peaks at 09:00-10:00, a second, lower round after lunch, a tail
# of check-ins and completions into the evening. The peak hour (13.3 %) is what makes issue 15's
# "about 2,400/s at a daytime peak hour" out of 65 million events a day.
HOURLY_PERCENT: tuple[float, ...] = (
    0.4, 0.2, 0.15, 0.15, 0.2, 0.5,  # 00-06
    1.5, 4.0, 10.0, 13.3, 12.0, 9.0,  # 06-12
    4.0, 5.0, 9.0, 8.0, 7.0, 5.0,  # 12-18
    3.0, 2.5, 2.0, 1.5, 1.0, 0.6,  # 18-24
)  # fmt: skip

# CPU ms and MongoDB commands per event (per event in audit's log), from `make bench-costs`
# (BENCH_FLOWS=40) on this 2-core machine, 2026-12-01 17:20 UTC, load average 14.6 (docs/scale.md
# quotes the run, bench/results/costs.txt holds it). Update both together.
MEASURED: dict[str, tuple[float, float]] = {
    "dispatch": (3.59, 2.59),
    "units": (2.85, 2.51),
    "notify": (7.27, 4.85),
    "audit": (1.04, 0.54),
}

# Planning assumptions (not measured here: no cluster on this machine).
REPLICA_CORES = 1.0  # each replica's CPU limit in deploy/k8s
TARGET_UTILISATION = 0.6  # headroom for bursts, rebalancing and a lost node
MIN_REPLICAS = 2  # a PodDisruptionBudget that allows a drain needs two
# Messages (publishes in + deliveries out) one RabbitMQ node moves with quorum queues, and one
# quorum queue's Raft leader alone. RabbitMQ's own figure for classic queues is ~88,500/s on an
# 8-core node; quorum queues replicate every message to three nodes, so plan at a fraction of
# that and measure on the target hardware before trusting either.
BROKER_NODE_MSGS_S = 30_000
QUORUM_QUEUE_LEADER_MSGS_S = 20_000
# Commands per second one MongoDB replica set (primary with majority writes) is planned at.
REPLICA_SET_COMMANDS_S = 20_000


# From the same run: each flow logged this many events, of which this many notifications.
EVENTS_PER_FLOW = 8
NOTIFICATIONS_PER_FLOW = 3
# Registered volunteers per community (planning assumption: a few dozen in ordinary times,
# hundreds once an outbreak calls residents up).
VOLUNTEERS_PER_COMMUNITY = {"normal": 50, "outbreak": 300}


def events_per_day(communities: int) -> int:
    return communities * DEMANDS_PER_COMMUNITY_PER_DAY * EVENTS_PER_DEMAND


def hourly_rates(communities: int, factor: float = 1.0) -> list[float]:
    """Events per second in each hour of the day."""
    daily = events_per_day(communities) * factor
    return [daily * share / 100 / 3600 for share in HOURLY_PERCENT]


@dataclass(frozen=True)
class Needs:
    level: Level
    peak_events_s: float
    replicas: dict[str, int]
    broker_msgs_s: float
    broker_nodes: int
    busiest_queue_msgs_s: float
    mongo_commands_s: float
    mongo_replica_sets: int


def needs(level: Level, factor: float) -> Needs:
    peak = max(hourly_rates(level.communities, factor))
    replicas = {
        service: max(
            MIN_REPLICAS, math.ceil(peak * cpu_ms / 1000 / (REPLICA_CORES * TARGET_UTILISATION))
        )
        for service, (cpu_ms, _) in MEASURED.items()
    }
    # Each event is published once and delivered to about four queues.
    broker = peak * (1 + CONSUMERS_PER_EVENT)
    nodes = max(3, 2 * math.ceil((math.ceil(broker / BROKER_NODE_MSGS_S) - 1) / 2) + 1)
    # audit.events takes every event, in and out: one queue, one Raft leader, however many nodes.
    busiest = 2 * peak
    commands = peak * sum(commands for _, commands in MEASURED.values())
    return Needs(
        level=level,
        peak_events_s=peak,
        replicas=replicas,
        broker_msgs_s=broker,
        broker_nodes=nodes,
        busiest_queue_msgs_s=busiest,
        mongo_commands_s=commands,
        mongo_replica_sets=max(1, math.ceil(commands / REPLICA_SET_COMMANDS_S)),
    )


@dataclass(frozen=True)
class FanOut:
    notifications: int
    notify_cpu_s: float
    mongo_commands: int


def critical_fan_out(communities: int, volunteers_per_community: int) -> FanOut:
    """One `critical` demand escalated to a district's every volunteer: one inbox item each.

    notify's cost per notification is bounded from the measured run: all of notify's CPU and
    commands in a flow, spread over the flow's notifications (an upper bound: notify also
    consumed the flow's other events).
    """
    notify_cpu_ms, notify_commands = MEASURED["notify"]
    per_notification_ms = notify_cpu_ms * EVENTS_PER_FLOW / NOTIFICATIONS_PER_FLOW
    per_notification_commands = notify_commands * EVENTS_PER_FLOW / NOTIFICATIONS_PER_FLOW
    notifications = communities * volunteers_per_community
    return FanOut(
        notifications=notifications,
        notify_cpu_s=notifications * per_notification_ms / 1000,
        mongo_commands=round(notifications * per_notification_commands),
    )


def table_fan_out() -> str:
    lines = [
        "| load | volunteers per community | notifications | notify CPU s | seconds at 2 / 16 "
        "notify replicas | Mongo commands | seconds on one replica set |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    district = LEVELS[0]
    for label, per_community in VOLUNTEERS_PER_COMMUNITY.items():
        fan = critical_fan_out(district.communities, per_community)
        seconds = [
            fan.notify_cpu_s / (replicas * REPLICA_CORES * TARGET_UTILISATION)
            for replicas in (2, 16)
        ]
        lines.append(
            f"| {label} | {per_community} | {fan.notifications:,} | {fan.notify_cpu_s:,.0f} "
            f"| {seconds[0]:,.0f} / {seconds[1]:,.0f} | {fan.mongo_commands:,} "
            f"| {fan.mongo_commands / REPLICA_SET_COMMANDS_S:,.0f} |"
        )
    return "\n".join(lines)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2f}"


def table_by_hour() -> str:
    header = "| hour | share | " + " | ".join(
        f"{level.name} normal | {level.name} outbreak" for level in LEVELS
    )
    lines = [header + " |", "|" + " --- |" * (2 + 2 * len(LEVELS))]
    rates = {
        level.name: (
            hourly_rates(level.communities),
            hourly_rates(level.communities, OUTBREAK_FACTOR),
        )
        for level in LEVELS
    }
    for hour, share in enumerate(HOURLY_PERCENT):
        cells = [f"{hour:02d}-{hour + 1:02d}", f"{share:g} %"]
        for level in LEVELS:
            normal, outbreak = rates[level.name]
            cells += [_number(normal[hour]), _number(outbreak[hour])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_levels() -> str:
    lines = [
        "| level | communities | events/day | average/s | peak hour/s | outbreak peak/s "
        "| deliveries/s at outbreak peak |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for level in LEVELS:
        daily = events_per_day(level.communities)
        peak = max(hourly_rates(level.communities))
        lines.append(
            f"| {level.name} | {level.communities:,} | {daily:,} | {_number(daily / 86400)} "
            f"| {_number(peak)} | {_number(peak * OUTBREAK_FACTOR)} "
            f"| {_number(peak * OUTBREAK_FACTOR * CONSUMERS_PER_EVENT)} |"
        )
    return "\n".join(lines)


def table_needs() -> str:
    services = list(MEASURED)
    lines = [
        "| level | load | peak events/s | "
        + " | ".join(f"{s} replicas" for s in services)
        + " | broker msgs/s | broker nodes | audit.events msgs/s | Mongo cmds/s "
        "| replica sets (shards) |",
        "|" + " --- |" * (len(services) + 8),
    ]
    for level in LEVELS:
        for load, factor in (("normal", 1.0), ("outbreak", float(OUTBREAK_FACTOR))):
            n = needs(level, factor)
            over = (
                " (over one leader)" if n.busiest_queue_msgs_s > QUORUM_QUEUE_LEADER_MSGS_S else ""
            )
            lines.append(
                f"| {level.name} | {load} | {_number(n.peak_events_s)} | "
                + " | ".join(str(n.replicas[s]) for s in services)
                + f" | {_number(n.broker_msgs_s)} | {n.broker_nodes} "
                f"| {_number(n.busiest_queue_msgs_s)}"
                f"{over}"
                f" | {_number(n.mongo_commands_s)} | {n.mongo_replica_sets} |"
            )
    return "\n".join(lines)


def main() -> None:
    print("## Levels\n")
    print(table_levels())
    print("\n## Events per second, hour by hour (Beijing time)\n")
    print(table_by_hour())
    print("\n## What each level needs at its peak hour\n")
    print(table_needs())
    print(
        f"\n## One critical demand to every volunteer of a district ({LEVELS[0].communities}"
        " communities)\n"
    )
    print(table_fan_out())


if __name__ == "__main__":
    main()
