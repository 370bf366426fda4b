"""Files between stages: weights and masks round-trip, are byte-reproducible, written atomically,
and a corrupt file or one from another model is refused with a message that names it."""

from __future__ import annotations

import os
import random
import re

import pytest
import torch

from lth import checkpoint
from lth.errors import LTHError
from lth.experiment import make_init, make_ticket_mask, run_training
from lth.fileio import atomic_path, write_json, write_text
from lth.models import get_spec, init_model
from lth.pruning import PruneConfig
from lth.training import TrainConfig

from conftest import make_small_mnist


def lenet_masks(model_name="lenet_300_100"):
    spec = get_spec(model_name)
    model = spec.build()
    params = dict(model.named_parameters())
    return {n: torch.rand(params[n].shape, generator=torch.Generator().manual_seed(0)) < 0.5
            for n in spec.prunable(model)}


@pytest.fixture
def weights_file(tmp_path):
    make_init("lenet_300_100", 0, tmp_path / "init.pt")
    return tmp_path / "init.pt"


@pytest.fixture
def masks_file(tmp_path):
    checkpoint.save_masks(tmp_path / "mask.pt", "lenet_300_100", lenet_masks())
    return tmp_path / "mask.pt"


# --- round trips and bytes ----------------------------------------------------------------


@pytest.mark.bitwise
def test_weights_round_trip(weights_file):
    state = checkpoint.load_weights(weights_file, "lenet_300_100")
    expected = init_model("lenet_300_100", 0).state_dict()
    assert set(state) == set(expected)
    assert all(torch.equal(state[k], expected[k]) for k in expected)


@pytest.mark.bitwise
def test_masks_round_trip(masks_file):
    masks = checkpoint.load_masks(masks_file, "lenet_300_100")
    expected = lenet_masks()
    assert all(torch.equal(masks[k], expected[k]) and masks[k].dtype == torch.bool for k in expected)


@pytest.mark.bitwise
def test_same_weights_give_identical_bytes(tmp_path):
    make_init("lenet_300_100", 3, tmp_path / "a.pt")
    make_init("lenet_300_100", 3, tmp_path / "sub" / "b.pt")
    make_init("lenet_300_100", 4, tmp_path / "c.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "sub" / "b.pt").read_bytes()
    assert (tmp_path / "a.pt").read_bytes() != (tmp_path / "c.pt").read_bytes()


def test_outputs_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        make_init("lenet_300_100", 0, tmp_path / "w.pt")
        write_text(tmp_path / "t.txt", "x")
    finally:
        os.umask(old)
    for name in ("w.pt", "t.txt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


# --- atomic writes ------------------------------------------------------------------------


def test_a_failed_write_leaves_no_file_and_no_temporary(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "out.json") as tmp:
            tmp.write_text('{"half": ')
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_keeps_the_previous_complete_file(tmp_path):
    write_json(tmp_path / "out.json", {"complete": True})
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "out.json") as tmp:
            tmp.write_text("garbage")
            raise RuntimeError("killed")
    assert (tmp_path / "out.json").read_text() == '{\n  "complete": true\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


@pytest.mark.bitwise
def test_the_temporary_name_does_not_look_finished(tmp_path):
    with atomic_path(tmp_path / "model.pt") as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".model.pt.") and tmp.name.endswith(".part")
        assert not (tmp_path / "model.pt").exists()
        tmp.write_bytes(b"x")
    assert (tmp_path / "model.pt").read_bytes() == b"x"


# --- refused files ------------------------------------------------------------------------


def refused(path, loader, model="lenet_300_100", match=""):
    with pytest.raises(LTHError) as info:
        loader(path, model)
    message = str(info.value)
    assert str(path) in message, message
    assert "\n" not in message
    assert re.search(match, message), message
    return message


def test_missing_file(tmp_path):
    refused(tmp_path / "nope.pt", checkpoint.load_weights, match="weights file is missing")


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes(tmp_path, seed):
    """Garbage fails in torch's unpickler in several ways (seeds 2 and 14 here: IndexError, the others UnpicklingError); each is
    the same one-line error."""
    (tmp_path / "w.pt").write_bytes(random.Random(seed).randbytes(5000))
    refused(tmp_path / "w.pt", checkpoint.load_weights, match="not a readable weights file")


def test_empty_file(tmp_path):
    (tmp_path / "w.pt").write_bytes(b"")
    refused(tmp_path / "w.pt", checkpoint.load_weights, match="not a readable weights file")


def test_truncated_checkpoint(tmp_path, weights_file):
    (tmp_path / "cut.pt").write_bytes(weights_file.read_bytes()[:300_000])
    refused(tmp_path / "cut.pt", checkpoint.load_weights, match="not a readable weights file")


