"""Who may read what of the log (pure): auditors and admins everything, a secretary their
own community only; anyone else nothing (the routes admit auditors and secretaries only)."""

from shared.auth import Principal, Role


def narrowed_to(principal: Principal, asked: str | None) -> str | None:
    """The community a question is narrowed to: a secretary's own, whatever they asked."""
    return principal.community if principal.role is Role.SECRETARY else asked


def may_ask_about(principal: Principal, asked: str | None) -> bool:
    """A secretary may name no community or their own; others any."""
    return principal.role is not Role.SECRETARY or asked in (None, principal.community)


def may_read_community(principal: Principal, community_id: str | None) -> bool:
    return principal.role is not Role.SECRETARY or community_id == principal.community
