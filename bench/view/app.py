"""The viewer's Starlette app: a JSON API over the records of one or two run/sweep folders, their
images and thumbnails, and one static page (viewer.html) that filters, compares and zooms.

Served on 127.0.0.1 only, behind the guard in bench/local_server.py (its own Host and Origin,
small bodies). Files are served only from inside the folders given (paths are resolved, links
followed, and checked by the same helper `bench rate` uses).
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from bench.group_names import DEFAULT_GROUP_KEYS, group_label
from bench.local_server import AllowedHost, LocalOnly, confined_file
from bench.report.runs import RunSet
from bench.report.thumbs import thumbnail_bytes

PAGE = Path(__file__).with_name("viewer.html")
RECORD_FIELDS = (
    "target", "group", "prompt_id", "prompt", "category", "status", "seed", "latency_s", "cost_usd",
    "clip_score", "image_relpath", "error_message", "emulated", "synthetic",
)  # fmt: skip
THUMB_CACHE = 2048  # thumbnails kept in memory (about 10 kB each)
QUALITY = "clip_score"
NO_SIGNAL = (
    "No per-image quality signal in these runs, so there is nothing to rank. To get one: run the VLM judge "
    "(metrics.judge.enabled=true; offline: the emulated judge of the default local preset), or CLIP / "
    "PickScore / HPSv2 with weights (`bench score RUN_DIR`)."
)


@dataclass(frozen=True)
class ViewSignal:
    """The per-image score the viewer shows on cards and ranks drops by: the report's (verdict.json's)
    signal when it is per image, else the first per-image signal the records have."""

    column: str  # "" when there is none
    label: str


def view_signal(records: pd.DataFrame, root: Path) -> ViewSignal:
    from bench.decide.signals import PER_IMAGE_COLUMN, QUALITY_ORDER, SHORT_NAME
    from bench.decide.verdict import VERDICT_FILE, judge_is_emulated

    def label(name: str) -> str:
        fp = records.get("judge_fingerprint", pd.Series(dtype=object)).dropna()
        emulated = name.startswith("judge_") and any(judge_is_emulated(str(f)) for f in fp)
        return SHORT_NAME[name] + (" (emulated judge)" if emulated else "")

    try:
        name = str(json.loads((root / VERDICT_FILE).read_text(encoding="utf-8")).get("signal") or "")
    except (OSError, ValueError):
        name = ""
    if name in PER_IMAGE_COLUMN and PER_IMAGE_COLUMN[name] in records:
        return ViewSignal(PER_IMAGE_COLUMN[name], label(name))
    for name in QUALITY_ORDER:
        col = PER_IMAGE_COLUMN.get(name, "")
        if col and col in records and records[col].notna().any():
            return ViewSignal(col, label(name))
    return ViewSignal("", "")


@dataclass(frozen=True)
class LoadedRun:
    label: str
    root: Path
    records: pd.DataFrame
    signal: ViewSignal = ViewSignal(QUALITY, "CLIP")


def load_run(path: Path, label: str) -> LoadedRun:
    runs = RunSet.load(path)
    recs = runs.records.copy()
    keys = [k for k in DEFAULT_GROUP_KEYS if k in recs.columns]
    recs["group"] = [group_label(dict(zip(keys, v, strict=True))) for v in recs[keys].itertuples(index=False)]
    signal = view_signal(recs, runs.root)
    recs["quality"] = recs[signal.column] if signal.column else np.nan
    return LoadedRun(label, runs.root.resolve(), recs, signal)


def _json_value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, np.generic):
        return _json_value(v.item())
    return v


def records_json(run: LoadedRun, index: int) -> list[dict[str, Any]]:
    cols = [c for c in (*RECORD_FIELDS, "quality") if c in run.records.columns]
    shown = run.records[run.records["status"] != "skipped"][cols]
    out = []
    for raw in shown.to_dict("records"):
        row = {str(k): _json_value(v) for k, v in raw.items()}
        row["run"] = index
        out.append(row)
    return out


def quality_drops(a: LoadedRun, b: LoadedRun, limit: int = 50) -> list[dict[str, Any]]:
    """Prompts (per target setting) whose mean quality fell most from run A to run B: matched on
    group and prompt, ok images with a score only; the biggest drop first."""

    column = a.signal.column if a.signal.column and a.signal.column in b.records else b.signal.column

    def means(run: LoadedRun) -> pd.DataFrame:
        ok = run.records[(run.records["status"] == "ok")]
        if not column or column not in ok:
            return pd.DataFrame(columns=["group", "prompt_id", "q", "n", "image"])
        ok = ok[ok[column].notna()]
        return ok.groupby(["group", "prompt_id"], as_index=False).agg(
            q=(column, "mean"),
            n=(column, "size"),
            image=("image_relpath", "first"),
            prompt=("prompt", "first"),
        )

    ma, mb = means(a), means(b)
    both = ma.merge(mb, on=["group", "prompt_id"], suffixes=("_a", "_b"))
    if both.empty:
        return []
    both["delta"] = both["q_b"] - both["q_a"]
    both = both.sort_values("delta").head(limit)
    return [
        {str(k): _json_value(v) for k, v in row.items()}
        for row in both[
            ["group", "prompt_id", "prompt_a", "q_a", "q_b", "delta", "n_a", "n_b", "image_a", "image_b"]
        ]
        .rename(columns={"prompt_a": "prompt"})
        .to_dict("records")
    ]


def create_app(paths: list[Path], extra_hosts: tuple[AllowedHost, ...] = ()) -> LocalOnly:
    runs = [load_run(p, f"{'AB'[i]}: {p}") for i, p in enumerate(paths)]
    thumbs: OrderedDict[tuple[int, str], bytes] = OrderedDict()

    def run_of(request: Request) -> LoadedRun | None:
        i = int(request.path_params["run"])
        return runs[i] if 0 <= i < len(runs) else None

    async def page(_: Request) -> Response:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    async def meta(_: Request) -> Response:
        signal = runs[0].signal
        return JSONResponse(
            {
                "runs": [{"label": r.label, "root": str(r.root)} for r in runs],
                "signal": signal.label,
                "no_signal": "" if signal.column else NO_SIGNAL,
            }
        )

    async def records(_: Request) -> Response:
        return JSONResponse([row for i, r in enumerate(runs) for row in records_json(r, i)])

    async def drops(_: Request) -> Response:
        return JSONResponse(quality_drops(runs[0], runs[1]) if len(runs) == 2 else [])

    async def image(request: Request) -> Response:
        run = run_of(request)
        path = confined_file(run.root, request.path_params["path"]) if run else None
        return FileResponse(path) if path else Response("not found", status_code=404)

    async def thumb(request: Request) -> Response:
        run = run_of(request)
        key = (int(request.path_params["run"]), str(request.path_params["path"]))
        if key not in thumbs:
            path = confined_file(run.root, key[1]) if run else None
            data = thumbnail_bytes(path) if path else None
            if data is None:
                return Response("not found", status_code=404)
            thumbs[key] = data
            if len(thumbs) > THUMB_CACHE:
                thumbs.popitem(last=False)
        thumbs.move_to_end(key)
        return Response(thumbs[key], media_type="image/webp", headers={"cache-control": "max-age=3600"})

    routes = Starlette(
        routes=[
            Route("/", page),
            Route("/api/meta", meta),
            Route("/api/records", records),
            Route("/api/drops", drops),
            Route("/img/{run:int}/{path:path}", image),
            Route("/thumb/{run:int}/{path:path}", thumb),
        ]
    )
    return LocalOnly(routes, extra_hosts)
