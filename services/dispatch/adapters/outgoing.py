"""Every envelope dispatch emits is built here: its source, subject and correlation are the
demand's (or the community's), its causation the request or timer that caused it."""

from datetime import datetime

from shared.events.catalogue import EventData
from shared.events.envelope import make_event
from shared.store.unit_of_work import Tx

SOURCE = "/whistle/dispatch"
# The actor of what dispatch does by itself (its timers).
ACTOR = "dispatch"


def emit(
    tx: Tx,
    data: EventData,
    subject: str,
    causationid: str,
    actor: str,
    time: datetime | None = None,
) -> None:
    tx.emit(
        make_event(
            data,
            source=SOURCE,
            subject=subject,
            correlationid=subject,
            causationid=causationid,
            actor=actor,
            time=time,
        )
    )
