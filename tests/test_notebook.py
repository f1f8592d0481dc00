"""notebooks/choose_model.ipynb runs top to bottom on a run the test makes, so it cannot rot."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from _report_runs import NOCOLOR_TARGETS, bench_in_process, make_run
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "choose_model.ipynb"


def _text(nb: nbformat.NotebookNode) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") or str(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


def _vote(run: Path, n: int) -> None:
    """n blind votes on `run`, cast through the arena's own scheduler and vote log (no browser)."""
    import datetime as dt

    from bench.arena.pairs import Scheduler
    from bench.arena.votes import VOTES_FILE, Vote, VoteLog
    from bench.report.runs import RunSet

    sched = Scheduler.from_records(RunSet.load(run).records, seed=0)
    log = VoteLog(run / VOTES_FILE)
    for i in range(n):
        offer = sched.next_offer("nb", log.votes)
        assert offer is not None
        sched.answer("nb", offer.token)
        log.append(Vote(f"v{i}", dt.datetime.now(dt.UTC).isoformat(), "nb", offer.prompt_id, offer.prompt,
                        offer.side(offer.left), offer.side(offer.right), ("left", "right", "tie")[i % 3]))  # fmt: skip


def test_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(
        not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"
    )


@pytest.mark.timeout(
    1200
)  # two runs, a report, the notebook and `bench recommend`: minutes on a shared machine
def test_notebook_runs_and_gives_a_pick_and_a_verdict(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path_factory.mktemp("notebook_runs")
    base = make_run(root, "base")
    cand = make_run(root, "nocolor", NOCOLOR_TARGETS)
    _vote(cand, 12)
    # The report (and its verdict.json) again, now that the run has oracle scores and votes.
    report = bench_in_process(capsys, "report", str(cand), "report.n_boot=200")
    assert report.returncode == 0, report.stderr[-2000:]
    monkeypatch.setenv("T2I_RUN", str(cand))
    monkeypatch.setenv("T2I_BASELINE", str(base))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute(env=dict(os.environ))
    text = _text(nb)
    assert "Pick: local:shapes-" in text
    # One verdict everywhere: verdict.json, the notebook, report.html and `bench recommend`.
    import json

    verdict = json.loads((cand / "verdict.json").read_text())
    assert verdict["status"] == "recommended" and verdict["signal"] == "clip"  # 12 votes: too few for Elo
    assert any("Elo not used: only 12 votes" in n for n in verdict["notes"])
    assert f"Pick: {verdict['recommended']}" in text
    assert f"Recommended: {verdict['recommended']} (on CLIP" in (cand / "report.html").read_text()
    rec = bench_in_process(capsys, "recommend", str(cand))
    assert rec.returncode == 0 and f"Verdict: Recommended: {verdict['recommended']} (on CLIP" in rec.stdout
    assert json.loads((cand / "verdict.json").read_text())["recommended"] == verdict["recommended"]
    assert "Arena: 12 votes by 1 rater(s)" in text  # the arena section read the run's votes.jsonl
    assert "Gate verdict: REGRESSION" in text
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # two frontier plots and the image grid
