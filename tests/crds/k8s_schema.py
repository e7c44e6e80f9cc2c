"""Test helpers: check a CRD schema against Kubernetes' structural rules, and validate objects with it
as the API server would.

Structural rules: Kubernetes docs, "Extend the Kubernetes API with CustomResourceDefinitions",
"Specifying a structural schema", and ``apiextensions-apiserver/pkg/apiserver/schema/validation.go``
(``validateStructuralInvariants``, ``validateStructuralMetadataInvariants``).

Validation: :func:`to_jsonschema` turns a structural schema into JSON Schema 2020-12 for ``jsonschema``:
``nullable`` adds ``null`` to the type (and the enum), ``x-kubernetes-int-or-string`` is
``integer | string``, ``x-kubernetes-preserve-unknown-fields`` without a type is any value, and with
``strict`` an object with ``properties`` rejects unknown fields, as ``kubectl``'s default
``--validate=strict`` (server-side field validation) does; without it they would be pruned. As the API
server, :func:`errors` first drops nulls of fields without ``nullable`` (apiextensions'
``PruneNonNullableNullsWithoutDefaults``), and checks a null against ``enum`` even when ``nullable``
(kube-openapi's ``SchemaValidator`` runs the type and enum validators on null), so such a null fails.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import yaml

PROPS = {
    "type", "description", "properties", "required", "items", "additionalProperties", "enum", "nullable",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern",
    "minItems", "maxItems", "minProperties", "maxProperties", "multipleOf", "format",
    "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "x-kubernetes-embedded-resource",
}
"""What kubedag's CRDs may use: structural generics and value validations, no junctors, no defaults."""
TYPES = {"object", "array", "string", "integer", "number", "boolean"}
PYTHON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool}
NOT_RE2 = re.compile(r"\(\?[=!<]|\\[1-9]")  # lookarounds and backreferences: Go's RE2 has neither


def structural_problems(root: dict[str, Any]) -> list[str]:
    """Every way ``root`` (an ``openAPIV3Schema``) breaks a structural rule; empty if none."""
    problems: list[str] = []
    if root.get("type") != "object":
        problems.append("/: the root must be type object")
    if "additionalProperties" in root:
        problems.append("/: additionalProperties is forbidden at the root")
    props = root.get("properties", {})
    for name in ("apiVersion", "kind"):
        if name in props and props[name].get("type") != "string":
            problems.append(f"/properties/{name}: must be type string")
    if "metadata" in props:
        meta = props["metadata"]
        extra = set(meta) - {"type", "properties"} or set(meta.get("properties", {})) - {"name", "generateName"}
        if meta.get("type") != "object" or extra:
            problems.append(f"/properties/metadata: only type object and name/generateName restrictions allowed, not {extra}")
    _check(root, "", problems)
    return problems


