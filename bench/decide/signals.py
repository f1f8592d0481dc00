"""The quality signals a decision (and a report's quality axis) can rest on, by name.

Kept free of pandas so that `bench run` can check `report.quality_metric` before any request
without paying for the import. `bench.report.quality_axes` re-exports these for the plots.
"""

from __future__ import annotations

from dataclasses import dataclass

# name -> (summary column, interval low, interval high, label, higher is better, fingerprint column)
AXES: dict[str, tuple[str, str, str, str, bool, str]] = {
    "arena_elo": ("arena_elo", "arena_elo_ci_low", "arena_elo_ci_high", "Arena Elo (human votes, 95% CI)", True, ""),
    "judge_adherence": ("judge_adherence_mean", "judge_adherence_ci_low", "judge_adherence_ci_high",
                        "VLM judge adherence (share of yes, 95% CI over prompts)", True, "judge_fingerprint"),
    "judge_rubric": ("judge_rubric_mean", "judge_rubric_ci_low", "judge_rubric_ci_high",
                     "VLM judge rubric (1-10, 95% CI over prompts)", True, "judge_fingerprint"),
    "pickscore": ("pickscore_mean", "pickscore_ci_low", "pickscore_ci_high",
                  "PickScore (mean, 95% CI over prompts)", True, "pickscore_fingerprint"),
    "hpsv2": ("hpsv2_mean", "hpsv2_ci_low", "hpsv2_ci_high", "HPSv2.1 (mean, 95% CI over prompts)", True,
              "hpsv2_fingerprint"),
    "clip": ("clip_mean", "clip_ci_low", "clip_ci_high", "CLIP score (mean, 95% CI over prompts)", True,
             "clip_fingerprint"),
    "kid": ("kid_mean", "", "", "KID vs the reference (lower is better)", False, "fid_fingerprint"),
    "fid": ("fid", "", "", "FID vs the reference (lower is better)", False, "fid_fingerprint"),
}  # fmt: skip
QUALITY_ORDER = tuple(AXES)
CHOICES = ("auto", *QUALITY_ORDER)

# Per-image score column in records.parquet, for the signals paired prompt by prompt.
PER_IMAGE_COLUMN: dict[str, str] = {
    "judge_adherence": "judge_adherence",
    "judge_rubric": "judge_rubric",
    "pickscore": "pickscore",
    "hpsv2": "hpsv2",
    "clip": "clip_score",
}
# Per-image scores that are shares (the judge's yes answers out of its questions): their intervals
# come from bench.stats.share_ci (Clopper-Pearson), never past 0 or 1.
SHARE_SCORES = frozenset({"judge_adherence"})
SHORT_NAME: dict[str, str] = {
    "arena_elo": "Elo",
    "judge_adherence": "judge adherence",
    "judge_rubric": "judge rubric",
    "pickscore": "PickScore",
    "hpsv2": "HPSv2",
    "clip": "CLIP",
    "kid": "KID",
    "fid": "FID",
}


@dataclass(frozen=True)
class Signal:
    name: str
    column: str  # the summary column
    low: str
    high: str
    label: str
    higher_is_better: bool
    fingerprint_column: str

    @property
    def short(self) -> str:
        return SHORT_NAME[self.name]

    @property
    def per_image_column(self) -> str | None:
        return PER_IMAGE_COLUMN.get(self.name)


def signal(name: str) -> Signal:
    column, low, high, label, better, fp = AXES[name]
    return Signal(name, column, low, high, label, better, fp)
