"""report.html: one file that opens anywhere, images included.

Plots are inlined as SVG; every grid image is embedded as a 256 px WebP thumbnail
(base64, lazily decoded) that links to the full-size original by relative path, so
the file alone shows everything and, beside its run folder, opens the originals.
The summary table splits target / steps / guidance / size into columns, sorts on a
header click (a few lines of vanilla JS, no network) and scrolls inside its own box,
never the page. On load, a small script records on <body> how many grid images
decoded (data-images-loaded), which the browser test reads back.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.cache import format_age
from bench.report.plot_style import SYNTHETIC_NOTE
from bench.report.plots import PLOTS
from bench.report.thumbs import thumbnail_data_uri
from bench.report.verdict_html import VERDICT_CSS

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;overflow-x:hidden}
.tablewrap{overflow:auto;max-width:100%;max-height:80vh;border:1px solid #ccc}
table.summary{border-collapse:collapse;font-size:12px}
table.summary th,table.summary td{border:1px solid #ccc;padding:3px 6px;text-align:right;white-space:nowrap}
table.summary th{background:#eee;cursor:pointer;position:sticky;top:0}
table.summary td.l{text-align:left}
table.summary td:nth-child(2),table.summary th:nth-child(2){position:sticky;left:0;background:#fff;z-index:1}
table.summary th:nth-child(2){background:#eee;z-index:2}
.emu{display:inline-block;background:#6a3d9a;color:#fff;font-size:9px;padding:0 3px;border-radius:2px}
.poll{display:inline-block;background:#ddd;color:#333;font-size:9px;padding:0 3px;border-radius:2px}
.banner{background:#fff3cd;border:1px solid #e0c060;padding:.5em 1em;margin:1em 0}
figure.plot{margin:1em 0;max-width:100%;overflow-x:auto}
figure.plot svg{max-width:100%;height:auto}
.gridwrap{overflow:auto;max-height:90vh;border:1px solid #ccc}
table.grid{border-collapse:collapse;font-size:11px}
table.grid th,table.grid td{border:1px solid #ddd;padding:4px;vertical-align:top}
table.grid th.prompt{text-align:left;max-width:220px;font-weight:normal;position:sticky;left:0;background:#fafafa}
.cell{display:inline-block;margin:2px;text-align:center}
.cell img{width:128px;height:128px;object-fit:contain;display:block;background:#f4f4f4}
.cell .cap{font-size:10px;color:#444;line-height:1.25}
.cell.failed{width:128px;height:128px;background:#fde;display:inline-flex;align-items:center;justify-content:center}
.syn{display:inline-block;background:#d55e00;color:#fff;font-size:9px;padding:0 3px;border-radius:2px}
code{font-size:11px}
"""

SCRIPT = """
document.querySelectorAll('table.summary th').forEach(function(th, col){
  th.addEventListener('click', function(){
    var tbody = th.closest('table').tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows);
    var asc = th.dataset.dir !== 'asc'; th.dataset.dir = asc ? 'asc' : 'desc';
    rows.sort(function(a, b){
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (isNaN(nx) || isNaN(ny)) ? String(x).localeCompare(String(y)) : nx - ny;
      if (isNaN(nx) !== isNaN(ny)) c = isNaN(nx) ? 1 : -1;
      return asc ? c : -c;
    });
    rows.forEach(function(r){ tbody.appendChild(r); });
  });
});
window.addEventListener('load', function(){
  var imgs = document.querySelectorAll('table.grid img');
  var ok = 0; imgs.forEach(function(i){ if (i.complete && i.naturalWidth > 0) ok++; });
  document.body.dataset.imagesTotal = imgs.length;
  document.body.dataset.imagesLoaded = ok;
  document.body.dataset.tableRows = document.querySelectorAll('table.summary tbody tr').length;
  document.body.dataset.plots = document.querySelectorAll('figure.plot svg').length;
});
"""

