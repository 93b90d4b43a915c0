"""A private, real Dovecot (IMAP + POP3) on loopback for the test suite.

Everything lives under ``base_dir``: config, TLS files (``ca.pem`` is the CA to trust),
``users/`` (one passwd-file per user), ``dovecot.log`` and the mail. Mail processes run as
nobody:nogroup, chrooted to ``base_dir/mail`` (``mail_chroot``), so the server works even when
an ancestor of ``base_dir`` is private (pytest's tmp dirs are 0700); a user's home is
``base_dir/mail/home/<user>`` on disk and ``/home/<user>`` for Dovecot.
"""

from __future__ import annotations

import atexit
import contextlib
import grp
import itertools
import os
import pwd
import re
import secrets
import select
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import imapclient
import trustme
from imapclient.imap_utf7 import encode as imap_utf7_encode

from .lifecycle import Lifecycle
from .net import LOOPBACK, free_port

DOVECOT_BIN = "/usr/sbin/dovecot"
DH_PARAMS = Path("/usr/share/dovecot/dh.pem")
START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0
MAILDIR_FLAGS = "DFPRST"  # Maildir info letters, in the (ASCII) order Maildir wants them
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@+-]*")
_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]")
_HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "localhost"
_UNIX_SOCKET_MAX = 107
# LMTP recipients in this domain are Dovecot users named by the local part (see smtp_backend)
LMTP_LOCAL_DOMAIN = "example.test"


class DovecotError(RuntimeError):
    """Dovecot did not start or stop as expected."""


@dataclass(frozen=True)
class MailUser:
    username: str
    password: str


def _set_nodelay(client: imapclient.IMAPClient) -> None:
    client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _greets(port: int, prefix: bytes) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5) as sock:
            return sock.recv(256).startswith(prefix)
    except OSError:
        return False


def _wait_exit(pidfd: int, timeout: float) -> bool:
    """True once the process behind *pidfd* has exited (zombies count as exited)."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(timeout * 1000))


def _parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def _children(parent: int) -> dict[int, int]:
    """pid -> pidfd of *parent*'s child processes (pidfds make later signals race-free)."""
    found: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _parent_pid(int(entry)) == parent:
            try:
                fd = os.pidfd_open(int(entry))
            except ProcessLookupError:
                continue
            if _parent_pid(int(entry)) == parent:  # still the same process
                found[int(entry)] = fd
            else:
                os.close(fd)
    return found


def _empty_dir(path: Path) -> None:
    """Remove what *path* holds, keeping the directory itself (if it exists)."""
    if not path.is_dir():
        return
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


class ImapAccess(Lifecycle):
    """What every test server (Dovecot, Cyrus, Courier) shares: restart and use as a context
    manager around its own start/stop, and its IMAP as another mail client uses it (a
    logged-in client, APPEND). Needs ``start``, ``stop``, ``host``, ``imap_port``,
    ``imaps_port`` and ``ssl_context()``."""

    host: str
    imap_port: int
    imaps_port: int

    def ssl_context(self) -> ssl.SSLContext:
        raise NotImplementedError

    def folder_name(self, folder: str) -> str:
        """The folder's name on the wire: as a client sees it (no namespace prefix here)."""
        return folder

    def imap_client(self, user: MailUser, *, tls: bool = False) -> imapclient.IMAPClient:
        """A logged-in IMAPClient (plain port, or implicit TLS) with TCP_NODELAY; log out."""
        if tls:
            client = imapclient.IMAPClient(
                self.host, self.imaps_port, ssl=True, ssl_context=self.ssl_context(), timeout=10
            )
        else:
            client = imapclient.IMAPClient(self.host, self.imap_port, ssl=False, timeout=10)
        _set_nodelay(client)
        client.login(user.username, user.password)
        return client

    def append(
        self,
        user: MailUser,
        message: bytes,
        folder: str = "INBOX",
        flags: Iterable[bytes | str] = (),
    ) -> int:
        """APPEND through the server (IMAP flags like b"\\\\Seen"); return the new UID."""
        with self.imap_client(user) as client:
            response = client.append(self.folder_name(folder), message, flags=tuple(flags))
        found = _APPENDUID.search(response)
        if found is None:
            raise RuntimeError(f"no APPENDUID in {response!r}")
        return int(found.group(1))


