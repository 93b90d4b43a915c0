"""adapters.sasl: the OAuth2 SASL messages (RFC 7628 OAUTHBEARER, Google's XOAUTH2)."""

from __future__ import annotations

import pytest

from mailgate.adapters import sasl


def test_oauthbearer_initial_response_follows_rfc_7628() -> None:
    """Section 3.1: gs2 header with the authzid (, and = escaped), host, port, auth."""
    message = sasl.initial_response("OAUTHBEARER", "a,b=c@example.org", "t0k", "imap.x", 993)
    assert (
        message
        == b"n,a=a=2Cb=3Dc@example.org,\x01host=imap.x\x01port=993\x01auth=Bearer t0k\x01\x01"
    )


def test_xoauth2_initial_response() -> None:
    assert sasl.initial_response("XOAUTH2", "u@example.org", "t0k", "h", 1) == (
        b"user=u@example.org\x01auth=Bearer t0k\x01\x01"
    )
    with pytest.raises(ValueError):
        sasl.initial_response("PLAIN", "u", "t", "h", 1)


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        ({"PLAIN", "XOAUTH2", "OAUTHBEARER"}, "OAUTHBEARER"),
        ({"xoauth2"}, "XOAUTH2"),
        (set(), "XOAUTH2"),  # Gmail and Microsoft 365 take it without saying so
    ],
)
def test_oauthbearer_is_preferred(offered: set[str], chosen: str) -> None:
    assert sasl.choose(offered) == chosen


def test_the_error_challenge_is_acknowledged_and_described() -> None:
    assert sasl.acknowledgement("OAUTHBEARER") == b"\x01"
    assert sasl.acknowledgement("XOAUTH2") == b""
    words = sasl.describe_challenge(b'{"status":"401","schemes":"bearer","scope":"mail"}')
    assert words == "status=401, schemes=bearer, scope=mail"
    assert sasl.describe_challenge(b"\xff not json") == "\ufffd not json"
    assert sasl.describe_challenge(b"[1]") == "[1]"
