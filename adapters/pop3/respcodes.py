"""POP3 extended response codes (RFC 2449 section 8, RFC 3206) and what a sync does with them.

An ``-ERR`` may begin with a bracketed code: ``-ERR [IN-USE] Mailbox is locked by another POP3
session.`` Three codes say "not now" rather than "no":

* ``IN-USE`` (RFC 2449 section 8.1.2): the login was right, but the maildrop is locked by
  another session (the user's phone downloading, a second client);
* ``SYS/TEMP`` (RFC 3206 section 4): a temporary problem on the server;
* ``LOGIN-DELAY`` (RFC 2449 section 8.1.1): logged in too soon after the last login.

They become :class:`MailboxBusy`, never an auth failure, and a sync retries IN-USE and SYS/TEMP a
few times with a short backoff (:func:`retrying_when_busy`), then gives up for the round; the
next round tries again. ``SYS/PERM`` (RFC 3206) is the server's own lasting fault, not a wrong
password. Any other ``-ERR`` to USER/PASS (``[AUTH]`` or none) is a refused login.

The codes are read whether or not the server announces RESP-CODES: Courier answers without
announcing it, and a text that begins with one of these codes means nothing else.
"""

from __future__ import annotations

import logging
import poplib
import random
import re
import time
from collections.abc import Callable
from typing import TypeVar

from mailgate.domain.errors import MailboxBusy

log = logging.getLogger("mailgate.pop3")
T = TypeVar("T")

_CODE = re.compile(rb"^-ERR\s+\[([A-Za-z0-9/-]+)\]")
RETRIED_CODES = frozenset({"IN-USE", "SYS/TEMP"})
BUSY_CODES = RETRIED_CODES | {"LOGIN-DELAY"}
# Waits before the 2nd, 3rd and 4th attempt (each +-20 % so two clients do not meet again),
# never beyond BUSY_BUDGET seconds after the first attempt began: a lock held longer than that
# is left to the next round rather than holding a sync worker.
BUSY_DELAYS: tuple[float, ...] = (0.5, 1.5, 3.0)
BUSY_BUDGET = 10.0


def retried(exc: MailboxBusy) -> bool:
    """Whether a sync waits and tries again for this "not now" (IN-USE, SYS/TEMP)."""
    return exc.code in RETRIED_CODES


def _raw(exc: BaseException) -> bytes:
    raw = exc.args[0] if exc.args else b""
    return raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "replace")


def response_code(exc: BaseException) -> str | None:
    """The extended response code of an ``-ERR`` (upper case: ``IN-USE``, ``SYS/TEMP``)."""
    found = _CODE.match(_raw(exc))
    return found.group(1).decode("ascii").upper() if found else None


def server_words(exc: BaseException) -> str:
    raw = exc.args[0] if exc.args else b""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return text.removeprefix("-ERR").strip() or type(exc).__name__


def busy_error(exc: poplib.error_proto) -> MailboxBusy | None:
    """A :class:`MailboxBusy` for an ``-ERR`` that says "not now", else None."""
    code = response_code(exc)
    if code not in BUSY_CODES:
        return None
    assert code is not None
    what = {
        "IN-USE": "the maildrop is locked by another POP3 session",
        "SYS/TEMP": "the POP3 server has a temporary problem",
        "LOGIN-DELAY": "the POP3 server allows no new login yet",
    }[code]
    return MailboxBusy(f"{what}: {server_words(exc)}", code)


def retrying_when_busy(
    attempt: Callable[[], T],
    account_id: str,
    *,
    wait: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``attempt()`` (one whole POP3 session), again after a short wait while it raises a
    retried :class:`MailboxBusy`, within BUSY_DELAYS and BUSY_BUDGET; then the last
    MailboxBusy, its detail saying how long it was tried. ``wait=False``: one attempt."""
    started = time.monotonic()
    delays = list(BUSY_DELAYS) if wait else []
    attempts = 0
    while True:
        attempts += 1
        try:
            return attempt()
        except MailboxBusy as exc:
            delay = delays.pop(0) * random.uniform(0.8, 1.2) if delays else None  # noqa: S311
            elapsed = time.monotonic() - started
            if not retried(exc) or delay is None or elapsed + delay > BUSY_BUDGET:
                if attempts > 1:
                    exc.detail = f"{exc.detail} ({attempts} attempts in {elapsed:.1f} s)"
                    exc.args = (exc.detail,)
                raise
            log.info(
                "pop3 server busy; trying again",
                extra={"account_id": account_id, "error": exc.detail, "retry_in": delay},
            )
            sleep(delay)
