"""The app served for real: uvicorn on loopback in a thread, for tests where a browser or
many concurrent clients talk to it over TCP; or `mailgate serve` in processes of its own."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from .net import LOOPBACK, free_port


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """Serve ``app``; yields its base URL, stops it afterwards."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


MAILGATE = [sys.executable, "-m", "mailgate.api"]


@dataclass(frozen=True)
class ServedProcess:
    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def served_process(env: dict[str, str], log_path: Path) -> Iterator[ServedProcess]:
    """``mailgate serve`` in its own process with ``env``, once it answers ``/readyz``;
    yields its base URL and process, its output going to ``log_path``; stopped afterwards."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*MAILGATE, "serve", "--port", str(port)], env=env, stdout=log, stderr=log
        )
    base = f"http://{LOOPBACK}:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mailgate serve did not come up:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield ServedProcess(base, process)
    finally:
        process.terminate()
        process.wait(timeout=30)
