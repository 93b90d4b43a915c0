"""Where the CPU of one read goes: the app called in-process, each part of the request timed.

Run by hand from the repository root (not part of the test suite; needs Dovecot):

    .venv/bin/python bench/request_parts.py [--requests 1000] [--repeat 2]

The script starts Dovecot with the corpus of ``imap_bench.py``, builds the gateway's app in
this process on SQLite (as ``mailgate serve`` would, without uvicorn), adds the mailbox over
IMAP and over POP3, and calls the app as an ASGI server would, one request at a time on
uvloop: ``GET /healthz`` (the floor: middleware and routing), ``get account``, ``pop3 page``
(50 from the store) and ``imap message`` (as ``profile_reads.py`` names them). For each it
prints the process's CPU per request (every thread: the event loop and the worker that runs
the route) and the wall time, and the CPU of each part: the key check with its rate-limit
count, on the event loop from memory (``admit_cached``) or, when the database must be asked,
in a worker (``admit_key``), the account lookup (``mailbox``), the adapter's
work, the page or message as JSON with its ETag (``conditional_json``). What is left is the
framework on the event loop: dependencies, parameters, middleware, the thread hand-offs.

Unlike ``profile_reads.py`` (py-spy on a served gateway, whose "GIL held" time swells with
every descheduling on a busy machine) this counts CPU time alone; unlike a micro-benchmark,
each part runs where it runs in a request (cold caches included: a part costs two to three
times what it costs in a tight loop).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uvloop
from common import BenchError, run_bench
from fastapi import FastAPI
from imap_bench import PAGE, PICK, build_corpus

from mailgate.adapters.imap.adapter import ImapAdapter
from mailgate.adapters.pop3.adapter import Pop3Adapter
from mailgate.api.app import create_app
from mailgate.api.routes import accounts as account_routes
from mailgate.api.routes import messages as message_routes
from mailgate.gateway import messages as gateway_messages
from mailgate.gateway.context import Gateway
from mailgate.gateway.settings import Settings
from mailgate.gateway.tenants import issue_api_key
from tests.harness.dovecot import DovecotServer
from tests.helpers import account_body

Parts = collections.defaultdict[str, float]


async def call(
    app: FastAPI, method: str, target: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, bytes]:
    """One request through the ASGI app; the status and the body."""
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8025),
        "state": {},
    }
    chunks = [{"type": "http.request", "body": body, "more_body": False}]
    answer: dict[str, Any] = {"status": 0, "body": b""}

    async def receive() -> dict[str, Any]:
        if chunks:
            return chunks.pop()
        await asyncio.sleep(3600)  # a client that waits for the answer
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return answer["status"], answer["body"]


def time_part(parts: Parts, owner: Any, name: str, label: str) -> None:
    """Wrap ``owner.name`` to add its CPU time (this thread's) to ``parts[label]``."""
    inner = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            parts[label] += time.thread_time() - started

    setattr(owner, name, timed)


def instrument(app: FastAPI, parts: Parts) -> None:
    time_part(parts, app.state.access, "admit_key", "admit_key")
    time_part(parts, app.state.access, "admit_cached", "admit_cached")
    time_part(parts, gateway_messages, "mailbox", "mailbox")
    time_part(parts, Pop3Adapter, "list_messages", "adapter: pop3 list_messages")
    time_part(parts, ImapAdapter, "get_message", "adapter: imap get_message")
    time_part(parts, account_routes.accounts, "get_account", "gateway: get_account")
    time_part(parts, message_routes, "conditional_json", "conditional_json")


async def measure(args: argparse.Namespace, workdir: Path, figures: dict[str, Any]) -> None:
    logging.disable(logging.INFO)  # as served with MAILGATE_LOG_LEVEL=WARNING
    server = DovecotServer(workdir / "dovecot")
    server.start()
    try:
        user = server.add_user()
        messages, dates = build_corpus(args.messages, args.seed)
        server.deliver(user, messages, folder="INBOX", flags="S", internal_dates=dates)
        settings = Settings(  # type: ignore[call-arg]  # the rest from the environment
            data_dir=workdir / "data",
            pop3_sync_interval=3600,
            rate_limit_per_minute=100_000_000,
        )
        gateway = Gateway.from_settings(settings)
        gateway.migrate()
        headers = {
            "host": "bench",
            "authorization": f"Bearer {issue_api_key(gateway.engine, 't').key}",
        }
        app = create_app(gateway)
        ids = {}
        for protocol, port in (("imap", server.imap_port), ("pop3", server.pop3_port)):
            body = json.dumps(account_body(protocol, port, user)).encode()
            status, answer = await call(
                app, "POST", "/v1/accounts", {**headers, "content-type": "application/json"}, body
            )
            if status != 201:
                raise BenchError(f"adding the {protocol} account: {status} {answer!r}")
            ids[protocol] = json.loads(answer)["id"]
        _, page = await call(
            app, "GET", f"/v1/accounts/{ids['imap']}/messages?limit={PAGE}", headers
        )
        message = json.loads(page)["items"][PICK - 1]["id"]
        targets = {
            "healthz": "/healthz",
            "get account": f"/v1/accounts/{ids['pop3']}",
            "pop3 page": f"/v1/accounts/{ids['pop3']}/messages?limit={PAGE}",
            "imap message": f"/v1/accounts/{ids['imap']}/messages/{message}",
        }
        parts: Parts = collections.defaultdict(float)
        instrument(app, parts)
        gc.collect()
        gc.freeze()  # as `mailgate serve` does
        for _ in range(args.repeat):
            for name, target in targets.items():
                for _warm_up in range(30):
                    await call(app, "GET", target, headers)
                parts.clear()
                cpu, wall = time.process_time(), time.perf_counter()
                for _request in range(args.requests):
                    status, answer = await call(app, "GET", target, headers)
                    if status != 200:
                        raise BenchError(f"{name}: {status} {answer[:300]!r}")
                cpu = (time.process_time() - cpu) * 1000 / args.requests
                wall = (time.perf_counter() - wall) * 1000 / args.requests
                shares = {label: seconds * 1000 / args.requests for label, seconds in parts.items()}
                report(name, cpu, wall, shares)
                figures.setdefault(name, []).append(
                    {"cpu_ms": round(cpu, 3), "wall_ms": round(wall, 3)}
                    | {label: round(ms, 3) for label, ms in shares.items()}
                )
        gateway.close()
    finally:
        server.stop()


def report(name: str, cpu: float, wall: float, shares: dict[str, float]) -> None:
    """The parts do not nest: what they leave is the event loop's (and uvloop's) share."""
    print(f"\n{name}: CPU {cpu:.2f} ms a request (wall {wall:.2f} ms)")
    for label, ms in sorted(shares.items(), key=lambda item: -item[1]):
        print(f"  {label:<34}{ms:>7.2f} ms  {ms / cpu:>4.0%}")
    rest = cpu - sum(shares.values())
    print(f"  {'the rest: framework, event loop':<34}{rest:>7.2f} ms  {rest / cpu:>4.0%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=2000, help="INBOX size")
    parser.add_argument("--requests", type=int, default=1000, help="requests per measurement")
    parser.add_argument("--repeat", type=int, default=2, help="measurements per request")
    parser.add_argument("--seed", type=int, default=1, help="corpus random seed")
    args = parser.parse_args(argv)

    def work(workdir: Path, figures: dict[str, Any]) -> list[str]:
        uvloop.run(measure(args, workdir, figures))
        return []

    return run_bench("mailgate-parts-", {}, work)


if __name__ == "__main__":
    sys.exit(main())
