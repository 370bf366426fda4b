"""Checking the workflow's config: one clear line per mistake, before any job starts.

The JSON schema (workflow/schemas/config.schema.yaml) is the single source of the keys, their
types, ranges and defaults. ``check_config`` validates against it and turns jsonschema's verbose
errors into one line that names the key, the value and what is allowed; then it checks what a
schema cannot express (relations between keys).
"""

from __future__ import annotations

import math
import os

import yaml

from .errors import LTHError


def load_schema(path: str | os.PathLike) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def schema_defaults(schema: dict) -> dict:
    """Every key's default value, as the schema gives it (the paper's settings)."""
    return {k: v["default"] for k, v in schema["properties"].items() if "default" in v}


def _allowed(schema: dict) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) for v in schema["enum"])
    types = schema.get("type")
    kind = (" or ".join(types) if isinstance(types, list) else types) if types else ""
    bounds = [
        f"{word} {schema[key]}"
        for key, word in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"))
        if key in schema
    ]
    return " ".join(p for p in (kind, " and ".join(bounds)) if p) or "see the schema"


def _coerce(value, schema: dict):
    """``--config`` hands over strings for what YAML files write as false or null:
    accept ``verify_data=false`` and ``patience=null`` (or ``patience=``) as a user means them."""
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if isinstance(value, str):
        low = value.strip().lower()
        if "boolean" in types and low in ("true", "false"):
            return low == "true"
        if "null" in types and low in ("null", "none", "~", ""):
            return None
    # ``iterations=5e4`` arrives as the float 50000.0; the schema's "integer" accepts it, but
    # range() and the params trigger need the int. A fraction (2.5) stays and is refused.
    if "integer" in types and "number" not in types and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def check_config(config: dict, schema: dict) -> dict:
    """Fill in defaults and check ``config`` in place; raise LTHError with one line if it is wrong.

    Returns the checked config (the same dict)."""
    import jsonschema

    if not isinstance(config, dict):
        raise LTHError(f"config must be a mapping of keys to values, got {type(config).__name__}")
    props = schema["properties"]
    unknown = sorted(set(config) - set(props))
    if unknown:
        raise LTHError(
            f"unknown config key(s) {', '.join(map(repr, unknown))}; allowed keys: {', '.join(props)}"
        )
    for key, value in list(config.items()):
        config[key] = _coerce(value, props[key])
    full = schema_defaults(schema)
    full.update(config)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(full), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        key = err.path[0] if err.path else None
        if key is None:
            raise LTHError(f"config: {err.message}")
        sub = props[key]
        if len(err.path) > 1:  # an item of a list, e.g. controls
            sub = sub.get("items", sub)
            shown = f"{key}[{err.path[1]}]"
        else:
            shown = key
        value = full[key] if len(err.path) == 1 else err.instance
        if err.validator == "uniqueItems":
            raise LTHError(f"config key {shown!r}: {value!r} lists an item twice")
        raise LTHError(f"config key {shown!r}: {value!r} is not allowed; expected {_allowed(sub)}")
    # What the schema cannot say.
    for key, value in full.items():  # nan and inf pass the schema's bounds (nan <= 0 is False)
        if isinstance(value, float) and not math.isfinite(value):
            raise LTHError(f"config key {key!r}: {value!r} is not allowed; expected a finite {_allowed(props[key])}")
    if full["eval_every"] > full["iterations"]:
        raise LTHError(
            f"config key 'eval_every': {full['eval_every']} is larger than iterations={full['iterations']}; "
            "there would be no evaluation to early-stop on"
        )
    if full["rewind_iteration"] >= full["iterations"]:
        raise LTHError(
            f"config key 'rewind_iteration': {full['rewind_iteration']} must be smaller than iterations={full['iterations']}"
        )
    if full["data_source"] is not None and not os.path.isdir(os.path.expanduser(full["data_source"])):
        raise LTHError(
            f"config key 'data_source': {full['data_source']!r} is not a folder; point it at a folder holding "
            "the four MNIST files, or set it to null to download"
        )
    config.update(full)
    return config