def test_flipped_bytes_in_a_checkpoint(tmp_path, weights_file):
    data = bytearray(weights_file.read_bytes())
    data[:64] = b"\xff" * 64  # the zip's first local header
    (tmp_path / "bad.pt").write_bytes(bytes(data))
    refused(tmp_path / "bad.pt", checkpoint.load_weights, match="not a readable weights file")


def test_weights_of_another_model(tmp_path):
    make_init("lenet5", 0, tmp_path / "cnn.pt")
    message = refused(tmp_path / "cnn.pt", checkpoint.load_weights, match="weights of model 'lenet5'")
    assert "lenet_300_100" in message


def test_masks_of_another_model(tmp_path):
    checkpoint.save_masks(tmp_path / "cnn_mask.pt", "lenet5", lenet_masks("lenet5"))
    refused(tmp_path / "cnn_mask.pt", checkpoint.load_masks, match="masks of model 'lenet5'")


def test_a_plain_state_dict_is_not_a_pipeline_file(tmp_path):
    torch.save(init_model("lenet_300_100", 0).state_dict(), tmp_path / "plain.pt")
    refused(tmp_path / "plain.pt", checkpoint.load_weights, match="not a weights file of this pipeline")


def test_weights_file_given_as_mask(weights_file):
    refused(weights_file, checkpoint.load_masks, match="not a masks file of this pipeline")


def test_mask_file_given_as_weights(masks_file):
    refused(masks_file, checkpoint.load_weights, match="not a weights file of this pipeline")


def test_wrong_shaped_weights_under_the_right_model_name(tmp_path):
    state = init_model("lenet_300_100", 0).state_dict()
    state["fc2.weight"] = torch.zeros(50, 300)
    checkpoint.save_weights(tmp_path / "w.pt", "lenet_300_100", state)
    refused(tmp_path / "w.pt", checkpoint.load_weights, match=r"fc2.weight has shape \(50, 300\).*\(100, 300\)")


def test_weights_with_a_missing_tensor(tmp_path):
    state = init_model("lenet_300_100", 0).state_dict()
    del state["fc3.bias"]
    checkpoint.save_weights(tmp_path / "w.pt", "lenet_300_100", state)
    refused(tmp_path / "w.pt", checkpoint.load_weights, match="do not match model lenet_300_100")


def test_wrong_shaped_mask(tmp_path):
    masks = lenet_masks()
    masks["fc1.weight"] = masks["fc1.weight"].t().contiguous()
    checkpoint.save_masks(tmp_path / "m.pt", "lenet_300_100", masks)
    refused(tmp_path / "m.pt", checkpoint.load_masks, match="mask fc1.weight has shape")


def test_float_mask(tmp_path):
    masks = {k: v.float() for k, v in lenet_masks().items()}
    checkpoint.save_masks(tmp_path / "m.pt", "lenet_300_100", masks)
    refused(tmp_path / "m.pt", checkpoint.load_masks, match="expected bool")


def test_mask_for_a_bias(tmp_path):
    masks = lenet_masks()
    masks["fc1.bias"] = torch.ones(300, dtype=torch.bool)
    checkpoint.save_masks(tmp_path / "m.pt", "lenet_300_100", masks)
    refused(tmp_path / "m.pt", checkpoint.load_masks, match="do not match")


def test_pipeline_file_without_its_tensors(tmp_path):
    torch.save({"format": checkpoint.FORMAT, "kind": "weights", "model": "lenet_300_100"}, tmp_path / "w.pt")
    refused(tmp_path / "w.pt", checkpoint.load_weights, match="without a 'state' mapping")


# --- refused where the jobs load them -------------------------------------------------------


def test_prune_job_refuses_a_corrupt_trained_model(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(LTHError, match=re.escape(str(tmp_path / "model.pt"))):
        make_ticket_mask("lenet_300_100", tmp_path / "model.pt", None, 1, PruneConfig(), tmp_path / "mask.pt")
    assert not (tmp_path / "mask.pt").exists()


def test_training_job_refuses_a_mask_of_another_model_and_writes_nothing(tmp_path, weights_file):
    data = make_small_mnist(tmp_path / "data")
    checkpoint.save_masks(tmp_path / "cnn_mask.pt", "lenet5", lenet_masks("lenet5"))
    out = tmp_path / "out"
    with pytest.raises(LTHError, match=re.escape(str(tmp_path / "cnn_mask.pt"))):
        run_training("lenet_300_100", weights_file, tmp_path / "cnn_mask.pt", data,
                     TrainConfig(batch_size=20, iterations=5, eval_every=5, device="cpu"), val_size=100, split_seed=0,
                     out_model=out / "model.pt", out_curve=out / "curve.csv", out_result=out / "result.json")
    assert not out.exists() or list(out.iterdir()) == []
