"""bench/wire_counter.py: the command name read from a real OP_MSG PyMongo would send."""

import struct

import bson
import pytest

from bench.wire_counter import HEADER, OP_MSG, command_name

pytestmark = pytest.mark.unit


def op_msg(document: dict[str, object], op_code: int = OP_MSG) -> bytes:
    body = struct.pack("<I", 0) + b"\x00" + bson.encode(document)
    return HEADER.pack(HEADER.size + len(body), 7, 0, op_code) + body


def test_the_first_key_of_the_body_is_the_command() -> None:
    assert command_name(op_msg({"insert": "events", "ordered": True, "$db": "whistle"})) == "insert"
    assert command_name(op_msg({"commitTransaction": 1, "$db": "admin"})) == "commitTransaction"


def test_other_opcodes_are_not_commands() -> None:
    assert command_name(op_msg({"insert": "x"}, op_code=2004)) is None
