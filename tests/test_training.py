"""Training under masks: pruned weights stay zero at every step, rewinding, determinism, the optimizer
and the hand-written MLP step against PyTorch's own, early-stop bookkeeping, seeds."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import pytest
import torch
from torch import nn

import lth.training as T
from lth import checkpoint
from lth.data import load_split
from lth.errors import LTHError
from lth.experiment import (
    data_seed,
    make_init,
    make_ticket_mask,
    random_mask_seed,
    reinit_seed,
    run_training,
    ticket_seed,
)
from lth.models import get_spec, init_model
from lth.pruning import MagnitudePruning, PruneConfig, dense_masks
from lth.training import FusedAdam, TrainConfig, train

from conftest import make_small_mnist

CFG = TrainConfig(lr=1.2e-3, batch_size=20, iterations=30, eval_every=10, device="cpu", data_seed=3)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_small_mnist(tmp_path_factory.mktemp("data") / "mnist")


@pytest.fixture(scope="module")
def split(data_dir):
    return load_split(data_dir, val_size=100, split_seed=0)


def pruned_masks(model_name: str, seed: int, round_: int) -> dict[str, torch.Tensor]:
    """Masks of round ``round_`` from the magnitudes of a fresh network (enough for these tests)."""
    spec = get_spec(model_name)
    model = init_model(model_name, seed)
    params = dict(model.named_parameters())
    weights = {n: params[n].detach() for n in spec.prunable(model)}
    return MagnitudePruning(PruneConfig(), spec.output_layer).prune(weights, dense_masks(weights), round_)


def watch_pruned(monkeypatch, model: nn.Module, masks: dict[str, torch.Tensor]) -> list[tuple[str, float]]:
    """Record the largest |w| among the pruned weights before every step (what its forward pass
    sees), right after every optimizer step (before the mask is re-applied), after every mask
    application, and at every evaluation. Returns the (growing) list of records."""
    params = dict(model.named_parameters())
    records: list[tuple[str, float]] = []

    def pruned_max() -> float:
        return max(float(params[n].detach()[~m].abs().max()) for n, m in masks.items() if (~m).any())

    real_make_step, real_apply, real_evaluate = T._make_step, T._Masker.apply, T.evaluate

    def make_step(model_, batch_size, optimizer):
        step = real_make_step(model_, batch_size, optimizer)

        def watched(x, y):
            records.append(("before step", pruned_max()))
            loss = step(x, y)
            records.append(("optimizer step", pruned_max()))
            return loss

        return watched

    def apply(self):
        real_apply(self)
        records.append(("masked", pruned_max()))

    def evaluate(m, x, y):
        records.append(("evaluation", pruned_max()))
        return real_evaluate(m, x, y)

    monkeypatch.setattr(T, "_make_step", make_step)
    monkeypatch.setattr(T._Masker, "apply", apply)
    monkeypatch.setattr(T, "evaluate", evaluate)
    return records


# --- pruned weights stay exactly zero -------------------------------------------------------


@pytest.mark.parametrize("model_name", ["lenet_300_100", "lenet5"])
def test_pruned_weights_are_exactly_zero_after_every_step(monkeypatch, split, model_name):
    model = init_model(model_name, 0)
    masks = pruned_masks(model_name, 0, 2)
    records = watch_pruned(monkeypatch, model, masks)
    cfg = TrainConfig(lr=1.2e-3, batch_size=20, iterations=25 if model_name == "lenet_300_100" else 6,
                      eval_every=5, device="cpu")
    train(model, masks, split, cfg)
    steps = [v for where, v in records if where == "before step"]
    assert len(steps) == cfg.iterations
    for where in ("before step", "masked", "evaluation"):
        values = [v for w, v in records if w == where]
        assert values and all(v == 0.0 for v in values), f"pruned weights not zero at '{where}': {max(values)}"
    # The check can fail: the optimizer step itself moves pruned weights (Adam sees their
    # gradients); only re-applying the mask after it keeps them at zero.
    assert max(v for w, v in records if w == "optimizer step") > 0.0
    params = dict(model.named_parameters())
    for n, m in masks.items():
        assert bool((params[n].detach()[~m] == 0).all())
        assert bool((params[n].detach()[m] != 0).all())  # survivors train


def test_the_watch_catches_a_masker_that_stops_masking(monkeypatch, split):
    """If the mask were applied only once before training, the watch above would see it."""
    model = init_model("lenet_300_100", 0)
    masks = pruned_masks("lenet_300_100", 0, 1)
    real_apply, calls = T._Masker.apply, []

    def apply_once(self):
        if not calls:
            real_apply(self)
        calls.append(1)

    monkeypatch.setattr(T._Masker, "apply", apply_once)
    train(model, masks, split, TrainConfig(lr=1.2e-3, batch_size=20, iterations=3, eval_every=3, device="cpu"))
    params = dict(model.named_parameters())
    assert any(bool((params[n].detach()[~m] != 0).any()) for n, m in masks.items())


@pytest.mark.bitwise
def test_pruned_weights_zero_after_k_steps_for_each_k(split):
    """The same property without hooks: train k = 1..4 iterations from scratch each time."""
    theta0 = init_model("lenet_300_100", 0).state_dict()
    masks = pruned_masks("lenet_300_100", 0, 3)
    for k in range(1, 5):
        model = get_spec("lenet_300_100").build()
        model.load_state_dict(theta0)
        train(model, masks, split, TrainConfig(lr=1.2e-3, batch_size=20, iterations=k, eval_every=k, device="cpu"))
        params = dict(model.named_parameters())
        for n, m in masks.items():
            assert bool((params[n].detach()[~m] == 0).all()), f"{n} after {k} steps"
            assert not torch.equal(params[n].detach()[m], theta0[n][m])


# --- rewinding ----------------------------------------------------------------------------


@pytest.mark.bitwise
def test_rewind_restores_theta0_on_surviving_weights(monkeypatch, tmp_path, data_dir):
    model_name = "lenet_300_100"
    make_init(model_name, 0, tmp_path / "init.pt")
    dense_cfg = TrainConfig(lr=1.2e-3, batch_size=20, iterations=30, eval_every=10, device="cpu", save_at=0)
    outputs = {k: tmp_path / "dense" / f"{k}" for k in ("model.pt", "curve.csv", "result.json", "rewind.pt")}
    run_training(model_name, tmp_path / "init.pt", None, data_dir, dense_cfg, val_size=100, split_seed=0,
                 out_model=outputs["model.pt"], out_curve=outputs["curve.csv"], out_result=outputs["result.json"],
                 out_snapshot=outputs["rewind.pt"])
    theta0 = checkpoint.load_weights(tmp_path / "init.pt", model_name)
    rewind = checkpoint.load_weights(outputs["rewind.pt"], model_name)
    trained = checkpoint.load_weights(outputs["model.pt"], model_name)
    assert all(torch.equal(rewind[k], theta0[k]) for k in theta0)  # rewind_iteration 0 is theta0 itself
    assert not torch.equal(trained["fc1.weight"], theta0["fc1.weight"])

    make_ticket_mask(model_name, outputs["model.pt"], None, 1, PruneConfig(), tmp_path / "mask.pt")
    masks = checkpoint.load_masks(tmp_path / "mask.pt", model_name)

    # Capture the weights the first step of the retraining starts from.
    start = {}
    real_make_step = T._make_step

    def make_step(model, batch_size, optimizer):
        step = real_make_step(model, batch_size, optimizer)

        def first(x, y):
            if not start:
                start.update({k: v.detach().clone() for k, v in model.state_dict().items()})
            return step(x, y)

        return first

    monkeypatch.setattr(T, "_make_step", make_step)
    run_training(model_name, outputs["rewind.pt"], tmp_path / "mask.pt", data_dir, CFG, val_size=100, split_seed=0,
                 out_model=tmp_path / "r1" / "model.pt", out_curve=tmp_path / "r1" / "curve.csv",
                 out_result=tmp_path / "r1" / "result.json")
    for name, value in theta0.items():
        if name in masks:
            m = masks[name]
            assert torch.equal(start[name][m], value[m]), f"{name}: survivors are not theta0"
            assert bool((start[name][~m] == 0).all()), f"{name}: pruned weights are not zero"
        else:  # biases: theta0 (zeros), never masked
            assert torch.equal(start[name], value)
    # The trained weights of round 0 are not what round 1 starts from.
    assert not torch.equal(start["fc1.weight"][masks["fc1.weight"]], trained["fc1.weight"][masks["fc1.weight"]])


@pytest.mark.bitwise
def test_late_rewind_snapshot_is_the_weights_at_that_iteration(split):
    theta0 = init_model("lenet_300_100", 0).state_dict()

    def fresh():
        m = get_spec("lenet_300_100").build()
        m.load_state_dict(theta0)
        return m

    long = train(fresh(), None, split, TrainConfig(lr=1.2e-3, batch_size=20, iterations=30, eval_every=10,
                                                   device="cpu", save_at=7))
    short_model = fresh()
    train(short_model, None, split, TrainConfig(lr=1.2e-3, batch_size=20, iterations=7, eval_every=7, device="cpu"))
    assert all(torch.equal(long.snapshot[k], v) for k, v in short_model.state_dict().items())
    assert not torch.equal(long.snapshot["fc1.weight"], theta0["fc1.weight"])


def record_batches(monkeypatch) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Record the (images, labels) of every training step of the dense kernels."""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    step = T._DenseKernels.step

    def recording(self, x, y):
        seen.append((x.clone(), y.clone()))
        return step(self, x, y)

    monkeypatch.setattr(T._DenseKernels, "step", recording)
    return seen


