"""Loads provider YAML files into validated specs, with errors that name file, line and field.

The built-in catalogue lives in `catalogue/providers/`; a user's directory adds providers or
replaces ours by id. Any bad file stops loading with a `CatalogueError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from apiwatch.catalogue.schema import ProviderSpec

BUILTIN_DIR = Path(__file__).parent / "providers"


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        return f"{where}: {self.field}: {self.message}"


class CatalogueError(Exception):
    """One or more catalogue files are invalid; `problems` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("invalid catalogue:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class Catalogue:
    providers: dict[str, ProviderSpec]
    sources: dict[str, Path]  # provider id -> the file it came from

    def enabled(self) -> list[ProviderSpec]:
        return [p for p in self.providers.values() if p.enabled]

    def get(self, provider_id: str) -> ProviderSpec | None:
        return self.providers.get(provider_id)


def node_line(node: yaml.Node | None, loc: Iterable[str | int]) -> int | None:
    """Walk a composed YAML node along a pydantic error location; return a 1-based line."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    node = value_node
                    line = key_node.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _describe(error: dict[str, Any]) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown field (check the spelling against the catalogue schema)"
    if error["type"] == "missing":
        return "required field is missing"
    given = error.get("input")
    if isinstance(given, str | int | float | bool) and error["type"] not in ("value_error",):
        return f"{message} (got {given!r})"
    return message


def text_line_of(path: Path, offset: int) -> int:
    """The 1-based line holding byte `offset` of the file."""
    return path.read_bytes()[:offset].count(b"\n") + 1


def load_file(path: Path) -> ProviderSpec:
    """Parse and validate one provider file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogueError([Problem(path, None, "(file)", str(exc))]) from exc
    except UnicodeDecodeError as exc:
        line = text_line_of(path, exc.start)
        raise CatalogueError([Problem(path, line, "(file)", "not UTF-8 text")]) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise CatalogueError([Problem(path, line, "(yaml)", f"not valid YAML: {problem}")]) from exc
    if not isinstance(data, dict):
        raise CatalogueError(
            [Problem(path, 1, "(file)", "expected a mapping of provider fields at the top")]
        )
    try:
        return ProviderSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            # Pydantic appends union/validator names ("int", "list[int]") to locations.
            loc = [part for part in error["loc"] if not is_type_tag(part)]
            field = ".".join(str(part) for part in loc) or "(provider)"
            problems.append(Problem(path, node_line(node, loc), field, _describe(error)))
        raise CatalogueError(problems) from exc


def is_type_tag(part: str | int) -> bool:
    """Pydantic's union/type markers in an error location (`int`, `function-after[...]`),
    which are not fields a user wrote. Shared with the alert settings loader."""
    return isinstance(part, str) and (
        "[" in part or part in {"int", "str", "float", "bool", "function-after", "none"}
    )


def load_catalogue(*, user_dir: Path | None = None, builtin_dir: Path = BUILTIN_DIR) -> Catalogue:
    """Load the built-in catalogue, then the user's files, which override by provider id."""
    providers: dict[str, ProviderSpec] = {}
    sources: dict[str, Path] = {}
    problems: list[Problem] = []
    dirs = [builtin_dir]
    if user_dir is not None:
        if not user_dir.is_dir():
            raise CatalogueError(
                [Problem(user_dir, None, "(directory)", "catalogue directory does not exist")]
            )
        dirs.append(user_dir)
    for directory in dirs:
        seen_here: dict[str, Path] = {}
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            try:
                spec = load_file(path)
            except CatalogueError as exc:
                problems.extend(exc.problems)
                continue
            if spec.id in seen_here:
                problems.append(
                    Problem(path, 1, "id", f"{spec.id!r} is also defined in {seen_here[spec.id]}")
                )
                continue
            seen_here[spec.id] = path
            providers[spec.id] = spec
            sources[spec.id] = path
    if problems:
        raise CatalogueError(problems)
    return Catalogue(providers=providers, sources=sources)
