"""`bench compare BASELINE CANDIDATE`: paired deltas with bootstrap intervals, and a pass/fail verdict.

Records of the two runs are matched on `gate.pair_on` (target, prompt, normalized
parameters, seed, repeat, image index): the same request in both. Every check is
per target, on matched pairs only, with intervals from bench.stats (studentized
bootstrap for mean deltas, BCa for the latency ratio; both checked by simulation to
hold their level, so a check fails by chance about as often as its confidence says):

- CLIP: paired bootstrap of mean(candidate - baseline), resampling whole prompts.
  Fails when the interval's upper bound is below -clip.max_drop ("falls by more
  than 0.5 with 95% confidence").
- Latency p50/p90: paired bootstrap of log(p(candidate)) - log(p(baseline)) over
  requests, i.e. of the ratio. Fails when the ratio's lower bound exceeds 1 + max_rise.
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

from bench import stats
from bench.errors import BenchError
from bench.gate import quality
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
        )


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

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "FAIL"]

    @property
    def exit_code(self) -> int:
        return EXIT_REGRESSION if self.failed else EXIT_PASS

    @property
    def verdict(self) -> str:
        return "REGRESSION" if self.failed else "PASS"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["verdict"] = self.verdict
        out["exit_code"] = self.exit_code
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


def replayed_pairs(pairs: pd.DataFrame) -> pd.Series:
    """True where either side of a pair was replayed from the response cache (not sent in that run)."""
    flags = pd.Series(False, index=pairs.index)
    for col in ("cached_b", "cached_c"):
        if col in pairs:
            flags |= pairs[col].fillna(False).astype(bool)
    return flags


def _log_pct(q: float) -> stats.Stat:
    def stat(a: F64, axis: int) -> F64:
        return np.asarray(np.log(np.maximum(np.percentile(a, q, axis=axis), 1e-9)), dtype=np.float64)

    return stat


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
        d = self._delta(
            ok["latency_s_b"].to_numpy(float), ok["latency_s_c"].to_numpy(float), stat=_log_pct(q)
        )
        low, high = np.exp(d.delta.low) - 1.0, np.exp(d.delta.high) - 1.0
        fail = thr is not None and not np.isnan(low) and low > thr
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


def _arena_checks(base: RunSet, cand: RunSet, cfg: GateConfig, conf: float, notes: list[str]) -> list[Check]:
    """Human preference: a candidate arm whose Elo interval lies wholly below its baseline's fails.

    Both must be rated in one pool: `bench rate CANDIDATE --against BASELINE` shows the baseline's
    groups as "baseline: ..." arms beside the candidate's, so the two are compared directly.
    """
    from bench.arena.pairs import BASELINE_PREFIX
    from bench.arena.ratings import rate
    from bench.arena.report import vote_files
    from bench.arena.votes import read_all_votes

    votes = read_all_votes([*vote_files(cand), *vote_files(base)])
    if not votes:
        return []
    ratings = rate(votes, n_boot=cfg.n_boot, confidence=conf, seed=cfg.seed)
    rows = {str(r["arm"]): r for r in ratings.table.to_dict("records")}
    rule = "fail if the candidate's Elo interval lies wholly below the baseline's"
    checks = []
    for arm, c in rows.items():
        b = rows.get(BASELINE_PREFIX + arm)
        if arm.startswith(BASELINE_PREFIX) or b is None:
            continue
        n = int(c["votes"]) + int(b["votes"])
        if np.isnan(c["elo"]) or np.isnan(b["elo"]):
            checks.append(Check(arm, "arena_elo", np.nan, np.nan, np.nan, np.nan, np.nan, False, n, "skipped",
                                rule, "not compared with each other (directly or through other arms)"))  # fmt: skip
            continue
        fail = bool(c["elo_high"] < b["elo_low"])
        detail = (
            f"candidate {c['elo']:.0f} [{c['elo_low']:.0f}, {c['elo_high']:.0f}], "
            f"baseline {b['elo']:.0f} [{b['elo_low']:.0f}, {b['elo_high']:.0f}] ({100 * conf:.4g}% intervals)"
        )
        checks.append(Check(arm, "arena_elo", float(b["elo"]), float(c["elo"]), float(c["elo"] - b["elo"]),
                            np.nan, np.nan, False, n, "FAIL" if fail else "pass", rule, detail))  # fmt: skip
    if not checks:
        notes.append(
            "arena votes found, but none rate the candidate's groups beside the baseline's: "
            "run `bench rate CANDIDATE --against BASELINE` for the Elo check"
        )
    return checks


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
    bt, ct = set(base.records["target"]), set(cand.records["target"])
    if bt - ct:
        notes.append(f"targets only in the baseline (not compared): {', '.join(sorted(bt - ct))}")
    if ct - bt:
        notes.append(f"targets only in the candidate (not compared): {', '.join(sorted(ct - bt))}")
    n_b = int((base.records["status"] != "skipped").sum())
    if len(pairs) < n_b:
        notes.append(f"{len(pairs)} of the baseline's {n_b} attempted records have a match in the candidate")
    n_replayed = int(replayed_pairs(pairs).sum())
    if n_replayed:
        notes.append(
            f"{n_replayed} of {len(pairs)} pairs include a request replayed from the response cache; "
            + (
                "their latencies are included (gate.include_cached_latency=true)"
                if cfg.include_cached_latency
                else "the latency checks use only the live pairs (gate.include_cached_latency=true to include them)"
            )
        )
    try:
        quality_metrics, _ = quality.comparable(base.records, cand.records, notes)
    except FingerprintMismatch as exc:
        raise GateUnusable(str(exc)) from None
    drops = cfg.quality_max_drop or quality.max_drops({})
    targets = sorted(pairs["target"].astype(str).unique())
    gate = _Gate(cfg, len(targets))
    checks: list[Check] = []
    groups: list[tuple[str, pd.DataFrame, bool]] = [(t, pairs[pairs["target"] == t], False) for t in targets]
    if len(targets) > 1:
        groups.append((ALL, pairs, True))
    for t, p, info in groups:
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
    checks.extend(_arena_checks(base, cand, cfg, gate.conf, notes))
    if gate.conf != cfg.confidence:
        notes.append(
            f"Bonferroni over {len(targets)} targets: each interval is {100 * gate.conf:.2f}%, refusal alpha {gate.alpha:.3g}"
        )
    return GateResult(
        baseline=str(baseline),
        candidate=str(candidate),
        n_pairs=len(pairs),
        checks=checks,
        notes=notes,
        clip_fingerprint=clip_fp,
        fid_fingerprint=fid_fp,
        confidence_per_check=gate.conf,
    )
