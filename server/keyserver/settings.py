"""Validation of the settings a caller may send for a key.

Every function here takes the values that were *sent* (an unsent setting is
simply absent) and returns them normalised, or raises InvalidArgument naming
the field. A sent zero, false or empty value is a value like any other.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from keyserver import durations
from keyserver.errors import InvalidArgument

TEXT_FIELDS = frozenset({"key_alias", "user_id", "team_id", "budget_id"})
LIST_FIELDS = frozenset(
    {"models", "tags", "allowed_cache_controls", "guardrails", "enforced_params"}
)
MONEY_FIELDS = frozenset({"spend", "max_budget", "soft_budget"})
LIMIT_FIELDS = frozenset({"max_parallel_requests", "tpm_limit", "rpm_limit"})
OBJECT_FIELDS = frozenset({"metadata", "permissions"})
MODEL_LIMIT_FIELDS = frozenset({"model_rpm_limit", "model_tpm_limit"})
OTHER_FIELDS = frozenset({"model_max_budget", "budget_duration", "duration", "blocked"})
ALL_FIELDS = (
    TEXT_FIELDS
    | LIST_FIELDS
    | MONEY_FIELDS
    | LIMIT_FIELDS
    | OBJECT_FIELDS
    | MODEL_LIMIT_FIELDS
    | OTHER_FIELDS
)

_INT32_MAX = 2**31 - 1
_MAX_TEXT = 256
#: The most a key's lists and objects (models, metadata, permissions, ...) may
#: hold together, as compact JSON. A key is read on every Verify and listed a
#: hundred to a page, and a page must fit Envoy's 16 MiB buffer; unbounded
#: settings would make both as large as a caller cares to send.
MAX_KEY_SETTINGS_BYTES = 64 * 1024


def _number(value: Any, *, param: str, where: str = "") -> float:
    """A finite number of at least 0; `where` names a value nested in `param`."""
    where = where or param
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{where} must be a number", param=param)
    if not math.isfinite(value) or value < 0:
        raise InvalidArgument(
            f"{where} must be a finite number of at least 0", param=param
        )
    return float(value)


def _whole(value: Any, *, param: str, where: str = "") -> int:
    number = _number(value, param=param, where=where)
    if number != int(number) or number > _INT32_MAX:
        raise InvalidArgument(
            f"{where or param} must be a whole number from 0 to {_INT32_MAX}",
            param=param,
        )
    return int(number)


def _model_limits(value: Any, *, param: str) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise InvalidArgument(
            f"{param} must be an object of model name to number", param=param
        )
    return {
        str(m): _whole(v, param=param, where=f"{param}.{m}") for m, v in value.items()
    }


def _model_budgets(value: Any, *, param: str) -> dict[str, dict[str, Any]]:
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{param} must be an object", param=param)
    budgets: dict[str, dict[str, Any]] = {}
    for model, config in value.items():
        where = f"{param}.{model}"
        if not isinstance(config, Mapping):
            raise InvalidArgument(
                f"{where} must be an object with budget_limit and time_period",
                param=param,
            )
        unknown = set(config) - {"budget_limit", "time_period"}
        if unknown:
            raise InvalidArgument(
                f"{where} has unknown fields: {', '.join(sorted(unknown))}",
                param=param,
            )
        budget: dict[str, Any] = {}
        if config.get("budget_limit") is not None:
            budget["budget_limit"] = _number(
                config["budget_limit"], param=param, where=f"{where}.budget_limit"
            )
        if config.get("time_period") is not None:
            period = config["time_period"]
            if not isinstance(period, str):
                raise InvalidArgument(
                    f"{where}.time_period must be a duration", param=param
                )
            try:
                budget["time_period"] = durations.validate(
                    period, param=f"{where}.time_period"
                )
            except InvalidArgument as exc:
                raise InvalidArgument(exc.message, param=param) from None
        budgets[str(model)] = budget
    return budgets


def text(value: Any, *, param: str) -> str:
    """A text value of at most 256 characters, without NUL characters (which
    PostgreSQL cannot store in text)."""
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise InvalidArgument(
            f"{param} must be text of at most {_MAX_TEXT} characters", param=param
        )
    if "\x00" in value:
        raise InvalidArgument(f"{param} must not contain NUL characters", param=param)
    return value


def validate(sent: Mapping[str, Any]) -> dict[str, Any]:
    """Return the sent settings, checked and normalised."""
    clean: dict[str, Any] = {}
    for name, value in sent.items():
        if name not in ALL_FIELDS:
            raise InvalidArgument(f"unknown setting {name}", param=name)
        if name in TEXT_FIELDS:
            clean[name] = text(value, param=name)
        elif name in LIST_FIELDS:
            if not isinstance(value, list) or not all(
                isinstance(item, str) for item in value
            ):
                raise InvalidArgument(f"{name} must be a list of strings", param=name)
            clean[name] = list(value)
        elif name in MONEY_FIELDS:
            clean[name] = _number(value, param=name)
        elif name in LIMIT_FIELDS:
            clean[name] = _whole(value, param=name)
        elif name in OBJECT_FIELDS:
            if not isinstance(value, Mapping):
                raise InvalidArgument(f"{name} must be a JSON object", param=name)
            clean[name] = dict(value)
        elif name in MODEL_LIMIT_FIELDS:
            clean[name] = _model_limits(value, param=name)
        elif name == "model_max_budget":
            clean[name] = _model_budgets(value, param=name)
        elif name == "budget_duration":
            # An empty budget_duration switches spend resets off.
            clean[name] = durations.validate(value, param=name) if value else None
        elif name == "duration":
            clean[name] = (
                durations.NEVER
                if value == durations.NEVER
                else durations.validate(value, param=name)
            )
        elif name == "blocked":
            if not isinstance(value, bool):
                raise InvalidArgument("blocked must be true or false", param=name)
            clean[name] = value
    return clean


def check_size(stored: Mapping[str, Any], changed: Mapping[str, Any]) -> None:
    """Refuse `changed` if the key's lists and objects would outgrow the limit.

    `stored` holds every attribute of the key as it is, `changed` the ones this
    call sets. Nothing is measured unless a list or an object changes, so a
    plain rotation pays nothing.
    """
    grown = [name for name, value in changed.items() if isinstance(value, list | dict)]
    if not grown:
        return
    key = {**stored, **changed}
    sizes = {
        name: len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        for name, value in key.items()
        if isinstance(value, list | dict)
    }
    total = sum(sizes.values())
    if total > MAX_KEY_SETTINGS_BYTES:
        largest = max(grown, key=lambda name: sizes[name]).removesuffix("_")
        raise InvalidArgument(
            f"{largest} is too large: the key's lists and objects would hold "
            f"{total} bytes of JSON, and at most {MAX_KEY_SETTINGS_BYTES} are allowed",
            param=largest,
        )
