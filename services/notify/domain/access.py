"""Who may read what in notify, as pure predicates of a `Principal`.

Whose inbox a token opens: unit -> its unit, volunteer -> themself, secretary -> the office of
the community (or street or district) named by its `community` claim. Nobody else has one.
"""

from services.notify.domain.refusals import NoInbox
from shared.auth import Principal, Role


def inbox_owner(principal: Principal) -> str:
    """The inbox the principal opens; NoInbox for a role that has none."""
    if principal.role is Role.UNIT and principal.unit:
        return f"unit:{principal.unit}"
    if principal.role is Role.VOLUNTEER and principal.volunteer:
        return f"volunteer:{principal.volunteer}"
    if principal.role is Role.SECRETARY and principal.community:
        return f"office:{principal.community}"
    raise NoInbox(principal.role.value)


def principal_key(principal: Principal) -> str:
    """Who a principal is, for the per-principal stream limit (role and identity, not `sub`)."""
    ident = principal.unit or principal.volunteer or principal.community or ""
    return f"{principal.role.value}:{ident}:{principal.sub}"


def may_see_deliveries(principal: Principal, notification_owner: str) -> bool:
    """A notification's deliveries: its owner, or an admin (NoInbox for a role with neither)."""
    return principal.is_admin or inbox_owner(principal) == notification_owner
