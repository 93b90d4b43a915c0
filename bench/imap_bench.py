"""Mailgate latency and streaming benchmark against a private, real Dovecot.

Run by hand from the repository root (it is not part of the test suite):

    .venv/bin/python bench/imap_bench.py [--messages 10000] [--rounds 200] [--warmup 5]

One run:

1. starts a private Dovecot (tests/harness) and seeds INBOX with ``--messages`` realistic
   1-2 KB messages (plain text; 1 in 10 multipart/alternative with HTML; 1 in 20 with a
   small PDF attachment) plus one message with a 50 MiB base64 attachment in folder "Big";
2. starts the gateway (``python -m mailgate.api serve``) on a free port with its own data dir,
   creates an API key and adds the mailbox over plain IMAP;
3. times, interleaved round by round, a 50-message page and one whole message, both
   straight over IMAP (imapclient, one persistent connection, the same FETCH items as the
   gateway) and through the gateway (one keep-alive httpx client); prints p50/p99 and the
   gateway/raw ratios (target: <= 1.3x at p50);
4. streams the 50 MiB attachment through the gateway, throttled, while another thread times
   list pages: prints the gateway's RSS growth (target < 30 MB) and list p50 during the
   stream vs idle (target <= 1.5x), and checks byte count and sha256;
5. prints everything once more as one JSON line.

Exits non-zero when the gateway answers an error (the body is printed) or a check fails.
Dovecot and the gateway are stopped on every exit path.
"""

from __future__ import annotations

import argparse
import base64
import email
import email.policy
import hashlib
import json
import random
import socket
import sys
import textwrap
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import imapclient
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

from mailgate.adapters.imap.summary import summary_items
from tests.harness.dovecot import DovecotServer, MailUser
from tests.helpers import account_body

PAGE = 50
PICK = 25  # the page's 25th item (the 25th-highest UID) is the "one message" of the bench
BIG_BYTES = 50 * 1024 * 1024
BIG_ATTACHMENT_ID = "2"  # part 2 of multipart/mixed (part 1 is the text)
READ_CHUNK = 64 * 1024
READ_PAUSE = 0.005
RSS_EVERY = 0.02
TARGET_RATIO_P50 = 1.3
TARGET_RSS_MB = 30.0
TARGET_STREAM_RATIO = 1.5
# The gateway's own list FETCH items (Dovecot offers PREVIEW), so both sides fetch the same.
FETCH_ITEMS = summary_items(server_has_preview=True)

# fmt: off
FIRST = ["Anna", "Ben", "Chloé", "David", "Eva", "Farid", "Grace", "Hiro", "Ines", "José",
         "Kofi", "Lena", "Marta", "Noah", "Olga", "Priya", "Quinn", "Rafael", "Sara", "Zoë"]
LAST = ["Adams", "Berger", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Hansen",
        "Ito", "Jensen", "Kowalski", "Lopez", "Müller", "Nakamura", "Okafor", "Petrov"]
WORDS = ["the", "project", "meeting", "budget", "review", "draft", "report", "customer",
         "invoice", "release", "schedule", "team", "update", "please", "find", "attached",
         "below", "regarding", "next", "week", "friday", "deadline", "question", "thanks",
         "quarter", "numbers", "design", "document", "feedback", "server", "migration", "plan",
         "agenda", "notes", "follow", "up", "contract", "proposal", "travel", "booking",
         "confirmation", "order", "shipping", "delay", "support", "ticket", "issue"]
# fmt: on
DOMAINS = ["example.com", "example.org", "acme.test", "contoso.test", "mail.example.net"]
TOPICS = ["Re: ", "Fwd: ", "", "", "", "[team] ", "Invoice ", "Reminder: "]


# -- the corpus ------------------------------------------------------------------------------


def _person(rng: random.Random) -> str:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    ascii_name = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore")
    local = ascii_name.decode().lower()
    name = f"{first} {last}"
    display = f'"{name}"' if name.isascii() else Header(name, "utf-8").encode()
    return f"{display} <{local}@{rng.choice(DOMAINS)}>"


