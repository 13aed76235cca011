"""A TCP proxy in front of a MongoDB server that counts the commands its client sends.

Every PyMongo command is one OP_MSG whose first section is a BSON document whose first key is
the command's name (`insert`, `find`, `update`, `commitTransaction`, ...), so counting needs
no driver hook inside the measured process: the proxy reads the 16-byte message header, and
from an OP_MSG the name of that first key. Replies are passed through untouched.
"""

import asyncio
import struct
import threading
from collections import Counter
from collections.abc import Coroutine
from typing import Any

OP_MSG = 2013
HEADER = struct.Struct("<iiii")  # messageLength, requestID, responseTo, opCode
# Sent by the driver's monitors on a timer, not because of any event.
MONITORING = frozenset({"hello", "ismaster", "isMaster", "ping", "buildInfo", "endSessions"})


def command_name(message: bytes) -> str | None:
    """The command an OP_MSG carries (None for other opcodes)."""
    _, _, _, op_code = HEADER.unpack_from(message)
    if op_code != OP_MSG:
        return None
    # flagBits (4 bytes), then the kind-0 section: kind byte, BSON document.
    offset = HEADER.size + 4
    if message[offset] != 0:
        return None
    element = offset + 1 + 4 + 1  # kind, document length, first element's type byte
    end = message.index(b"\x00", element)
    return message[element:end].decode()


class CommandCounter:
    """Listens on `port` and forwards to `target`; `counts` holds commands seen by name."""

    def __init__(self, target_host: str, target_port: int, port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = port
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def start(self) -> "CommandCounter":
        self._thread.start()

        async def listen() -> asyncio.Server:
            return await asyncio.start_server(self._client, "127.0.0.1", self.port)

        self._server = self._run(listen())
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()

        self._run(close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self.target_host, self.target_port
            )
        except OSError:
            writer.close()
            return
        to_server = asyncio.create_task(self._requests(reader, upstream_writer))
        to_client = asyncio.create_task(self._pipe(upstream_reader, writer))
        await asyncio.wait({to_server, to_client}, return_when=asyncio.FIRST_COMPLETED)
        for task in (to_server, to_client):
            task.cancel()
        for stream in (writer, upstream_writer):
            stream.close()

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(HEADER.size)
                (length, *_) = HEADER.unpack(header)
                message = header + await reader.readexactly(length - HEADER.size)
                name = command_name(message)
                if name is not None:
                    with self._lock:
                        self.counts[name] += 1
                writer.write(message)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            return
