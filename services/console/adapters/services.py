"""Calls to the four services' public HTTP APIs on the signed-in person's behalf.

Every call carries a token minted for that person alone, so each service applies its own
rules to them; a refusal comes back as a `Problem` for the page to put into words.
"""

import json as json_module
from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx
import structlog

from services.console.adapters.tokens import mint_for
from services.console.config import ConsoleSettings
from services.console.domain.accounts import Account
from services.console.domain.refusals import Problem

Service = Literal["dispatch", "units", "notify", "audit"]

_log = structlog.get_logger("whistle.console.services")


class Refused(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(f"{problem.status} {problem.slug}: {problem.detail}")
        self.problem = problem


class Services:
    def __init__(self, settings: ConsoleSettings, client: httpx.AsyncClient) -> None:
        self._settings = settings
        self._client = client
        self._bases: dict[Service, str] = {
            "dispatch": settings.dispatch_url.rstrip("/"),
            "units": settings.units_url.rstrip("/"),
            "notify": settings.notify_url.rstrip("/"),
            "audit": settings.audit_url.rstrip("/"),
        }

    def base(self, service: Service) -> str:
        return self._bases[service]

    async def call(
        self,
        account: Account,
        service: Service,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        token = mint_for(account, self._settings, self._settings.call_token_ttl_s)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        try:
            response = await self._client.request(
                method, f"{self._bases[service]}{path}", json=json, params=params, headers=headers
            )
        except httpx.HTTPError as error:
            _log.warning("service_unreachable", service=service, path=path, error=repr(error))
            raise Refused(Problem(503, "unavailable", f"{service} did not answer")) from error
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            raise Refused(Problem.from_body(response.status_code, body))
        return response.json() if response.content else None

    async def download(
        self,
        account: Account,
        service: Service,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        accept: str,
    ) -> AsyncIterator[bytes]:
        """A service's answer passed on as it comes (NDJSON, CSV), never held whole; a
        refusal is raised before the first byte."""
        token = mint_for(account, self._settings, self._settings.call_token_ttl_s)
        headers = {"Authorization": f"Bearer {token}", "Accept": accept}
        request = self._client.build_request(
            "GET", f"{self._bases[service]}{path}", params=params, headers=headers
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as error:
            raise Refused(Problem(503, "unavailable", f"{service} did not answer")) from error
        if response.status_code >= 400:
            body = await response.aread()
            await response.aclose()
            try:
                parsed = json_module.loads(body)
            except ValueError:
                parsed = None
            raise Refused(Problem.from_body(response.status_code, parsed))

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.aiter_bytes():
                    yield chunk
            finally:
                await response.aclose()

        return chunks()

    async def ready(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        for name, base in self._bases.items():
            try:
                answer = await self._client.get(f"{base}/healthz", timeout=2.0)
                checks[name] = "ok" if answer.status_code == 200 else f"http {answer.status_code}"
            except httpx.HTTPError:
                checks[name] = "unreachable"
        return checks
