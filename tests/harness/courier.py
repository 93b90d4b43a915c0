"""A private, real Courier-IMAP 5 / Courier-POP3 on loopback for the interop tests.

Courier's authlib has its paths compiled in: authdaemond reads /etc/courier/authdaemonrc and
/etc/courier/userdb.dat and listens on /run/courier/authdaemon/socket. So there is only one
CourierServer per machine at a time: start() takes a machine-wide lock (a second instance, in
this process or another, fails with CourierError), moves the original /etc/courier files
aside and writes its own; stop() puts the originals back (a run killed before that is repaired
by the next start). Everything else is private: users' Maildir++ trees (owned nobody:nogroup),
the TLS files, logs. When ``base_dir`` is out of reach of nobody and courier (pytest's tmp dirs
are 0700) that tree lives in ``/tmp/mailgate-courier-*``, linked as ``base_dir/srv``.

Folder names: Courier puts every folder under INBOX with "." as separator; a client sees
"INBOX.Sent" (on disk ``Maildir/.Sent``). The harness takes that wire name; a name without the
"INBOX." prefix means the same folder ("Sent" is "INBOX.Sent"), so tests can share folder
names across servers. A fresh user has INBOX only, as on a plain Courier install.

Binaries: couriertcpd, couriertls, authdaemond, makeuserdb come from installed packages;
imaplogin/imapd and courierpop3login/courierpop3d from courier-imap/courier-pop unpacked by
scripts/install-test-servers.sh (installing those would remove Dovecot).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import fcntl
import grp
import hashlib
import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

import trustme

from .cyrus import (
    SERVERS_DIR,
    descendant_pids,
    descendants,
    end_processes,
    greeting,
    private_root,
)
from .dovecot import _HOST, MAILDIR_FLAGS, ImapAccess, MailUser, _wait_exit
from .net import LOOPBACK, free_port

COURIER_PKG = SERVERS_DIR / "courier/pkg"  # courier-imap, courier-pop (unpacked)
IMAPLOGIN = COURIER_PKG / "usr/lib/courier/courier/imaplogin"
IMAPD = COURIER_PKG / "usr/bin/imapd"
POP3LOGIN = COURIER_PKG / "usr/lib/courier/courier/courierpop3login"
POP3D = COURIER_PKG / "usr/lib/courier/courier/courierpop3d"
COURIERTCPD = Path("/usr/sbin/couriertcpd")
COURIERTLS = Path("/usr/bin/couriertls")
AUTHDAEMOND = Path("/usr/lib/courier/courier-authlib/authdaemond")
MAKEUSERDB = Path("/usr/sbin/makeuserdb")
ETC = Path("/etc/courier")
AUTHDAEMON_DIR = Path("/run/courier/authdaemon")
# The files authlib reads from fixed paths (and makeuserdb writes beside them).
ETC_FILES = ("authdaemonrc", "userdb", "userdb.dat", "userdbshadow.dat", "userdb.lock")
ETC_BACKUP = ETC / ".mailgate-test-backup"
LOCK_FILE = Path("/run/lock/mailgate-test-courier.lock")
START_TIMEOUT = 10.0
# What the recipe (and many real installs) advertise: no CONDSTORE, MOVE, ESEARCH,
# SPECIAL-USE, NOTIFY, MULTIAPPEND, LITERAL+. imapd adds ACL, ENABLE, UTF8=ACCEPT itself.
IMAP_CAPABILITY = (
    "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE"
)
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


def courier_missing() -> list[str]:
    """The Courier programs this harness needs that are not on this machine."""
    needed = [COURIERTCPD, COURIERTLS, AUTHDAEMOND, MAKEUSERDB, IMAPLOGIN, IMAPD]
    needed += [POP3LOGIN, POP3D]
    return [str(path) for path in needed if not os.access(path, os.X_OK)]


class CourierError(RuntimeError):
    """Courier did not start or stop as expected, or another one is running."""


def _courier_env(cert: Path) -> dict[str, str]:
    """What /etc/courier/imapd, imapd-ssl, pop3d and pop3d-ssl set on a packaged install."""
    return {
        "PATH": "/usr/sbin:/usr/bin:/bin",
        "IMAP_CAPABILITY": IMAP_CAPABILITY,
        "IMAP_CAPABILITY_TLS": IMAP_CAPABILITY + " AUTH=PLAIN",
        "IMAP_KEYWORDS": "1",
        "IMAP_ACL": "1",
        "IMAP_PROXY": "0",
        "IMAP_IDLE_TIMEOUT": "60",
        "IMAP_ENHANCEDIDLE": "1",
        "IMAP_MAILBOX_SANITY_CHECK": "1",
        "IMAP_DISABLETHREADSORT": "0",
        "IMAP_CHECK_ALL_FOLDERS": "0",
        "IMAP_OBSOLETE_CLIENT": "0",
        "IMAP_UMASK": "022",
        "IMAP_USELOCKS": "1",
        "IMAP_TRASHFOLDERNAME": "Trash",
        # Debian's default is Trash:7 (purge week-old mail in Trash at login): seeded mail with
        # old INTERNALDATEs would vanish, so tests get no purge.
        "IMAP_EMPTYTRASH": "",
        "IMAP_MOVE_EXPUNGE_TO_TRASH": "0",
        "IMAP_SHAREDINDEXFILE": "/etc/courier/shared/index",
        "HEADERFROM": "X-IMAP-Sender",
        "SENDMAIL": "/usr/sbin/sendmail",
        "IMAP_TLS_REQUIRED": "0",
        "POP3AUTH": "PLAIN LOGIN",
        "POP3AUTH_TLS": "PLAIN LOGIN",
        "POP3_PROXY": "0",
        "POP3_TLS_REQUIRED": "0",
        "MIME_UNICODE_MESSAGE_TYPE": "message/global",
        "COURIERTLS": str(COURIERTLS),
        "TLS_CERTFILE": str(cert),
        "TLS_DHPARAMS": str(ETC / "dhparams.pem"),
        "TLS_TRUSTCERTS": "/etc/ssl/certs/ca-certificates.crt",
        "TLS_VERIFYPEER": "NONE",
    }


def _password_hash(password: str) -> str:
    """userdb ``systempw``: authlib checks "{SHA512}" + base64(SHA-512) (no crypt(3) needed)."""
    digest = hashlib.sha512(password.encode()).digest()
    return "{SHA512}" + base64.b64encode(digest).decode("ascii")


class CourierServer(ImapAccess):
    """One Courier: authdaemond plus couriertcpd for IMAP, IMAPS, POP3, POP3S. Only one per
    machine at a time. Not thread-safe for start/stop; add_user/deliver/append are."""

    host = LOOPBACK
    # the special-use folders a new user has (a plain Courier user: INBOX only)
    special_folders: tuple[str, ...] = ()
    separator = "."
    prefix = "INBOX."

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.ca_file = self.base_dir / "ca.pem"
        self.imap_port = self.imaps_port = self.pop3_port = self.pop3s_port = 0
        self.uid = pwd.getpwnam("nobody").pw_uid
        self.gid = grp.getgrnam("nogroup").gr_gid
        self._courier = pwd.getpwnam("courier")
        self._root: Path | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._pidfds: dict[str, int] = {}
        self._lock_file: IO[str] | None = None
        self._etc_applied = False
        self._users: dict[str, MailUser] = {}
        self._lock = threading.Lock()
        self._serial = itertools.count(1)

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
        return bool(self._procs)

    @property
    def root(self) -> Path:
        """The server's own tree (mail, TLS key), reachable by nobody and courier."""
        if self._root is None:
            raise CourierError("the server was never started")
        return self._root

    def pids(self) -> set[int]:
        """The running server's processes: authdaemond, the listeners and all below them."""
        found = set()
        for proc in self._procs.values():
            found |= {proc.pid, *descendant_pids(proc.pid)}
        return found

    def start(self) -> None:
        """Take the machine-wide lock, install the authlib config, start authdaemond and the
        four listeners; return once IMAP and POP3 greet."""
        if self.running:
            raise CourierError("this Courier is already running")
        if missing := courier_missing():
            raise CourierError(f"missing {', '.join(missing)}: run scripts/install-test-servers.sh")
        atexit.register(self.stop)
        try:
            self._take_lock()
            if self._root is None:
                self._prepare()
            self._apply_etc()
            self._start_authdaemond()
            fresh_ports = self.imap_port == 0
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if fresh_ports:
                    self._pick_ports()
                self._start_listeners()
                problem = self._await_greetings(deadline)
                if problem is None:
                    return
                for name in ("imap", "imaps", "pop3", "pop3s"):
                    self._end(name)
                # A freshly picked port was taken meanwhile (pick again), or after a restart
                # the old sockets linger for a moment (retry the same ones); else give up.
                if "in use" not in problem or time.monotonic() > deadline:
                    raise CourierError(f"courier did not start: {problem}\n{self.log_tail()}")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """End the listeners with their sessions and authdaemond, put the original
        /etc/courier files back, release the lock. No-op when stopped; safe after a failed
        start."""
        atexit.unregister(self.stop)
        try:
            for name in list(self._procs):
                self._end(name)
        finally:
            try:
                if self._etc_applied:
                    self._restore_etc()
            finally:
                if self._lock_file is not None:
                    self._note_processes()  # none left
                    self._lock_file.close()  # releases the flock
                    self._lock_file = None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of authdaemond's and each listener's log, for failure messages.

        Courier's programs log to stderr (a packaged install pipes that to syslog through
        courierlogger); here each one's stderr goes to ``base_dir/<name>.log``.
        """
        parts = []
        for name in ("authdaemond", "imap", "imaps", "pop3", "pop3s"):
            path = self.base_dir / f"{name}.log"
            try:
                text = path.read_text(errors="replace")
            except FileNotFoundError:
                continue
            if text.strip():
                tail = "\n".join(text.splitlines()[-lines:])
                parts.append(f"--- {path.name} (tail) ---\n{tail}")
        return "\n".join(parts) or "(no courier log)"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only this server's test CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    # -- users and mail ------------------------------------------------------------------------

    def add_user(
        self,
        name: str | None = None,
        password: str | None = None,
        folders: Iterable[str] = (),
    ) -> MailUser:
        """Add a user (userdb + makeuserdb; authdaemond sees it at once) with an empty
        Maildir. A plain Courier user has INBOX only; *folders* (e.g. ("Sent", "Trash")) are
        created and subscribed, see make_folder(). Names are lower-cased; a random name and
        password are made up when not given. Works stopped or running.
        """
        user = MailUser(
            (name or f"user-{secrets.token_hex(5)}").lower(),
            password or secrets.token_urlsafe(12),
        )
        if not _USERNAME.fullmatch(user.username):
            raise ValueError(f"unsupported user name {user.username!r}")
        if not user.password.isprintable():
            raise ValueError("password must be printable")
        if self._root is None:
            self._prepare()
        with self._lock:
            if user.username in self._users:
                raise ValueError(f"user {user.username!r} exists already")
            for sub in ("cur", "new", "tmp"):
                self._mkdir(self.maildir(user.username) / sub)
            self._users[user.username] = user
            self._write_userdb()
        for folder in folders:
            self.make_folder(user, folder)
        return user

    def home(self, user: MailUser | str) -> Path:
        """The user's home directory on disk."""
        name = user.username if isinstance(user, MailUser) else user
        return self.root / "mail" / name.lower()

    def folder_name(self, folder: str) -> str:
        """The name a client sees: "Sent" -> "INBOX.Sent", "INBOX.Sent" stays, "INBOX" stays."""
        if folder.upper() == "INBOX":
            return "INBOX"
        if folder.upper().startswith("INBOX."):
            return "INBOX." + folder[len("INBOX.") :]
        return self.prefix + folder

    def maildir(self, user: MailUser | str, folder: str = "INBOX") -> Path:
        """On-disk Maildir++ directory of *folder* ("INBOX.A.B" or "A.B" -> ~/Maildir/.A.B).

        Courier-IMAP 5 keeps folder names in UTF-8 on disk (mUTF-7 only on the wire)."""
        root = self.home(user) / "Maildir"
        wire = self.folder_name(folder)
        if wire == "INBOX":
            return root
        rest = wire[len("INBOX.") :]
        if any(not part or "/" in part for part in rest.split(".")):
            raise ValueError(f"folder name {folder!r} is not usable with Maildir++")
        return root / ("." + rest)

    def make_folder(self, user: MailUser | str, folder: str, subscribe: bool = True) -> str:
        """Create *folder* (and its parents, as Courier's CREATE does), subscribed unless told
        otherwise; return its wire name. Idempotent."""
        wire = self.folder_name(folder)
        if wire == "INBOX":
            return wire
        self._known(user)
        parts = wire.split(".")
        with self._lock:
            for depth in range(2, len(parts) + 1):
                self._ensure_folder(self.maildir(user, ".".join(parts[:depth])))
            if subscribe:
                listing = self.home(user) / "Maildir" / "courierimapsubscribed"
                current = listing.read_text().splitlines() if listing.exists() else []
                if wire not in current:
                    with listing.open("a") as out:
                        out.write(wire + "\n")
                    os.chown(listing, self.uid, self.gid)
        return wire

    def deliver(
        self,
        user: MailUser | str,
        messages: Sequence[bytes],
        folder: str = "INBOX",
        flags: str = "",
        internal_dates: Sequence[float] | None = None,
    ) -> None:
        """Seed *folder* (created, unsubscribed, when missing) by writing Maildir files
        directly, as the Dovecot harness does (no server round trips).

        *flags* are Maildir letters (S=\\Seen, F=\\Flagged, R=\\Answered, T=\\Deleted,
        D=\\Draft); without flags mail goes to new/ (\\Recent, unseen). Each file's mtime
        becomes its INTERNALDATE. Courier assigns UIDs in file-name order (delivery order here)
        when it next scans the folder (SELECT, STATUS, POP3 login): an APPEND before that
        gets a lower UID than the delivered messages. Files get LF line ends, as a Courier MDA
        writes them (imapd adds the CR; a CRLF file would be served with CR CR LF).
        """
        if internal_dates is not None and len(internal_dates) != len(messages):
            raise ValueError("internal_dates must have one entry per message")
        if set(flags) - set(MAILDIR_FLAGS):
            raise ValueError(f"flags must be Maildir letters from {MAILDIR_FLAGS!r}: {flags!r}")
        self._known(user)
        info = ":2," + "".join(sorted(set(flags))) if flags else ""
        target = self.maildir(user, folder)
        if not (target / "tmp").is_dir():
            self.make_folder(user, folder, subscribe=False)
        tmp, dest = f"{target}/tmp/", f"{target}/{'cur' if flags else 'new'}/"
        stamp, pid, uid, gid = int(time.time()), os.getpid(), self.uid, self.gid
        for i, original in enumerate(messages):
            message = original.replace(b"\r\n", b"\n")
            name = f"{stamp}.M{next(self._serial):09d}P{pid}.{_HOST},S={len(message)}"
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

    # -- internals: lock and /etc/courier ------------------------------------------------------

    def _take_lock(self) -> None:
        if self._lock_file is not None:
            return
        LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
        handle = LOCK_FILE.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise CourierError(
                "another Courier test server is running on this machine"
                f" ({owner}); Courier's authlib reads fixed paths under {ETC}, so only one can"
                " run at a time: stop the other one first"
            ) from None
        handle.seek(0)
        self._end_orphans(handle.read())
        self._lock_file = handle
        self._note_processes()

    def _note_processes(self) -> None:
        """Keep the owner and its processes in the lock file, for _end_orphans()."""
        if self._lock_file is None:
            return
        pids = " ".join(str(proc.pid) for proc in self._procs.values())
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(f"pid {os.getpid()}, base_dir {self.base_dir}\nprocesses: {pids}\n")
        self._lock_file.flush()

    @staticmethod
    def _end_orphans(previous: str) -> None:
        """End what a killed test run left running (its lock is free, so it is gone): the
        processes it noted that are still authdaemond or couriertcpd, and all below them."""
        found = re.search(r"^processes: ([\d ]*)$", previous, re.M)
        for pid in map(int, found.group(1).split() if found else ()):
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                continue
            if exe not in (str(AUTHDAEMOND), str(COURIERTCPD)):
                continue
            try:
                pidfd = os.pidfd_open(pid)
            except ProcessLookupError:
                continue
            end_processes({**descendants(pid), pid: pidfd})

    def _apply_etc(self) -> None:
        """Move the original authlib files aside (once) and write this server's own."""
        if ETC_BACKUP.exists():
            self._restore_etc()  # left over by a run that was killed before its stop()
        ETC_BACKUP.mkdir(mode=0o700)
        for name in ETC_FILES:
            if os.path.lexists(ETC / name):
                os.rename(ETC / name, ETC_BACKUP / name)
        self._etc_applied = True
        rc = ETC / "authdaemonrc"
        rc.touch(mode=0o640)
        os.chown(rc, 0, self._courier.pw_gid)
        rc.write_text(
            "# written by tests/harness/courier.py; the original is in"
            f" {ETC_BACKUP} while the test server runs\n"
            'authmodulelist="authuserdb"\n'
            'authmodulelistorig="authuserdb"\n'
            "daemons=2\n"
            f"authdaemonvar={AUTHDAEMON_DIR}\n"
            "DEBUG_LOGIN=0\n"
            'DEFAULTOPTIONS=""\n'
            'LOGGEROPTS=""\n'
        )
        self._write_userdb()

    def _restore_etc(self) -> None:
        self._etc_applied = False
        if not ETC_BACKUP.is_dir():
            return
        for name in ETC_FILES:
            ours = ETC / name
            if ours.is_dir() and not ours.is_symlink():
                shutil.rmtree(ours)
            else:
                ours.unlink(missing_ok=True)
            if os.path.lexists(ETC_BACKUP / name):
                os.rename(ETC_BACKUP / name, ours)
        for leftover in ("userdb.tmp", "userdbshadow.tmp"):
            (ETC / leftover).unlink(missing_ok=True)
        ETC_BACKUP.rmdir()

    def _write_userdb(self) -> None:
        """Write /etc/courier/userdb from this server's users and run makeuserdb."""
        if not self._etc_applied:
            return  # start() writes it
        lines = []
        for user in self._users.values():
            home = self.home(user)
            fields = (
                f"uid={self.uid}",
                f"gid={self.gid}",
                f"home={home}",
                f"mail={home}/Maildir",
                f"systempw={_password_hash(user.password)}",
            )
            lines.append(f"{user.username}\t{'|'.join(fields)}\n")
        userdb = ETC / "userdb"
        userdb.touch(mode=0o600)
        userdb.chmod(0o600)  # makeuserdb refuses anything else
        userdb.write_text("".join(lines))
        result = subprocess.run([str(MAKEUSERDB)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise CourierError(f"makeuserdb failed: {result.stdout}{result.stderr}")

    # -- internals: processes ------------------------------------------------------------------

    def _start_authdaemond(self) -> None:
        socket_path = AUTHDAEMON_DIR / "socket"
        if socket_path.exists() and self._served(socket_path):
            raise CourierError(
                f"an authdaemond that is not this harness' serves {socket_path}: stop it"
                " (authdaemond stop) before running the Courier tests"
            )
        AUTHDAEMON_DIR.mkdir(parents=True, exist_ok=True)
        os.chown(AUTHDAEMON_DIR, self._courier.pw_uid, self._courier.pw_gid)
        AUTHDAEMON_DIR.chmod(0o750)
        socket_path.unlink(missing_ok=True)
        self._spawn("authdaemond", [str(AUTHDAEMOND)], {"PATH": "/usr/sbin:/usr/bin:/bin"})
        deadline = time.monotonic() + START_TIMEOUT
        while not self._served(socket_path):
            if _wait_exit(self._pidfds["authdaemond"], 0) or time.monotonic() > deadline:
                raise CourierError(f"authdaemond did not come up\n{self.log_tail()}")
            time.sleep(0.005)

    @staticmethod
    def _served(path: Path) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
            except OSError:
                return False
        return True

    def _start_listeners(self) -> None:
        tls = [str(COURIERTLS), "-server", "-tcpd"]
        imap = [str(IMAPLOGIN), str(IMAPD), "Maildir"]
        pop3 = [str(POP3LOGIN), str(POP3D), "Maildir"]
        env = _courier_env(self.root / "courier.pem")
        listeners = {
            "imap": (self.imap_port, imap, {"IMAP_STARTTLS": "YES"}),
            "imaps": (self.imaps_port, tls + imap, {"IMAP_TLS": "1", "IMAP_STARTTLS": "NO"}),
            "pop3": (self.pop3_port, pop3, {"POP3_STARTTLS": "YES"}),
            "pop3s": (self.pop3s_port, tls + pop3, {"POP3_TLS": "1", "POP3_STARTTLS": "NO"}),
        }
        for name, (port, argv, extra) in listeners.items():
            tcpd = [str(COURIERTCPD), f"-address={LOOPBACK}", "-maxprocs=200", "-maxperip=200"]
            tcpd += ["-nodnslookup", "-noidentlookup", str(port)]
            self._spawn(name, tcpd + argv, env | extra)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        with (self.base_dir / f"{name}.log").open("ab") as err:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                env=env,
                cwd="/",
                start_new_session=True,  # a Ctrl-C of the tests is for them; stop() ends it
            )
        self._procs[name], self._pidfds[name] = proc, os.pidfd_open(proc.pid)
        self._note_processes()

    def _end(self, name: str) -> None:
        """End one process with everything below it (sessions, TLS wrappers, workers)."""
        proc, pidfd = self._procs.pop(name, None), self._pidfds.pop(name, None)
        if proc is None or pidfd is None:
            return
        below = descendants(proc.pid)
        try:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, signal.SIGTERM)
            end_processes(below)
            if not _wait_exit(pidfd, 5):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            proc.wait()
        finally:
            os.close(pidfd)

    def _await_greetings(self, deadline: float) -> str | None:
        """None once IMAP and POP3 greet; else what went wrong."""
        while True:
            imap, pop3 = greeting(self.imap_port), greeting(self.pop3_port)
            if imap.startswith(b"* OK") and pop3.startswith(b"+OK"):
                return None
            for name, fd in self._pidfds.items():
                if _wait_exit(fd, 0):
                    log = (self.base_dir / f"{name}.log").read_text(errors="replace")
                    return f"{name} exited: {log.strip().splitlines()[-1:] or ''}"
            if time.monotonic() > deadline:
                return f"no greeting on IMAP {self.imap_port} / POP3 {self.pop3_port}"
            time.sleep(0.01)

    # -- internals: files ----------------------------------------------------------------------

    def _known(self, user: MailUser | str) -> MailUser:
        name = (user.username if isinstance(user, MailUser) else user).lower()
        try:
            return self._users[name]
        except KeyError:
            raise ValueError(f"unknown user {name!r}: create it with add_user()") from None

    def _prepare(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        accounts = [(self.uid, [self.gid]), (self._courier.pw_uid, [self._courier.pw_gid])]
        root = private_root(self.base_dir, "mailgate-courier-", accounts)
        mail = root / "mail"
        mail.mkdir(mode=0o755, exist_ok=True)
        os.chown(mail, self.uid, self.gid)
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", LOOPBACK)
        ca.cert_pem.write_to_path(str(self.ca_file))
        pem = root / "courier.pem"  # key + chain in one file, read by couriertls as courier
        pem.touch(mode=0o600)
        pem.write_bytes(
            cert.private_key_pem.bytes() + b"".join(blob.bytes() for blob in cert.cert_chain_pems)
        )
        os.chown(pem, self._courier.pw_uid, self._courier.pw_gid)
        self._root = root

    def _pick_ports(self) -> None:
        ports: set[int] = set()
        while len(ports) < 4:
            ports.add(free_port())
        self.imap_port, self.imaps_port, self.pop3_port, self.pop3s_port = sorted(ports)

    def _mkdir(self, path: Path) -> None:
        """mkdir -p down from mail/, owned by the mail user."""
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
        if not marker.exists():
            marker.touch(mode=0o600)
            os.chown(marker, self.uid, self.gid)
