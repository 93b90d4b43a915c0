"""Mailgate POP3 benchmark: first-sync throughput and list latency from the store.

Run by hand from the repository root (it is not part of the test suite):

    .venv/bin/python bench/pop3_bench.py [--messages 10000] [--rounds 100] [--warmup 5]

One run:

1. starts a private Dovecot (tests/harness) and seeds INBOX with ``--messages`` 1-2 KB
   messages from the corpus of ``imap_bench.py`` (no big message);
2. downloads the whole maildrop with plain poplib (login, UIDL, RETR each, QUIT; no DELE);
3. starts the gateway with ``MAILGATE_POP3_SYNC_INTERVAL=3600`` and times
   ``POST /v1/accounts`` for the POP3 account (which verifies the login and runs the first
   full sync before answering 201); checks that the store's INBOX holds every message;
4. downloads the maildrop with poplib once more; the gateway's throughput is compared with
   the mean of both raw runs (target >= 0.8x);
5. adds the same mailbox over IMAP and times, interleaved round by round, a 50-message page
   of each account (target: POP3 p50 < IMAP p50), a POP3 page filtered by ``text=`` and the
   POP3 page 2 reached through ``next_cursor``;
6. prints everything once more as one JSON line.

Exits non-zero when the gateway answers an error (the body is printed) or a check fails.
Dovecot and the gateway are stopped on every exit path.
"""

from __future__ import annotations

import argparse
import json
import poplib
import socket
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
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
    ratio,
    run_bench,
    verdict,
)
from imap_bench import PAGE, build_corpus, run_interleaved

from tests.harness.dovecot import DovecotServer, MailUser
from tests.helpers import account_body

TARGET_SYNC_RATIO = 0.8
SYNC_INTERVAL = "3600"  # seconds: no list request resyncs during the run
# The corpus bodies draw from a 47-word vocabulary, so every body word is in ~90% of
# messages. "reminder" is the subject prefix of about 1 message in 8; `text=` searches
# subject, addresses and bodies, so it selects those.
TEXT_TERM = "reminder"
MB = 1e6


# -- raw POP3 --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Download:
    seconds: float
    messages: int
    octets: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def mb_rate(self) -> float:
        return self.octets / MB / self.seconds

    def figures(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "msgs_per_s": round(self.rate, 1),
            "mb_per_s": round(self.mb_rate, 2),
        }


def raw_download(server: DovecotServer, user: MailUser, expected: int) -> Download:
    """Connect, USER/PASS, UIDL, RETR every message, QUIT; all of it timed."""
    started = time.perf_counter()
    pop = poplib.POP3("127.0.0.1", server.pop3_port, timeout=120)
    try:
        pop.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pop.user(user.username)
        pop.pass_(user.password)
        _, uidls, _ = pop.uidl()
        if len(uidls) != expected:
            raise BenchError(f"UIDL lists {len(uidls)} messages, not {expected}")
        octets = 0
        for num in range(1, len(uidls) + 1):
            octets += pop.retr(num)[2]
        pop.quit()
    finally:
        pop.close()
    return Download(time.perf_counter() - started, len(uidls), octets)


# -- gateway ---------------------------------------------------------------------------------


def add_account(
    http: httpx.Client, server: DovecotServer, user: MailUser, protocol: str
) -> tuple[str, float]:
    """The new account's id and the seconds POST /v1/accounts took."""
    body = account_body(
        protocol, server.pop3_port if protocol == "pop3" else server.imap_port, user
    )
    started = time.perf_counter()
    response = http.post("/v1/accounts", json=body, timeout=1800)
    seconds = time.perf_counter() - started
    return expect(response, 201)["id"], seconds


def inbox_total(http: httpx.Client, account: str) -> int:
    folders = expect(http.get(f"/v1/accounts/{account}/folders"), 200)["items"]
    inbox = next((f for f in folders if f["role"] == "inbox"), None)
    if inbox is None:
        raise BenchError(f"no inbox in {json.dumps(folders)}")
    return int(inbox["total"])


