"""A provider's published input schema (OpenAPI / JSON Schema) -> a catalog entry.

The schema shapes read here are the providers' own:
- fal: an OpenAPI 3.0 document; the input is the `$ref` in the POST request body,
  a `components.schemas.*Input` object; properties may be `anyOf` (image_size: an
  enum of presets or a `$ref` to an ImageSize object), `allOf`, `enum`, `default`,
  `minimum`/`maximum`/`exclusiveMinimum`; order in `x-fal-order-properties`.
- Replicate: `openapi_schema.components.schemas.Input`, enums as
  `allOf: [{$ref: "#/components/schemas/<enum>"}]`, order in each property's `x-order`.
- Eachlabs: a JSON-Schema-like `input` object.

Properties become catalog parameters; the normalized mapping (steps, guidance,
seed, size, count by name) is then assigned exactly as for the shipped Eachlabs
catalog (bench.catalog.model_entries.model_entry), so a fetched model maps
the same way a shipped one does. What cannot be read is noted in the entry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from bench.catalog.model_entries import Model, Param, SeedFormatError, model_entry
from bench.errors import BenchError

JSON_TYPES = {"string", "integer", "number", "boolean", "array", "object"}


class SchemaError(BenchError):
    """A fetched schema that cannot be read as a text-to-image input."""


def resolve_ref(document: Mapping[str, Any], ref: str) -> Mapping[str, Any]:
    if not ref.startswith("#/"):
        raise SchemaError(f"only local $refs are read, got {ref!r}")
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            raise SchemaError(f"$ref {ref!r} points nowhere")
        node = node[part]
    if not isinstance(node, Mapping):
        raise SchemaError(f"$ref {ref!r} is not a schema object")
    return node


def _flatten(document: Mapping[str, Any], schema: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """One property schema with $ref and allOf merged in (the property's own keys win)."""
    if depth > 8:
        raise SchemaError("schema nests $ref/allOf deeper than 8 levels")
    merged: dict[str, Any] = {}
    if "$ref" in schema:
        merged.update(_flatten(document, resolve_ref(document, str(schema["$ref"])), depth + 1))
    for part in schema.get("allOf") or []:
        if isinstance(part, Mapping):
            merged.update(_flatten(document, part, depth + 1))
    merged.update({k: v for k, v in schema.items() if k not in ("$ref", "allOf")})
    return merged


def _choose_any_of(document: Mapping[str, Any], prop: dict[str, Any], notes: list[str], name: str) -> None:
    """Read anyOf/oneOf: drop null (Optional), keep the enum branch (fal's size presets)."""
    branches = [_flatten(document, b, 1) for b in (prop.pop("anyOf", None) or prop.pop("oneOf", None) or [])]
    branches = [b for b in branches if b.get("type") != "null"]
    if not branches:
        return
    enum_branch = next((b for b in branches if "enum" in b), None)
    chosen = enum_branch or branches[0]
    for key, value in chosen.items():
        prop.setdefault(key, value)
    if len(branches) > 1:
        other = [str(b.get("title") or b.get("type") or "object") for b in branches if b is not chosen]
        notes.append(
            f"{name}: also accepts {', '.join(other)}; only the {chosen.get('type')} form is checked"
        )


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return value


def param_from_property(
    document: Mapping[str, Any], name: str, schema: Mapping[str, Any], required: bool, notes: list[str]
) -> Param:
    prop = _flatten(document, schema)
    _choose_any_of(document, prop, notes, name)
    type_ = prop.get("type")
    options = prop.get("enum")
    if isinstance(type_, list):  # ["integer", "null"]
        type_ = next((t for t in type_ if t != "null"), None)
    if type_ not in JSON_TYPES:
        type_ = _type_of_enum(options) if options else "string"
        notes.append(f"{name}: no usable type in the schema; read as {type_}")
    minimum = _number(prop.get("minimum"))
    maximum = _number(prop.get("maximum"))
    exclusive_min = prop.get("exclusiveMinimum")
    bound = _number(exclusive_min)
    if minimum is None and bound is not None:
        # OpenAPI 3.1 / JSON Schema: a number; for integers the smallest allowed is one more.
        minimum = bound + 1 if type_ == "integer" else bound
        if type_ != "integer":
            notes.append(f"{name}: exclusive minimum {exclusive_min} checked as inclusive")
    elif exclusive_min is True and minimum is not None:  # OpenAPI 3.0: a flag on minimum
        minimum = minimum + 1 if type_ == "integer" else minimum
    upper = _number(prop.get("exclusiveMaximum"))
    if maximum is None and upper is not None:
        maximum = upper - 1 if type_ == "integer" else upper
    description = str(prop.get("description") or prop.get("title") or "")
    lengths = {k: prop.get(k) for k in ("minLength", "maxLength")}
    pattern = prop.get("pattern")
    return Param(
        name=name,
        type=str(type_),
        required=required,
        default=prop.get("default"),
        options=list(options) if isinstance(options, list) else None,
        options_complete=True,
        minimum=minimum,
        maximum=maximum,
        description=" ".join(description.split())[:300],
        min_length=_length(lengths["minLength"]),
        max_length=_length(lengths["maxLength"]),
        pattern=pattern if isinstance(pattern, str) and pattern else None,
    )


def _length(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _type_of_enum(options: Sequence[Any]) -> str:
    if all(isinstance(o, bool) for o in options):
        return "boolean"
    if all(isinstance(o, int) and not isinstance(o, bool) for o in options):
        return "integer"
    if all(isinstance(o, int | float) and not isinstance(o, bool) for o in options):
        return "number"
    return "string"


def _order(schema: Mapping[str, Any], properties: Mapping[str, Any]) -> list[str]:
    listed = schema.get("x-fal-order-properties")
    names = [n for n in listed if n in properties] if isinstance(listed, list) else []
    rest = [n for n in properties if n not in names]

    def x_order(name: str) -> float:
        value = properties[name].get("x-order") if isinstance(properties[name], Mapping) else None
        return float(value) if isinstance(value, int | float) else math.inf

    return names + sorted(rest, key=x_order)  # sorted is stable: unordered ones keep the schema's order


def entry_from_input_schema(
    document: Mapping[str, Any],
    input_schema: Mapping[str, Any],
    *,
    slug: str,
    title: str = "",
    version: str | None = None,
    description: str = "",
    prompt_field: str | None = None,
) -> dict[str, Any]:
    """The catalog entry for one model from its input schema (refs resolved against `document`).

    `prompt_field` names the text field when the schema's is not `prompt` and the choice
    (bench.catalog.prompt_field) is ambiguous."""
    schema = _flatten(document, input_schema)
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        raise SchemaError(f"{slug}: the input schema has no properties")
    required = set(schema.get("required") or [])
    model = Model(slug=slug, title=title or slug, line_no=0)
    for name in _order(schema, properties):
        prop = properties[name]
        if isinstance(prop, Mapping):
            model.params.append(param_from_property(document, name, prop, name in required, model.notes))
    try:
        entry = model_entry(model, version or "", prompt_field)
    except SeedFormatError as exc:
        raise SchemaError(f"{slug}: {str(exc).split(': ', 1)[-1]}") from None
    if version is None:
        entry.pop("version", None)
    size_param = entry.get("size_param")
    if entry.get("size_mode") == "image_size_preset" and isinstance(properties.get(size_param), Mapping):
        size_object = _size_object(document, properties[size_param])
        if size_object is not None:
            entry["size_object"] = size_object
    if description:
        entry["description"] = " ".join(description.split())[:300]
    return entry


def _size_object(document: Mapping[str, Any], prop: Mapping[str, Any]) -> dict[str, Any] | None:
    """{max_side_px?} when a preset parameter also takes a {width, height} object (fal's ImageSize)."""
    for branch in prop.get("anyOf") or prop.get("oneOf") or []:
        if not isinstance(branch, Mapping):
            continue
        flat = _flatten(document, branch, 1)
        sides = flat.get("properties")
        if flat.get("type") == "object" and isinstance(sides, Mapping) and {"width", "height"} <= set(sides):
            maxima = [
                _number(sides[k].get("maximum")) for k in ("width", "height") if isinstance(sides[k], Mapping)
            ]
            known = [m for m in maxima if m is not None]
            return {"max_side_px": int(min(known))} if known else {}
    return None


def fal_input_schema(document: Mapping[str, Any], endpoint_id: str) -> Mapping[str, Any]:
    """The input schema of a fal endpoint: the $ref of the POST /<endpoint_id> request body."""
    paths = document.get("paths")
    if not isinstance(paths, Mapping):
        raise SchemaError(f"fal:{endpoint_id}: the OpenAPI document has no paths")
    post = None
    for path in (f"/{endpoint_id}", endpoint_id):
        post = (paths.get(path) or {}).get("post") if isinstance(paths.get(path), Mapping) else None
        if post:
            break
    if not isinstance(post, Mapping):
        raise SchemaError(f"fal:{endpoint_id}: the OpenAPI document has no POST /{endpoint_id}")
    content = ((post.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
    schema = content.get("schema")
    if not isinstance(schema, Mapping):
        raise SchemaError(f"fal:{endpoint_id}: POST /{endpoint_id} has no JSON request body schema")
    return schema
