"""A registration may name a community dispatch registered a moment ago.

Units learns of communities from `community.registered`, which arrives a few milliseconds to
a few seconds after dispatch answered 201 (nothing is synchronous between services). A
registration that names a community units has not heard of yet waits for that event, bounded,
before the handler decides: a community registered a moment ago is accepted, and only one
nobody registered is refused 422 `unknown-community`, after the wait.
"""

import asyncio
import time
from collections.abc import Sequence

from services.units.adapters import repository
from shared.store.mongo import Database

COMMUNITY_ARRIVAL_S = 5.0
POLL_S = 0.05


async def communities_arrived(
    db: Database, community_ids: Sequence[str], *, within_s: float = COMMUNITY_ARRIVAL_S
) -> bool:
    """True as soon as units holds every named community; False once `within_s` passed."""
    wanted = set(community_ids)
    deadline = time.monotonic() + within_s
    delay = POLL_S
    while True:
        known = {community.id for community in await repository.get_communities(db, list(wanted))}
        wanted -= known
        if not wanted:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.5)
