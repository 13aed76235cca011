"""HTTP semantics every service keeps (RFC 9110), as one ASGI middleware:

- `HEAD` is answered on every `GET` route: the same status and headers, no body (FastAPI
  routes do not add HEAD themselves, so it was a 405);
- a request body that is not JSON is a 415 before any handler runs: every body Whistle
  takes is `application/json` (or a `+json` type).
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.problems import ProblemError, problem_response

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _media_type(value: bytes) -> str:
    return value.decode("latin-1").split(";", 1)[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length")
    if length is not None:
        return length.strip() not in (b"", b"0")
    return b"transfer-encoding" in headers


class HttpSemanticsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method in BODY_METHODS:
            headers = dict(scope.get("headers", []))
            content_type = headers.get(b"content-type")
            if _has_body(headers) and (
                content_type is None or not _is_json(_media_type(content_type))
            ):
                problem = ProblemError(
                    415,
                    "unsupported-media-type",
                    "Unsupported media type",
                    "send the body as JSON with 'Content-Type: application/json'",
                    headers={"Accept-Post": "application/json"},
                )
                await problem_response(problem, scope.get("path"))(scope, receive, send)
                return
        if method == "HEAD":
            await self._head(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _head(self, scope: Scope, receive: Receive, send: Send) -> None:
        finished = False

        async def head_send(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.start":
                await send(message)
            elif message["type"] == "http.response.body" and not finished:
                finished = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def head_receive() -> Message:
            # Once the headers are out a streaming GET (SSE, NDJSON) sees its client gone.
            if finished:
                return {"type": "http.disconnect"}
            return await receive()

        await self.app({**scope, "method": "GET"}, head_receive, head_send)
