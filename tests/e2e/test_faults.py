"""Fault tests with real processes: a crash after 201, and the broker cut away and back."""

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import bearer
from tests.e2e.test_first_flow import demand_body, wait_for_events
from tests.support.processes import ServiceProcess
from tests.support.proxy import TcpProxy, tcp_proxy

pytestmark = pytest.mark.e2e


@pytest.fixture
def broker_proxy(service_env: dict[str, str]) -> Iterator[TcpProxy]:
    with tcp_proxy(service_env["RABBITMQ_URL"]) as proxy:
        yield proxy


def _register_community(dispatch: ServiceProcess, admin: str, community: str) -> None:
    response = httpx.post(
        f"{dispatch.url}/v1/communities",
        headers=bearer(admin),
        json={"id": community, "name": community, "street": "s-1", "district": "d-1"},
    )
    assert response.status_code == 201, response.text


def _post_demand(dispatch: ServiceProcess, secretary: str, community: str) -> dict[str, Any]:
    response = httpx.post(
        f"{dispatch.url}/v1/demands",
        json=demand_body(community),
        headers=bearer(secretary),
        timeout=10,
    )
    assert response.status_code == 201, response.text
    demand: dict[str, Any] = response.json()
    return demand


def _wait_status(service: ServiceProcess, path: str, status: int, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    last: httpx.Response | None = None
    while time.monotonic() < deadline:
        last = httpx.get(f"{service.url}{path}", timeout=5)
        if last.status_code == status:
            return last.json()
        time.sleep(0.1)
    raise AssertionError(f"{service.service}{path}: wanted {status}, last {last and last.text}")


def _exactly_once(
    audit: ServiceProcess, auditor: str, demand_id: str, settle_s: float = 1.0
) -> dict[str, Any]:
    """The demand's events in audit, after giving a duplicate time to show up."""
    items = wait_for_events(audit, auditor, demand_id, timeout=30)
    assert items, f"no event for {demand_id} reached audit"
    time.sleep(settle_s)  # a duplicate would be a second delivery: give it the chance to land
    items = wait_for_events(audit, auditor, demand_id)
    assert [item["event"]["type"] for item in items] == ["demand.published"]
    return items[0]


def test_dispatch_killed_after_201_still_delivers_exactly_once(
    start_service: Callable[..., ServiceProcess],
    token: Callable[..., str],
    broker_proxy: TcpProxy,
    service_env: dict[str, str],
) -> None:
    via_proxy = broker_proxy.url_for(service_env["RABBITMQ_URL"])
    dispatch = start_service("dispatch", RABBITMQ_URL=via_proxy)
    audit = start_service("audit")
    _register_community(dispatch, token("admin"), "c-kill")
    secretary = token("secretary", community="c-kill")

    # Killed while its relay may be mid-publish: at most a redelivery, never a loss.
    raced = _post_demand(dispatch, secretary, "c-kill")
    dispatch.kill()
    dispatch.start().wait_ready()

    # Killed while the event can only be in the outbox: the broker is cut away.
    broker_proxy.cut()
    stranded = _post_demand(dispatch, secretary, "c-kill")
    dispatch.kill()
    broker_proxy.restore()
    dispatch.start().wait_ready()

    auditor = token("auditor")
    for demand in (raced, stranded):
        event = _exactly_once(audit, auditor, demand["id"])["event"]
        assert event["correlationid"] == demand["id"]
        assert event["data"]["demand_id"] == demand["id"]


def test_broker_cut_keeps_accepting_and_recovers_consumers(
    start_service: Callable[..., ServiceProcess],
    token: Callable[..., str],
    broker_proxy: TcpProxy,
    service_env: dict[str, str],
) -> None:
    via_proxy = broker_proxy.url_for(service_env["RABBITMQ_URL"])
    dispatch = start_service("dispatch", RABBITMQ_URL=via_proxy)
    audit = start_service("audit", RABBITMQ_URL=via_proxy)
    _register_community(dispatch, token("admin"), "c-cut")
    secretary = token("secretary", community="c-cut")
    auditor = token("auditor")

    broker_proxy.cut()
    during = _post_demand(dispatch, secretary, "c-cut")  # the outbox keeps it: still 201
    for service in (dispatch, audit):
        body = _wait_status(service, "/readyz", 503)
        assert body["checks"]["broker"] != "ok"
        assert body["checks"]["mongodb"] == "ok"
    assert wait_for_events(audit, auditor, during["id"], timeout=0.5) == []

    broker_proxy.restore()
    for service in (dispatch, audit):
        body = _wait_status(service, "/readyz", 200, timeout=30)
        assert body["checks"] == {"mongodb": "ok", "broker": "ok", "consumers": "ok"}
    _exactly_once(audit, auditor, during["id"])

    # The consumers are attached again: a demand posted after the cut arrives too.
    after = _post_demand(dispatch, secretary, "c-cut")
    _exactly_once(audit, auditor, after["id"], settle_s=0.2)


def test_database_cut_makes_audit_unready_then_it_catches_up(
    start_service: Callable[..., ServiceProcess],
    token: Callable[..., str],
    service_env: dict[str, str],
) -> None:
    with tcp_proxy(service_env["MONGODB_URL"]) as mongo_proxy:
        dispatch = start_service("dispatch")
        audit = start_service("audit", MONGODB_URL=mongo_proxy.url_for(service_env["MONGODB_URL"]))
        _register_community(dispatch, token("admin"), "c-db")
        auditor = token("auditor")
        assert wait_for_events(audit, auditor, "c-db")

        mongo_proxy.cut()
        body = _wait_status(audit, "/readyz", 503)
        assert body["checks"]["mongodb"].startswith("unreachable")
        demand = _post_demand(dispatch, token("secretary", community="c-db"), "c-db")
        time.sleep(2.0)  # audit receives the event while its database is away
        mongo_proxy.restore()

        _wait_status(audit, "/readyz", 200, timeout=30)
        _exactly_once(audit, auditor, demand["id"])
