"""Submission over SMTP (RFC 6409): connect with the endpoint's security, EHLO, STARTTLS,
AUTH (the password, or the account's OAuth2 token by SASL OAUTHBEARER/XOAUTH2), then one
message.

A message is sent as MAIL, RCPT for each recipient, and DATA written by hand so that
``before_final_dot`` runs after the content and before the terminating ``.``: the caller
records there that the server may now accept it, so a crash after that point is never
followed by a second send (the server either has the message or dropped it with the
connection, RFC 5321 section 4.1.1.4).
"""

from __future__ import annotations

import base64
import contextlib
import smtplib
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from mailgate.adapters import sasl
from mailgate.adapters._net import connect_checked, network_errors, set_nodelay
from mailgate.domain.addresses import Resolver
from mailgate.domain.endpoint import MailboxEndpoint
from mailgate.domain.errors import MailboxAuthFailed, MailboxProtocolError, MailboxTLSError


class SmtpRefused(Exception):
    """The server refused the message (or every recipient): ``code`` 4xx is worth another
    try later, 5xx is final."""

    def __init__(self, code: int, words: str) -> None:
        super().__init__(f"{code} {words}")
        self.code, self.words = code, words

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500


@dataclass
class Accepted:
    code: int
    words: str
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)  # recipients refused


def open_smtp(endpoint: MailboxEndpoint, resolver: Resolver = socket.getaddrinfo) -> smtplib.SMTP:
    """A logged-in submission session, or the mailbox errors a login raises."""
    with network_errors(endpoint.host, endpoint.port):
        client = connect_checked(endpoint, lambda address: _connect(endpoint, address), resolver)
        try:
            if client.sock is not None:
                client.sock.settimeout(endpoint.read_timeout)
                set_nodelay(client.sock)
            client.ehlo()
            if endpoint.security == "starttls":
                if not client.has_extn("starttls"):
                    raise MailboxTLSError(
                        f"{endpoint.host}:{endpoint.port} does not offer STARTTLS"
                    )
                client.starttls(context=endpoint.ssl_context())
                client.ehlo()
            _login(client, endpoint)
        except BaseException:
            close_quietly(client)
            raise
    return client


def send(
    client: smtplib.SMTP,
    sender: str,
    recipients: list[str],
    content: bytes,
    before_final_dot: Callable[[], None],
) -> Accepted:
    """One message; raises SmtpRefused when the server takes none of it.

    Where the server offers PIPELINING (RFC 2920) MAIL, every RCPT and DATA go out in one
    write and their answers are read in order: one round trip instead of two plus one per
    recipient."""
    if client.has_extn("pipelining") and (sender + "".join(recipients)).isascii():
        mail, rcpts, data = _pipelined(client, sender, recipients)
    else:
        mail, rcpts, data = _one_by_one(client, sender, recipients)
    refused = {
        r: answer
        for r, answer in zip(recipients, rcpts, strict=True)
        if answer[0] not in (250, 251)
    }
    if mail[0] != 250 or len(refused) == len(recipients):
        if data[0] == 354:  # a server that said go ahead anyway gets an empty message
            client.send(b".\r\n")
            client.getreply()
        client.rset()  # end what MAIL began
        if mail[0] != 250:
            raise SmtpRefused(mail[0], mail[1])
        worst = max(refused.values(), key=lambda answer: answer[0])  # a 5xx over a 4xx
        raise SmtpRefused(worst[0], "; ".join(f"{r}: {c} {w}" for r, (c, w) in refused.items()))
    if data[0] != 354:
        raise SmtpRefused(*data)
    body = smtplib.quotedata(content.decode("latin-1")).encode("latin-1")  # dot-stuffing
    client.send(body if body.endswith(b"\r\n") else body + b"\r\n")
    before_final_dot()
    client.send(b".\r\n")
    code, words = client.getreply()
    if code != 250:
        raise SmtpRefused(code, _text(words))
    return Accepted(code, _text(words), refused)


Answer = tuple[int, str]
_NOT_SENT: Answer = (0, "")


