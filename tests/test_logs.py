"""Logs: every line on stderr is one JSON object, our events and third-party loggers alike."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from apiwatch.logs import configure_logging


def test_structlog_and_stdlib_lines_are_all_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(level="INFO", json=True)
    try:
        structlog.get_logger("apiwatch.test").info("status_change", provider="binance")
        logging.getLogger("uvicorn.error").info("Started server process")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("apiwatch.storage.recorder").exception("write failed")
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        records = [json.loads(line) for line in lines]  # raises if any line is not JSON
        assert records[0]["event"] == "status_change" and records[0]["provider"] == "binance"
        assert records[1]["event"] == "Started server process"
        assert records[1]["logger"] == "uvicorn.error"
        assert "RuntimeError: boom" in records[2]["exception"]
        assert all({"level", "timestamp"} <= set(r) for r in records)
    finally:
        logging.getLogger().handlers[:] = []
        structlog.reset_defaults()
