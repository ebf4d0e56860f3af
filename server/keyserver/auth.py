"""Who may do what.

- The master key (admin) may do everything.
- A key acting on itself may call Info, Verify and Regenerate (self-rotation);
  while rotating itself it may change only SELF_SETTINGS, and its expiry stays
  as it is. This holds for a team manager acting on its own key too.
- A team manager, a key whose permissions hold `manage_team_keys: true` and
  which has a team_id, may call every RPC on the other keys of its own team.
  It can neither move a key to another team nor grant more than it holds
  itself: no budget, limit, model, guardrail or permission beyond its own, no
  key that outlives it, and no reset of a key's spend.
- A secret retired by a rotation that still works in its grace period may only
  Verify and describe (Info) its key: whoever rotated the key holds the new
  secret, and the old one must not be enough to take the key over.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
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
#: Per-model limits a manager may hand out only up to its own, model by model.
_MODEL_LIMITS = ("model_rpm_limit", "model_tpm_limit")
#: Restrictions on the manager that every key it manages must carry too.
_REQUIRED_LISTS = ("guardrails", "enforced_params")


#: What a caller that authenticated with a retired secret may still do.
RETIRED_SECRET_ACTIONS = frozenset({"info", "verify"})

#: How the messages name each action.
_VERBS = {"info": "describe", "verify": "verify", "regenerate": "regenerate"}


@dataclasses.dataclass(frozen=True)
class Principal:
    """The authenticated caller: the master key, or one stored key."""

    key: KeyView | None
    actor_name: str = "master"
    #: Whether the caller presented a retired secret still in its grace period.
    retired_secret: bool = False

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


def _deny_retired(principal: Principal, action: str) -> None:
    if principal.retired_secret and action not in RETIRED_SECRET_ACTIONS:
        raise _deny(
            "this secret was rotated and only works in its grace period for "
            "Verify and Info; use the key's current secret"
        )


def require_manager(principal: Principal, action: str) -> str | None:
    """Allow admins (returns None) and team managers (returns their team)."""
    if principal.is_admin:
        return None
    _deny_retired(principal, action)
    team = principal.managed_team
    if team is None:
        raise _deny(f"this key may not {action}: it is not a team manager")
    return team


def check_target(principal: Principal, target: KeyView, action: str) -> str:
    """Allow `action` on `target`; return the role it was allowed as.

    A key acting on itself is "self" even when it manages its team, so a
    manager cannot raise its own limits or lift its own block.
    """
    if principal.is_admin:
        return "admin"
    _deny_retired(principal, action)
    assert principal.key is not None
    if target.id == principal.key.id:
        if action in _VERBS:
            return "self"
        raise _deny(f"a key may not {action} itself")
    team = principal.managed_team
    if team is not None and target.team_id == team:
        return "manager"
    raise _deny(f"this key may not {_VERBS.get(action, action)} that key")


def check_changes(principal: Principal, role: str, changes: Mapping[str, Any]) -> None:
    """Refuse settings the caller may not set in its role."""
    if role == "admin":
        return
    if role == "self":
        for name in sorted(changes):
            if name not in SELF_SETTINGS:
                raise _deny(f"a key rotating itself may not change {name}", param=name)
        return
    if "spend" in changes:
        # Lowering a key's spend hands it budget again; only the admin may.
        raise _deny("a team manager may not set a key's spend", param="spend")
    check_grant(principal, changes, changes.keys())


def check_expiry(principal: Principal, role: str, expires: dt.datetime | None) -> None:
    """Refuse, for a manager, a key that would outlive the manager itself."""
    if role != "manager":
        return
    assert principal.key is not None
    own = principal.key.expires
    if own is not None and (expires is None or expires > own):
        raise _deny(
            f"the key would outlive the manager, which expires at {own.isoformat()}Z",
            param="duration",
        )


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
    for name in _MODEL_LIMITS:
        if name in names:
            _check_model_limits(name, getattr(manager, name), values.get(name) or {})
    if "model_max_budget" in names:
        _check_model_budgets(
            manager.model_max_budget, values.get("model_max_budget") or {}
        )
    for name in _REQUIRED_LISTS:
        own_items = set(getattr(manager, name))
        if name in names and not own_items <= set(values.get(name) or []):
            raise _deny(
                f"{name} must keep every one the manager has: "
                f"{', '.join(sorted(own_items))}",
                param=name,
            )


def _check_model_limits(
    name: str, own: Mapping[str, int], given: Mapping[str, int]
) -> None:
    for model, limit in own.items():
        if model not in given or given[model] > limit:
            raise _deny(
                f"{name} for {model} may not exceed the manager's own ({limit})",
                param=name,
            )


def _check_model_budgets(
    own: Mapping[str, Mapping[str, Any]], given: Mapping[str, Mapping[str, Any]]
) -> None:
    for model, budget in own.items():
        limit = budget.get("budget_limit")
        if limit is None:
            continue
        granted = (given.get(model) or {}).get("budget_limit")
        if granted is None or granted > limit:
            raise _deny(
                f"model_max_budget for {model} may not exceed the manager's own "
                f"({limit})",
                param="model_max_budget",
            )
