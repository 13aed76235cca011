"""Personal data stays out of the permanent log, and a person can be corrected and erased
(issue 10). Four real service processes, the real broker, a real webhook receiver.

After a full flow with names, phones, emails, webhook URLs, buildings, addresses,
descriptions and unit members, nothing stored in audit's database contains any of them; the
services that need them (notify to reach people, units to show the place) still have them;
erasing the volunteer removes their details from every service and leaves `/v1/verify` ok.
"""

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pymongo import MongoClient
from pymongo.database import Database

from tests.conftest import bearer
from tests.notify.receivers import WebhookReceiver, webhook_receiver
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e

STARTS = "2030-05-01T08:00:00+08:00"
ENDS = "2030-05-01T20:00:00+08:00"


def eventually[T](probe: Callable[[], T], timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def signature_ok(secret: str, body: bytes, header: str, max_age_s: int = 300) -> bool:
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(
        secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return abs(time.time() - int(fields["t"])) <= max_age_s and hmac.compare_digest(
        fields["v1"], expected
    )


def everything_in(mongodb_url: str, database: str) -> str:
    """Every document of every collection of the database, as one JSON text."""
    client: MongoClient[dict[str, Any]]
    with MongoClient(mongodb_url) as client:
        db: Database[dict[str, Any]] = client[database]
        dumped = {name: list(db[name].find()) for name in db.list_collection_names()}
    return json.dumps(dumped, default=str, ensure_ascii=False)


def audit_types(audit: ServiceProcess, auditor: dict[str, str]) -> list[str]:
    response = httpx.get(f"{audit.url}/v1/events", params={"limit": 1000}, headers=auditor)
    return [item["event"]["type"] for item in response.json()["items"]]


def test_personal_data_never_reaches_audit_and_erasure_removes_it_everywhere(
    start_service: Callable[..., ServiceProcess],
    token: Callable[..., str],
    mongodb_url: str,
    db_prefix: str,
) -> None:
    with webhook_receiver() as receiver:
        _flow(start_service, token, mongodb_url, db_prefix, receiver)


def _flow(
    start_service: Callable[..., ServiceProcess],
    token: Callable[..., str],
    mongodb_url: str,
    db_prefix: str,
    receiver: WebhookReceiver,
) -> None:
    dispatch, units = start_service("dispatch"), start_service("units")
    start_service("notify")
    audit = start_service("audit")
    tag = uuid.uuid4().hex[:8]
    community = f"c-{tag}"
    admin = bearer(token("admin", sub="admin-1"))
    secretary = bearer(token("secretary", sub="sec-1", community=community))
    auditor = bearer(token("auditor", sub="aud-1"))
    unit_hook, volunteer_hook = f"/ok/unit-hook-{tag}", f"/ok/volunteer-hook-{tag}"
    personal = {
        "volunteer name": f"Zhang Xiuying {tag}",
        "volunteer building": f"Block 7 Flat 1203 {tag}",
        "volunteer phone": "+86 138 7777 6666",
        "volunteer email": f"zhang.{tag}@mail.example",
        "volunteer webhook": receiver.url + volunteer_hook,
        "corrected phone": "+86 138 5555 4444",
        # Self-declared health data (issue 14): units' record and `volunteer.details` only.
        "risk factor": "immunocompromised",
        "unit phone": "+86 139 1111 2222",
        "unit email": f"depot-{tag}@unit.example",
        "unit webhook": receiver.url + unit_hook,
        "member one": f"Wang Fang {tag}",
        "member two": f"Liu Yang {tag}",
        "address": f"18 Lotus Lane, flat 201 {tag}",
        "demand building": f"Building 3 {tag}",
        "description": f"Groceries for Mrs Chen, flat 201 {tag}",
    }

    assert (
        httpx.post(
            f"{dispatch.url}/v1/communities",
            headers=admin,
            json={"id": community, "name": "North", "street": "s-1", "district": "d-1"},
        ).status_code
        == 201
    )
    assert eventually(
        lambda: (
            httpx.get(f"{units.url}/v1/communities/{community}", headers=admin).status_code == 200
        )
    )
    registered = httpx.post(
        f"{units.url}/v1/units",
        headers=admin,
        json={
            "name": "Property depot",
            "kind": "property",
            "communities": [community],
            "skills": ["delivery"],
            "contact": {
                "phone": personal["unit phone"],
                "email": personal["unit email"],
                "webhook_url": personal["unit webhook"],
            },
        },
    )
    assert registered.status_code == 201, registered.text
    unit = registered.json()
    unit_secret = unit["webhook_secret"]
    assert unit_secret.startswith("whsec_")
    assert (
        "webhook_secret"
        not in httpx.get(f"{units.url}/v1/units/{unit['id']}", headers=admin).json()
    )

    enrolled = httpx.post(
        f"{units.url}/v1/volunteers",
        headers=secretary | {"Idempotency-Key": f"enrol-{tag}"},
        json={
            "name": personal["volunteer name"],
            "community_id": community,
            "building": personal["volunteer building"],
            "skills": ["delivery"],
            "birth_year": 1958,
            # The shift is 12 hours, over the default 10 a day: their own daily cap.
            "max_hours_per_day": 16,
            "risk_factors": [personal["risk factor"]],
            "contact": {
                "phone": personal["volunteer phone"],
                "email": personal["volunteer email"],
                "webhook_url": personal["volunteer webhook"],
            },
        },
    )
    assert enrolled.status_code == 201, enrolled.text
    volunteer = enrolled.json()
    assert volunteer["birth_year"] == 1958
    assert volunteer["risk_factors"] == [personal["risk factor"]]
    personal["unit secret"], personal["volunteer secret"] = unit_secret, volunteer["webhook_secret"]

    posted = httpx.post(
        f"{dispatch.url}/v1/demands",
        headers=secretary,
        json={
            "community_id": community,
            "kind": "task",
            "title": "Groceries run",
            "description": personal["description"],
            "location": {
                "grid": "G4",
                "building": personal["demand building"],
                "address": personal["address"],
            },
            "skills": ["delivery"],
            "slots": 3,
            "starts_at": STARTS,
            "ends_at": ENDS,
            "priority": "urgent",
        },
    )
    assert posted.status_code == 201, posted.text
    demand = posted.json()

    # Units has the place from the private exchange, to show the people who go there.
    def place() -> dict[str, Any] | None:
        listed = httpx.get(
            f"{units.url}/v1/open-demands", params={"community_id": community}, headers=secretary
        ).json()["items"]
        found = [d for d in listed if d["id"] == demand["id"] and d["description"]]
        return found[0] if found else None

    shown = eventually(place)
    assert shown is not None
    assert shown["location"]["address"] == personal["address"]

    unit_token = bearer(token("unit", sub="unit-1", unit=unit["id"]))
    volunteer_token = bearer(token("volunteer", sub="vol-1", volunteer=volunteer["id"]))
    unit_claim = httpx.post(
        f"{units.url}/v1/demands/{demand['id']}/claims",
        headers=unit_token,
        json={"headcount": 2, "members": [personal["member one"], personal["member two"]]},
    )
    assert unit_claim.status_code == 201, unit_claim.text
    volunteer_claim = httpx.post(
        f"{units.url}/v1/demands/{demand['id']}/claims", headers=volunteer_token, json={}
    )
    assert volunteer_claim.status_code == 201, volunteer_claim.text

    # Notify reached both by webhook, each signed with its own receiver's secret.
    assert eventually(lambda: receiver.to(unit_hook) and receiver.to(volunteer_hook))
    first = receiver.to(unit_hook)[0]
    assert signature_ok(unit_secret, first.body, first.headers["X-Whistle-Signature"])
    assert not signature_ok(
        volunteer["webhook_secret"], first.body, first.headers["X-Whistle-Signature"]
    )
    assert first.headers["X-Whistle-Delivery"]

    # A correction, then erasure (by the volunteer's secretary).
    corrected = httpx.patch(
        f"{units.url}/v1/volunteers/{volunteer['id']}",
        headers=secretary,
        json={"contact": {"phone": personal["corrected phone"]}},
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["contact"]["phone"] == personal["corrected phone"]
    erased = httpx.delete(f"{units.url}/v1/volunteers/{volunteer['id']}", headers=secretary)
    assert erased.status_code == 204, erased.text
    assert (
        httpx.delete(f"{units.url}/v1/volunteers/{volunteer['id']}", headers=secretary).status_code
        == 204
    )
    gone = httpx.get(f"{units.url}/v1/volunteers/{volunteer['id']}", headers=admin)
    assert gone.status_code == 410
    assert gone.json()["type"].endswith("/volunteer-erased")

    assert eventually(lambda: "volunteer.erased" in audit_types(audit, auditor))
    # The erasure gave the volunteer's place back; audit shows it by id.
    withdrawn = eventually(
        lambda: [
            item["event"]
            for item in httpx.get(
                f"{audit.url}/v1/events", params={"type": "claim.withdrawn"}, headers=auditor
            ).json()["items"]
            if item["event"]["data"]["claimant"]["id"] == volunteer["id"]
        ]
    )
    assert withdrawn
    verified = httpx.get(f"{audit.url}/v1/verify", headers=auditor).json()
    assert verified["ok"] is True, verified

    # No more deliveries to the erased volunteer: a new whistle reaches the unit only.
    heard_by_volunteer = len(receiver.to(volunteer_hook))
    heard_by_unit = len(receiver.to(unit_hook))
    again = httpx.post(
        f"{dispatch.url}/v1/demands",
        headers=secretary,
        json={
            "community_id": community,
            "kind": "task",
            "title": "Second run",
            "skills": ["delivery"],
            "slots": 1,
            "starts_at": STARTS,
            "ends_at": ENDS,
            "priority": "critical",
        },
    )
    assert again.status_code == 201, again.text
    assert eventually(lambda: len(receiver.to(unit_hook)) > heard_by_unit)
    time.sleep(1.0)  # room for a stray delivery to the volunteer to show up
    assert len(receiver.to(volunteer_hook)) == heard_by_volunteer

    # Notify forgot the volunteer (contact, inbox, deliveries); units kept no copy either.
    def notify_forgot() -> bool:
        text = everything_in(mongodb_url, f"{db_prefix}notify")
        return not any(personal[k] in text for k in _volunteer_keys())

    assert eventually(notify_forgot)
    units_text = everything_in(mongodb_url, f"{db_prefix}units")
    assert [k for k in _volunteer_keys() if personal[k] in units_text] == []
    assert personal["address"] in units_text  # the place is still there for the claimants

    report = httpx.get(
        f"{audit.url}/v1/reports/responsiveness",
        params={"by": "volunteer"},  # the last 30 days: this test's whole history
        headers=auditor,
    )
    assert report.status_code == 200, report.text
    assert volunteer["id"] in report.text

    # And audit never stored any of it.
    audit_text = everything_in(mongodb_url, f"{db_prefix}audit")
    assert "volunteer.erased" in audit_text
    leaked = [what for what, value in personal.items() if value in audit_text]
    assert leaked == [], f"audit's database holds {leaked}"
    # A birth year is a number a digest could hold by chance: look for the field instead.
    assert "birth_year" not in audit_text
    assert "risk_factors" not in audit_text


def _volunteer_keys() -> list[str]:
    return [
        "volunteer name",
        "volunteer building",
        "volunteer phone",
        "volunteer email",
        "volunteer webhook",
        "corrected phone",
        "volunteer secret",
        "risk factor",
    ]