# (header, column, format); the group's keys are their own columns, "#" matches the plots' numbers.
TABLE_COLUMNS: list[tuple[str, str, str]] = [
    ("#", "_num", "d"),
    ("target", "target", "s"),
    ("steps", "steps", "g"),
    ("cfg", "guidance", "g"),
    ("size", "size", "s"),
    ("provider", "provider", "s"),
    ("requests", "n", "d"),
    ("images", "n_images", "d"),
    ("skipped", "skipped", "d"),
    ("replayed", "n_cached", "d"),
    ("retries", "retries", "d"),
    ("ok % [95% CI]", "ok_rate", "pctci"),
    ("refused % [95% CI]", "refusal_rate", "pctci"),
    ("p50 s [95% CI]", "latency_p50_s", "ci3"),
    ("p90 s [95% CI]", "latency_p90_s", "ci3"),
    ("p99 s [95% CI]", "latency_p99_s", "ci3"),
    ("target req/s", "live_req_per_s", "f2"),
    ("$/image", "cost_per_image_usd", "usd4"),
    ("$/1k images", "cost_per_1k_usd", "usd2"),
    ("CLIP [95% CI]", "clip_mean", "clip"),
    ("FID", "fid", "f1"),
    ("KID mean ± std", "kid_mean", "kid"),
]
QUALITY_TABLE_COLUMNS: list[tuple[str, str, str]] = [
    ("judge adherence [95% CI]", "judge_adherence_mean", "clip"),
    ("judge rubric [95% CI]", "judge_rubric_mean", "clip"),
    ("PickScore [95% CI]", "pickscore_mean", "clip"),
    ("HPSv2 [95% CI]", "hpsv2_mean", "ci3"),
    ("Elo [95% CI]", "arena_elo", "elo"),
]
HEADER_TITLES = {
    "requests": "requests sent (a request with several images counts once; skipped ones were not sent)",
    "images": "images that came back",
    "skipped": "requests the budget cap kept back",
    "retries": "extra attempts after a retryable failure (429, 5xx, timeout)",
    "target req/s": "this target's requests finished per wall-clock second (started_at to last finish)",
}


def replay_origin(row: Mapping[str, Any]) -> str:
    """' (run X, 3.2 days old)' for a replayed image's tooltip, from what the record knows."""
    parts = []
    if isinstance(row.get("cache_origin_run"), str):
        parts.append(f"run {html.escape(row['cache_origin_run'], quote=True)}")
    age = row.get("cache_age_s")
    if isinstance(age, float) and math.isfinite(age):
        parts.append(f"{format_age(age)} old")
    return f" ({', '.join(parts)})" if parts else ""


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return f


def _cell(row: Mapping[str, Any], col: str, fmt: str) -> tuple[str, str]:
    """(display text, sort value) for one table cell."""
    v = row.get(col)
    if fmt == "s":
        return ("-", "") if v is None or (isinstance(v, float) and np.isnan(v)) else (str(v), str(v))
    x = _num(v)
    if np.isnan(x):
        return ("unknown" if fmt.startswith("usd") else "-"), ""
    if fmt == "d":
        return f"{int(x)}", f"{x}"
    if fmt == "pct":
        return f"{100 * x:.1f}", f"{x}"
    if fmt == "pctci":  # a share with its Clopper-Pearson interval (bench.stats.share_ci): inside 0-100
        lo, hi = _num(row.get(f"{col}_ci_low")), _num(row.get(f"{col}_ci_high"))
        ci = "" if np.isnan(lo) else f" [{100 * lo:.1f}, {100 * hi:.1f}]"
        return f"{100 * x:.1f}{ci}", f"{x}"
    if fmt == "g":
        return f"{x:g}", f"{x}"
    if fmt == "f1":
        return f"{x:.1f}", f"{x}"
    if fmt == "f2":
        return f"{x:.2f}", f"{x}"
    if fmt == "usd4":
        return f"${x:.4f}", f"{x}"
    if fmt == "usd2":
        return f"${x:,.2f}", f"{x}"
    if fmt == "kid":
        return f"{x:.4f} ± {_num(row.get('kid_std')):.4f}", f"{x}"
    if fmt == "elo":
        lo, hi = _num(row.get("arena_elo_ci_low")), _num(row.get("arena_elo_ci_high"))
        return (f"{x:.0f}" + ("" if np.isnan(lo) else f" [{lo:.0f}, {hi:.0f}]")), f"{x}"
    base = col[: -len("_s")] if col.endswith("_s") else col.removesuffix("_mean")
    lo, hi = _num(row.get(f"{base}_ci_low")), _num(row.get(f"{base}_ci_high"))
    digits = 3 if fmt == "ci3" else 2
    ci = "" if np.isnan(lo) else f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return f"{x:.{digits}f}{ci}", f"{x}"


