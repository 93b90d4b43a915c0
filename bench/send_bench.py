"""Mailgate sending throughput against raw smtplib, on one real Postfix (issue 13).

Run by hand from the repository root (it is not part of the test suite):

    .venv/bin/python bench/send_bench.py [--messages 500] [--database postgresql|sqlite]

One run starts a private Dovecot (SASL and LMTP for Postfix) and Postfix (tests/harness), a
sender and a recipient mailbox, then:

1. raw: smtplib on one connection (AUTH PLAIN on Postfix' plain port), ``--messages`` small
   messages one after another; messages/s from the first MAIL to the last answer;
2. end to end: ``python -m mailgate.api serve`` on a free port (queue on PostgreSQL: a fresh
   schema in the ``test`` database, or SQLite), the sender's account with the same SMTP
   server, ``--messages`` ``POST /send`` on one keep-alive connection; messages/s from the
   first POST until every submission is ``sent`` (the send worker of the serving process
   delivers them; no Sent copies, as for Gmail, so only sending is timed);
3. delivery: the same process restarted with ``MAILGATE_SEND_WORKER=false`` queues
   ``--messages`` more (the POSTs timed alone), then the send worker (``Sender``, as
   ``mailgate serve`` runs it) drains the queue in this process; messages/s from its first
   claim until every submission is ``sent``;
4. checks that the recipient's mailbox got exactly 3 x ``--messages`` messages, and prints
   the ratios to raw against the target (≥ 0.8) and everything as one JSON line.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import smtplib
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import sqlalchemy as sa
from common import BenchError, GatewayProcess, expect, ratio, run_bench, verdict

from tests.conftest import POSTGRES_URL
from tests.harness.dovecot import DovecotServer
from tests.harness.postfix import PostfixServer

TARGET = 0.8


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    return parser.parse_args(argv)


def small_message(sender: str, recipient: str, number: int) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"] = sender, recipient
    message["Subject"] = f"raw {number}"
    message.set_content(f"Message {number}: a few words of text.\n")
    return message


def bench(args: argparse.Namespace, workdir: Path, figures: dict[str, Any]) -> list[str]:
    # Dovecot delivers as nobody and Postfix runs as postfix: their dirs must be reachable
    base = Path(tempfile.mkdtemp(prefix="mailgate-send-bench-"))
    base.chmod(0o711)
    dovecot = DovecotServer(base / "dovecot", smtp_backend=True)
    postfix = PostfixServer(base / "postfix", dovecot)
    gateway = GatewayProcess(workdir / "gateway")
    schema = f"bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        dovecot.start()
        postfix.start()
        sender = dovecot.add_user(f"alice-{secrets.token_hex(3)}@corp.test")
        recipient = dovecot.add_user(f"bob-{secrets.token_hex(3)}@corp.test")
        postfix.add_recipient(sender)
        postfix.add_recipient(recipient)
        figures.update(
            _raw(args.messages, postfix, sender.username, sender.password, recipient.username)
        )
        if args.database == "postgresql":
            with admin.connect() as connection:
                connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            gateway.env["MAILGATE_DATABASE_URL"] = (
                f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
            )
        (workdir / "gateway").mkdir(parents=True, exist_ok=True)
        gateway.start()
        key = gateway.create_key()
        figures.update(_gateway(args.messages, key, gateway, dovecot, postfix, sender, recipient))
        gateway.stop()
        gateway.env["MAILGATE_SEND_WORKER"] = "false"
        gateway.start()
        figures.update(_drain(args.messages, key, gateway, recipient))
        delivered = postfix.wait_for_delivery(recipient, 3 * args.messages, timeout=120)
        figures["delivered"] = len(delivered)
    finally:
        gateway.stop()
        postfix.stop()
        dovecot.stop()
        if args.database == "postgresql":
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
        shutil.rmtree(base, ignore_errors=True)
    figures["ratio"] = round(ratio(figures["gateway_per_s"], figures["raw_per_s"]), 2)
    figures["delivery_ratio"] = round(ratio(figures["delivery_per_s"], figures["raw_per_s"]), 2)
    print(
        f"raw smtplib              {figures['raw_per_s']:8.1f} messages/s\n"
        f"gateway, POST to sent    {figures['gateway_per_s']:8.1f} messages/s  "
        f"({figures['ratio']:.2f}x raw, target ≥ {TARGET}: {verdict(figures['ratio'] >= TARGET)})"
        f"\nqueue drained by worker  {figures['delivery_per_s']:8.1f} messages/s  "
        f"({figures['delivery_ratio']:.2f}x raw, target ≥ {TARGET}: "
        f"{verdict(figures['delivery_ratio'] >= TARGET)})\n"
        f"POST /send alone         {figures['post_per_s']:8.1f} requests/s"
    )
    failures = []
    if figures["delivered"] != 3 * args.messages:
        failures.append(f"{figures['delivered']} messages arrived, not {3 * args.messages}")
    return failures


def _raw(count: int, postfix: PostfixServer, user: str, password: str, to: str) -> dict[str, Any]:
    with smtplib.SMTP(postfix.host, postfix.smtp_port, timeout=30) as client:
        client.ehlo()
        client.user, client.password = user, password
        client.auth("PLAIN", client.auth_plain)
        started = time.perf_counter()
        for number in range(count):
            client.send_message(small_message(user, to, number))
        elapsed = time.perf_counter() - started
    return {"raw_s": round(elapsed, 3), "raw_per_s": round(count / elapsed, 1)}


def _gateway(
    count: int,
    key: str,
    gateway: GatewayProcess,
    dovecot: DovecotServer,
    postfix: PostfixServer,
    sender: Any,
    recipient: Any,
) -> dict[str, Any]:
    with httpx.Client(
        base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as http:
        account = expect(
            http.post(
                "/v1/accounts",
                json={
                    "protocol": "imap",
                    "host": dovecot.host,
                    "port": dovecot.imap_port,
                    "security": "none",
                    "username": sender.username,
                    "password": sender.password,
                },
            ),
            201,
        )
        base = f"/v1/accounts/{account['id']}"
        smtp = {
            "host": postfix.host,
            "port": postfix.smtp_port,
            "security": "none",
            "save_sent_copy": False,
        }
        expect(http.put(base + "/smtp", json=smtp), 200)
        started = time.perf_counter()
        for number in range(count):
            body = {
                "to": [{"email": recipient.username}],
                "subject": f"gw {number}",
                "text": f"Message {number}: a few words of text.\n",
            }
            expect(http.post(base + "/send", json=body), 202)
        queued = time.perf_counter() - started
        deadline = time.monotonic() + 300
        while True:
            items = expect(http.get(base + "/submissions"), 200)["items"]
            pending = [s for s in items if s["status"] in ("queued", "sending")]
            failed = [s for s in items if s["status"] == "failed"]
            if failed:
                raise BenchError(f"{len(failed)} submissions failed: {failed[0]}")
            if not pending and len(items) >= min(count, 200):
                break
            if time.monotonic() > deadline:
                raise BenchError(f"{len(pending)} submissions still pending after 300 s")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    return {
        "gateway_queue_s": round(queued, 3),
        "gateway_s": round(elapsed, 3),
        "gateway_per_s": round(count / elapsed, 1),
    }


def _drain(count: int, key: str, gateway: GatewayProcess, recipient: Any) -> dict[str, Any]:
    """Queue ``count`` through an API-only process, then time the send worker alone."""
    from mailgate.events.sender import Sender
    from mailgate.gateway.context import Gateway
    from mailgate.gateway.settings import Settings

    with httpx.Client(
        base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as http:
        [account] = expect(http.get("/v1/accounts"), 200)["items"]
        base = f"/v1/accounts/{account['id']}"
        started = time.perf_counter()
        for number in range(count):
            body = {"to": [{"email": recipient.username}], "subject": f"q {number}", "text": "x\n"}
            expect(http.post(base + "/send", json=body), 202)
        posted = time.perf_counter() - started
    settings = Settings(
        data_dir=Path(gateway.env["MAILGATE_DATA_DIR"]),
        database_url=gateway.env.get("MAILGATE_DATABASE_URL"),
    )
    worker = Gateway.from_settings(settings)
    try:
        sender = Sender(worker)
        started = time.perf_counter()
        tried = 0
        while (round_ := sender.send_due()) > 0:
            tried += round_
        drained = time.perf_counter() - started
        with worker.engine.connect() as connection:
            sent = connection.execute(
                sa.text("SELECT count(*) FROM submission WHERE status = 'sent'")
            ).scalar_one()
    finally:
        worker.close()
    if tried != count or sent != 2 * count:
        raise BenchError(f"the worker tried {tried} and {sent} are sent, not {count}")
    return {
        "post_s": round(posted, 3),
        "post_per_s": round(count / posted, 1),
        "delivery_s": round(drained, 3),
        "delivery_per_s": round(count / drained, 1),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures: dict[str, Any] = {"messages": args.messages, "database": args.database}
    return run_bench("mailgate-send-bench-", figures, lambda workdir, f: bench(args, workdir, f))


if __name__ == "__main__":
    sys.exit(main())
