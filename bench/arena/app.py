"""`bench rate PATH`: a local web page for blind pairwise votes, served on 127.0.0.1.

One prompt, two images of it from two different arms (target + settings), sides
and seeds random. Keys: ← left, → right, ↓ or T tie, B both bad. Each vote is
appended to PATH/votes.jsonl and fsynced before the page hears back, so killing the
server loses nothing that was acknowledged.

Blind for the whole session: no answer names an arm (the names appear only in the
report, `bench report PATH`), image URLs are opaque tokens, and both images are shown
in boxes of the same size whatever their pixel sizes, so a 768 px image does not
stand out beside a 256 px one. Revealing names after each vote would unblind every
later pair that reuses an image the rater has seen named.

The server takes requests only as the guard in bench/local_server.py allows (its own
Host and Origin, bodies up to 16 KiB), and sends only image files inside the folders
rated.
"""

from __future__ import annotations

import datetime as dt
import html
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from bench.arena.gold import (
    GOLD_FILE,
    append_gold,
    blank_image,
    gold_due,
    gold_offer,
    gold_results,
    is_gold,
    read_gold,
)
from bench.arena.pairs import Image, Offer, Scheduler
from bench.arena.raters import rater_of
from bench.arena.settle import CannotSettle, Settler, read_study_verdict
from bench.arena.votes import CHOICES, VOTES_FILE, Vote, VoteLog
from bench.decide.verdict import VERDICT_FILE
from bench.errors import BenchError
from bench.local_server import AllowedHost, LocalOnly, confined_file
from bench.report.runs import RunSet


class NothingToRate(BenchError):
    """The folder has fewer than two arms with an image of the same prompt."""


@dataclass
class Arena:
    root: Path
    scheduler: Scheduler
    log: VoteLog
    default_rater: str
    lock: threading.Lock
    tokens: dict[str, str] = field(default_factory=dict)  # rater token -> rater (`--raters`); empty: names
    gold_every: int = 0  # `--gold-every N`: one gold pair (real vs blank) in N; 0: none
    blank: Image | None = None
    gold_answers: dict[str, int] = field(default_factory=dict)  # rater -> gold pairs answered
    # Called with the settled message the first time the recommendation is settled (the terminal).
    on_settled: Callable[[str], None] | None = None

    def enable_gold(self, every: int) -> None:
        self.gold_every, self.blank = every, blank_image(self.root)
        for result in gold_results(read_gold([self.root / GOLD_FILE])):
            self.gold_answers[result.rater] = result.passed + result.failed

    def next_for(self, rater: str) -> Offer | None:
        """The rater's next pair: a gold pair when one is due, else the scheduler's."""
        waiting = self.scheduler.pending.get(rater) in self.scheduler.offers
        answers = sum(v.rater == rater for v in self.log.votes) + self.gold_answers.get(rater, 0)
        if not waiting and self.blank is not None and gold_due(answers, self.gold_every):
            return gold_offer(self.scheduler, rater, self.blank)
        return self.scheduler.next_offer(rater, self.log.votes)

    @classmethod
    def open(
        cls,
        path: Path,
        rater: str,
        seed: int | None = None,
        against: Path | None = None,
        pairs: str = "auto",
        margin_elo: float | None = None,
    ) -> Arena:
        """`pairs`: settle (the pairs that settle verdict.json's recommendation on Elo), uncertainty
        (every arm pair, the least certain first), or auto (settle when the folder has a verdict with
        two contenders to rate and no --against; uncertainty otherwise)."""
        runs = RunSet.load(path)
        base = RunSet.load(against) if against is not None else None
        scheduler = Scheduler.from_records(
            runs.records, seed, base.records if base else None, base.root if base else None
        )
        if not scheduler.arm_pairs():
            arms = scheduler.arms
            raise NothingToRate(
                f"{path}: nothing to compare: pairwise rating needs two targets or settings with an image "
                f"of the same prompt, found {len(arms)} ({', '.join(arms) or 'no ok images'})"
            )
        log = VoteLog(Path(path) / VOTES_FILE)
        if pairs == "settle" and against is not None:
            raise CannotSettle("--pairs settle with --against: settling compares a study's own groups; "
                               "drop --against, or use --pairs uncertainty")  # fmt: skip
        if pairs in ("auto", "settle") and against is None:
            verdict = read_study_verdict(Path(path))
            if verdict is None and pairs == "settle":
                raise CannotSettle(f"--pairs settle: {path} has no {VERDICT_FILE}: run `bench recommend {path}` "
                                   "first, or use --pairs uncertainty")  # fmt: skip
            if verdict is not None:
                try:
                    scheduler.settler = Settler.build(verdict, scheduler.arms, log.votes, margin_elo)
                except CannotSettle:
                    if pairs == "settle":
                        raise
        return cls(Path(path), scheduler, log, rater, threading.Lock())

    def record(self, vote: Vote) -> None:
        """After a vote is on disk: the race looks again, and says so once when it is settled."""
        settler = self.scheduler.settler
        if settler is None:
            return
        message = settler.add(vote)
        if message is not None and self.on_settled is not None:
            self.on_settled(message)

    def progress(self, rater: str) -> dict[str, int]:
        mine = [v for v in self.log.votes if v.rater == rater]
        seen = {v.pair for v in mine}
        return {
            "yours": len(mine) + self.gold_answers.get(rater, 0),
            "total": len(self.log.votes),
            "left": self.scheduler.remaining(seen),
        }

    def offer_json(self, offer: Offer | None, rater: str) -> dict[str, object]:
        body: dict[str, object] = {"progress": self.progress(rater), "rater": rater}
        if self.scheduler.settler is not None:
            body["settle"] = self.scheduler.settler.status()
        if offer is None:
            body["done"] = True
            return body
        body.update(
            token=offer.token,
            prompt=offer.prompt,
            left=f"/image/{offer.token}/left",
            right=f"/image/{offer.token}/right",
        )
        return body


