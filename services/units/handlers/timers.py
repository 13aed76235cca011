"""Units' timer: at a demand's end, accepted claims that never checked in are no-shows.

Scheduled when the demand is first copied (`handlers/events.py`), stored, so it survives a
restart; cancelled when the demand is cancelled.
"""

from services.units.adapters import outgoing, repository
from shared.events.catalogue import ClaimNoShow
from shared.store.mongo import Document
from shared.store.unit_of_work import Tx

NO_SHOW_TIMER = "units.no-show"


def no_show_key(demand_id: str) -> str:
    return f"no-show:{demand_id}"


async def on_no_show_due(tx: Tx, timer: Document) -> None:
    """At `ends_at`, accepted claims that never checked in become no-shows."""
    demand_id = timer["payload"]["demand_id"]
    for absent in await repository.claims_on(tx, demand_id, ["accepted"]):
        marked = await repository.move_claim(tx, absent, ["accepted"], {"status": "no_show"})
        outgoing.emit_claim(tx, ClaimNoShow, marked)
