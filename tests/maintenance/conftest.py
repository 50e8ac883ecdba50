"""Fixtures of the maintenance tests: the webhook `receiver` and fake LLM of the alerting
tests, and the API `stack` (simulator, server, receiver) of the alerts API tests."""

from tests.alerting.test_llm import llm  # noqa: F401
from tests.alerting.test_manager import receiver  # noqa: F401
