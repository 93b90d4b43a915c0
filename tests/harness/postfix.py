"""A private, real Postfix (SMTP submission) on loopback that delivers into a test Dovecot.

Postfix 3.7 from Debian's package, unpacked by ``scripts/install-test-servers.sh`` into
``$MAILGATE_TEST_SERVERS_DIR/postfix/pkg`` (``apt-get install postfix`` would replace the
machine's exim4). Each ``PostfixServer`` has its own config directory (``etc``), queue
(``spool``), ``data`` directory and log (``maillog_file``), all under ``base_dir``, and a
master process of its own (``master -d``, its own process group).

Listeners on 127.0.0.1, each answered by a fresh smtpd per connection (``max_use=1``, so the
recipient and access tables, re-read on every connection, take effect at once):

- ``submission_port`` (587-style): STARTTLS offered; AUTH only after STARTTLS;
- ``smtps_port`` (465-style): implicit TLS (``smtpd_tls_wrappermode``);
- ``smtp_port``: no TLS at all, AUTH in the clear (for plaintext tests).

Each one wants SASL authentication, which Postfix asks the given Dovecot for
(``smtpd_sasl_type = dovecot``; a ``DovecotServer(smtp_backend=True)``): passwords (PLAIN,
LOGIN) and, when that Dovecot has ``oauth2_introspection_url``, tokens (XOAUTH2,
OAUTHBEARER). Nobody relays: only the local domains are accepted, and mail to them goes to
Dovecot over LMTP. TLS uses the Dovecot's certificate, so ``dovecot.ca_file`` (or
``ssl_context()``) trusts both servers.

What the server answers (the texts tests can rely on):

- wrong password or token: ``535 5.7.8 Error: authentication failed`` (a bad token after a
  ``334`` challenge carrying base64 JSON, to be answered with an empty line);
- RCPT without AUTH: ``554 5.7.1 ... Client host rejected: Access denied``;
- unknown user in a local domain: ``550 5.1.1 ... User unknown in virtual mailbox table``;
- another domain: ``554 5.7.1 ... Relay access denied``;
- larger than ``message_size_limit``: ``552 5.3.4 Message size exceeds fixed limit`` at MAIL
  FROM with ``SIZE=`` (smtplib sends it), else ``552 5.3.4 Error: message file too big``
  after DATA;
- a recipient given a reply with ``set_recipient_reply``: that reply (e.g. ``450 4.2.1``).
"""

from __future__ import annotations

import atexit
import contextlib
import grp
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .dovecot import LMTP_LOCAL_DOMAIN, DovecotServer, MailUser
from .lifecycle import Lifecycle
from .net import LOOPBACK, free_port

SERVERS_DIR = Path(os.environ.get("MAILGATE_TEST_SERVERS_DIR", "/var/cache/mailgate-test-servers"))
POSTFIX_ROOT = SERVERS_DIR / "postfix" / "pkg"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
DEFAULT_SIZE_LIMIT = 10 * 1024 * 1024
DEFAULT_TEMPFAIL_REPLY = "450 4.2.1 Mailbox temporarily unavailable (test)"


class PostfixError(RuntimeError):
    """Postfix did not start or stop as expected, or mail did not arrive."""


def postfix_missing() -> list[str]:
    """What this harness needs and does not find (empty when all is there)."""
    missing = [
        str(path)
        for path in (
            POSTFIX_ROOT / "usr/sbin/postfix",
            POSTFIX_ROOT / "usr/lib/postfix/sbin/master",
        )
        if not path.exists()
    ]
    for group in ("postfix", "postdrop"):
        try:
            grp.getgrnam(group)
        except KeyError:
            missing.append(f"group {group}")
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        missing.append("user postfix")
    return missing


def _greets(port: int, context: ssl.SSLContext | None = None) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=2) as sock:
            if context is None:
                return sock.recv(256).startswith(b"220 ")
            with context.wrap_socket(sock, server_hostname="localhost") as tls:
                return tls.recv(256).startswith(b"220 ")
    except OSError:
        return False


