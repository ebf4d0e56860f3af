"""When a failed call is sent again, and how long to wait first."""

from __future__ import annotations

import dataclasses
import random

import grpc

# RPCs that change nothing, or that leave the same state however often they
# run. Delete is not here: after a lost answer its retry would fail with
# NOT_FOUND for keys the first attempt deleted.
SAFE_TO_REPEAT = frozenset({"Info", "List", "Verify", "Update", "Block", "Unblock"})
# RPCs that issue a secret are retried only with an `idempotency-key`, which
# makes the server answer a repeat with the first response instead of creating
# or rotating again.
ONCE_PER_IDEMPOTENCY_KEY = frozenset({"Generate", "Regenerate"})


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter, for UNAVAILABLE only.

    Every attempt shares the call's one deadline, and the deadline is what
    normally ends the retries: a retry that could not start before it is not
    made. Retries wait for the channel to reconnect (gRPC's wait_for_ready),
    so a server that restarts within the deadline is reached as soon as the
    channel's own reconnect backoff lets it. `max_attempts` only stops a call
    whose server keeps answering UNAVAILABLE.
    """

    max_attempts: int = 50
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
        if rpc in ONCE_PER_IDEMPOTENCY_KEY:
            return bool(idempotency_key)
        return rpc in SAFE_TO_REPEAT


NO_RETRY = RetryPolicy(max_attempts=1)