# 500 training images at batch 20: 25 batches per epoch. 80 iterations span four epochs; 28 lies
# inside the second, 50 on the boundary of the third, 7 inside the first.
@pytest.mark.parametrize("k", [7, 28, 50])
@pytest.mark.bitwise
def test_late_rewound_training_continues_the_data_order_at_iteration_k(monkeypatch, split, k):
    """Frankle et al. 2020: a network rewound to iteration k trains k+1..T on the batches the
    run from 0 sees there (T - k steps), evaluated at the same absolute iterations."""
    seen = record_batches(monkeypatch)
    cfg = TrainConfig(lr=1.2e-3, batch_size=20, iterations=80, eval_every=10, device="cpu", data_seed=5)
    full = train(init_model("lenet_300_100", 0), None, split, cfg)
    full_batches = list(seen)
    seen.clear()
    late = train(init_model("lenet_300_100", 0), None, split, dataclasses.replace(cfg, start_iteration=k))
    assert len(full_batches) == 80 and len(seen) == 80 - k
    for (x, y), (fx, fy) in zip(seen, full_batches[k:]):
        assert torch.equal(x, fx) and torch.equal(y, fy)
    # The same epoch's batches in another order would not do: the first step is batch k itself.
    assert not torch.equal(seen[0][0], full_batches[k - 1][0])
    assert [r["iteration"] for r in late.curve] == [i for i in range(10, 81, 10) if i > k]
    assert late.iterations_run == 80 - k and full.iterations_run == 80
    assert late.early_stop["iteration"] > k


