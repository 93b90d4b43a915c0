"""Where the time of a read goes: py-spy samples the gateway while one request repeats.

Run by hand from the repository root (it is not part of the test suite; needs py-spy,
``.venv/bin/pip install py-spy``, and the right to ptrace the gateway, as root has):

    .venv/bin/python bench/profile_reads.py [--messages 2000] [--seconds 15] [--top 25]

It starts a private Dovecot seeded with the corpus of ``imap_bench.py`` and a gateway
(``python -m mailgate.api serve``, as the other benches do), adds the mailbox twice, over
IMAP and over POP3, and then for each of two requests:

* ``imap message``: ``GET /v1/accounts/{imap}/messages/{id}``, the message ``imap_bench.py``
  times (the 25th newest, multipart);
* ``pop3 page``: ``GET /v1/accounts/{pop3}/messages?limit=50``, as ``pop3_bench.py`` does;
* ``get account``: ``GET /v1/accounts/{pop3}``, what every request costs around its own work
  (key, rate-limit count, account lookup, FastAPI, middleware, JSON);

repeats that request on one keep-alive connection for ``--seconds`` while
``py-spy record --gil`` samples the gateway (only the thread holding the GIL, so the figures
are CPU spent in Python, not waits). It prints the requests per second, then the functions
with the largest share of the samples: inclusive (the function and what it calls) and self.
``--keep DIR`` keeps the collapsed stacks (one file per request, for flame graph tools).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from common import BenchError, GatewayProcess, expect, run_bench
from imap_bench import PAGE, PICK, build_corpus

from tests.harness.dovecot import DovecotServer
from tests.helpers import account_body

RATE = 1000  # samples a second
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*)\)$")


def _short(frame: str) -> str:
    """``func (path/to/module.py)`` as ``func (module.py)``, the last two path parts."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    parts = match["file"].split("/")
    return f"{match['func']} ({'/'.join(parts[-2:])})"


Ranking = list[tuple[str, int]]


def aggregate(collapsed: Path, top: int) -> tuple[int, Ranking, Ranking]:
    """Total samples; the ``top`` functions by inclusive and by self samples."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")[1:]]  # the first is the thread
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            own[frames[-1]] += count
    return total, inclusive.most_common(top), own.most_common(top)


def profile(
    gateway: GatewayProcess, http: httpx.Client, url: str, seconds: float, out: Path
) -> int:
    """Repeat GET *url* while py-spy samples the gateway; returns how many were answered."""
    for _ in range(20):  # warm-up
        expect(http.get(url), 200)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "--pid", str(gateway.pid), "--rate", str(RATE), "--gil",
               "--nolineno", "--format", "raw", "--duration", str(int(seconds)),
               "--output", str(out)]  # fmt: skip
    count = 0
    spying = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)  # py-spy attaches
        started = time.perf_counter()
        while spying.poll() is None:
            expect(http.get(url), 200)
            count += 1
        elapsed = time.perf_counter() - started
    finally:
        _, err = spying.communicate(timeout=60)
    if spying.returncode != 0 or not out.exists():
        raise BenchError(f"py-spy failed ({spying.returncode}): {err.decode(errors='replace')}")
    print(f"  {count} requests in {elapsed:.1f} s: {count / elapsed:.0f}/s")
    return count


def report(name: str, collapsed: Path, requests: int, top: int) -> dict[str, Any]:
    total, inclusive, own = aggregate(collapsed, top)
    per_request = total / RATE * 1000 / requests if requests else 0.0
    print(f"\n== {name}: {total} samples with the GIL held, {per_request:.2f} ms a request")
    for title, rows in (("inclusive", inclusive), ("self", own)):
        print(f"  {title:<10}{'%':>6}{'ms/req':>8}")
        for frame, count in rows:
            ms = count / RATE * 1000 / requests if requests else 0.0
            print(f"  {100 * count / total:>16.1f}{ms:>8.2f}  {frame}")
    return {
        "samples": total,
        "cpu_ms_per_request": round(per_request, 3),
        "inclusive": {frame: count for frame, count in inclusive},
        "self": {frame: count for frame, count in own},
    }


def bench(args: argparse.Namespace, workdir: Path, figures: dict[str, Any]) -> list[str]:
    server = DovecotServer(workdir / "dovecot")
    gateway = GatewayProcess(workdir / "gateway")
    gateway.env["MAILGATE_POP3_SYNC_INTERVAL"] = "3600"
    (workdir / "gateway").mkdir()
    keep = Path(args.keep) if args.keep else workdir
    keep.mkdir(parents=True, exist_ok=True)
    try:
        server.start()
        user = server.add_user()
        messages, dates = build_corpus(args.messages, args.seed)
        server.deliver(user, messages, folder="INBOX", flags="S", internal_dates=dates)
        gateway.start()
        headers = {"Authorization": f"Bearer {gateway.create_key()}"}
        with httpx.Client(base_url=gateway.url, headers=headers, timeout=120) as http:
            accounts = {}
            for protocol, port in (("imap", server.imap_port), ("pop3", server.pop3_port)):
                body = account_body(protocol, port, user)
                accounts[protocol] = expect(http.post("/v1/accounts", json=body), 201)["id"]
            imap = accounts["imap"]
            items = expect(http.get(f"/v1/accounts/{imap}/messages?limit={PAGE}"), 200)["items"]
            requests = {
                "imap message": f"/v1/accounts/{imap}/messages/{items[PICK - 1]['id']}",
                "pop3 page": f"/v1/accounts/{accounts['pop3']}/messages?limit={PAGE}",
                "get account": f"/v1/accounts/{accounts['pop3']}",
            }
            for name, url in requests.items():
                if args.only and name not in args.only:
                    continue
                print(f"profiling {name}: GET {url}")
                out = keep / f"{name.replace(' ', '-')}.txt"
                count = profile(gateway, http, url, args.seconds, out)
                figures[name] = report(name, out, count, args.top)
        return []
    except BenchError:
        print(gateway.log(), file=sys.stderr)
        raise
    finally:
        gateway.stop()
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=2000, help="INBOX size")
    parser.add_argument("--seconds", type=float, default=15, help="sampling time per request")
    parser.add_argument("--top", type=int, default=25, help="functions shown per table")
    parser.add_argument("--seed", type=int, default=1, help="corpus random seed")
    parser.add_argument("--keep", help="a directory for the collapsed stacks")
    parser.add_argument(
        "--only", action="append", help="'imap message', 'pop3 page' or 'get account'"
    )
    args = parser.parse_args(argv)
    return run_bench(
        "mailgate-profile-",
        {"messages": args.messages},
        lambda workdir, figures: bench(args, workdir, figures),
    )


if __name__ == "__main__":
    sys.exit(main())
