"""bench/scale_model.py: the figures docs/scale.md quotes add up to issue 15's."""

import math

import pytest

from bench import scale_model as model

pytestmark = pytest.mark.unit


def test_the_daily_curve_is_a_whole_day() -> None:
    assert len(model.HOURLY_PERCENT) == 24
    assert math.isclose(sum(model.HOURLY_PERCENT), 100.0)
    assert all(share > 0 for share in model.HOURLY_PERCENT)


@pytest.mark.parametrize("level", model.LEVELS, ids=lambda level: level.name)
def test_each_level_s_hours_add_up_to_its_day(level: model.Level) -> None:
    for factor in (1.0, model.OUTBREAK_FACTOR):
        rates = model.hourly_rates(level.communities, factor)
        assert math.isclose(
            sum(rate * 3600 for rate in rates), model.events_per_day(level.communities) * factor
        )


def test_the_country_matches_the_issue() -> None:
    daily = model.events_per_day(model.COMMUNITIES_NATIONAL)
    assert daily == 65_000_000
    assert round(daily / 86400) == 752  # "750/s on average"
    peak = max(model.hourly_rates(model.COMMUNITIES_NATIONAL))
    assert 2_350 <= peak <= 2_450  # "about 2,400/s at a daytime peak hour"
    outbreak = max(model.hourly_rates(model.COMMUNITIES_NATIONAL, model.OUTBREAK_FACTOR))
    assert 23_500 <= outbreak <= 24_500  # "ten times that in an outbreak (24,000/s)"


def test_levels_scale_with_their_communities() -> None:
    country = model.hourly_rates(model.COMMUNITIES_NATIONAL)
    for level in model.LEVELS:
        share = level.communities / model.COMMUNITIES_NATIONAL
        for mine, national in zip(model.hourly_rates(level.communities), country, strict=True):
            assert math.isclose(mine, national * share)


def test_needs_grow_with_load_and_keep_the_floors() -> None:
    district = model.needs(model.LEVELS[0], 1.0)
    assert set(district.replicas.values()) == {model.MIN_REPLICAS}
    assert district.broker_nodes == 3
    assert district.mongo_replica_sets == 1
    country = model.needs(model.LEVELS[-1], model.OUTBREAK_FACTOR)
    assert country.broker_nodes % 2 == 1
    assert country.broker_nodes > 3
    assert country.busiest_queue_msgs_s > model.QUORUM_QUEUE_LEADER_MSGS_S
    assert all(country.replicas[s] > district.replicas[s] for s in model.MEASURED)
    # CPU at the peak fits the replicas at the target utilisation.
    for service, (cpu_ms, _) in model.MEASURED.items():
        cores = country.peak_events_s * cpu_ms / 1000
        assert cores <= country.replicas[service] * model.REPLICA_CORES * model.TARGET_UTILISATION


def test_the_tables_have_a_row_per_hour_and_per_level_and_load() -> None:
    assert len(model.table_by_hour().splitlines()) == 2 + 24
    assert len(model.table_levels().splitlines()) == 2 + len(model.LEVELS)
    assert len(model.table_needs().splitlines()) == 2 + 2 * len(model.LEVELS)


def test_the_fan_out_is_one_notification_per_volunteer_of_the_district() -> None:
    fan = model.critical_fan_out(300, 50)
    assert fan.notifications == 15_000
    notify_ms, notify_commands = model.MEASURED["notify"]
    per_flow = model.EVENTS_PER_FLOW / model.NOTIFICATIONS_PER_FLOW
    assert math.isclose(fan.notify_cpu_s, 15_000 * notify_ms * per_flow / 1000)
    assert fan.mongo_commands == round(15_000 * notify_commands * per_flow)
    assert len(model.table_fan_out().splitlines()) == 2 + len(model.VOLUNTEERS_PER_COMMUNITY)