# --- determinism ---------------------------------------------------------------------------


@pytest.mark.bitwise
def test_two_training_runs_give_identical_bits(split):
    masks = pruned_masks("lenet_300_100", 1, 1)
    runs = []
    for _ in range(2):
        model = init_model("lenet_300_100", 1)
        result = train(model, masks, split, CFG)
        runs.append((model.state_dict(), result))
    (s1, r1), (s2, r2) = runs
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert r1.curve == r2.curve
    assert r1.final_train_accuracy == r2.final_train_accuracy


@pytest.mark.bitwise
def test_run_training_twice_gives_identical_files(tmp_path, data_dir):
    make_init("lenet_300_100", 4, tmp_path / "init.pt")
    for run in ("a", "b"):
        run_training("lenet_300_100", tmp_path / "init.pt", None, data_dir, CFG, val_size=100, split_seed=0,
                     out_model=tmp_path / run / "model.pt", out_curve=tmp_path / run / "curve.csv",
                     out_result=tmp_path / run / "result.json", labels={"trial": 0})
    for name in ("model.pt", "curve.csv", "result.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_result_records_what_decides_the_low_bits_on_the_cpu(tmp_path, data_dir, monkeypatch):
    """Thread count and the CPU's instruction set change a CPU run's bits (docs/method.md)."""
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    threads = torch.get_num_threads()
    make_init("lenet_300_100", 4, tmp_path / "init.pt")
    try:
        torch.set_num_threads(2)
        run_training("lenet_300_100", tmp_path / "init.pt", None, data_dir, CFG, val_size=100, split_seed=0,
                     out_model=tmp_path / "model.pt", out_curve=tmp_path / "curve.csv",
                     out_result=tmp_path / "result.json")
    finally:
        torch.set_num_threads(threads)
    cpu = json.loads((tmp_path / "result.json").read_text())["cpu"]
    assert cpu["capability"] == "AVX512" and cpu["threads"] == 2 and cpu["cpu"]


@pytest.mark.bitwise
def test_data_seed_changes_the_run(split):
    a, b = init_model("lenet_300_100", 0), init_model("lenet_300_100", 0)
    train(a, None, split, CFG)
    train(b, None, split, TrainConfig(**{**CFG.__dict__, "data_seed": CFG.data_seed + 1}))
    assert not torch.equal(a.fc1.weight, b.fc1.weight)


# --- the optimizer and the MLP step against PyTorch -----------------------------------------


@pytest.mark.bitwise
def test_fused_adam_is_bit_identical_to_torch_adam_fused():
    gen = torch.Generator().manual_seed(0)
    shapes = [(300, 784), (300,), (10, 100), (10,)]
    ours = [nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
    theirs = [nn.Parameter(p.detach().clone()) for p in ours]
    opt_ours = FusedAdam(ours, lr=1.2e-3)
    opt_theirs = torch.optim.Adam(theirs, lr=1.2e-3, fused=True)
    for _ in range(6):
        for p, q in zip(ours, theirs):
            g = torch.randn(p.shape, generator=gen)
            p.grad.copy_(g)
            q.grad = g.clone()
        opt_ours.step()
        opt_theirs.step()
    for p, q in zip(ours, theirs):
        assert torch.equal(p, q)
    assert not torch.equal(ours[0], theirs[0] + 1)  # sanity: equality is not vacuous


def test_mlp_step_is_chosen_for_lenet_300_100_and_autograd_for_lenet5():
    for name, kind in (("lenet_300_100", T._MLPStep), ("lenet5", T._AutogradStep)):
        model = init_model(name, 0)
        assert isinstance(T._make_step(model, 20, FusedAdam(model.parameters(), lr=1e-3)), kind)


def test_mlp_step_gradients_equal_autograd(split):
    model = init_model("lenet_300_100", 0)
    with torch.no_grad():  # nonzero biases, so that the bias gradient path matters
        for p in model.parameters():
            if p.ndim == 1:
                p.uniform_(-0.1, 0.1, generator=torch.Generator().manual_seed(5))
    reference = copy.deepcopy(model)

    class NoStep:
        def step(self):
            pass

    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    x, y = split.train_x[:20], split.train_y[:20]
    loss = T._MLPStep(model.linear_layers(), 20, NoStep())(x, y)

    ref_loss = nn.functional.cross_entropy(reference(x), y)
    ref_loss.backward()
    assert torch.allclose(loss, ref_loss.detach(), rtol=1e-5, atol=1e-6)
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        assert p.grad.abs().sum() > 0, name
        assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6), name


# --- early stopping bookkeeping --------------------------------------------------------------


def test_early_stop_is_the_evaluation_of_minimum_validation_loss(split):
    result = train(init_model("lenet_300_100", 2), None, split,
                   TrainConfig(lr=1.2e-3, batch_size=20, iterations=60, eval_every=10, device="cpu"))
    losses = [row["val_loss"] for row in result.curve]
    assert [row["iteration"] for row in result.curve] == [10, 20, 30, 40, 50, 60]
    assert result.early_stop is result.curve[losses.index(min(losses))]
    assert result.final is result.curve[-1]
    assert 0.0 <= result.early_stop["test_accuracy"] <= 1.0
    assert result.iterations_run == 60


def test_test_eval_best_gives_the_same_early_stop_metrics(split):
    results = {}
    for mode in ("all", "best"):
        cfg = TrainConfig(lr=1.2e-3, batch_size=20, iterations=60, eval_every=10, device="cpu", test_eval=mode)
        results[mode] = train(init_model("lenet_300_100", 2), None, split, cfg)
    assert results["best"].early_stop == results["all"].early_stop
    assert results["best"].final == results["all"].final
    assert all(not math.isnan(r["test_accuracy"]) for r in results["all"].curve)


def test_patience_stops_after_that_many_evaluations_without_improvement(split):
    result = train(init_model("lenet_300_100", 0), None, split,
                   TrainConfig(lr=1.2e-3, batch_size=20, iterations=400, eval_every=1, patience=2, device="cpu"))
    assert result.iterations_run < 400
    best = result.curve.index(result.early_stop)
    assert len(result.curve) - 1 - best == 2


# --- bad training inputs ---------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, key", [
    (dict(batch_size=0), "batch_size"),
    (dict(iterations=-1), "iterations"),
    (dict(eval_every=0), "eval_every"),
    (dict(lr=0.0), "lr"),
    (dict(lr=float("nan")), "lr"),
    (dict(patience=0), "patience"),
    (dict(test_eval="sometimes"), "test_eval"),
    (dict(test_eval="minima", test_every=0), "test_every"),
    (dict(leaf_patience=0), "leaf_patience"),
    (dict(patience=3, leaf_patience=5), "patience=3 and leaf_patience=5: set one of them at most"),
    (dict(iterations=10, save_at=11), "rewind_iteration"),
    (dict(iterations=10, start_iteration=10), "start_iteration"),
    (dict(iterations=10, start_iteration=-1), "start_iteration"),
    (dict(iterations=10, start_iteration=5, save_at=4), "rewind_iteration"),
])
def test_train_config_refuses_bad_values(kwargs, key):
    with pytest.raises(LTHError, match=key):
        TrainConfig(**kwargs)