def _text(rng: random.Random, words: int) -> str:
    sentence = " ".join(rng.choice(WORDS) for _ in range(words))
    return textwrap.fill(sentence.capitalize() + ".", 72)


def _headers(rng: random.Random, i: int, when: float, content_type: str) -> str:
    subject = rng.choice(TOPICS) + " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8)))
    if i % 15 == 4:
        subject = Header(subject + " — naïve café", "utf-8").encode()
    date = format_datetime(datetime.fromtimestamp(when, UTC))
    lines = [
        f"Return-Path: <bounce-{i}@{rng.choice(DOMAINS)}>",
        f"Received: from mx{i % 7}.example.net (mx{i % 7}.example.net [192.0.2.{i % 250 + 1}])"
        f"\n\tby mail.bench.test with ESMTPS id {rng.getrandbits(48):012x}; {date}",
        f"From: {_person(rng)}",
        f"To: {', '.join(_person(rng) for _ in range(rng.randint(1, 3)))}",
    ]
    if rng.random() < 0.3:
        lines.append(f"Cc: {_person(rng)}")
    lines += [
        f"Subject: {subject}",
        f"Date: {date}",
        f"Message-ID: <{i}.{rng.getrandbits(64):016x}@bench.test>",
        "MIME-Version: 1.0",
        f"Content-Type: {content_type}",
    ]
    return "\n".join(lines) + "\n"


def _plain_part(body: str) -> str:
    return (
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" + body + "\n"
    )


def make_message(rng: random.Random, i: int, when: float, kind: str) -> bytes:
    """One message: kind "plain", "alternative" (text + HTML) or "attachment" (text + PDF)."""
    body = "\n\n".join(_text(rng, rng.randint(25, 60)) for _ in range(rng.randint(2, 3)))
    body += "\n\n-- \nSent from the Mailgate bench"
    boundary = f"=_b{i}_{rng.getrandbits(32):08x}"
    if kind == "plain":
        head = _headers(rng, i, when, "text/plain; charset=utf-8")
        return (head + "Content-Transfer-Encoding: 8bit\n\n" + body + "\n").encode()
    if kind == "alternative":
        html = "".join(f"<p>{p}</p>" for p in body.split("\n\n"))
        parts = [
            _plain_part(body),
            "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
            f"<html><body>{html}</body></html>\n",
        ]
        ctype = f'multipart/alternative; boundary="{boundary}"'
    else:
        pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + rng.randbytes(rng.randint(200, 450)) + b"\n%%EOF\n"
        name = f"invoice-{i}.pdf"
        parts = [
            _plain_part(body),
            f'Content-Type: application/pdf; name="{name}"\nContent-Transfer-Encoding: base64\n'
            f'Content-Disposition: attachment; filename="{name}"\n\n'
            + base64.encodebytes(pdf).decode("ascii"),
        ]
        ctype = f'multipart/mixed; boundary="{boundary}"'
    joined = "".join(f"--{boundary}\n{part}" for part in parts) + f"--{boundary}--\n"
    return (_headers(rng, i, when, ctype) + "\nThis is a MIME message.\n\n" + joined).encode()


def build_corpus(count: int, seed: int) -> tuple[list[bytes], list[float]]:
    """*count* messages, oldest first, ten minutes apart; the PICK-th newest is multipart."""
    rng = random.Random(seed)
    now = time.time()
    messages, dates = [], []
    for i in range(count):
        if i == count - PICK or i % 20 == 7:
            kind = "attachment"
        elif i % 10 == 3:
            kind = "alternative"
        else:
            kind = "plain"
        when = now - (count - i) * 600.0
        messages.append(make_message(rng, i, when, kind))
        dates.append(when)
    return messages, dates


