"""The diffusers provider end to end on a tiny randomly initialised pipeline built here, offline, on CPU.

The pipeline (UNet, VAE, a 2-layer CLIP text encoder and a tokenizer over a
letters-only vocabulary) is made from configs in this file and saved with
save_pretrained, so `bench run targets=[diffusers:<folder>]` loads it as it would
any real checkpoint. Its images mean nothing; what is checked is that the
parameters reach the pipeline (each stored image equals what the pipeline makes
when called directly with those steps and that seed), and what the records carry.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

pytest.importorskip(
    "diffusers", reason="the `local` extra (diffusers, transformers, accelerate) is not installed"
)
pytest.importorskip(
    "transformers", reason="the `local` extra (diffusers, transformers, accelerate) is not installed"
)

import torch

from bench.cli import main

RATE_USD_PER_DEVICE_SECOND = 0.0005
SIZE = 32


def build_tiny_pipeline(folder: Path) -> Path:
    """A StableDiffusionPipeline of a few thousand random weights, written like a real checkpoint."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=SIZE,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        norm_num_groups=4,
        attention_head_dim=2,
    )
    vae = AutoencoderKL(
        block_out_channels=(8,),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=SIZE,
    )
    # A byte-level BPE vocabulary of single letters (no merges): enough to tokenize any prompt offline.
    vocab: dict[str, int] = {}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        vocab[letter] = len(vocab)
        vocab[letter + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer_files = folder / "tokenizer-src"
    tokenizer_files.mkdir(parents=True)
    (tokenizer_files / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (tokenizer_files / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    tokenizer = CLIPTokenizer(
        str(tokenizer_files / "vocab.json"), str(tokenizer_files / "merges.txt"), model_max_length=77
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
            hidden_size=16,
            intermediate_size=32,
            num_attention_heads=2,
            num_hidden_layers=2,
            vocab_size=len(vocab),
            max_position_embeddings=77,
            projection_dim=16,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    out = folder / "tiny-sd"
    pipe.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_pipeline(tmp_path_factory.mktemp("pipelines"))


def price_override(device: str) -> str:
    entry = (
        f"{{provider: diffusers, model: '*', unit: gpu_second, usd: {RATE_USD_PER_DEVICE_SECOND}, "
        f"effective_date: '2026-11-23', source_url: test-rate, match: {{device: {device}}}}}"
    )
    return f"prices.entries=[{entry}]"


def run_args(pipeline: Path, results: Path, run_name: str, *extra: str) -> list[str]:
    return [
        "run",
        f"targets=[diffusers:{pipeline}]",
        "prompts.n=2",
        "sweep=quick",
        "sweep.steps=[1,3]",
        "sweep.seeds=[0,1]",
        f"sweep.sizes=[{SIZE}x{SIZE}]",
        "sweep.guidance=[2.0]",
        "metrics=off",
        "report.write=false",
        "report.print_summary=false",
        "runner.progress=off",
        "providers.diffusers.options.device=cpu",
        price_override("cpu"),
        f"results_dir={results}",
        f"run_name={run_name}",
        *extra,
    ]


def reference_image(pipeline: Path, prompt: str, steps: int, seed: int) -> np.ndarray:
    """What the pipeline makes when called directly: the ground truth for steps and seed."""
    import diffusers

    from bench.providers.hf_diffusers import dtype_keyword

    pipe = diffusers.DiffusionPipeline.from_pretrained(pipeline, **{dtype_keyword(diffusers): torch.float32})
    pipe.set_progress_bar_config(disable=True)
    image = pipe(
        prompt=[prompt],
        num_inference_steps=steps,
        guidance_scale=2.0,
        width=SIZE,
        height=SIZE,
        generator=[torch.Generator("cpu").manual_seed(seed)],
        output_type="pil",
    ).images[0]
    return np.asarray(image, dtype=np.int16)


def stored_image(run: Path, row: Any) -> np.ndarray:
    return np.asarray(
        Image.open(io.BytesIO((run / row.image_path).read_bytes())).convert("RGB"), dtype=np.int16
    )


def test_bench_run_drives_a_saved_pipeline_with_its_steps_seeds_timings_and_price(
    tiny_pipeline: Path, tmp_path: Path
) -> None:
    assert main(run_args(tiny_pipeline, tmp_path, "tiny")) == 0
    run = tmp_path / "tiny"
    records = pd.read_parquet(run / "records.parquet")
    assert len(records) == 2 * 2 * 2  # prompts × steps × seeds
    assert (records.status == "ok").all(), records.error_message.tolist()
    payloads = [json.loads(p) for p in records.payload]
    assert {p["num_inference_steps"] for p in payloads} == {1, 3}
    assert all(p["device"] == "cpu" and p["dtype"] == "float32" for p in payloads)
    assert sorted(records.seed_used.astype(int).tolist()) == [0, 0, 0, 0, 1, 1, 1, 1]

    # Steps and seed reached the pipeline: each image is the one a direct call with them makes.
    row = records[(records.steps == 3) & (records.seed == 1)].iloc[0]
    expected = reference_image(tiny_pipeline, row.prompt, steps=3, seed=1)
    assert np.abs(stored_image(run, row) - expected).max() <= 1
    other_seed = records[(records.steps == 3) & (records.seed == 0) & (records.prompt == row.prompt)].iloc[0]
    other_steps = records[(records.steps == 1) & (records.seed == 1) & (records.prompt == row.prompt)].iloc[0]
    assert np.abs(stored_image(run, other_seed) - expected).max() > 1
    assert np.abs(stored_image(run, other_steps) - expected).max() > 1
    assert (records.image_width == SIZE).all() and (records.image_height == SIZE).all()

    # GPU-free timings, the warm-up kept apart, and the table's per-device-second price.
    assert (records.inference_s > 0).all() and (records.latency_s >= records.inference_s).all()
    assert (records.queue_s >= 0).all()
    assert (records.warmup_s > 0).all()
    assert records.peak_gpu_memory_mb.isna().all()  # no CUDA here: unknown, not 0
    assert records.device.str.startswith("cpu").all()
    versions = json.loads(records.software.iloc[0])
    assert {"diffusers", "transformers", "torch"} <= set(versions)
    assert (records.cost_source == "price_table").all()
    np.testing.assert_allclose(records.cost_usd, records.inference_s * RATE_USD_PER_DEVICE_SECOND)


def test_batched_requests_share_one_call_and_keep_their_own_seeds(
    tiny_pipeline: Path, tmp_path: Path
) -> None:
    args = run_args(
        tiny_pipeline,
        tmp_path,
        "batched",
        "providers.diffusers.options.batch_size=4",
        "providers.diffusers.options.batch_wait_s=5",
        "providers.diffusers.concurrency=8",
    )
    assert main(args) == 0
    records = pd.read_parquet(tmp_path / "batched" / "records.parquet")
    assert len(records) == 8 and (records.status == "ok").all()
    # 2 prompts × 2 seeds share each steps value: two calls of 4; each request is billed a quarter.
    for _, group in records.groupby("steps"):
        assert group.inference_s.nunique() == 1
    np.testing.assert_allclose(records.cost_usd, records.inference_s / 4 * RATE_USD_PER_DEVICE_SECOND)
    # A batched image is still the one its own seed makes alone.
    row = records[(records.steps == 3) & (records.seed == 1)].iloc[0]
    expected = reference_image(tiny_pipeline, row.prompt, steps=3, seed=1)
    assert np.abs(stored_image(tmp_path / "batched", row) - expected).max() <= 1


def test_the_catalog_reads_parameters_from_the_pipeline_signature(tiny_pipeline: Path) -> None:
    from bench.providers.base import ProviderSettings
    from bench.providers.hf_diffusers import DiffusersProvider

    provider = DiffusersProvider(ProviderSettings(name="diffusers", options={"device": "cpu"}))
    spec = provider.model_spec(str(tiny_pipeline))
    assert spec.normalized_parameters() == {
        "negative_prompt": "negative_prompt",
        "steps": "num_inference_steps",
        "guidance": "guidance_scale",
        "seed": "seed",
        "num_images": "num_images_per_prompt",
        "size": "width+height (width_height)",
    }
    assert spec.params["num_inference_steps"].default == 50  # StableDiffusionPipeline.__call__'s default
    assert spec.fixed == {"device": "cpu", "dtype": "float32"}


def test_a_folder_that_is_not_a_pipeline_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["run", f"targets=[diffusers:{tmp_path}]", f"results_dir={tmp_path}/out", "runner.progress=off"]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model_index.json" in err[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_on_cuda_records_carry_synchronised_timings_and_peak_memory(
    tiny_pipeline: Path, tmp_path: Path
) -> None:
    args = run_args(tiny_pipeline, tmp_path, "gpu", "providers.diffusers.options.device=cuda")
    args[args.index(price_override("cpu"))] = price_override("cuda")
    assert main(args) == 0
    records = pd.read_parquet(tmp_path / "gpu" / "records.parquet")
    assert (records.status == "ok").all()
    assert (records.peak_gpu_memory_mb > 0).all()
    assert not records.device.str.startswith("cpu").any()
    assert all(json.loads(p)["dtype"] == "float16" for p in records.payload)  # auto on CUDA
    assert not math.isnan(records.cost_usd.sum())


def test_a_run_prints_no_diffusers_chatter(tiny_pipeline: Path, tmp_path: Path) -> None:
    """No torch_dtype FutureWarning and no "Loading pipeline components" bars, in a user's terminal."""
    import subprocess
    import sys

    code = "import sys; from bench.cli import main; sys.exit(main())"
    proc = subprocess.run(
        [sys.executable, "-c", code, *run_args(tiny_pipeline, tmp_path, "quiet")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "requests finished" in out  # the run's own lines are there
    assert "torch_dtype" not in out and "FutureWarning" not in out, out
    assert "Loading pipeline components" not in out and "it/s]" not in out, out


def test_diffusers_imports_in_a_users_own_script(tmp_path: Path) -> None:
    """`from diffusers import ...` first thing in a fresh interpreter, as a user's script or the
    docs' examples do, without `import bench` before it (the torchvision hook comes from the .pth
    that `make setup` writes; on a machine whose torchvision loads, nothing is needed)."""
    import subprocess
    import sys

    script = tmp_path / "mine.py"
    script.write_text(
        "from diffusers import StableDiffusionPipeline\nimport torchvision\nprint(StableDiffusionPipeline.__name__)\n",
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert proc.returncode == 0, (
        proc.stderr[-2000:] + "\n(set up with `make setup`, or run "
        "python -c 'from bench._torchvision_compat import install_pth; install_pth()')"
    )
    assert proc.stdout.strip() == "StableDiffusionPipeline"


def test_the_pth_line_installs_the_hook_and_survives_a_missing_bench(tmp_path: Path) -> None:
    import subprocess
    import sys

    from bench._torchvision_compat import install_pth

    site_dir = tmp_path / "site"
    site_dir.mkdir()
    pth = install_pth(site_dir)
    check = (
        f"import site, sys; site.addsitedir({str(site_dir)!r}); "
        "from bench._torchvision_compat import _hook; print(_hook in sys.meta_path or 'torchvision' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr
    # Without bench importable the line does nothing (no error at every interpreter start).
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            f"import importlib.util, site; site.addsitedir({str(site_dir)!r}); print(importlib.util.find_spec('bench'))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "None" and proc.stderr == "", proc.stderr
    assert pth.read_text().startswith("import ")