def _badges(row: Mapping[str, Any]) -> str:
    out = []
    if row.get("synthetic"):
        out.append("<span class='syn'>synthetic</span>")
    if row.get("emulated"):
        out.append("<span class='emu' title='answered by a bench emulate protocol emulator'>emulated</span>")
    poll = _num(row.get("poll_interval_max_s"))
    if not np.isnan(poll):
        out.append(f"<span class='poll' title='latency measured by polling'>polled ≤{poll:g} s</span>")
    return (" " + " ".join(out)) if out else ""


def table_columns(summary: pd.DataFrame, decides: Sequence[str] = ()) -> list[tuple[str, str, str]]:
    """TABLE_COLUMNS plus a column for every quality signal the summary has values for (the judge,
    preference models, Elo); CLIP, FID and KID only when they have values. `decides`: the summary
    column(s) the verdict rests on, marked in the header."""
    cols: list[tuple[str, str, str]] = []
    for head, col, fmt in [*TABLE_COLUMNS[:-3], *QUALITY_TABLE_COLUMNS, *TABLE_COLUMNS[-3:]]:
        optional = col in {c for _, c, _ in QUALITY_TABLE_COLUMNS} | {"clip_mean", "fid", "kid_mean"}
        if optional and (
            col not in summary or not pd.to_numeric(summary[col], errors="coerce").notna().any()
        ):
            continue
        cols.append((head + (" ★" if col in decides else ""), col, fmt))
    return cols


