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
    check_relations(full)
    if full["data_source"] is not None and not os.path.isdir(os.path.expanduser(full["data_source"])):
        raise LTHError(
            f"config key 'data_source': {full['data_source']!r} is not a folder; point it at a folder holding "
            "the four MNIST files, or set it to null to download"
        )
    config.update(full)
    return config


# --- relations between keys: a config that passes the schema key by key but cannot run ---------


def check_relations(config: dict) -> None:
    """Refuse combinations of valid values that cannot run (or would run something else than
    they say); ``config`` is complete (defaults filled in). One LTHError line each, naming the
    keys and what is allowed."""
    iterations, eval_every = config["iterations"], config["eval_every"]
    if eval_every > iterations:
        raise LTHError(
            f"config key 'eval_every': {eval_every} is larger than iterations={iterations}; "
            "there would be no evaluation to early-stop on; expected eval_every <= iterations"
        )
    if config["rewind_iteration"] >= iterations:
        raise LTHError(
            f"config key 'rewind_iteration': {config['rewind_iteration']} must be smaller than "
            f"iterations={iterations}; expected rewind_iteration <= {iterations - 1}"
        )
    _check_patience(config)
    _check_seed(config)
    if config["verify_data"]:
        _check_split_sizes(config)
    if config["reinit_per_ticket"] > 1 and "reinit" not in config["controls"]:
        raise LTHError(
            f"config key 'reinit_per_ticket': {config['reinit_per_ticket']} has no effect: controls="
            f"{config['controls']!r} does not include 'reinit'; expected controls to include 'reinit', "
            "or reinit_per_ticket: 1"
        )
    _check_rounds(config)


def _check_patience(config: dict) -> None:
    if config["patience"] is not None and config["leaf_patience"] is not None:
        raise LTHError(
            f"config key 'leaf_patience': {config['leaf_patience']} is set together with patience="
            f"{config['patience']}, which already stops every job, the leaves included; expected one of them, "
            "the other null"
        )
    for key in ("patience", "leaf_patience"):
        _check_stops_early(config, key)


def _check_stops_early(config: dict, key: str) -> None:
    patience = config[key]
    if patience is None:
        return
    iterations, every, k = config["iterations"], config["eval_every"], config["rewind_iteration"]
    # The shortest jobs: pruned networks rewound to iteration k train k+1..T, evaluated at the
    # multiples of eval_every among them and at T (k = 0: every job).
    evaluations = iterations // every - k // every + (1 if iterations % every else 0)
    # Training stops `patience` evaluations after the best one, so at the earliest at evaluation
    # patience + 1: with fewer evaluations than that, patience can never stop anything.
    if patience >= evaluations:
        after = f" after rewind_iteration={k}" if k else ""
        raise LTHError(
            f"config key '{key}': {patience} can never stop training early: iterations="
            f"{iterations} and eval_every={every} give {evaluations} evaluation(s){after}; "
            f"expected {key} <= {evaluations - 1}, or null to train all iterations"
        )


MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed takes seeds up to 0xffff_ffff_ffff_ffff


def _check_seed(config: dict) -> None:
    seed, trials = config["seed"], config["trials"] + config.get("dense_seeds", 0)  # every trial with a dense run
    if seed + trials - 1 > MAX_SEED:
        shown = f"trials={config['trials']}" + (f" + dense_seeds={config['dense_seeds']}" if trials > config["trials"] else "")
        raise LTHError(
            f"config key 'seed': {seed} is too large for {shown}: trial t starts from seed + t, and "
            f"torch takes seeds up to 2**64 - 1; expected seed <= {MAX_SEED - trials + 1}"
        )


