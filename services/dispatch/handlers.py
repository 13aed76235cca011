"""Dispatch's commands, one function each: check the rule, change the state, emit the event."""

from services.dispatch.adapters import repository
from services.dispatch.domain.model import Community, Demand
from services.dispatch.entrypoints.schemas import CommunityIn, DemandIn
from shared.auth import Principal, forbidden
from shared.clock import utcnow
from shared.events.catalogue import CommunityRegistered, DemandPublished, Location
from shared.events.envelope import make_event
from shared.http.problems import ProblemError
from shared.ids import new_id
from shared.store.unit_of_work import Tx

SOURCE = "/whistle/dispatch"


async def register_community(tx: Tx, command: CommunityIn, actor: Principal) -> Community:
    community = Community(**command.model_dump())
    try:
        await repository.insert_community(tx, community)
    except repository.AlreadyExists:
        raise ProblemError(
            409,
            "community-exists",
            "Community exists",
            f"a community with id '{community.id}' is already registered",
        ) from None
    tx.emit(
        make_event(
            CommunityRegistered(
                community_id=community.id,
                name=community.name,
                street=community.street,
                district=community.district,
            ),
            source=SOURCE,
            subject=community.id,
            correlationid=community.id,
            causationid=community.id,
            actor=actor.sub,
        )
    )
    return community


async def publish_demand(tx: Tx, command: DemandIn, actor: Principal, request_id: str) -> Demand:
    """The whistle: a secretary of the community (or an admin) posts a demand."""
    if not (actor.is_admin or actor.is_secretary_of(command.community_id)):
        raise forbidden(
            f"only the secretary of community '{command.community_id}' posts its demands"
        )
    community = await repository.get_community(tx.db, command.community_id, tx)
    if community is None:
        raise ProblemError(
            422,
            "unknown-community",
            "Unknown community",
            f"community '{command.community_id}' is not registered",
            errors=[
                {
                    "loc": ["body", "community_id"],
                    "msg": "unknown community",
                    "type": "unknown_community",
                }
            ],
        )
    now = utcnow()
    demand = Demand(
        id=new_id("dem"),
        community_id=community.id,
        street=community.street,
        district=community.district,
        kind=command.kind,
        title=command.title,
        description=command.description,
        location=Location(**command.location.model_dump()),
        skills=tuple(command.skills),
        slots=command.slots,
        starts_at=command.starts_at,
        ends_at=command.ends_at,
        fill_by=command.fill_by or command.starts_at,
        priority=command.priority,
        status="open",
        filled=0,
        level="community",
        created_at=now,
        created_by=actor.sub,
        version=1,
    )
    await repository.insert_demand(tx, demand)
    tx.emit(
        make_event(
            DemandPublished(
                demand_id=demand.id,
                community_id=demand.community_id,
                street=demand.street,
                district=demand.district,
                kind=demand.kind,
                title=demand.title,
                description=demand.description,
                location=demand.location,
                skills=demand.skills,
                slots=demand.slots,
                starts_at=demand.starts_at,
                ends_at=demand.ends_at,
                fill_by=demand.fill_by,
                priority=demand.priority,
                level=demand.level,
                created_by=demand.created_by,
            ),
            source=SOURCE,
            subject=demand.id,
            correlationid=demand.id,
            causationid=request_id,
            actor=actor.sub,
            time=now,
        )
    )
    return demand
