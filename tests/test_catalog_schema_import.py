"""Realistic provider schemas (written here from the documented shapes) -> catalog specs -> validation.

fal publishes an OpenAPI 3.0 document per endpoint: the input is the $ref of the POST
body, image_size is anyOf [$ref ImageSize, enum of presets], optional integers are
anyOf [.., null], and the order is x-fal-order-properties. Replicate's openapi_schema
writes enums as allOf [$ref] and orders by x-order. A bad value must be refused with
the provider's own limits in the message.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.catalog.entries import spec_from_entry
from bench.catalog.mapping import ParameterError, map_request
from bench.catalog.schema_import import SchemaError, entry_from_input_schema, fal_input_schema
from bench.request import ImageRequest

FAL_RECRAFT: dict[str, Any] = {
    "openapi": "3.0.4",
    "info": {
        "title": "Recraft V3",
        "version": "0.1.0",
        "x-fal-metadata": {"endpointId": "fal-ai/recraft/v3/text-to-image"},
    },
    "components": {
        "schemas": {
            "RecraftV3TextToImageInput": {
                "title": "TextToImageInput",
                "type": "object",
                "x-fal-order-properties": [
                    "prompt",
                    "image_size",
                    "style",
                    "num_inference_steps",
                    "seed",
                    "colors",
                ],
                "properties": {
                    "seed": {
                        "title": "Seed",
                        "description": "Random seed",
                        "anyOf": [{"type": "integer", "minimum": 0, "maximum": 2147483647}, {"type": "null"}],
                    },
                    "prompt": {"title": "Prompt", "type": "string", "minLength": 1, "maxLength": 1000},
                    "image_size": {
                        "title": "Image Size",
                        "default": "square_hd",
                        "anyOf": [
                            {"$ref": "#/components/schemas/ImageSize"},
                            {
                                "type": "string",
                                "enum": [
                                    "square_hd",
                                    "square",
                                    "portrait_4_3",
                                    "portrait_16_9",
                                    "landscape_4_3",
                                    "landscape_16_9",
                                ],
                            },
                        ],
                    },
                    "style": {
                        "title": "Style",
                        "type": "string",
                        "enum": ["any", "realistic_image", "digital_illustration", "vector_illustration"],
                        "default": "realistic_image",
                    },
                    "num_inference_steps": {
                        "title": "Num Inference Steps",
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 12,
                        "default": 4,
                    },
                    "colors": {
                        "title": "Colors",
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/RGBColor"},
                        "default": [],
                    },
                },
                "required": ["prompt"],
            },
            "ImageSize": {
                "title": "ImageSize",
                "type": "object",
                "properties": {
                    "width": {"type": "integer", "exclusiveMinimum": 0, "maximum": 14142, "default": 512},
                    "height": {"type": "integer", "exclusiveMinimum": 0, "maximum": 14142, "default": 512},
                },
            },
            "RGBColor": {"type": "object", "properties": {"r": {"type": "integer"}}},
        }
    },
    "paths": {
        "/fal-ai/recraft/v3/text-to-image": {
            "post": {
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/RecraftV3TextToImageInput"}
                        }
                    },
                }
            }
        }
    },
}

REPLICATE_SCHEMA: dict[str, Any] = {
    "openapi": "3.0.2",
    "info": {"title": "Cog", "version": "0.1.0"},
    "paths": {},
    "components": {
        "schemas": {
            "Input": {
                "type": "object",
                "title": "Input",
                "required": ["prompt"],
                "properties": {
                    "seed": {"type": "integer", "title": "Seed", "x-order": 3, "description": "Random seed"},
                    "prompt": {"type": "string", "title": "Prompt", "x-order": 0},
                    "aspect_ratio": {
                        "allOf": [{"$ref": "#/components/schemas/aspect_ratio"}],
                        "default": "1:1",
                        "x-order": 1,
                        "description": "Aspect ratio for the generated image",
                    },
                    "num_inference_steps": {
                        "type": "integer",
                        "title": "Num Inference Steps",
                        "minimum": 1,
                        "maximum": 4,
                        "default": 4,
                        "x-order": 2,
                    },
                    "output_format": {
                        "allOf": [{"$ref": "#/components/schemas/output_format"}],
                        "default": "webp",
                        "x-order": 4,
                    },
                },
            },
            "aspect_ratio": {
                "enum": ["1:1", "16:9", "9:16", "4:3", "3:4"],
                "type": "string",
                "title": "aspect_ratio",
                "description": "An enumeration.",
            },
            "output_format": {"enum": ["webp", "jpg", "png"], "type": "string", "title": "output_format"},
        }
    },
}


def fal_spec() -> Any:
    entry = entry_from_input_schema(
        FAL_RECRAFT,
        fal_input_schema(FAL_RECRAFT, "fal-ai/recraft/v3/text-to-image"),
        slug="fal-ai/recraft/v3/text-to-image",
    )
    return spec_from_entry(entry, "fal", catalog_source="fetched")


def test_fal_openapi_document_reads_order_refs_any_of_and_maps() -> None:
    spec = fal_spec()
    assert list(spec.params) == ["prompt", "image_size", "style", "num_inference_steps", "seed", "colors"]
    assert spec.params["prompt"].required
    size = spec.params["image_size"]
    assert size.type == "string" and size.options is not None and "landscape_16_9" in size.options
    assert size.default == "square_hd"
    seed = spec.params["seed"]  # anyOf [integer, null] is an optional integer
    assert (seed.type, seed.minimum, seed.maximum) == ("integer", 0, 2147483647)
    assert spec.steps_param == "num_inference_steps" and spec.seed_param == "seed"
    assert (spec.size_mode, spec.size_param) == ("image_size_preset", "image_size")
    mapped = map_request(spec, ImageRequest(prompt="a fox", steps=2, seed=7, width=1024, height=576))
    assert mapped.payload == {
        "prompt": "a fox",
        "num_inference_steps": 2,
        "seed": 7,
        "image_size": "landscape_16_9",
    }
    # a size no preset expresses goes as the ImageSize object the schema also takes (issue 21)
    odd = map_request(spec, ImageRequest(prompt="a fox", width=640, height=480))
    assert odd.payload["image_size"] == {"width": 640, "height": 480} and not odd.left_out
    assert spec.size_object == {"max_side_px": 14142}


def test_fal_rejects_a_bad_value_with_the_providers_own_limits() -> None:
    spec = fal_spec()
    with pytest.raises(ParameterError, match=r"num_inference_steps=50 .*<= 12"):
        map_request(spec, ImageRequest(prompt="a fox", steps=50))
    with pytest.raises(
        ParameterError, match=r"style='pastel'.*one of any, realistic_image, digital_illustration"
    ):
        map_request(spec, ImageRequest(prompt="a fox", extra={"style": "pastel"}))


def test_replicate_all_of_enums_and_x_order() -> None:
    entry = entry_from_input_schema(
        REPLICATE_SCHEMA,
        REPLICATE_SCHEMA["components"]["schemas"]["Input"],
        slug="black-forest-labs/flux-schnell",
        version="abc123",
    )
    spec = spec_from_entry(entry, "replicate")
    assert list(spec.params) == ["prompt", "aspect_ratio", "num_inference_steps", "seed", "output_format"]
    assert spec.params["aspect_ratio"].options == ("1:1", "16:9", "9:16", "4:3", "3:4")
    assert spec.params["aspect_ratio"].default == "1:1"
    assert spec.version == "abc123"
    assert (spec.size_mode, spec.size_param) == ("aspect_ratio", "aspect_ratio")
    mapped = map_request(spec, ImageRequest(prompt="a fox", width=1024, height=576, steps=4, seed=1))
    assert mapped.payload == {"prompt": "a fox", "aspect_ratio": "16:9", "num_inference_steps": 4, "seed": 1}
    with pytest.raises(ParameterError, match=r"num_inference_steps=8 .*<= 4"):
        map_request(spec, ImageRequest(prompt="a fox", steps=8))
    with pytest.raises(ParameterError, match=r"output_format='gif'.*one of webp, jpg, png"):
        map_request(spec, ImageRequest(prompt="a fox", extra={"output_format": "gif"}))


def test_exclusive_minimum_on_integers_and_unreadable_schemas() -> None:
    schema = {
        "type": "object",
        "required": ["prompt"],
        "properties": {
            "prompt": {"type": "string"},
            "width": {"type": "integer", "exclusiveMinimum": 0},
            "height": {"type": "integer", "exclusiveMinimum": 0},
        },
    }
    spec = spec_from_entry(entry_from_input_schema(schema, schema, slug="m"), "x")
    assert spec.params["width"].minimum == 1 and spec.size_mode == "width_height"
    # a text field not called prompt is the prompt (issue 21); an image field alone is not
    assert (
        entry_from_input_schema({}, {"properties": {"text": {"type": "string"}}}, slug="m")["prompt_param"]
        == "text"
    )
    with pytest.raises(SchemaError, match="no text prompt field"):
        entry_from_input_schema({}, {"properties": {"image": {"type": "string"}}}, slug="m")
    with pytest.raises(SchemaError, match="points nowhere"):
        entry_from_input_schema({}, {"$ref": "#/components/schemas/Missing"}, slug="m")
    with pytest.raises(SchemaError, match="no POST"):
        fal_input_schema({"paths": {}}, "fal-ai/x")
