"""`bench rate PATH [--rater NAME] [--port N] [--seed N] [--host NAME[:PORT]]`: serve the arena until Ctrl-C."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from bench.local_server import HOST_HELP, AllowedHost, BadHostOption, bind_loopback
from bench.report.runs import NotARunFolder

EXIT_OK, EXIT_USAGE = 0, 2


def _default_rater() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment
        return "anonymous"


def main(args: list[str]) -> int:
    import uvicorn

    from bench.arena.app import Arena, NothingToRate, build_app

    parser = argparse.ArgumentParser(
        prog="bench rate",
        description="blind pairwise voting on a run or sweep folder; votes go to PATH/votes.jsonl",
    )
    parser.add_argument("path", type=Path, help="a run folder, or a sweep folder (rates across its runs)")
    parser.add_argument(
        "--rater", default=None, help="your name, stored with each vote (default: login name)"
    )
    parser.add_argument("--port", type=int, default=8377, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--seed", type=int, default=None, help="seed the pair scheduler (default: random)")
    parser.add_argument(
        "--against",
        type=Path,
        default=None,
        help="a baseline run or sweep folder: its groups join as 'baseline: ...' arms (for the gate's Elo check)",
    )
    parser.add_argument("--host", action="append", default=[], metavar="NAME[:PORT]", help=HOST_HELP)
    ns = parser.parse_args(args)
    try:
        hosts = tuple(AllowedHost.parse(h) for h in ns.host)
        arena = Arena.open(ns.path, ns.rater or _default_rater(), ns.seed, ns.against)
    except (BadHostOption, NotARunFolder, NothingToRate) as exc:
        print(f"bench rate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        sock = bind_loopback(ns.port)
    except OSError as exc:
        print(
            f"bench rate: --port {ns.port}: cannot listen on 127.0.0.1 ({exc.strerror}); try --port 0",
            file=sys.stderr,
        )
        return EXIT_USAGE
    port = sock.getsockname()[1]
    n_votes = len(arena.log.votes)
    print(
        f"bench rate: open http://127.0.0.1:{port}/ ({len(arena.scheduler.arms)} arms, {n_votes} votes so far; "
        f"votes go to {arena.log.path}; Ctrl-C to stop)",
        flush=True,
    )
    config = uvicorn.Config(build_app(arena, hosts), log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
    return EXIT_OK
