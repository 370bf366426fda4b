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
    ("test_eval=some", "test_eval", "'some'", "one of 'all', 'minima', 'best'"),
    ("patience=0", "patience", "0", ">= 1"),
    ("leaf_patience=0", "leaf_patience", "0", ">= 1"),
    ("test_every=0", "test_every", "0", "integer >= 1"),
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


# Configurations that pass the schema key by key but cannot run: (--config entries, the start of
# the one-line message, what it says is allowed).
RELATIONS = [
    (["eval_every=500", "iterations=100"], "config key 'eval_every': 500 is larger than iterations=100",
     "expected eval_every <= iterations"),
    (["rewind_iteration=100", "iterations=100"], "config key 'rewind_iteration': 100 must be smaller than iterations=100",
     "expected rewind_iteration <= 99"),
    (["data_source=/no/such/folder"], "config key 'data_source': '/no/such/folder' is not a folder", "null to download"),
    # val_size against MNIST's 60,000 training images
    (["val_size=60000"], "config key 'val_size': 60000 leaves no training images (MNIST has 60000)",
     "expected val_size <= 60000 - batch_size = 59940"),
    (["val_size=70000", "batch_size=100"], "config key 'val_size': 70000 leaves no training images",
     "expected val_size <= 60000 - batch_size = 59900"),
    # batch_size against the training split that val_size leaves
    (["batch_size=55001"], "config key 'batch_size': 55001 is larger than the training split "
     "(60000 MNIST training images - val_size 5000 = 55000)", "expected batch_size <= 55000, or val_size <= 4999"),
    (["val_size=59950"], "config key 'batch_size': 60 is larger than the training split "
     "(60000 MNIST training images - val_size 59950 = 50)", "expected batch_size <= 50, or val_size <= 59940"),
    # patience against the number of evaluations
    (["patience=500"], "config key 'patience': 500 can never stop training early: iterations=50000 and "
     "eval_every=100 give 500 evaluation(s)", "expected patience <= 499, or null"),
    (["patience=3", "iterations=250", "eval_every=100"], "config key 'patience': 3 can never stop training early",
     "3 evaluation(s); expected patience <= 2"),
    # late rewinding: pruned networks train k+1..T, so they have fewer evaluations (250: 300, 400, 500)
    (["patience=3", "iterations=500", "eval_every=100", "rewind_iteration=250"], "config key 'patience': 3 can "
     "never stop training early: iterations=500 and eval_every=100 give 3 evaluation(s) after rewind_iteration=250",
     "expected patience <= 2"),
    (["patience=4", "iterations=550", "eval_every=100", "rewind_iteration=300"], "give 3 evaluation(s) after "
     "rewind_iteration=300", "expected patience <= 2"),  # 400, 500, 550
    # leaf_patience: the same bound, and not together with patience (which stops every job already)
    (["leaf_patience=500"], "config key 'leaf_patience': 500 can never stop training early",
     "expected leaf_patience <= 499, or null"),
    (["leaf_patience=3", "iterations=500", "eval_every=100", "rewind_iteration=250"],
     "config key 'leaf_patience': 3 can never stop training early", "3 evaluation(s) after rewind_iteration=250"),
    (["patience=10", "leaf_patience=5"], "config key 'leaf_patience': 5 is set together with patience=10",
     "expected one of them, the other null"),
    # reinit_per_ticket without the reinit control
    (["reinit_per_ticket=3", "controls=[]"], "config key 'reinit_per_ticket': 3 has no effect: controls=[] "
     "does not include 'reinit'", "expected controls to include 'reinit', or reinit_per_ticket: 1"),
    (["reinit_per_ticket=2", "controls=[random_pruning]"], "config key 'reinit_per_ticket': 2 has no effect",
     "expected controls to include 'reinit'"),
    # seed + trial: a seed torch takes
    (["seed=18446744073709551615"], "config key 'seed': 18446744073709551615 is too large for trials=5: trial t "
     "starts from seed + t", "expected seed <= 18446744073709551611"),
    # rounds against what every layer can still lose (see test_max_rounds_* for the numbers)
    (["rounds=42"], "config key 'rounds': 42 is more than lenet_300_100 can be pruned at prune_rate=0.2, "
     "output_prune_rate=0.1 (layerwise): round 42 would keep 3 of the 30000 weights of fc2.weight, as round 41 "
     "does, so it prunes nothing", "expected rounds <= 41"),
    (["rounds=5", "prune_rate=0.9"], "config key 'rounds': 5 is more than lenet_300_100 can be pruned at "
     "prune_rate=0.9, output_prune_rate=0.1 (layerwise): round 5 would keep 0 of the 30000 weights of fc2.weight",
     "expected rounds <= 4"),
    (["rounds=28", "output_prune_rate=0.2"], "round 28 would keep 2 of the 1000 weights of fc3.weight, as round 27",
     "expected rounds <= 27"),
    (["rounds=18", "model=lenet5"], "config key 'rounds': 18 is more than lenet5 can be pruned at prune_rate=0.2, "
     "output_prune_rate=0.1 (layerwise): round 18 would keep 3 of the 150 weights of conv1.weight, as round 17",
     "expected rounds <= 17"),
    (["rounds=60", "prune_scope=global", "output_prune_rate=0.05"], "(global): round 53 would keep 2 of the 265200 "
     "weights of the hidden layers (fc1.weight, fc2.weight), as round 52", "expected rounds <= 52"),
]


