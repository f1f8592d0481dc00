"""bench.decide: the paired BCa test against scipy's BCa, Holm, the rule's outcomes and exit codes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import bootstrap

from bench.decide.io import _plain, read_verdict, write_verdict
from bench.decide.paired import _test_columns, _weights, holm, pair_tests, prompts_to_decide
from bench.decide.render import verdict_block
from bench.decide.settings import DEFAULT_MARGINS, Constraints, DecideSettings, parse_settings
from bench.decide.verdict import decide, judge_is_emulated
from bench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_bca_bounds_agree_with_scipy_on_skewed_differences() -> None:
    rng = np.random.default_rng(3)
    d = rng.exponential(1.0, size=40) - 0.6  # skewed paired differences
    conf = 0.95
    ours = _test_columns(d[:, None], 1.0, _weights(np.random.default_rng(1), 20000, len(d)), conf)[0]
    # scipy's two-sided BCa at 0.90 has the one-sided 0.95 bounds as its ends.
    ref = bootstrap((d,), np.mean, confidence_level=2 * conf - 1, method="BCa", n_resamples=20000,
                    random_state=np.random.default_rng(2)).confidence_interval  # fmt: skip
    assert ours.low == pytest.approx(ref.low, abs=0.02)
    assert ours.high == pytest.approx(ref.high, abs=0.02)
    assert ours.diff == pytest.approx(d.mean())


@pytest.mark.parametrize("margin", [0.05, 0.2, 0.4, 0.6])
def test_p_value_is_the_level_at_which_the_lower_bound_meets_the_margin(margin: float) -> None:
    rng = np.random.default_rng(5)
    d = rng.gamma(2.0, 0.3, size=25) - 0.5
    w = _weights(np.random.default_rng(0), 4000, len(d))
    test = _test_columns(d[:, None], margin, w, 0.95)[0]
    # At confidence 1 - p the BCa lower bound sits on -margin; a bit more or less confidence moves it across.
    if 0.002 < test.p < 0.5:
        tighter = _test_columns(d[:, None], margin, w, 1 - test.p * 0.8)[0]
        looser = _test_columns(d[:, None], margin, w, 1 - test.p * 1.25)[0]
        assert tighter.low < -margin + 1e-9 or math.isclose(tighter.low, -margin, abs_tol=0.01)
        assert looser.low > -margin - 0.01
    assert (test.p <= 0.05) == (test.low > -margin)


def test_holm_matches_the_textbook_example() -> None:
    # Holm (1979) step-down: sorted p times (m, m-1, ...), made monotone, capped at 1; NaN is not a test.
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.005])
    adj = holm(p)
    assert adj[4] == pytest.approx(0.02)
    assert adj[0] == pytest.approx(0.03)
    assert adj[2] == pytest.approx(0.06)
    assert adj[1] == pytest.approx(0.06)
    assert np.isnan(adj[3])


def test_pairs_use_only_shared_prompts_and_say_how_many() -> None:
    table = np.array([[1.0, 1.0], [2.0, np.nan], [3.0, 2.5], [4.0, 4.0], [5.0, 4.5]] * 3)
    tests = pair_tests(table, 1.0, n_boot=200, confidence=0.95, seed=0, min_n=3)
    assert tests[(0, 1)].n == 12
    assert tests[(0, 1)].diff == pytest.approx(np.mean([0.0, 0.5, 0.0, 0.5]))
    assert prompts_to_decide(-0.9, 1.0, 10, 1.0, 0.05) > 100  # an effect near the margin needs many prompts


def _study(quality: dict[str, float], cost: dict[str, float], *, prompts: int = 30, seed: int = 0,
           noise: float = 0.02, fp: str = "judge:emu:x") -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    rng = np.random.default_rng(seed)
    rows = []
    for g, q in quality.items():
        for p in range(prompts):
            for _seed in range(2):
                rows.append({"target": g, "prompt_id": f"p{p}", "category": f"c{p % 3}", "status": "ok",
                             "judge_adherence": q + rng.normal(0, noise), "judge_fingerprint": fp})  # fmt: skip
    records = pd.DataFrame(rows)
    means = records.groupby("target")["judge_adherence"].mean()
    summary = pd.DataFrame({"target": list(quality), "group": list(quality),
                            "cost_per_1k_usd": [cost[g] for g in quality], "latency_p90_s": 1.0,
                            "refusal_rate": 0.0, "ok_rate": 1.0,
                            "judge_adherence_mean": [means[g] for g in quality],
                            "judge_adherence_ci_low": np.nan, "judge_adherence_ci_high": np.nan,
                            "judge_fingerprint": fp})  # fmt: skip
    return summary, records


def test_cheap_group_as_good_is_recommended_and_a_worse_one_is_not() -> None:
    summary, records = _study(
        {"big": 0.90, "cheap": 0.89, "bad": 0.70}, {"big": 10.0, "cheap": 1.0, "bad": 0.5}
    )
    v = decide(summary, records)
    assert v.status == "recommended" and v.exit_code == 0
    assert v.best == "big" and v.recommended == "cheap"
    assert set(v.non_inferior) == {"big", "cheap"}
    assert v.signal == "judge_adherence" and v.margin == 0.05 and v.margin_source == "default"
    assert v.n == 30 and v.unit == "prompts"
    cheap = next(g for g in v.groups if g.group == "cheap")
    assert cheap.diff_to_best == pytest.approx(-0.01, abs=0.01) and cheap.diff_low < cheap.diff_to_best
    assert v.category_pair == ("cheap", "big") and len(v.categories) == 3
    assert "Shown worse than the best by more than 0.05 (1): bad" in verdict_block(v)
    # A tighter margin than the gap: the expensive model is the answer.
    tight = decide(summary, records, DecideSettings(margins={"judge_adherence": 0.001}))
    assert tight.recommended == "big"


def test_constraints_exclude_every_group_exit_1() -> None:
    summary, records = _study({"a": 0.9, "b": 0.8}, {"a": 10.0, "b": 5.0})
    v = decide(summary, records, DecideSettings(constraints=Constraints(max_cost_per_1k=1.0)))
    assert v.status == "excluded" and v.exit_code == 1
    assert "cost $10.00/1k > $1.00/1k" in v.reason
    only_b = decide(summary, records, DecideSettings(constraints=Constraints(max_cost_per_1k=6.0)))
    assert only_b.recommended == "b" and next(g for g in only_b.groups if g.group == "a").excluded


def test_no_recommendation_on_signals_that_cannot_carry_a_choice() -> None:
    summary, records = _study({"a": 0.9, "b": 0.8}, {"a": 10.0, "b": 5.0})
    none = decide(summary.drop(columns=["judge_adherence_mean"]), records)
    assert none.status == "no_signal" and none.exit_code == 2 and "bench rate" in none.reason
    clip = summary.assign(clip_mean=30.0, clip_fingerprint="clip:ViT-B-32:none:random-init:abc")
    clip = clip.drop(columns=["judge_adherence_mean"])
    v = decide(clip, records)
    assert v.status == "no_signal" and "random-init" in v.reason
    asked = decide(clip, records, DecideSettings(signal="clip"))
    assert asked.status == "no_signal" and "report.quality_metric=clip" in asked.reason
    fid = summary.drop(columns=["judge_adherence_mean"]).assign(
        fid=[10.0, 20.0], reference_id="target:local:x"
    )
    v = decide(fid, records, DecideSettings(signal="fid"))
    assert v.status == "no_signal" and "own targets" in v.reason
    few_s, few_r = _study({"a": 0.9, "b": 0.8}, {"a": 10.0, "b": 5.0}, prompts=6)
    few = decide(few_s, few_r)
    assert few.status == "no_signal" and "only 6 prompts" in few.reason


def test_noisy_small_study_says_what_would_decide_it() -> None:
    summary, records = _study(
        {"big": 0.90, "cheap": 0.86}, {"big": 10.0, "cheap": 1.0}, prompts=12, noise=0.15
    )
    v = decide(summary, records)
    assert v.recommended != "cheap"
    assert any("cannot be separated at margin 0.05: about" in u and "more prompts" in u for u in v.undecided)


def test_verdict_json_round_trips_and_the_block_fits_120_columns(tmp_path: Path) -> None:
    summary, records = _study({"big": 0.90, "cheap": 0.89}, {"big": 10.0, "cheap": 1.0})
    v = decide(summary, records)
    path = write_verdict(tmp_path, v)
    data = json.loads(path.read_text())
    assert (
        data["recommended"] == "cheap" and data["non_inferior"] == ["big", "cheap"] and data["exit_code"] == 0
    )
    assert _plain(read_verdict(tmp_path).to_dict()) == _plain(v.to_dict())
    block = verdict_block(v, str(path))
    assert all(len(line) <= 120 for line in block.splitlines())
    assert "Recommended: cheap" in block and "EMULATED JUDGE" not in block


def test_emulated_judge_is_named_in_the_verdict() -> None:
    summary, records = _study(
        {"a": 0.9, "b": 0.85}, {"a": 1.0, "b": 2.0}, fp="judge:chat-emulator:emulated:1"
    )
    v = decide(summary, records)
    assert judge_is_emulated("judge:chat-emulator:emulated:1") and not judge_is_emulated(
        "judge:gpt-4.1-mini:1"
    )
    assert v.emulated and v.signal_name == "judge adherence (emulated judge)"
    assert "EMULATED JUDGE" in verdict_block(v)


def test_terminal_table_shows_the_signal_with_its_interval_within_120_columns() -> None:
    from bench.report.summary import format_table

    summary, _ = _study({"local:shapes-quality steps=16 cfg=7 512x512": 0.9, "local:shapes-fast steps=4 cfg=2 512x512": 0.8},
                        {"local:shapes-quality steps=16 cfg=7 512x512": 1.0, "local:shapes-fast steps=4 cfg=2 512x512": 2.0})  # fmt: skip
    summary = summary.assign(
        n=24, n_images=24, skipped=0, retries=0, n_cached=0, ok_rate=1.0, latency_p50_s=0.5,
        cost_per_image_usd=0.001, live_req_per_s=3.3, judge_adherence_ci_low=0.85, judge_adherence_ci_high=0.95,
        clip_mean=25.0, clip_ci_low=24.0, clip_ci_high=26.0, fid=12.0,
    )  # fmt: skip
    text = format_table(summary, "judge_adherence", emulated_judge=True)
    assert all(len(line) <= 120 for line in text.splitlines()), text
    assert "judge adherence* [95% CI]" in text and " [0.85, 0.95]" in text and "emulated judge" in text
    assert "local:shapes-quality steps=16 cfg=7 512x512" in text and "('" not in text


def test_default_margins_in_the_config_are_the_code_defaults() -> None:
    cfg = yaml.safe_load((ROOT / "configs/report/default.yaml").read_text())
    assert cfg["decide"]["margins"] == DEFAULT_MARGINS
    assert parse_settings(cfg).margin("clip") == (1.0, "default")
    assert parse_settings({"decide": {"margins": {"clip": 0.5}}}).margin("clip") == (0.5, "set")
    assert DecideSettings().margin("clip") == (1.0, "default")


@pytest.mark.parametrize(
    ("key", "value"),
    [("max_cost_per_1k", -1), ("max_refusal_rate", 1.5), ("min_ok_rate", "lots")],
)
def test_bad_constraint_names_the_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"report.decide.{key}"):
        parse_settings({"decide": {key: value}})
