"""The pairs of a bench as a table, printed before its last (JSON) line."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bench.pairs import Pair


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
