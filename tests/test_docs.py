"""The documentation cannot drift from the code it describes.

docs/configuration.md documents every field of `Settings` under the environment names the
code reads (its `APIWATCH_` prefix, or the field's aliases), with the code's default, and
nothing else; and no page (nor the README) names an `APIWATCH_` variable that does not
exist.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import AliasChoices
from pydantic_core import PydanticUndefined

from apiwatch.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CONFIGURATION = ROOT / "docs" / "configuration.md"
# Read by the test suite (tests/conftest.py), not by Settings; the docs may name them.
TEST_ONLY = {"APIWATCH_TEST_POSTGRES_URL", "APIWATCH_TEST_REDIS_URL"}

_NAME = re.compile(r"`([A-Z][A-Z0-9_]*)`")
_APIWATCH_VAR = re.compile(r"\bAPIWATCH_[A-Z0-9_]*[A-Z0-9]\b")


def env_names() -> dict[str, set[str]]:
    """Field name → the environment variables that set it, as pydantic-settings reads them."""
    prefix = Settings.model_config.get("env_prefix", "")
    names: dict[str, set[str]] = {}
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names[field_name] = {str(choice) for choice in alias.choices}
        elif isinstance(alias, str):
            names[field_name] = {alias}
        else:
            names[field_name] = {f"{prefix}{field_name}".upper()}
    return names


def code_default(field_name: str) -> Any:
    field = Settings.model_fields[field_name]
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    assert field.default is not PydanticUndefined, f"{field_name} has no default"
    return field.default


@dataclass(frozen=True)
class Row:
    line: int
    names: tuple[str, ...]
    default: str


def settings_rows(text: str) -> list[Row]:
    """The rows of every table whose header starts with `| variable | default |`."""
    rows: list[Row] = []
    in_table = False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped.startswith("|"):
            in_table = False
            continue
        cells = [cell.strip() for cell in stripped.strip("|").split("|")]
        if [c.lower() for c in cells[:2]] == ["variable", "default"]:
            in_table = True
            continue
        if not in_table or set(cells[0]) <= set("-: "):
            continue
        rows.append(Row(number, tuple(_NAME.findall(cells[0])), cells[1]))
    return rows


def parse_default(text: str) -> Any:
    """A documented default: `unset`, or one backticked JSON-ish value."""
    if text == "unset":
        return None
    match = re.fullmatch(r"`([^`]*)`", text)
    if match is None:
        raise ValueError(f"default {text!r} is neither `unset` nor one `value`")
    value = match.group(1)
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value  # a plain string such as 127.0.0.1 or INFO


def same_default(documented: Any, actual: Any) -> bool:
    if hasattr(actual, "get_secret_value") or actual is None:
        return documented is None and actual is None
    if isinstance(actual, bool) or isinstance(documented, bool):
        return documented is actual
    if isinstance(actual, int | float) and isinstance(documented, int | float):
        return float(documented) == float(actual)
    if isinstance(actual, Path):
        return documented == str(actual)
    return documented == actual


def problems(text: str) -> list[str]:
    """Everything wrong with a configuration page; empty when it matches `Settings`."""
    found: list[str] = []
    names = env_names()
    by_env = {env: field for field, envs in names.items() for env in envs}
    rows = settings_rows(text)
    documented: dict[str, Row] = {}
    for row in rows:
        if not row.names:
            found.append(f"line {row.line}: a settings row names no `VARIABLE`")
        for name in row.names:
            if name not in by_env:
                found.append(f"line {row.line}: {name} is not a setting of Settings")
            elif name in documented:
                found.append(f"line {row.line}: {name} is documented twice")
            else:
                documented[name] = row
    for field, envs in sorted(names.items()):
        missing = sorted(envs - documented.keys())
        if missing:
            found.append(f"Settings.{field} is not documented as {', '.join(missing)}")
            continue
        for env in sorted(envs):
            row = documented[env]
            try:
                value = parse_default(row.default)
            except ValueError as exc:
                found.append(f"line {row.line}: {exc}")
                continue
            if not same_default(value, code_default(field)):
                found.append(
                    f"line {row.line}: {env} documented default {row.default} but the code "
                    f"says {code_default(field)!r}"
                )
    for name in sorted(set(_APIWATCH_VAR.findall(text)) - by_env.keys() - TEST_ONLY):
        found.append(f"{name} is mentioned but is not a setting")
    return found


def test_configuration_page_documents_every_setting_and_nothing_else() -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    assert settings_rows(text), "no `| variable | default | meaning |` table found"
    assert problems(text) == []


def test_every_setting_has_exactly_one_row() -> None:
    rows = settings_rows(CONFIGURATION.read_text(encoding="utf-8"))
    fields_seen = [
        next(field for field, envs in env_names().items() if row.names[0] in envs)
        for row in rows
        if row.names and any(row.names[0] in envs for envs in env_names().values())
    ]
    assert sorted(fields_seen) == sorted(Settings.model_fields)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        # A setting dropped from the page.
        (lambda t: re.sub(r"^\| `APIWATCH_RETENTION_DAYS`.*\n", "", t, flags=re.M), "retention"),
        # A variable that does not exist.
        (
            lambda t: t.replace("`APIWATCH_HOST`", "`APIWATCH_HOSTNAME`", 1),
            "APIWATCH_HOSTNAME is not a setting",
        ),
        # A default that drifted.
        (
            lambda t: re.sub(r"(\| `APIWATCH_PORT` \| )`7860`", r"\1`8080`", t),
            "APIWATCH_PORT documented default",
        ),
        # One of the two names of an aliased setting left out.
        (
            lambda t: t.replace(" (or `APIWATCH_REDIS_URL`)", "", 1),
            "redis_url is not documented as APIWATCH_REDIS_URL",
        ),
        # A typo in prose.
        (lambda t: t + "\nSet APIWATCH_HEALTH_INTERVAL to 10.\n", "APIWATCH_HEALTH_INTERVAL is"),
    ],
)
def test_the_check_catches_drift(mutate: Any, expected: str) -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    changed = mutate(text)
    assert changed != text, "the mutation did not apply; the page changed shape"
    assert any(expected in problem for problem in problems(changed)), problems(changed)


def test_no_page_names_an_unknown_apiwatch_variable() -> None:
    known = {env for envs in env_names().values() for env in envs} | TEST_ONLY
    conftest = (ROOT / "tests" / "conftest.py").read_text(encoding="utf-8")
    for name in TEST_ONLY:
        assert name in conftest, f"{name} is listed as read by the tests but conftest.py does not"
    pages = [ROOT / "README.md", ROOT / ".env.example", *sorted((ROOT / "docs").glob("*.md"))]
    unknown = {
        f"{page.relative_to(ROOT)}: {name}"
        for page in pages
        for name in _APIWATCH_VAR.findall(page.read_text(encoding="utf-8"))
        if name not in known
    }
    assert unknown == set()


# A citation of something only the original authors had: the shared folder beside the
# repository, its design file, or a numbered section ("providers.md §3", "DESIGN §2") of a
# research file. The repository's own pages have no numbered sections, so any "§ <number>"
# points outside. A link to docs/providers.md (no section sign) stays allowed.
_OUTSIDE = re.compile(r"\.\./shared\b|\bDESIGN\.md\b|\bDESIGN\s*§|\.md\s*§|§\s*\d")
_SCANNED = ("*.md", "*.py", "*.yaml", "*.yml", "*.toml", "*.sh", "*.html", "*.js", "*.css")
_SCANNED_NAMES = ("Makefile", "Dockerfile", ".env.example")
# Third-party bundles served as they were shipped; not ours to word.
# Installed, built or copied here, never written by us (git-ignored): `pip install .` from
# the container test leaves a build/ copy of the sources as they were.
_VENDORED = {".venv", ".git", "site", "node_modules", "docs_assets", "build", "dist", "vendor"}


@pytest.mark.parametrize(
    "text",
    [
        "See " + "/".join(("..", "shared", "DESIGN.md")),  # built, so this file cites nothing
        "the design lives in DESIGN.md",
        "as DESIGN §3 says",
        "# Timestamp renderings (providers.md §13).",
        "headers and error bodies (providers.md §2-3)",
        "see § 4 of the research notes",
    ],
)
def test_the_outside_reference_pattern_catches_citations(text: str) -> None:
    assert _OUTSIDE.search(text)


@pytest.mark.parametrize(
    "text",
    [
        "- [Providers](docs/providers.md): the catalogue format",
        "see [Providers](providers.md#worked-example-adding-kraken-in-one-file).",
        "      - Providers and the catalogue: providers.md",
        'page = (ROOT / "docs" / "providers.md").read_text(encoding="utf-8")',
        "a machine shared with other jobs",
    ],
)
def test_the_outside_reference_pattern_leaves_the_repositorys_own_links(text: str) -> None:
    assert not _OUTSIDE.search(text)


def test_no_file_refers_to_a_file_outside_the_repository() -> None:
    candidates = {
        *(path for pattern in _SCANNED for path in ROOT.rglob(pattern)),
        *(path for name in _SCANNED_NAMES for path in ROOT.rglob(name)),
    }
    tracked = [
        path
        for path in candidates
        if path.is_file()
        and not _VENDORED & set(path.relative_to(ROOT).parts)
        and ".egg-info" not in str(path)
    ]
    assert ROOT / "docs" / "providers.md" in tracked
    assert ROOT / "apiwatch" / "simulator" / "market.py" in tracked
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted(tracked)
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if _OUTSIDE.search(line)
    ]
    assert offenders == []


def _contracts() -> list[dict[str, Any]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts: list[dict[str, Any]] = project["tool"]["importlinter"]["contracts"]
    return contracts


def test_the_architecture_page_names_every_floor_of_the_layers_contract() -> None:
    (layers,) = [c for c in _contracts() if c["type"] == "layers"]
    names = [name.strip() for floor in layers["layers"] for name in floor.split("|")]
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    floors = page.split("## The floors", 1)[1].split("\n## ", 1)[0]
    table = [line for line in floors.splitlines() if line.startswith("| ")]
    assert len(names) > 20 and table
    missing = [
        name
        for name in names
        if not any(f"`{name}/`" in line or f"`{name}.py`" in line for line in table)
    ]
    assert missing == []
    # And the other way: every module or package at the root has a floor.
    on_disk = {
        path.stem
        for path in (ROOT / "apiwatch").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    assert on_disk == set(names)


def test_the_worked_provider_example_loads(tmp_path: Path) -> None:
    from apiwatch.catalogue.loader import load_catalogue

    page = (ROOT / "docs" / "providers.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- example: provider -->\n```yaml\n(.*?)```", page, flags=re.S)
    assert block is not None, "the worked example is gone from docs/providers.md"
    (tmp_path / "kraken.yaml").write_text(block.group(1), encoding="utf-8")
    catalogue = load_catalogue(user_dir=tmp_path)
    spec = catalogue.providers["kraken"]
    assert spec.enabled
    assert spec.rate_limited_when
    assert catalogue.sources["kraken"].name == "kraken.yaml"
