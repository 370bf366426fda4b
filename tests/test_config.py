"""Config checking without Snakemake: every bad value gives one line naming the key, the value and
what is allowed. Values are parsed exactly as ``snakemake --config KEY=VALUE`` parses them and
laid over config.yaml, as a run does. (tests/test_workflow.py checks what Snakemake prints.)"""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from snakemake.cli import parse_config

from lth.config import check_config, load_schema
from lth.errors import LTHError

from conftest import ROOT

SCHEMA = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")
DEFAULTS = yaml.safe_load((ROOT / "config.yaml").read_text())


def checked(*entries: str, base: dict | None = None) -> dict:
    """check_config over config.yaml (or ``base``) updated with ``--config`` entries."""
    config = copy.deepcopy(DEFAULTS if base is None else base)
    config.update(parse_config(list(entries)))
    return check_config(config, copy.deepcopy(SCHEMA))


# (--config entry, key named, value shown, what is allowed)
BAD = [
    ("trials=0", "trials", "0", "integer >= 1"),
    ("trials=-3", "trials", "-3", "integer >= 1"),
    ("trials=five", "trials", "'five'", "integer"),
    ("trials=2.5", "trials", "2.5", "integer"),
    ("trials=True", "trials", "True", "integer"),
    ("rounds=-1", "rounds", "-1", "integer >= 0"),
    ("iterations=0", "iterations", "0", "integer >= 1"),
    ("iterations=-100", "iterations", "-100", "integer >= 1"),
    ("batch_size=0", "batch_size", "0", "integer >= 1"),
    ("batch_size=-60", "batch_size", "-60", "integer >= 1"),
    ("batch_size=sixty", "batch_size", "'sixty'", "integer"),
    ("prune_rate=0", "prune_rate", "0", "number > 0 and < 1"),
    ("prune_rate=1", "prune_rate", "1", "number > 0 and < 1"),
    ("prune_rate=1.5", "prune_rate", "1.5", "number > 0 and < 1"),
    ("output_prune_rate=-0.1", "output_prune_rate", "-0.1", "number > 0 and < 1"),
    ("prune_rate=20%", "prune_rate", "'20%'", "number"),
    ("lr=0", "lr", "0", "number > 0"),
    ("lr=nan", "lr", "nan", "finite number > 0"),
    ("lr=inf", "lr", "inf", "finite number > 0"),
    ("model=resnet18", "model", "'resnet18'", "one of 'lenet_300_100', 'lenet5'"),
    ("model=LeNet-300-100", "model", "'LeNet-300-100'", "one of 'lenet_300_100', 'lenet5'"),
    ("controls=[reinit,shuffle]", "controls[1]", "'shuffle'", "one of 'reinit', 'random_pruning'"),
    ("controls=reinit", "controls", "'reinit'", "array"),
    ("controls=[reinit,reinit]", "controls", "['reinit', 'reinit']", "lists an item twice"),
    ("prune_scope=neuron", "prune_scope", "'neuron'", "one of 'layerwise', 'global'"),
    ("pruning=random", "pruning", "'random'", "one of 'iterative', 'oneshot'"),
    ("device=tpu", "device", "'tpu'", "one of 'auto', 'cpu', 'cuda'"),
    ("test_eval=some", "test_eval", "'some'", "one of 'all', 'best'"),
    ("patience=0", "patience", "0", ">= 1"),
    ("verify_data=maybe", "verify_data", "'maybe'", "boolean"),
    ("threads=0", "threads", "0", "integer >= 1"),
    ("reinit_per_ticket=0", "reinit_per_ticket", "0", "integer >= 1 and <= 100"),
    ("seed=-1", "seed", "-1", "integer >= 0"),
]


@pytest.mark.parametrize("entry, key, value, allowed", BAD, ids=[b[0] for b in BAD])
def test_bad_value_gives_one_line_naming_key_value_and_allowed(entry, key, value, allowed):
    with pytest.raises(LTHError) as info:
        checked(entry)
    message = str(info.value)
    assert "\n" not in message
    assert f"config key {key!r}: {value}" in message, message
    assert allowed in message, message


@pytest.mark.parametrize("entries, match", [
    (["eval_every=500", "iterations=100"], "config key 'eval_every': 500 is larger than iterations=100"),
    (["rewind_iteration=100", "iterations=100"], "config key 'rewind_iteration': 100 must be smaller than iterations=100"),
    (["data_source=/no/such/folder"], "config key 'data_source': '/no/such/folder' is not a folder"),
])
def test_relations_the_schema_cannot_express(entries, match):
    with pytest.raises(LTHError, match=re.escape(match)):
        checked(*entries)


@pytest.mark.parametrize("entry", ["trails=3", "learning_rate=0.1", "prune-rate=0.2"])
def test_unknown_keys_are_refused_with_the_allowed_keys(entry):
    key = entry.split("=")[0]
    with pytest.raises(LTHError) as info:
        checked(entry)
    message = str(info.value)
    assert f"unknown config key(s) {key!r}" in message
    assert "allowed keys: data_source, verify_data, trials, rounds" in message


def test_unknown_keys_refused_is_documented():
    assert "Unknown keys are refused" in SCHEMA["description"]
    assert SCHEMA["additionalProperties"] is False
    assert re.search(r"[Uu]nknown keys", (ROOT / "README.md").read_text())


def test_a_config_file_value_of_the_wrong_type():
    base = {**DEFAULTS, "trials": "5"}  # trials: "5" in a YAML file is a string
    with pytest.raises(LTHError, match=r"config key 'trials': '5' is not allowed; expected integer"):
        checked(base=base)


def test_a_config_file_that_is_not_a_mapping():
    with pytest.raises(LTHError, match="config must be a mapping"):
        check_config(["trials", 5], SCHEMA)


# --- valid values ---------------------------------------------------------------------------


def test_the_defaults_and_the_paper_profile_pass():
    assert checked()["trials"] == 5
    paper = {**DEFAULTS, **yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())}
    assert checked(base=paper)["rounds"] == 18


def test_defaults_fill_keys_a_config_leaves_out():
    config = check_config({"trials": 2}, copy.deepcopy(SCHEMA))
    assert config["rounds"] == 5 and config["lr"] == 0.0012 and config["controls"] == ["reinit"]


def test_rounds_zero_is_valid():
    assert checked("rounds=0")["rounds"] == 0


@pytest.mark.parametrize("entry, key, value", [
    ("trials=2.0", "trials", 2),
    ("iterations=5e4", "iterations", 50000),
    ("verify_data=false", "verify_data", False),
    ("verify_data=False", "verify_data", False),
    ("patience=null", "patience", None),
    ("patience=", "patience", None),
    ("patience=10", "patience", 10),
    ("controls=[]", "controls", []),
    ("controls=[reinit,random_pruning]", "controls", ["reinit", "random_pruning"]),
    ("lr=1", "lr", 1),
])
def test_values_as_the_command_line_writes_them(entry, key, value):
    got = checked(entry)[key]
    assert got == value and type(got) is type(value)