class DovecotServer(ImapAccess):
    """One Dovecot instance. Not thread-safe for start/stop; add_user/deliver are."""

    host = LOOPBACK
    # the special-use folders a new user has (a plain Courier user: INBOX only)
    special_folders: tuple[str, ...] = ("Sent", "Drafts", "Trash", "Junk", "Archive")

    def __init__(
        self,
        base_dir: Path,
        imap_capability: str | None = None,
        *,
        oauth2_introspection_url: str | None = None,
        smtp_backend: bool = False,
        extra_config: str = "",
    ) -> None:
        """``extra_config`` is appended to dovecot.conf (the scale bench raises process
        limits with it).

        ``imap_capability`` replaces what IMAP advertises after login, to play a
        plainer server (no MOVE, UIDPLUS, PREVIEW, ...).

        ``oauth2_introspection_url`` (``http://CLIENT:SECRET@host:port/introspect``, see
        ``OAuthServer.dovecot_introspection_url``) adds OAuth2 logins, SASL XOAUTH2 and
        OAUTHBEARER, for IMAP and POP3: Dovecot checks each token by RFC 7662 introspection
        there, every time (no auth cache); passwords keep working for PLAIN and LOGIN.

        ``smtp_backend`` makes it the backend of a Postfix (``PostfixServer``): LMTP delivery
        on ``lmtp_port`` and Postfix's SASL socket ``postfix_auth_socket`` (Postfix's
        ``smtpd_sasl_type = dovecot``; it takes every mechanism IMAP takes, OAuth2 ones
        included). An LMTP recipient in ``LMTP_LOCAL_DOMAIN`` is the user named by its local
        part (``bob@example.test`` -> ``bob``); any other recipient is the user named by the
        whole address (``bob@corp.test``). LMTP delivers without ``mail_chroot``, as nobody,
        so every directory above ``base_dir`` must be searchable by others (pytest's tmp dirs
        are not: make ``base_dir`` with ``tempfile.mkdtemp()`` and chmod it 0o711)."""
        self.imap_capability = imap_capability
        self.oauth2_introspection_url = oauth2_introspection_url
        self.smtp_backend = smtp_backend
        self.extra_config = extra_config
        self.base_dir = Path(base_dir).resolve()
        self.config_file = self.base_dir / "dovecot.conf"
        self.log_file = self.base_dir / "dovecot.log"
        self.stderr_file = self.base_dir / "dovecot.stderr"
        self.users_dir = self.base_dir / "users"
        self.mail_dir = self.base_dir / "mail"
        self.ca_file = self.base_dir / "ca.pem"
        self.cert_file = self.base_dir / "cert.pem"
        self.key_file = self.base_dir / "key.pem"
        self.oauth2_file = self.base_dir / "dovecot-oauth2.conf.ext"
        self.instance_name = f"mailgate-test-{os.getpid()}-{secrets.token_hex(3)}"
        self.imap_port = self.imaps_port = self.pop3_port = self.pop3s_port = 0
        self.lmtp_port = 0
        # Postfix's smtpd (user postfix) must reach the SASL socket, and base_dir may sit
        # below a private (0700) directory: so the socket gets a directory of its own in /tmp.
        self.postfix_auth_socket = Path(
            tempfile.gettempdir(), f"{self.instance_name}-auth", "auth-postfix"
        )
        self.uid = pwd.getpwnam("nobody").pw_uid
        self.gid = grp.getgrnam("nogroup").gr_gid
        self._run_dir: Path | None = None
        self._pid: int | None = None
        self._pidfd: int | None = None
        self._users: dict[str, MailUser] = {}
        self._lock = threading.Lock()
        self._serial = itertools.count(1)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def ports(self) -> dict[str, int]:
        ports = {
            "imap": self.imap_port,
            "imaps": self.imaps_port,
            "pop3": self.pop3_port,
            "pop3s": self.pop3s_port,
        }
        if self.smtp_backend:
            ports["lmtp"] = self.lmtp_port
        return ports

    @property
    def running(self) -> bool:
        return self._pid is not None

    def start(self) -> None:
        """Write the config (first time) and start Dovecot; return once IMAP and POP3 greet."""
        if self.running:
            raise DovecotError(f"{self.instance_name} is already running")
        if not self.config_file.exists():
            self._prepare()
        if self.smtp_backend:
            self._check_traversable()
        fresh_ports = self.imap_port == 0
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if fresh_ports:
                self._pick_ports()
            run_dir = self._write_config()
            if self.smtp_backend:
                self._make_auth_socket_dir()
            # Start from an empty base_dir: a stale master.pid (after a SIGKILL) or auth socket
            # (after any stop) is left there, and a stale auth socket stalls logins for 5 s.
            _empty_dir(run_dir)
            # Output goes to a file, not a pipe: the daemonized master keeps it open.
            with self.stderr_file.open("w+") as err:
                code = subprocess.call(
                    [DOVECOT_BIN, "-c", str(self.config_file)],
                    stdin=subprocess.DEVNULL,
                    stdout=err,
                    stderr=err,
                )
                err.seek(0)
                output = err.read()
            if code == 0:
                break
            # Our freshly picked port was taken meanwhile (pick again), or after a restart the
            # old processes still hold the same ports for a moment (retry): else give up.
            if "Address already in use" not in output or time.monotonic() > deadline:
                raise DovecotError(f"dovecot failed to start:\n{output}{self.log_tail()}")
            time.sleep(0.05)
        self._attach_master(deadline)
        atexit.register(self.stop)
        while not (
            _greets(self.imap_port, b"* OK")
            and _greets(self.pop3_port, b"+OK")
            and (not self.smtp_backend or _greets(self.lmtp_port, b"220 "))
        ):
            if not self._master_alive() or time.monotonic() > deadline:
                self.stop()
                raise DovecotError(
                    f"dovecot ({self.config_file}) did not greet on IMAP port {self.imap_port}"
                    f" and POP3 port {self.pop3_port} within {START_TIMEOUT} s\n{self.log_tail()}"
                )
            time.sleep(0.01)

    def stop(self) -> None:
        """SIGTERM the master, wait for it, then end what outlived it. No-op when stopped.

        Dovecot 2.3's master exits without ending logged-in imap/pop3 processes (nor the log
        and stats processes serving them), despite shutdown_clients = yes: clients would keep
        their sessions across a restart. So those get SIGTERM too; imap then says
        "* BYE Server shutting down." and closes the connection.
        """
        atexit.unregister(self.stop)
        pid, pidfd = self._pid, self._pidfd
        self._pid = self._pidfd = None
        if pid is None or pidfd is None:
            return
        children = _children(pid)  # while they are still the master's children
        try:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, signal.SIGTERM)
            children |= {k: v for k, v in _children(pid).items() if k not in children}
            if not _wait_exit(pidfd, STOP_TIMEOUT):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                raise DovecotError(f"dovecot pid {pid} ignored SIGTERM; killed\n{self.log_tail()}")
            for child in children.values():
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(child, signal.SIGTERM)
            for child in children.values():
                if not _wait_exit(child, 5):
                    signal.pidfd_send_signal(child, signal.SIGKILL)
        finally:
            for fd in (pidfd, *children.values()):
                os.close(fd)
            if self._run_dir is not None and not self._run_dir.is_relative_to(self.base_dir):
                shutil.rmtree(self._run_dir, ignore_errors=True)
            if self.smtp_backend:
                shutil.rmtree(self.postfix_auth_socket.parent, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no dovecot log)"
        return "--- dovecot.log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only this server's test CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    # -- users and mail ------------------------------------------------------------------------

    def add_user(self, name: str | None = None, password: str | None = None) -> MailUser:
        """Add a user: a passwd-file ``users/<name>`` Dovecot reads on first login; no reload.

        Dovecot lower-cases login names (auth_username_format = %Lu), so names are
        case-insensitive; a random name and password are made up when not given.
        """
        user = MailUser(
            name or f"user-{secrets.token_hex(5)}", password or secrets.token_urlsafe(12)
        )
        key = user.username.lower()
        if not _USERNAME.fullmatch(key):
            raise ValueError(f"unsupported user name {user.username!r}")
        if not user.password.isprintable() or ":" in user.password:
            raise ValueError("password must be printable and contain no ':'")
        with self._lock:
            if key in self._users:
                raise ValueError(f"user {user.username!r} exists already")
            for sub in ("cur", "new", "tmp"):
                self._mkdir(self.home(key) / "Maildir" / sub)
            entry = self.users_dir / key
            entry.touch(mode=0o600)
            entry.write_text(f"{key}:{{PLAIN}}{user.password}\n")
            self._users[key] = user
        return user

    def home(self, user: MailUser | str) -> Path:
        """The user's home directory on disk."""
        name = user.username if isinstance(user, MailUser) else user
        return self.mail_dir / "home" / name.lower()

    def maildir(self, user: MailUser | str, folder: str = "INBOX") -> Path:
        """On-disk Maildir++ directory of *folder* ("A/B" -> ~/Maildir/.A.B, mUTF-7 names)."""
        root = self.home(user) / "Maildir"
        parts = folder.split("/")
        if parts[0].upper() == "INBOX":
            parts[0] = "INBOX"
            if len(parts) == 1:
                return root
        for part in parts:
            if not part or "." in part or part.startswith("~"):
                raise ValueError(f"folder name {folder!r} is not usable with Maildir++")
        return root / ("." + ".".join(imap_utf7_encode(p).decode("ascii") for p in parts))

    def deliver(
        self,
        user: MailUser | str,
        messages: Sequence[bytes],
        folder: str = "INBOX",
        flags: str = "",
        internal_dates: Sequence[float] | None = None,
    ) -> None:
        """Seed *folder* by writing Maildir files directly (fast; no server round trips).

        *flags* are Maildir letters (S=\\Seen, F=\\Flagged, R=\\Answered, T=\\Deleted,
        D=\\Draft); without flags mail goes to new/ (\\Recent, unseen). Each file's mtime
        becomes its INTERNALDATE. UIDs are assigned in delivery order when Dovecot next looks.
        """
        if internal_dates is not None and len(internal_dates) != len(messages):
            raise ValueError("internal_dates must have one entry per message")
        if set(flags) - set(MAILDIR_FLAGS):
            raise ValueError(f"flags must be Maildir letters from {MAILDIR_FLAGS!r}: {flags!r}")
        if not self.home(user).is_dir():
            raise ValueError(f"unknown user {user!r}: create it with add_user()")
        info = ":2," + "".join(sorted(set(flags))) if flags else ""
        target = self.maildir(user, folder)
        self._ensure_folder(target)
        tmp, dest = f"{target}/tmp/", f"{target}/{'cur' if flags else 'new'}/"
        stamp, pid, uid, gid = int(time.time()), os.getpid(), self.uid, self.gid
        for i, message in enumerate(messages):
            vsize = len(message) + message.count(b"\n") - message.count(b"\r\n")
            name = f"{stamp}.M{next(self._serial):09d}P{pid}.{_HOST},S={len(message)},W={vsize}"
            fd = os.open(tmp + name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(message)
                while view:
                    view = view[os.write(fd, view) :]
                os.fchown(fd, uid, gid)
                if internal_dates is not None:
                    os.utime(fd, (internal_dates[i], internal_dates[i]))
            finally:
                os.close(fd)
            os.rename(tmp + name, dest + name + info)

    # -- internals ---------------------------------------------------------------------------

    def _prepare(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("state", "mail", "mail/home", "mail/tmp"):
            (self.base_dir / sub).mkdir(exist_ok=True)
        for sub in ("mail", "mail/home"):
            os.chown(self.base_dir / sub, self.uid, self.gid)
        (self.mail_dir / "tmp").chmod(0o1777)  # mail_temp_dir inside the chroot
        self.users_dir.mkdir(mode=0o700, exist_ok=True)
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", LOOPBACK)
        ca.cert_pem.write_to_path(str(self.ca_file))
        self.cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        self.key_file.touch(mode=0o600)
        cert.private_key_pem.write_to_path(str(self.key_file))

    def _pick_ports(self) -> None:
        ports: set[int] = set()
        while len(ports) < 5:
            ports.add(free_port())
        self.imap_port, self.imaps_port, self.pop3_port, self.pop3s_port, self.lmtp_port = sorted(
            ports
        )

    def _write_config(self) -> Path:
        run = self.base_dir / "run"
        if len(str(run)) + 40 > _UNIX_SOCKET_MAX:  # Dovecot's sockets live under base_dir
            run = Path(tempfile.mkdtemp(prefix="mailgate-dovecot-"))
        self._run_dir = run
        dh = f"ssl_dh = <{DH_PARAMS}" if DH_PARAMS.exists() else ""
        capability = f"imap_capability = {self.imap_capability}" if self.imap_capability else ""
        mechanisms, oauth2_passdb, password_mechanisms = "plain login", "", ""
        if self.oauth2_introspection_url is not None:
            mechanisms, oauth2_passdb, password_mechanisms = self._write_oauth2_config()
        protocols, smtp_backend = "imap pop3", ""
        if self.smtp_backend:
            protocols, smtp_backend = "imap pop3 lmtp", self._smtp_backend_config()
        self.config_file.write_text(f"""\
instance_name = {self.instance_name}
base_dir = {run}
state_dir = {self.base_dir}/state
log_path = {self.log_file}
protocols = {protocols}
listen = {LOOPBACK}
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
shutdown_clients = yes

ssl = yes
ssl_cert = <{self.cert_file}
ssl_key = <{self.key_file}
{dh}

disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_failure_delay = 0
auth_verbose = yes
{oauth2_passdb}
passdb {{
  driver = passwd-file
  {password_mechanisms}
  # One passwd-file per user: Dovecot stat()s a passwd-file at most once a second, so a
  # user appended to one shared file could stay unknown for up to a second.
  args = scheme=PLAIN username_format=%u {self.users_dir}/%u
}}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home=/home/%u
}}
service anvil {{
  # No auth penalty: else each failed login from 127.0.0.1 delays the next logins from
  # anywhere on loopback by 2, 4, 8 ... up to 15 s.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  # reads users/; the default user (dovecot) may not reach into a private base_dir
  user = root
}}

mail_chroot = {self.mail_dir}
mail_temp_dir = /tmp  # inside the chroot: base_dir/mail/tmp
mail_location = maildir:~/Maildir
mail_fsync = never
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
  mailbox Archive {{
    special_use = \\Archive
    auto = subscribe
  }}
}}

service imap-login {{
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = {self.pop3s_port}
    ssl = yes
  }}
}}
protocol imap {{
  mail_max_userip_connections = 100
  {capability}
}}
protocol pop3 {{
  mail_max_userip_connections = 100
  pop3_uidl_format = %08Xu%08Xv
}}
{smtp_backend}
{self.extra_config}""")
        return run

    def _check_traversable(self) -> None:
        for directory in self.base_dir.parents:
            if not directory.stat().st_mode & stat.S_IXOTH:
                raise DovecotError(
                    f"{directory} is not searchable by others: LMTP (smtp_backend) delivers to"
                    f" {self.mail_dir} as nobody without chroot; put base_dir elsewhere"
                )
        self.base_dir.chmod(self.base_dir.stat().st_mode | stat.S_IXOTH)

    def _make_auth_socket_dir(self) -> None:
        """The SASL socket's directory: root:postfix 0750 (Dovecot's master makes the socket)."""
        directory = self.postfix_auth_socket.parent
        directory.mkdir(mode=0o750, exist_ok=True)
        os.chown(directory, 0, grp.getgrnam("postfix").gr_gid)
        directory.chmod(0o750)

    def _smtp_backend_config(self) -> str:
        """dovecot.conf lines for LMTP delivery and Postfix's SASL socket."""
        return f"""
service lmtp {{
  inet_listener lmtp {{
    port = {self.lmtp_port}
  }}
}}
protocol lmtp {{
  # bob@example.test is the user bob; bob@corp.test is the user bob@corp.test
  auth_username_format = %{{if;%Ld;eq;{LMTP_LOCAL_DOMAIN};%Ln;%Lu}}
}}
service auth {{
  unix_listener {self.postfix_auth_socket} {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
"""

    def _write_oauth2_config(self) -> tuple[str, str, str]:
        """Write dovecot-oauth2.conf.ext; return the auth_mechanisms, the oauth2 passdb and the
        passwd-file passdb's mechanisms filter for dovecot.conf."""
        self.oauth2_file.touch(mode=0o600)  # the URL holds the introspection client's secret
        self.oauth2_file.write_text(f"""\
introspection_mode = post
introspection_url = {self.oauth2_introspection_url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 3000
""")
        passdb = f"""\
auth_cache_size = 0  # with a cache, a revoked or expired token would keep working
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {self.oauth2_file}
}}"""
        # Without this filter a password passes as a token; `none` keeps non-SASL lookups
        # (LMTP delivery) working.
        return "plain login xoauth2 oauthbearer", passdb, "mechanisms = plain login none"

    def _attach_master(self, deadline: float) -> None:
        assert self._run_dir is not None
        pid_file = self._run_dir / "master.pid"
        while not (text := pid_file.read_text() if pid_file.exists() else "").endswith("\n"):
            if time.monotonic() > deadline:
                raise DovecotError(f"dovecot wrote no {pid_file}\n{self.log_tail()}")
            time.sleep(0.005)
        pid = int(text)
        self._pid, self._pidfd = pid, os.pidfd_open(pid)

    def _master_alive(self) -> bool:
        return self._pidfd is not None and not _wait_exit(self._pidfd, 0)

    def _mkdir(self, path: Path) -> None:
        """mkdir -p down from mail/home, owned by the mail user."""
        missing = []
        while not path.is_dir():
            missing.append(path)
            path = path.parent
        for new in reversed(missing):
            new.mkdir(mode=0o700, exist_ok=True)
            os.chown(new, self.uid, self.gid)

    def _ensure_folder(self, target: Path) -> None:
        if (target / "tmp").is_dir():
            return
        for sub in ("cur", "new", "tmp"):
            self._mkdir(target / sub)
        marker = target / "maildirfolder"
        if target.name.startswith(".") and not marker.exists():
            marker.touch(mode=0o600)
            os.chown(marker, self.uid, self.gid)
