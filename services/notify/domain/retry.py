"""When to try a failed delivery again: exponential backoff with full jitter, then give up."""

import random
from datetime import datetime, timedelta


def next_attempt_at(
    now: datetime,
    attempts: int,
    *,
    base_s: float,
    max_s: float,
    rng: random.Random | None = None,
) -> datetime:
    """After `attempts` failures: wait a random time up to base * 2^(attempts-1), capped.

    Full jitter spreads the retries of many deliveries to one receiver that comes back.
    Half of the ceiling is kept as a floor so that retries never come back immediately.
    """
    ceiling = min(max_s, base_s * 2 ** max(0, attempts - 1))
    draw = (rng or random).uniform(ceiling / 2, ceiling)
    return now + timedelta(seconds=draw)


def exhausted(attempts: int, max_attempts: int) -> bool:
    return attempts >= max_attempts
