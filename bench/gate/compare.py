"""`bench compare BASELINE CANDIDATE`: paired deltas with intervals, and a verdict.

Records of the two runs are matched on `gate.pair_on` (target, prompt, normalized
parameters, seed, repeat, image index): the same request in both. Before any check:

- A pair whose candidate answer was replayed from the response cache (`cached`) measured
  nothing about the candidate. Checks use live pairs only, and when a target's share of live
  pairs is below `min_measured` (default 0.9) the verdict is NOT MEASURED (exit 1).
- A baseline target with no pair in the candidate makes the verdict FAIL (exit 1), unless it
  is listed in `allow_missing`.

Every check is per target, on live matched pairs:

- CLIP (and PickScore, HPSv2, judge scores): interval of mean(candidate - baseline) by
  inverting a sign-flip permutation test over whole prompts (bench/permutation.py; exact
  at the boundary when the pairs are exchangeable after the allowed drop, whatever the
  score distribution). Fails when the upper bound is below -clip.max_drop.
- Latency p50/p90: a within-pair swap test of p(candidate) / p(baseline) at 1 + max_rise
  (exact under a scaled null), the interval by inverting it. Fails when the test rejects,
  i.e. the ratio's lower bound exceeds 1 + max_rise.
- Cost per image: paired bootstrap of the mean; fails when the lower bound of the rise
  exceeds cost.max_rise of the baseline's mean. Any unknown (NaN) cost among the pairs
  makes the check "unknown": no verdict on fake numbers.
- ok rate: paired bootstrap of the change (resampling prompts); fails when the upper
  bound is below -ok_rate.max_drop.
- Refusal rate: exact one-sided McNemar test (binomial on the discordant pairs: refused
  only in the candidate vs only in the baseline); fails when p < alpha and the rise
  exceeds refusal.min_rise. The bootstrap interval of the change is shown beside it.
- Retries: the share of requests that needed more than one attempt (paired bootstrap of
  the change, resampling prompts; fails when the lower bound of the rise exceeds
  retries.max_rise_rate) and the mean attempts per request (fails when the lower bound
  of the ratio exceeds 1 + retries.max_rise_attempts). A provider that answers 15% of
  requests with a 5xx still ends "ok" after a retry; these checks see it.
- Arena Elo (`bench rate CANDIDATE --against BASELINE` votes): arms are (run, group); fails
  when the upper bound of the bootstrap interval of Elo(candidate) - Elo(baseline) is below
  -arena.max_drop (bench/gate/arena_check.py).
- FID/KID: per-group deltas from both metrics.parquet files, only when both use the
  same reference and Inception fingerprint; informational unless fid.max_rise is set.

With `correction: bonferroni` the error rate 1-confidence (and alpha) is split over the
targets compared, so a sweep of 20 targets does not fail by chance one time in two.
Unusable input (missing files, nothing paired, scores computed differently) raises
GateUnusable: exit code 2 with one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import binomtest

from bench import permutation, stats
from bench.errors import BenchError
from bench.gate import quality
from bench.gate.arena_check import arena_checks
from bench.metrics.errors import FingerprintMismatch
from bench.metrics.fingerprint import is_random_init, require_same
from bench.report.runs import NotARunFolder, RunSet
from bench.store import BrokenRecords

EXIT_PASS, EXIT_REGRESSION, EXIT_UNUSABLE = 0, 1, 2
ALL = "(all targets)"
DEFAULT_PAIR_ON = (
    "target", "prompt_id", "steps", "guidance", "seed", "size", "width", "height",
    "aspect_ratio", "negative_prompt", "repeat", "image_index",
)  # fmt: skip


class GateUnusable(BenchError):
    """The two inputs cannot be compared (missing files, nothing paired, different fingerprints)."""


def _opt(v: Any) -> float | None:
    return None if v is None else float(v)


@dataclass(frozen=True)
class GateConfig:
    confidence: float = 0.95
    correction: str = "bonferroni"
    n_boot: int = 2000
    seed: int = 0
    pair_on: tuple[str, ...] = DEFAULT_PAIR_ON
    clip_max_drop: float | None = 0.5
    latency_max_rise_p50: float | None = None
    latency_max_rise_p90: float | None = 0.20
    cost_max_rise: float | None = 0.10
    ok_rate_max_drop: float | None = 0.05
    refusal_alpha: float = 0.05
    refusal_min_rise: float = 0.0
    retry_rate_max_rise: float | None = 0.05
    attempts_max_rise: float | None = 0.10
    fid_max_rise: float | None = None
    output_dir: str | None = None
    # Pairs with a side replayed from the response cache carry another run's latency.
    include_cached_latency: bool = False
    # PickScore / HPSv2 / judge adherence / judge rubric: gate.<metric>.max_drop (bench/gate/quality.py)
    quality_max_drop: Mapping[str, float | None] = field(default_factory=dict)
    # A pair whose candidate answer was replayed from the response cache measured nothing about the
    # candidate: below this share of live pairs (per target) the verdict is NOT MEASURED.
    min_measured: float = 0.9
    # Baseline targets allowed to have no candidate counterpart (else the verdict is FAIL).
    allow_missing: tuple[str, ...] = ()
    # Arena: fail when the upper bound of Elo(candidate) - Elo(baseline) is below -max_drop.
    arena_max_drop: float = 0.0

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> GateConfig:
        g = dict(raw or {})

        def sub(name: str) -> dict[str, Any]:
            return dict(g.get(name) or {})

        correction = str(g.get("correction", "bonferroni"))
        if correction not in ("none", "bonferroni"):
            from bench.errors import ConfigError

            raise ConfigError("gate.correction", correction, "use none or bonferroni")
        return cls(
            confidence=float(g.get("confidence", 0.95)),
            correction=correction,
            n_boot=int(g.get("n_boot", 2000)),
            seed=int(g.get("seed", 0)),
            pair_on=tuple(g.get("pair_on") or DEFAULT_PAIR_ON),
            clip_max_drop=_opt(sub("clip").get("max_drop", 0.5)),
            latency_max_rise_p50=_opt(sub("latency").get("max_rise_p50")),
            latency_max_rise_p90=_opt(sub("latency").get("max_rise_p90", 0.20)),
            cost_max_rise=_opt(sub("cost").get("max_rise", 0.10)),
            ok_rate_max_drop=_opt(sub("ok_rate").get("max_drop", 0.05)),
            refusal_alpha=float(sub("refusal").get("alpha", 0.05)),
            refusal_min_rise=float(sub("refusal").get("min_rise", 0.0)),
            retry_rate_max_rise=_opt(sub("retries").get("max_rise_rate", 0.05)),
            attempts_max_rise=_opt(sub("retries").get("max_rise_attempts", 0.10)),
            fid_max_rise=_opt(sub("fid").get("max_rise")),
            output_dir=g.get("output_dir"),
            include_cached_latency=bool(g.get("include_cached_latency", False)),
            quality_max_drop=quality.max_drops(g),
            min_measured=_share("gate.min_measured", g.get("min_measured", 0.9)),
            allow_missing=_targets("gate.allow_missing", g.get("allow_missing")),
            arena_max_drop=float(sub("arena").get("max_drop", 0.0) or 0.0),
        )


def _share(key: str, value: Any) -> float:
    from bench.errors import ConfigError

    try:
        share = float(value)
    except (TypeError, ValueError):
        raise ConfigError(key, value, "give a share between 0 and 1, e.g. 0.9") from None
    if not 0.0 <= share <= 1.0:
        raise ConfigError(key, value, "give a share between 0 and 1, e.g. 0.9")
    return share


def _targets(key: str, value: Any) -> tuple[str, ...]:
    from bench.errors import ConfigError

    if value is None:
        return ()
    if isinstance(value, str) or not all(isinstance(t, str) for t in value):
        raise ConfigError(key, value, "list target names, e.g. [fal:flux/dev]")
    return tuple(value)


@dataclass(frozen=True)
class Check:
    target: str
    metric: str
    baseline: float
    candidate: float
    delta: float  # candidate - baseline; for relative checks candidate/baseline - 1
    low: float
    high: float
    relative: bool
    n_pairs: int
    status: str  # pass | FAIL | info | unknown | skipped
    rule: str
    detail: str = ""


@dataclass
class GateResult:
    baseline: str
    candidate: str
    n_pairs: int
    checks: list[Check]
    notes: list[str] = field(default_factory=list)
    clip_fingerprint: str | None = None
    fid_fingerprint: str | None = None
    confidence_per_check: float = 0.95
    # Live pairs (the candidate's answer was sent in the candidate run, not replayed) per target.
    measured: dict[str, int] = field(default_factory=dict)
    paired: dict[str, int] = field(default_factory=dict)
    min_measured: float = 0.9
    missing_targets: list[str] = field(default_factory=list)  # baseline targets with no pair, not allowed
    allowed_missing: list[str] = field(default_factory=list)
    # The candidate folder's recommendation (its verdict.json, written by bench report / recommend), one line.
    decision: str = ""

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "FAIL"]

    @property
    def n_measured(self) -> int:
        return sum(self.measured.values())

    @property
    def unmeasured_targets(self) -> list[str]:
        """Targets whose share of live pairs is below min_measured (or that have none at all)."""
        return [
            t
            for t, n in sorted(self.paired.items())
            if self.measured.get(t, 0) == 0 or self.measured.get(t, 0) < self.min_measured * n
        ]

    @property
    def not_measured(self) -> bool:
        return bool(self.unmeasured_targets) or self.n_measured == 0

    @property
    def exit_code(self) -> int:
        bad = self.failed or self.not_measured or self.missing_targets
        return EXIT_REGRESSION if bad else EXIT_PASS

    @property
    def verdict(self) -> str:
        if self.not_measured:
            return "NOT MEASURED"
        if self.missing_targets:
            return "FAIL"
        return "REGRESSION" if self.failed else "PASS"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["verdict"] = self.verdict
        out["exit_code"] = self.exit_code
        out["n_measured"] = self.n_measured
        out["unmeasured_targets"] = self.unmeasured_targets
        return out


def _load(path: Path, role: str) -> RunSet:
    try:
        return RunSet.load(path)
    except (NotARunFolder, BrokenRecords) as exc:
        raise GateUnusable(f"{role}: {exc}") from None
    except FingerprintMismatch as exc:
        raise GateUnusable(f"{role}: {exc}") from None


def pair_records(base: pd.DataFrame, cand: pd.DataFrame, keys: tuple[str, ...]) -> pd.DataFrame:
    """Matched pairs (suffixes _b, _c) of attempted requests; NaN keys match NaN."""
    on = [k for k in keys if k in base.columns and k in cand.columns]
    if "target" not in on or "prompt_id" not in on:
        raise GateUnusable("pairing needs the target and prompt_id columns in both records.parquet files")
    b = base[base["status"] != "skipped"].drop_duplicates(subset=on, keep="last")
    c = cand[cand["status"] != "skipped"].drop_duplicates(subset=on, keep="last")
    return b.merge(c, on=on, how="inner", suffixes=("_b", "_c"))


F64 = npt.NDArray[np.float64]


def _flag(pairs: pd.DataFrame, col: str) -> pd.Series:
    if col not in pairs:
        return pd.Series(False, index=pairs.index)
    return pairs[col].astype("boolean").fillna(False).astype(bool)


def replayed_pairs(pairs: pd.DataFrame) -> pd.Series:
    """True where either side of a pair was replayed from the response cache (not sent in that run)."""
    return _flag(pairs, "cached_b") | _flag(pairs, "cached_c")


def live_candidate(pairs: pd.DataFrame) -> pd.Series:
    """True where the candidate's answer was sent in the candidate run: the pair measures it.

    A replayed answer (`cached`) is another run's answer, often the baseline's own: comparing it
    with the baseline measures nothing about the candidate.
    """
    return ~_flag(pairs, "cached_c")


def _rate_bounds(d: stats.PairedDelta) -> tuple[float, float]:
    """A change of rate lies in [-1, 1]; an unbounded side of the interval (too few failures
    to studentize) is shown as that limit rather than as infinity."""
    return float(np.clip(d.delta.low, -1.0, 1.0)), float(np.clip(d.delta.high, -1.0, 1.0))


class _Gate:
    def __init__(self, cfg: GateConfig, n_targets: int) -> None:
        self.cfg = cfg
        m = max(1, n_targets) if cfg.correction == "bonferroni" else 1
        self.conf = 1.0 - (1.0 - cfg.confidence) / m
        self.alpha = cfg.refusal_alpha / m

    def _delta(self, b: F64, c: F64, clusters: Any = None, stat: stats.Stat = np.mean) -> stats.PairedDelta:
        return stats.paired_bootstrap_delta(
            b,
            c,
            stat=stat,
            n_boot=self.cfg.n_boot,
            confidence=self.conf,
            seed=self.cfg.seed,
            clusters=clusters,
        )

    def _shift(self, b: F64, c: F64, clusters: Any) -> stats.PairedDelta:
        """Mean paired change, sign-flip test over prompts (exact at the boundary; bench/permutation.py)."""
        return permutation.paired_mean_shift(
            b, c, clusters=clusters, confidence=self.conf, n_perm=self.cfg.n_boot, seed=self.cfg.seed
        )

    def clip(self, t: str, p: pd.DataFrame, info: bool) -> Check:
        check: Check = quality.paired_drop(
            self, t, p, "clip", self.cfg.clip_max_drop, info, Check, column="clip_score"
        )
        return check

    def latency(self, t: str, p: pd.DataFrame, q: float, thr: float | None, info: bool) -> Check:
        ok = p[(p["status_b"] == "ok") & (p["status_c"] == "ok")]
        if not self.cfg.include_cached_latency:
            ok = ok[~replayed_pairs(ok)]
        ok = ok[ok["latency_s_b"].notna() & ok["latency_s_c"].notna()]
        name = f"latency_p{q:g}"
        rule = "report only" if thr is None else f"fail if ratio lower bound > {1 + thr:.2f}"
        if len(ok) < 2:
            return Check(
                t,
                name,
                np.nan,
                np.nan,
                np.nan,
                np.nan,
                np.nan,
                True,
                len(ok),
                "skipped",
                rule,
                "fewer than 2 ok pairs",
            )
        # The swap test at the boundary decides; its inversion gives the interval shown.
        d, p_boundary = permutation.paired_quantile_ratio(
            ok["latency_s_b"].to_numpy(float),
            ok["latency_s_c"].to_numpy(float),
            q=q,
            boundary=float(np.log1p(thr)) if thr is not None else 0.0,
            confidence=self.conf,
            n_perm=self.cfg.n_boot,
            seed=self.cfg.seed,
        )
        low, high = np.exp(d.delta.low) - 1.0, np.exp(d.delta.high) - 1.0
        fail = thr is not None and p_boundary <= (1.0 - self.conf) / 2.0
        status = "info" if (info or thr is None) else ("FAIL" if fail else "pass")
        return Check(t, name, float(np.exp(d.baseline)), float(np.exp(d.candidate)), float(np.exp(d.delta.estimate) - 1.0),
                     float(low), float(high), True, len(ok), status, rule)  # fmt: skip

    def cost(self, t: str, p: pd.DataFrame, info: bool) -> Check:
        ok = p[(p["status_b"] == "ok") & (p["status_c"] == "ok")]
        thr = self.cfg.cost_max_rise
        rule = "report only" if thr is None else f"fail if rise lower bound > {100 * thr:g}%"
        if ok.empty:
            return Check(
                t,
                "cost_per_image",
                np.nan,
                np.nan,
                np.nan,
                np.nan,
                np.nan,
                True,
                0,
                "skipped",
                rule,
                "no ok pairs",
            )
        b, c = ok["cost_usd_b"].to_numpy(float), ok["cost_usd_c"].to_numpy(float)
        unknown = int((np.isnan(b) | np.isnan(c)).sum())
        if unknown:
            return Check(t, "cost_per_image", np.nan, np.nan, np.nan, np.nan, np.nan, True, len(ok), "unknown", rule,
                         f"{unknown}/{len(ok)} paired images have unknown cost (no price, none reported)")  # fmt: skip
        d = self._delta(b, c, ok["prompt_id"].astype(str).to_numpy())
        if d.baseline > 0:
            rel, low, high = (
                d.delta.estimate / d.baseline,
                d.delta.low / d.baseline,
                d.delta.high / d.baseline,
            )
        elif d.candidate == 0:
            rel, low, high = 0.0, 0.0, 0.0
        else:  # free before, paid now: an unbounded rise
            rel, low, high = np.inf, (np.inf if d.delta.low > 0 else 0.0), np.inf
        fail = thr is not None and not np.isnan(low) and low > thr
        status = "info" if (info or thr is None) else ("FAIL" if fail else "pass")
        return Check(
            t,
            "cost_per_image",
            d.baseline,
            d.candidate,
            float(rel),
            float(low),
            float(high),
            True,
            len(ok),
            status,
            rule,
        )

    def ok_rate(self, t: str, p: pd.DataFrame, info: bool) -> Check:
        thr = self.cfg.ok_rate_max_drop
        rule = "report only" if thr is None else f"fail if upper bound < -{100 * thr:g} pts"
        b: F64 = np.asarray(p["status_b"] == "ok", dtype=np.float64)
        c: F64 = np.asarray(p["status_c"] == "ok", dtype=np.float64)
        d = self._delta(b, c, p["prompt_id"].astype(str).to_numpy())
        fail = thr is not None and not np.isnan(d.delta.high) and d.delta.high < -thr
        status = "info" if (info or thr is None) else ("FAIL" if fail else "pass")
        low, high = _rate_bounds(d)
        return Check(
            t,
            "ok_rate",
            d.baseline,
            d.candidate,
            d.delta.estimate,
            low,
            high,
            False,
            len(p),
            status,
            rule,
        )

    def refusal(self, t: str, p: pd.DataFrame, info: bool) -> Check:
        b = (p["status_b"] == "refused").to_numpy(dtype=bool)
        c = (p["status_c"] == "refused").to_numpy(dtype=bool)
        only_c, only_b = int((c & ~b).sum()), int((b & ~c).sum())
        pval = (
            binomtest(only_c, only_c + only_b, 0.5, alternative="greater").pvalue if only_c + only_b else 1.0
        )
        d = self._delta(b.astype(np.float64), c.astype(np.float64), p["prompt_id"].astype(str).to_numpy())
        rise = float(c.mean() - b.mean())
        fail = pval < self.alpha and rise > self.cfg.refusal_min_rise
        rule = f"fail if McNemar p < {self.alpha:.3g} and rise > {100 * self.cfg.refusal_min_rise:g} pts"
        detail = (
            f"refused only in candidate {only_c}, only in baseline {only_b}; exact one-sided p={pval:.3g}"
        )
        status = "info" if info else ("FAIL" if fail else "pass")
        low, high = _rate_bounds(d)
        return Check(
            t,
            "refusal_rate",
            d.baseline,
            d.candidate,
            rise,
            low,
            high,
            False,
            len(p),
            status,
            rule,
            detail,
        )

    def retries(self, t: str, p: pd.DataFrame, info: bool) -> list[Check]:
        """Retry rate and mean attempts per request, on matched requests (one row per request)."""
        req = p[p["image_index"] == 0] if "image_index" in p else p
        b = req["attempts_b"].to_numpy(dtype=np.float64)
        c = req["attempts_c"].to_numpy(dtype=np.float64)
        known = ~(np.isnan(b) | np.isnan(c))
        b, c, clusters = b[known], c[known], req["prompt_id"].astype(str).to_numpy()[known]
        out = []
        thr_rate, thr_att = self.cfg.retry_rate_max_rise, self.cfg.attempts_max_rise
        rule_rate = (
            "report only" if thr_rate is None else f"fail if rise lower bound > {100 * thr_rate:g} pts"
        )
        rule_att = "report only" if thr_att is None else f"fail if ratio lower bound > {1 + thr_att:.2f}"
        if not len(b):
            for metric, rule in (("retry_rate", rule_rate), ("mean_attempts", rule_att)):
                out.append(Check(t, metric, np.nan, np.nan, np.nan, np.nan, np.nan, metric == "mean_attempts",
                                 0, "skipped", rule, "no attempt counts"))  # fmt: skip
            return out
        d = self._delta((b > 1).astype(np.float64), (c > 1).astype(np.float64), clusters)
        fail = thr_rate is not None and not np.isnan(d.delta.low) and d.delta.low > thr_rate
        status = "info" if (info or thr_rate is None) else ("FAIL" if fail else "pass")
        low_r, high_r = _rate_bounds(d)
        out.append(Check(t, "retry_rate", d.baseline, d.candidate, d.delta.estimate, low_r, high_r,
                         False, len(b), status, rule_rate))  # fmt: skip
        a = self._delta(b, c, clusters)
        base = a.baseline if a.baseline > 0 else np.nan
        rel, low, high = a.delta.estimate / base, a.delta.low / base, a.delta.high / base
        fail = thr_att is not None and not np.isnan(low) and low > thr_att
        status = "info" if (info or thr_att is None) else ("FAIL" if fail else "pass")
        out.append(Check(t, "mean_attempts", a.baseline, a.candidate, float(rel), float(low), float(high),
                         True, len(b), status, rule_att))  # fmt: skip
        return out


def _fid_checks(base: RunSet, cand: RunSet, cfg: GateConfig) -> tuple[list[Check], str | None]:
    bm, cm = base.metrics, cand.metrics
    if bm is None or cm is None or "fid" not in bm or "fid" not in cm:
        return [], None
    if not bm["fid"].notna().any() or not cm["fid"].notna().any():
        return [], None
    try:
        fp = require_same([base.fid_fingerprint, cand.fid_fingerprint], "FID/KID of baseline and candidate")
    except FingerprintMismatch as exc:
        raise GateUnusable(str(exc)) from None
    refs = {str(r) for m in (bm, cm) for r in m["reference_id"].dropna().unique()}
    if len(refs) > 1:
        raise GateUnusable(
            f"FID/KID of baseline and candidate use different references: {'; '.join(sorted(refs))}"
        )
    keys = [k for k in ("target", "steps", "guidance", "size") if k in bm and k in cm]
    merged = bm.merge(cm, on=keys, suffixes=("_b", "_c"))
    checks = []
    thr = cfg.fid_max_rise
    for row in merged.to_dict("records"):
        label = " ".join(f"{k}={row[k]}" for k in keys[1:] if not pd.isna(row[k]))
        for metric in ("fid", "kid_mean"):
            vb, vc = float(row[f"{metric}_b"]), float(row[f"{metric}_c"])
            if np.isnan(vb) or np.isnan(vc):
                continue
            fail = metric == "fid" and thr is not None and vc - vb > thr
            status = "info" if thr is None or metric != "fid" else ("FAIL" if fail else "pass")
            rule = "report only (set-level, no interval)" if thr is None else f"fail if FID rises > {thr:g}"
            checks.append(Check(f"{row['target']} {label}".strip(), metric, vb, vc, vc - vb, np.nan, np.nan, False,
                                int(min(row.get("n_b", 0), row.get("n_c", 0))), status, rule))  # fmt: skip
    return checks, fp


def compare(baseline: Path, candidate: Path, cfg: GateConfig) -> GateResult:
    base, cand = _load(Path(baseline), "baseline"), _load(Path(candidate), "candidate")
    notes: list[str] = []
    bfp, cfp = base.clip_fingerprint, cand.clip_fingerprint
    clip_fp: str | None = None
    if bfp and cfp:
        try:
            clip_fp = require_same([bfp, cfp], "CLIP scores of baseline and candidate")
        except FingerprintMismatch as exc:
            raise GateUnusable(str(exc)) from None
        if is_random_init(clip_fp):
            notes.append(
                "CLIP weights are RANDOM-INIT in both runs: the CLIP check exercises the gate, not quality."
            )
    elif bfp or cfp:
        which, other = ("baseline", "candidate") if bfp else ("candidate", "baseline")
        raise GateUnusable(
            f"the {which} has CLIP scores ({bfp or cfp}) but the {other} has none: "
            f"run `bench score {candidate if other == 'candidate' else baseline}` with the same metrics config"
        )
    else:
        notes.append("Neither run has CLIP scores: the CLIP check is skipped (run `bench score RUN_DIR`).")
    pairs = pair_records(base.records, cand.records, cfg.pair_on)
    if pairs.empty:
        raise GateUnusable(
            f"nothing paired: no record of {baseline} matches one of {candidate} on {', '.join(cfg.pair_on)} "
            "(same targets, prompts, settings and seeds?)"
        )
    attempted = base.records[base.records["status"] != "skipped"]
    bt = set(attempted["target"].astype(str))
    ct = set(cand.records["target"].astype(str))
    paired_targets = set(pairs["target"].astype(str))
    unpaired = sorted(bt - paired_targets)
    missing = [t for t in unpaired if t not in cfg.allow_missing]
    allowed = [t for t in unpaired if t in cfg.allow_missing]
    if allowed:
        notes.append(
            f"baseline targets with no candidate counterpart, allowed by --allow-missing: {', '.join(allowed)}"
        )
    stale = sorted(set(cfg.allow_missing) - set(unpaired))
    if stale:
        notes.append(f"--allow-missing names targets that are not missing: {', '.join(stale)}")
    if ct - bt:
        notes.append(f"targets only in the candidate (not compared): {', '.join(sorted(ct - bt))}")
    n_b = len(attempted)
    if len(pairs) < n_b:
        notes.append(f"{len(pairs)} of the baseline's {n_b} attempted records have a match in the candidate")
    live = live_candidate(pairs)
    paired_n = {str(t): int(n) for t, n in pairs.groupby(pairs["target"].astype(str)).size().items()}
    measured_n = {t: int(live[pairs["target"].astype(str) == t].sum()) for t in paired_n}
    n_replayed = len(pairs) - int(live.sum())
    if n_replayed:
        notes.append(
            f"{n_replayed} of {len(pairs)} pairs have a candidate answer replayed from the response cache "
            "(not a measurement): every check uses only the live pairs"
        )
    pairs = pairs[live]
    n_base_replayed = int(_flag(pairs, "cached_b").sum())
    if n_base_replayed:
        notes.append(
            f"{n_base_replayed} live pairs have a baseline answer replayed from the response cache; "
            + (
                "their latencies are included (gate.include_cached_latency=true)"
                if cfg.include_cached_latency
                else "the latency checks leave them out (gate.include_cached_latency=true to include them)"
            )
        )
    try:
        quality_metrics, _ = quality.comparable(base.records, cand.records, notes)
    except FingerprintMismatch as exc:
        raise GateUnusable(str(exc)) from None
    drops = cfg.quality_max_drop or quality.max_drops({})
    targets = sorted(paired_n)
    gate = _Gate(cfg, len(targets))
    checks: list[Check] = []
    groups: list[tuple[str, pd.DataFrame, bool]] = [(t, pairs[pairs["target"] == t], False) for t in targets]
    if len(targets) > 1:
        groups.append((ALL, pairs, True))
    for t, p, info in groups:
        if p.empty:  # no live pair: nothing to check (the verdict is NOT MEASURED)
            continue
        checks.append(gate.clip(t, p, info))
        checks.append(gate.latency(t, p, 50.0, cfg.latency_max_rise_p50, info))
        checks.append(gate.latency(t, p, 90.0, cfg.latency_max_rise_p90, info))
        checks.append(gate.cost(t, p, info))
        checks.append(gate.ok_rate(t, p, info))
        checks.append(gate.refusal(t, p, info))
        checks.extend(gate.retries(t, p, info))
        for metric in quality_metrics:
            checks.append(quality.paired_drop(gate, t, p, metric, drops.get(metric), info, Check))
    fid_checks, fid_fp = _fid_checks(base, cand, cfg)
    checks.extend(fid_checks)
    checks.extend(arena_checks(base, cand, cfg.arena_max_drop, cfg.n_boot, gate.conf, cfg.seed, notes, Check))
    if gate.conf != cfg.confidence:
        notes.append(
            f"Bonferroni over {len(targets)} targets: each interval is {100 * gate.conf:.2f}%, refusal alpha {gate.alpha:.3g}"
        )
    return GateResult(
        baseline=str(baseline),
        candidate=str(candidate),
        n_pairs=sum(paired_n.values()),
        checks=checks,
        notes=notes,
        clip_fingerprint=clip_fp,
        fid_fingerprint=fid_fp,
        confidence_per_check=gate.conf,
        measured=measured_n,
        paired=paired_n,
        min_measured=cfg.min_measured,
        missing_targets=missing,
        allowed_missing=allowed,
        decision=decision_line(Path(candidate)),
    )


def decision_line(folder: Path) -> str:
    """ "decision: X recommended (signal, margin M)" from the folder's verdict.json ("" when it has none)."""
    from bench.decide.io import read_verdict

    if not (folder / "verdict.json").is_file():
        return ""
    try:
        v = read_verdict(folder)
    except (OSError, ValueError, TypeError, KeyError):
        return "decision: verdict.json is unreadable (run `bench recommend` on the candidate)"
    if v.status == "recommended":
        return f"decision: {v.recommended} recommended ({v.signal_name}, margin {v.margin:g})"
    return f"decision: none ({v.reason})"
