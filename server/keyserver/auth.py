"""Who may do what.

- The master key (admin) may do everything.
- A key acting on itself may call Info, Verify and Regenerate (self-rotation);
  while rotating itself it may change only SELF_SETTINGS.
- A team manager, a key whose permissions hold `manage_team_keys: true` and
  which has a team_id, may call every RPC on the keys of its own team. It can
  neither move a key to another team nor grant more than it holds itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from keyserver.errors import PermissionDenied
from keyserver.reads import KeyView

#: The permission that makes a key a team manager.
MANAGE_TEAM_KEYS = "manage_team_keys"

#: Settings a key may change while rotating itself; none of them grants access.
SELF_SETTINGS = frozenset({"key_alias", "metadata", "tags"})

#: Limits a manager may hand out only up to its own value (if it has one).
_CAPPED = (
    "max_budget",
    "soft_budget",
    "max_parallel_requests",
    "tpm_limit",
    "rpm_limit",
)


@dataclasses.dataclass(frozen=True)
class Principal:
    """The authenticated caller: the master key, or one stored key."""

    key: KeyView | None
    actor_name: str = "master"

    @property
    def is_admin(self) -> bool:
        return self.key is None

    @property
    def actor(self) -> str:
        """How the audit log names the caller; never a secret."""
        return self.actor_name if self.key is None else self.key.id

    @property
    def managed_team(self) -> str | None:
        """The team this caller manages, if it is a team manager."""
        key = self.key
        if key is None or not key.team_id:
            return None
        return key.team_id if key.permissions.get(MANAGE_TEAM_KEYS) is True else None


def _deny(message: str, param: str | None = None) -> PermissionDenied:
    return PermissionDenied(message, param=param)


def require_manager(principal: Principal, action: str) -> str | None:
    """Allow admins (returns None) and team managers (returns their team)."""
    if principal.is_admin:
        return None
    team = principal.managed_team
    if team is None:
        raise _deny(f"this key may not {action}: it is not a team manager")
    return team


def check_target(principal: Principal, target: KeyView, action: str) -> str:
    """Allow `action` on `target`; return the role it was allowed as."""
    if principal.is_admin:
        return "admin"
    team = principal.managed_team
    if team is not None and target.team_id == team:
        return "manager"
    assert principal.key is not None
    if target.id == principal.key.id and action in ("info", "verify", "regenerate"):
        return "self"
    raise _deny(f"this key may not {action} that key")


def check_changes(principal: Principal, role: str, changes: Mapping[str, Any]) -> None:
    """Refuse settings the caller may not set in its role."""
    if role == "admin":
        return
    if role == "self":
        for name in sorted(changes):
            if name not in SELF_SETTINGS:
                raise _deny(f"a key rotating itself may not change {name}", param=name)
        return
    check_grant(principal, changes, changes.keys())


def check_grant(
    principal: Principal, values: Mapping[str, Any], names: Iterable[str]
) -> None:
    """Refuse values (of the settings `names`) beyond what a manager holds."""
    manager = principal.key
    assert manager is not None
    names = set(names)
    if "team_id" in names and values.get("team_id") != manager.team_id:
        raise _deny("a team manager may not move a key to another team", "team_id")
    for name in _CAPPED:
        own = getattr(manager, name)
        if name in names and own is not None:
            given = values.get(name)
            if given is None or given > own:
                raise _deny(
                    f"{name} may not exceed the manager's own ({own})", param=name
                )
    if "models" in names and manager.models:
        given_models = values.get("models") or []
        if not given_models or not set(given_models) <= set(manager.models):
            raise _deny(
                "models may only name models the manager may call", param="models"
            )
    if "permissions" in names:
        for name, value in (values.get("permissions") or {}).items():
            if value and not manager.permissions.get(name):
                raise _deny(
                    f"permission {name} is not held by the manager",
                    param="permissions",
                )