def summary_table(summary: pd.DataFrame, decides: Sequence[str] = ()) -> str:
    columns = table_columns(summary, decides)
    head = "".join(
        f"<th title='{html.escape(HEADER_TITLES.get(h.removesuffix(' ★'), 'the signal the verdict rests on' if h.endswith('★') else 'click to sort'), quote=True)}'>{html.escape(h)}</th>"
        for h, _, _ in columns
    )
    body = []
    for num, raw in enumerate(summary.to_dict("records"), start=1):
        row = {str(k): v for k, v in raw.items()}
        row["_num"] = num
        cells = []
        for _, col, fmt in columns:
            text, sort = _cell(row, col, fmt)
            cls = " class='l'" if fmt == "s" else ""
            extra = _badges(row) if col == "target" else ""
            cells.append(f"<td{cls} data-v='{html.escape(sort, quote=True)}'>{html.escape(text)}{extra}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<div class='tablewrap'><table class='summary' id='summary'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def inline_svg(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"<\?xml[^>]*\?>", "", text)
    return re.sub(r"<!DOCTYPE[^>]*>", "", text, flags=re.S).strip()


def _caption(r: Mapping[str, Any]) -> str:
    seed = _num(r.get("seed"))
    lat, cost, clip = _num(r.get("latency_s")), _num(r.get("cost_usd")), _num(r.get("clip_score"))
    parts = [
        "seed default" if np.isnan(seed) else f"seed {int(seed)}",
        "-" if np.isnan(lat) else f"{lat:.2f} s",
        "cost unknown" if np.isnan(cost) else f"${cost:.4f}",
        "CLIP -" if np.isnan(clip) else f"CLIP {clip:.2f}",
    ]
    return "<br>".join(html.escape(p) for p in parts)


def image_grid(records: pd.DataFrame, summary: pd.DataFrame, root: Path, max_per_cell: int = 4) -> str:
    """Rows: prompts; columns: groups (target and settings); each image (an embedded thumbnail linking
    the original under `root`) with latency, cost, CLIP under it."""
    from bench.report.summary import DEFAULT_GROUP_KEYS, group_label

    recs = records[records["status"] != "skipped"].copy()
    keys = [k for k in DEFAULT_GROUP_KEYS if k in recs.columns]
    recs["group"] = [
        group_label(dict(zip(keys, vals, strict=True))) for vals in recs[keys].itertuples(index=False)
    ]
    groups = [str(g) for g in summary["group"]] if "group" in summary else sorted(recs["group"].unique())
    head = "".join(f"<th>#{i} {html.escape(g)}</th>" for i, g in enumerate(groups, start=1))
    rows = []
    prompts = recs.drop_duplicates("prompt_id").sort_values("prompt_id")
    by_cell = {k: g for k, g in recs.groupby(["prompt_id", "group"], sort=False)}
    for p in prompts.itertuples(index=False):
        pid = str(p.prompt_id)
        cat = "" if not isinstance(p.category, str) else f" <i>({html.escape(str(p.category))})</i>"
        cells = [f"<th class='prompt'><b>{html.escape(pid)}</b>{cat}<br>{html.escape(str(p.prompt))}</th>"]
        for g in groups:
            grp = by_cell.get((pid, g))
            items = []
            if grp is not None:
                picked = grp.sort_values(["seed", "repeat", "image_index"]).head(max_per_cell)
                for raw in picked.to_dict("records"):
                    r = {str(k): v for k, v in raw.items()}
                    syn = "<span class='syn'>synthetic</span><br>" if r.get("synthetic") else ""
                    if r.get("cached") == True:  # noqa: E712 (numpy bool; None/NaN are live rows)
                        syn += (
                            "<span class='emu' title='replayed from the response cache: not sent by this "
                            f"run; latency and cost are from the original request{replay_origin(r)}'>"
                            "replayed</span><br>"
                        )
                    rel = r.get("image_relpath")
                    if r.get("status") == "ok" and isinstance(rel, str):
                        alt = html.escape(f"{g}: {p.prompt}", quote=True)
                        thumb = thumbnail_data_uri(root / rel)
                        link = html.escape(rel, quote=True)
                        img = (
                            f"<img loading='lazy' decoding='async' src='{thumb}' alt='{alt}'>"
                            if thumb
                            else "<span>image file missing</span>"
                        )
                        items.append(
                            f"<div class='cell'><a href='{link}' target='_blank' title='full size: {link}'>{img}</a>"
                            f"<div class='cap'>{syn}{_caption(r)}</div></div>"
                        )
                    else:
                        items.append(f"<div class='cell failed'>{html.escape(str(r.get('status')))}</div>")
            cells.append("<td>" + "".join(items) + "</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<div class='gridwrap'><table class='grid' id='grid'><thead><tr><th>prompt</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def render_report(
    title: str,
    summary: pd.DataFrame,
    records: pd.DataFrame,
    svgs: Mapping[str, Path],
    *,
    root: Path,
    notes: list[str],
    max_per_cell: int = 4,
    extra_sections: str = "",
    verdict_section: str = "",
    quality_columns: Sequence[str] = (),
) -> str:
    """The page; `extra_sections` (HTML, e.g. the arena's ratings) goes after the summary table."""
    synthetic = bool(summary.get("synthetic", pd.Series(dtype=bool)).any())
    emulated = bool(summary.get("emulated", pd.Series(dtype=bool)).any())
    banner = (
        f"<div class='banner'><b>Synthetic data.</b> {html.escape(SYNTHETIC_NOTE)}</div>" if synthetic else ""
    )
    if emulated:
        banner += (
            "<div class='banner'><b>Emulated.</b> Targets marked <span class='emu'>emulated</span> were answered "
            "by a protocol emulator on this machine (its responses say so in a header), not by the provider: "
            "their latency and failures are the emulator's settings, and their images are local drawings.</div>"
        )
    note_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    figures = "".join(
        f"<figure class='plot' id='plot-{name}'><figcaption><b>{html.escape(PLOTS[name][0])}</b> "
        f"(<a href='plots/{name}.png'>PNG</a>, <a href='plots/{name}.svg'>SVG</a>)</figcaption>{inline_svg(path)}</figure>"
        for name, path in svgs.items()
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{CSS}{VERDICT_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{banner}{verdict_section}<ul>{note_html}</ul>"
        "<h2>Summary</h2><p>One row per target and setting (# matches the plots' numbers); click a header to "
        "sort. Intervals are 95% intervals (CLIP: studentized bootstrap over prompts; shares (ok %, refused %, "
        "judge adherence): Clopper-Pearson, prompts as clusters, never past 0 or 100%; latency percentiles: "
        "order-statistic binomial intervals over requests, inf where the group is too small to bound that "
        "side). <i>requests</i> counts requests sent; <i>skipped</i> ones (budget cap) were not sent; "
        "<i>target req/s</i> is the target's requests finished per wall-clock second.</p>"
        f"{summary_table(summary, quality_columns)}{extra_sections}<h2>Plots</h2>{figures}"
        "<h2>Images</h2><p>Rows: prompts; columns: targets and settings. Thumbnails are embedded; click one "
        "for the original (beside the run folder). Under each image: seed, latency, cost and CLIP score. "
        "Look before you trust a number.</p>"
        f"{image_grid(records, summary, root, max_per_cell)}"
        f"<script>{SCRIPT}</script></body></html>"
    )