def list_page(http: httpx.Client, account: str, **params: str | int) -> dict[str, Any]:
    page: dict[str, Any] = expect(
        http.get(f"/v1/accounts/{account}/messages", params={"limit": PAGE, **params}), 200
    )
    return page


def full_page(http: httpx.Client, account: str, **params: str | int) -> dict[str, Any]:
    page = list_page(http, account, **params)
    if len(page["items"]) != PAGE:
        raise BenchError(f"a page of {account} ({params}) has {len(page['items'])} items")
    return page


def count_matches(http: httpx.Client, account: str, term: str) -> int:
    """How many POP3 messages `text=term` selects (all pages, 200 at a time)."""
    params: dict[str, str | int] = {"text": term, "limit": 200}
    total = 0
    while True:
        page = expect(http.get(f"/v1/accounts/{account}/messages", params=params), 200)
        total += len(page["items"])
        if not page["next_cursor"]:
            return total
        params["cursor"] = page["next_cursor"]


# -- report ----------------------------------------------------------------------------------


def sync_report(
    before: Download, gateway: Download, after: Download, figures: dict[str, Any]
) -> None:
    raw_mean = statistics.fmean([before.rate, after.rate])
    raw_mb_mean = statistics.fmean([before.mb_rate, after.mb_rate])
    at = ratio(gateway.rate, raw_mean)
    ok = at >= TARGET_SYNC_RATIO
    print(
        f"\nPOP3 download, {gateway.messages} messages, {gateway.octets / MB:.1f} MB"
        f"\n{'run':<40}{'seconds':>9}{'msg/s':>10}{'MB/s':>8}"
    )
    rows = (("raw poplib, before", before), ("gateway first sync (POST /v1/accounts)", gateway),
            ("raw poplib, after", after))  # fmt: skip
    for label, run in rows:
        print(f"{label:<40}{run.seconds:>9.2f}{run.rate:>10.0f}{run.mb_rate:>8.2f}")
    print(f"{'raw poplib, mean of both':<40}{'':>9}{raw_mean:>10.0f}{raw_mb_mean:>8.2f}")
    print(f"gateway/raw throughput {at:.2f}x   target >= {TARGET_SYNC_RATIO}x: {verdict(ok)}")
    figures["raw_before"] = before.figures()
    figures["gateway_sync"] = gateway.figures()
    figures["raw_after"] = after.figures()
    figures["raw_mean_msgs_per_s"] = round(raw_mean, 1)
    figures["sync_ratio"] = round(at, 3)
    figures["sync_ratio_ok"] = ok


PAGE_TARGET_MS = 3.0  # a page of 50 from the store over HTTP, p50 (issue 15)


def latency_report(samples: dict[str, list[float]], figures: dict[str, Any]) -> None:
    print(f"\n{'list (limit 50)':<32}{'p50 ms':>10}{'p99 ms':>10}")
    for name, values in samples.items():
        print(f"{name:<32}{p50(values):>10.2f}{p99(values):>10.2f}")
    pop3, imap = p50(samples["pop3 page"]), p50(samples["imap page"])
    ok = pop3 < imap
    print(
        f"POP3 list faster than IMAP list: {verdict(ok)}"
        f" (p50 {pop3:.2f} vs {imap:.2f} ms, {ratio(pop3, imap):.2f}x)"
    )
    figures["latency_ms"] = {
        name: {"p50": round(p50(v), 3), "p99": round(p99(v), 3)} for name, v in samples.items()
    }
    figures["pop3_faster_ok"] = ok
    fast = pop3 <= PAGE_TARGET_MS
    print(f"POP3 page p50 {pop3:.2f} ms   target <= {PAGE_TARGET_MS:g} ms: {verdict(fast)}")
    figures["pop3_page_target_ok"] = fast


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=10_000, help="INBOX size")
    parser.add_argument("--rounds", type=int, default=100, help="timed rounds per list")
    parser.add_argument("--warmup", type=int, default=5, help="untimed rounds first")
    parser.add_argument("--seed", type=int, default=1, help="corpus random seed")
    args = parser.parse_args(argv)
    if args.messages < 2 * PAGE + 1 or args.rounds < 2 or args.warmup < 0:
        parser.error(f"need --messages > {2 * PAGE}, --rounds >= 2, --warmup >= 0")
    return args


