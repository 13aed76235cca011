"""CloudEvents 1.0 in structured JSON mode, with Whistle's extensions.

Extensions: `correlationid` (the demand the flow belongs to), `causationid` (the event or
request that caused this one), `actor` (who did it), `dataversion` (schema version of `data`).
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.clock import utcnow
from shared.events.catalogue import EventData
from shared.ids import new_event_id


class CloudEvent(BaseModel):
    # Unknown extensions are kept, so audit stores (and hashes) exactly what producers sent.
    # Every field with a default is still always on the wire: the published schema says so
    # (CloudEvents requires `specversion`; a schema leaving it optional misleads validators).
    model_config = ConfigDict(
        frozen=True, extra="allow", json_schema_serialization_defaults_required=True
    )

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=100)
    subject: str = Field(min_length=1, max_length=200)
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]
    correlationid: str = Field(min_length=1, max_length=200)
    causationid: str = Field(min_length=1, max_length=200)
    actor: str = Field(min_length=1, max_length=200)
    dataversion: int = Field(default=1, ge=1)

    def wire(self) -> dict[str, Any]:
        """The JSON-ready dict that goes on the broker and into stores."""
        return self.model_dump(mode="json")


def make_event(
    data: EventData,
    *,
    source: str,
    subject: str,
    correlationid: str,
    causationid: str,
    actor: str,
    time: datetime | None = None,
) -> CloudEvent:
    """Wrap a catalogue data model in an envelope; its type and version come from the model."""
    return CloudEvent(
        id=new_event_id(),
        source=source,
        type=data.event_type(),
        subject=subject,
        time=time or utcnow(),
        data=data.model_dump(mode="json"),
        correlationid=correlationid,
        causationid=causationid,
        actor=actor,
        dataversion=data.dataversion(),
    )
