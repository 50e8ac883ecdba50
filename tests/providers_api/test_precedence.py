"""Which definition of a provider runs: files, then the API's by the precedence rules; and
how a change is told in the history."""

from __future__ import annotations

from apiwatch.catalogue.loader import load_catalogue
from apiwatch.catalogue.merge import Source, merge
from apiwatch.catalogue.schema import ProviderSpec
from apiwatch.runtime.provider_admin import diff


def _spec(provider_id: str, name: str) -> ProviderSpec:
    return ProviderSpec.model_validate(
        {
            "id": provider_id,
            "name": name,
            "category": "news",
            "base_url": "http://127.0.0.1:9",
            "health": {"path": "/"},
        }
    )


def test_files_win_unless_overrides_are_allowed() -> None:
    files = load_catalogue()
    stored = {"binance": _spec("binance", "Stored Binance"), "extra": _spec("extra", "Extra")}
    closed = merge(files, stored, overrides=False)
    assert closed.providers["binance"] == files.providers["binance"]
    assert closed.sources["binance"] is Source.BUILTIN
    assert closed.sources["extra"] is Source.API
    assert closed.shadowed == ["binance"]
    opened = merge(files, stored, overrides=True)
    assert opened.providers["binance"].name == "Stored Binance"
    assert opened.sources["binance"] is Source.API_OVERRIDE
    assert opened.shadowed == []


def test_a_user_file_is_file_and_a_builtin_one_builtin(tmp_path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "id: mine\nname: Mine\ncategory: news\nbase_url: http://127.0.0.1:9\nhealth: {path: /}\n"
    )
    merged = merge(load_catalogue(user_dir=tmp_path), {}, overrides=False)
    assert merged.sources["mine"] is Source.FILE
    assert merged.sources["etherscan"] is Source.BUILTIN


def test_diff_names_each_changed_leaf_by_its_path() -> None:
    before = {"name": "A", "health": {"path": "/a", "expect": [{"status": 200}]}}
    after = {"name": "A", "health": {"path": "/b"}, "enabled": False}
    assert diff(before, after) == [
        {"path": "health.path", "before": "/a", "after": "/b"},
        {"path": "health.expect", "before": [{"status": 200}], "after": None},
        {"path": "enabled", "before": None, "after": False},
    ]