def make_big_message(size: int, seed: int) -> tuple[bytes, str]:
    """A multipart/mixed message: part 1 text, part 2 *size* random bytes in base64."""
    payload = random.Random(seed).randbytes(size)
    digest = hashlib.sha256(payload).hexdigest()
    date = format_datetime(datetime.now(UTC))
    head = (
        "From: Big Sender <big@example.com>\nTo: bench@bench.test\nSubject: The big one\n"
        f"Date: {date}\nMessage-ID: <big.{seed}@bench.test>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="=_big"\n\n'
        "--=_big\nContent-Type: text/plain; charset=utf-8\n\nA large file is attached.\n"
        '--=_big\nContent-Type: application/octet-stream; name="big.bin"\n'
        'Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename="big.bin"\n\n'
    )
    raw = head.encode() + base64.encodebytes(payload) + b"--=_big--\n"
    return raw, digest


@dataclass
class Seeded:
    generate_s: float
    deliver_s: float
    big_sha256: str


def seed_mailbox(server: DovecotServer, user: MailUser, count: int, seed: int) -> Seeded:
    started = time.perf_counter()
    messages, dates = build_corpus(count, seed)
    big, digest = make_big_message(BIG_BYTES, seed)
    generated = time.perf_counter()
    server.deliver(user, messages, folder="INBOX", flags="S", internal_dates=dates)
    server.deliver(user, [big], folder="Big")
    delivered = time.perf_counter()
    return Seeded(generated - started, delivered - generated, digest)


# -- HTTP and IMAP operations ----------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    account: str
    inbox: str
    big_folder: str


def add_account(http: httpx.Client, server: DovecotServer, user: MailUser) -> Target:
    body = account_body("imap", server.imap_port, user)
    account = expect(http.post("/v1/accounts", json=body), 201)["id"]
    folders = expect(http.get(f"/v1/accounts/{account}/folders"), 200)["items"]
    inbox = next((f["id"] for f in folders if f["role"] == "inbox"), None)
    big = next((f["id"] for f in folders if f["path"] == "Big"), None)
    if inbox is None or big is None:
        raise BenchError(f"no inbox or no 'Big' folder in {json.dumps(folders)}")
    return Target(account, inbox, big)


def gateway_page(http: httpx.Client, target: Target, folder: str | None = None) -> list[Any]:
    params: dict[str, str | int] = {"folder_id": folder or target.inbox, "limit": PAGE}
    items: list[Any] = expect(
        http.get(f"/v1/accounts/{target.account}/messages", params=params), 200
    )["items"]
    if folder is None and len(items) != PAGE:
        raise BenchError(f"a page has {len(items)} items, not {PAGE}")
    return items


def gateway_message(http: httpx.Client, target: Target, message: str) -> Any:
    return expect(http.get(f"/v1/accounts/{target.account}/messages/{message}"), 200)


def imap_connect(server: DovecotServer, user: MailUser) -> imapclient.IMAPClient:
    client = imapclient.IMAPClient("127.0.0.1", port=server.imap_port, ssl=False, timeout=60)
    client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.login(user.username, user.password)
    return client


def raw_page(imap: imapclient.IMAPClient) -> list[int]:
    imap.select_folder("INBOX")
    uids = sorted(imap.search(["ALL"]))[-PAGE:]
    fetched = imap.fetch(uids, FETCH_ITEMS)
    if len(fetched) != PAGE:
        raise BenchError(f"IMAP page has {len(fetched)} messages")
    return uids


def raw_message(imap: imapclient.IMAPClient, uid: int, select: bool = True) -> EmailMessage:
    """``select``: SELECT first, as a client without state does; without it, INBOX is still
    selected by the round's other raw calls (a client that keeps it selected)."""
    if select:
        imap.select_folder("INBOX")
    raw = imap.fetch([uid], [b"BODY.PEEK[]"])[uid][b"BODY[]"]
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body(preferencelist=("plain", "html"))
    if body is None or not body.get_content():
        raise BenchError(f"UID {uid} has no text body")
    return parsed


# -- timing ----------------------------------------------------------------------------------


def timed_ms(call: Callable[[], object]) -> float:
    started = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - started) / 1e6


