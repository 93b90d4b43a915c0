"""Mailgate watching many IMAP accounts in one process, against a private, real Dovecot.

Run by hand from the repository root (it is not part of the test suite), as root or with
``fs.inotify.max_user_instances`` already above ``--accounts`` + 128:

    .venv/bin/python bench/watch_scale_bench.py [--accounts 1000] [--probes 20] [--burst 200]

One run:

1. raises ``fs.inotify.max_user_instances`` (Dovecot's IDLE takes one inotify instance per
   connection, and all test mail runs as one uid: at the default 128 Dovecot stops pushing
   and logs "Inotify instance limit"), starts a private Dovecot whose process limits allow
   the connections, adds ``--accounts`` users, and starts the gateway
   (``python -m mailgate.api serve``, SQLite, ``MAILGATE_IMAP_POOL_IDLE=10`` so the pooled
   connection each account's check left is reaped within the run);
2. notes the gateway's RSS and threads, then adds every user as an account (8 at a time)
   and one webhook for ``message.created`` of all of them;
3. waits until ``mailgate_watched_accounts`` (``GET /metrics``) is the number of accounts,
   then until the pooled connections are reaped, and then measures while all are idle:
   RSS, threads, the gateway's TCP connections to Dovecot's IMAP port, and the CPU it uses
   over 10 s;
4. appends (plain imapclient APPEND to INBOX) one message to each of ``--probes`` random
   accounts, one at a time, each timed from APPEND's answer to its webhook;
5. then ``--burst`` messages to as many distinct random accounts, appended from 4 threads
   at once (not waiting for webhooks), each timed the same way, and the time from the first
   APPEND to the last webhook;
6. prints the figures, PASS/FAIL against the targets (memory per idle account < 100 KB;
   probe p99 < 1 s), and everything as one JSON line.

Exits non-zero when a webhook does not arrive within 60 s, an account is not watched within
the setup's time, a webhook is duplicated, or the gateway answers an error.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from common import (  # importing it also puts the repository root on sys.path
    BenchError,
    GatewayProcess,
    expect,
    p50,
    p99,
    proc_status,
    run_bench,
    tcp_connections,
    verdict,
)
from webhook_bench import Receiver, imap_connect, make_message

from tests.harness.dovecot import DovecotServer, MailUser
from tests.helpers import account_body

INOTIFY = Path("/proc/sys/fs/inotify/max_user_instances")
TARGET_KB_PER_ACCOUNT = 100.0
TARGET_P99_MS = 1000.0
WEBHOOK_TIMEOUT = 60.0
SETTLE = 5.0


def dovecot_limits(accounts: int) -> str:
    """Room for every account's watcher, its pooled connection and the bench's own. The imap
    service sets its own process_limit of 1,024, which the default does not raise: on a fast
    machine the accounts are added before their pooled connections are reaped, and Dovecot
    dropped logins ("process_limit (1024) reached")."""
    limit = 2 * accounts + 100
    return f"""
default_process_limit = {limit}
default_client_limit = {2 * limit}
default_vsz_limit = 0
service imap-login {{
  process_min_avail = 4
}}
service imap {{
  process_limit = {limit}
}}
"""


def raise_inotify(accounts: int) -> int:
    wanted = accounts + 256
    current = int(INOTIFY.read_text())
    if current < wanted:
        try:
            INOTIFY.write_text(str(wanted))
        except OSError as exc:
            raise BenchError(
                f"fs.inotify.max_user_instances is {current}; raise it above {wanted} "
                f"(sysctl -w fs.inotify.max_user_instances={wanted}): {exc}"
            ) from exc
    return int(INOTIFY.read_text())


def watched(http: httpx.Client) -> int:
    answer = http.get("/metrics")
    if answer.status_code != 200:
        raise BenchError(f"GET /metrics answered {answer.status_code}: {answer.text}")
    for line in answer.text.splitlines():
        if line.startswith("mailgate_watched_accounts "):
            return int(float(line.split()[1]))
    return 0


def wait_until(what: str, check: Any, timeout: float, every: float = 1.0) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise BenchError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(every)
    return time.monotonic() - started


def add_accounts(
    http: httpx.Client, server: DovecotServer, users: list[MailUser]
) -> dict[str, str]:
    """username -> account id, added 8 at a time."""

    def add(user: MailUser) -> tuple[str, str]:
        body = account_body("imap", server.imap_port, user)
        return user.username, expect(http.post("/v1/accounts", json=body), 201)["id"]

    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(add, users))


def append(server: DovecotServer, user: MailUser, subject: str) -> float:
    """APPEND a message with ``subject`` to the user's INBOX; when APPEND answered."""
    with imap_connect(server, user) as client:
        client.append("INBOX", make_message(subject))
        return time.monotonic()


