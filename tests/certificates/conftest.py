"""Local TLS servers on 127.0.0.1 with certificates made here: one test CA (trustme) for
the valid, soon-expiring, expired and wrong-host certificates, and a self-signed one made
with `cryptography`. Each server answers every path with `{}`."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

KINDS = ("valid", "expiring", "expired", "wrong_host", "self_signed")


@dataclass
class TlsServer:
    url: str
    port: int
    # When the served leaf expires; what a reading must find.
    not_after: datetime


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def _self_signed(tmp_path: Path, not_after: datetime) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self-signed test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - timedelta(days=1))
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "self.pem", tmp_path / "self.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_context(kind: str, ca: trustme.CA, tmp_path: Path) -> tuple[ssl.SSLContext, datetime]:
    """The server side of `kind`, and when its leaf expires (whole seconds, as in a cert)."""
    now = datetime.now(UTC).replace(microsecond=0)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if kind == "self_signed":
        not_after = now + timedelta(days=90)
        cert_path, key_path = _self_signed(tmp_path, not_after)
        context.load_cert_chain(str(cert_path), str(key_path))
        return context, not_after
    not_before = now - timedelta(days=30)
    not_after = {
        "valid": now + timedelta(days=90),
        "expiring": now + timedelta(days=5),
        "expired": now - timedelta(days=1),
        "wrong_host": now + timedelta(days=60),
    }[kind]
    names = ["wrong.example"] if kind == "wrong_host" else ["127.0.0.1", "localhost"]
    leaf = ca.issue_cert(*names, not_before=not_before, not_after=not_after)
    leaf.configure_cert(context)
    return context, not_after


ServeTls = Callable[[str], AbstractAsyncContextManager[TlsServer]]


@pytest.fixture
def serve_tls(ca: trustme.CA, tmp_path: Path) -> ServeTls:
    """`async with serve_tls("expiring") as server:` an HTTPS server on a free port."""

    @asynccontextmanager
    async def serve(kind: str) -> AsyncIterator[TlsServer]:
        context, not_after = server_context(kind, ca, tmp_path)

        async def answer(request: web.Request) -> web.Response:
            return web.json_response({})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            yield TlsServer(f"https://127.0.0.1:{port}", port, not_after)
        finally:
            await runner.cleanup()

    return serve


def write_provider(directory: Path, provider_id: str, base_url: str) -> None:
    """A keyless provider whose base URL is a local TLS server (no upstream override)."""
    directory.mkdir(exist_ok=True)
    (directory / f"{provider_id}.yaml").write_text(
        f"id: {provider_id}\n"
        f"name: {provider_id}\n"
        "category: sentiment\n"
        f"base_url: {base_url}\n"
        "auth: {in: none}\n"
        "health:\n"
        "  path: /health\n"
    )
