"""Two checkouts side by side: the gateway CPU and latency of the same reads, in one run.

Run by hand from the repository root (not part of the test suite; needs Dovecot):

    .venv/bin/python bench/ab_reads.py --other /work/main [--requests 200] [--repeat 3]

``--other`` is another checkout with its own ``.venv`` (e.g. main, in a git worktree). The
script starts one Dovecot seeded with the corpus of ``imap_bench.py``, and two gateways:
``A`` from the other checkout, ``B`` from this one (each ``python -m mailgate.api serve``
from its own venv and source, with its own data dir). Each adds the mailbox over IMAP and
over POP3. Then, ``--repeat`` times, for each request (``imap message``, ``pop3 page``,
``get account``, as ``profile_reads.py`` names them) and each gateway in turn (the order
alternating), it sends ``--requests`` requests one after another on a keep-alive connection
and reads the gateway's CPU time (utime + stime of the process, ``/proc/<pid>/stat``) before
and after. It prints, per request and gateway, the CPU per request of every repetition and
the p50/p99 latency over all of them. Interleaving is what makes the two comparable on a
machine whose load changes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from common import BenchError, GatewayProcess, expect, p50, p99, run_bench
from imap_bench import PAGE, PICK, build_corpus

from tests.harness.dovecot import DovecotServer
from tests.helpers import account_body

HERE = Path(__file__).resolve().parent.parent


def bench(args: argparse.Namespace, workdir: Path, figures: dict[str, Any]) -> list[str]:
    server = DovecotServer(workdir / "dovecot")
    gateways = {
        "A": GatewayProcess(workdir / "a", Path(args.other).resolve()),
        "B": GatewayProcess(workdir / "b", HERE),
    }
    clients: dict[str, httpx.Client] = {}
    try:
        server.start()
        user = server.add_user()
        messages, dates = build_corpus(args.messages, args.seed)
        server.deliver(user, messages, folder="INBOX", flags="S", internal_dates=dates)
        urls: dict[str, dict[str, str]] = {}
        for name, gateway in gateways.items():
            (workdir / name.lower()).mkdir()
            gateway.env["MAILGATE_POP3_SYNC_INTERVAL"] = "3600"
            gateway.start()
            http = clients[name] = httpx.Client(
                base_url=gateway.url,
                headers={"Authorization": f"Bearer {gateway.create_key()}"},
                timeout=120,
            )
            ids = {}
            for protocol, port in (("imap", server.imap_port), ("pop3", server.pop3_port)):
                body = account_body(protocol, port, user)
                ids[protocol] = expect(http.post("/v1/accounts", json=body), 201)["id"]
            items = expect(http.get(f"/v1/accounts/{ids['imap']}/messages?limit={PAGE}"), 200)
            urls[name] = {
                "imap message": f"/v1/accounts/{ids['imap']}/messages/"
                f"{items['items'][PICK - 1]['id']}",
                "pop3 page": f"/v1/accounts/{ids['pop3']}/messages?limit={PAGE}",
                "get account": f"/v1/accounts/{ids['pop3']}",
            }
        cpu: dict[str, dict[str, list[float]]] = {}
        wall: dict[str, dict[str, list[float]]] = {}
        for repetition in range(args.repeat):
            for request in urls["A"]:
                order = ["A", "B"] if repetition % 2 == 0 else ["B", "A"]
                for name in order:
                    http, gateway, url = clients[name], gateways[name], urls[name][request]
                    for _ in range(20):  # warm-up
                        expect(http.get(url), 200)
                    before = gateway.cpu_seconds()
                    for _ in range(args.requests):
                        started = time.perf_counter()
                        expect(http.get(url), 200)
                        wall.setdefault(request, {}).setdefault(name, []).append(
                            (time.perf_counter() - started) * 1000
                        )
                    used = (gateway.cpu_seconds() - before) * 1000 / args.requests
                    cpu.setdefault(request, {}).setdefault(name, []).append(used)
        for request in urls["A"]:
            print(f"\n{request}")
            for name in ("A", "B"):
                runs = cpu[request][name]
                times = wall[request][name]
                print(
                    f"  {name} ({gateways[name].root}): CPU ms/request "
                    f"{' '.join(f'{c:.2f}' for c in runs)} (median {statistics.median(runs):.2f}); "
                    f"p50 {p50(times):.2f} ms, p99 {p99(times):.2f} ms"
                )
                figures[f"{request} {name}"] = {
                    "cpu_ms": [round(c, 3) for c in runs],
                    "p50_ms": round(p50(times), 3),
                    "p99_ms": round(p99(times), 3),
                }
        return []
    except BenchError:
        for gateway in gateways.values():
            print(gateway.log(), file=sys.stderr)
        raise
    finally:
        for http in clients.values():
            http.close()
        for gateway in gateways.values():
            gateway.stop()
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--other", required=True, help="the other checkout (with .venv)")
    parser.add_argument("--messages", type=int, default=2000, help="INBOX size")
    parser.add_argument("--requests", type=int, default=200, help="requests per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per gateway")
    parser.add_argument("--seed", type=int, default=1, help="corpus random seed")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {"other": args.other}
    return run_bench("mailgate-ab-", figures, lambda workdir, out: bench(args, workdir, out))


if __name__ == "__main__":
    sys.exit(main())
