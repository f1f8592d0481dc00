"""`bench rate PATH [--rater NAME] [--port N] [--seed N] [--host NAME[:PORT]] [--pairs MODE]`: serve the
arena until Ctrl-C. On a study with a verdict, the pairs settle the recommendation (bench.arena.settle).

`bench rate PATH --export FILE` / `--import FILE` move votes between machines instead (bench.arena.transfer).
"""

from __future__ import annotations

import argparse
import getpass
import socket
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


def parser() -> argparse.ArgumentParser:
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
    parser.add_argument(
        "--pairs",
        choices=("auto", "settle", "uncertainty"),
        default="auto",
        help="which pairs to show: settle = the pairs that settle verdict.json's recommendation on Elo, and "
        "say when it is settled; uncertainty = every pair of groups, the least certain first; auto (default) = "
        "settle when PATH has a verdict with two groups to rate (and no --against), else uncertainty",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=None,
        metavar="ELO",
        help="with --pairs settle: the margin in Elo points (default: the verdict's Elo margin, else 25)",
    )
    parser.add_argument("--host", action="append", default=[], metavar="NAME[:PORT]", help=HOST_HELP)
    parser.add_argument(
        "--export",
        type=Path,
        default=None,
        metavar="FILE",
        help="write PATH's votes to FILE (JSON lines) and exit",
    )
    parser.add_argument(
        "--import",
        dest="import_file",
        type=Path,
        default=None,
        metavar="FILE",
        help="add the votes of FILE (from --export) to PATH/votes.jsonl, skipping those already there, and exit",
    )
    parser.add_argument(
        "--raters",
        default=None,
        metavar="NAME,NAME",
        help="one link per rater, carrying their token; votes are attributed to the token and refused without one",
    )
    parser.add_argument(
        "--gold-every",
        type=int,
        default=0,
        metavar="N",
        help="one pair in N is a gold pair (a real image against a blank one) to flag careless raters (0: none)",
    )
    parser.add_argument(
        "--listen",
        default=None,
        metavar="ADDRESS",
        help="serve to a network: listen on this IPv4 address of this machine (needs --raters; with 0.0.0.0 also "
        "--host NAME, the name raters will type) instead of 127.0.0.1",
    )
    return parser


def main(args: list[str]) -> int:
    import uvicorn

    from bench.arena.app import Arena, NothingToRate, build_app
    from bench.arena.raters import BadRaters, parse_raters, rater_tokens
    from bench.arena.settle import CannotSettle

    ns = parser().parse_args(args)
    if ns.listen is not None and (problem := _listen_problem(ns.listen, ns.raters, ns.host)):
        print(f"bench rate: --listen {ns.listen}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if ns.gold_every < 0:
        print(f"bench rate: --gold-every {ns.gold_every}: give 0 (no gold pairs) or a positive N, e.g. 10",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    if ns.margin is not None and not ns.margin > 0:
        print(
            f"bench rate: --margin {ns.margin:g}: give a margin > 0 in Elo points, e.g. 25", file=sys.stderr
        )
        return EXIT_USAGE
    if ns.export is not None or ns.import_file is not None:
        return _transfer(ns.path, ns.export, ns.import_file)
    try:
        hosts = tuple(AllowedHost.parse(h) for h in ns.host)
        if (
            ns.listen is not None and ns.listen != "0.0.0.0"
        ):  # the address raters will type: Host checks apply to it
            hosts = (*hosts, AllowedHost.parse(ns.listen, "--listen"))
        raters = parse_raters(ns.raters) if ns.raters is not None else []
        arena = Arena.open(
            ns.path, ns.rater or _default_rater(), ns.seed, ns.against, pairs=ns.pairs, margin_elo=ns.margin
        )
        arena.tokens = rater_tokens(arena.root, raters) if raters else {}
        if ns.gold_every:
            arena.enable_gold(ns.gold_every)
    except (BadHostOption, BadRaters, NotARunFolder, NothingToRate, CannotSettle) as exc:
        print(f"bench rate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        sock = bind_loopback(ns.port) if ns.listen is None else _bind(ns.listen, ns.port)
    except OSError as exc:
        print(
            f"bench rate: --port {ns.port}: cannot listen on {ns.listen or '127.0.0.1'} ({exc.strerror}); "
            "try --port 0",
            file=sys.stderr,
        )
        return EXIT_USAGE
    port = sock.getsockname()[1]
    # Listen before printing the URL: a browser opened at once queues in the backlog until uvicorn accepts,
    # instead of being refused while uvicorn starts (seen on loaded machines).
    sock.listen(128)
    n_votes = len(arena.log.votes)
    # --listen: the address (or --host name) raters open; otherwise the loopback URL, as before.
    base = (
        f"http://{hosts[0].name}:{hosts[0].port or port}"
        if hosts and ns.listen
        else f"http://127.0.0.1:{port}"
    )
    print(
        f"bench rate: open {base}/ ({len(arena.scheduler.arms)} arms, {n_votes} votes so far; "
        f"votes go to {arena.log.path}; Ctrl-C to stop)",
        flush=True,
    )
    for token, name in arena.tokens.items():
        print(f"bench rate: link for {name}: {base}/?rt={token}", flush=True)
    settler = arena.scheduler.settler
    if settler is not None:
        print(f"bench rate: {settler.describe()}", flush=True)
        already = settler.newly_settled()  # the votes already cast may settle it
        print(f"bench rate: {already or settler.race.message(settler.look)}", flush=True)
    arena.on_settled = lambda message: print(f"bench rate: {message}", flush=True)
    config = uvicorn.Config(build_app(arena, hosts), log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
    return EXIT_OK


def _transfer(path: Path, export: Path | None, import_file: Path | None) -> int:
    from bench.arena.transfer import BadVoteFile, export_votes, import_votes

    if export is not None and import_file is not None:
        print("bench rate: --export and --import: give one of them per call", file=sys.stderr)
        return EXIT_USAGE
    try:
        if export is not None:
            if export.exists() and export.is_dir():
                print(f"bench rate: --export {export}: is a folder; give a file name, e.g. votes-export.jsonl",
                      file=sys.stderr)  # fmt: skip
                return EXIT_USAGE
            n = export_votes(path, export)
            print(f"bench rate: exported {n} votes of {path} to {export}")
            return EXIT_OK
        if import_file is None:  # unreachable: main() calls with one of the two
            return EXIT_USAGE
        result = import_votes(path, import_file)
    except (NotARunFolder, BadVoteFile) as exc:
        print(f"bench rate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"bench rate: imported {result.added} votes into {path}; {result.already_present} already there "
        f"(same id, or same rater on the same images); {result.foreign} on images {path} does not have"
    )
    if result.foreign and not result.added and not result.already_present:
        print(
            f"bench rate: --import {import_file}: none of its votes are on images of {path}; "
            "import into the folder the votes were exported from (or a copy of it)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return EXIT_OK


def _listen_problem(address: str, raters: str | None, hosts: list[str]) -> str:
    """Why `--listen ADDRESS` cannot be served as given ("" when it can)."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "give an IPv4 address of this machine, e.g. 192.168.1.20 (or 0.0.0.0 for all)"
    if ip.version != 4:
        return "give an IPv4 address of this machine, e.g. 192.168.1.20 (IPv6 is not served)"
    if not raters:
        return "an arena served to a network needs --raters NAME,NAME: each vote must carry a rater's token"
    if str(ip) == "0.0.0.0" and not hosts:
        return "with 0.0.0.0, also give --host NAME[:PORT], the name or address raters will open"
    return ""


def _bind(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    return sock
