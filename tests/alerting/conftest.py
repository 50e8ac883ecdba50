"""Fixtures shared by the alerting tests: the fake OpenAI-compatible server."""

from tests.alerting.test_llm import llm  # noqa: F401