def _check(node: Any, path: str, problems: list[str]) -> None:
    where = path or "/"
    if not isinstance(node, dict):
        problems.append(f"{where}: not a schema object")
        return
    for key in sorted(set(node) - PROPS):
        problems.append(f"{where}: keyword {key!r} is not structural (or not used by kubedag)")
    int_or_string = node.get("x-kubernetes-int-or-string") is True
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    type_ = node.get("type")
    if type_ is None and not (int_or_string or preserve):
        problems.append(f"{where}: type must not be empty")
    if type_ is not None and type_ not in TYPES:
        problems.append(f"{where}: unknown type {type_!r}")
    if int_or_string and (preserve or type_ is not None):
        problems.append(f"{where}: x-kubernetes-int-or-string excludes a type and preserve-unknown-fields")
    if "nullable" in node and not isinstance(node["nullable"], bool):
        problems.append(f"{where}: nullable must be a boolean")
    if node.get("nullable") and "enum" in node:
        problems.append(f"{where}: a nullable enum rejects null on the API server; leave nullable out")
    if "description" in node and not isinstance(node["description"], str):
        problems.append(f"{where}: description must be a string")
    if type_ == "array" and "items" not in node:
        problems.append(f"{where}: an array needs items")
    if "items" in node and type_ != "array":
        problems.append(f"{where}: items on a non-array")
    if ("properties" in node or "additionalProperties" in node) and type_ != "object":
        problems.append(f"{where}: properties on a non-object")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{where}: properties and additionalProperties are mutually exclusive")
    if "additionalProperties" in node and not isinstance(node["additionalProperties"], dict):
        problems.append(f"{where}: additionalProperties must be a schema")
    for name in node.get("required", []):
        if name not in node.get("properties", {}):
            problems.append(f"{where}: required {name!r} is not a property")
    if type_ in PYTHON_TYPES:
        for value in node.get("enum", []):
            if not isinstance(value, PYTHON_TYPES[type_]) or (type_ != "boolean" and isinstance(value, bool)):
                problems.append(f"{where}: enum value {value!r} is not a {type_}")
    if "pattern" in node:
        try:
            re.compile(node["pattern"])
        except re.error as exc:
            problems.append(f"{where}: pattern does not compile: {exc}")
        if NOT_RE2.search(node["pattern"]):
            problems.append(f"{where}: pattern uses lookaround or backreferences (not RE2)")
    if "x-kubernetes-map-type" in node and (type_ != "object" or node["x-kubernetes-map-type"] not in ("atomic", "granular")):
        problems.append(f"{where}: x-kubernetes-map-type must be atomic or granular, on an object")
    list_type = node.get("x-kubernetes-list-type")
    if list_type is not None and (type_ != "array" or list_type not in ("atomic", "set", "map")):
        problems.append(f"{where}: x-kubernetes-list-type must be atomic, set or map, on an array")
    if list_type == "map":
        items = node.get("items", {})
        for key in node.get("x-kubernetes-list-map-keys") or ["<none>"]:
            if key not in items.get("required", []) or items.get("properties", {}).get(key, {}).get("type") not in PYTHON_TYPES:
                problems.append(f"{where}: list map key {key!r} must be a required scalar property of the items")
    for name, child in node.get("properties", {}).items():
        _check(child, f"{path}/properties/{name}", problems)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            _check(node[key], f"{path}/{key}", problems)


def to_jsonschema(node: dict[str, Any], strict: bool = True) -> dict[str, Any]:
    """A JSON Schema 2020-12 equivalent of a structural schema node (see the module docstring)."""
    out: dict[str, Any] = {}
    nullable = node.get("nullable") is True
    if node.get("x-kubernetes-int-or-string"):
        types = ["integer", "string"]
    else:
        types = [node["type"]] if "type" in node else []
    if types:
        out["type"] = types + ["null"] if nullable else types
    for key in ("minimum", "maximum", "minLength", "maxLength", "pattern", "minItems", "maxItems",
                "minProperties", "maxProperties", "multipleOf", "required"):
        if key in node:
            out[key] = node[key]
    for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if node.get(key) is True:
            out[key] = out.pop(bound)
    if "enum" in node:
        out["enum"] = node["enum"]  # no None even if nullable: kube-openapi rejects null here
    if "properties" in node:
        out["properties"] = {k: to_jsonschema(v, strict) for k, v in node["properties"].items()}
        if strict and not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if "items" in node:
        out["items"] = to_jsonschema(node["items"], strict)
    if "additionalProperties" in node:
        out["additionalProperties"] = to_jsonschema(node["additionalProperties"], strict)
    return out


def prune_nulls(obj: Any, node: dict[str, Any] | None) -> Any:
    """A copy of ``obj`` without the nulls of fields whose schema is not ``nullable`` (nor defaulted)."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            child = (node or {}).get("properties", {}).get(key) or (node or {}).get("additionalProperties")
            if value is None and isinstance(child, dict) and not child.get("nullable") and "default" not in child:
                continue
            out[key] = prune_nulls(value, child if isinstance(child, dict) else None)
        return out
    if isinstance(obj, list):
        return [prune_nulls(item, (node or {}).get("items")) for item in obj]
    return obj


def errors(obj: Any, crd: dict[str, Any], strict: bool = True) -> list[str]:
    """Validation errors of ``obj`` against ``crd``'s only version, as ``"path: message"``, sorted."""
    structural = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    obj = prune_nulls(obj, structural)
    schema = to_jsonschema(structural, strict)
    schema["properties"]["metadata"].pop("additionalProperties", None)  # the rest of ObjectMeta is implied
    validator = jsonschema.Draft202012Validator(schema)
    return sorted(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj))


class KubectlLoader(yaml.SafeLoader):
    """YAML as ``kubectl`` reads it: ``2026-11-01`` stays a string (sigs.k8s.io/yaml keeps timestamps as text)."""


KubectlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load(text: str) -> Any:
    """Parse one YAML document the way kubectl does."""
    return yaml.load(text, Loader=KubectlLoader)
