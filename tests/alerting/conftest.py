"""Fixtures shared by the alerting tests: the fake OpenAI-compatible server, and the
`receiver` of webhook notifications."""

from tests.alerting.test_llm import llm  # noqa: F401
from tests.alerting.test_manager import receiver  # noqa: F401
