"""Start-up's patience with servers that are not accepting connections yet."""

from __future__ import annotations

import logging

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_delay, wait_exponential

log = logging.getLogger(__name__)


def retrying(what: str, errors: tuple[type[BaseException], ...], wait_s: float) -> AsyncRetrying:
    """Retry on `errors`, backing off up to 5 s between tries, for at most `wait_s` seconds.

    In a fresh deployment services often start before PostgreSQL or Kafka accept
    connections. Each retry logs a warning naming `what`, so a waiting service does not
    look hung.
    """
    def waiting(state: RetryCallState) -> None:
        log.warning("%s is not reachable yet; retrying (%.0f s so far)", what, state.seconds_since_start or 0)

    return AsyncRetrying(retry=retry_if_exception_type(errors), wait=wait_exponential(multiplier=0.2, max=5),
                         stop=stop_after_delay(wait_s), before_sleep=waiting, reraise=True)