def _one_by_one(
    client: smtplib.SMTP, sender: str, recipients: list[str]
) -> tuple[Answer, list[Answer], Answer]:
    code, words = client.mail(sender)
    if code != 250:
        return (code, _text(words)), [], _NOT_SENT
    rcpts = [(code, _text(words)) for code, words in (client.rcpt(r) for r in recipients)]
    if all(code not in (250, 251) for code, _ in rcpts):
        return (250, ""), rcpts, _NOT_SENT
    code, words = client.docmd("DATA")
    return (250, ""), rcpts, (code, _text(words))


def _pipelined(
    client: smtplib.SMTP, sender: str, recipients: list[str]
) -> tuple[Answer, list[Answer], Answer]:
    commands = [f"MAIL FROM:{smtplib.quoteaddr(sender)}"]
    commands += [f"RCPT TO:{smtplib.quoteaddr(recipient)}" for recipient in recipients]
    commands.append("DATA")
    client.send("".join(command + "\r\n" for command in commands).encode("ascii"))
    answers = [(code, _text(words)) for code, words in (client.getreply() for _ in commands)]
    return answers[0], answers[1:-1], answers[-1]


def close_quietly(client: smtplib.SMTP) -> None:
    with contextlib.suppress(Exception):  # the session is being abandoned anyway
        client.quit()
    with contextlib.suppress(Exception):
        client.close()


def _connect(endpoint: MailboxEndpoint, address: str) -> smtplib.SMTP:
    try:
        if endpoint.security == "tls":  # the context checks the certificate against the name
            return smtplib.SMTP_SSL(
                address,
                endpoint.port,
                local_hostname=_EHLO_NAME,
                timeout=endpoint.connect_timeout,
                context=endpoint.ssl_context(),
            )
        return smtplib.SMTP(
            address, endpoint.port, local_hostname=_EHLO_NAME, timeout=endpoint.connect_timeout
        )
    except smtplib.SMTPConnectError as exc:
        raise MailboxProtocolError(
            f"{endpoint.host}:{endpoint.port} does not greet as an SMTP server: "
            f"{exc.smtp_code} {_text(exc.smtp_error)}"
        ) from exc
    except smtplib.SMTPServerDisconnected as exc:
        raise MailboxProtocolError(
            f"{endpoint.host}:{endpoint.port} closed the connection instead of greeting"
        ) from exc


# smtplib would ask DNS for this host's FQDN (socket.getfqdn), which can hang for seconds
_EHLO_NAME = socket.gethostname() or "localhost"


def _login(client: smtplib.SMTP, endpoint: MailboxEndpoint) -> None:
    """AUTH with the password (PLAIN first: smtplib's fallback to LOGIN costs a refused
    second try), or with the OAuth2 token."""
    if not client.has_extn("auth"):
        raise MailboxAuthFailed(f"{endpoint.host}:{endpoint.port} offers no AUTH")
    offered = set((client.esmtp_features.get("auth") or "").upper().split())
    try:
        if endpoint.token is not None:
            sasl.log_in(
                endpoint,
                offered,
                lambda mechanism, first, ack: _auth(client, mechanism, first, ack),
                smtplib.SMTPAuthenticationError,
            )
        else:
            mechanism = "PLAIN" if "PLAIN" in offered or not offered else "LOGIN"
            client.user, client.password = endpoint.username, endpoint.password
            authobject = client.auth_plain if mechanism == "PLAIN" else client.auth_login
            client.auth(mechanism, authobject, initial_response_ok=True)
    except smtplib.SMTPAuthenticationError as exc:
        raise MailboxAuthFailed(f"{exc.smtp_code} {_text(exc.smtp_error)}") from exc


def _auth(client: smtplib.SMTP, mechanism: str, first: bytes, acknowledgement: bytes) -> None:
    """SASL with an initial response; the error challenge (334) gets ``acknowledgement``."""
    code, words = client.docmd("AUTH", f"{mechanism} {base64.b64encode(first).decode('ascii')}")
    if code == 334:
        challenge = base64.b64decode(words or b"", validate=False)
        code, words = client.docmd(base64.b64encode(acknowledgement).decode("ascii"))
        words = words + f" ({sasl.describe_challenge(challenge)})".encode()
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, words)


def _text(words: bytes | str) -> str:
    text = words.decode("utf-8", "replace") if isinstance(words, bytes) else str(words)
    return " ".join(text.split())[:500]
