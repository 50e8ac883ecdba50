"""Structured logging: one JSON object per line on stderr (or a console renderer for humans).

structlog renders our own events; stdlib loggers (uvicorn, alembic, the recorder) go through
the same formatter, so every line, tracebacks included, has the same shape. Secrets never
reach here: probe reasons are cleaned at the source and keys only travel as masked labels.
"""

from __future__ import annotations

import logging
import re
import sys

import structlog

_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


# A key in a query string (`/ws/live?api_key=...`, the one way a browser can send a key on
# some WebSocket clients) would otherwise reach uvicorn's access and WebSocket log lines.
_QUERY_SECRET = re.compile(r"(?i)((?:^|[?&;])(?:api_key|apikey)=)[^&;\s\"']*")
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def redact_query_secrets(text: str) -> str:
    """`text` with the value of every `api_key=` query parameter replaced by `***`."""
    return _QUERY_SECRET.sub(r"\1***", text)


class QuerySecretFilter(logging.Filter):
    """Rewrites a record's message and arguments so no query-string key survives; it never
    drops a record. Installed on the server's loggers themselves (not on a handler), so it
    holds whatever logging configuration the server runs under."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "=" in record.msg:
            record.msg = redact_query_secrets(record.msg)
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, str) and "=" in a for a in args):
            record.args = tuple(redact_query_secrets(a) if isinstance(a, str) else a for a in args)
        return True


_FILTER = QuerySecretFilter()


def install_redaction() -> None:
    """Put the query-secret filter on uvicorn's loggers (idempotent)."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


# A query parameter whose name says it is a secret (api_key, apikey, token, access_token,
# secret, password, signature, sig): its value is replaced wherever a URL is logged, e.g.
# uvicorn's access log line of a request that sent its key in the query string.
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:[^=&\s\"']*(?:key|token|secret|password|passwd|signature|sig))=)[^&\s\"']*"
)


def redact_urls(text: str) -> str:
    return _SECRET_PARAM.sub(r"\1***", text)


class RedactSecrets(logging.Filter):
    """Masks secret-looking query parameters in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.args:
            message = record.getMessage()  # arguments may be URL objects, not text
            if "=" in message:
                record.msg, record.args = redact_urls(message), ()
        elif isinstance(record.msg, str) and "=" in record.msg:
            record.msg = redact_urls(record.msg)
        return True


def _numeric(level: str) -> int:
    numeric = logging.getLevelName(level.upper())
    return numeric if isinstance(numeric, int) else logging.INFO


class _LibraryFilter(logging.Filter):
    """Other packages' records (aiosqlite, asyncio, httpx, ...) need `level`: at DEBUG a
    database driver would otherwise drown apiwatch's own lines."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level or record.name.split(".", 1)[0] == "apiwatch"


def configure_logging(
    *, level: str = "INFO", json: bool = True, libraries_level: str = "INFO"
) -> None:
    """apiwatch's loggers at `level`; every other package's at `libraries_level` or
    `level`, whichever is higher (so DEBUG means apiwatch's debug lines unless asked)."""
    numeric = _numeric(level)
    renderer = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(RedactSecrets())
    handler.addFilter(_LibraryFilter(max(numeric, _numeric(libraries_level))))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name in (*SERVER_LOGGERS, "alembic"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    install_redaction()
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
