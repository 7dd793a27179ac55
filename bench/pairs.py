"""A benchmark's figure next to the raw library's figure for the same work, measured in one run.

Each bench that has anchors prints, as its last line, one JSON object with a ``"pairs"`` list
(``print_pairs``); ``bench/ratios.py`` gathers them into one table (``pairs_of``).

``ratio`` is always "the project's share of the raw figure", so higher is better whatever the
unit: ``project / raw`` for a rate, ``raw / project`` for a time or a size. ``target`` is the
lowest acceptable ratio (0.9 = the project reaches at least 90 % of the raw figure), or None.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Pair:
    """One measure: the project's figure and the bare library's, in the same unit."""

    measure: str
    project: float
    raw: float
    unit: str
    higher_is_better: bool = True
    target: float | None = None

    def __post_init__(self) -> None:
        if not self.measure:
            raise ValueError("a pair needs a measure name")
        for side in ("project", "raw"):
            value = getattr(self, side)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"pair {self.measure!r}: {side} must be a finite number >= 0, not {value!r}"
                )
        if (self.raw if self.higher_is_better else self.project) == 0:
            raise ValueError(f"pair {self.measure!r}: no ratio, its denominator is 0 ({self})")
        if self.target is not None and not self.target > 0:
            raise ValueError(f"pair {self.measure!r}: target must be > 0, not {self.target!r}")

    @property
    def ratio(self) -> float:
        """The project's share of the raw figure: above 1 is better than raw."""
        if self.higher_is_better:
            return self.project / self.raw
        return self.raw / self.project

    @property
    def met(self) -> bool | None:
        """Whether the ratio reaches the target; None when there is no target."""
        return None if self.target is None else self.ratio >= self.target

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the fields, plus ``ratio`` and ``met`` (recomputed on reading)."""
        return {**asdict(self), "ratio": round(self.ratio, 4), "met": self.met}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Pair:
        """The pair ``to_json`` wrote (``ratio`` and ``met`` are recomputed, not trusted)."""
        try:
            return cls(
                measure=str(data["measure"]),
                project=float(data["project"]),
                raw=float(data["raw"]),
                unit=str(data["unit"]),
                higher_is_better=bool(data.get("higher_is_better", True)),
                target=None if data.get("target") is None else float(data["target"]),
            )
        except KeyError as missing:
            raise ValueError(f"a pair without {missing}: {dict(data)}") from None


def print_pairs(pairs: Iterable[Pair], report: Mapping[str, Any] | None = None) -> None:
    """Print the pairs as a table, then the bench's last line: ``report`` (its figures of
    today, if any) plus ``"pairs"``."""
    pairs = list(pairs)
    print_pair_table(pairs)
    print(json.dumps({**(report or {}), "pairs": [pair.to_json() for pair in pairs]}), flush=True)


def print_pair_table(pairs: Sequence[Pair]) -> None:
    """Project figure, raw figure, ratio (higher is better), target ratio, met, measure."""
    print(f"{'project':>10} {'bare':>10} {'unit':>6} {'ratio':>7} {'target':>7} met  measure")
    for pair in pairs:
        met = {True: "yes", False: "NO", None: "-"}[pair.met]
        target = "-" if pair.target is None else f"{pair.target:g}"
        print(
            f"{pair.project:>10.1f} {pair.raw:>10.1f} {pair.unit:>6} {pair.ratio:>7.3f} "
            f"{target:>7} {met:<4} {pair.measure}"
        )


def finite_or_none(value: Any) -> Any:
    """``value`` with every NaN or infinity (a figure not measured) as None, for JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite_or_none(item) for item in value]
    return value


def pairs_of(output: str) -> list[Pair]:
    """The pairs of a bench's output: from its last line that is a JSON object with "pairs"."""
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            report = json.loads(line)
            if isinstance(report, dict) and "pairs" in report:
                return [Pair.from_json(item) for item in report["pairs"]]
    raise ValueError('no JSON line with "pairs" in the output:\n' + output[-2000:])
