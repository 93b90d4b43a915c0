"""The pure helpers behind the metrics' labels: each keeps a label bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.routing import Route

from mailgate.api.middleware import route_template
from mailgate.domain.errors import MailboxAuthFailed
from mailgate.gateway.metrics import error_label, seconds_since, status_class


def test_status_class() -> None:
    assert [status_class(s) for s in (200, 204, 304, 404, 429, 502)] == [
        "2xx",
        "2xx",
        "3xx",
        "4xx",
        "4xx",
        "5xx",
    ]


def test_a_route_is_its_template_and_no_route_is_unmatched() -> None:
    route = Route("/v1/accounts/{account_id}", lambda _request: None)
    assert route_template({"route": route, "path": "/v1/accounts/acc_1"}) == (
        "/v1/accounts/{account_id}"
    )
    assert route_template({"path": "/v1/accounts/acc_1/nothing"}) == "unmatched"


def test_an_error_is_its_problem_type_else_its_class() -> None:
    assert error_label(MailboxAuthFailed("no such user: alice@example.org")) == (
        "mailbox-auth-failed"
    )
    assert error_label(TimeoutError("after 30 s")) == "TimeoutError"


def test_seconds_since_takes_a_naive_time_as_utc() -> None:
    now = datetime(2025, 1, 2, 12, 0, 5, tzinfo=UTC)
    assert seconds_since(datetime(2025, 1, 2, 12, 0, 0), now) == 5.0
    assert seconds_since(now - timedelta(seconds=2), now) == 2.0
    assert seconds_since(now + timedelta(seconds=1), now) == 0.0  # clocks of two processes
