"""The Eachlabs catalog: shipped data matches the seed, and every model maps and validates."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from bench.catalog.eachlabs import eachlabs_model, load_eachlabs_document, load_eachlabs_models
from bench.catalog.mapping import ParameterError, map_request, validate_payload
from bench.catalog.spec import ModelSpec, ParamSpec
from bench.request import ImageRequest
from tools import generate_eachlabs as gen

SEED = Path(__file__).resolve().parents[1].parent / "shared" / "seeds" / "001_f1a03a70191845e5.txt"
PROMPT = "two red apples on a blue table"
SPECS = load_eachlabs_models()
SLUGS = [s.model for s in SPECS]

# Every native name the issue (and the seed) uses for each normalized parameter:
# when a model has none of them the value must be left out, never sent under another name.
ALIASES = {
    "steps": set(gen.STEPS_NAMES),
    "guidance": set(gen.GUIDANCE_NAMES),
    "seed": set(gen.SEED_NAMES),
    "num_images": set(gen.COUNT_NAMES),
}


def _inside(param: ParamSpec, preferred: float) -> float:
    """`preferred`, or the seed default, moved inside the parameter's range."""
    value = param.default if isinstance(param.default, int | float) else preferred
    if param.minimum is not None:
        value = max(value, param.minimum)
    if param.maximum is not None:
        value = min(value, param.maximum)
    return value


def _required_extras(spec: ModelSpec) -> dict[str, Any]:
    """Values for required parameters a normalized request cannot supply (input images)."""
    return {
        name: "https://example.com/face.png"
        for name, p in spec.params.items()
        if p.required and name != spec.prompt_param and name not in spec.fixed
    }


def _walk_request(spec: ModelSpec) -> ImageRequest:
    # Models without steps or guidance still get them: they must be left out, with a reason.
    steps, guidance = 20, 3.5
    if spec.steps_param is not None:
        steps = int(_inside(spec.params[spec.steps_param], 20))
    if spec.guidance_param is not None:
        g = spec.params[spec.guidance_param]
        guidance = float(_inside(g, 3.5))
        if g.type == "integer":
            guidance = float(round(guidance))
    return ImageRequest(
        prompt=PROMPT,
        steps=steps,
        guidance=guidance,
        seed=7,
        width=1024,
        height=1024,
        extra=_required_extras(spec),
    )


# --- the catalog as a whole ----------------------------------------------------------------


def test_catalog_has_all_62_models_with_unique_slugs() -> None:
    assert len(SPECS) == 62
    assert len(set(SLUGS)) == 62
    doc = load_eachlabs_document()
    assert doc["model_count"] == 62
    assert doc["source"] == SEED.name
    assert doc["generator_version"] == gen.GENERATOR_VERSION
    assert {s.provider for s in SPECS} == {"eachlabs"}
    assert {s.version for s in SPECS} == {"0.0.1"}
    assert all(s.title for s in SPECS)
    assert all(s.prompt_param in s.params for s in SPECS)


def test_loader_is_cached_and_reads_package_data() -> None:
    assert load_eachlabs_models() is load_eachlabs_models()
    shipped = resources.files("bench.catalog").joinpath("data", "eachlabs.json")
    assert shipped.is_file()
    assert eachlabs_model("flux-schnell").target_id == "eachlabs:flux-schnell"
    with pytest.raises(KeyError, match="no-such-model"):
        eachlabs_model("no-such-model")


def test_generator_on_the_seed_reproduces_the_shipped_json() -> None:
    if not SEED.is_file():
        pytest.skip(f"seed {SEED} not present (it lives in ../shared/seeds next to the repo)")
    shipped = resources.files("bench.catalog").joinpath("data", "eachlabs.json").read_text(encoding="utf-8")
    regenerated = gen.render(SEED.read_text(encoding="utf-8"), SEED.name)
    assert regenerated == shipped, "re-run: python tools/generate_eachlabs.py " + str(SEED)
    assert gen.main([str(SEED), "--check", "-o", str(gen.DEFAULT_OUT)]) == 0


