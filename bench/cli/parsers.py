"""One argparse parser per `bench` command: the commands parse with them, `--help` prints them,
and the documentation's CLI reference is generated from them (docs/hooks/reference.py), so the
reference cannot drift from what the commands accept.

`run` and `estimate` hand their arguments to Hydra; their parsers describe that (overrides and
the flags Hydra takes) for `--help` and the reference.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

_OVERRIDES_HELP = (
    "Hydra overrides: GROUP=OPTION (models=fal, sweep=quick) or key=value (sweep.steps=[4,8], "
    "max_cost_usd=2); see the config reference"
)


def run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench run",
        description="Run a sweep: prompts x targets x settings, then score, summarise and report. "
        "Re-running with the same run_name resumes (only what is missing is sent).",
        epilog="Other Hydra flags work as in any Hydra app (--info, --resolve, --package). "
        "Exit codes: 0 done, 1 the run failed (no request succeeded, or more than "
        "runner.max_error_rate ended in error), 2 bad input (before anything is sent), 130 interrupted.",
    )
    p.add_argument("overrides", nargs="*", help=_OVERRIDES_HELP)
    p.add_argument(
        "-m",
        "--multirun",
        action="store_true",
        help="one run per combination of comma-separated values (models=fal,replicate), under "
        "results/sweeps/<sweep_name>/; every job is checked before the first starts",
    )
    p.add_argument("--cfg", choices=("job", "hydra", "all"), help="print the resolved config; run nothing")
    return p


def estimate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench estimate",
        description="Count the requests a sweep would make and price them from the price table, "
        "sending nothing; for an existing run folder, also what it has spent and what max_cost_usd leaves.",
    )
    p.add_argument("overrides", nargs="*", help=_OVERRIDES_HELP + " (the same as `bench run` takes)")
    return p


def ls_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench ls", description="providers, models and their parameters")
    p.add_argument("--provider", help="only this provider")
    p.add_argument("--search", help="only models whose id or title contains TEXT (case-insensitive)")
    p.add_argument("overrides", nargs="*", help="Hydra overrides (e.g. a different providers file)")
    return p


def catalog_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench catalog",
        description="pull: fetch models' schemas and prices from the provider into the cache; "
        "show: a model's schema, mapping and price from whichever source has it",
    )
    p.add_argument("action", choices=["pull", "show"])
    p.add_argument("args", nargs="+", help="PROVIDER:MODEL targets, then any Hydra overrides (key=value)")
    return p


def report_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench report", description="summary.parquet, plots/ and report.html for a run or sweep folder"
    )
    p.add_argument("run_dir", type=Path, help="a run folder, or a sweep folder (its runs are merged)")
    p.add_argument(
        "overrides", nargs="*", help="Hydra overrides for the report block, e.g. report.n_boot=500"
    )
    p.add_argument(
        "--rebuild", action="store_true", help="rebuild records.parquet from the run's journal first"
    )
    return p


def compare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench compare",
        description="regression gate: paired deltas of CANDIDATE vs BASELINE; exit 0 pass, 1 regression, 2 unusable",
    )
    p.add_argument("baseline", type=Path, help="run or sweep folder")
    p.add_argument("candidate", type=Path, help="run or sweep folder")
    p.add_argument("overrides", nargs="*", help="gate overrides: gate=strict gate.clip.max_drop=1.0 ...")
    p.add_argument(
        "--min-measured",
        type=float,
        default=None,
        metavar="SHARE",
        help="NOT MEASURED (exit 1) when a target's share of pairs whose candidate answer was sent, not "
        "replayed from the response cache, is below this (default gate.min_measured: 0.9)",
    )
    p.add_argument(
        "--allow-missing",
        nargs="+",
        action="extend",
        default=None,
        metavar="TARGET",
        help="baseline targets allowed to have no candidate counterpart (else FAIL, exit 1); put overrides before it",
    )
    return p


def score_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench score",
        description="(re)compute metrics for a run folder, or for every run folder of a sweep folder "
        "(one job per run folder through a Hydra launcher, e.g. hydra/launcher=joblib hydra.launcher.n_jobs=2), "
        "then refresh summary.parquet, plots and report.html from the new scores",
    )
    p.add_argument("run_dir", type=Path, help="a run folder or a sweep folder")
    p.add_argument(
        "overrides",
        nargs="*",
        help="Hydra overrides for the metrics and report blocks, e.g. metrics=test report.n_boot=500; "
        "with a sweep folder also a launcher",
    )
    return p


def emulate_parser() -> argparse.ArgumentParser:
    from bench.emulators.cli import parser

    return parser()


def view_parser() -> argparse.ArgumentParser:
    from bench.local_server import HOST_HELP

    p = argparse.ArgumentParser(
        prog="bench view",
        description="browse a run or sweep folder in the browser (127.0.0.1): filter, compare two targets "
        "per prompt, zoom; with two folders, the prompts whose quality dropped most from the first to the second",
    )
    p.add_argument("paths", type=Path, nargs="+", help="one or two run or sweep folders")
    p.add_argument("--port", type=int, default=8777, help="port on 127.0.0.1 (0: any free port)")
    p.add_argument("--host", action="append", default=[], metavar="NAME[:PORT]", help=HOST_HELP)
    return p


def rate_parser() -> argparse.ArgumentParser:
    from bench.arena.cli import parser

    return parser()


# Every command `bench` dispatches has its parser here (tests/test_cli_reference.py checks it).
def recommend_parser() -> argparse.ArgumentParser:
    """`bench recommend`'s parser lives beside the command (bench.cli.recommend)."""
    from bench.cli.recommend import parser

    return parser()


PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "run": run_parser,
    "estimate": estimate_parser,
    "ls": ls_parser,
    "catalog": catalog_parser,
    "report": report_parser,
    "compare": compare_parser,
    "score": score_parser,
    "emulate": emulate_parser,
    "view": view_parser,
    "rate": rate_parser,
    "recommend": recommend_parser,
}
