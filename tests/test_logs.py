"""Logs: every line on stderr is one JSON object, our events and third-party loggers alike."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

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


SCRIPT = """
import logging, structlog
from apiwatch.logs import configure_logging
configure_logging(level="DEBUG", json=True, libraries_level=LIBRARIES)
structlog.get_logger("apiwatch.runtime").debug("ours_debug")
logging.getLogger("aiosqlite").debug("driver_debug")
logging.getLogger("aiosqlite").info("driver_info")
logging.getLogger("asyncio").debug("asyncio_debug")
"""


@pytest.mark.parametrize("libraries", ["INFO", "DEBUG"])
def test_debug_keeps_other_packages_at_info_unless_asked(libraries: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.replace("LIBRARIES", repr(libraries))],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    events = [json.loads(line)["event"] for line in done.stderr.splitlines() if line.strip()]
    assert "ours_debug" in events and "driver_info" in events
    if libraries == "INFO":
        assert "driver_debug" not in events and "asyncio_debug" not in events
    else:
        assert "driver_debug" in events and "asyncio_debug" in events
