"""The FastAPI app factory: middleware, problem handlers, routers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from mailgate.api.deps import json_bodies_only
from mailgate.api.document import build_openapi, operation_id
from mailgate.api.idempotency import REPLAYED_HEADER, IdempotencyMiddleware
from mailgate.api.limits import Limits
from mailgate.api.middleware import (
    RATE_LIMIT_HEADERS,
    BodySizeLimitMiddleware,
    RateLimitHeadersMiddleware,
    RequestContextMiddleware,
)
from mailgate.api.multipart import FRAMING_BYTES
from mailgate.api.problems import install_problem_handlers
from mailgate.api.routes import (
    accounts,
    changes,
    events,
    folders,
    health,
    keys,
    messages,
    metrics,
    oauth2,
    sending,
    uploads,
    webhooks,
)
from mailgate.api.schemas.common import problem_responses
from mailgate.api.schemas.events import document_webhooks
from mailgate.events.dispatcher import Dispatcher
from mailgate.events.poller import MailPoller
from mailgate.events.reaper import PoolReaper
from mailgate.events.sender import Sender
from mailgate.events.watchers import ImapWatchers
from mailgate.gateway.access import Access
from mailgate.gateway.context import Gateway

API_VERSION = "1.0.0"


def create_app(gateway: Gateway, background: bool = False) -> FastAPI:
    """Build the app around an already migrated :class:`Gateway`; ``background`` starts the
    POP3 poller and the webhook dispatcher with the app (``mailgate serve`` does; tests
    drive them themselves)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if not background:
            yield
            return
        settings = gateway.settings
        poller = MailPoller(gateway, max(settings.pop3_sync_interval, 1.0), kept_state_only=True)
        watchers = ImapWatchers(gateway, settings.imap_poll_interval)
        dispatcher = Dispatcher(gateway)
        tasks = [
            asyncio.create_task(poller.run_forever()),
            asyncio.create_task(watchers.run_forever()),
            asyncio.create_task(dispatcher.run_forever(interval=1.0)),
            asyncio.create_task(PoolReaper(gateway).run_forever()),
        ]
        sender = Sender(gateway)
        if settings.send_worker:
            tasks.append(asyncio.create_task(sender.run_forever()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            poller.close()
            await asyncio.get_running_loop().run_in_executor(None, watchers.close)
            await asyncio.get_running_loop().run_in_executor(None, dispatcher.close)
            await asyncio.get_running_loop().run_in_executor(None, sender.close)

    app = FastAPI(
        lifespan=lifespan,
        title="Mailgate",
        version=API_VERSION,
        summary="One JSON API for IMAP and POP3 mailboxes: messages, folders, flags, webhooks.",
        openapi_url="/openapi.json",
        responses=problem_responses(500),
        generate_unique_id_function=operation_id,
        dependencies=[Depends(json_bodies_only)],
    )
    app.state.gateway = gateway
    app.state.access = Access(gateway)
    app.state.limits = Limits(
        gateway.settings.max_requests_per_tenant, gateway.settings.max_requests_per_account
    )
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(accounts.router)
    app.include_router(folders.router)
    app.include_router(messages.router)
    app.include_router(webhooks.router)
    app.include_router(changes.router)
    app.include_router(events.router)
    app.include_router(oauth2.router)
    app.include_router(sending.drafts_router)
    app.include_router(sending.router)
    app.include_router(uploads.router)
    app.include_router(keys.router)
    document_webhooks(app)
    settings = gateway.settings
    # Inside the body size limit (a replay's body is hashed through it) and the request
    # context (ids, logs and the last-resort 500 wrap it); CORS answers preflights first.
    app.add_middleware(IdempotencyMiddleware, gateway=gateway, access=app.state.access)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        larger={uploads.UPLOAD_PATH: settings.max_upload_bytes + FRAMING_BYTES},
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "X-Request-ID",
                "Last-Event-ID",
                "Idempotency-Key",
            ],
            expose_headers=["X-Request-ID", "Retry-After", REPLAYED_HEADER, *RATE_LIMIT_HEADERS],
            max_age=600,
        )
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware, metrics=gateway.metrics)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]  # FastAPI's documented way to customise the schema
    return app
