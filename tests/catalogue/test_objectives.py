"""Objectives in the catalogue: defaults for all, a provider's over them, an endpoint's over
its provider's; a bad value names file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from apiwatch.catalogue.loader import CatalogueError, load_catalogue, load_file

WITH_OBJECTIVES = """\
id: acme
name: Acme
category: market_data
base_url: https://api.acme.test
objectives:
  target: 99.9
  sla: 99.95
health:
  path: /ping
endpoints:
  prices:
    path: /prices
    objectives: {latency_p95_ms: 500, window_days: 7}
"""


def test_defaults_provider_and_endpoint_objectives_stack(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(WITH_OBJECTIVES)
    spec = load_file(tmp_path / "acme.yaml")
    provider = spec.objective()
    assert (provider.target, provider.sla, provider.window_days) == (99.9, 99.95, 30)
    assert provider.latency_p95_ms is None and provider.exclude_maintenance is True
    prices = spec.objective("prices")
    assert (prices.target, prices.sla, prices.window_days, prices.latency_p95_ms) == (
        99.9,
        99.95,
        7,
        500,
    )
    assert spec.objective("health") == provider
    # Every built-in provider gets the defaults.
    for builtin in load_catalogue().providers.values():
        assert builtin.objective().target == 99.5


@pytest.mark.parametrize(
    ("bad", "line", "field", "says"),
    [
        ("  target: 120\n", 6, "objectives.target", "less than 100"),
        ("  window_days: 400\n", 6, "objectives.window_days", "less than or equal to 90"),
        ("  target: 0\n", 6, "objectives.target", "greater than 0"),
        ("  uptime: 99\n", 6, "objectives.uptime", "unknown field"),
    ],
)
def test_a_bad_objective_names_file_line_and_field(
    tmp_path: Path, bad: str, line: int, field: str, says: str
) -> None:
    text = WITH_OBJECTIVES.replace("  target: 99.9\n", bad)
    (tmp_path / "acme.yaml").write_text(text)
    with pytest.raises(CatalogueError) as caught:
        load_file(tmp_path / "acme.yaml")
    [problem] = caught.value.problems
    assert (problem.line, problem.field) == (line, field)
    assert says in problem.message
    assert str(problem).startswith(f"{tmp_path / 'acme.yaml'}:{line}: {field}:")
