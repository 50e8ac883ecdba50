"""LLM triage against a local OpenAI-compatible server: a report when it answers, None (never
an exception) when it is slow, failing, unauthorized or talking nonsense; the key never logged."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from apiwatch.alerting.llm import completions_url, llm_report
from apiwatch.alerting.model import AlertNotice, AlertState
from apiwatch.domain import Severity

KEY = "sk-test-SECRET-0123456789"
REPORT = "What: coingecko is rate limiting us.\nCause: burst of polls.\nDo: slow down."


@dataclass
class FakeLLM:
    url: str = ""
    mode: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body, "path": request.path})
        if self.mode == "slow":
            await self.release.wait()
        if self.mode == "500":
            return web.json_response({"error": {"message": "boom"}}, status=500)
        if self.mode == "401":
            return web.json_response({"error": {"message": "invalid api key"}}, status=401)
        if self.mode == "garbage":
            return web.Response(text="<html>not json</html>", content_type="text/html")
        if self.mode == "no_choices":
            return web.json_response({"object": "chat.completion", "choices": []})
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": f"  {REPORT}  "},
                        "finish_reason": "stop",
                    }
                ],
            }
        )


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    fake = FakeLLM()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield fake
    finally:
        fake.release.set()
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


def _notices() -> list[AlertNotice]:
    return [
        AlertNotice(
            rule="error_rate",
            severity=Severity.CRITICAL,
            state=AlertState.FIRING,
            message="coingecko: error rate 100% over the last 20 results",
            fired_at=datetime(2025, 1, 1, tzinfo=UTC),
            fingerprint="error_rate:coingecko:critical",
            provider="coingecko",
            category="market_data",
            suggested_action="Wait for the reset time.",
            labels={"outcome": "rate_limited"},
        )
    ]


async def _report(
    llm: FakeLLM, session: aiohttp.ClientSession, *, timeout_s: float = 5.0, url: str = ""
) -> str | None:
    return await llm_report(
        _notices(),
        url=url or llm.url,
        key=KEY,
        model="tiny-model",
        timeout_s=timeout_s,
        session=session,
    )


def test_base_url_gets_the_chat_completions_path_and_a_full_url_is_kept() -> None:
    assert completions_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"
    assert completions_url("http://h:1/v1/chat/completions") == "http://h:1/v1/chat/completions"


async def test_answer_becomes_the_report(llm: FakeLLM, session: aiohttp.ClientSession) -> None:
    assert await _report(llm, session) == REPORT
    [request] = llm.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert request["body"]["model"] == "tiny-model"
    roles = [m["role"] for m in request["body"]["messages"]]
    assert roles == ["system", "user"]
    prompt = request["body"]["messages"][1]["content"]
    assert "error rate 100%" in prompt and "failure=rate_limited" in prompt


async def test_full_completions_url_is_used_as_given(
    llm: FakeLLM, session: aiohttp.ClientSession
) -> None:
    assert await _report(llm, session, url=f"{llm.url}/chat/completions") == REPORT


@pytest.mark.parametrize("mode", ["500", "401", "garbage", "no_choices"])
async def test_failing_answers_give_none_and_never_log_the_key(
    llm: FakeLLM, session: aiohttp.ClientSession, mode: str
) -> None:
    llm.mode = mode
    with capture_logs() as logs:
        assert await _report(llm, session) is None
    assert logs, "a failed LLM call is logged"
    assert KEY not in json.dumps(logs, default=str)


async def test_slow_server_gives_none_at_the_timeout(
    llm: FakeLLM, session: aiohttp.ClientSession
) -> None:
    llm.mode = "slow"
    with capture_logs() as logs:
        assert await _report(llm, session, timeout_s=0.2) is None
    assert logs[0]["kind"] == "timeout"
    assert KEY not in json.dumps(logs, default=str)


async def test_unreachable_server_gives_none(session: aiohttp.ClientSession) -> None:
    # A port nothing listens on: bind one, then close it.
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    with capture_logs() as logs:
        answer = await llm_report(
            _notices(),
            url=f"http://127.0.0.1:{port}/v1",
            key=KEY,
            model="m",
            timeout_s=2,
            session=session,
        )
    assert answer is None
    assert KEY not in json.dumps(logs, default=str)


async def test_nothing_is_asked_without_url_model_or_alerts(
    llm: FakeLLM, session: aiohttp.ClientSession
) -> None:
    assert (
        await llm_report([], url=llm.url, key=KEY, model="m", timeout_s=1, session=session) is None
    )
    assert (
        await llm_report(_notices(), url=llm.url, key=KEY, model=None, timeout_s=1, session=session)
        is None
    )
    assert llm.requests == []


async def test_no_key_sends_no_authorization_header(
    llm: FakeLLM, session: aiohttp.ClientSession
) -> None:
    answer = await llm_report(
        _notices(), url=llm.url, key=None, model="local", timeout_s=5, session=session
    )
    assert answer == REPORT
    assert "Authorization" not in llm.requests[0]["headers"]
