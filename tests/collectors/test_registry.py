"""The registry: every `collector:` the catalogue names resolves, and nothing is orphaned."""

from __future__ import annotations

import pytest

from apiwatch.catalogue.loader import load_catalogue
from apiwatch.collectors.registry import COLLECTORS, get_collector

CATALOGUE = load_catalogue()
NAMED = {
    (spec.id, name): endpoint.collector
    for spec in CATALOGUE.providers.values()
    for name, endpoint in spec.all_endpoints().items()
    if endpoint.collector
}


@pytest.mark.parametrize(("where", "name"), sorted(NAMED.items()))
def test_every_catalogue_collector_resolves_in_the_registry(
    where: tuple[str, str], name: str
) -> None:
    assert get_collector(name) is COLLECTORS[name], where


def test_every_registered_collector_is_used_by_the_default_catalogue() -> None:
    assert set(COLLECTORS) == set(NAMED.values())


def test_registry_names_are_module_dot_function_of_their_category_module() -> None:
    for name, function in COLLECTORS.items():
        module, _, _ = name.partition(".")
        assert function.__module__ == f"apiwatch.collectors.{module}", name


def test_every_default_provider_collects_from_at_least_one_data_endpoint() -> None:
    for spec in CATALOGUE.providers.values():
        assert any(e.collector for e in spec.endpoints.values()), spec.id


def test_an_unknown_collector_name_is_a_key_error_listing_the_known_ones() -> None:
    with pytest.raises(KeyError) as caught:
        get_collector("market.nope")
    assert "market.nope" in str(caught.value)
    assert "market.coingecko_simple_price" in str(caught.value)
