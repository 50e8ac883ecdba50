"""Real local receivers for channel tests: an HTTP server (webhook, Slack, PagerDuty and
apprise's json:// all POST to it) and an SMTP server (aiosmtpd), both on 127.0.0.1.

Each records what arrived and can be told how to answer the next requests: an HTTP status
(with body, headers and a delay) per path, or an SMTP reply to the next DATA.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from apiwatch.alerting.model import AlertNotice, AlertState, DecisionReason, Notification
from apiwatch.domain import Severity


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    # Set when this reply's request arrives; the reply waits for `wait` before answering.
    arrived: asyncio.Event | None = None
    wait: asyncio.Event | None = None


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class HttpReceiver:
    """Answers every path; scripted replies per path are used up in order, then `default`."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._scripts: dict[str, deque[Reply]] = {}
        self.defaults: dict[str, Reply] = {}
        self._runner: web.AppRunner | None = None
        self.base = ""

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def script(self, path: str, *replies: Reply | int) -> None:
        queue = self._scripts.setdefault(path, deque())
        queue.extend(
            r if isinstance(r, Reply) else Reply(status=r, body=f"status {r}") for r in replies
        )

    def at(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            Request(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=dict(request.headers),
                body=await request.read(),
            )
        )
        queue = self._scripts.get(request.path)
        reply = queue.popleft() if queue else self.defaults.get(request.path, Reply())
        if reply.arrived is not None:
            reply.arrived.set()
        if reply.wait is not None:
            await reply.wait.wait()
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        return web.Response(status=reply.status, text=reply.body, headers=reply.headers)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # No access log: it is the test server's, and would print the paths (tokens) we check for.
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def free_port() -> int:
    """A port nobody listens on right now (aiosmtpd's Controller cannot bind port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpHandler:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.data_replies: deque[str] = deque()
        self.rcpt_replies: deque[str] = deque()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_replies:
            return self.rcpt_replies.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_replies:
            return self.data_replies.popleft()
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.content, policy=default_policy))  # type: ignore[arg-type]
        return "250 OK"


class SmtpReceiver:
    """aiosmtpd on 127.0.0.1; with `credentials`, AUTH is offered without TLS (loopback only),
    and `logins` records who authenticated."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.handler = SmtpHandler()
        self.credentials = credentials
        self.logins: list[str] = []
        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if credentials is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        self._controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, ready_timeout=5, **kwargs
        )

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword) or self.credentials is None:
            return AuthResult(success=False, handled=False)
        ok = (auth_data.login.decode(), auth_data.password.decode()) == self.credentials
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages

    def reply_next_data(self, *replies: str) -> None:
        self.handler.data_replies.extend(replies)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def notification(
    *,
    state: AlertState = AlertState.FIRING,
    severity: Severity = Severity.CRITICAL,
    alerts: int = 2,
    provider: str = "coingecko",
    report: str | None = "CoinGecko answers 503 since 12:00; nothing to do on our side.",
) -> Notification:
    notices = tuple(
        AlertNotice(
            rule="status_offline" if i == 0 else "error_rate",
            severity=severity,
            state=state,
            message=f"{provider} alert {i}: 3 consecutive failures <server_error> & more",
            fired_at=T0 + timedelta(seconds=i),
            fingerprint=f"fp-{provider}-{i}",
            provider=provider,
            category="market_data",
            alert_id=100 + i,
            resolved_at=T0 + timedelta(minutes=5) if state is AlertState.RESOLVED else None,
            suggested_action="Wait for the provider; fail over to the secondary"
            if i == 0
            else None,
            labels={"endpoint": "ping", "since": T0},
        )
        for i in range(alerts)
    )
    return Notification(
        group_key=f"{provider}:{severity.value}",
        severity=severity,
        state=state,
        alerts=notices,
        reason=DecisionReason.RESOLVED
        if state is AlertState.RESOLVED
        else DecisionReason.FIRST_NOTIFICATION,
        title=f"{provider} is offline",
        provider=provider,
        category="market_data",
        report=report,
    )
