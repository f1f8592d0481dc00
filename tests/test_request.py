import dataclasses

import pytest

from bench.request import ImageRequest, canonical_json, request_key


def test_key_is_stable_across_dict_order_and_number_spelling() -> None:
    a = request_key("p", "m", {"prompt": "x", "guidance_scale": 7.0, "steps": 4}, 0)
    b = request_key("p", "m", {"steps": 4, "prompt": "x", "guidance_scale": 7}, 0)
    assert a == b


def test_key_pinned_value() -> None:
    # A silent change to the key would orphan every stored result: pin one value.
    key = request_key("local", "shapes-fast", {"prompt": "a red apple", "seed": 0}, 0)
    assert key == "e3ebdc86ebd1a2de6ecf6c67cae5e67d1fa42ed0e571df94c95ddd5f60b9abb9"


@pytest.mark.parametrize(
    "other",
    [
        ("q", "m", {"prompt": "x"}, 0),
        ("p", "n", {"prompt": "x"}, 0),
        ("p", "m", {"prompt": "y"}, 0),
        ("p", "m", {"prompt": "x"}, 1),
        ("p", "m", {"prompt": "x", "seed": 1}, 0),
    ],
)
def test_key_changes_with_each_input(other: tuple) -> None:  # type: ignore[type-arg]
    assert request_key("p", "m", {"prompt": "x"}, 0) != request_key(*other)


def test_canonical_json_rejects_nan_and_unknown_types() -> None:
    with pytest.raises(ValueError):
        canonical_json({"g": float("nan")})
    with pytest.raises(TypeError):
        canonical_json({"g": object()})


def test_request_is_frozen_and_validated() -> None:
    r = ImageRequest(prompt="x", width=512, height=512)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.prompt = "y"  # type: ignore[misc]
    assert r.size_label == "512x512"
    with pytest.raises(ValueError):
        ImageRequest(prompt="x", width=512)
    with pytest.raises(ValueError):
        ImageRequest(prompt="x", width=512, height=512, aspect_ratio="1:1")
    with pytest.raises(ValueError):
        ImageRequest(prompt="x", num_images=0)
