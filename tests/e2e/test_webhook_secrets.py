"""Each webhook receiver has its own secret, made by units, shown once, rotatable; notify
signs with the current one (issue 10). Real units, dispatch and notify processes."""

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import bearer
from tests.notify.receivers import webhook_receiver
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e


def signed_with(secret: str, body: bytes, header: str) -> bool:
    fields = dict(part.split("=", 1) for part in header.split(","))
    mac = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(fields["v1"], mac.hexdigest())


def wait(probe: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_rotated_secret_signs_the_next_delivery_and_the_old_one_stops(
    start_service: Callable[..., ServiceProcess], token: Callable[..., str]
) -> None:
    dispatch, units = start_service("dispatch"), start_service("units")
    start_service("notify")
    tag = uuid.uuid4().hex[:8]
    community = f"c-{tag}"
    admin = bearer(token("admin"))
    secretary = bearer(token("secretary", community=community))
    with webhook_receiver() as receiver:
        hook = f"/ok/{tag}"
        assert (
            httpx.post(
                f"{dispatch.url}/v1/communities",
                headers=admin,
                json={"id": community, "name": "N", "street": "s-1", "district": "d-1"},
            ).status_code
            == 201
        )
        wait(
            lambda: (
                httpx.get(f"{units.url}/v1/communities/{community}", headers=admin).status_code
                == 200
            )
        )
        created = httpx.post(
            f"{units.url}/v1/units",
            headers=admin,
            json={
                "name": "Depot",
                "kind": "property",
                "communities": [community],
                "contact": {"webhook_url": receiver.url + hook},
            },
        )
        assert created.status_code == 201, created.text
        unit = created.json()
        first_secret = unit["webhook_secret"]
        # Shown once: reading the unit back never shows it.
        read = httpx.get(f"{units.url}/v1/units/{unit['id']}", headers=admin).json()
        assert "webhook_secret" not in read

        def whistle() -> None:
            posted = httpx.post(
                f"{dispatch.url}/v1/demands",
                headers=secretary,
                json={
                    "community_id": community,
                    "kind": "staffing",
                    "title": "Gate",
                    "slots": 1,
                    "starts_at": "2030-05-01T08:00:00+08:00",
                    "ends_at": "2030-05-01T20:00:00+08:00",
                    "priority": "urgent",
                },
            )
            assert posted.status_code == 201, posted.text

        whistle()
        wait(lambda: len(receiver.to(hook)) == 1)
        [before] = receiver.to(hook)
        assert signed_with(first_secret, before.body, before.headers["X-Whistle-Signature"])

        # Only an admin or the unit itself rotates; the others are refused.
        refused = httpx.post(f"{units.url}/v1/units/{unit['id']}/webhook-secret", headers=secretary)
        assert refused.status_code == 403
        rotated = httpx.post(
            f"{units.url}/v1/units/{unit['id']}/webhook-secret",
            headers=bearer(token("unit", unit=unit["id"])),
        )
        assert rotated.status_code == 200, rotated.text
        second_secret = rotated.json()["webhook_secret"]
        assert second_secret != first_secret

        # The rotation travels to notify on the private exchange; the next whistle is
        # signed with the new secret only.
        def signed_anew() -> bool:
            whistle()
            time.sleep(1.0)
            latest = receiver.to(hook)[-1]
            return signed_with(second_secret, latest.body, latest.headers["X-Whistle-Signature"])

        wait(signed_anew, timeout=20)
        latest = receiver.to(hook)[-1]
        assert not signed_with(first_secret, latest.body, latest.headers["X-Whistle-Signature"])
        delivery_ids = [r.headers["X-Whistle-Delivery"] for r in receiver.to(hook)]
        assert len(set(delivery_ids)) == len(delivery_ids)

        # A unit without a webhook has no secret to rotate.
        bare = httpx.post(
            f"{units.url}/v1/units",
            headers=admin,
            json={"name": "Bare", "kind": "other", "communities": [community]},
        ).json()
        assert bare["webhook_secret"] is None
        no_hook = httpx.post(f"{units.url}/v1/units/{bare['id']}/webhook-secret", headers=admin)
        assert no_hook.status_code == 409
        assert no_hook.json()["type"].endswith("/no-webhook")