def _group_members(pgid: int) -> list[int]:
    """The live processes of process group *pgid* (zombies hold no ports: left out)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, _, pgrp = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == pgid and state not in "ZX":
            found.append(int(entry))
    return found


def _write_settled(path: Path, text: str) -> None:
    """Write a config file or table dated a minute ago: Postfix sleeps until a fresh one is
    a few seconds old (against half-written files; ours are whole: written, then renamed),
    which would cost 1.5 s at each start and at each connection after a table changed."""
    path.write_text(text)
    past = time.time() - 60
    os.utime(path, (past, past))


class PostfixServer(Lifecycle):
    """One private Postfix instance in front of *dovecot* (which needs ``smtp_backend``).

    Start/stop/restart keep the ports, the recipients and the queue. Not thread-safe for
    start/stop; the recipient methods are.
    """

    host = LOOPBACK

    def __init__(
        self,
        base_dir: Path,
        dovecot: DovecotServer,
        *,
        message_size_limit: int = DEFAULT_SIZE_LIMIT,
        hostname: str = "mx.example.test",
    ) -> None:
        if not dovecot.smtp_backend:
            raise ValueError("the Dovecot needs smtp_backend=True (LMTP and the SASL socket)")
        self.base_dir = Path(base_dir).resolve()
        self.dovecot = dovecot
        self.message_size_limit = message_size_limit
        self.hostname = hostname
        self.config_dir = self.base_dir / "etc"
        self.queue_dir = self.base_dir / "spool"
        self.data_dir = self.base_dir / "data"
        self.maillog_file = self.base_dir / "postfix.log"
        self.stderr_file = self.base_dir / "master.stderr"
        self.recipients_file = self.config_dir / "vmailbox"
        self.domains_file = self.config_dir / "vdomains"
        self.access_file = self.config_dir / "recipient_access"
        self.submission_port = self.smtps_port = self.smtp_port = 0
        self._domains: set[str] = {LMTP_LOCAL_DOMAIN}
        self._recipients: dict[str, str] = {}  # address -> Dovecot user
        self._replies: dict[str, str] = {}  # address -> RCPT reply
        self._lock = threading.Lock()
        self._master: subprocess.Popen[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._master is not None

    @property
    def ports(self) -> dict[str, int]:
        return {
            "submission": self.submission_port,
            "smtps": self.smtps_port,
            "smtp": self.smtp_port,
        }

    @property
    def ca_file(self) -> Path:
        """The CA that signed the server certificate (the Dovecot's: one CA for both)."""
        return self.dovecot.ca_file

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only the test CA."""
        return self.dovecot.ssl_context()

    def start(self) -> None:
        """Write the config and start the master; return once every listener greets."""
        if self.running:
            raise PostfixError("postfix is already running")
        if missing := postfix_missing():
            raise PostfixError(
                f"{', '.join(missing)} not found: run scripts/install-test-servers.sh"
            )
        first = not self.config_dir.exists()
        if first:
            self._prepare()
        fresh_ports = self.submission_port == 0
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if fresh_ports:
                self._pick_ports()
            self._write_config()
            if first:
                self._postfix("check")  # creates the queue directories
                first = False
            with self.stderr_file.open("wb") as err:
                self._master = subprocess.Popen(
                    [str(self._daemon("master")), "-d", "-c", str(self.config_dir)],
                    stdin=subprocess.DEVNULL,
                    stdout=err,
                    stderr=err,
                    start_new_session=True,  # its own process group, which it ends on SIGTERM
                )
            atexit.register(self.stop)
            if self._wait_ready(deadline):
                return
            self.stop()
            output = self.stderr_file.read_text(errors="replace") + self.log_tail()
            if "Address already in use" not in output or time.monotonic() > deadline:
                raise PostfixError(f"postfix did not greet on {self.ports}:\n{output}")
            # a port picked for a fresh start was taken meanwhile: pick again; after a restart
            # the old processes may hold the same ports a moment longer: retry
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM the master and its process group, wait until the whole group is gone (then
        the ports are free). Mail in the queue stays there. No-op when stopped."""
        atexit.unregister(self.stop)
        master, self._master = self._master, None
        if master is None:
            return
        pgid = master.pid
        with contextlib.suppress(ProcessLookupError):
            master.send_signal(signal.SIGTERM)
        try:
            master.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            master.wait()
        # Its children would notice the master is gone only about 1.4 s later: end them now.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while members := _group_members(pgid):
            if time.monotonic() > deadline:
                for pid in members:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def set_message_size_limit(self, limit: int) -> None:
        """Change ``message_size_limit`` (bytes); restarts a running server to apply it."""
        self.message_size_limit = limit
        if self.running:
            self.restart()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.maillog_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no postfix log)"
        return "--- postfix.log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])

    # -- recipients ----------------------------------------------------------------------------

    def add_recipient(self, user: MailUser | str) -> str:
        """Make Dovecot user *user* a recipient; return its address, at once in use.

        A name without ``@`` gets ``@example.test`` (``LMTP_LOCAL_DOMAIN``); a name with one
        is its own address, and its domain becomes a local domain (a new domain restarts a
        running Postfix: about 0.1 s). Adding twice is harmless.
        """
        name = (user.username if isinstance(user, MailUser) else user).lower()
        address = name if "@" in name else f"{name}@{LMTP_LOCAL_DOMAIN}"
        domain = address.rpartition("@")[2]
        if domain == LMTP_LOCAL_DOMAIN and "@" in name:
            raise ValueError(
                f"{name!r}: Dovecot names in {LMTP_LOCAL_DOMAIN} would lose their domain over"
                " LMTP; use a name without @ or another domain"
            )
        with self._lock:
            self._recipients[address] = name
            self._write_table(self.recipients_file, dict.fromkeys(self._recipients, "ok"))
            new_domain = domain not in self._domains
            if new_domain:
                self._domains.add(domain)
                self._write_table(self.domains_file, dict.fromkeys(self._domains, "ok"))
        if new_domain and self.running:
            self.restart()  # trivial-rewrite, a long-lived daemon, read the domains at its start
        return address

    def address(self, user: MailUser | str) -> str:
        """The address add_recipient gave *user*."""
        name = (user.username if isinstance(user, MailUser) else user).lower()
        with self._lock:
            for address, owner in self._recipients.items():
                if owner == name:
                    return address
        raise KeyError(f"{name!r} is no recipient: call add_recipient() first")

    def set_recipient_reply(self, address: str, reply: str | None = DEFAULT_TEMPFAIL_REPLY) -> None:
        """Make RCPT TO:<address> answer *reply* (an SMTP reply such as ``"450 4.2.1 Try
        later"`` or ``"550 5.2.1 Mailbox disabled"``), from the next connection on; None
        puts the normal answer back. Works for any address, local or not."""
        if reply is not None and not (reply[:3].isdigit() and reply[0] in "45"):
            raise ValueError(f"reply must start with a 4xx or 5xx code: {reply!r}")
        with self._lock:
            if reply is None:
                self._replies.pop(address.lower(), None)
            else:
                self._replies[address.lower()] = reply
            self._write_table(self.access_file, self._replies)

    @contextlib.contextmanager
    def recipient_reply(self, address: str, reply: str = DEFAULT_TEMPFAIL_REPLY) -> Iterator[None]:
        """``set_recipient_reply`` for the block, then the normal answer again."""
        self.set_recipient_reply(address, reply)
        try:
            yield
        finally:
            self.set_recipient_reply(address, None)

    # -- mail ----------------------------------------------------------------------------------

    def wait_for_delivery(
        self, user: MailUser | str, count: int = 1, timeout: float = 10.0, folder: str = "INBOX"
    ) -> list[Path]:
        """Wait until *folder* of Dovecot user *user* holds at least *count* messages; return
        their files (Maildir new/ and cur/), oldest first. Raises PostfixError with the log
        tail after *timeout* seconds."""
        directory = self.dovecot.maildir(user, folder)
        deadline = time.monotonic() + timeout
        while True:
            files = [
                path
                for sub in ("new", "cur")
                if (directory / sub).is_dir()
                for path in (directory / sub).iterdir()
            ]
            if len(files) >= count:
                return sorted(files, key=lambda path: (path.stat().st_mtime_ns, path.name))
            if time.monotonic() > deadline:
                raise PostfixError(
                    f"{len(files)} of {count} messages in {directory} after {timeout} s\n"
                    f"{self.log_tail()}\n{self.dovecot.log_tail()}"
                )
            time.sleep(0.01)

    # -- internals ---------------------------------------------------------------------------

    def _daemon(self, name: str) -> Path:
        return POSTFIX_ROOT / "usr/lib/postfix/sbin" / name

    def _postfix(self, *args: str) -> None:
        result = subprocess.run(
            [str(POSTFIX_ROOT / "usr/sbin/postfix"), "-c", str(self.config_dir), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise PostfixError(
                f"postfix {' '.join(args)} failed:\n{result.stdout}{result.stderr}{self.log_tail()}"
            )

    def _prepare(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.config_dir.mkdir(exist_ok=True)
        self.queue_dir.mkdir(mode=0o755, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        shutil.chown(self.data_dir, "postfix", "postfix")
        meta = POSTFIX_ROOT / "etc/postfix"
        shutil.copy(meta / "postfix-files", self.config_dir / "postfix-files")
        (self.config_dir / "postfix-files.d").mkdir(exist_ok=True)
        for name in ("postfix-script", "post-install"):
            shutil.copy(meta / name, self.config_dir / name)
        self._write_table(self.domains_file, dict.fromkeys(self._domains, "ok"))
        self._write_table(self.recipients_file, {})
        self._write_table(self.access_file, {})

    def _pick_ports(self) -> None:
        ports: set[int] = set()
        while len(ports) < 3:
            ports.add(free_port())
        self.submission_port, self.smtps_port, self.smtp_port = sorted(ports)

    def _wait_ready(self, deadline: float) -> bool:
        assert self._master is not None
        context = self.ssl_context()
        pending = {self.submission_port: None, self.smtp_port: None, self.smtps_port: context}
        while pending:
            if self._master.poll() is not None or time.monotonic() > deadline:
                return False
            for port, tls in list(pending.items()):
                if _greets(port, tls):
                    del pending[port]
            if pending:
                time.sleep(0.01)
        return True

    @staticmethod
    def _write_table(path: Path, entries: dict[str, str]) -> None:
        """Replace a texthash table in one rename (a starting smtpd reads all or nothing)."""
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        _write_settled(tmp, "".join(f"{key} {value}\n" for key, value in sorted(entries.items())))
        tmp.replace(path)

    def _write_config(self) -> None:
        root, etc = POSTFIX_ROOT, self.config_dir
        main_cf = f"""\
compatibility_level = 3.6
queue_directory = {self.queue_dir}
data_directory = {self.data_dir}
meta_directory = {etc}
command_directory = {root}/usr/sbin
daemon_directory = {root}/usr/lib/postfix/sbin
shlib_directory = {root}/usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = {self.maillog_file}
maillog_file_prefixes = {self.base_dir}
syslog_name = postfix-mailgate-test
myhostname = {self.hostname}
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
inet_interfaces = {LOOPBACK}
inet_protocols = ipv4
smtp_dns_support_level = disabled
biff = no
virtual_mailbox_domains = texthash:{self.domains_file}
virtual_mailbox_maps = texthash:{self.recipients_file}
virtual_transport = lmtp:inet:{LOOPBACK}:{self.dovecot.lmtp_port}
message_size_limit = {self.message_size_limit}
mailbox_size_limit = 0
smtpd_sasl_type = dovecot
smtpd_sasl_path = {self.dovecot.postfix_auth_socket}
smtpd_sasl_auth_enable = yes
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous
smtpd_client_restrictions = permit_sasl_authenticated, reject
smtpd_relay_restrictions = check_recipient_access texthash:{self.access_file},
  reject_unauth_destination
smtpd_recipient_restrictions = reject_unauth_destination
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_client_connection_rate_limit = 0
smtpd_client_auth_rate_limit = 0
smtpd_tls_cert_file = {self.dovecot.cert_file}
smtpd_tls_key_file = {self.dovecot.key_file}
smtpd_tls_security_level = none
tls_random_source = dev:/dev/urandom
"""
        smtpd = "inet  n       -       n       -       -       smtpd"
        master_cf = f"""\
{LOOPBACK}:{self.submission_port} {smtpd}
  -o max_use=1
  -o smtpd_tls_security_level=may
  -o smtpd_tls_auth_only=yes
{LOOPBACK}:{self.smtps_port} {smtpd}
  -o max_use=1
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
{LOOPBACK}:{self.smtp_port} {smtpd}
  -o max_use=1
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
        _write_settled(etc / "main.cf", main_cf)
        _write_settled(etc / "master.cf", master_cf)
