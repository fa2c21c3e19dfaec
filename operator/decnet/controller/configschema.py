"""A validator for the OpenAPI v3 subset ServiceTemplates use in configSchema.

The subset (type, properties, required, enum, minimum/maximum, pattern,
minLength/maxLength, minItems/maxItems, additionalProperties, items) is all
a service config needs; a full JSON Schema engine would be one more
dependency for no gain. Messages name the path and the rule, never the
offending value (configs hold passwords).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def _type_ok(value: Any, wanted: str) -> bool:
    if wanted in ("integer", "number") and isinstance(value, bool):
        return False
    types = _TYPES.get(wanted)
    return types is None or isinstance(value, types)


def errors(value: Any, schema: Mapping[str, Any] | None, path: str = "") -> list[str]:
    """Every rule `value` breaks, as readable messages; [] when it conforms."""
    if not schema:
        return []
    where = path or "config"
    out: list[str] = []
    wanted = schema.get("type")
    if isinstance(wanted, str) and not _type_ok(value, wanted):
        return [f"{where}: must be of type {wanted}"]
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(str(v) for v in schema["enum"])
        out.append(f"{where}: must be one of [{allowed}]")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{where}: must be >= {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{where}: must be <= {schema['maximum']}")
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > int(schema["maxLength"]):
            out.append(f"{where}: must be at most {schema['maxLength']} characters")
        if "minLength" in schema and len(value) < int(schema["minLength"]):
            out.append(f"{where}: must be at least {schema['minLength']} characters")
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > int(schema["maxItems"]):
            out.append(f"{where}: must have at most {schema['maxItems']} items")
        if "minItems" in schema and len(value) < int(schema["minItems"]):
            out.append(f"{where}: must have at least {schema['minItems']} items")
    if isinstance(value, str) and "pattern" in schema:
        if re.search(str(schema["pattern"]), value) is None:
            out.append(f"{where}: must match pattern {schema['pattern']}")
    if isinstance(value, dict):
        props: Mapping[str, Any] = schema.get("properties") or {}
        for name in schema.get("required") or ():
            if name not in value:
                out.append(f"{where}: missing required field {name}")
        extra = schema.get("additionalProperties", True if not props else False)
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if key in props:
                out.extend(errors(item, props[key], sub))
            elif extra is False:
                out.append(f"{sub}: unknown field")
            elif isinstance(extra, Mapping):
                out.extend(errors(item, extra, sub))
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            out.extend(errors(item, schema["items"], f"{where}[{i}]"))
    return out
