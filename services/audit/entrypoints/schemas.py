"""What audit's HTTP side returns (the contract's audit section), for clients and OpenAPI."""

from typing import Any

from pydantic import BaseModel, Field


class Record(BaseModel):
    partition: str = Field(
        description="the partition of the log (a district by default; `default` for a log "
        "written before partitions)"
    )
    seq: int = Field(description="position in its partition: 1, 2, 3, ... without gaps")
    hash: str = Field(description="sha256(prev_hash || canonical JSON of event), hex")
    prev_hash: str = Field(
        description="the partition's previous record's hash (64 zeros for seq 1)"
    )
    event: dict[str, Any] = Field(description="the CloudEvent exactly as it was received")


class EventsPage(BaseModel):
    items: list[Record]
    next_after: int = Field(
        description="with `partition`: pass as `after` for the next page; unchanged when this "
        "page is empty"
    )
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page across partitions; unchanged when "
        "this page is empty (null: nothing read yet)"
    )


class TimelineItem(Record):
    since_whistle_s: float | None = Field(
        description="seconds from the demand's `demand.published` to this event"
    )


class Timeline(BaseModel):
    demand_id: str
    partition: str = Field(description="the partition the demand's story is in")
    items: list[TimelineItem]
    next_after: int | None = Field(
        None, description="`after` for the next page of the timeline; null on the last page"
    )


class Claimant(BaseModel):
    type: str
    id: str


class ClaimState(BaseModel):
    claim_id: str
    claimant: Claimant
    headcount: int
    status: str
    accepted_at: str | None
    checked_in_at: str | None
    completed_at: str | None
    hours: float
    person_times: int


class DemandState(BaseModel):
    as_of: str | None = Field(description="the time asked for; null: after every event")
    demand_id: str
    community_id: str | None
    title: str | None
    kind: str | None
    priority: str | None
    skills: list[str] = []
    status: str
    level: str
    slots: int
    filled: int
    whistle_at: str | None
    starts_at: str | None
    ends_at: str | None
    fill_by: str | None = None
    first_claim_at: str | None
    updated_at: str | None
    series_id: str | None = Field(
        None, description="the series it is an occurrence of (`series.published` names it)"
    )
    events: int = Field(description="events of this demand folded into the state")
    claimants: list[ClaimState]


class Rules(BaseModel):
    version: str
    weights: dict[str, float]
    speed_full_marks_s: int
    speed_zero_s: int
    night: str = Field(description="the hours counted as night, and the time zone")


class ReportRow(BaseModel):
    rank: int
    key: str
    demands: int
    claims: int
    median_first_claim_s: float | None
    p90_first_claim_s: float | None
    fill_rate: float | None
    attendance_rate: float | None
    no_shows: int
    completion_rate: float | None
    person_times: int
    hours: float = Field(description="person-hours served (headcount x hours on duty)")
    night_hours: float = Field(description="of those, the hours between 22:00 and 06:00 local")
    score: float


class Fairness(BaseModel):
    index: float | None = Field(
        description="Jain's index of the hours per claimant: (sum x)^2 / (n * sum x^2); 1.0 "
        "evenly shared, 1/n one carries it all; null without hours"
    )
    claimants: int = Field(description="n: those with a claim accepted on a demand of the window")
    hours: float


class FairnessIndices(BaseModel):
    unit: Fairness
    volunteer: Fairness


class Report(BaseModel):
    rules: Rules
    from_: str = Field(alias="from", serialization_alias="from")
    to: str
    as_of: str | None
    by: str
    community_id: str | None
    rows: list[ReportRow]
    fairness: FairnessIndices


class PartitionVerdict(BaseModel):
    partition: str
    ok: bool
    events: int | None = Field(None, description="records verified (when ok)")
    head_hash: str | None = Field(None, description="the partition's last hash (when ok)")
    first_bad_seq: int | None = Field(None, description="where the chain breaks (when not ok)")
    reason: str | None = None
    events_verified: int | None = Field(None, description="records before the break")
    walked_from_seq: int | None = Field(
        None, description="the point this walk started after (0: the whole chain)"
    )
    walked: int | None = Field(None, description="records this walk checked")


class Verdict(PartitionVerdict):
    """One partition's verdict (`partition=`), or every partition's summed up."""

    partition: str | None = Field(  # type: ignore[assignment]
        None, description="the partition checked, or (all, not ok) the first broken one"
    )
    root: str | None = Field(
        None, description="(all) the Merkle root of every partition's head, as checkpoints sign"
    )
    partitions: list[PartitionVerdict] | None = Field(
        None, description="(all) each partition's verdict, in name order"
    )


class PartitionHead(BaseModel):
    partition: str
    seq: int
    hash: str


class Partitions(BaseModel):
    root: str = Field(description="the Merkle root of the heads (see the checkpoint format)")
    items: list[PartitionHead]
