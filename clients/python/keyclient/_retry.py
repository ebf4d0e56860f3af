"""When a failed call is sent again, and how long to wait first."""

from __future__ import annotations

import dataclasses
import random

import grpc

# RPCs that change nothing, or that leave the same state however often they
# run. Generate and Delete are not here: a Generate whose answer was lost has
# created a key, and sending it again would create a second one. Regenerate is
# retried only with an `idempotency-key`, which makes the server answer a
# repeat with the first response instead of rotating again.
SAFE_TO_REPEAT = frozenset({"Info", "List", "Verify", "Update", "Block", "Unblock"})


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, for UNAVAILABLE only.

    Every attempt shares the call's one deadline; a retry that could not start
    before it is not made.
    """

    max_attempts: int = 4
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failed attempt."""
        ceiling = self.initial_backoff * self.multiplier ** (failures - 1)
        # Full jitter spreads out the clients that lost the server together.
        return random.uniform(0, min(self.max_backoff, ceiling))

    def should_retry(
        self,
        rpc: str,
        code: grpc.StatusCode,
        attempt: int,
        *,
        idempotency_key: str | None,
    ) -> bool:
        if code != grpc.StatusCode.UNAVAILABLE or attempt >= self.max_attempts:
            return False
        if rpc == "Regenerate":
            return bool(idempotency_key)
        return rpc in SAFE_TO_REPEAT


NO_RETRY = RetryPolicy(max_attempts=1)
