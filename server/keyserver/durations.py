"""Durations in the legacy notation: `30s`, `15m`, `24h`, `7d`, `2w`, `1mo`."""

from __future__ import annotations

import calendar
import datetime as dt
import re

from keyserver.errors import InvalidArgument

_DURATION = re.compile(r"^(\d{1,6})(s|m|h|d|w|mo)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

#: The `duration` value that means "never expires".
NEVER = "-1"


#: The longest duration accepted: 100 years, far beyond any key's life and far
#: from datetime's year 9999, which a larger one would overflow.
MAX_YEARS = 100
_MAX_SECONDS = MAX_YEARS * 36525 * 864  # 100 * 365.25 days
_MAX_MONTHS = MAX_YEARS * 12


def validate(value: str, *, param: str) -> str:
    """Return `value` if it is a positive duration, else raise InvalidArgument."""
    match = _DURATION.match(value)
    if match is None or int(match.group(1)) == 0:
        # Echo only what cannot be a secret sent into the wrong field.
        shown = f"; got {value!r}" if len(value) <= 12 and "sk-" not in value else ""
        raise InvalidArgument(
            f"{param} must be a positive whole number and a unit "
            f"(s, m, h, d, w, mo), such as 30d{shown}",
            param=param,
        )
    count, unit = int(match.group(1)), match.group(2)
    too_long = (
        count > _MAX_MONTHS
        if unit == "mo"
        else count * _UNIT_SECONDS[unit] > _MAX_SECONDS
    )
    if too_long:
        raise InvalidArgument(f"{param} may be at most {MAX_YEARS} years", param=param)
    return value


def add(start: dt.datetime, value: str) -> dt.datetime:
    """Return `start` moved forward by the (valid) duration `value`."""
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f"not a duration: {value!r}")
    count, unit = int(match.group(1)), match.group(2)
    if unit != "mo":
        return start + dt.timedelta(seconds=count * _UNIT_SECONDS[unit])
    # Calendar months: 31 January plus one month is the last day of February.
    month_index = start.month - 1 + count
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)
