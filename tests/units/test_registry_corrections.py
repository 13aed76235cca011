"""Correcting and erasing people in units (issue 10): who may, what is published, and that
erasure gives a held place back and leaves no personal data in units' database."""

import json

import pytest

from tests.conftest import bearer
from tests.support.events import collect
from tests.units.support import ADMIN, UnitsWorld, problem_slug, tok, wait_distinct

pytestmark = pytest.mark.e2e


async def test_corrections_are_guarded_and_published_without_personal_data(
    world: UnitsWorld,
) -> None:
    community = await world.community()
    volunteer = await world.volunteer(community)
    url = f"{world.url}/v1/volunteers/{volunteer.id}"
    secretary = bearer(tok("secretary", community=community))
    for headers in (
        bearer(tok("secretary", community="c-elsewhere")),
        bearer(volunteer.token),
        bearer(tok("auditor")),
    ):
        refused = await world.http.patch(url, json={"name": "X"}, headers=headers)
        assert refused.status_code == 403, refused.text
        refused = await world.http.delete(url, headers=headers)
        assert refused.status_code == 403, refused.text
    bad = await world.http.patch(url, json={"contact": {"phone": "call me"}}, headers=secretary)
    assert bad.status_code == 422
    assert problem_slug(bad) == "validation-error"
    missing = await world.http.patch(
        f"{world.url}/v1/volunteers/vol_nobody", json={"name": "X"}, headers=bearer(ADMIN)
    )
    assert missing.status_code == 404

    async with collect(world.rabbitmq_url, "volunteer.*") as seen:
        corrected = await world.http.patch(
            url,
            json={"name": "Li Wen", "building": "9", "contact": {"email": "li.wen@mail.example"}},
            headers=secretary,
        )
        assert corrected.status_code == 200, corrected.text
        assert (corrected.json()["name"], corrected.json()["building"]) == ("Li Wen", "9")
        [updated] = await wait_distinct(seen, "volunteer.updated")
    assert updated["data"]["version"] == 2
    assert updated["data"]["details_digest"].startswith("hmac-sha256:")
    assert "Li Wen" not in json.dumps(updated)
    assert "li.wen@mail.example" not in json.dumps(updated)
    unit = await world.unit([community])
    refused = await world.http.patch(
        f"{world.url}/v1/units/{unit.id}", json={"name": "Y"}, headers=secretary
    )
    assert refused.status_code == 403
    renamed = await world.http.patch(
        f"{world.url}/v1/units/{unit.id}",
        json={"name": "Street Office 2", "contact": {"webhook_url": "https://hooks.example/w"}},
        headers=bearer(ADMIN),
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["webhook_secret"].startswith("whsec_")  # first webhook: shown once
    again = await world.http.patch(
        f"{world.url}/v1/units/{unit.id}", json={"name": "Street Office 3"}, headers=bearer(ADMIN)
    )
    assert again.json()["webhook_secret"] is None


async def test_erasure_gives_the_place_back_and_keeps_only_the_id(world: UnitsWorld) -> None:
    community = await world.community()
    demand = await world.demand(community, slots=1)
    volunteer = await world.volunteer(community)
    waiting = await world.volunteer(community)
    held = await world.claim(volunteer.token, demand)
    assert held.status_code == 201, held.text
    queued = await world.claim(waiting.token, demand, waitlist=True)
    assert queued.status_code == 202, queued.text
    secretary = bearer(tok("secretary", community=community))
    async with collect(world.rabbitmq_url, "volunteer.erased", "claim.*") as seen:
        erased = await world.http.delete(
            f"{world.url}/v1/volunteers/{volunteer.id}", headers=secretary
        )
        assert erased.status_code == 204, erased.text
        assert erased.content == b""
        [event] = await wait_distinct(seen, "volunteer.erased")
        [withdrawn] = await wait_distinct(seen, "claim.withdrawn")
        [promoted] = await wait_distinct(seen, "claim.promoted")
    assert event["data"] == {
        "volunteer_id": volunteer.id,
        "community_id": community,
        "claims_withdrawn": [held.json()["id"]],
    }
    assert withdrawn["data"]["claim_id"] == held.json()["id"]
    assert promoted["data"]["claimant"]["id"] == waiting.id
    again = await world.http.delete(f"{world.url}/v1/volunteers/{volunteer.id}", headers=secretary)
    assert again.status_code == 204
    gone = await world.http.get(f"{world.url}/v1/volunteers/{volunteer.id}", headers=secretary)
    assert gone.status_code == 410
    assert problem_slug(gone) == "volunteer-erased"
    claim_again = await world.claim(volunteer.token, demand)
    assert claim_again.status_code == 403
    # Nothing of the erased volunteer is left in units' database but the id.
    async with world.database() as db:
        for name in await db.list_collection_names():
            async for document in db[name].find():
                text = json.dumps(document, default=str)
                if volunteer.id in text:
                    assert "+86 138 0000 0000" not in text, (name, text)
                    assert "Li Wei" not in text, (name, text)
