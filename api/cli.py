"""The `mailgate` command: serve, migrate, keys, openapi."""

from __future__ import annotations

import gc
from types import FrameType
from typing import Annotated

import typer

from mailgate.gateway.context import Gateway
from mailgate.gateway.crypto import SecretKeyError
from mailgate.gateway.logs import configure_logging
from mailgate.gateway.settings import get_settings

GRACEFUL_SHUTDOWN_SECONDS = 25


def _draining_server_class() -> type:
    import uvicorn

    from mailgate.gateway import push

    class DrainingServer(uvicorn.Server):
        """On SIGTERM or SIGINT, event streams end at once (they never end by themselves,
        and would hold the shutdown): their clients reconnect to a process that stays."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            push.drain()
            super().handle_exit(sig, frame)

    return DrainingServer


app = typer.Typer(help="Mailgate: a REST API gateway over IMAP and POP3 mailboxes.")
keys_app = typer.Typer(help="API keys and the secret key.")
app.add_typer(keys_app, name="keys")


def _gateway(migrate: bool = True) -> Gateway:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        gateway = Gateway.from_settings(settings)
    except SecretKeyError as exc:
        typer.echo(f"mailgate: {exc}", err=True)
        raise typer.Exit(2) from None
    if migrate:
        gateway.migrate()
    return gateway


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8025,
) -> None:
    """Migrate the database, then serve the API."""
    import uvicorn

    from mailgate.api.app import create_app

    gateway = _gateway()
    config = uvicorn.Config(
        create_app(gateway, background=True),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        # SIGTERM: requests under way may finish within this; what is still open then is cut
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    # What is loaded by now (modules, models, routes: ~200,000 objects) lives as long as the
    # process. Out of the collector's sight, a full collection, which the allocations of
    # requests trigger every few dozen of them, no longer walks it (~0.25 ms a POP3 page).
    gc.collect()
    gc.freeze()
    _draining_server_class()(config).run()


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    _gateway().close()
    typer.echo("database is up to date")


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant name; created if new.")],
    scope: Annotated[
        list[str] | None,
        typer.Option(help="A scope of the key (read, write, send, admin); repeat for more."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
) -> None:
    """Print a new API key for TENANT (an `admin` key unless --scope says otherwise). It is
    shown once; only its hash is stored. Make further keys with `POST /v1/keys`."""
    from mailgate.domain.keys import SCOPES
    from mailgate.gateway.tenants import CLI_KEY_NAME, issue_api_key

    scopes = tuple(dict.fromkeys(scope or ["admin"]))
    unknown = [s for s in scopes if s not in SCOPES]
    if name is not None and not 0 < len(name) <= 200:
        typer.echo("mailgate: --name takes 1 to 200 characters", err=True)
        raise typer.Exit(2)
    if unknown:
        typer.echo(f"mailgate: unknown scope {unknown[0]!r}; one of {', '.join(SCOPES)}", err=True)
        raise typer.Exit(2)
    gateway = _gateway()
    issued = issue_api_key(gateway.engine, tenant, scopes, name or CLI_KEY_NAME)
    gateway.close()
    typer.echo(issued.key)


@keys_app.command("secret")
def keys_secret() -> None:
    """Print a new Fernet key for MAILGATE_SECRET_KEY."""
    from cryptography.fernet import Fernet

    typer.echo(Fernet.generate_key().decode("ascii"))


@app.command()
def openapi() -> None:
    """Print the OpenAPI spec of this version as JSON."""
    from mailgate.api.openapi import openapi_json

    typer.echo(openapi_json(), nl=False)
