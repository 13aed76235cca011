"""The gate units' claims queue at, per demand: one holder per key at a time, other keys
free, nothing kept (`shared.http.commands.KeyedGate`, moved there from units)."""

import asyncio

import pytest

from shared.http.commands import KeyedGate

pytestmark = pytest.mark.unit


async def test_one_holder_per_key_and_keys_are_forgotten_when_free() -> None:
    gate = KeyedGate()
    inside: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}

    async def hold(key: str) -> None:
        async with gate.hold(key):
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            await asyncio.sleep(0.001)
            inside[key] -= 1

    await asyncio.gather(*[hold(key) for key in "abababab"])
    assert most == {"a": 1, "b": 1}
    assert len(gate) == 0


async def test_a_failing_holder_releases_the_key() -> None:
    gate = KeyedGate()
    with pytest.raises(RuntimeError):
        async with gate.hold("a"):
            raise RuntimeError("refused")
    async with asyncio.timeout(1):
        async with gate.hold("a"):
            pass
    assert len(gate) == 0
