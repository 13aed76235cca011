"""Relay rosters and named rosters (issue 14), over real service processes and the real
broker: dispatch proposes and confirms, units records each turn's claim for its unit, the
unit accepts or hands back (the places reopen), names and substitutes its people until
check-in; audit records every step and no member's name."""

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import bearer
from tests.e2e.test_privacy import audit_types, everything_in
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e

PROBLEM = "https://whistle.dev/problems/"


def eventually[T](probe: Callable[[], T], timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def slug(response: httpx.Response) -> str:
    return str(response.json()["type"]).removeprefix(PROBLEM)


def test_roster_proposal_confirmation_commitments_hand_back_and_named_members(
    start_service: Callable[..., ServiceProcess],
    token: Callable[..., str],
    mongodb_url: str,
    db_prefix: str,
) -> None:
    # Started together, then awaited: on a busy machine one start-up may take a while.
    dispatch, units, audit = (
        start_service(name, wait=False) for name in ("dispatch", "units", "audit")
    )
    for process in (dispatch, units, audit):
        process.wait_ready(timeout=120)
    tag = uuid.uuid4().hex[:8]
    community = f"c-{tag}"
    admin = bearer(token("admin", sub="admin-1"))
    secretary = bearer(token("secretary", sub="sec-1", community=community))
    stranger = bearer(token("secretary", sub="sec-2", community=f"other-{tag}"))
    auditor = bearer(token("auditor", sub="aud-1"))

    registered = httpx.post(
        f"{dispatch.url}/v1/communities",
        headers=admin,
        json={"id": community, "name": "North", "street": f"s-{tag}", "district": f"d-{tag}"},
    )
    assert registered.status_code == 201, registered.text
    assert eventually(
        lambda: (
            httpx.get(f"{units.url}/v1/communities/{community}", headers=admin).status_code == 200
        )
    )
    unit_ids = []
    for index, skills in enumerate((["first aid"], ["first aid"], ["first aid"], [])):
        answer = httpx.post(
            f"{units.url}/v1/units",
            headers=admin,
            json={
                "name": f"Party branch {index}",
                "kind": "party_branch",
                "communities": [community],
                "skills": skills,
            },
        )
        assert answer.status_code == 201, answer.text
        unit_ids.append(answer.json()["id"])
    unit_a, unit_b, unit_c, unskilled = unit_ids

    def serving() -> list[dict[str, Any]]:
        answer = httpx.get(f"{dispatch.url}/v1/communities/{community}/units", headers=secretary)
        items: list[dict[str, Any]] = answer.json()["items"]
        return items if len(items) == 4 else []

    listed = eventually(serving)
    assert listed
    assert {unit["id"] for unit in listed} == set(unit_ids)

    first = (datetime.now(UTC) + timedelta(days=2)).date()
    days = [first + timedelta(days=offset) for offset in range(6)]
    body: dict[str, Any] = {
        "community_id": community,
        "title": "Gate relay",
        "units": unit_ids,
        "first_day": first.isoformat(),
        "last_day": days[-1].isoformat(),
        "shift_start": "08:00",
        "shift_end": "12:00",
        "timezone": "Asia/Shanghai",
        "people_per_turn": 2,
        "skills": ["First Aid"],
        "blocked": [{"unit_id": unit_a, "days": [days[0].isoformat(), days[1].isoformat()]}],
    }

    # Refusals first: nothing is stored by them.
    unknown = httpx.post(
        f"{dispatch.url}/v1/rosters",
        headers=secretary,
        json=body | {"units": [*unit_ids, "unit_nope"]},
    )
    assert unknown.status_code == 422, unknown.text
    assert slug(unknown) == "unknown-unit", unknown.text
    foreign = httpx.post(f"{dispatch.url}/v1/rosters", headers=stranger, json=body)
    assert foreign.status_code == 403, foreign.text
    backwards = httpx.post(
        f"{dispatch.url}/v1/rosters",
        headers=secretary,
        json=body | {"last_day": (first - timedelta(days=1)).isoformat()},
    )
    assert backwards.status_code == 422, backwards.text

    proposed = httpx.post(f"{dispatch.url}/v1/rosters", headers=secretary, json=body)
    assert proposed.status_code == 201, proposed.text
    roster = proposed.json()
    assert roster["status"] == "proposed"
    assert [turn["day"] for turn in roster["turns"]] == [day.isoformat() for day in days]
    assert roster["load"] == {unit_a: 2, unit_b: 2, unit_c: 2}
    assert roster["excluded"] == [
        {"unit_id": unskilled, "reason": "skills-missing", "missing": ["first aid"]}
    ]
    assert all(
        turn["unit_id"] != unit_a
        for turn in roster["turns"]
        if turn["day"] in body["blocked"][0]["days"]
    )
    assert roster["turns"][0]["starts_at"].startswith(f"{days[0].isoformat()}T00:00:00")
    assert (
        httpx.get(f"{dispatch.url}/v1/rosters/{roster['id']}", headers=secretary).json() == roster
    )
    assert (
        httpx.get(f"{dispatch.url}/v1/rosters/{roster['id']}", headers=stranger).status_code == 404
    )

    confirmed = httpx.post(f"{dispatch.url}/v1/rosters/{roster['id']}/confirm", headers=secretary)
    assert confirmed.status_code == 200, confirmed.text
    turns = confirmed.json()["turns"]
    assert confirmed.json()["status"] == "confirmed"
    assert all(turn["demand_id"] for turn in turns)
    again = httpx.post(f"{dispatch.url}/v1/rosters/{roster['id']}/confirm", headers=secretary)
    assert again.status_code == 409, again.text
    assert slug(again) == "roster-not-proposed", again.text

    # Each turn's demand is filled by the claim units made for its unit.
    def demand(turn: dict[str, Any]) -> dict[str, Any]:
        return dict(
            httpx.get(f"{dispatch.url}/v1/demands/{turn['demand_id']}", headers=secretary).json()
        )

    assert eventually(lambda: all(demand(turn)["status"] == "filled" for turn in turns))
    tokens = {unit: bearer(token("unit", sub=f"u-{unit}", unit=unit)) for unit in unit_ids}

    def claims_of(turn: dict[str, Any]) -> list[dict[str, Any]]:
        answer = httpx.get(
            f"{units.url}/v1/claims",
            params={"demand_id": turn["demand_id"]},
            headers=tokens[turn["unit_id"]],
        )
        return list(answer.json()["items"])

    for turn in turns:
        (claim,) = claims_of(turn)
        assert claim["claimant"] == {"type": "unit", "id": turn["unit_id"]}
        assert claim["roster_id"] == roster["id"]
        assert claim["headcount"] == 2
        assert claim["status"] == "accepted"
        assert claim["acknowledged_at"] is None

    kept, given_back = (turn for turn in turns if turn["unit_id"] == unit_b)
    kept_claim, back_claim = claims_of(kept)[0], claims_of(given_back)[0]
    unit = tokens[unit_b]
    accepted = httpx.post(f"{units.url}/v1/claims/{kept_claim['id']}/accept", headers=unit)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["acknowledged_at"], accepted.text
    not_theirs = httpx.post(
        f"{units.url}/v1/claims/{kept_claim['id']}/accept", headers=tokens[unit_c]
    )
    assert not_theirs.status_code == 403, not_theirs.text

    handed = httpx.post(
        f"{units.url}/v1/claims/{back_claim['id']}/hand-back",
        headers=unit,
        json={"reason": "branch meeting"},
    )
    assert handed.status_code == 200, handed.text
    assert handed.json()["status"] == "withdrawn", handed.text
    reopened = eventually(lambda: demand(given_back)["status"] == "open")
    assert reopened
    assert demand(given_back)["filled"] == 0
    twice = httpx.post(f"{units.url}/v1/claims/{back_claim['id']}/hand-back", headers=unit)
    assert twice.status_code == 409, twice.text

    # Named rosters: names, the headcount bound, a substitution.
    names = [f"Wang Fang {tag}", f"Liu Yang {tag}"]
    substitute = f"Chen Jing {tag}"
    members_url = f"{units.url}/v1/claims/{kept_claim['id']}/members"
    named = httpx.put(members_url, headers=unit, json={"members": names})
    assert named.status_code == 200, named.text
    assert named.json()["members"] == names, named.text
    too_many = httpx.put(members_url, headers=unit, json={"members": [*names, substitute]})
    assert too_many.status_code == 422, too_many.text
    swapped = httpx.post(
        f"{members_url}/substitute",
        headers=unit,
        json={"member": names[0], "substitute": substitute},
    )
    assert swapped.status_code == 200, swapped.text
    assert swapped.json()["members"] == [substitute, names[1]]
    absent = httpx.post(
        f"{members_url}/substitute", headers=unit, json={"member": "Nobody", "substitute": "X Y"}
    )
    assert absent.status_code == 422, absent.text

    # After check-in the names are what happened: refused with why. An ordinary demand
    # starting within the hour, so its check-in is open.
    starts = datetime.now(UTC) + timedelta(minutes=30)
    soon = httpx.post(
        f"{dispatch.url}/v1/demands",
        headers=secretary,
        json={
            "community_id": community,
            "kind": "staffing",
            "title": "Loading dock",
            "slots": 2,
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
        },
    )
    assert soon.status_code == 201, soon.text
    soon_id = soon.json()["id"]

    def claim_soon() -> httpx.Response | None:
        answer = httpx.post(
            f"{units.url}/v1/demands/{soon_id}/claims",
            headers=tokens[unit_c],
            json={"headcount": 2, "members": [names[1]]},
        )
        return answer if answer.status_code == 201 else None

    claim_now = eventually(claim_soon)
    assert claim_now is not None
    claim_id = claim_now.json()["id"]
    code = httpx.get(f"{units.url}/v1/demands/{soon_id}/check-in-code", headers=secretary)
    assert code.status_code == 200, code.text
    checked = httpx.post(
        f"{units.url}/v1/claims/{claim_id}/check-in",
        headers=tokens[unit_c],
        json={"code": code.json()["code"]},
    )
    assert checked.status_code == 200, checked.text
    late = httpx.put(
        f"{units.url}/v1/claims/{claim_id}/members",
        headers=tokens[unit_c],
        json={"members": [substitute]},
    )
    assert late.status_code == 409, late.text
    assert slug(late) == "members-fixed", late.text
    assert "checked in" in late.json()["detail"]
    late_swap = httpx.post(
        f"{units.url}/v1/claims/{claim_id}/members/substitute",
        headers=tokens[unit_c],
        json={"member": names[1], "substitute": substitute},
    )
    assert late_swap.status_code == 409, late_swap.text
    assert slug(late_swap) == "members-fixed", late_swap.text
    not_committed = httpx.post(f"{units.url}/v1/claims/{claim_id}/accept", headers=tokens[unit_c])
    assert not_committed.status_code == 409, not_committed.text

    # Audit has every step, and no name.
    wanted = {
        "roster.confirmed",
        "claim.commitment_accepted",
        "claim.members_named",
        "claim.member_substituted",
        "claim.checked_in",
    }
    assert eventually(lambda: wanted <= set(audit_types(audit, auditor))), audit_types(
        audit, auditor
    )
    events = httpx.get(f"{audit.url}/v1/events", params={"limit": 1000}, headers=auditor).json()
    (said,) = [
        item["event"] for item in events["items"] if item["event"]["type"] == "roster.confirmed"
    ]
    assert said["subject"] == roster["id"]
    assert [turn["demand_id"] for turn in said["data"]["turns"]] == [t["demand_id"] for t in turns]
    (named_event,) = [
        item["event"] for item in events["items"] if item["event"]["type"] == "claim.members_named"
    ]
    assert named_event["data"]["members_named"] == 2
    assert named_event["data"]["members_digest"]
    committed = [
        item["event"]["data"]
        for item in events["items"]
        if item["event"]["type"] == "claim.accepted"
        and item["event"]["data"].get("committed_by") == roster["id"]
    ]
    assert len(committed) == len(turns)
    audit_text = everything_in(mongodb_url, f"{db_prefix}audit")
    for name in (*names, substitute):
        assert name not in audit_text
    # The names are kept where they are needed: units.
    assert substitute in everything_in(mongodb_url, f"{db_prefix}units")
