"""`whistle replay` and `whistle verify`: the audit log for auditors, over the audit service's HTTP.

The token comes from `--token`, else `WHISTLE_TOKEN`, else one minted with the local
`WHISTLE_JWT_SECRET` for an auditor (a dev convenience; in production pass a real token).
"""

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TextIO

import httpx
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.domain.checkpoints import (
    Checkpoint,
    SigningKeyError,
    encode_private_key,
    parse_line,
    public_key_from,
    public_key_text,
    signature_ok,
)
from shared.auth import Principal, Role, mint_token
from shared.settings import TokenSettings

DEFAULT_URL = "http://127.0.0.1:8004"
EXIT_TAMPERED = 1
EXIT_FAILED = 2

Url = Annotated[str, typer.Option(envvar="WHISTLE_AUDIT_URL", help="the audit service's base URL")]
Token = Annotated[
    str | None,
    typer.Option(envvar="WHISTLE_TOKEN", help="bearer token (default: mint an auditor's)"),
]


def _token(given: str | None) -> str:
    if given:
        return given
    principal = Principal(sub="whistle-cli", role=Role.AUDITOR)
    return mint_token(principal, TokenSettings(), ttl=timedelta(hours=1))


def _instant(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{name}: use RFC 3339, e.g. 2026-03-01T08:00:00+08:00") from None
    if parsed.tzinfo is None:
        raise typer.BadParameter(f"{name}: give an offset (Z or +08:00); local time is ambiguous")
    return parsed.isoformat()


def _fail(message: str) -> typer.Exit:
    typer.echo(f"whistle: {message}", err=True)
    return typer.Exit(EXIT_FAILED)


def _problem(response: httpx.Response) -> str:
    try:
        body = json.loads(response.read())
        return f"{response.status_code} {body.get('title')}: {body.get('detail')}"
    except ValueError:
        return f"{response.status_code} from the audit service"


@contextmanager
def _talking_to(url: str) -> Iterator[None]:
    try:
        yield
    except httpx.HTTPError as error:
        raise _fail(f"cannot read the audit service at {url}: {error}") from None


class Progress:
    """`seq N of H` on stderr, redrawn in place; silent unless stderr is a terminal."""

    def __init__(self, stream: TextIO, after: int, head: int | None) -> None:
        self._stream = stream
        self._on = stream.isatty()
        self._after = after
        self._head = head
        self.count = 0

    def advance(self, seq: int) -> None:
        self.count += 1
        if self._on and (self.count % 200 == 0 or seq == self._head):
            self._draw(seq)

    def _draw(self, seq: int) -> None:
        if self._head and self._head > self._after:
            share = (seq - self._after) / (self._head - self._after)
            bar = "#" * int(30 * share)
            line = f"\r[{bar:<30}] seq {seq} of {self._head}, {self.count} events"
        else:
            line = f"\rseq {seq}, {self.count} events"
        self._stream.write(line)
        self._stream.flush()

    def close(self) -> None:
        if self._on:
            self._stream.write(f"\r{self.count} events replayed" + " " * 40 + "\n")
            self._stream.flush()


Partition = Annotated[
    str | None, typer.Option(help="one partition of the log (default: every partition)")
]


def replay(
    partition: Partition = None,
    after: Annotated[
        int, typer.Option(min=0, help="start after this seq (of the --partition named)")
    ] = 0,
    subject: Annotated[str | None, typer.Option(help="only this subject")] = None,
    type: Annotated[str | None, typer.Option("--type", help="only this event type")] = None,
    since: Annotated[str | None, typer.Option(help="only events at or after this time")] = None,
    until: Annotated[str | None, typer.Option(help="only events before this time")] = None,
    community: Annotated[str | None, typer.Option(help="only this community's events")] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Print the audit log as NDJSON (one stored record per line): one partition in seq order,
    or every partition, one after another (name order)."""
    if after and partition is None:
        raise typer.BadParameter("--after counts within one partition: give --partition too")
    params: dict[str, Any] = {"after": after}
    if partition is not None:
        params["partition"] = partition
    filters = {
        "subject": subject,
        "type": type,
        "community_id": community,
        "since": _instant(since, "--since"),
        "until": _instant(until, "--until"),
    }
    params.update({key: value for key, value in filters.items() if value is not None})
    headers = {"Authorization": f"Bearer {_token(token)}", "Accept": "application/x-ndjson"}
    out = sys.stdout
    with (
        _talking_to(url),
        httpx.Client(timeout=httpx.Timeout(30.0, read=None)) as client,
        client.stream("GET", f"{url}/v1/events", params=params, headers=headers) as response,
    ):
        if response.status_code != 200:
            raise _fail(_problem(response))
        # One partition: its seqs count to its head. All: records count to the total.
        head = response.headers.get("x-whistle-head-seq") or response.headers.get(
            "x-whistle-events"
        )
        progress = Progress(sys.stderr, after, int(head) if head else None)
        try:
            for line in response.iter_lines():
                if not line:
                    continue
                out.write(line + "\n")
                seq = int(json.loads(line)["seq"]) if partition is not None else None
                progress.advance(seq if seq is not None else progress.count + 1)
            out.flush()
        except BrokenPipeError:
            # The reader (e.g. `head`) has had enough; that is not an error.
            sys.stderr.close()
            return
        progress.close()


def verify(
    partition: Partition = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the service's verdict")] = False,
    full: Annotated[
        bool, typer.Option("--full", help="walk from the start, not from the last ok walk")
    ] = False,
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints",
            help="audit's signed checkpoint file: also check the log still holds each pinned "
            "head (catches a chain rewritten and re-hashed)",
        ),
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option(
            envvar="WHISTLE_AUDIT_PUBLIC_KEY",
            help="trust only checkpoints signed by this Ed25519 public key (base64)",
        ),
    ] = None,
) -> None:
    """Walk the hash chains (one partition's, or every partition's); exit 1 when a stored
    record was changed, removed or reordered."""
    pinned = _read_checkpoints(checkpoints, public_key) if checkpoints is not None else None
    headers = {"Authorization": f"Bearer {_token(token)}"}
    params = {"full": "true"} if full else {}
    if partition is not None:
        params["partition"] = partition
    with _talking_to(url), httpx.Client(timeout=httpx.Timeout(30.0, read=None)) as client:
        response = client.get(f"{url}/v1/verify", params=params, headers=headers)
        rewritten = _first_rewritten(client, url, headers, pinned) if pinned is not None else None
    if response.status_code != 200:
        raise _fail(_problem(response))
    verdict = response.json()
    if as_json:
        typer.echo(json.dumps(verdict))
    elif verdict["ok"] and partition is not None:
        typer.echo(
            f"ok: partition {partition}: {verdict['events']} events, "
            f"head hash {verdict['head_hash']}"
        )
    elif verdict["ok"]:
        typer.echo(
            f"ok: {verdict['events']} events in {len(verdict['partitions'])} partitions, "
            f"root {verdict['root']}"
        )
    else:
        typer.echo(
            f"TAMPERED: partition {verdict.get('partition')}: first bad seq "
            f"{verdict['first_bad_seq']} ({verdict.get('reason')}); "
            f"{verdict.get('events_verified', 0)} events verified before it"
        )
    if pinned is not None:
        if rewritten is None:
            heads = {(name, seq) for c in pinned for name, (seq, _) in c.heads.items()}
            typer.echo(
                f"checkpoints ok: {len(pinned)} signed checkpoints hold, "
                f"{len(heads)} partition heads checked"
            )
        else:
            typer.echo(f"REWRITTEN: {rewritten}")
    if not verdict["ok"] or rewritten is not None:
        raise typer.Exit(EXIT_TAMPERED)


def _read_checkpoints(path: Path, public_key: str | None) -> list[Checkpoint]:
    """Every line of the file, each with a good signature (by the trusted key, if given)."""
    try:
        trusted = public_key_from(public_key) if public_key else None
    except SigningKeyError as error:
        raise _fail(f"--public-key: {error}") from None
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise _fail(f"cannot read {path}: {error}") from None
    pinned: list[Checkpoint] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            checkpoint = parse_line(line)
        except (ValueError, KeyError, TypeError):
            raise _fail(f"{path}:{number}: not a checkpoint line") from None
        if not signature_ok(checkpoint, trusted):
            typer.echo(f"REWRITTEN: {path}:{number}: the signature does not verify")
            raise typer.Exit(EXIT_TAMPERED)
        pinned.append(checkpoint)
    return pinned


def _first_rewritten(
    client: httpx.Client, url: str, headers: dict[str, str], pinned: list[Checkpoint]
) -> str | None:
    """The first pinned head the log no longer holds, described; None when all hold."""
    checked: set[tuple[str, int, str]] = set()
    for checkpoint in pinned:
        for partition, (seq, pinned_hash) in sorted(checkpoint.heads.items()):
            if seq == 0 or (partition, seq, pinned_hash) in checked:
                continue
            checked.add((partition, seq, pinned_hash))
            response = client.get(
                f"{url}/v1/events",
                params={"partition": partition, "after": seq - 1, "limit": 1},
                headers=headers,
            )
            if response.status_code != 200:
                raise _fail(_problem(response))
            items = response.json()["items"]
            where = f"partition {partition} seq {seq}"
            if not items or items[0]["seq"] != seq:
                return f"{where}, signed at {checkpoint.at}, is gone from the log"
            if items[0]["hash"] != pinned_hash:
                return (
                    f"{where} was signed at {checkpoint.at} with hash "
                    f"{pinned_hash}; the log now has {items[0]['hash']}"
                )
    return None


def audit_key() -> None:
    """Print a new Ed25519 key for WHISTLE_AUDIT_SIGNING_KEY, and its public key."""
    key = Ed25519PrivateKey.generate()
    typer.echo(f"WHISTLE_AUDIT_SIGNING_KEY={encode_private_key(key)}")
    typer.echo(f"WHISTLE_AUDIT_PUBLIC_KEY={public_key_text(key.public_key())}")
