"""Families with a series per provider, written straight to exposition text.

prometheus_client renders a family by building a `Sample` (a named tuple and a dict of labels)
for every series, then sorting, escaping and formatting each label of each sample. At 10,000
providers the families with a series per provider come to about 250,000 samples: a scrape took
two seconds of CPU, and the hundred-odd megabytes of short-lived objects it made left the
process's resident memory higher after each scrape (a long-lived object allocated meanwhile
pins a whole arena). Here a family keeps its rows as tuples, the label names' order and each
distinct label value's escaped form are worked out once, and the text is made a few thousand
lines at a time, each piece sent before the next is made.

The output is byte for byte what prometheus_client's encoders give for the same family, in
the Prometheus text format and in OpenMetrics (tests compare them); the families that are not
per provider still go through prometheus_client.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

from prometheus_client.utils import floatToGoString

Kind = Literal["counter", "gauge", "histogram"]

# Lines joined at a time: large enough to be cheap, small enough that the pieces stay small.
_CHUNK = 4096


def escape_value(value: str) -> str:
    """A label value as the exposition formats spell it (backslash, newline, quote)."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def number(value: float) -> str:
    """A sample value as prometheus_client writes it (Go's formatting of floats)."""
    if 0.0 <= value < 1e6 or -1e300 < value < 0.0:
        return repr(float(value))  # what floatToGoString gives in this range, quicker
    return floatToGoString(value)


class TextFamily:
    """One metric family: its rows, and its exposition in either format.

    `labels` are the label names in the order `add` takes their values. A histogram's rows
    carry the cumulative count of each bucket (`le` strings given once) and the sum.
    """

    __slots__ = ("doc", "kind", "labels", "le", "name", "rows")

    def __init__(
        self,
        name: str,
        doc: str,
        kind: Kind,
        labels: Sequence[str],
        *,
        le: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.doc = doc
        self.kind: Kind = kind
        self.labels = tuple(labels)
        self.le = tuple(le)
        self.rows: list[tuple[tuple[str, ...], object, float]] = []

    def add(self, values: Sequence[str], value: float) -> None:
        self.rows.append((tuple(values), None, value))

    def add_histogram(
        self, values: Sequence[str], cumulative: Sequence[float], sum_value: float
    ) -> None:
        self.rows.append((tuple(values), tuple(cumulative), sum_value))

    def lines(self, *, openmetrics: bool) -> Iterator[str]:
        """The family's lines, each ending in a newline; no `# EOF`."""
        name, kind = self.name, self.kind
        if openmetrics:
            doc = escape_value(self.doc)
            head = name
        else:
            doc = self.doc.replace("\\", r"\\").replace("\n", r"\n")
            head = f"{name}_total" if kind == "counter" else name
        yield f"# HELP {head} {doc}\n"
        yield f"# TYPE {head} {kind}\n"
        # Labels are written sorted by name (le among them): where each value goes.
        names = [*self.labels, "le"] if kind == "histogram" else list(self.labels)
        order = sorted(range(len(names)), key=names.__getitem__)
        escaped: dict[str, str] = {}

        def label_parts(values: tuple[str, ...]) -> list[str]:
            parts = []
            for value in values:
                text = escaped.get(value)
                if text is None:
                    text = escaped[value] = escape_value(value)
                parts.append(text)
            return parts

        if kind != "histogram":
            sample = f"{name}_total" if kind == "counter" else name
            for values, _, value in self.rows:
                if not names:
                    yield f"{sample} {number(value)}\n"
                    continue
                parts = label_parts(values)
                labels = ",".join(f'{names[i]}="{parts[i]}"' for i in order)
                yield f"{sample}{{{labels}}} {number(value)}\n"
            return
        le_at = len(self.labels)  # the `le` label's place in `names`
        before = order[: order.index(le_at)]
        after = order[order.index(le_at) + 1 :]
        plain = [i for i in order if i != le_at]
        for values, cumulative, sum_value in self.rows:
            parts = label_parts(values)
            head_labels = "".join(f'{names[i]}="{parts[i]}",' for i in before)
            tail_labels = "".join(f',{names[i]}="{parts[i]}"' for i in after)
            for le, count in zip(self.le, cumulative, strict=True):  # type: ignore[arg-type]
                yield f'{name}_bucket{{{head_labels}le="{le}"{tail_labels}}} {number(count)}\n'
            labels = ",".join(f'{names[i]}="{parts[i]}"' for i in plain)
            braced = f"{{{labels}}}" if labels else ""
            total = cumulative[-1]  # type: ignore[index]
            yield f"{name}_count{braced} {number(total)}\n"
            yield f"{name}_sum{braced} {number(sum_value)}\n"


def pieces(families: Iterable[TextFamily], *, openmetrics: bool) -> Iterator[bytes]:
    """The families' exposition as UTF-8 pieces of a few thousand lines each, made as they
    are asked for: a scrape can send each before the next is written."""
    chunk: list[str] = []
    for family in families:
        for line in family.lines(openmetrics=openmetrics):
            chunk.append(line)
            if len(chunk) >= _CHUNK:
                yield "".join(chunk).encode()
                chunk.clear()
    if chunk:
        yield "".join(chunk).encode()


def render(families: Iterable[TextFamily], *, openmetrics: bool) -> bytes:
    """The families' exposition as UTF-8, whole."""
    return b"".join(pieces(families, openmetrics=openmetrics))