def test_batch_larger_than_training_split_is_refused(split):
    with pytest.raises(LTHError, match="batch_size=10000 is larger than the training split"):
        train(init_model("lenet_300_100", 0), None, split, TrainConfig(batch_size=10000, iterations=1, eval_every=1))


def test_mask_for_another_shape_is_refused(split):
    masks = {"fc1.weight": torch.ones(10, 10, dtype=torch.bool)}
    with pytest.raises(LTHError, match="mask fc1.weight has shape"):
        train(init_model("lenet_300_100", 0), masks, split, CFG)


# --- seeds -----------------------------------------------------------------------------------


def test_reinit_seeds_differ_from_every_ticket_seed():
    tickets = {ticket_seed(s, t) for s in range(10) for t in range(1000)}
    reinits = [reinit_seed(s, t, k, r) for s in range(10) for t in range(50) for k in range(3) for r in range(1, 4)]
    assert len(set(reinits)) == len(reinits)
    assert not tickets & set(reinits)
    data = {data_seed(s, t) for s in range(10) for t in range(50)}
    masks = {random_mask_seed(s, t, r) for s in range(10) for t in range(50) for r in range(1, 4)}
    assert not data & set(reinits) and not data & tickets and not masks & (data | tickets | set(reinits))


@pytest.mark.bitwise
def test_reinit_weights_differ_from_the_tickets():
    ticket = init_model("lenet_300_100", ticket_seed(0, 0))
    reinit = init_model("lenet_300_100", reinit_seed(0, 0, 0, 1))
    again = init_model("lenet_300_100", reinit_seed(0, 0, 0, 1))
    other_round = init_model("lenet_300_100", reinit_seed(0, 0, 0, 2))
    assert not torch.equal(ticket.fc1.weight, reinit.fc1.weight)
    assert torch.equal(reinit.fc1.weight, again.fc1.weight)
    assert not torch.equal(reinit.fc1.weight, other_round.fc1.weight)
    # Same distribution (Glorot normal): std of fc1 is sqrt(2 / (784 + 300)).
    assert reinit.fc1.weight.std().item() == pytest.approx((2 / 1084) ** 0.5, rel=0.02)
