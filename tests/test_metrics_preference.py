"""PickScore and HPSv2.1: the reference formulas on the same (random-init) models, local files,
offline behaviour (one warning, NaN, stored scores kept), fingerprints and the embedding cache.

No preference-model weights exist offline here, so the code paths are exercised on seeded
random-init models: their scores mean nothing, and their fingerprints say random-init.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import bench  # noqa: F401  (torchvision import fix before open_clip / transformers)
from bench.metrics import preference as pref
from bench.metrics.fingerprint import is_random_init
from bench.metrics.notes import MetricsWarning
from bench.metrics.score import score_run
from bench.providers.local_render import render

PROMPTS = ["two red apples on a blue table", "a yellow banana", "five orange stars on a blue background"]
PICK = pref.PreferenceConfig(
    enabled=True, pretrained=None, backbone="tiny", batch_size=2, allow_download=False
)
HPS = pref.PreferenceConfig(
    enabled=True, pretrained=None, backbone="ViT-B-32", batch_size=2, allow_download=False
)


def images() -> list[Any]:
    return [render(p, width=96, height=80, seed=0, steps=8, guidance=7.0, variant="fast") for p in PROMPTS]


@pytest.fixture(scope="module")
def pick() -> pref.PreferenceModel:
    return pref.load_model("pickscore", PICK, pref.resolve_weights("pickscore", PICK, None))


@pytest.fixture(scope="module")
def hps() -> pref.PreferenceModel:
    return pref.load_model("hpsv2", HPS, pref.resolve_weights("hpsv2", HPS, None))


def test_pickscore_equals_the_model_card_formula(pick: pref.PreferenceModel) -> None:
    from transformers import CLIPImageProcessor

    ims = images()
    ours = pick.scores(pick.encode_images(ims), pick.encode_texts(PROMPTS))
    # The model card: processor -> get_*_features -> normalise -> logit_scale.exp() * text @ image.T
    processor = CLIPImageProcessor()  # CLIP's defaults: shortest side 224 bicubic, crop 224, OpenAI mean/std
    pixels = processor(images=ims, return_tensors="pt")["pixel_values"]
    assert torch.allclose(pixels, torch.stack([pick.preprocess(im) for im in ims]), atol=0.05)
    with torch.inference_mode():
        model = pick.model
        img = pref._features(model.get_image_features(pixel_values=pixels))
        txt = pref._features(model.get_text_features(input_ids=pick.tokenizer(PROMPTS)))
        img, txt = img / img.norm(dim=-1, keepdim=True), txt / txt.norm(dim=-1, keepdim=True)
        reference = (model.logit_scale.exp() * (txt @ img.T)).diagonal().numpy()
    np.testing.assert_allclose(
        ours, reference, rtol=0, atol=0.05 * pick.scale
    )  # pixel rounding of the resize
    assert pick.scale == pytest.approx(float(model.logit_scale.detach().exp()))


def test_hpsv2_equals_the_hpsv2_formula(hps: pref.PreferenceModel) -> None:
    ims = images()  # 96 x 80: not square, so hpsv2's padding matters
    ours = hps.scores(hps.encode_images(ims), hps.encode_texts(PROMPTS))
    # hpsv2.score: preprocess_val(image); outputs = model(image, text); diag(image_features @ text_features.T)
    preprocess_val = _hpsv2_reference_transform()
    with torch.inference_mode():
        out = hps.model(torch.stack([preprocess_val(im) for im in ims]), hps.tokenizer(PROMPTS))
        image_features, text_features = (
            (out["image_features"], out["text_features"]) if isinstance(out, dict) else out[:2]
        )
        reference = torch.diagonal(image_features @ text_features.T).numpy()
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    assert hps.scale == 1.0
    assert (
        "zero pad"
        in pref.details("hpsv2", HPS, pref.resolve_weights("hpsv2", HPS, None))["preprocess"]["resize"]
    )


def test_local_files_load_and_are_fingerprinted_by_content(
    pick: pref.PreferenceModel, hps: pref.PreferenceModel, tmp_path: Path
) -> None:
    folder = tmp_path / "pickscore"
    pick.model.save_pretrained(folder)
    cfg = pref.PreferenceConfig(enabled=True, pretrained=str(folder))
    weights = pref.resolve_weights("pickscore", cfg, None)
    assert weights.label == "dir:pickscore" and not is_random_init(
        pref.fingerprint("pickscore", cfg, weights)
    )
    loaded = pref.load_model("pickscore", cfg, weights)
    ims = images()
    np.testing.assert_allclose(loaded.encode_images(ims), pick.encode_images(ims), atol=1e-5)
    file = tmp_path / "hps.pt"
    torch.save({"state_dict": hps.model.state_dict()}, file)
    hcfg = pref.PreferenceConfig(enabled=True, pretrained=str(file), backbone="ViT-B-32")
    hweights = pref.resolve_weights("hpsv2", hcfg, None)
    np.testing.assert_allclose(
        pref.load_model("hpsv2", hcfg, hweights).encode_texts(PROMPTS), hps.encode_texts(PROMPTS), atol=1e-5
    )
    fps = {
        pref.fingerprint("hpsv2", hcfg, hweights),
        pref.fingerprint("hpsv2", HPS, pref.resolve_weights("hpsv2", HPS, None)),
    }
    assert len(fps) == 2 and sum(is_random_init(f) for f in fps) == 1
    # batch size and device do not change a per-image score: not in the fingerprint
    bigger = pref.PreferenceConfig(enabled=True, pretrained=str(file), backbone="ViT-B-32", batch_size=64)
    assert pref.fingerprint("hpsv2", bigger, hweights) == pref.fingerprint("hpsv2", hcfg, hweights)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from _report_runs import bench as cli

    root = tmp_path_factory.mktemp("pref")
    proc = cli(
        "run", "targets=[local:shapes-fast]", "prompts.n=3", "sweep.steps=[4]", "sweep.guidance=[7.0]",
        "sweep.seeds=[0,1]", 'sweep.sizes=["64x64"]', "metrics=off", "report.write=false",
        "report.print_summary=false", f"results_dir={root}", "run_name=r",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root / "r"


def _cfg(**blocks: Any) -> dict[str, Any]:
    return {
        "clip": {"enabled": False},
        "fid": {"enabled": False},
        "kid": {"enabled": False},
        "stats": {"n_boot": 50},
        **blocks,
    }


def test_run_is_scored_and_rescored_from_cache(run_dir: Path) -> None:
    blocks = {
        "pickscore": {"enabled": True, "pretrained": None, "backbone": "tiny"},
        "hpsv2": {"enabled": True, "pretrained": None, "backbone": "ViT-B-32"},
    }
    first = score_run(run_dir, _cfg(**blocks))
    assert any(n.startswith("pickscore on 6 images (6 computed)") for n in first.notes), first.notes
    assert any(n.startswith("hpsv2 on 6 images (6 computed)") for n in first.notes), first.notes
    records = pd.read_parquet(run_dir / "records.parquet")
    assert records["pickscore"].notna().all() and records["hpsv2"].notna().all()
    assert records["pickscore_fingerprint"].map(is_random_init).all()
    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    assert metrics["pickscore_mean"].notna().all() and metrics["hpsv2_mean"].notna().all()
    assert metrics["pickscore_mean"].iloc[0] == pytest.approx(records["pickscore"].mean())
    again = score_run(run_dir, _cfg(**blocks))
    assert any(n.startswith("pickscore on 6 images (0 computed)") for n in again.notes), again.notes
    assert any(n.startswith("hpsv2 on 6 images (0 computed)") for n in again.notes), again.notes
    records2 = pd.read_parquet(run_dir / "records.parquet")
    np.testing.assert_allclose(records2["pickscore"], records["pickscore"], rtol=1e-6)
    np.testing.assert_allclose(records2["hpsv2"], records["hpsv2"], rtol=1e-6)


def test_offline_tags_warn_once_give_nan_and_keep_stored_scores(run_dir: Path) -> None:
    blocks = {
        "pickscore": {"enabled": True, "allow_download": False},  # default tag, not in any cache here
        "hpsv2": {"enabled": True, "allow_download": False},
    }
    before = pd.read_parquet(run_dir / "records.parquet")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = score_run(run_dir, _cfg(**blocks))
    ours = [str(w.message) for w in caught if issubclass(w.category, MetricsWarning)]
    assert len([m for m in ours if m.startswith("pickscore is NaN")]) == 1
    assert len([m for m in ours if m.startswith("hpsv2 is NaN")]) == 1
    assert any("metrics.pickscore.pretrained=/path/to/folder" in m for m in ours)
    assert any("HPS_v2.1_compressed.pt" in m and "metrics.hpsv2.pretrained=/path/to/file" in m for m in ours)
    assert sum(n.startswith(("pickscore is NaN", "hpsv2 is NaN")) for n in report.notes) == 2
    after = pd.read_parquet(run_dir / "records.parquet")
    if "pickscore" in before:  # scored by the test above: an offline re-score must not erase it
        pd.testing.assert_series_equal(before["pickscore"], after["pickscore"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        score_run(run_dir, _cfg())  # preference models not asked for: no warning, nothing erased
    assert not [w for w in caught if "is NaN" in str(w.message)]
    if "pickscore" in before:
        pd.testing.assert_series_equal(
            before["pickscore"], pd.read_parquet(run_dir / "records.parquet")["pickscore"]
        )


def _hpsv2_reference_transform() -> Any:
    """hpsv2's own evaluation transform, imported from the installed hpsv2 package (PyPI hpsv2 1.2.0,
    installed --no-deps by the Makefile; its transform.py is that of github.com/tgxs002/HPSv2 at
    866735ec, hpsv2/src/open_clip/transform.py). Only constants.py and transform.py are executed:
    the package's __init__ files import its training stack and download helpers."""
    import importlib.util
    import sys
    import types

    spec = importlib.util.find_spec("hpsv2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("hpsv2 not installed (the Makefile installs it: pip install --no-deps hpsv2==1.2.0)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "src" / "open_clip"
    package = types.ModuleType("_hpsv2_open_clip")
    package.__path__ = [str(folder)]
    sys.modules["_hpsv2_open_clip"] = package
    transform = importlib.import_module("_hpsv2_open_clip.transform")
    # As hpsv2.img_score builds it: create_model_and_transforms('ViT-H-14', ..., light_augmentation=True)
    # -> image_transform(model.visual.image_size, is_train=False, mean=None, std=None, resize_longest_max=True)
    return transform.image_transform((224, 224), is_train=False, resize_longest_max=True)


def test_hpsv2_preprocessing_is_hpsv2s_own_on_non_square_images() -> None:
    from PIL import Image

    reference = _hpsv2_reference_transform()
    ours = pref.hps_transform()
    rng = np.random.default_rng(0)
    cases = [
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        for w, h in ((1024, 576), (576, 1024), (300, 200), (97, 61), (100, 50), (512, 512))
    ]  # 16:9 and 9:16, odd paddings, an upscale, a square one
    cases += [
        render(PROMPTS[0], width=320, height=180, seed=1, steps=8, guidance=7.0, variant="fast"),
        Image.fromarray(rng.integers(0, 256, (61, 150), dtype=np.uint8)).convert("L"),  # grey: made RGB
    ]
    for im in cases:
        width, height = im.size
        want, got = reference(im), ours(im)
        assert got.shape == want.shape == (3, 224, 224), (width, height)
        assert torch.allclose(got, want, rtol=0, atol=1e-6), (width, height, (got - want).abs().max())
    # The old preprocessing (CLIP's centre crop) is far from it on a 16:9 image: the test can tell.
    wide = render(PROMPTS[1], width=320, height=180, seed=0, steps=8, guidance=7.0, variant="fast")
    assert (pref.preprocess_transform()(wide) - reference(wide)).abs().max() > 0.5
    # The black bars are there: top and bottom rows of a 16:9 image are padding (0 before normalising).
    black = torch.tensor([-m / s for m, s in zip(pref.OPENAI_MEAN, pref.OPENAI_STD, strict=True)])
    assert torch.allclose(ours(wide)[:, 0, :], black[:, None].expand(3, 224), atol=1e-6)
