"""Refuse request bodies over a size limit before they are read into memory.

The 413 must reach the client. A client that sends its whole body before reading the answer
(Python's urllib, most HTTP libraries without `Expect: 100-continue`) saw "connection reset"
when the server answered and closed while the body was still coming: the kernel resets a
socket closed with unread data. So the rest of the body is read and discarded first, up to
`DRAIN_MAX_BYTES` and `DRAIN_TIMEOUT_S` (bounded: a client sending gigabytes is cut off
after that). A client that asked for `100 Continue` has sent nothing yet: it is answered at
once, without inviting the body.
"""

import asyncio
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.problems import ProblemError, problem_response


class BodyTooLarge(HTTPException):
    """An HTTPException, so FastAPI's body parsing re-raises it instead of answering 400."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is over the limit of {max_bytes} bytes")


DRAIN_MAX_BYTES = 16 * 1024 * 1024
DRAIN_TIMEOUT_S = 10.0


async def drain_body(receive: Receive, scope: Scope) -> int:
    """Read and discard what is left of the request body (bounded); returns bytes read."""
    headers = dict(scope.get("headers", []))
    if headers.get(b"expect", b"").lower() == b"100-continue":
        return 0
    drained = 0
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while drained <= DRAIN_MAX_BYTES:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            message = await asyncio.wait_for(receive(), remaining)
        except TimeoutError:
            break
        if message["type"] != "http.request":
            break  # http.disconnect: the client is gone
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return drained


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _problem(self) -> ProblemError:
        return ProblemError(
            413,
            "payload-too-large",
            "Payload too large",
            f"the request body is over the limit of {self.max_bytes} bytes",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await drain_body(receive, scope)
            await problem_response(self._problem(), scope.get("path"))(scope, receive, send)
            return

        received = 0
        response_started = False
        body_done = False
        exceeded = False

        async def limited_receive() -> Message:
            nonlocal received, body_done, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started, body_done
            if message["type"] == "http.response.start":
                response_started = True
                if exceeded and not body_done:
                    # Whoever answers the 413 (the app's handler or us), the client first
                    # finishes sending, so that it can read the answer.
                    await drain_body(receive, scope)
                    body_done = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await problem_response(self._problem(), scope.get("path"))(
                    scope, receive, tracking_send
                )