@pytest.mark.parametrize("entries, match, allowed", RELATIONS, ids=[" ".join(r[0]) for r in RELATIONS])
def test_relations_the_schema_cannot_express(entries, match, allowed):
    with pytest.raises(LTHError) as info:
        checked(*entries)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("config key '"), message
    assert match in message, message
    assert allowed in message, message


@pytest.mark.parametrize("entries", [
    ["val_size=59940"],                          # leaves exactly one batch
    ["batch_size=55000"],                        # one batch per epoch
    ["val_size=59990", "batch_size=10"],
    ["patience=499"],                            # can still stop, at the last evaluation
    ["patience=2", "iterations=250", "eval_every=100"],
    ["patience=2", "iterations=500", "eval_every=100", "rewind_iteration=250"],
    ["patience=2", "iterations=550", "eval_every=100", "rewind_iteration=300"],
    ["leaf_patience=499"],
    ["leaf_patience=2", "iterations=500", "eval_every=100", "rewind_iteration=250"],
    ["test_every=30"],                           # need not divide by eval_every (the first evaluation after)
    ["reinit_per_ticket=3"],                     # with the reinit control (the default)
    ["reinit_per_ticket=1", "controls=[]"],      # 1 is the default: not a choice the user made
    ["rounds=41"],                               # the most lenet_300_100 allows at 20 % / 10 %
    ["rounds=17", "model=lenet5"],
    ["rounds=52", "prune_scope=global", "output_prune_rate=0.05"],
    ["rounds=4", "prune_rate=0.9"],
    ["rounds=0", "prune_rate=0.99"],
    ["seed=18446744073709551611"],               # the last trial's seed is 2**64 - 1
])
def test_relations_at_their_limits_pass(entries):
    checked(*entries)


def test_split_sizes_are_checked_against_the_real_mnist_only():
    """Small test data (verify_data: false) may have fewer than 60,000 training images:
    load_split and train() check val_size and batch_size against the data they get."""
    assert checked("val_size=70000", "verify_data=false")["val_size"] == 70000
    assert checked("batch_size=59000", "verify_data=false")["batch_size"] == 59000


def test_mnist_sizes_agree_with_the_pinned_files():
    from lth.data import MNIST_FILES, MNIST_TEST_IMAGES, MNIST_TRAIN_IMAGES

    assert MNIST_FILES["train-images-idx3-ubyte"][0] == 16 + 784 * MNIST_TRAIN_IMAGES
    assert MNIST_FILES["train-labels-idx1-ubyte"][0] == 8 + MNIST_TRAIN_IMAGES
    assert MNIST_FILES["t10k-images-idx3-ubyte"][0] == 16 + 784 * MNIST_TEST_IMAGES
    assert MNIST_FILES["t10k-labels-idx1-ubyte"][0] == 8 + MNIST_TEST_IMAGES


@pytest.mark.parametrize("model, rates, scope, most", [
    ("lenet_300_100", (0.2, 0.1), "layerwise", 41),
    ("lenet_300_100", (0.2, 0.2), "layerwise", 27),
    ("lenet5", (0.2, 0.1), "layerwise", 17),
    ("lenet_300_100", (0.2, 0.1), "global", 48),
    ("lenet_300_100", (0.2, 0.05), "global", 52),
])
def test_max_rounds_agrees_with_target_remaining(model, rates, scope, most):
    """Round `most` still prunes every group and leaves each a weight; round `most` + 1 does not."""
    from lth.config import max_rounds, pruning_groups
    from lth.pruning import target_remaining

    groups = pruning_groups(model, *rates, scope)
    assert max_rounds(groups)[0] == most
    for r in range(1, most + 1):
        assert all(0 < target_remaining(n, p, r) < target_remaining(n, p, r - 1) for _, n, p in groups), r
    assert any(target_remaining(n, p, most + 1) in (0, target_remaining(n, p, most)) for _, n, p in groups)


def test_the_profiles_pass_their_relations():
    for name in ("paper", "quick", "notebook_oneshot", "notebook_iterative"):
        profile = yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())
        checked(base={**DEFAULTS, **profile})


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
    assert re.search(r"[Uu]nknown key", (ROOT / "docs" / "configuration.md").read_text())


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
