"""Mailgate under concurrent load: N clients listing, reading and flagging mail at once.

Run by hand from the repository root (it is not part of the test suite):

    .venv/bin/python bench/load_bench.py [--clients 20,100] [--duration 60]
                                         [--store sqlite,postgres] [--messages 2000]

One run starts a private Dovecot (tests/harness) with two users whose INBOX holds the
``--messages`` corpus of ``imap_bench.py``. Then, for each store (SQLite in the gateway's data
dir; PostgreSQL: a fresh schema in the tests' database, dropped at the end):

1. starts the gateway, creates an API key, adds one user as an IMAP account and the other as
   a POP3 account (the POP3 account's first sync stores the whole maildrop);
2. for each protocol and each N of ``--clients``: restarts the gateway (so the peaks belong
   to this load alone), then N simulated users, each with its own keep-alive httpx client,
   send requests back to back for ``--duration`` seconds: a 50-message page of the inbox
   (half the time with the ``next_cursor`` of the page before), one message of the last page,
   or ``seen`` set or cleared on one (PATCH); meanwhile the gateway's RSS, threads and TCP
   connections to Dovecot's IMAP port are sampled every 50 ms;
3. prints req/s, p50/p99, the answers that were not 2xx by status, and the peaks, and at the
   end everything as one JSON line.

Exits non-zero when any request answers 500 (the gateway's log is printed), or the gateway
holds more IMAP connections than its pool bound plus the watcher's one. Any other error
answer is a missed target, marked ``MISS``.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import random
import sys
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from common import (  # importing it also puts the repository root on sys.path
    BenchError,
    GatewayProcess,
    PeakSampler,
    expect,
    p50,
    p99,
    postgres_schema,
    proc_status,
    run_bench,
    tcp_connections,
    verdict,
)
from imap_bench import PAGE, build_corpus

from mailgate.adapters.imap import ImapAdapter
from tests.harness.dovecot import DovecotServer, MailUser
from tests.helpers import account_body

# The pool bound the gateway runs with: the registry builds every IMAP adapter with the
# default pool size. Each IMAP account also holds one watcher connection.
POOL_SIZE: int = inspect.signature(ImapAdapter).parameters["pool_size"].default
IMAP_BOUND = POOL_SIZE + 1
LIST_SHARE, GET_SHARE = 0.5, 0.3  # the rest (0.2) are flag changes
CURSOR_SHARE = 0.5  # lists that go on from the page before
SAMPLE_EVERY = 0.05
STORES = ("sqlite", "postgres")
PROTOCOLS = ("imap", "pop3")


# -- the simulated users ---------------------------------------------------------------------


@dataclass
class Tally:
    """Every answer of one load run: latency by operation, count by status."""

    latency_ms: dict[str, list[float]] = field(
        default_factory=lambda: {"list": [], "get": [], "flag": []}
    )
    statuses: Counter[str] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)  # the first few 500s, as answered

    def all_ms(self) -> list[float]:
        return [ms for values in self.latency_ms.values() for ms in values]


async def simulated_user(
    http: httpx.AsyncClient, account: str, deadline: float, rng: random.Random, tally: Tally
) -> None:
    """Requests back to back until ``deadline``; starts with a list (gets and flag changes
    pick from the last page listed)."""
    messages = f"/v1/accounts/{account}/messages"
    ids: list[str] = []
    cursor: str | None = None
    while time.monotonic() < deadline:
        roll = rng.random()
        if not ids or roll < LIST_SHARE:
            operation = "list"
            params: dict[str, str | int] = {"limit": PAGE}
            if cursor and rng.random() < CURSOR_SHARE:
                params["cursor"] = cursor
            request = http.build_request("GET", messages, params=params)
        elif roll < LIST_SHARE + GET_SHARE:
            operation = "get"
            request = http.build_request("GET", f"{messages}/{rng.choice(ids)}")
        else:
            operation = "flag"
            body = {"seen": rng.random() < 0.5}
            request = http.build_request("PATCH", f"{messages}/{rng.choice(ids)}", json=body)
        started = time.perf_counter()
        try:
            response = await http.send(request)
        except httpx.HTTPError as exc:  # no answer: counted by what went wrong
            tally.statuses[type(exc).__name__] += 1
            continue
        tally.latency_ms[operation].append((time.perf_counter() - started) * 1000)
        tally.statuses[str(response.status_code)] += 1
        if response.status_code == 500 and len(tally.failed) < 5:
            path = request.url.raw_path.decode()
            tally.failed.append(f"{request.method} {path}: {response.text}")
        if operation == "list" and response.status_code == 200:
            page = response.json()
            ids = [item["id"] for item in page["items"]] or ids
            cursor = page["next_cursor"]


async def load(url: str, key: str, account: str, clients: int, seconds: float, seed: int) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=1)  # one keep-alive connection per user
    users = [
        httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=limits)
        for _ in range(clients)
    ]
    try:
        await asyncio.gather(
            *(
                simulated_user(http, account, deadline, random.Random(seed * 1000 + n), tally)
                for n, http in enumerate(users)
            )
        )
    finally:
        await asyncio.gather(*(http.aclose() for http in users))
    return tally


# -- one configuration -----------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    server: DovecotServer
    gateway: GatewayProcess
    key: str
    accounts: dict[str, str]  # protocol -> account id


def run_load(setup: Setup, store: str, protocol: str, clients: int, args: Any) -> dict[str, Any]:
    gateway, imap_port = setup.gateway, setup.server.imap_port
    gateway.stop()
    gateway.start()
    started_status = proc_status(gateway.pid)

    def probe() -> dict[str, int]:
        status = proc_status(gateway.pid)
        return {**status, "imap": tcp_connections(gateway.pid, imap_port)}

    sampler = PeakSampler(probe, SAMPLE_EVERY)
    sampler.start()
    started = time.perf_counter()
    try:
        account = setup.accounts[protocol]
        tally = asyncio.run(load(gateway.url, setup.key, account, clients, args.duration, 1))
    finally:
        seconds = time.perf_counter() - started
        peaks = sampler.finish()
    every = tally.all_ms()
    if not every:
        raise BenchError(f"no request answered ({dict(tally.statuses)})")
    errors = {code: n for code, n in sorted(tally.statuses.items()) if not code.startswith("2")}
    figures: dict[str, Any] = {
        "store": store,
        "protocol": protocol,
        "clients": clients,
        "seconds": round(seconds, 2),
        "requests": sum(tally.statuses.values()),
        "req_per_s": round(len(every) / seconds, 1),
        "p50_ms": round(p50(every), 1),
        "p99_ms": round(p99(every), 1),
        "by_operation": {
            name: {"n": len(v), "p50_ms": round(p50(v), 1), "p99_ms": round(p99(v), 1)}
            for name, v in tally.latency_ms.items()
            if v
        },
        "errors": errors,
        "status_500": tally.statuses.get("500", 0),
        "rss_start_mb": round(started_status["VmRSS"] / 1024, 1),
        "rss_peak_mb": round(peaks["VmRSS"] / 1024, 1),
        "threads_start": started_status["Threads"],
        "threads_peak": peaks["Threads"],
        "imap_connections_peak": peaks["imap"],
        "imap_bound": IMAP_BOUND,
    }
    print_row(figures)
    if tally.failed:
        print("\n".join(["first 500 answers:", *tally.failed]), file=sys.stderr)
        print(gateway.log(80), file=sys.stderr)
    return figures


HEADER = (
    f"{'store':<9}{'proto':<6}{'N':>4}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'500s':>6}"
    f"{'RSS MB':>8}{'thr':>5}{'IMAP':>6}  errors"
)


def print_row(f: dict[str, Any]) -> None:
    ops = ", ".join(
        f"{name} {o['n']} {o['p50_ms']:.0f}/{o['p99_ms']:.0f}"
        for name, o in f["by_operation"].items()
    )
    errors = ", ".join(f"{code}: {n}" for code, n in f["errors"].items()) or "none"
    print(
        f"{f['store']:<9}{f['protocol']:<6}{f['clients']:>4}{f['req_per_s']:>8.1f}"
        f"{f['p50_ms']:>9.1f}{f['p99_ms']:>9.1f}{f['status_500']:>6}{f['rss_peak_mb']:>8.1f}"
        f"{f['threads_peak']:>5}{f['imap_connections_peak']:>3}/{f['imap_bound']}"
        f"  {errors} ({verdict(not f['errors'])})\n"
        f"{'':<19}requests {f['requests']} in {f['seconds']:.1f} s; ops n p50/p99 ms: {ops};"
        f" RSS at start {f['rss_start_mb']:.1f} MB, threads {f['threads_start']}",
        flush=True,
    )


# -- main ------------------------------------------------------------------------------------


def add_accounts(gateway: GatewayProcess, key: str, server: DovecotServer,
                 users: dict[str, MailUser]) -> dict[str, str]:  # fmt: skip
    headers = {"Authorization": f"Bearer {key}"}
    accounts = {}
    with httpx.Client(base_url=gateway.url, headers=headers, timeout=600) as http:
        for protocol, user in users.items():
            port = server.pop3_port if protocol == "pop3" else server.imap_port
            body = account_body(protocol, port, user)
            accounts[protocol] = expect(http.post("/v1/accounts", json=body), 201)["id"]
    return accounts


def run_store(
    args: Any, store: str, server: DovecotServer, users: dict[str, MailUser], workdir: Path
) -> list[dict[str, Any]]:
    (workdir / store).mkdir()
    gateway = GatewayProcess(workdir / store)
    with postgres_schema() if store == "postgres" else nullcontext(None) as database_url:
        if database_url is not None:
            gateway.env["MAILGATE_DATABASE_URL"] = database_url
        try:
            gateway.start()
            key = gateway.create_key()
            setup = Setup(server, gateway, key, add_accounts(gateway, key, server, users))
            return [
                run_load(setup, store, protocol, clients, args)
                for protocol in args.protocol
                for clients in args.clients
            ]
        except BenchError:
            print(gateway.log(), file=sys.stderr)
            raise
        finally:
            gateway.stop()


def bench(args: argparse.Namespace, workdir: Path, figures: dict[str, Any]) -> list[str]:
    server = DovecotServer(workdir / "dovecot")
    try:
        server.start()
        messages, dates = build_corpus(args.messages, args.seed)
        users = {protocol: server.add_user() for protocol in args.protocol}
        for user in users.values():
            server.deliver(user, messages, folder="INBOX", flags="S", internal_dates=dates)
        print(
            f"{args.messages} messages in each INBOX; {','.join(map(str, args.clients))} clients,"
            f" {args.duration:g} s each; IMAP pool bound {POOL_SIZE} + 1 watcher\n\n{HEADER}",
            flush=True,
        )
        runs = [r for store in args.store for r in run_store(args, store, server, users, workdir)]
    except BenchError:
        print(server.log_tail(), file=sys.stderr)
        raise
    finally:
        server.stop()
    figures["runs"] = runs
    failures = []
    for run in runs:
        where = f"{run['store']} {run['protocol']} N={run['clients']}"
        if run["status_500"]:
            failures.append(f"{where}: {run['status_500']} requests answered 500")
        if run["imap_connections_peak"] > IMAP_BOUND:
            failures.append(
                f"{where}: {run['imap_connections_peak']} IMAP connections, bound {IMAP_BOUND}"
            )
    return failures


def csv(kind: type, choices: tuple[str, ...] | None = None) -> Any:
    def parse(text: str) -> list[Any]:
        values = [kind(part) for part in text.split(",") if part]
        if not values or (choices and not set(values) <= set(choices)):
            raise argparse.ArgumentTypeError(f"a comma-separated list of {choices or 'numbers'}")
        return values

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=csv(int), default=[20, 100], help="e.g. 20,100")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per load run")
    parser.add_argument("--store", type=csv(str, STORES), default=list(STORES))
    parser.add_argument("--protocol", type=csv(str, PROTOCOLS), default=list(PROTOCOLS))
    parser.add_argument("--messages", type=int, default=2000, help="INBOX size")
    parser.add_argument("--seed", type=int, default=1, help="corpus random seed")
    args = parser.parse_args(argv)
    if args.messages < PAGE or args.duration <= 0 or min(args.clients) < 1:
        parser.error(f"need --messages >= {PAGE}, --duration > 0, clients >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench(
        "mailgate-load-bench-",
        {"messages": args.messages, "duration_s": args.duration, "imap_bound": IMAP_BOUND},
        lambda workdir, figures: bench(args, workdir, figures),
    )


if __name__ == "__main__":
    sys.exit(main())
