"""The private PyTorch entry points (lth.torch_ops): probed at import, an exact fallback for the
foreach ops, and one clear line when the fused Adam kernel is missing or takes other arguments."""

from __future__ import annotations

import pytest
import torch

from lth import torch_ops
from lth.errors import LTHError


def test_the_installed_pytorch_has_every_entry_point():
    assert torch_ops.FUSED_ADAM_PROBLEM is None
    assert all(torch_ops.FOREACH.values()), torch_ops.FOREACH


def _tensors(seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(300, 784, generator=g), torch.randn(100, generator=g)]


@pytest.mark.parametrize("op", ["zero", "add", "mul"])
@pytest.mark.bitwise
def test_the_fallback_gives_the_foreach_ops_bits(monkeypatch, op):
    fast, slow = _tensors(0), _tensors(0)
    others = [t.sign() for t in _tensors(1)]
    calls = {"zero": lambda ts: torch_ops.foreach_zero_(ts), "add": lambda ts: torch_ops.foreach_add_(ts, 0.37),
             "mul": lambda ts: torch_ops.foreach_mul_(ts, others)}
    calls[op](fast)
    monkeypatch.setitem(torch_ops.FOREACH, f"_foreach_{op}_", False)
    monkeypatch.delattr(torch, f"_foreach_{op}_")  # the fallback must not call it
    calls[op](slow)
    assert all(torch.equal(a, b) for a, b in zip(fast, slow))
    assert not torch.equal(fast[0], _tensors(0)[0])  # the op did something


def test_a_missing_foreach_op_is_found_by_the_probe(monkeypatch):
    monkeypatch.delattr(torch, "_foreach_mul_")
    assert torch_ops._probe_foreach() == {"_foreach_zero_": True, "_foreach_add_": True, "_foreach_mul_": False}


def test_a_pytorch_without_fused_adam_stops_with_one_line(monkeypatch):
    monkeypatch.delattr(torch, "_fused_adam_")
    problem = torch_ops._probe_fused_adam()
    assert problem == "torch._fused_adam_ does not exist"
    monkeypatch.setattr(torch_ops, "FUSED_ADAM_PROBLEM", problem)
    with pytest.raises(LTHError, match=r"^PyTorch .*: torch._fused_adam_ does not exist; .*PyTorch >= 2.4.*docs/install.md") as err:
        torch_ops.FusedAdam([torch.zeros(3, requires_grad=True)], lr=1e-3)
    assert "\n" not in str(err.value)


def test_fused_adam_with_other_arguments_is_reported(monkeypatch):
    def renamed(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, *, learning_rate, **kw):
        raise AssertionError("not reached")

    monkeypatch.setattr(torch, "_fused_adam_", renamed)
    problem = torch_ops._probe_fused_adam()
    assert problem.startswith("torch._fused_adam_ refuses the arguments lth passes (TypeError")