def bench(args: argparse.Namespace, workdir: Path, figures: dict[str, Any]) -> list[str]:
    """Everything between start and stop; fills *figures*, returns failed checks."""
    server = DovecotServer(workdir / "dovecot")
    gateway = GatewayProcess(workdir / "gateway")
    gateway.env["MAILGATE_POP3_SYNC_INTERVAL"] = SYNC_INTERVAL
    (workdir / "gateway").mkdir()
    try:
        server.start()
        user = server.add_user()
        started = time.perf_counter()
        messages, dates = build_corpus(args.messages, args.seed)
        generated = time.perf_counter()
        server.deliver(user, messages, folder="INBOX", flags="S", internal_dates=dates)
        figures["generate_s"] = round(generated - started, 3)
        figures["seed_s"] = round(time.perf_counter() - generated, 3)
        print(
            f"{args.messages} messages generated in {figures['generate_s']} s,"
            f" delivered (seeded) in {figures['seed_s']} s"
        )
        before = raw_download(server, user, args.messages)
        gateway.start()
        key = gateway.create_key()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=gateway.url, headers=headers, timeout=120) as http:
            pop3, seconds = add_account(http, server, user, "pop3")
            stored = inbox_total(http, pop3)
            if stored != args.messages:
                raise BenchError(f"the POP3 INBOX holds {stored} messages, not {args.messages}")
            synced = Download(seconds, args.messages, before.octets)
            after = raw_download(server, user, args.messages)
            sync_report(before, synced, after, figures)
            imap, _ = add_account(http, server, user, "imap")
            return run_lists(args, http, pop3, imap, figures)
    except BenchError:
        print(server.log_tail(), file=sys.stderr)
        print(gateway.log(), file=sys.stderr)
        raise
    finally:
        gateway.stop()
        server.stop()


def run_lists(
    args: argparse.Namespace, http: httpx.Client, pop3: str, imap: str, figures: dict[str, Any]
) -> list[str]:
    failures: list[str] = []
    first = full_page(http, pop3)
    imap_first = full_page(http, imap)
    subjects = [item["subject"] for item in first["items"]]
    if subjects != [item["subject"] for item in imap_first["items"]]:
        failures.append("the POP3 and IMAP first pages list different subjects")
    cursor = first["next_cursor"]
    if not cursor:
        raise BenchError("the POP3 first page has no next_cursor")
    second = full_page(http, pop3, cursor=cursor)
    if {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}:
        failures.append("POP3 page 2 repeats messages of page 1")
    matches = count_matches(http, pop3, TEXT_TERM)
    share = matches / args.messages
    print(f"\ntext={TEXT_TERM} selects {matches} of {args.messages} messages ({share:.1%})")
    figures["text_term"] = TEXT_TERM
    figures["text_matches"] = matches
    if matches < PAGE:
        failures.append(f"text={TEXT_TERM} selects only {matches} messages")
    text_label = f"pop3 page, text={TEXT_TERM}"
    operations: dict[str, Callable[[], object]] = {
        "pop3 page": lambda: full_page(http, pop3),
        "imap page": lambda: full_page(http, imap),
        text_label: lambda: list_page(http, pop3, text=TEXT_TERM),
        "pop3 page 2 (next_cursor)": lambda: full_page(http, pop3, cursor=cursor),
    }
    print(f"timing {args.rounds} rounds (+{args.warmup} warm-up), interleaved")
    samples = run_interleaved(operations, args.rounds, args.warmup)
    latency_report(samples, figures)
    return failures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench(
        "mailgate-pop3-bench-",
        {"messages": args.messages, "rounds": args.rounds},
        lambda workdir, figures: bench(args, workdir, figures),
    )


if __name__ == "__main__":
    sys.exit(main())