def run_interleaved(
    operations: dict[str, Callable[[], object]], rounds: int, warmup: int
) -> dict[str, list[float]]:
    """Each operation once per round, order reversed every other round; warm-up not kept."""
    samples: dict[str, list[float]] = {name: [] for name in operations}
    names = list(operations)
    for number in range(warmup + rounds):
        for name in names if number % 2 == 0 else reversed(names):
            elapsed = timed_ms(operations[name])
            if number >= warmup:
                samples[name].append(elapsed)
    return samples


# -- streaming -------------------------------------------------------------------------------


class RssSampler(threading.Thread):
    """Reads the gateway's RSS every RSS_EVERY seconds and keeps the peak."""

    def __init__(self, gateway: GatewayProcess) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.gateway = gateway
        self.peak_kb = gateway.rss_kb()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(RSS_EVERY):
            self.peak_kb = max(self.peak_kb, self.gateway.rss_kb())

    def finish(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak_kb


class PageTimer(threading.Thread):
    """Times gateway list pages back to back until finished."""

    def __init__(self, http: httpx.Client, target: Target) -> None:
        super().__init__(name="page-timer", daemon=True)
        self.http, self.target = http, target
        self.samples: list[float] = []
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                self.samples.append(timed_ms(lambda: gateway_page(self.http, self.target)))
        except BaseException as exc:
            self.error = exc

    def finish(self) -> list[float]:
        self._stop_event.set()
        self.join()
        if self.error is not None:
            raise self.error
        return self.samples


@dataclass
class StreamResult:
    size: int
    sha256: str
    seconds: float
    rss_before_kb: int
    rss_peak_kb: int
    rss_after_kb: int
    idle_page_ms: list[float] = field(default_factory=list)
    busy_page_ms: list[float] = field(default_factory=list)


def download(http: httpx.Client, url: str) -> tuple[int, str]:
    """Reads *url* in throttled 64 KB reads, keeping only the count and the sha256."""
    digest, size = hashlib.sha256(), 0
    with http.stream("GET", url) as response:
        if response.status_code != 200:
            response.read()
            expect(response, 200)
        for chunk in response.iter_bytes(READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            time.sleep(READ_PAUSE)
    return size, digest.hexdigest()


def stream_big(
    http: httpx.Client, gateway: GatewayProcess, target: Target, rounds: int
) -> tuple[StreamResult, str]:
    big_items = gateway_page(http, target, target.big_folder)
    if len(big_items) != 1:
        raise BenchError(f"folder Big lists {len(big_items)} messages, not 1")
    big_id = big_items[0]["id"]
    url = f"/v1/accounts/{target.account}/messages/{big_id}/attachments/{BIG_ATTACHMENT_ID}"
    with httpx.Client(base_url=http.base_url, headers=http.headers, timeout=60) as second:
        gateway_page(second, target)
        idle = [timed_ms(lambda: gateway_page(second, target)) for _ in range(rounds)]
        time.sleep(1.0)  # let the allocator settle before the baseline
        before = gateway.rss_kb()
        sampler, pager = RssSampler(gateway), PageTimer(second, target)
        sampler.start()
        pager.start()
        started = time.perf_counter()
        try:
            size, digest = download(http, url)
        finally:
            seconds = time.perf_counter() - started
            busy = pager.finish()
            peak = sampler.finish()
    time.sleep(1.0)
    after = gateway.rss_kb()
    result = StreamResult(size, digest, seconds, before, peak, after, idle, busy)
    return result, big_id


# -- report ----------------------------------------------------------------------------------


def latency_report(samples: dict[str, list[float]]) -> dict[str, Any]:
    print(f"\n{'operation':<28}{'p50 ms':>10}{'p99 ms':>10}")
    for name, values in samples.items():
        print(f"{name:<28}{p50(values):>10.2f}{p99(values):>10.2f}")
    ratios: dict[str, Any] = {}
    print(f"\n{'gateway/raw':<28}{'p50':>10}{'p99':>10}   target")
    for label, raw, gateway in (("page", "raw page", "gateway page"),
                                ("message", "raw message", "gateway message")):  # fmt: skip
        at50 = ratio(p50(samples[gateway]), p50(samples[raw]))
        at99 = ratio(p99(samples[gateway]), p99(samples[raw]))
        ok = at50 <= TARGET_RATIO_P50
        print(
            f"{label:<28}{at50:>9.2f}x{at99:>9.2f}x   <= {TARGET_RATIO_P50}x at p50: {verdict(ok)}"
        )
        ratios[label] = {"p50": round(at50, 3), "p99": round(at99, 3), "ok": ok}
    # the gateway keeps the folder selected on its pooled connection (a NOOP, no SELECT):
    # against a raw client that does so too, for comparison (no target)
    kept = ratio(p50(samples["gateway message"]), p50(samples["raw message, kept selected"]))
    print(f"{'message vs raw kept selected':<28}{kept:>9.2f}x")
    ratios["message vs raw kept selected"] = {"p50": round(kept, 3)}
    return ratios


def stream_report(result: StreamResult, expected_size: int, expected_sha: str) -> dict[str, Any]:
    mb = 1024.0
    growth = (result.rss_peak_kb - result.rss_before_kb) / mb
    kept = (result.rss_after_kb - result.rss_before_kb) / mb
    idle, busy = p50(result.idle_page_ms), p50(result.busy_page_ms or [float("nan")])
    slowdown = ratio(busy, idle)
    intact = result.size == expected_size and result.sha256 == expected_sha
    rate = result.size / mb / mb / result.seconds
    print(
        f"\nattachment stream: {result.size} bytes in {result.seconds:.2f} s ({rate:.1f} MiB/s),"
        f" size+sha256 {'match' if intact else 'MISMATCH'}"
    )
    print(
        f"gateway RSS MB: before {result.rss_before_kb / mb:.1f},"
        f" peak {result.rss_peak_kb / mb:.1f} (+{growth:.1f}),"
        f" after {result.rss_after_kb / mb:.1f} (+{kept:.1f})"
        f"   target growth < {TARGET_RSS_MB:.0f} MB: {verdict(growth < TARGET_RSS_MB)}"
    )
    print(
        f"list page p50 during stream {busy:.2f} ms ({len(result.busy_page_ms)} pages)"
        f" vs idle {idle:.2f} ms: {slowdown:.2f}x"
        f"   target <= {TARGET_STREAM_RATIO}x: {verdict(slowdown <= TARGET_STREAM_RATIO)}"
    )
    return {
        "bytes": result.size,
        "seconds": round(result.seconds, 3),
        "intact": intact,
        "rss_before_mb": round(result.rss_before_kb / mb, 1),
        "rss_peak_mb": round(result.rss_peak_kb / mb, 1),
        "rss_after_mb": round(result.rss_after_kb / mb, 1),
        "rss_growth_mb": round(growth, 1),
        "rss_growth_ok": growth < TARGET_RSS_MB,
        "page_p50_idle_ms": round(idle, 2),
        "page_p50_during_stream_ms": round(busy, 2),
        "pages_during_stream": len(result.busy_page_ms),
        "stream_slowdown": round(slowdown, 3),
        "stream_slowdown_ok": slowdown <= TARGET_STREAM_RATIO,
    }


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=10_000, help="INBOX size")
    parser.add_argument("--rounds", type=int, default=200, help="timed rounds per operation")
    parser.add_argument("--warmup", type=int, default=5, help="untimed rounds first")
    parser.add_argument("--seed", type=int, default=1, help="corpus random seed")
    args = parser.parse_args(argv)
    if args.messages < PAGE or args.rounds < 2 or args.warmup < 0:
        parser.error(f"need --messages >= {PAGE}, --rounds >= 2, --warmup >= 0")
    return args


def pick_message(
    http: httpx.Client, imap: imapclient.IMAPClient, target: Target
) -> tuple[str, int]:
    """The page's PICK-th item through both paths; checks it is the same multipart message."""
    message = gateway_page(http, target)[PICK - 1]["id"]
    uid = raw_page(imap)[-PICK]
    parsed = raw_message(imap, uid)
    via_gateway = gateway_message(http, target, message)
    if not parsed.is_multipart():
        raise BenchError(f"UID {uid} is not multipart")
    if via_gateway.get("message_id") != str(parsed["Message-ID"]).strip("<>"):
        raise BenchError(
            f"gateway item {PICK} ({via_gateway.get('message_id')}) is not UID {uid}"
            f" ({parsed['Message-ID']})"
        )
    return message, uid


def bench(args: argparse.Namespace, workdir: Path, figures: dict[str, Any]) -> list[str]:
    """Everything between start and stop; fills *figures*, returns failed checks."""
    server = DovecotServer(workdir / "dovecot")
    gateway = GatewayProcess(workdir / "gateway")
    (workdir / "gateway").mkdir()
    try:
        started = time.perf_counter()
        server.start()
        figures["dovecot_start_s"] = round(time.perf_counter() - started, 3)
        user = server.add_user()
        seeded = seed_mailbox(server, user, args.messages, args.seed)
        figures["generate_s"] = round(seeded.generate_s, 3)
        figures["seed_s"] = round(seeded.deliver_s, 3)
        print(
            f"dovecot up in {figures['dovecot_start_s']} s; {args.messages} messages + 1 big"
            f" generated in {seeded.generate_s:.2f} s, delivered (seeded) in"
            f" {seeded.deliver_s:.2f} s"
        )
        gateway.start()
        key = gateway.create_key()
        headers = {"Authorization": f"Bearer {key}"}
        with (
            httpx.Client(base_url=gateway.url, headers=headers, timeout=120) as http,
            imap_connect(server, user) as imap,
        ):
            target = add_account(http, server, user)
            return run_phases(args, http, imap, gateway, target, seeded, figures)
    except BenchError:
        print(server.log_tail(), file=sys.stderr)
        print(gateway.log(), file=sys.stderr)
        raise
    finally:
        gateway.stop()
        server.stop()


def run_phases(
    args: argparse.Namespace,
    http: httpx.Client,
    imap: imapclient.IMAPClient,
    gateway: GatewayProcess,
    target: Target,
    seeded: Seeded,
    figures: dict[str, Any],
) -> list[str]:
    failures: list[str] = []
    message, uid = pick_message(http, imap, target)
    operations: dict[str, Callable[[], object]] = {
        "raw page": lambda: raw_page(imap),
        "gateway page": lambda: gateway_page(http, target),
        "raw message": lambda: raw_message(imap, uid),
        "raw message, kept selected": lambda: raw_message(imap, uid, select=False),
        "gateway message": lambda: gateway_message(http, target, message),
    }
    print(f"timing {args.rounds} rounds (+{args.warmup} warm-up), page of {PAGE}, UID {uid}")
    samples = run_interleaved(operations, args.rounds, args.warmup)
    figures["latency_ms"] = {
        name: {"p50": round(p50(v), 3), "p99": round(p99(v), 3)} for name, v in samples.items()
    }
    figures["ratios"] = latency_report(samples)
    result, big_id = stream_big(http, gateway, target, args.rounds)
    figures["stream"] = stream_report(result, BIG_BYTES, seeded.big_sha256)
    attachments = gateway_message(http, target, big_id).get("attachments", [])
    listed = next((a for a in attachments if a.get("id") == BIG_ATTACHMENT_ID), None)
    figures["stream"]["listed_size"] = listed and listed.get("size")
    if not figures["stream"]["intact"]:
        failures.append(f"downloaded {result.size} bytes sha256 {result.sha256}")
    if listed is None or listed.get("size") != result.size:
        failures.append(f"attachment {BIG_ATTACHMENT_ID} listed as {listed}, got {result.size} B")
    return failures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench(
        "mailgate-bench-",
        {"messages": args.messages, "rounds": args.rounds},
        lambda workdir, figures: bench(args, workdir, figures),
        summary=lambda f: f"; dovecot seeding {f['seed_s']:.2f} s",
    )


if __name__ == "__main__":
    sys.exit(main())
