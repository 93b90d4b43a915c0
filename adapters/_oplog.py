"""One structured log line per protocol operation: account, operation, duration, outcome."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def logged_operation(logger: logging.Logger, account_id: str, operation: str) -> Iterator[None]:
    started = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except BaseException as exc:
        outcome = type(exc).__name__
        raise
    finally:
        logger.info(
            "%s %s",
            operation,
            outcome,
            extra={
                "account_id": account_id,
                "operation": operation,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "outcome": outcome,
            },
        )
