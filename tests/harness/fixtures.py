"""pytest fixtures for real-server tests (registered from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .courier import CourierServer, courier_missing
from .cyrus import CyrusServer, cyrus_missing
from .dovecot import DOVECOT_BIN, DovecotServer, MailUser
from .net import SilentListener
from .oauth import OAuthServer
from .servers import MailServer


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DovecotServer]:
    """One real Dovecot (IMAP, IMAPS, POP3, POP3S on 127.0.0.1) for the whole session."""
    if not Path(DOVECOT_BIN).exists():
        pytest.fail(
            f"{DOVECOT_BIN} not found: these tests need a real Dovecot. Install it and run the"
            " tests with the test command from README.md"
            " (apt-get install -y dovecot-core dovecot-imapd dovecot-pop3d).",
            pytrace=False,
        )
    with DovecotServer(tmp_path_factory.mktemp("dovecot")) as server:
        yield server


@pytest.fixture
def mail_user(dovecot: DovecotServer) -> MailUser:
    """A fresh user with an empty mailbox (only the auto-created special-use folders)."""
    return dovecot.add_user()


@pytest.fixture(scope="session")
def cyrus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CyrusServer]:
    """One real Cyrus IMAP 3.6 (IMAP, IMAPS, POP3, POP3S on 127.0.0.1) for the whole session."""
    if missing := cyrus_missing():
        pytest.fail(
            f"{', '.join(missing)} not found: these tests need a real Cyrus IMAP. Install it"
            " with scripts/install-test-servers.sh (scripts/test.sh runs it; it keeps Dovecot).",
            pytrace=False,
        )
    with CyrusServer(tmp_path_factory.mktemp("cyrus")) as server:
        yield server


@pytest.fixture
def cyrus_user(cyrus: CyrusServer) -> MailUser:
    """A fresh Cyrus user: empty INBOX, Drafts, Sent, Trash, Junk, Archive (special-use)."""
    return cyrus.add_user()


@pytest.fixture(scope="session")
def courier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourierServer]:
    """One real Courier-IMAP 5 / Courier-POP3 (IMAP, IMAPS, POP3, POP3S on 127.0.0.1) for the
    whole session. Only one Courier can run per machine (it uses /etc/courier)."""
    if missing := courier_missing():
        pytest.fail(
            f"{', '.join(missing)} not found: these tests need a real Courier-IMAP. Install it"
            " with scripts/install-test-servers.sh (scripts/test.sh runs it; it keeps Dovecot).",
            pytrace=False,
        )
    with CourierServer(tmp_path_factory.mktemp("courier")) as server:
        yield server


@pytest.fixture
def courier_user(courier: CourierServer) -> MailUser:
    """A fresh Courier user with INBOX only, as a plain Courier install has (no Sent, Trash)."""
    return courier.add_user()


@pytest.fixture(scope="session")
def bare_dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DovecotServer]:
    """A Dovecot that advertises "IMAP4rev1" and nothing else (RFC 3501 alone: no NAMESPACE,
    IDLE, LITERAL+, ENABLE, ...), for the paths that must work without any extension."""
    with DovecotServer(tmp_path_factory.mktemp("bare-dovecot"), "IMAP4rev1") as server:
        yield server


# The servers of the interoperability matrix; `-m "not interop"` keeps to Dovecot.
SERVERS = [
    "dovecot",
    pytest.param("cyrus", marks=pytest.mark.interop),
    pytest.param("courier", marks=pytest.mark.interop),
]


@pytest.fixture(params=SERVERS)
def mail_server(request: pytest.FixtureRequest) -> MailServer:
    """Each real server of the matrix in turn (session-scoped servers, started once)."""
    server: MailServer = request.getfixturevalue(request.param)
    return server


@pytest.fixture
def silent_listener() -> Iterator[SilentListener]:
    """A TCP listener that accepts connections and never answers."""
    with SilentListener() as listener:
        yield listener


PLAIN_IMAP_CAPABILITIES = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE NAMESPACE"


@pytest.fixture(scope="session")
def plain_dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DovecotServer]:
    """A Dovecot that advertises plain IMAP4rev1 only: no MOVE, UIDPLUS, PREVIEW,
    SPECIAL-USE, so the adapters' fallbacks run against a real server."""
    with DovecotServer(tmp_path_factory.mktemp("plain-dovecot"), PLAIN_IMAP_CAPABILITIES) as server:
        yield server


@pytest.fixture(scope="session")
def oauth_server() -> Iterator[OAuthServer]:
    """A real OAuth2 authorization server (Authlib) on 127.0.0.1 for the whole session.

    Tests that turn its knobs put them back: ``monkeypatch.setattr(oauth_server,
    "token_lifetime", 2)``, ``with oauth_server.outage(): ...``."""
    with OAuthServer() as server:
        yield server


@pytest.fixture(scope="session")
def oauth_dovecot(
    tmp_path_factory: pytest.TempPathFactory, oauth_server: OAuthServer
) -> Iterator[DovecotServer]:
    """A Dovecot of its own that also takes OAuth2 logins (XOAUTH2, OAUTHBEARER; IMAP and
    POP3), checking each token by introspection at ``oauth_server``. Passwords still work."""
    with DovecotServer(
        tmp_path_factory.mktemp("oauth-dovecot"),
        oauth2_introspection_url=oauth_server.dovecot_introspection_url,
    ) as server:
        yield server


@pytest.fixture
def oauth_user(oauth_dovecot: DovecotServer, oauth_server: OAuthServer) -> MailUser:
    """A fresh mailbox on ``oauth_dovecot`` whose owner is also a user of ``oauth_server``
    (same username; email ``<username>@example.org``). The password works too."""
    user = oauth_dovecot.add_user()
    oauth_server.add_user(user.username)
    return user
