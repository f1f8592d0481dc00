"""Open catalogs end to end: schemas fetched from the emulators, cached, recorded; offline stops early.

The "Done when" run of issue 9 is `test_any_model_through_fetched_schemas`: four providers,
models nobody wrote a spec for, planned, validated, mapped, run and priced through schemas
fetched from the emulators' discovery endpoints.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pytest
import yaml
from _provider_harness import KEY, KEY_ENV, knobs

from bench.cli.main import main
from bench.emulators import eachlabs, fal, openai_compat, replicate
from bench.emulators.serve import running
from bench.prices import PriceEntry, PriceTable

PROVIDERS = ("fal", "replicate", "eachlabs", "aimlapi")
TARGETS = (
    "fal:fal-ai/recraft/v3/text-to-image",
    "replicate:google/imagen-4",
    "eachlabs:hidream-i1-full-text-to-image",  # not in seed 001
    "aimlapi:openai/gpt-image-2",
)


@pytest.fixture
def emulators(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, tuple[str, object]]]:
    monkeypatch.setenv(KEY_ENV, KEY)
    k = knobs(inference_s=(0.0, 0.0))
    apps = {
        "fal": fal.create_app(k),
        "replicate": replicate.create_app(k),
        "eachlabs": eachlabs.create_app(k),
        "aimlapi": openai_compat.create_app(k, profile="aimlapi"),
    }
    with ExitStack() as stack:
        yield {name: (stack.enter_context(running(app)), app.state.emu) for name, app in apps.items()}


def overrides(urls: dict[str, str], cache: Path) -> list[str]:
    out = [f"catalog.cache_dir={cache}"]
    for name, url in urls.items():
        out += [
            f"providers.{name}.base_url={url}",
            f"providers.{name}.api_key_env={KEY_ENV}",
            f"providers.{name}.poll_interval_s=0.01",
        ]
    return out


def base_run(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "run",
        "prompts.n=1",
        "metrics=off",
        "report.write=false",
        "runner.progress=off",
        "sweep=quick",
        "sweep.steps=[6]",
        "sweep.seeds=[3]",
        "sweep.sizes=[1024x576]",
        f"results_dir={tmp_path / 'results'}",
        "run_name=r",
        *extra,
    ]


def test_any_model_through_fetched_schemas(emulators: dict[str, tuple[str, object]], tmp_path: Path) -> None:
    urls = {name: url for name, (url, _) in emulators.items()}
    cache = tmp_path / "cache"
    code = main(
        base_run(tmp_path, f"targets=[{','.join(TARGETS)}]", "catalog.fetch=always", *overrides(urls, cache))
    )
    assert code == 0
    df = pd.read_parquet(tmp_path / "results" / "r" / "records.parquet").set_index("target")
    assert (df["status"] == "ok").all(), df[["status", "error_message"]]
    assert set(df["catalog_source"]) == {"fetched"}
    payload = {t: json.loads(df.loc[t, "payload"]) for t in TARGETS}
    # Each schema decides what is sent: recraft has presets and no steps/seed parameter...
    assert payload[TARGETS[0]]["image_size"] == "landscape_16_9"
    assert "num_inference_steps" not in payload[TARGETS[0]]
    assert "steps" in json.loads(df.loc[TARGETS[0], "left_out"])
    # ... imagen-4 takes an aspect ratio and a seed, the Eachlabs model steps, seed and a preset
    assert payload[TARGETS[1]] == {"prompt": payload[TARGETS[1]]["prompt"], "aspect_ratio": "16:9", "seed": 3}
    assert {k: payload[TARGETS[2]][k] for k in ("num_inference_steps", "seed", "image_size")} == {
        "num_inference_steps": 6,
        "seed": 3,
        "image_size": "landscape_16_9",
    }
    assert "seed" in json.loads(df.loc[TARGETS[3], "left_out"])  # gpt-image-2 has no seed
    # Prices: published by fal's pricing API; Eachlabs and AIML (meta.usage.usd_spent, as its
    # gpt-image-2 page shows) report theirs; Replicate's comes from the price table.
    assert df.loc[TARGETS[0], "cost_source"] == "price_api"
    assert df.loc[TARGETS[0], "cost_usd"] == pytest.approx(0.04)
    assert df.loc[TARGETS[1], "cost_source"] == "price_table"  # Replicate has no price API
    assert df.loc[TARGETS[2], "cost_source"] == "reported"
    assert df.loc[TARGETS[3], "cost_source"] == "reported"
    assert df["cost_usd"].notna().all()  # every target priced
    # Provenance: config.yaml and the records carry the same schema hash as the cache file.
    used = yaml.safe_load((tmp_path / "results" / "r" / "config.yaml").read_text())["catalog_used"]
    assert used[TARGETS[0]]["live_price"]["usd"] == pytest.approx(0.04)
    assert "fetched 20" in used[TARGETS[0]]["live_price"]["fetched"]
    for target in TARGETS:
        provider, model = target.split(":", 1)
        cached = (
            json.loads(next((cache / "catalog" / provider).glob("*.json")).read_text())
            if provider != "fal"
            else None
        )
        assert used[target]["source"] == "fetched" and used[target]["fetched_at"]
        assert used[target]["schema_sha256"] == df.loc[target, "schema_sha256"]
        if cached is not None and cached["model"] == model:
            assert cached["sha256"] == used[target]["schema_sha256"]
    fal_emu = emulators["fal"][1]
    assert any(c.startswith("GET /api/openapi/queue/openapi.json") for c in fal_emu.calls)  # type: ignore[attr-defined]
    # A second run with fetch=never works from the cache alone: no discovery call is made.
    for _, emu in emulators.values():
        emu.calls.clear()  # type: ignore[attr-defined]
    code = main(
        base_run(
            tmp_path,
            f"targets=[{','.join(TARGETS)}]",
            "catalog.fetch=never",
            "run_name=r2",
            *overrides(urls, cache),
        )
    )
    assert code == 0
    discovery = [
        c
        for _, emu in emulators.values()
        for c in emu.calls  # type: ignore[attr-defined]
        if c.startswith("GET") and ("openapi" in c or "/v1/models" in c)
    ]
    assert discovery == []


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("fetch", ["never", "auto"])
def test_offline_with_empty_cache_stops_before_any_request(
    fetch: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    cache = tmp_path / "cache"
    code = main(
        base_run(
            tmp_path,
            "targets=[fal:fal-ai/recraft/v3/text-to-image]",
            f"catalog.fetch={fetch}",
            *overrides({"fal": closed_port_url()}, cache),
        )
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert "bench catalog pull fal:fal-ai/recraft/v3/text-to-image" in err[0]
    assert str(cache / "catalog" / "fal") in err[0]
    assert not (tmp_path / "results").exists()


def test_unknown_model_is_one_line_naming_the_provider(
    emulators: dict[str, tuple[str, object]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    urls = {name: url for name, (url, _) in emulators.items()}
    code = main(base_run(tmp_path, "targets=[fal:fal-ai/no-such-model]", *overrides(urls, tmp_path / "c")))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "fal:fal-ai/no-such-model" in err[0] and "404" in err[0] and "bench ls --provider fal" in err[0]


def test_user_spec_file_and_per_target_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_file = tmp_path / "mine.yaml"
    spec_file.write_text(
        yaml.safe_dump(
            {
                "provider": "fal",
                "models": [
                    {
                        "slug": "acme/turbo",
                        "input_schema": {
                            "type": "object",
                            "required": ["prompt"],
                            "properties": {
                                "prompt": {"type": "string"},
                                "steps": {"type": "integer", "minimum": 1, "maximum": 8},
                                "seed": {"type": "integer"},
                            },
                        },
                    }
                ],
            }
        )
    )
    # The shared grid's steps [4, 16] are too many for schnell (max 12): its own grid fixes that.
    targets = (
        "targets=[{target:fal:fal-ai/flux/schnell,sweep:{steps:[1,2,4]}},fal:fal-ai/flux/dev,"
        "{target:fal:acme/turbo,sweep:{steps:[2]}}]"
    )
    code = main(
        [
            "estimate",
            targets,
            "sweep.steps=[4,16]",
            "sweep.seeds=[0]",
            "sweep.guidance=[null]",
            "prompts.n=1",
            f"catalog_paths=[{spec_file}]",
            "catalog.fetch=never",
            f"catalog.cache_dir={tmp_path / 'c'}",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    rows = {line.split()[0]: int(line.split()[1]) for line in out.splitlines() if line.startswith("fal:")}
    assert rows == {"fal:fal-ai/flux/schnell": 3, "fal:fal-ai/flux/dev": 2, "fal:acme/turbo": 1}
    # acme/turbo's steps max is 8: 16 is refused with its own limit
    code = main(
        [
            "estimate",
            "targets=[fal:acme/turbo]",
            "sweep.steps=[16]",
            "prompts.n=1",
            f"catalog_paths=[{spec_file}]",
            "catalog.fetch=never",
        ]
    )
    assert code == 2 and "<= 8" in capsys.readouterr().err


def test_target_sweep_rejects_unknown_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["estimate", "targets=[{target:local:shapes-fast,sweep:{stepz:[1]}}]"])
    assert code == 2
    assert "targets[0].sweep.stepz" in capsys.readouterr().err


def test_catalog_pull_show_and_ls(
    emulators: dict[str, tuple[str, object]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    urls = {name: url for name, (url, _) in emulators.items()}
    ov = overrides(urls, tmp_path / "c")
    assert main(["catalog", "pull", "fal:fal-ai/qwen-image", "replicate:fofr/sdxl-emoji", *ov]) == 0
    out = capsys.readouterr().out
    assert "normalized: negative_prompt=negative_prompt, steps=num_inference_steps" in out
    assert "num_inference_steps:integer 2..250 =30" in out  # the range and default, from fal's schema
    assert "$0.02/megapixel (price API" in out
    cached = json.loads((tmp_path / "c" / "catalog" / "fal" / "fal-ai%2Fqwen-image.json").read_text())
    assert cached["fetched_at"] and len(cached["sha256"]) == 64
    # show reads the cache; ls lists fetched models beside shipped ones, filtered by --search
    assert main(["catalog", "show", "fal:fal-ai/qwen-image", *ov]) == 0
    assert "[fetched]" in capsys.readouterr().out
    assert main(["ls", "--provider", "fal", "--search", "QWEN", *ov]) == 0
    out = capsys.readouterr().out
    assert "fal:fal-ai/qwen-image" in out and "fal:fal-ai/flux/dev" not in out


def test_ls_piped_into_head_ends_quietly() -> None:
    proc = subprocess.run(
        f"{sys.executable} -c 'from bench.cli import main; raise SystemExit(main())' ls --provider eachlabs | head -2",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert len(proc.stdout.splitlines()) == 2
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_live_price_ranks_between_reported_and_the_table() -> None:
    table = PriceTable(
        [PriceEntry("fal", "m", "image", 0.05, "2026-01-01", "https://fal.ai/pricing")]
    ).with_entries([PriceEntry("fal", "m", "image", 0.04, "2026-11-23", "api", source="price_api")])
    entry = table.lookup("fal", "m")
    assert entry is not None and (entry.usd, entry.source) == (0.04, "price_api")


def test_unlisted_openai_style_model_gets_the_generic_schema_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    with running(openai_compat.create_app(knobs(), profile="apipie")) as url:
        ov = overrides({"apipie": url}, tmp_path / "c")
        assert main(["catalog", "pull", "apipie:imagen-4", "apipie:stable-diffusion-3", *ov]) == 0
        captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "apipie:imagen-4" in warnings[0] and "unchecked" in warnings[0]
    assert "apipie:imagen-4  [fetched; UNVERIFIED" in captured.out
    assert "$0.04/image (price API" in captured.out  # APIpie's req_price for imagen-4
    cached = json.loads((tmp_path / "c" / "catalog" / "apipie" / "imagen-4.json").read_text())
    assert cached["entry"]["unverified"] is True


def test_akiio_endpoints_and_kidjig_generic_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.emulators import akiio

    monkeypatch.setenv(KEY_ENV, KEY)
    with running(akiio.create_app(knobs())) as url:
        ov = overrides({"akiio": url}, tmp_path / "c")
        assert main(["catalog", "pull", "akiio:flux_schnell", *ov]) == 0
        assert "steps=steps" in capsys.readouterr().out
        assert main(["catalog", "pull", "akiio:no_such_endpoint", *ov]) == 2
        assert "akiio:no_such_endpoint" in capsys.readouterr().err
    # KidJig publishes nothing: an id nobody can check is refused unless the user flags it (a
    # typo would reach a paid POST); flagged, it gets the generic schema, offline, marked unverified.
    base = ["catalog.fetch=never", f"catalog.cache_dir={tmp_path}"]
    assert main(["catalog", "show", "kidjig:some-new-model", *base]) == 2
    assert "allow_unverified=true" in capsys.readouterr().err
    flag = "+providers.kidjig.options.allow_unverified=true"
    assert main(["catalog", "show", "kidjig:some-new-model", *base, flag]) == 0
    assert "UNVERIFIED" in capsys.readouterr().out


def test_estimate_says_a_schema_is_unverified(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "targets=[kidjig:flux-pro-v1.1-ultra]", "prompts.n=1", "sweep=quick"]) == 0
    out = capsys.readouterr().out
    assert "note: kidjig:flux-pro-v1.1-ultra: its schema is UNVERIFIED" in out
    assert main(["estimate", "targets=[kidjig:flux-pro-v1.1-ultr]", "prompts.n=1", "sweep=quick"]) == 2
    assert "cannot be checked before a paid request" in capsys.readouterr().err
