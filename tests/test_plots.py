"""The plot rules that can be checked in code: scales, axis limits, labels, frontier, caveats, intervals."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from _fake_sweep import fake_records
from PIL import Image
from scipy.stats import binomtest

from bench.report import plots
from bench.report.plot_style import PALETTE, Caveats, apply_scale, boxes_overlap, choose_scale, ranges, style
from bench.report.summary import summarize


@pytest.fixture(scope="module")
def sweep() -> tuple[object, object]:
    records = fake_records()
    return summarize(records), records


def test_log_axis_only_when_values_span_over_10x() -> None:
    assert choose_scale([0.20, 1.64, 40.0]) == "log"
    assert choose_scale([0.0, 0.20, 1.64, 40.0]) == "symlog"  # a free target beside paid ones
    assert choose_scale([1.0, 2.0, 9.9]) == "linear"
    assert choose_scale([0.0, 0.0]) == "linear"
    assert choose_scale([np.nan, 5.0]) == "linear"


def test_non_negative_axes_never_go_below_zero() -> None:
    fig, ax = plt.subplots()
    apply_scale(ax, "x", [0.0, 0.0, 0.0], nonnegative=True)  # all-zero cost: 0 to 1, not -0.04 to 0.04
    assert ax.get_xlim() == (0.0, 1.0)
    apply_scale(ax, "y", [0.5, 2.0, 3.0], nonnegative=True)
    assert ax.get_ylim()[0] == 0.0 and ax.get_ylim()[1] >= 3.0
    plt.close(fig)


def test_quality_vs_cost_reads_at_36_groups(sweep: tuple[object, object]) -> None:
    summary, records = sweep
    fig = plots.quality_vs_cost(summary, Caveats.of(summary, records))  # type: ignore[arg-type]
    ax = fig.axes[0]
    assert ax.get_xscale() == "symlog" and ax.get_xlim()[0] >= 0.0
    labels = [t for t in ax.texts if t.get_text()[:1].isdigit()]
    assert labels and boxes_overlap(labels, fig) == 0
    # Every group number appears once: in a point label or a merged range label ("10-18").
    shown = set()
    for t in labels:
        for part in t.get_text().split(","):
            a, _, b = part.partition("-")
            shown.update(range(int(a), int(b or a) + 1))
    assert shown == set(range(1, 37))
    key = "\n".join(t.get_text() for t in fig.axes[1].texts)
    assert " 36  replicate:sdxl steps=8 cfg=7 512x512" in key
    plt.close(fig)


def test_frontier_is_visible_with_one_point(sweep: tuple[object, object]) -> None:
    summary, _ = sweep
    one = summary.iloc[[0]].reset_index(drop=True)  # type: ignore[attr-defined]
    fig = plots.quality_vs_latency(one, Caveats())
    rings = [c for c in fig.axes[0].collections if "Pareto frontier" in str(c.get_label())]
    assert len(rings) == 1 and rings[0].get_offsets().shape == (1, 2) and rings[0].get_sizes()[0] >= 100
    assert "(1 group)" in rings[0].get_label()
    plt.close(fig)


def test_steps_axis_is_log2_for_a_doubling_grid(sweep: tuple[object, object]) -> None:
    _, records = sweep
    fig = plots.clip_vs_params(records, Caveats())  # type: ignore[arg-type]
    assert fig.axes[0].get_xscale() == "log" and fig.axes[1].get_xscale() == "log"  # 2..8, 1..7
    plt.close(fig)


def test_no_failures_is_said_in_words() -> None:
    records = fake_records(failures=False)
    fig = plots.failure_rates(records, Caveats())
    words = " ".join(t.get_text() for t in fig.texts)
    assert "No failures: 0 errors and 0 refusals in 216 requests" in words
    plt.close(fig)


def test_wilson_matches_scipy_and_is_drawn(sweep: tuple[object, object]) -> None:
    ref = binomtest(1, 2).proportion_ci(method="wilson")
    assert plots.wilson(1, 2) == pytest.approx((ref.low, ref.high))
    assert plots.wilson(1, 2)[0] < 0.1 and plots.wilson(1, 2)[1] > 0.9  # "1 of 2" is not "50%"
    _, records = sweep
    fig = plots.failure_rates(records, Caveats())  # type: ignore[arg-type]
    assert any("Wilson" in ax.get_xlabel() for ax in fig.axes)
    assert all(ax.get_xlim()[0] == 0.0 for ax in fig.axes)
    plt.close(fig)


def test_p90_marker_is_labelled(sweep: tuple[object, object]) -> None:
    _, records = sweep
    fig = plots.latency_ecdf(records, Caveats())  # type: ignore[arg-type]
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert sum(t.startswith("p90 ") for t in texts) == 4
    assert any("polled ≤0.4 s" in t.get_text() for t in fig.axes[0].get_legend().get_texts())
    plt.close(fig)


def test_every_saved_figure_carries_its_caveats(sweep: tuple[object, object], tmp_path: Path) -> None:
    summary, records = sweep
    written = plots.write_plots(summary, records, tmp_path)  # type: ignore[arg-type]
    assert set(written) == set(plots.PLOTS) and "by_category" in written
    for name in plots.PLOTS:
        svg = (tmp_path / f"{name}.svg").read_text()
        for word in ("SYNTHETIC", "EMULATOR", "RANDOM-INIT", "POLLED"):
            assert word in svg, (name, word)
        with Image.open(tmp_path / f"{name}.png") as im:
            assert "RANDOM-INIT" in im.info["Description"] and "EMULATOR" in im.info["Description"]


def test_palette_has_no_greys_and_stays_distinct() -> None:
    for colour in PALETTE:
        r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
        assert max(r, g, b) - min(r, g, b) > 40 or colour == "#000000"
    assert len({(style(i)["color"], style(i)["marker"]) for i in range(40)}) == 40
    assert ranges([1, 2, 3, 5, 7, 8]) == "1-3,5,7-8"


def test_fid_below_its_minimum_n_is_a_caveat(sweep: tuple[object, object]) -> None:
    summary, records = sweep
    scored = summary.assign(fid=12.3)  # type: ignore[attr-defined]
    line = " ".join(Caveats.of(scored, records).lines())  # type: ignore[arg-type]
    assert "FID from n=" in line and "below the 2048" in line
    assert "FID" not in Caveats.of(summary, records).text()  # type: ignore[arg-type]
