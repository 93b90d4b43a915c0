"""A private, real Cyrus IMAP 3.6 (IMAP + POP3) on loopback for the interop tests.

Cyrus runs as the compiled-in user ``cyrus`` (group ``mail``), which must reach every directory
it uses; pytest's tmp dirs are 0700, so when ``base_dir`` is out of its reach the server's tree
(config, sasldb, spool, TLS key) lives in a private ``/tmp/mailgate-cyrus-*`` directory instead,
linked as ``base_dir/srv`` and removed when the test process exits. ``base_dir`` itself keeps what
the tests read: ``ca.pem`` (the CA to trust), ``cyrus.log`` (syslog lines, see SyslogSink) and
``master.stderr``.

Binaries: ``master`` and the tools come from the installed cyrus-common package; imapd, pop3d
and idled from cyrus-imapd/cyrus-pop3d unpacked by scripts/install-test-servers.sh (installing
those would remove Dovecot). Folder names are what a client sees with ``altnamespace`` and
``unixhierarchysep``: "INBOX", "Sent", "Projects/Sub" (personal folders beside INBOX, "/").

This module also holds the helpers the Courier harness shares: private_root(), descendants(),
end_processes(), greeting().
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import grp
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
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO

import trustme
from imapclient.imap_utf7 import encode as imap_utf7_encode

from .dovecot import MAILDIR_FLAGS, ImapAccess, MailUser, _wait_exit
from .net import LOOPBACK, free_port

SERVERS_DIR = Path(os.environ.get("MAILGATE_TEST_SERVERS_DIR", "/var/cache/mailgate-test-servers"))
CYRUS_TOOLS = Path("/usr/lib/cyrus/bin")  # cyrus-common (installed)
CYRUS_MASTER = CYRUS_TOOLS / "master"
CYRUS_SERVICES = SERVERS_DIR / "cyrus/pkg/usr/lib/cyrus/bin"  # cyrus-imapd/-pop3d (unpacked)
SASLPASSWD2 = Path("/usr/sbin/saslpasswd2")
START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0
SASL_REALM = "localhost"  # = servername; sasldb entries are user@realm
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_IMAP_FLAGS = {
    "S": b"\\Seen",
    "F": b"\\Flagged",
    "R": b"\\Answered",
    "T": b"\\Deleted",
    "D": b"\\Draft",
}
# cyrus.index header (Cyrus 3.x, big-endian): ..., minor_version at 8, ..., last_uid at 28
_INDEX_HEADER = struct.Struct(">IIIIIIII")


def cyrus_missing() -> list[str]:
    """The Cyrus programs this harness needs that are not on this machine."""
    needed = [CYRUS_MASTER, CYRUS_TOOLS / "reconstruct", CYRUS_TOOLS / "mbpath", SASLPASSWD2]
    needed += [CYRUS_SERVICES / name for name in ("imapd", "pop3d", "idled")]
    return [str(path) for path in needed if not os.access(path, os.X_OK)]


class CyrusError(RuntimeError):
    """Cyrus did not start, stop or seed as expected."""


# -- helpers shared with the Courier harness ---------------------------------------------------


def reachable(path: Path, uid: int, gids: Iterable[int]) -> bool:
    """Whether user *uid* (groups *gids*) may traverse *path* and all its parents (mode bits)."""
    groups = set(gids)
    for part in (path, *path.parents):
        info = part.stat()
        if info.st_uid == uid:
            bit = stat.S_IXUSR
        elif info.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def private_root(
    base_dir: Path, prefix: str, accounts: Sequence[tuple[int, Sequence[int]]]
) -> Path:
    """A directory for a server's own tree that all *accounts* (uid, gids) can reach:
    ``base_dir/srv`` when they can reach base_dir (and the path is short enough for unix
    sockets), else a fresh ``/tmp/<prefix>*`` linked as ``base_dir/srv`` and removed when this
    process exits."""
    link = base_dir / "srv"
    if link.is_symlink():
        return link.resolve()
    if len(str(link)) < 60 and all(reachable(base_dir.parent, *acct) for acct in accounts):
        base_dir.chmod(0o711)
        link.mkdir(mode=0o711, exist_ok=True)
        return link
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o711)
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    link.symlink_to(root)
    return root


def descendant_pids(pid: int) -> list[int]:
    """Every process below *pid* (children, grandchildren, ...), parents first."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parents.setdefault(int(text[text.rindex(")") + 2 :].split()[1]), []).append(int(entry))
    found: list[int] = []
    todo = list(parents.get(pid, []))
    while todo:
        child = todo.pop(0)
        found.append(child)
        todo.extend(parents.get(child, []))
    return found


