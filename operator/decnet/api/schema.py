"""Pydantic JSON schema -> Kubernetes structural OpenAPI v3 schema.

The API server accepts only structural schemas: every node typed, no $ref, no anyOf
for nullability, no `additionalProperties` next to `properties`. Pydantic emits JSON
Schema 2020-12, so this module rewrites it:

- `$ref` to `$defs` is inlined; sibling keys of the reference (the field's description,
  CEL rules) win over the referenced definition's.
- `anyOf: [X, {type: null}]` (an Optional field) becomes plain X, *not* nullable: the
  API server prunes null values of non-nullable fields before defaulting, so an explicit
  `ip: null` means "absent" and CEL's `has()` stays the one presence test.
- titles, `default: null` and non-scalar defaults are dropped; scalar defaults are kept
  only under `spec` (the API server then applies them, so CEL rules see them).
- `additionalProperties: false` is dropped (unknown fields are pruned, and
  `kubectl apply --validate=strict` reports them); `additionalProperties: true` or an
  untyped value becomes `x-kubernetes-preserve-unknown-fields: true`.
- descriptions, enums, formats, bounds, patterns and every `x-kubernetes-*` keyword
  (declared through `json_schema_extra`) are kept.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

_DROP = frozenset({"title", "examples", "discriminator", "const", "readOnly", "writeOnly"})
_SCALARS = (str, int, float, bool)


class SchemaError(ValueError):
    """The pydantic schema uses a construct Kubernetes cannot express."""


def structural(model: type[BaseModel]) -> dict[str, Any]:
    """The openAPIV3Schema of a top-level kind (apiVersion, kind, metadata, spec, status)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Any] = raw.pop("$defs", {})
    props: dict[str, Any] = raw.get("properties", {})
    out: dict[str, Any] = {
        "description": raw.get("description", ""),
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation"
                " of an object.",
                "type": "string",
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this"
                " object represents.",
                "type": "string",
            },
            "metadata": {"type": "object"},
        },
    }
    required = []
    for name in ("spec", "status"):
        if name not in props:
            continue
        converted = _convert(props[name], defs, keep_defaults=name == "spec")
        if name == "spec" and "spec" not in raw.get("required", []):
            # An absent spec still gets its fields defaulted (e.g. a LAN with no subnet).
            converted["default"] = {}
        out["properties"][name] = converted
        if name in raw.get("required", []):
            required.append(name)
    if required:
        out["required"] = required
    info = getattr(model, "crd", None)
    if info is not None and info.root_validations:
        out["x-kubernetes-validations"] = [dict(rule) for rule in info.root_validations]
    sorted_out: dict[str, Any] = sort_schema(out)
    return sorted_out


def _convert(node: Any, defs: dict[str, Any], *, keep_defaults: bool) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise SchemaError(f"schema node is not an object: {node!r}")
    node = dict(node)
    base: dict[str, Any] = {}
    if "$ref" in node:
        base = _convert(_deref(node.pop("$ref"), defs), defs, keep_defaults=keep_defaults)
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator not in node:
            continue
        options = [o for o in node.pop(combinator) if o != {"type": "null"}]
        if len(options) != 1:
            raise SchemaError(f"{combinator} with {len(options)} non-null options: {options!r}")
        base = _merge(base, _convert(options[0], defs, keep_defaults=keep_defaults))
    own: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "default":
            if keep_defaults and isinstance(value, _SCALARS):
                own[key] = value
            continue
        if key == "properties":
            own[key] = {
                name: _convert(sub, defs, keep_defaults=keep_defaults)
                for name, sub in value.items()
            }
        elif key == "items":
            own[key] = _convert(value, defs, keep_defaults=keep_defaults)
        elif key == "additionalProperties":
            if value is False:
                continue
            if value is True or value == {}:
                own["x-kubernetes-preserve-unknown-fields"] = True
            else:
                own[key] = _convert(value, defs, keep_defaults=keep_defaults)
        elif key == "required":
            own[key] = list(value)
        else:
            own[key] = copy.deepcopy(value)
    merged = _merge(base, own)
    if "type" not in merged and not merged.get("x-kubernetes-preserve-unknown-fields"):
        if merged.keys() - {"description"}:
            raise SchemaError(f"untyped schema node: {merged!r}")
        merged["x-kubernetes-preserve-unknown-fields"] = True
    if merged.get("x-kubernetes-preserve-unknown-fields") and "type" not in merged:
        merged["type"] = "object"
    if "properties" in merged and "additionalProperties" in merged:
        raise SchemaError("properties and additionalProperties are mutually exclusive")
    return merged


def _deref(ref: str, defs: dict[str, Any]) -> dict[str, Any]:
    prefix = "#/$defs/"
    if not ref.startswith(prefix) or ref[len(prefix) :] not in defs:
        raise SchemaError(f"unresolvable $ref {ref}")
    return dict(defs[ref[len(prefix) :]])


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` wins, except CEL rules, which accumulate (a field's and its type's)."""
    merged = {**base, **over}
    rules = base.get("x-kubernetes-validations", []) + over.get("x-kubernetes-validations", [])
    if rules:
        merged["x-kubernetes-validations"] = rules
    return merged


def sort_schema(node: Any) -> Any:
    """Sort mapping keys recursively for stable output; lists keep their order."""
    if isinstance(node, dict):
        return {key: sort_schema(node[key]) for key in sorted(node)}
    if isinstance(node, list):
        return [sort_schema(item) for item in node]
    return node