def latency_ms(receiver: Receiver, subject: str, appended: float) -> float:
    """ms from ``appended`` to the webhook of ``subject``."""
    delivery = receiver.wait_for(subject, appended + WEBHOOK_TIMEOUT)
    if delivery is None:
        raise BenchError(f"no webhook for {subject!r} within {WEBHOOK_TIMEOUT:.0f} s")
    return (delivery.arrived - appended) * 1000


def settle_pool(gateway: GatewayProcess, server: DovecotServer, accounts: int) -> None:
    """Wait until the pooled connections the accounts' checks left are reaped (within
    MAILGATE_IMAP_POOL_IDLE plus the reaper's 30 s round): one connection per account."""
    wait_until(
        "the pooled connections reaped",
        lambda: tcp_connections(gateway.pid, server.imap_port) <= accounts,
        120,
    )
    time.sleep(SETTLE)


def stats(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(p50(values), 1),
        "p99": round(p99(values), 1),
        "max": round(max(values), 1),
    }


def bench(args: argparse.Namespace, workdir: Path, figures: dict[str, Any]) -> list[str]:
    figures["inotify_max_user_instances"] = raise_inotify(args.accounts)
    server = DovecotServer(workdir / "dovecot", extra_config=dovecot_limits(args.accounts))
    gateway = GatewayProcess(workdir / "gateway")
    gateway.env["MAILGATE_ALLOW_PRIVATE_WEBHOOKS"] = "true"
    gateway.env["MAILGATE_IMAP_POOL_IDLE"] = "10"
    (workdir / "gateway").mkdir()
    receiver = Receiver()
    rng = random.Random(args.seed)
    try:
        server.start()
        users = [server.add_user() for _ in range(args.accounts)]
        gateway.start()
        key = gateway.create_key()
        receiver.start()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=gateway.url, headers=headers, timeout=120) as http:
            hook = {"url": receiver.url, "events": ["message.created"], "description": "bench"}
            receiver.secret = expect(http.post("/v1/webhooks", json=hook), 201)["secret"]
            # a few accounts first, so the code paths every account takes are warm (imported,
            # cached) before the baseline: what comes after is the cost per account
            warm = max(args.accounts // 20, 1)
            add_accounts(http, server, users[:warm])
            wait_until("the first accounts watched", lambda: watched(http) >= warm, 120)
            settle_pool(gateway, server, warm)
            before = proc_status(gateway.pid)
            started = time.monotonic()
            add_accounts(http, server, users[warm:])
            figures["add_accounts_s"] = round(time.monotonic() - started, 1)
            waited = wait_until(
                "every account watched", lambda: watched(http) >= args.accounts, 600
            )
            figures["all_watched_after_s"] = round(figures["add_accounts_s"] + waited, 1)
            print(
                f"{args.accounts} accounts added and watched in {figures['all_watched_after_s']} s"
            )
            settle_pool(gateway, server, args.accounts)
            idle = proc_status(gateway.pid)
            cpu = gateway.cpu_seconds()
            time.sleep(10)
            figures["idle_cpu_percent"] = round((gateway.cpu_seconds() - cpu) * 10, 1)
            figures["rss_before_mb"] = round(before["VmRSS"] / 1024, 1)
            figures["rss_idle_mb"] = round(idle["VmRSS"] / 1024, 1)
            figures["kb_per_account"] = round((idle["VmRSS"] - before["VmRSS"]) / args.accounts, 1)
            figures["threads_before"] = before["Threads"]
            figures["threads_idle"] = idle["Threads"]
            figures["imap_connections_idle"] = tcp_connections(gateway.pid, server.imap_port)
            figures["watched"] = watched(http)
            print(
                f"idle: RSS {figures['rss_before_mb']} -> {figures['rss_idle_mb']} MB "
                f"({figures['kb_per_account']} KB per account), threads "
                f"{figures['threads_before']} -> {figures['threads_idle']}, IMAP connections "
                f"{figures['imap_connections_idle']}, CPU {figures['idle_cpu_percent']} % "
                "of a core"
            )
            probes = []
            for n, user in enumerate(rng.sample(users, args.probes)):
                subject = f"probe {n} {user.username}"
                probes.append(latency_ms(receiver, subject, append(server, user, subject)))
            figures["probe_ms"] = stats(probes)
            burst_users = rng.sample(users, min(args.burst, args.accounts))
            first = time.monotonic()
            with ThreadPoolExecutor(4) as pool:  # all appended, not waiting for webhooks
                appended = list(
                    pool.map(lambda u: append(server, u, f"burst {u.username}"), burst_users)
                )
            figures["burst_append_s"] = round(max(appended) - first, 1)
            burst = [
                latency_ms(receiver, f"burst {u.username}", at)
                for u, at in zip(burst_users, appended, strict=True)
            ]
            figures["burst_ms"] = stats(burst)
            last = max(d.arrived for d in receiver.deliveries)
            figures["burst_first_append_to_last_webhook_s"] = round(last - first, 1)
            time.sleep(SETTLE)  # late duplicates would arrive now
            after = proc_status(gateway.pid)
            figures["threads_after"] = after["Threads"]
            figures["rss_after_mb"] = round(after["VmRSS"] / 1024, 1)
        return checks(receiver, figures)
    except BenchError:
        print(server.log_tail(), file=sys.stderr)
        print(gateway.log(), file=sys.stderr)
        raise
    finally:
        receiver.stop()
        gateway.stop()
        server.stop()


def checks(receiver: Receiver, figures: dict[str, Any]) -> list[str]:
    failures = []
    subjects = [d.subject for d in receiver.deliveries]
    duplicates = len(subjects) - len(set(subjects))
    figures["duplicates"] = duplicates
    if duplicates:
        failures.append(f"{duplicates} webhooks delivered twice")
    bad = [d.error for d in receiver.deliveries if d.error]
    if bad:
        failures.append(f"{len(bad)} signatures did not verify: {bad[0]}")
    memory_ok = figures["kb_per_account"] < TARGET_KB_PER_ACCOUNT
    latency_ok = figures["probe_ms"]["p99"] < TARGET_P99_MS
    print(
        f"memory per idle account {figures['kb_per_account']} KB "
        f"(target < {TARGET_KB_PER_ACCOUNT:g}): {verdict(memory_ok)}\n"
        f"APPEND -> webhook, one account at a time: {figures['probe_ms']} ms "
        f"(p99 target < {TARGET_P99_MS:g}): {verdict(latency_ok)}\n"
        f"burst to distinct accounts: {figures['burst_ms']} ms, appended in "
        f"{figures['burst_append_s']} s, first APPEND to last webhook "
        f"{figures['burst_first_append_to_last_webhook_s']} s"
    )
    return failures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=1000, help="watched IMAP accounts")
    parser.add_argument("--probes", type=int, default=20, help="timed messages, one at a time")
    parser.add_argument("--burst", type=int, default=200, help="messages appended at once")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random accounts")
    args = parser.parse_args(argv)
    if args.accounts < 1 or args.probes < 2 or args.probes > args.accounts or args.burst < 0:
        parser.error("need --accounts >= 1 and 2 <= --probes <= --accounts, --burst >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench(
        "mailgate-watch-scale-bench-",
        {"accounts": args.accounts, "probes": args.probes, "burst": args.burst},
        lambda workdir, figures: bench(args, workdir, figures),
    )


if __name__ == "__main__":
    sys.exit(main())
