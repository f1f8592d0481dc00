"""The gate's decision rules hold their level at the boundary (seeded simulations, bench/gate/simulate.py).

False alarms: the true change sits exactly on the rule's threshold (CLIP drop 0.5, p90 ratio
1.20, Elo difference 0), so a correct one-sided rule fails about 2.5% of the time (95%
interval, one target). With 2,000 draws the standard error of 2.5% is 0.35 points: the bound
nominal + 1 point passes a correct rule; the previous BCa latency rule failed 5.3-7.0% of the time
over 12 pairs (docs/gate-checks.md, `python -m bench.gate.simulate --bootstrap`). Power at a planted change is
printed (pytest -s) and held to a floor well below the figure in the docs.
"""

from __future__ import annotations

import pytest

from bench.gate import simulate

NOMINAL = simulate.ALPHA
DRAWS = 2000


@pytest.mark.parametrize("kind", ["normal", "lognormal"])
@pytest.mark.parametrize("prompts", [12, 48])
def test_clip_check_false_alarms_at_nominal_and_power_at_a_planted_drop(kind: str, prompts: int) -> None:
    false_alarm = simulate.clip_fail_rate(kind, prompts, simulate.CLIP_MAX_DROP, DRAWS, seed=prompts)
    power = simulate.clip_fail_rate(kind, prompts, 1.5, DRAWS, seed=prompts + 1)
    print(
        f"CLIP {kind} {prompts} prompts: false alarms {100 * false_alarm:.2f}%, power at -1.5 {100 * power:.1f}%"
    )
    assert false_alarm <= NOMINAL + 0.01
    assert false_alarm >= NOMINAL - 0.015  # and not conservative to the point of uselessness
    assert power >= (0.25 if prompts == 12 else 0.9)


@pytest.mark.parametrize("kind", ["normal", "lognormal"])
@pytest.mark.parametrize("pairs", [12, 48])
def test_latency_ratio_check_false_alarms_at_nominal_and_power_at_a_planted_rise(
    kind: str, pairs: int
) -> None:
    draws = DRAWS // 2  # 1,000 draws: the swap test re-sorts every pattern
    false_alarm = simulate.latency_fail_rate(kind, pairs, 1.0 + simulate.LATENCY_MAX_RISE, draws, seed=pairs)
    power = simulate.latency_fail_rate(kind, pairs, 2.0, draws, seed=pairs + 1)
    print(
        f"latency p90 {kind} {pairs} pairs: false alarms {100 * false_alarm:.2f}%, power at 2x {100 * power:.1f}%"
    )
    assert false_alarm <= NOMINAL + 0.01
    assert power >= 0.5


def test_elo_difference_rule_false_alarms_at_nominal_and_catches_a_261_point_drop() -> None:
    false_alarm = simulate.elo_fail_rate(0.0, 90, reps=300, seed=90, n_boot=200)
    power_261 = simulate.elo_fail_rate(-261.0, 90, reps=60, seed=91, n_boot=200)
    power_100 = simulate.elo_fail_rate(-100.0, 90, reps=60, seed=92, n_boot=200)
    print(f"Elo, 90 votes: false alarms {100 * false_alarm:.1f}%, power -100 {100 * power_100:.0f}%, "
          f"-261 {100 * power_261:.0f}%")  # fmt: skip
    assert false_alarm <= NOMINAL + 0.015  # 300 draws: standard error 0.9 points
    assert power_261 >= 0.9
