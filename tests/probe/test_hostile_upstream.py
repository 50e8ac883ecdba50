"""What a hostile or broken upstream sends never crashes a probe, leaks a key or blocks storage.

A small aiohttp server on 127.0.0.1 plays the upstream with bodies the simulator has no
scenario for: echoes of the request, NUL bytes, lone surrogates, deep nesting, redirects.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from apiwatch.budget.keys import Key, KeyPool
from apiwatch.catalogue.loader import load_catalogue
from apiwatch.domain import Outcome
from apiwatch.probe.client import create_session
from apiwatch.probe.engine import ProbeEngine
from apiwatch.storage.db import create_engine, create_sessionmaker
from apiwatch.storage.recorder import Recorder
from apiwatch.storage.repositories import attempts

CATALOGUE = load_catalogue()
KEY = "k+y/with=special&chars-0123456789"

Handler = Callable[[web.Request], web.StreamResponse]


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[str, dict[str, Handler], list[web.Request]]]:
    """(base URL, handlers by path, requests seen); tests put handlers in the dict."""
    handlers: dict[str, Handler] = {}
    seen: list[web.Request] = []

    async def dispatch(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        return await handlers[request.path](request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", dispatch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", handlers, seen
    finally:
        await runner.cleanup()


async def probe(base: str, provider: str, endpoint: str = "health") -> list:
    spec = CATALOGUE.providers[provider]
    keys = {provider: KeyPool(provider, [Key(name, KEY) for name in spec.auth.keys])}
    async with create_session() as http:
        engine = ProbeEngine(session=http, keys=keys, upstream_override=base)
        return await engine.probe(spec, endpoint)


async def test_url_encoded_key_echoed_back_is_redacted(upstream) -> None:
    base, handlers, _ = upstream

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"message": f"bad request: {request.url}"}, status=400)

    handlers["/etherscan/v2/api"] = echo
    [result] = await probe(base, "etherscan")
    assert result.outcome is Outcome.CLIENT_ERROR
    assert "apikey=***" in result.reason
    assert "0123456789" not in result.reason and "special" not in result.reason


async def test_redirect_is_not_followed_so_header_keys_stay_home(upstream) -> None:
    base, handlers, seen = upstream

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://localhost:9/steal?x=1")

    handlers["/coinmarketcap/v1/key/info"] = redirect
    [result] = await probe(base, "coinmarketcap")
    assert (result.outcome, result.status_code) == (Outcome.CLIENT_ERROR, 302)
    assert "redirect to http://localhost:9/steal, not followed" in result.reason
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
    ],
)
async def test_unusable_json_is_invalid_payload_not_a_crash(
    upstream, body: bytes, says: str
) -> None:
    base, handlers, _ = upstream

    async def send(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    handlers["/binance/api/v3/ping"] = send
    results = await probe(base, "binance")
    assert [r.outcome for r in results] == [Outcome.INVALID_PAYLOAD]
    assert says in results[0].reason


async def test_oversized_error_page_is_classified_by_its_status(upstream) -> None:
    base, handlers, _ = upstream

    async def huge_429(request: web.Request) -> web.Response:
        return web.Response(status=429, body=b"x" * (3 * 1024 * 1024), headers={"Retry-After": "7"})

    handlers["/binance/api/v3/ping"] = huge_429
    [result] = await probe(base, "binance")
    assert (result.outcome, result.retry_after_s) == (Outcome.RATE_LIMITED, 7.0)


async def test_nul_and_lone_surrogates_are_cleaned_and_stored(
    upstream, migrated_db_url: str
) -> None:
    base, handlers, _ = upstream

    async def nasty(request: web.Request) -> web.Response:
        text = json.dumps({"message": "bad \u0000 byte and \ud800 surrogate"})
        return web.Response(status=400, text=text, content_type="application/json")

    handlers["/binance/api/v3/ping"] = nasty
    [result] = await probe(base, "binance")
    assert result.outcome is Outcome.CLIENT_ERROR
    assert "\x00" not in result.reason
    result.reason.encode("utf-8")  # would raise on a lone surrogate
    engine = create_engine(migrated_db_url)
    try:
        recorder = Recorder(create_sessionmaker(engine), flush_interval_s=0.01)
        await recorder.start()
        recorder.record(result)
        await recorder.stop()
        assert (recorder.written, recorder.rejected) == (1, 0)
        async with create_sessionmaker(engine)() as session:
            rows, _ = await attempts.list_attempts(session, provider="binance")
        assert any("surrogate" in row["reason"] for row in rows)
    finally:
        await engine.dispose()


def guarded(http, base: str, provider: str) -> ProbeEngine:
    from apiwatch.budget.gate import BudgetGate
    from apiwatch.probe.breaker import CircuitBreaker
    from apiwatch.probe.guard import ProbeGuard

    spec = CATALOGUE.providers[provider]
    keys = {provider: KeyPool(provider, [Key(n, f"{n}-0123456789abcdef") for n in spec.auth.keys])}
    guard = ProbeGuard(
        gate=BudgetGate({provider: spec.rate_limits.windows()}), breaker=CircuitBreaker(), keys=keys
    )
    return ProbeEngine(session=http, keys=keys, upstream_override=base, guard=guard)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-MBX-USED-WEIGHT-1M": "-3"},
        {"Retry-After": "1e14"},
        {"X-Bapi-Limit": "0", "X-Bapi-Limit-Status": "5"},
    ],
)
async def test_absurd_rate_limit_headers_never_crash_a_probe(upstream, headers: dict) -> None:
    base, handlers, _ = upstream

    async def ping(request: web.Request) -> web.Response:
        return web.json_response({}, headers=headers)

    handlers["/binance/api/v3/ping"] = ping
    async with create_session() as http:
        engine = guarded(http, base, "binance")
        [result] = await engine.probe(CATALOGUE.providers["binance"], "health")
        [again] = await engine.probe(CATALOGUE.providers["binance"], "health")
    assert result.outcome is Outcome.OK
    assert again.outcome is Outcome.OK  # and the bad figure did not block the provider


async def test_retry_after_on_one_key_rotates_to_the_backup_instead_of_blocking(upstream) -> None:
    base, handlers, _ = upstream

    async def key_info(request: web.Request) -> web.Response:
        if request.headers.get("X-CMC_PRO_API_KEY", "").startswith("COINMARKETCAP_KEY_1"):
            return web.json_response(
                {"status": {"error_code": 1008, "error_message": "minute limit"}},
                status=429,
                headers={"Retry-After": "30"},
            )
        return web.json_response({"status": {"error_code": 0}, "data": {}})

    handlers["/coinmarketcap/v1/key/info"] = key_info
    async with create_session() as http:
        engine = guarded(http, base, "coinmarketcap")
        [first] = await engine.probe(CATALOGUE.providers["coinmarketcap"], "health")
        [second] = await engine.probe(CATALOGUE.providers["coinmarketcap"], "health")
    assert (first.outcome, first.retry_after_s) == (Outcome.RATE_LIMITED, 30.0)
    assert second.outcome is Outcome.OK
    assert second.key_label is not None and second.key_label.startswith("COINMARKETCAP_KEY_2=")


# -- protocol violations after the status line, from a raw socket ---------------------------

Reply = list[bytes | float]  # bytes to send, or seconds to wait before the next part


@pytest.fixture
async def raw_upstream() -> AsyncIterator[tuple[str, list[Reply]]]:
    """(base URL, replies): a plain asyncio socket server on 127.0.0.1 that answers each
    request, on any connection, with the next reply, sent byte for byte as given; no HTTP
    library in between to tidy what it sends. A connection stays open for the next
    request until a reply ends with b"" (then it is closed)."""
    replies: list[Reply] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while replies:
                await reader.readuntil(b"\r\n\r\n")
                reply = replies.pop(0)
                for part in reply:
                    if isinstance(part, float):
                        await asyncio.sleep(part)
                    else:
                        writer.write(part)
                        await writer.drain()
                if reply and reply[-1] == b"":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", replies
    finally:
        server.close()
        await server.wait_closed()


CHUNKED_200 = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
)


@pytest.mark.parametrize(
    ("reply", "status", "says"),
    [
        ([CHUNKED_200 + b"ZZZ\r\n{}\r\n0\r\n\r\n", b""], 200, "chunk size"),
        # The first chunk is fine; the next packet breaks the chunking.
        ([CHUNKED_200 + b"2\r\n{}\r\n", 0.2, b"ZZZ\r\nxx\r\n0\r\n\r\n", b""], 200, "chunk size"),
        (
            [
                b"HTTP/1.1 503 Service Unavailable\r\nBad Header Without Colon\r\n"
                b"Content-Length: 2\r\n\r\n{}",
                b"",
            ],
            503,
            "header",
        ),
        (
            [
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 2\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                b"",
            ],
            502,
            "Transfer-Encoding",
        ),
        # A status line without a reason phrase.
        ([b"HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n", b""], 200, "chunk size"),
    ],
    ids=[
        "200-broken-chunk",
        "200-broken-later-chunk",
        "503-bad-header",
        "502-cl-and-te",
        "200-bare",
    ],
)
async def test_a_protocol_violation_keeps_the_status_the_upstream_sent(
    raw_upstream, migrated_db_url: str, reply: Reply, status: int, says: str
) -> None:
    base, replies = raw_upstream
    replies.append(reply)
    [result] = await probe(base, "binance")
    assert result.outcome is Outcome.INVALID_PAYLOAD, result
    assert "malformed HTTP response" in result.reason and says in result.reason
    assert result.status_code == status
    # Told at once: a broken later packet used to leave the body waiting for the timeout.
    assert result.latency_ms < 2000, result.latency_ms
    engine = create_engine(migrated_db_url)
    try:
        recorder = Recorder(create_sessionmaker(engine), flush_interval_s=0.01)
        await recorder.start()
        recorder.record(result)
        await recorder.stop()
        async with create_sessionmaker(engine)() as session:
            rows, _ = await attempts.list_attempts(session, provider="binance", limit=1)
        assert (rows[0]["status_code"], rows[0]["outcome"]) == (status, "invalid_payload")
    finally:
        await engine.dispose()


async def test_a_reused_connection_never_lends_the_last_status_to_the_next_response(
    raw_upstream,
) -> None:
    base, replies = raw_upstream
    replies += [
        [b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"],
        [b"HTTP/1.1 503 Service Unavailable\r\nNo Colon Here\r\n\r\n", b""],
    ]
    spec = CATALOGUE.providers["binance"]
    keys = {"binance": KeyPool("binance", [Key(name, KEY) for name in spec.auth.keys])}
    async with create_session() as http:
        engine = ProbeEngine(session=http, keys=keys, upstream_override=base)
        [ok] = await engine.probe(spec, "health")
        [broken] = await engine.probe(spec, "health")  # on the same kept-alive connection
        replies.append([b"SPLAT/9 what is this\r\n\r\n", b""])
        [garbage] = await engine.probe(spec, "health")
    assert (ok.outcome, ok.status_code) == (Outcome.OK, 200)
    assert (broken.outcome, broken.status_code) == (Outcome.INVALID_PAYLOAD, 503)
    # No status line at all: no status, rather than the one before.
    assert garbage.outcome is Outcome.INVALID_PAYLOAD
    assert garbage.status_code is None