def _check_split_sizes(config: dict) -> None:
    """val_size and batch_size against the real MNIST training split (60,000 images)."""
    from .data import MNIST_TRAIN_IMAGES as n

    val_size, batch_size = config["val_size"], config["batch_size"]
    if val_size >= n:
        raise LTHError(
            f"config key 'val_size': {val_size} leaves no training images (MNIST has {n}); "
            f"expected val_size <= {n} - batch_size = {n - batch_size}"
        )
    if batch_size > n - val_size:
        raise LTHError(
            f"config key 'batch_size': {batch_size} is larger than the training split ({n} MNIST training "
            f"images - val_size {val_size} = {n - val_size}); expected batch_size <= {n - val_size}, "
            f"or val_size <= {n - batch_size}"
        )


def pruning_groups(model: str, prune_rate: float, output_prune_rate: float, prune_scope: str) -> list[tuple[str, int, float]]:
    """(name, number of weights, rate) of every group that shares one pruning target, as
    lth.pruning groups a model's weights (layer by layer, or the hidden layers together)."""
    from .models import get_spec
    from .pruning import PruneConfig, _groups

    spec = get_spec(model)
    net = spec.build()
    sizes = dict((n, p.numel()) for n, p in net.named_parameters())
    names = spec.prunable(net)
    cfg = PruneConfig(rate=prune_rate, output_rate=output_prune_rate, scope=prune_scope)
    return [
        (names_[0] if len(names_) == 1 else "the hidden layers (" + ", ".join(names_) + ")",
         sum(sizes[n] for n in names_), rate)
        for names_, rate in _groups(names, spec.output_layer, cfg)
    ]


def max_rounds(groups: list[tuple[str, int, float]], limit: int = 1000) -> tuple[int, str]:
    """The most rounds for which every round still prunes every group and leaves each at least
    one weight; and why the next round cannot (for the message)."""
    from .pruning import target_remaining

    for r in range(1, limit + 1):
        for name, n, rate in groups:
            before, after = target_remaining(n, rate, r - 1), target_remaining(n, rate, r)
            if after == 0:
                return r - 1, f"round {r} would keep 0 of the {n} weights of {name}"
            if after == before:
                return r - 1, f"round {r} would keep {after} of the {n} weights of {name}, as round {r - 1} does, so it prunes nothing"
    return limit, ""


def _check_rounds(config: dict) -> None:
    rounds = config["rounds"]
    if rounds == 0:
        return
    groups = pruning_groups(config["model"], config["prune_rate"], config["output_prune_rate"], config["prune_scope"])
    most, why = max_rounds(groups, limit=rounds)
    if most < rounds:
        raise LTHError(
            f"config key 'rounds': {rounds} is more than {config['model']} can be pruned at prune_rate="
            f"{config['prune_rate']}, output_prune_rate={config['output_prune_rate']} ({config['prune_scope']}): "
            f"{why}; expected rounds <= {most}"
        )


# --- docs/configuration.md, generated from the schema -----------------------------------------

SCHEMA_PATH = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "workflow", "schemas", "config.schema.yaml")
REGENERATE = "python3 -m lth.config --markdown docs/configuration.md"

# What check_relations refuses, for the docs (keep in step with the checks above; the tests in
# tests/test_config.py cover each one).
RELATIONS_DOC = [
    "`eval_every` must be at most `iterations` (otherwise there is no evaluation to early-stop on).",
    "`rewind_iteration` must be smaller than `iterations`.",
    "`patience` must be smaller than the number of evaluations, ⌈`iterations` / `eval_every`⌉ "
    "(otherwise it can never stop training; write `null` to train all iterations); so must "
    "`leaf_patience`.",
    "`patience` and `leaf_patience` are not set together: `patience` stops every job, the leaves "
    "included; `leaf_patience` only the jobs whose weights no later job reads.",
    "With `verify_data: true` (the real MNIST, 60,000 training images): `val_size` must leave at "
    "least `batch_size` training images, i.e. `val_size` + `batch_size` ≤ 60,000. Smaller test data "
    "(`verify_data: false`) is checked when a job loads it.",
    "`reinit_per_ticket` above 1 needs `reinit` in `controls`.",
    "`seed` + `trials` − 1 (the last trial's seed) must be at most 2^64 − 1, the largest seed torch takes.",
    "`rounds`: every round must still prune every pruning group (each layer with `layerwise`, the "
    "hidden layers together with `global`, and the output layer) and leave it at least one weight; "
    "round *r* keeps round_half_up(*n* · (1 − *p*)^*r*) of a group's *n* weights. At the paper's 20 % / "
    "10 %: at most 41 rounds for `lenet_300_100`, 17 for `lenet5`. The error names the first round "
    "that cannot prune and the largest `rounds` allowed.",
    "`data_source` must be an existing folder (or `null`).",
    "Each variant of a `study` is checked as a configuration of its own, by the rules above "
    "(see [studies.md](studies.md)).",
]


