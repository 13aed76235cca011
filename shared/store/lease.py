"""A named lease in MongoDB: at most one holder at a time, taken over when it lapses.

Used so that two replicas of a service never both run the outbox relay or fire the same
timer: the holder renews before expiry; a crashed holder's lease lapses after its TTL.
"""

from datetime import datetime, timedelta

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from shared.clock import utcnow
from shared.store.mongo import Database

LEASES_COLLECTION = "leases"


class Lease:
    def __init__(self, db: Database, name: str, owner: str, ttl_s: float) -> None:
        self._collection = db[LEASES_COLLECTION]
        self.name = name
        self.owner = owner
        self.ttl = timedelta(seconds=ttl_s)
        self._held_until: datetime | None = None

    async def acquire(self) -> bool:
        """Take or renew the lease; False while another live holder has it."""
        now = utcnow()
        # Renew only once a third of the TTL is spent: an idle relay polling every 100 ms
        # would otherwise write every poll (and on the embedded stand-in every write can
        # conflict with other transactions). Two thirds left still outlasts a bounded batch.
        if self._held_until is not None and self._held_until - now > self.ttl * 2 / 3:
            return True
        self._held_until = None
        try:
            held = await self._collection.find_one_and_update(
                {"_id": self.name, "$or": [{"owner": self.owner}, {"until": {"$lt": now}}]},
                {"$set": {"owner": self.owner, "until": now + self.ttl}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return False  # the document exists and someone else holds it
        if held is None or held.get("owner") != self.owner:
            return False
        self._held_until = now + self.ttl
        return True

    async def release(self) -> None:
        self._held_until = None
        await self._collection.delete_one({"_id": self.name, "owner": self.owner})
