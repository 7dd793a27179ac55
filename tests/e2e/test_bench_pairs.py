"""The pairs every bench prints: a figure of the project beside the raw library's."""

from __future__ import annotations

import json

import pytest

from bench.pairs import Pair, pairs_of, print_pairs


def test_given_a_rate_when_its_ratio_is_read_then_it_is_the_projects_share_of_the_raw_rate() -> (
    None
):
    pair = Pair("append", 900.0, 1000.0, "events/s", True, 0.9)
    assert pair.ratio == pytest.approx(0.9)
    assert pair.met is True


def test_given_a_time_when_its_ratio_is_read_then_a_slower_project_has_a_ratio_below_one() -> None:
    pair = Pair("cycle", 5.0, 4.0, "s", higher_is_better=False, target=1 / 1.5)
    assert pair.ratio == pytest.approx(0.8)
    assert pair.met is True
    assert Pair("cycle", 8.0, 4.0, "s", False, 1 / 1.5).met is False


def test_given_no_target_when_met_is_read_then_it_is_none() -> None:
    assert Pair("memory", 80.0, 70.0, "MiB", False).met is None


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        (("", 1.0, 1.0, "s"), "a measure name"),
        (("x", -1.0, 1.0, "s"), "project must be"),
        (("x", 1.0, float("nan"), "s"), "raw must be"),
        (("x", 1.0, 0.0, "events/s"), "denominator is 0"),
        (("x", 1.0, 1.0, "events/s", True, 0.0), "target must be > 0"),
    ],
)
def test_given_a_bad_figure_when_a_pair_is_made_then_the_error_names_it(
    fields: tuple[object, ...], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        Pair(*fields)  # type: ignore[arg-type]


def test_given_printed_pairs_when_read_back_then_the_report_and_the_pairs_are_kept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pairs = [Pair("a", 1.0, 2.0, "x/s", True, 0.5), Pair("b", 3.0, 1.5, "s", False)]
    print("a line of figures")
    print_pairs(pairs, {"events": 7})
    output = capsys.readouterr().out
    last = json.loads(output.splitlines()[-1])
    assert last["events"] == 7 and [p["ratio"] for p in last["pairs"]] == [0.5, 0.5]
    assert pairs_of(output) == pairs


def test_given_an_output_without_pairs_when_read_then_the_error_says_so() -> None:
    with pytest.raises(ValueError, match='no JSON line with "pairs"'):
        pairs_of('figures\n{"events": 1}\n')
