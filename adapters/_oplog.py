"""One structured log line per protocol operation: account, operation, duration, outcome;
and the same operation told to the endpoint's observer (the gateway's metrics), labelled by
server host rather than account."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from mailgate.domain.endpoint import MailboxEndpoint


@contextmanager
def logged_operation(
    logger: logging.Logger, endpoint: MailboxEndpoint, operation: str
) -> Iterator[None]:
    started = time.perf_counter()
    error: BaseException | None = None
    try:
        yield
    except BaseException as exc:
        error = exc
        raise
    finally:
        seconds = time.perf_counter() - started
        outcome = "ok" if error is None else type(error).__name__
        logger.info(
            "%s %s",
            operation,
            outcome,
            extra={
                "account_id": endpoint.account_id,
                "operation": operation,
                "duration_ms": round(seconds * 1000, 1),
                "outcome": outcome,
            },
        )
        if endpoint.observer is not None:
            endpoint.observer(operation, endpoint.host, seconds, error)
