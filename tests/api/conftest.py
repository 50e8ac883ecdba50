"""The `api` and `live` fixtures (real servers over the simulator) for every module in
tests/api."""

from tests.alerting.test_llm import llm  # noqa: F401 (a fake LLM endpoint, for explain)
from tests.api.test_api import api  # noqa: F401
from tests.api.test_live import live  # noqa: F401
