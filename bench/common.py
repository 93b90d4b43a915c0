"""Helpers shared by the benchmarks in bench/: the gateway as a subprocess, a fresh
PostgreSQL schema, HTTP answers, a process's RSS, threads and connections sampled,
percentiles and the cleanup of a run.

Importing this module puts the repository root on ``sys.path``, so a bench script can then
import the project (``tests.harness.dovecot`` and the like).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402


class BenchError(Exception):
    """The gateway answered an error, or a setup step failed."""


# -- the run ---------------------------------------------------------------------------------


def exit_on_sigterm() -> None:
    """SIGTERM becomes ``sys.exit(143)``, so every ``finally`` (the cleanup) still runs."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory for one run, removed with everything in it on every exit."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- the gateway process ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class GatewayProcess:
    """`python -m mailgate.api serve` on a free port with a private data dir; from this
    checkout, or from ``root`` with its own ``.venv`` (another checkout, to compare)."""

    def __init__(self, data_dir: Path, root: Path | None = None) -> None:
        self.root = root or ROOT
        self.python = sys.executable if root is None else str(root / ".venv" / "bin" / "python")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = data_dir / "gateway.log"
        self.env = {
            **os.environ,
            "MAILGATE_DATA_DIR": str(data_dir),
            "MAILGATE_LOG_LEVEL": "WARNING",
            # counted as always (its cost is part of the figures), never reached
            "MAILGATE_RATE_LIMIT_PER_MINUTE": "100000000",
        }
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self, timeout: float = 60.0) -> None:
        command = [self.python, "-m", "mailgate.api", "serve", "--port", str(self.port)]
        with self.log_file.open("ab") as log:  # a restart keeps the log of the run before
            self._process = subprocess.Popen(
                command,
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BenchError(f"gateway exited with {self._process.returncode}\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise BenchError(f"gateway not ready within {timeout} s\n{self.log()}")

    def create_key(self) -> str:
        done = subprocess.run(
            [self.python, "-m", "mailgate.api", "keys", "create", "--tenant", "bench"],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = done.stdout.split()
        if done.returncode != 0 or not lines:
            raise BenchError(f"keys create failed ({done.returncode}): {done.stderr}")
        return lines[-1]

    def cpu_seconds(self) -> float:
        """The process's CPU time so far: utime + stime from ``/proc/<pid>/stat``."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kb(self) -> int:
        return proc_status(self.pid)["VmRSS"]

    def log(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no gateway log)"
        return "--- gateway log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema in the tests' PostgreSQL database (``MAILGATE_TEST_POSTGRES_URL``),
    dropped with everything in it on exit: the ``MAILGATE_DATABASE_URL`` that points a
    gateway at it, so runs never see each other."""
    import sqlalchemy as sa

    with warnings.catch_warnings():  # conftest imports Starlette's TestClient, deprecated
        warnings.simplefilter("ignore")
        from tests.conftest import POSTGRES_URL

    schema = f"bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def expect(response: httpx.Response, status: int) -> Any:
    """The JSON body of *response*, or BenchError with the body when the status differs."""
    if response.status_code != status:
        request = response.request
        raise BenchError(
            f"{request.method} {request.url.raw_path.decode()} answered "
            f"{response.status_code} (expected {status}):\n{response.text}"
        )
    return response.json() if response.content else None


# -- a process, sampled -----------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """``VmRSS`` (kB) and ``Threads`` of a process, from ``/proc/<pid>/status``."""
    status: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "Threads"):
            status[key] = int(value.split()[0])
    return status


def tcp_connections(pid: int, remote_port: int) -> int:
    """Established TCP connections of a process to ``remote_port`` (any address): the socket
    inodes among its fds (``/proc/<pid>/fd``) matched with ``/proc/<pid>/net/tcp{,6}``."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed since the listing
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                remote, state, inode = fields[2], fields[3], fields[9]
                established = state == "01"
                if established and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                    count += inode in inodes
    return count


class PeakSampler(threading.Thread):
    """Calls ``probe`` every ``every`` seconds in a thread of its own and keeps the peak of
    each figure it returns (``finish`` stops it and answers the peaks)."""

    def __init__(self, probe: Callable[[], dict[str, int]], every: float) -> None:
        super().__init__(name="peak-sampler", daemon=True)
        self.probe, self.every = probe, every
        self.peaks = dict(probe())
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            with contextlib.suppress(OSError):  # the process went; the peaks so far stand
                for name, value in self.probe().items():
                    self.peaks[name] = max(self.peaks.get(name, value), value)

    def finish(self) -> dict[str, int]:
        self._stop_event.set()
        self.join()
        return self.peaks


# -- figures ---------------------------------------------------------------------------------


def p50(values: list[float]) -> float:
    return statistics.median(values)


def p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("inf")


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def run_bench(
    prefix: str,
    figures: dict[str, Any],
    work: Callable[[Path, dict[str, Any]], list[str]],
    summary: Callable[[dict[str, Any]], str] = lambda _figures: "",
) -> int:
    """Run one bench in a scratch dir (removed on every exit, SIGTERM included): print the
    wall time (and ``summary``), the failed checks and the figures as one JSON line; exit
    status 1 when the bench broke or a check failed."""
    exit_on_sigterm()
    started = time.perf_counter()
    try:
        with scratch_dir(prefix) as workdir:
            failures = work(workdir, figures)
    except BenchError as exc:
        print(f"\nbench failed: {exc}", file=sys.stderr)
        return 1
    figures["wall_s"] = round(time.perf_counter() - started, 2)
    figures["failures"] = failures
    print(f"\ntotal wall time {figures['wall_s']:.1f} s{summary(figures)}")
    for failure in failures:
        print(f"CHECK FAILED: {failure}", file=sys.stderr)
    print(json.dumps(figures, sort_keys=True))
    return 1 if failures else 0