def _doc_value(value) -> str:
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return "`[" + ", ".join(map(str, value)) + "]`"
    return f"`{value}`"


def _doc_allowed(schema: dict) -> str:
    if schema.get("type") == "array" and "enum" in schema.get("items", {}):
        unique = ", each at most once" if schema.get("uniqueItems") else ""
        return "a list of " + ", ".join(f"`{v}`" for v in schema["items"]["enum"]) + unique
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    types = schema.get("type")
    if isinstance(types, list) and "null" in types:  # e.g. patience: integer >= 1, or null
        others = [t for t in types if t != "null"]
        return _allowed({**schema, "type": others[0] if len(others) == 1 else others}) + ", or null"
    return _allowed(schema)


def _doc_text(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def config_markdown(schema: dict) -> str:
    """docs/configuration.md: every key of the schema with its default, what is allowed and
    what it means, then the combinations check_config refuses."""
    lines = [
        "# Configuration",
        "",
        f"<!-- Generated from workflow/schemas/config.schema.yaml by `{REGENERATE}`;",
        "     edit the schema (or lth/config.py), then regenerate. tests/test_docs.py fails when this page is stale. -->",
        "",
        "`config.yaml` holds the defaults (the paper's LeNet-300-100 protocol, a 5 × 5 grid of trials ×",
        "pruning rounds). Override any key with `--config KEY=VALUE`, or several with",
        "`--configfile FILE` (the profiles in `config/`: `quick.yaml`, `paper.yaml`, the notebook",
        "profiles, and the studies in `config/studies/`). `workflow/schemas/config.schema.yaml` is the",
        "single source of the keys below.",
        "",
        "Every value is checked before any job starts. A wrong value, an unknown key (a typo such as",
        "`round: 3` would otherwise run the defaults without a word) or a combination that cannot run",
        "stops the run with one line that names the key, the value and what is allowed, e.g.",
        "`config error: config key 'prune_rate': 1.5 is not allowed; expected number > 0 and < 1`.",
        "",
        "## Keys",
        "",
        "| key | default | allowed | meaning |",
        "|---|---|---|---|",
    ]
    for key, sub in schema["properties"].items():
        default = _doc_value(sub["default"]) if "default" in sub else "(required)"
        lines.append(
            f"| `{key}` | {default} | {_doc_text(_doc_allowed(sub))} | {_doc_text(sub.get('description', ''))} |"
        )
    lines += [
        "",
        "## Combinations that are refused",
        "",
        "Values that pass the table above one by one but cannot run together:",
        "",
    ]
    lines += [f"- {item}" for item in RELATIONS_DOC]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python3 -m lth.config", description="The workflow's configuration.")
    parser.add_argument("--markdown", metavar="FILE", required=True,
                        help="write the configuration reference (every schema key) to FILE; - for stdout")
    parser.add_argument("--schema", default=SCHEMA_PATH, help="the config schema (default: the repository's)")
    args = parser.parse_args(argv)
    text = config_markdown(load_schema(args.schema))
    if args.markdown == "-":
        print(text, end="")
    else:
        from .fileio import write_text

        write_text(args.markdown, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
