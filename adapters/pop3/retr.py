"""Fast RETR: pipelined commands (RFC 2449 PIPELINING) and a buffer-level reader.

poplib reads a message line by line in Python, and waits a round trip per message; a
maildrop of 10,000 small messages spends most of its time there. Here a window of RETR
commands goes out at once and each answer is cut from the stream at its terminating
``CRLF.CRLF`` with byte searches; dot-stuffing is undone the same way (RFC 1939 section 3).
The bytes kept are the message as the server sent it.
"""

from __future__ import annotations

import poplib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext

_END = b"\r\n.\r\n"
READ_SIZE = 256 * 1024


def supports_pipelining(client: poplib.POP3) -> bool:
    try:
        return "PIPELINING" in client.capa()
    except poplib.error_proto:
        return False


def unstuff(body: bytes) -> bytes:
    """Undo dot-stuffing: a line starting with '.' was sent with one more '.'."""
    if body.startswith(b".."):
        body = body[1:]
    return body.replace(b"\r\n..", b"\r\n.")


class _Stream:
    """Reads the server's answers from poplib's own buffered file, so nothing is lost."""

    def __init__(self, client: poplib.POP3) -> None:
        self.file = client.file
        self.buffer = bytearray()

    def _fill(self) -> None:
        chunk = self.file.read1(READ_SIZE)  # type: ignore[attr-defined]  # typeshed: BinaryIO; poplib's is a BufferedReader
        if not chunk:
            raise poplib.error_proto("-ERR connection closed during RETR")
        self.buffer += chunk

    def answer(self) -> bytes:
        """One RETR answer: the message bytes, or error_proto for -ERR."""
        while (eol := self.buffer.find(b"\r\n")) < 0:
            self._fill()
        status = bytes(self.buffer[:eol])
        if not status.startswith(b"+OK"):
            del self.buffer[: eol + 2]
            raise poplib.error_proto(status)
        start = eol + 2
        if self.buffer[start : start + 3] == b".\r\n":  # an empty message
            del self.buffer[: start + 3]
            return b""
        search_from = start
        while (end := self.buffer.find(_END, search_from)) < 0:
            search_from = max(start, len(self.buffer) - len(_END) + 1)
            self._fill()
        body = bytes(self.buffer[start : end + 2])
        del self.buffer[: end + len(_END)]
        return unstuff(body)


def retr_many(
    client: poplib.POP3,
    numbers: list[int],
    window: int = 64,
    deadline: Callable[[str], AbstractContextManager[None]] | None = None,
) -> Iterator[tuple[int, bytes]]:
    """(number, raw bytes) for each message number, in order; ``window`` RETRs in flight
    (1 where the server does not announce PIPELINING). ``deadline("RETR")`` is entered
    around the reading of each answer (adapters._net.CommandDeadlines), not around what the
    caller does with it."""
    stream = _Stream(client)
    sock = client.sock
    within = deadline or (lambda _command: nullcontext())
    for first in range(0, len(numbers), window):
        batch = numbers[first : first + window]
        sock.sendall(b"".join(b"RETR %d\r\n" % n for n in batch))
        for number in batch:
            with within("RETR"):
                raw = stream.answer()
            yield number, raw