def _rater(value: object, default: str) -> str:
    name = str(value or "").strip()[:80]
    return name or default


NO_TOKEN = "this link carries no valid rater token: open the link `bench rate --raters` printed for you"


def _who(arena: Arena, token: object, name: object) -> str | None:
    """The rater of a request: the token's with `--raters` (None when it has no valid one), else the name."""
    if arena.tokens:
        return rater_of(arena.tokens, token)
    return _rater(name, arena.default_rater)


def build_app(arena: Arena, extra_hosts: tuple[AllowedHost, ...] = ()) -> LocalOnly:
    def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE.replace("__RATER__", html.escape(arena.default_rater)))

    def next_pair(request: Request) -> JSONResponse:
        rater = _who(arena, request.query_params.get("rt"), request.query_params.get("rater"))
        if rater is None:
            return JSONResponse({"error": NO_TOKEN}, status_code=403)
        with arena.lock:
            offer = arena.next_for(rater)
            return JSONResponse(arena.offer_json(offer, rater))

    def image(request: Request) -> Response:
        offer = arena.scheduler.offers.get(request.path_params["token"])
        side = request.path_params["side"]
        if offer is None or side not in ("left", "right"):
            return JSONResponse({"error": "unknown pair"}, status_code=404)
        img = offer.left if side == "left" else offer.right
        path = confined_file(img.root or arena.root, img.relpath)
        if path is None:  # missing, or a link/path leading out of the folder
            return JSONResponse({"error": "image not found in the folder rated"}, status_code=404)
        # Served by token, not by file name: the URL says nothing about the model.
        return FileResponse(path, headers={"Cache-Control": "no-store"})

    async def vote(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "send JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "send a JSON object"}, status_code=400)
        rater = _who(arena, body.get("rater_token"), body.get("rater"))
        if rater is None:
            return JSONResponse({"error": NO_TOKEN}, status_code=403)
        choice = str(body.get("choice", ""))
        if choice not in CHOICES:
            return JSONResponse({"error": f"choice must be one of {', '.join(CHOICES)}"}, status_code=400)
        with arena.lock:
            offer = arena.scheduler.answer(rater, str(body.get("token", "")))
            if offer is None:
                return JSONResponse({"error": "this pair is not waiting for your vote"}, status_code=409)
            v = Vote(
                id=secrets.token_hex(8),
                ts=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                rater=rater,
                prompt_id=offer.prompt_id,
                prompt=offer.prompt,
                left=offer.side(offer.left),
                right=offer.side(offer.right),
                choice=choice,
            )
            if is_gold(offer):  # a check on the rater, not a vote: gold.jsonl, fsynced too
                append_gold(arena.root, rater, offer, choice)
                arena.gold_answers[rater] = arena.gold_answers.get(rater, 0) + 1
            else:
                arena.log.append(v)  # fsynced before we answer
                arena.record(v)
            nxt = arena.next_for(rater)
            reply = arena.offer_json(nxt, rater)
        reply["saved"] = {"choice": choice}  # no names: they stay hidden until the report
        return JSONResponse(reply)

    routes = Starlette(
        routes=[
            Route("/", page),
            Route("/api/next", next_pair),
            Route("/api/vote", vote, methods=["POST"]),
            Route("/image/{token}/{side}", image),
        ]
    )
    return LocalOnly(routes, extra_hosts)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>t2i-bench arena</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
 #prompt { font-size: 1.25rem; margin: .5rem 0 1rem; min-height: 1.5em; }
 .pair { display: flex; gap: 1rem; justify-content: center; }
 .pair figure { margin: 0; text-align: center; }
 /* Both sides in the same square box whatever the pixel size (a 256 px image is scaled up, a 768 px
    one down, non-square ones letterboxed): the size of an image must not tell which model made it. */
 .pair img { display: block; width: min(44vw, 62vh); height: min(44vw, 62vh); object-fit: contain;
   background: #f4f4f4; border: 1px solid #bbb; image-rendering: auto; }
 .keys { margin-top: 1rem; } .keys kbd { border: 1px solid #999; border-radius: 3px; padding: 0 .3em; }
 button { margin-right: .5rem; } #status { color: #555; margin-top: .8rem; min-height: 1.2em; }
 #progress { float: right; }
 #settle { margin: .3rem 0; color: #555; min-height: 1.2em; }
 #settle.done { color: #064; background: #e6f4ea; border: 1px solid #8c8; padding: .4rem .6rem; font-weight: 600; }
</style></head>
<body data-votes="0">
<div id="progress">-</div>
<label>rater <input id="rater" value="__RATER__" size="16"></label>
<div id="settle"></div>
<div id="prompt">loading…</div>
<div class="pair">
 <figure><img id="left" alt="left image"><figcaption>left</figcaption></figure>
 <figure><img id="right" alt="right image"><figcaption>right</figcaption></figure>
</div>
<div class="keys">
 <button data-choice="left"><kbd>←</kbd> left is better</button>
 <button data-choice="right"><kbd>→</kbd> right is better</button>
 <button data-choice="tie"><kbd>↓</kbd>/<kbd>T</kbd> tie</button>
 <button data-choice="both_bad"><kbd>B</kbd> both bad</button>
</div>
<div id="status"></div>
<script>
const raterBox = document.getElementById("rater");
const rt = new URLSearchParams(location.search).get("rt") || "";  // a rater link's token (--raters)
if (rt) raterBox.readOnly = true;
raterBox.value = (!rt && localStorage.getItem("t2i-rater")) || raterBox.value;
raterBox.addEventListener("change", () => { localStorage.setItem("t2i-rater", raterBox.value); load(); });
let token = null, busy = false;
function show(d) {
  if (d.error) { document.getElementById("prompt").textContent = d.error; return; }
  if (rt) raterBox.value = d.rater;
  const p = d.progress;
  document.getElementById("progress").textContent =
    `your votes: ${p.yours} · all votes: ${p.total} · pairs left for you: ${p.left}`;
  document.body.dataset.votes = p.yours;
  const s = d.settle, box = document.getElementById("settle");
  if (s) {  // a study: the recommendation is being settled (no names until it is)
    box.textContent = s.settled ? s.message
      : `settling the recommendation: ${s.open} comparison(s) still open (margin ${s.margin_elo} Elo)`;
    box.className = s.settled ? "done" : "";
    document.body.dataset.settled = s.settled ? "yes" : "no";
  }
  if (d.done) {
    token = null;
    document.getElementById("prompt").textContent =
      "Nothing left to rate for you. Thank you! The ratings and model names are in the report (bench report).";
    document.getElementById("left").removeAttribute("src");
    document.getElementById("right").removeAttribute("src");
    return;
  }
  token = d.token;
  document.getElementById("prompt").textContent = d.prompt;
  document.getElementById("left").src = d.left;
  document.getElementById("right").src = d.right;
}
async function load() {
  const r = await fetch("/api/next?rater=" + encodeURIComponent(raterBox.value) + "&rt=" + encodeURIComponent(rt));
  show(await r.json());
}
async function vote(choice) {
  if (busy || !token) return;
  busy = true;
  try {
    const r = await fetch("/api/vote", {method: "POST", headers: {"content-type": "application/json"},
      body: JSON.stringify({token, choice, rater: raterBox.value, rater_token: rt})});
    const d = await r.json();
    if (!r.ok) { document.getElementById("status").textContent = d.error; await load(); return; }
    // Which model made which image stays hidden: only the report names them.
    document.getElementById("status").textContent = `vote saved (${d.saved.choice})`;
    show(d);
  } finally { busy = false; }
}
const KEYS = {ArrowLeft: "left", ArrowRight: "right", ArrowDown: "tie", t: "tie", T: "tie", b: "both_bad", B: "both_bad"};
document.addEventListener("keydown", (e) => {
  if (e.target === raterBox) return;
  const c = KEYS[e.key];
  if (c) { e.preventDefault(); vote(c); }
});
document.querySelectorAll("button[data-choice]").forEach(b => b.addEventListener("click", () => vote(b.dataset.choice)));
load();
</script>
</body></html>
"""
