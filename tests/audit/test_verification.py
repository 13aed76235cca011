"""The chain walk on records built in memory: what counts as tampering."""

import copy
from typing import Any

import pytest

from services.audit.domain.chain import GENESIS_HASH, chain_hash
from services.audit.domain.verification import ChainWalk

pytestmark = pytest.mark.unit


def chain(n: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        event = {"id": f"e{seq}", "type": "x", "data": {"n": seq, "名": "社区"}}
        record: dict[str, Any] = {
            "seq": seq,
            "prev_hash": prev,
            "hash": chain_hash(prev, event),
            "event": event,
        }
        records.append(record)
        prev = record["hash"]
    return records


def walk(records: list[dict[str, Any]], head: dict[str, Any] | None = None) -> dict[str, Any]:
    w = ChainWalk()
    for record in records:
        if not w.check(record):
            break
    w.finish(head)
    return w.verdict()


def head_of(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"seq": records[-1]["seq"], "hash": records[-1]["hash"]}


def test_an_untouched_chain_verifies() -> None:
    records = chain(5)
    assert walk(records, head_of(records)) == {
        "ok": True,
        "events": 5,
        "head_hash": records[-1]["hash"],
    }
    assert walk([], {"seq": 0, "hash": GENESIS_HASH})["ok"]


def test_an_edited_event_is_caught_at_its_seq() -> None:
    records = chain(5)
    head = head_of(records)
    records[2]["event"]["data"]["n"] = 99
    assert walk(records, head)["first_bad_seq"] == 3


def test_a_rehashed_record_is_caught_at_the_next_one() -> None:
    records = chain(5)
    head = head_of(records)
    records[2]["event"]["data"]["n"] = 99
    records[2]["hash"] = chain_hash(records[2]["prev_hash"], records[2]["event"])
    assert walk(records, head)["first_bad_seq"] == 4


def test_gaps_reorderings_and_cut_tails_are_caught() -> None:
    records = chain(5)
    head = head_of(records)
    assert walk([*records[:2], *records[3:]], head)["first_bad_seq"] == 3
    assert walk([records[1], records[0], *records[2:]], head)["first_bad_seq"] == 1
    assert walk(records[:4], head)["first_bad_seq"] == 5
    swapped = copy.deepcopy(records)
    swapped[1]["event"], swapped[2]["event"] = swapped[2]["event"], swapped[1]["event"]
    assert walk(swapped, head)["first_bad_seq"] == 2


def test_key_order_does_not_matter_but_every_byte_of_content_does() -> None:
    event = {"b": 1, "a": {"y": "社区", "x": [1, 2]}}
    same = {"a": {"x": [1, 2], "y": "社区"}, "b": 1}
    assert chain_hash(GENESIS_HASH, event) == chain_hash(GENESIS_HASH, same)
    assert chain_hash(GENESIS_HASH, event) != chain_hash(GENESIS_HASH, {**event, "b": 2})
