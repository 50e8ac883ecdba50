"""The catalogue: the built-in files load, and a bad file names file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from apiwatch.catalogue.loader import CatalogueError, load_catalogue, load_file
from apiwatch.domain import Category

EXPECTED = {
    "coingecko": Category.MARKET_DATA,
    "coinmarketcap": Category.MARKET_DATA,
    "cryptocompare": Category.MARKET_DATA,
    "binance": Category.MARKET_DATA,
    "bybit": Category.MARKET_DATA,
    "okx": Category.MARKET_DATA,
    "etherscan": Category.BLOCKCHAIN_EXPLORERS,
    "bscscan": Category.BLOCKCHAIN_EXPLORERS,
    "tronscan": Category.BLOCKCHAIN_EXPLORERS,
    "cryptopanic": Category.NEWS,
    "newsapi": Category.NEWS,
    "alternative_me": Category.SENTIMENT,
    "thegraph": Category.ONCHAIN,
    "blockchair": Category.ONCHAIN,
    "glassnode": Category.ONCHAIN,
}

GOOD = """\
id: acme
name: Acme
category: market_data
base_url: https://api.acme.test
health:
  path: /ping
"""


def test_builtin_catalogue_has_every_provider_with_its_category() -> None:
    catalogue = load_catalogue()
    assert {pid: spec.category for pid, spec in catalogue.providers.items()} == EXPECTED


def test_onchain_placeholders_are_disabled_and_the_rest_enabled() -> None:
    catalogue = load_catalogue()
    disabled = {spec.id for spec in catalogue.providers.values() if not spec.enabled}
    assert disabled == {"thegraph", "blockchair", "glassnode"}


def test_etherscan_uses_the_v2_multichain_api_with_a_key_pool() -> None:
    spec = load_catalogue().providers["etherscan"]
    assert spec.health.path == "/v2/api"
    assert spec.health.params["chainid"] == 1
    assert spec.auth.keys == ["ETHERSCAN_KEY_1", "ETHERSCAN_KEY_2"]
    assert spec.auth.required
    assert load_catalogue().providers["bscscan"].health.params["chainid"] == 56


def test_user_directory_adds_providers_and_overrides_ours_by_id(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(GOOD)
    (tmp_path / "binance.yaml").write_text(
        GOOD.replace("id: acme", "id: binance").replace("Acme", "My Binance")
    )
    catalogue = load_catalogue(user_dir=tmp_path)
    assert catalogue.providers["acme"].name == "Acme"
    assert catalogue.providers["binance"].name == "My Binance"
    assert catalogue.sources["binance"] == tmp_path / "binance.yaml"
    assert "coingecko" in catalogue.providers


@pytest.mark.parametrize(
    ("text", "line", "field", "says"),
    [
        (GOOD.replace("market_data", "markets"), 3, "category", "market_data"),
        (GOOD + "rate_limits: {per_minute: -5}\n", 7, "rate_limits.per_minute", "greater than"),
        (GOOD + "  expect:\n    - {statuz: 200}\n", 8, "health.expect.0.statuz", "unknown field"),
        (GOOD.replace("id: acme", "id: Acme!"), 1, "id", "pattern"),
        (GOOD.replace("  path: /ping", "  path: ping"), 6, "health.path", "start with '/'"),
        (GOOD + "auth: {in: query, name: k, keys: [sk-live-123]}\n", 7, "auth", "environment"),
        (GOOD.replace("name: Acme\n", ""), 1, "name", "required field is missing"),
        (GOOD + "rate_limits: {every: {0: 20}}\n", 7, "rate_limits.every", "1 to 10000000 seconds"),
        (GOOD + "rate_limits: {every: {2: 0}}\n", 7, "rate_limits.every", "at least 1"),
        (
            GOOD + "  rate_limits: {every: {two: 20}}\n",
            7,
            "health.rate_limits.every.two",
            "integer",
        ),
        (
            GOOD + "book_checks: {min_history: 50, history: 20}\n",
            7,
            "book_checks",
            "min_history cannot exceed history",
        ),
        (GOOD + "server_error_when:\n  - {json: $.code}\n", 8, "server_error_when.0", "equals"),
        (GOOD + "locations: [eu, us east]\n", 7, "locations.1", "pattern"),
    ],
)
def test_bad_file_names_file_line_field_and_what_was_expected(
    tmp_path: Path, text: str, line: int, field: str, says: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CatalogueError) as caught:
        load_file(path)
    problem = caught.value.problems[0]
    assert problem.file == path
    assert problem.line == line
    assert problem.field == field
    assert says in problem.message
    assert f"{path}:{line}: {field}:" in str(caught.value)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(GOOD + "endpoints: {a: [\n")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(user_dir=tmp_path)
    assert caught.value.problems[0].file == path
    assert caught.value.problems[0].field == "(yaml)"
    assert caught.value.problems[0].line is not None


def test_literal_key_in_auth_keys_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "leak.yaml"
    path.write_text(GOOD + "auth: {in: query, name: k, keys: [sk-live-abcdef123456]}\n")
    with pytest.raises(CatalogueError) as caught:
        load_file(path)
    assert "abcdef123456" not in str(caught.value)


def test_missing_user_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="does not exist"):
        load_catalogue(user_dir=tmp_path / "nope")


def test_broken_jsonpath_fails_at_load_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "paths.yaml"
    path.write_text(GOOD + '  expect:\n    - {json: "$[?(@.a >", exists: true}\n')
    with pytest.raises(CatalogueError) as caught:
        load_file(path)
    problem = caught.value.problems[0]
    assert (problem.line, problem.field) == (8, "health.expect.0")
    assert "not a valid JSONPath" in problem.message


def test_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(GOOD.encode() + b"description: caf\xe9\n")
    with pytest.raises(CatalogueError) as caught:
        load_file(path)
    assert (caught.value.problems[0].line, caught.value.problems[0].message) == (
        7,
        "not UTF-8 text",
    )


def test_equal_parts_of_providers_are_kept_once_and_set_fields_still_tell_apart(
    tmp_path: Path,
) -> None:
    health = "health:\n  path: /ping\n  expect:\n    - {status: 200}\n"
    for name in ("one", "two"):
        (tmp_path / f"{name}.yaml").write_text(
            f"id: {name}\nname: {name}\ncategory: news\nbase_url: https://{name}.invalid\n"
            f"auth: {{in: none}}\n{health}"
        )
    # The same check with a field spelled out at its default: a check reads which fields
    # were set, so this one is not the others' copy.
    (tmp_path / "three.yaml").write_text(
        "id: three\nname: three\ncategory: news\nbase_url: https://three.invalid\n"
        "auth: {in: none}\nhealth:\n  path: /ping\n  expect:\n    - {status: 200}\n"
        "  method: GET\n"
    )
    catalogue = load_catalogue(user_dir=tmp_path)
    one, two, three = (catalogue.providers[name] for name in ("one", "two", "three"))
    assert one.health is two.health and one.auth is two.auth
    assert one.rate_limits is two.rate_limits is three.rate_limits
    assert three.health is not one.health and three.health == one.health.model_copy(
        update={"method": "GET"}
    )
    assert "method" in three.health.model_fields_set
    assert "method" not in one.health.model_fields_set


def test_a_value_json_cannot_spell_still_loads_its_provider(tmp_path: Path) -> None:
    # YAML can give bytes that are not UTF-8; the part holding them is simply not shared.
    (tmp_path / "odd.yaml").write_text(
        "id: odd\nname: odd\ncategory: news\nbase_url: https://odd.invalid\n"
        'health:\n  path: /p\n  expect:\n    - {json_path: "$.a", equals: !!binary "/w=="}\n'
    )
    spec = load_catalogue(user_dir=tmp_path).providers["odd"]
    assert spec.health.expect[0].equals == b"\xff"
