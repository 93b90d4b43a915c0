"""SASL messages for OAuth2 logins, the same for IMAP, POP3 and SMTP.

OAUTHBEARER is RFC 7628; XOAUTH2 is Google's older mechanism, which Gmail and Microsoft 365
offer (and Dovecot). A refused token is answered with an error challenge (a JSON document)
that the client must acknowledge before the server sends its final refusal: an empty
response for XOAUTH2, a single ``%x01`` for OAUTHBEARER (RFC 7628 section 3.2.3).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from mailgate.domain.endpoint import MailboxEndpoint

PREFERRED = ("OAUTHBEARER", "XOAUTH2")


def choose(offered: set[str]) -> str:
    """OAUTHBEARER where the server offers it, else XOAUTH2 (also when it names neither: Gmail
    and Microsoft 365 accept XOAUTH2 without always advertising it before login)."""
    upper = {mechanism.upper() for mechanism in offered}
    return next((mechanism for mechanism in PREFERRED if mechanism in upper), "XOAUTH2")


def initial_response(mechanism: str, user: str, token: str, host: str, port: int) -> bytes:
    """The client's first message for ``mechanism`` (not yet base64)."""
    if mechanism == "OAUTHBEARER":
        authzid = user.replace("=", "=3D").replace(",", "=2C")
        return (
            f"n,a={authzid},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"
        ).encode()
    if mechanism == "XOAUTH2":
        return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()
    raise ValueError(f"not an OAuth2 SASL mechanism: {mechanism}")


def acknowledgement(mechanism: str) -> bytes:
    """What answers the server's error challenge, so it can send its final refusal."""
    return b"\x01" if mechanism == "OAUTHBEARER" else b""


def describe_challenge(challenge: bytes) -> str:
    """The error challenge in words: ``{"status":"401","schemes":"bearer","scope":"mail"}``
    says the token was refused (expired, revoked or for another user)."""
    try:
        document = json.loads(challenge)
    except ValueError:
        return challenge.decode("utf-8", "replace")[:200]
    if not isinstance(document, dict):
        return str(document)[:200]
    return ", ".join(f"{key}={value}" for key, value in document.items())[:200]


def log_in(
    endpoint: MailboxEndpoint,
    offered: set[str],
    send: Callable[[str, bytes, bytes], None],
    refused: type[Exception] | tuple[type[Exception], ...],
) -> None:
    """Log in with the endpoint's access token: ``send(mechanism, first, acknowledgement)``
    runs the protocol's exchange and raises ``refused`` when the server refuses. A refused
    token is refreshed once (unless another process already did) and tried again."""
    assert endpoint.token is not None
    mechanism = choose(offered)
    token = endpoint.token(None)
    for attempt in (1, 2):
        first = initial_response(mechanism, endpoint.username, token, endpoint.host, endpoint.port)
        try:
            send(mechanism, first, acknowledgement(mechanism))
            return
        except refused:
            fresh = endpoint.token(token)
            if attempt == 2 or fresh == token:
                raise
            token = fresh