def descendants(pid: int) -> dict[int, int]:
    """pid -> pidfd of every process below *pid* (pidfds make later signals race-free)."""
    found: dict[int, int] = {}
    for child in descendant_pids(pid):
        with contextlib.suppress(ProcessLookupError):
            found[child] = os.pidfd_open(child)
    return found


def end_processes(pidfds: dict[int, int], timeout: float = 5.0) -> None:
    """SIGTERM them all, wait up to *timeout*, SIGKILL the rest; close the pidfds."""
    try:
        for fd in pidfds.values():
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(fd, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for fd in pidfds.values():
            if not _wait_exit(fd, max(0.0, deadline - time.monotonic())):
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
    finally:
        for fd in pidfds.values():
            os.close(fd)


def greeting(port: int, timeout: float = 0.5) -> bytes:
    """The first line a server on *port* sends, or b"" (refused, closed, silent)."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
            data = b""
            while b"\n" not in data and len(data) < 8192:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data
    except OSError:
        return b""


_SYSLOG_LINE = re.compile(
    rb"<\d+>(\w{3} [ \d]\d \d\d:\d\d:\d\d) ([^\s\[:]+)(\[\d+\])?: ?(.*)", re.S
)
DEV_LOG = "/dev/log"


class SyslogSink:
    """Receives syslog(3) datagrams on /dev/log and appends each server's lines to its own file.

    Cyrus logs only through syslog(3), which always writes to /dev/log; this machine has no
    syslog daemon, so without a reader its errors vanish. The sink binds
    /dev/log only when nothing serves it (absent, or a stale socket that refuses connections,
    left by a killed test run), and unlinks it again once the last server stops. When a real
    syslog daemon (or another test process) owns /dev/log, ``available`` is False and the lines
    go there instead. Lines whose ident no subscriber claims are dropped.
    """

    def __init__(self, path: str = DEV_LOG) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._routes: dict[int, tuple[Callable[[str], bool], IO[str]]] = {}
        self._next = 0
        self._sock: socket.socket | None = None
        self._inode: int | None = None
        self._wake: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None

    @property
    def available(self) -> bool:
        return self._sock is not None

    def subscribe(self, match: Callable[[str], bool], log_file: Path) -> int:
        """Append lines whose ident satisfies *match* to *log_file*; return a token."""
        with self._lock:
            if not self._routes:
                self._open()
            self._next += 1
            self._routes[self._next] = (match, log_file.open("a", buffering=1))
            return self._next

    def unsubscribe(self, token: int) -> None:
        with self._lock:
            route = self._routes.pop(token, None)
            if route is not None:
                route[1].close()
            if not self._routes:
                self._close()

    def _open(self) -> None:
        if os.path.lexists(self.path):
            if not stat.S_ISSOCK(os.lstat(self.path).st_mode) or self._served():
                return
            os.unlink(self.path)  # stale: nobody reads it
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(self.path)
        except OSError:
            sock.close()
            return
        os.chmod(self.path, 0o666)  # the servers log as cyrus, courier, nobody
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self._sock, self._inode = sock, os.stat(self.path).st_ino
        self._wake = os.pipe()
        self._thread = threading.Thread(target=self._serve, name="syslog-sink", daemon=True)
        self._thread.start()
        atexit.register(self._close)

    def _served(self) -> bool:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            probe.connect(self.path)
        except OSError as exc:
            return exc.errno not in (errno.ECONNREFUSED, errno.ENOENT)
        finally:
            probe.close()
        return True

    def _close(self) -> None:
        atexit.unregister(self._close)
        sock, wake, thread = self._sock, self._wake, self._thread
        self._sock = self._wake = self._thread = None
        if sock is None or wake is None or thread is None:
            return
        os.write(wake[1], b"x")
        thread.join(timeout=5)
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._inode:  # still ours, not a daemon's since
                os.unlink(self.path)
        sock.close()
        for fd in wake:
            os.close(fd)

    def _serve(self) -> None:
        sock, wake = self._sock, self._wake
        assert sock is not None and wake is not None
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        poller.register(wake[0], select.POLLIN)
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if wake[0] in ready:
                return
            try:
                data = sock.recv(65536)
            except OSError:
                return
            found = _SYSLOG_LINE.match(data)
            if found is None:
                continue
            when, ident, pid, text = (part.decode(errors="replace") for part in found.groups(b""))
            line = f"{when} {ident}{pid}: {text.rstrip()}\n"
            with self._lock:
                for match, out in self._routes.values():
                    if match(ident):
                        out.write(line)


syslog_sink = SyslogSink()


# -- the server ------------------------------------------------------------------------------


class CyrusServer(ImapAccess):
    """One Cyrus master with imapd, pop3d and idled. Not thread-safe for start/stop;
    add_user/deliver/append are."""

    host = LOOPBACK
    # the special-use folders a new user has (a plain Courier user: INBOX only)
    special_folders: tuple[str, ...] = ("Sent", "Drafts", "Trash", "Junk", "Archive")
    separator = "/"

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.log_file = self.base_dir / "cyrus.log"
        self.stderr_file = self.base_dir / "master.stderr"
        self.ca_file = self.base_dir / "ca.pem"
        self.ident = f"cyrus-{secrets.token_hex(4)}"  # syslog_prefix: idents are <ident>/imap
        self.imap_port = self.imaps_port = self.pop3_port = self.pop3s_port = 0
        self.uid = pwd.getpwnam("cyrus").pw_uid
        self.gid = grp.getgrnam("mail").gr_gid
        self._root: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._pidfd: int | None = None
        self._sink_token: int | None = None
        self._syslog_captured = True
        self._users: dict[str, MailUser] = {}
        self._paths: dict[tuple[str, str], Path] = {}
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def ports(self) -> dict[str, int]:
        return {
            "imap": self.imap_port,
            "imaps": self.imaps_port,
            "pop3": self.pop3_port,
            "pop3s": self.pop3s_port,
        }

    @property
    def running(self) -> bool:
        return self._proc is not None

    @property
    def root(self) -> Path:
        """The server's own tree (config, sasldb, spool), reachable by the cyrus user."""
        if self._root is None:
            raise CyrusError("the server was never started")
        return self._root

    @property
    def config_file(self) -> Path:
        return self.root / "imapd.conf"

    def pids(self) -> set[int]:
        """The running server's processes: master and all below it (empty when stopped)."""
        if self._proc is None:
            return set()
        return {self._proc.pid, *descendant_pids(self._proc.pid)}

    def start(self) -> None:
        """Write the config (fresh ports the first time) and start master in the foreground;
        return once IMAP and POP3 greet."""
        if self.running:
            raise CyrusError(f"{self.ident} is already running")
        if missing := cyrus_missing():
            raise CyrusError(f"missing {', '.join(missing)}: run scripts/install-test-servers.sh")
        if self._root is None:
            self._prepare()
        fresh_ports = self.imap_port == 0
        deadline = time.monotonic() + START_TIMEOUT
        atexit.register(self.stop)
        if self._sink_token is None:
            self._sink_token = syslog_sink.subscribe(self._claims, self.log_file)
            self._syslog_captured = syslog_sink.available
        try:
            while True:
                if fresh_ports:
                    self._pick_ports()
                self._write_config()
                log_start = self._log_size()
                self._spawn()
                problem = self._await_greetings(deadline, log_start)
                if problem is None:
                    return
                self._end_master()
                # A freshly picked port was taken meanwhile (pick again), or after a restart
                # the old sockets linger for a moment (retry the same ones); else give up.
                if "unable to bind" not in problem or time.monotonic() > deadline:
                    raise CyrusError(f"cyrus master did not start: {problem}\n{self.log_tail()}")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """End master and everything below it; no-op when stopped, safe after a failed start."""
        atexit.unregister(self.stop)
        try:
            self._end_master()
        finally:
            if self._sink_token is not None:
                syslog_sink.unsubscribe(self._sink_token)
                self._sink_token = None

    def log_tail(self, lines: int = 30) -> str:
        """The last syslog lines of this instance and master's stderr, for failure messages."""
        parts = []
        for path in (self.log_file, self.stderr_file):
            try:
                text = path.read_text(errors="replace")
            except FileNotFoundError:
                continue
            if text.strip():
                tail = "\n".join(text.splitlines()[-lines:])
                parts.append(f"--- {path.name} (tail) ---\n{tail}")
        if not self._syslog_captured:
            parts.append(f"(syslog not captured: {DEV_LOG} belongs to someone else; look there)")
        return "\n".join(parts) or "(no cyrus log)"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only this server's test CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    # -- users and mail ------------------------------------------------------------------------

    def add_user(self, name: str | None = None, password: str | None = None) -> MailUser:
        """Add a user to the sasldb (saslpasswd2) and log in once, so Cyrus autocreates INBOX
        and Drafts, Sent, Trash, Junk, Archive (special-use, subscribed) as Dovecot has them.

        Names are lower-cased (Cyrus folds them: username_tolower); a random name and password
        are made up when not given. The server must be running.
        """
        user = MailUser(
            (name or f"user-{secrets.token_hex(5)}").lower(),
            password or secrets.token_urlsafe(12),
        )
        if not _USERNAME.fullmatch(user.username) or user.username == "cyrus":
            raise ValueError(f"unsupported user name {user.username!r}")
        if not user.password.isprintable() or "\n" in user.password:
            raise ValueError("password must be printable")
        with self._lock:
            if user.username in self._users:
                raise ValueError(f"user {user.username!r} exists already")
            self._users[user.username] = user
        try:
            sasldb = self.root / "sasldb2"
            argv = [str(SASLPASSWD2), "-p", "-c", "-f", str(sasldb), "-u", SASL_REALM]
            with self._lock:  # saslpasswd2 as root (the cyrus user may not create files here)
                self._run(*argv, user.username, stdin=user.password, as_cyrus=False)
                os.chown(sasldb, self.uid, self.gid)
            self.imap_client(user).logout()
        except BaseException:
            with self._lock:
                self._users.pop(user.username, None)
            raise
        return user

    def mailbox_name(self, user: MailUser | str, folder: str = "INBOX") -> str:
        """Cyrus' own (admin) name of *folder*: "user/alice", "user/alice/Projects/Sub"."""
        name = self._user(user).username
        parts = folder.split("/")
        if parts[0].upper() == "INBOX":
            if len(parts) > 1:
                raise ValueError(f"{folder!r}: with altnamespace folders sit beside INBOX")
            return f"user/{name}"
        if any(not part for part in parts):
            raise ValueError(f"bad folder name {folder!r}")
        return f"user/{name}/" + "/".join(imap_utf7_encode(p).decode("ascii") for p in parts)

    def mailbox_path(self, user: MailUser | str, folder: str = "INBOX") -> Path:
        """On-disk directory of *folder* (from ``mbpath``); the folder must exist."""
        key = (self._user(user).username, folder)
        if key not in self._paths:
            name = self.mailbox_name(user, folder)
            out = self._run(str(CYRUS_TOOLS / "mbpath"), "-C", str(self.config_file), name)
            self._paths[key] = Path(out.strip())
        return self._paths[key]

    def deliver(
        self,
        user: MailUser | str,
        messages: Sequence[bytes],
        folder: str = "INBOX",
        flags: str = "",
        internal_dates: Sequence[float] | None = None,
    ) -> None:
        """Seed *folder* (created, unsubscribed, when missing) by writing message files
        ``<uid>.`` into its directory and running ``reconstruct`` (fast: 10,000 messages in
        1-3 s; IMAP APPEND takes much longer, and Cyrus has no MULTIAPPEND fast path).

        *flags* are Maildir letters as for Dovecot (S=\\Seen, F=\\Flagged, R=\\Answered,
        T=\\Deleted, D=\\Draft; P has no IMAP flag and is ignored, as Dovecot does).
        reconstruct cannot take flags from files, so they are set afterwards with one IMAP
        ``UID STORE`` over the new UIDs. Each file's mtime becomes its INTERNALDATE; UIDs are
        assigned in delivery order. Bare LFs become CRLF, as Cyrus stores messages.
        """
        if internal_dates is not None and len(internal_dates) != len(messages):
            raise ValueError("internal_dates must have one entry per message")
        if set(flags) - set(MAILDIR_FLAGS):
            raise ValueError(f"flags must be Maildir letters from {MAILDIR_FLAGS!r}: {flags!r}")
        account = self._user(user)
        if not messages:
            return
        with self._lock:
            path = self._folder_path(account, folder)
            first = self._last_uid(path) + 1
            uid, gid = self.uid, self.gid
            for i, original in enumerate(messages):
                message = _BARE_LF.sub(b"\r\n", original)
                name = f"{path}/{first + i}."
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    view = memoryview(message)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fchown(fd, uid, gid)
                    if internal_dates is not None:
                        os.utime(fd, (internal_dates[i], internal_dates[i]))
                finally:
                    os.close(fd)
            name = self.mailbox_name(account, folder)
            self._run(str(CYRUS_TOOLS / "reconstruct"), "-C", str(self.config_file), "-q", name)
        imap_flags = sorted({_IMAP_FLAGS[letter] for letter in flags if letter in _IMAP_FLAGS})
        if imap_flags:
            last = first + len(messages) - 1
            with self.imap_client(account) as client:
                client.select_folder(folder)
                client.add_flags(f"{first}:{last}", imap_flags, silent=True)

    # -- internals ---------------------------------------------------------------------------

    def _claims(self, ident: str) -> bool:
        return ident == self.ident or ident.startswith(self.ident + "/")

    def _user(self, user: MailUser | str) -> MailUser:
        name = (user.username if isinstance(user, MailUser) else user).lower()
        try:
            return self._users[name]
        except KeyError:
            raise ValueError(f"unknown user {name!r}: create it with add_user()") from None

    def _prepare(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        root = private_root(self.base_dir, "mailgate-cyrus-", [(self.uid, [self.gid])])
        if re.search(r"[\s\"']", str(root)):
            raise CyrusError(f"{root}: cyrus.conf cannot quote this path")
        for sub in (
            "lib",
            "lib/db",
            "lib/socket",
            "lib/proc",
            "lib/log",
            "lib/msg",
            "lib/user",
            "lib/quota",
            "lib/sieve",
            "lib/lock",
            "spool",
            "tmp",
        ):
            (root / sub).mkdir(mode=0o750, exist_ok=True)
            os.chown(root / sub, self.uid, self.gid)
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", LOOPBACK)
        ca.cert_pem.write_to_path(str(self.ca_file))
        cert_file, key_file = root / "cert.pem", root / "key.pem"
        cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        key_file.touch(mode=0o600)
        cert.private_key_pem.write_to_path(str(key_file))
        os.chown(key_file, self.uid, self.gid)
        self._root = root

    def _pick_ports(self) -> None:
        ports: set[int] = set()
        while len(ports) < 4:
            ports.add(free_port())
        self.imap_port, self.imaps_port, self.pop3_port, self.pop3s_port = sorted(ports)

    def _write_config(self) -> None:
        root, conf = self.root, self.config_file
        conf.write_text(f"""\
# Cyrus IMAP test config: private dirs, loopback ports (written by tests/harness/cyrus.py)
servername: localhost
configdirectory: {root}/lib
partition-default: {root}/spool
defaultpartition: default
sievedir: {root}/lib/sieve
temp_path: {root}/tmp
syslog_prefix: {self.ident}
# auth: SASL auxprop against a private sasldb (realm = servername); plaintext without TLS
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {root}/sasldb2
sasl_mech_list: PLAIN LOGIN
allowplaintext: yes
# wrong-password tests answer at once (default: 3 s pause)
failedloginpause: 0
# INBOX + special-use folders (as the Dovecot harness has them) on first login
autocreate_quota: 0
autocreate_inbox_folders: Drafts|Sent|Trash|Junk|Archive
autocreate_subscribe_folders: Drafts|Sent|Trash|Junk|Archive
xlist-drafts: Drafts
xlist-sent: Sent
xlist-trash: Trash
xlist-junk: Junk
xlist-archive: Archive
# '/' separator, personal folders at top level beside INBOX
unixhierarchysep: yes
altnamespace: yes
tls_server_cert: {root}/cert.pem
tls_server_key: {root}/key.pem
# IDLE: idled pushes changes at once; polling fallback 1 s
imapidlepoll: 1
popminpoll: 0
""")
        conf.chmod(0o644)
        services = CYRUS_SERVICES
        ctl = f"{CYRUS_TOOLS}/ctl_cyrusdb -C {conf}"
        (root / "cyrus.conf").write_text(f"""\
# Cyrus master config. Every cmd needs its own -C: master does not pass its -C on to children.
START {{
  recover cmd="{ctl} -r"
}}
SERVICES {{
  imap  cmd="{services}/imapd -C {conf}" listen="{LOOPBACK}:{self.imap_port}" prefork=0
  imaps cmd="{services}/imapd -s -C {conf}" listen="{LOOPBACK}:{self.imaps_port}" prefork=0
  pop3  cmd="{services}/pop3d -C {conf}" listen="{LOOPBACK}:{self.pop3_port}" prefork=0
  pop3s cmd="{services}/pop3d -s -C {conf}" listen="{LOOPBACK}:{self.pop3s_port}" prefork=0
}}
EVENTS {{
  checkpoint cmd="{ctl} -c" period=30
}}
DAEMON {{
  idled cmd="{services}/idled -C {conf}"
}}
""")

    def _spawn(self) -> None:
        root = self.root
        (root / "master.pid").unlink(missing_ok=True)
        with self.stderr_file.open("ab") as err:
            proc = subprocess.Popen(
                [
                    *(str(CYRUS_MASTER), "-C", str(self.config_file)),
                    *("-M", str(root / "cyrus.conf"), "-p", str(root / "master.pid"), "-D"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,  # a Ctrl-C of the tests is for them; stop() ends master
            )
        self._proc, self._pidfd = proc, os.pidfd_open(proc.pid)

    def _end_master(self) -> None:
        """SIGTERM master and everything below it at once, wait, SIGKILL stragglers.

        master alone takes 1-1.5 s to shut down (it waits for its children in one-second
        ticks); ending the children at the same time takes milliseconds. They then log
        "graceful shutdown initiated by unexpected process" (the test process): harmless.
        """
        proc, pidfd = self._proc, self._pidfd
        self._proc = self._pidfd = None
        if proc is None or pidfd is None:
            return
        try:
            below = descendants(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, signal.SIGTERM)
            end_processes(below)
            if not _wait_exit(pidfd, STOP_TIMEOUT):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                proc.wait()
                raise CyrusError(f"cyrus master {proc.pid} ignored SIGTERM; killed")
            proc.wait()
        finally:
            os.close(pidfd)

    def _await_greetings(self, deadline: float, log_start: int) -> str | None:
        """None once imapd and pop3d greet; else what went wrong."""
        assert self._pidfd is not None
        while True:
            imap, pop3 = greeting(self.imap_port), greeting(self.pop3_port)
            if imap.startswith(b"* OK") and pop3.startswith(b"+OK"):
                return None
            if _wait_exit(self._pidfd, 0):
                return f"master exited ({self._proc.wait() if self._proc else '?'})"
            if "unable to bind" in self._log_since(log_start):
                return "unable to bind a listener"
            if time.monotonic() > deadline:
                return f"no greeting on IMAP {self.imap_port} / POP3 {self.pop3_port}"
            time.sleep(0.01)

    def _log_size(self) -> int:
        try:
            return self.log_file.stat().st_size
        except FileNotFoundError:
            return 0

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_file.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def _run(self, *argv: str, stdin: str | None = None, as_cyrus: bool = True) -> str:
        """Run a tool, Cyrus' own as cyrus:mail (as root they would leave root-owned files)."""
        result = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            user=self.uid if as_cyrus else None,
            group=self.gid if as_cyrus else None,
            extra_groups=[] if as_cyrus else None,
        )
        if result.returncode != 0:
            raise CyrusError(
                f"{' '.join(argv)} failed ({result.returncode}): {result.stderr or result.stdout}"
                f"\n{self.log_tail()}"
            )
        return result.stdout

    def _folder_path(self, user: MailUser, folder: str) -> Path:
        """The folder's directory; creates the folder over IMAP when it does not exist."""
        try:
            return self.mailbox_path(user, folder)
        except CyrusError:
            if folder.upper() == "INBOX":
                raise
        with self.imap_client(user) as client:
            client.create_folder(folder)  # not subscribed, as with the Dovecot harness
        return self.mailbox_path(user, folder)

    @staticmethod
    def _last_uid(path: Path) -> int:
        """The highest UID the folder has used: from cyrus.index and from the files there
        (expunged messages keep their files until cyr_expire)."""
        with (path / "cyrus.index").open("rb") as index:
            header = _INDEX_HEADER.unpack(index.read(_INDEX_HEADER.size))
        last: int = header[7]
        for entry in os.scandir(path):
            name = entry.name
            if name.endswith(".") and name[:-1].isdigit():
                last = max(last, int(name[:-1]))
        return last
