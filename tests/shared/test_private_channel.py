"""Personal data never travels where audit listens (issue 10).

Every event type audit can store (everything on `whistle.events`) is checked field by field,
nested models included, against the personal fields; the private types go to
`whistle.private`, which has a consumer for each of them and no audit queue.
"""

from typing import Any, get_args

import pytest
from pydantic import BaseModel

from services.audit.entrypoints.events import AUDIT_EVENTS
from services.topology import ALL_CONSUMER_QUEUES
from shared.broker.topology import EVENTS_EXCHANGE, PRIVATE_EXCHANGE
from shared.events.catalogue import CATALOGUE, PRIVATE_TYPES, EventData, is_private
from shared.events.digest import details_digest, matches, new_salt

pytestmark = pytest.mark.unit

PERSONAL_FIELDS = {
    "phone",
    "email",
    "contact",
    "webhook_url",
    "webhook_secret",
    "building",
    "address",
    "description",
    "members",
    "lat",
    "lon",
}
# `name` is an organisation's (community, unit), never a person's, in these types only.
NAMED_ORGANISATIONS = {"community.registered", "unit.registered", "unit.updated"}


def _fields(model: type[BaseModel], prefix: str = "") -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(prefix + name)
        for candidate in (field.annotation, *get_args(field.annotation)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                names |= _fields(candidate, f"{prefix}{name}.")
    return names


def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1]


@pytest.mark.parametrize("event_type", sorted(set(CATALOGUE) - PRIVATE_TYPES))
def test_no_audited_event_carries_personal_data(event_type: str) -> None:
    fields = _fields(CATALOGUE[event_type])
    personal = {path for path in fields if _leaf(path) in PERSONAL_FIELDS}
    assert not personal, f"{event_type} would put {sorted(personal)} in the permanent log"
    if event_type not in NAMED_ORGANISATIONS:
        assert "name" not in {_leaf(path) for path in fields}


def test_the_private_types_are_the_details_of_people_and_places() -> None:
    assert {"volunteer.details", "unit.details", "demand.details"} == PRIVATE_TYPES
    assert all(CATALOGUE[t].PRIVATE for t in PRIVATE_TYPES)
    assert is_private("unit.details")
    assert not is_private("unit.registered")


def _binds(pattern: str, event_type: str) -> bool:
    if pattern == "#":
        return True
    head, _, tail = pattern.partition(".")
    kind, _, rest = event_type.partition(".")
    return head == kind and (tail == "*" or tail == rest)


def test_audit_listens_only_to_the_audited_exchange() -> None:
    assert AUDIT_EVENTS.exchange_name == EVENTS_EXCHANGE.name
    on_private = [spec for spec in ALL_CONSUMER_QUEUES if spec.exchange is PRIVATE_EXCHANGE]
    assert {spec.service for spec in on_private} == {"units", "notify"}
    for spec in on_private:
        args: dict[str, Any] = spec.queue().arguments or {}
        assert args["x-dead-letter-exchange"] == "whistle.dead"
        assert args["x-queue-type"] == "quorum"


@pytest.mark.parametrize("event_type", sorted(PRIVATE_TYPES))
def test_every_private_type_has_a_consumer_so_it_is_never_unroutable(event_type: str) -> None:
    consumers = [
        spec
        for spec in ALL_CONSUMER_QUEUES
        if spec.exchange is PRIVATE_EXCHANGE
        and any(_binds(key, event_type) for key in spec.routing_keys)
    ]
    assert consumers


def test_a_salted_digest_proves_what_was_said_only_with_the_salt() -> None:
    salt = new_salt()
    said = {"name": "Li Wei", "contact": {"phone": "+86 138 0000 0000"}}
    digest = details_digest(salt, said)
    assert matches(salt, said, digest)
    assert not matches(salt, {**said, "name": "Li Wen"}, digest)
    # Without the salt (erased with the record) nobody can test a guess against the log.
    assert not matches(new_salt(), said, digest)


def test_every_event_model_is_an_event_data() -> None:
    assert all(issubclass(model, EventData) for model in CATALOGUE.values())