def test_json_is_pretty_and_in_stable_order() -> None:
    text = resources.files("bench.catalog").joinpath("data", "eachlabs.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    assert text == json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    assert list(doc)[:3] == ["provider", "source", "source_sha256"]
    assert list(doc["models"][0])[:3] == ["slug", "title", "version"]
    assert list(doc["models"][0]["params"][0]) == [
        "name",
        "type",
        "required",
        "default",
        "options",
        "options_complete",
        "min",
        "max",
        "description",
    ]


def test_defaults_are_typed_not_quoted_strings() -> None:
    type_of = {"integer": int, "number": float, "boolean": bool, "string": str}
    for spec in SPECS:
        for p in spec.params.values():
            if p.default is not None and p.type in type_of:
                assert type(p.default) is type_of[p.type], (spec.model, p.name, p.default)
            if p.options is not None and p.type in type_of:
                assert all(type(o) is type_of[p.type] for o in p.options), (spec.model, p.name)
                assert "" not in p.options, (spec.model, p.name)
    klein = eachlabs_model("flux-2-klein-9b-base-text-to-image").params
    assert klein["num_images"].default == 1
    assert klein["guidance_scale"].default == 5.0
    assert klein["sync_mode"].default is False
    assert klein["enable_safety_checker"].default is True
    assert eachlabs_model("fooocus-api").params["image_seed"].default == -1
    # Only the outer quotes are the seed's: Sana's default prompt quotes a word itself.
    assert (
        eachlabs_model("sana").params["prompt"].default == 'a cyberpunk cat with a neon sign that says "Sana"'
    )


# --- the walk: every model maps and validates, and rejects a bad value --------------------


@pytest.mark.parametrize("slug", SLUGS)
def test_walk_maps_and_validates(slug: str) -> None:
    spec = eachlabs_model(slug)
    request = _walk_request(spec)
    mapped = map_request(spec, request)
    payload, left_out = mapped.payload, mapped.left_out

    assert payload[spec.prompt_param] == PROMPT
    assert set(payload) <= set(spec.params), "only the model's own parameter names are sent"
    sent = {"steps": request.steps, "guidance": request.guidance, "seed": request.seed}
    natives = {"steps": spec.steps_param, "guidance": spec.guidance_param, "seed": spec.seed_param}
    for normalized, value in sent.items():
        native = natives[normalized]
        if native is None:
            assert "has no" in left_out[normalized] and slug in left_out[normalized]
            assert not ALIASES[normalized] & set(payload), f"{normalized} sent under another name"
            continue
        assert normalized not in left_out
        assert native in ALIASES[normalized]
        got = payload[native]
        # String-typed seeds in the seed get "7"; integer guidance gets an int.
        assert got == value or got == str(value), (native, got)
        assert not (ALIASES[normalized] - {native}) & set(payload)

    if spec.size_mode == "none":
        assert "no size parameter" in left_out["size"]
    else:
        assert "size" not in left_out, left_out
        assert spec.size_param in payload
        if spec.size_param_2 is not None:
            assert (payload[spec.size_param], payload[spec.size_param_2]) == (1024, 1024)
        if spec.aspect_ratio_param is not None and spec.size_mode in ("megapixels", "resolution"):
            assert payload[spec.aspect_ratio_param] == "1:1"
    validate_payload(spec, payload)


def _bad_values(spec: ModelSpec) -> list[tuple[str, Any]]:
    """A value not in the options (where the model lists them fully) and a wrongly typed one."""
    bad: list[tuple[str, Any]] = []
    enum = next(
        (p for p in spec.params.values() if p.type == "string" and p.options and p.options_complete), None
    )
    if enum is not None:
        # An aspect ratio the model does not list, or a plainly unknown enum value.
        bad.append((enum.name, "7:3" if "1:1" in (enum.options or ()) else "not-an-option"))
    typed = next((p for p in spec.params.values() if p.type in ("integer", "number", "boolean")), None)
    bad.append((typed.name, "seven") if typed is not None else (spec.prompt_param, 123))
    return bad


@pytest.mark.parametrize("slug", SLUGS)
def test_walk_rejects_a_bad_value_with_a_clear_error(slug: str) -> None:
    spec = eachlabs_model(slug)
    for name, value in _bad_values(spec):
        request = ImageRequest(prompt=PROMPT, extra={**_required_extras(spec), name: value})
        with pytest.raises(ParameterError) as caught:
            map_request(spec, request)
        message = str(caught.value)
        assert slug in message and name in message, message
        assert spec.params[name].accepts_text() in message, message
        assert caught.value.param == name


@pytest.mark.parametrize("slug", [s.model for s in SPECS if s.steps_param is not None])
def test_out_of_range_steps_are_rejected(slug: str) -> None:
    spec = eachlabs_model(slug)
    request = ImageRequest(prompt=PROMPT, steps=0, extra=_required_extras(spec))
    with pytest.raises(ParameterError, match=rf"{slug}: parameter {spec.steps_param}=0 .* >= 1"):
        map_request(spec, request)


def test_unknown_parameter_is_rejected_naming_what_exists() -> None:
    spec = eachlabs_model("flux-schnell")
    with pytest.raises(
        ParameterError, match=r"flux-schnell: parameter num_steps=.*no such parameter.*megapixels"
    ):
        map_request(spec, ImageRequest(prompt=PROMPT, extra={"num_steps": 4}))


def test_range_from_description_is_enforced() -> None:
    spec = eachlabs_model("wan-v2-6-text-to-image")
    assert spec.count_param == "max_images"
    assert map_request(spec, ImageRequest(prompt=PROMPT, num_images=5)).payload["max_images"] == 5
    with pytest.raises(ParameterError, match=r"wan-v2-6-text-to-image: parameter max_images=6 .*<= 5"):
        map_request(spec, ImageRequest(prompt=PROMPT, num_images=6))


# --- required, fixed, coercion ------------------------------------------------------------


@pytest.mark.parametrize(
    ("slug", "param"), [("photomaker", "input_image"), ("omni-zero-couples", "base_image")]
)
def test_required_parameter_without_default_is_a_clear_error(slug: str, param: str) -> None:
    spec = eachlabs_model(slug)
    with pytest.raises(ParameterError) as caught:
        map_request(spec, ImageRequest(prompt=PROMPT, seed=7))
    message = str(caught.value)
    assert f"eachlabs:{slug}: parameter {param}=None" in message
    assert "required string" in message and "extra" in message


def test_fixed_holds_only_required_parameters_with_defaults() -> None:
    fixed = {s.model: dict(s.fixed) for s in SPECS if s.fixed}
    assert fixed == {
        "bria-v1-text-to-image-hd": {"model_version": "2.2"},
        "bria-v1-text-to-image-fast": {"model_version": "2.3"},
        "bria-v1-text-to-image-base": {"model_version": "2.3"},
        "nano-banana": {"num_images": 1},
    }


def test_request_values_replace_fixed_ones() -> None:
    nano = eachlabs_model("nano-banana")
    assert map_request(nano, ImageRequest(prompt=PROMPT)).payload["num_images"] == 1
    assert map_request(nano, ImageRequest(prompt=PROMPT, num_images=3)).payload["num_images"] == 3
    bria = eachlabs_model("bria-v1-text-to-image-base")
    assert map_request(bria, ImageRequest(prompt=PROMPT)).payload["model_version"] == "2.3"
    extra = ImageRequest(prompt=PROMPT, extra={"model_version": "3.2"})
    assert map_request(bria, extra).payload["model_version"] == "3.2"
    with pytest.raises(ParameterError, match=r"model_version='9\.9' .* one of 2\.3, 3\.2"):
        map_request(bria, ImageRequest(prompt=PROMPT, extra={"model_version": "9.9"}))


def test_string_seed_and_integer_guidance_are_coerced_without_loss() -> None:
    srpo = eachlabs_model("tencent-flux-srpo-text-to-image")
    assert map_request(srpo, ImageRequest(prompt=PROMPT, seed=7)).payload["seed"] == "7"
    bria = eachlabs_model("bria-v1-text-to-image-hd")
    assert bria.guidance_param == "text_guidance_scale"
    assert map_request(bria, ImageRequest(prompt=PROMPT, guidance=5.0)).payload["text_guidance_scale"] == 5
    with pytest.raises(ParameterError, match=r"text_guidance_scale=3\.5 .* integer"):
        map_request(bria, ImageRequest(prompt=PROMPT, guidance=3.5))


# --- size ---------------------------------------------------------------------------------


def _size_payload(slug: str, **size: Any) -> tuple[dict[str, Any], dict[str, str]]:
    spec = eachlabs_model(slug)
    mapped = map_request(spec, ImageRequest(prompt=PROMPT, extra=_required_extras(spec), **size))
    return mapped.payload, mapped.left_out


def test_size_modes_follow_the_seed() -> None:
    modes = {s.model: (s.size_mode, s.size_param, s.aspect_ratio_param) for s in SPECS}
    assert modes["flux-2"] == ("image_size_preset", "image_size", None)
    assert modes["gpt-image-v1-5-text-to-image"] == ("size_string", "image_size", None)
    assert modes["recraft-v3"] == ("size_string", "size", None)
    assert modes["p-image-text-to-image"] == ("width_height", "width", "aspect_ratio")
    assert modes["flux-schnell"] == ("megapixels", "megapixels", "aspect_ratio")
    assert modes["nano-banana-pro"] == ("resolution", "resolution", "aspect_ratio")
    # Ideogram's WxH list is cut short in the seed: the complete aspect ratio list wins.
    assert modes["ideogram-v3-turbo"] == ("aspect_ratio", "aspect_ratio", None)
    assert {s.model for s in SPECS if s.size_mode == "none"} == {"photomaker", "omni-zero-couples"}


def test_presets_use_the_fal_pixel_sizes() -> None:
    assert _size_payload("flux-2", width=1024, height=576)[0]["image_size"] == "landscape_16_9"
    # No preset is 1000x1000 and the seed lists presets only: the same shape, said (issue 21).
    payload, left_out = _size_payload("flux-2", width=1000, height=1000)
    assert (
        payload["image_size"] == "square_hd" and "approximated as square_hd (1024x1024)" in left_out["size"]
    )
    payload, left_out = _size_payload("flux-2", width=1000, height=300)  # no preset of that shape
    assert "image_size" not in payload and "cannot be expressed as image_size" in left_out["size"]


def test_width_height_with_custom_aspect_ratio() -> None:
    payload, _ = _size_payload("p-image-text-to-image", width=1024, height=768)
    assert (payload["aspect_ratio"], payload["width"], payload["height"]) == ("custom", 1024, 768)
    payload, _ = _size_payload("p-image-text-to-image", aspect_ratio="16:9")
    assert payload["aspect_ratio"] == "16:9" and "width" not in payload


def test_width_height_from_an_option_list() -> None:
    assert _size_payload("kandinsky-2-2", width=768, height=1024)[0]["width"] == 768
    payload, left_out = _size_payload("kandinsky-2-2", width=1000, height=1000)
    assert "width" not in payload and "size" in left_out


def test_megapixels_and_tiers_go_with_the_aspect_ratio() -> None:
    payload, _ = _size_payload("flux-schnell", width=512, height=512)
    assert (payload["aspect_ratio"], payload["megapixels"]) == ("1:1", "0.25")
    payload, left_out = _size_payload("flux-schnell", width=1024, height=576)
    assert payload["aspect_ratio"] == "16:9" and "megapixels" not in payload
    # The shape went, the size could not (0.59 MP is neither 1 nor 0.25): that is said (issue 21).
    assert "cannot be expressed as megapixels" in left_out["size"]
    payload, _ = _size_payload("nano-banana-pro", width=2048, height=2048)
    assert (payload["aspect_ratio"], payload["resolution"]) == ("1:1", "2K")
    payload, left_out = _size_payload("nano-banana-pro", width=1000, height=300)
    assert "aspect_ratio" not in payload and "cannot be expressed as aspect_ratio" in left_out["size"]


def test_size_strings_follow_the_separator_in_the_options() -> None:
    assert _size_payload("fooocus-api", width=1024, height=1024)[0]["aspect_ratios_selection"] == "1024*1024"
    assert _size_payload("openai-image-generation", width=1536, height=1024)[0]["image_size"] == "1536x1024"
    assert "size" in _size_payload("gpt-image-v1-5-text-to-image", width=512, height=512)[1]


def test_options_the_seed_cut_short_are_shown_but_not_enforced() -> None:
    recraft = eachlabs_model("recraft-v3")
    assert recraft.params["size"].options_complete is False
    payload = map_request(recraft, ImageRequest(prompt=PROMPT, width=2048, height=1024)).payload
    assert payload["size"] == "2048x1024"
    style = recraft.params["style"]
    assert "cut short" in style.accepts_text() and "realistic_image" in style.accepts_text()
    with pytest.raises(ParameterError, match="recraft-v3: parameter style=3"):
        map_request(recraft, ImageRequest(prompt=PROMPT, extra={"style": 3}))


def test_seed_oddities_are_repaired_and_noted() -> None:
    doc = {m["slug"]: m for m in load_eachlabs_document()["models"]}
    assert "enable_safety_checker" in eachlabs_model("flux-2-lora").params
    assert any("enable_safety_checker boolean" in n for n in doc["flux-2-lora"]["notes"])
    bria_ratios = eachlabs_model("bria-v1-text-to-image-hd").params["aspect_ratio"].options
    assert bria_ratios is not None and "" not in bria_ratios and "3:4" in bria_ratios


# --- the generator on small seeds -------------------------------------------------------------

_HEADER = (
    "| Parameter | Type | Required | Default | Options / Constraints | Description |\n"
    "|-----------|------|----------|---------|----------------------|-------------|\n"
)


def _seed(*rows: str, slug: str = "m") -> str:
    body = "".join(row + "\n" for row in rows)
    return f"# Ref\n\nAll models use version `0.0.1`.\n\n## M\n\n**Slug:** `{slug}`\n\n{_HEADER}{body}\n---\n"


def _params(text: str) -> dict[str, dict[str, Any]]:
    doc = json.loads(gen.render(text, "t.txt"))
    return {p["name"]: p for p in doc["models"][0]["params"]}


def test_generator_reads_quoted_defaults_options_and_ranges() -> None:
    params = _params(
        _seed(
            "| `prompt` | string | Yes | — | — | p |",
            '| `steps` | integer | No | `"28"` | min 1, max 50 | s |',
            '| `cfg` | number | No | `"3.5"` | 0-20 | g |',
            '| `fmt` | string | No | `"png"` | jpeg, png , webp | f |',
            '| `flag` | boolean | No | `"False"` | — | b |',
            '| `mp` | string | No | `"1"` | 1,0.25 | m |',
        )
    )
    assert (params["steps"]["default"], params["steps"]["min"], params["steps"]["max"]) == (28, 1, 50)
    assert (params["cfg"]["default"], params["cfg"]["min"], params["cfg"]["max"]) == (3.5, 0, 20)
    assert params["fmt"]["options"] == ["jpeg", "png", "webp"]
    assert params["flag"]["default"] is False
    assert params["mp"]["options"] == ["1", "0.25"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "# Ref\n\n## M\n\n" + _HEADER + "| `prompt` | string | Yes | — | — | p |\n",
            "line 3: .* no \\*\\*Slug",
        ),
        (_seed("| `prompt` | text | Yes | — | — | p |"), "unknown type 'text'"),
        (
            _seed("| `prompt` | string | Yes | — | — | p |", '| `n` | integer | No | `"many"` | — | n |'),
            "n: default",
        ),
        (
            _seed("| `prompt` | string | Yes | — | — | p |")
            + _seed("| `prompt` | string | Yes | — | — | p |"),
            "slug 'm'",
        ),
        (_seed("| `image` | string | Yes | — | — | p |"), "no text prompt field"),
    ],
)
def test_generator_stops_on_a_malformed_seed(text: str, error: str) -> None:
    with pytest.raises(gen.SeedFormatError, match=error):
        gen.render(text, "t.txt")
