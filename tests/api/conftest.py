"""The `api` fixture (a real server over the simulator) for every module in tests/api."""

from tests.api.test_api import api  # noqa: F401
