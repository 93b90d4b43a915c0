"""pytest fixtures for real-server tests (registered from tests/conftest.py)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .courier import CourierServer, courier_missing
from .cyrus import CyrusServer, cyrus_missing
from .dovecot import DOVECOT_BIN, DovecotServer, MailUser
from .net import SilentListener
from .oauth import OAuthServer
from .postfix import PostfixServer, postfix_missing
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
def oauth_dovecot(oauth_server: OAuthServer) -> Iterator[DovecotServer]:
    """A Dovecot of its own that also takes OAuth2 logins (XOAUTH2, OAUTHBEARER; IMAP and
    POP3), checking each token by introspection at ``oauth_server``. Passwords still work.

    It is also the backend of the ``postfix`` fixture (``smtp_backend``: LMTP delivery and
    Postfix's SASL socket), so one mailbox serves IMAP, POP3 and SMTP submission, with
    passwords and tokens alike. Its base_dir is outside pytest's private tmp dirs (LMTP
    delivers without chroot) and is removed afterwards."""
    _require_postfix()
    base = _searchable_tmpdir("mailgate-oauth-dovecot-")
    try:
        with DovecotServer(
            base / "dovecot",
            oauth2_introspection_url=oauth_server.dovecot_introspection_url,
            smtp_backend=True,
        ) as server:
            yield server
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def oauth_user(oauth_dovecot: DovecotServer, oauth_server: OAuthServer) -> MailUser:
    """A fresh mailbox on ``oauth_dovecot`` whose owner is also a user of ``oauth_server``
    (same username; email ``<username>@example.org``). The password works too."""
    user = oauth_dovecot.add_user()
    oauth_server.add_user(user.username)
    return user


def _require_postfix() -> None:
    if missing := postfix_missing():
        pytest.fail(
            f"{', '.join(missing)} not found: these tests need a real Postfix. Install it with"
            " scripts/install-test-servers.sh (scripts/test.sh runs it; it keeps exim4).",
            pytrace=False,
        )


def _searchable_tmpdir(prefix: str) -> Path:
    """A fresh directory in /tmp that other users may pass through (0711): Dovecot's LMTP
    (as nobody) and Postfix's daemons (as postfix) reach into it."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o711)
    return path


@pytest.fixture(scope="session")
def postfix(oauth_dovecot: DovecotServer) -> Iterator[PostfixServer]:
    """One real Postfix for the session: SMTP submission on 127.0.0.1 (``submission_port``
    with STARTTLS, ``smtps_port`` implicit TLS, ``smtp_port`` plaintext), SASL through
    ``oauth_dovecot`` (passwords and OAuth2 tokens), delivering to ``oauth_dovecot``'s
    mailboxes over LMTP. ``message_size_limit`` is 10 MiB.

    Tests that turn its knobs put them back: ``with postfix.recipient_reply(address): ...``;
    ``postfix.stop()`` then ``postfix.start()`` in a ``try/finally``."""
    base = _searchable_tmpdir("mailgate-postfix-")
    try:
        with PostfixServer(base / "postfix", oauth_dovecot) as server:
            yield server
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def smtp_user(
    oauth_dovecot: DovecotServer, oauth_server: OAuthServer, postfix: PostfixServer
) -> MailUser:
    """A fresh mailbox on ``oauth_dovecot`` that can send (SMTP AUTH with its password, or
    with a token of ``oauth_server``, where it is a user of the same name) and receive mail
    at ``postfix.address(user)`` (``<username>@example.test``)."""
    user = oauth_dovecot.add_user()
    oauth_server.add_user(user.username)
    postfix.add_recipient(user)
    return user
