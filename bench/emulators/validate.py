"""Check a request body against the JSON Schema an emulator serves for discovery.

Written apart from the client's validation (bench.catalog.mapping) on purpose: an emulator that
judged requests with the client's own code could never catch the client's mistakes. It reads
the subset the providers' published schemas use: local $ref, allOf, anyOf/oneOf, type (with
null), enum, minimum/maximum (and exclusive forms, OpenAPI 3.0 flags or 3.1 numbers),
minLength/maxLength/pattern, required, and the properties of nested objects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

Problem = tuple[str, str, str]  # (field path, kind, message)

TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def _resolve(document: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return {**_resolve(document, node), **{k: v for k, v in schema.items() if k != "$ref"}}


def _type_ok(value: Any, kind: Any) -> bool:
    kinds = kind if isinstance(kind, list) else [kind]
    for k in kinds:
        if k == "null" and value is None:
            return True
        if k in TYPES and isinstance(value, TYPES[k]) and not (isinstance(value, bool) and k != "boolean"):
            return True
    return False


def problems(
    document: Mapping[str, Any], schema: Mapping[str, Any], value: Any, path: str = ""
) -> list[Problem]:
    schema = _resolve(document, schema)
    for part in schema.get("allOf") or []:
        found = problems(document, part, value, path)
        if found:
            return found
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        results = [problems(document, b, value, path) for b in branches]
        if all(results):
            return [(path, "type_error", f"matches none of the allowed forms ({results[0][0][2]})")]
    if "type" in schema and not _type_ok(value, schema["type"]):
        return [(path, "type_error", f"must be {schema['type']}")]
    if "enum" in schema and value not in schema["enum"]:
        return [(path, "enum", f"must be one of {', '.join(map(str, schema['enum']))}")]
    out: list[Problem] = []
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        if isinstance(ex_low, int | float) and not isinstance(ex_low, bool) and value <= ex_low:
            out.append((path, "greater_than", f"must be greater than {ex_low}"))
        if isinstance(low, int | float) and (value < low or (ex_low is True and value == low)):
            out.append((path, "greater_than_equal", f"must be at least {low}"))
        if isinstance(ex_high, int | float) and not isinstance(ex_high, bool) and value >= ex_high:
            out.append((path, "less_than", f"must be less than {ex_high}"))
        if isinstance(high, int | float) and (value > high or (ex_high is True and value == high)):
            out.append((path, "less_than_equal", f"must be at most {high}"))
    if isinstance(value, str):
        if isinstance(schema.get("minLength"), int) and len(value) < schema["minLength"]:
            out.append((path, "string_too_short", f"must have at least {schema['minLength']} characters"))
        if isinstance(schema.get("maxLength"), int) and len(value) > schema["maxLength"]:
            out.append((path, "string_too_long", f"must have at most {schema['maxLength']} characters"))
        if isinstance(schema.get("pattern"), str) and re.search(schema["pattern"], value) is None:
            out.append((path, "string_pattern_mismatch", f"must match {schema['pattern']}"))
    if isinstance(value, dict):
        for name in schema.get("required") or []:
            if name not in value:
                out.append((f"{path}.{name}".lstrip("."), "missing", "field required"))
        for name, sub in (schema.get("properties") or {}).items():
            if name in value and isinstance(sub, Mapping):
                out.extend(problems(document, sub, value[name], f"{path}.{name}".lstrip(".")))
    return out
