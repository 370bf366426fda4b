"""Early stopping in ``lth.training.train`` with a scripted validation loss.

``evaluate`` is replaced by a script that answers by split (told apart by their sizes): the
validation loss of the k-th evaluation is the k-th value given, and a test accuracy tells at
which evaluation it was measured (evaluation k -> (k + 1) / 100). So the minimum can come before
the end, tie with a later evaluation, or never be reached before patience runs out, and each
row's test accuracy shows whether (and when) the test split was evaluated.

What the docstrings promise: the early-stop row is the evaluation with the minimum validation
loss, the first one on ties; with ``test_eval: all`` every evaluation has a test accuracy, with
``best`` exactly the evaluations that set a new (strict) minimum and the last one, NaN elsewhere,
with ``minima`` those and the first evaluation of every window of ``test_every`` iterations;
with ``patience: p`` (or ``leaf_patience: p``, a leaf's) training stops at the p-th evaluation in
a row without a new minimum.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import lth.training as T
from lth.data import Split
from lth.training import TrainConfig, train

N_TRAIN, N_VAL, N_TEST = 40, 7, 11
EVAL_EVERY = 10


def tiny_split() -> Split:
    g = torch.Generator().manual_seed(0)

    def part(n):
        return torch.rand(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)

    return Split(*part(N_TRAIN), *part(N_VAL), *part(N_TEST))


def accuracy_at(k: int) -> float:
    return (k + 1) / 100


def scripted_train(monkeypatch, val_losses, test_eval="all", patience=None, iterations=None, **more):
    """Train a tiny model for ``len(val_losses)`` evaluations (or ``iterations``) with the
    validation loss scripted; returns the result and the list of splits evaluated, in order."""
    calls: list[tuple[str, int]] = []

    def evaluate(model, x, y):
        n_val = sum(1 for c in calls if c[0] == "val")
        if len(x) == N_VAL:
            calls.append(("val", n_val))
            return val_losses[n_val], 0.5 + 0.001 * n_val  # val accuracy rises: it must not decide
        if len(x) == N_TEST:
            calls.append(("test", n_val - 1))
            return 9.0, accuracy_at(n_val - 1)
        assert len(x) == N_TRAIN
        calls.append(("train", n_val - 1))
        return 9.0, 0.99

    monkeypatch.setattr(T, "evaluate", evaluate)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
    cfg = TrainConfig(lr=1e-3, batch_size=5, iterations=iterations or EVAL_EVERY * len(val_losses),
                      eval_every=EVAL_EVERY, device="cpu", test_eval=test_eval, patience=patience, **more)
    return train(model, None, tiny_split(), cfg), calls


def with_test_accuracy(result) -> list[int]:
    """Indices of the curve rows that have a test accuracy."""
    return [i for i, row in enumerate(result.curve) if not math.isnan(row["test_accuracy"])]


def check_rows(result, val_losses):
    assert [row["iteration"] for row in result.curve] == [EVAL_EVERY * (i + 1) for i in range(len(result.curve))]
    assert [row["val_loss"] for row in result.curve] == val_losses[: len(result.curve)]
    for i in with_test_accuracy(result):
        assert result.curve[i]["test_accuracy"] == accuracy_at(i)  # measured at that evaluation
    assert result.final is result.curve[-1]


# (validation losses, index of the early-stop evaluation, evaluations with a test accuracy under `best`)
CASES = {
    "minimum in the middle": ([0.9, 0.5, 0.7, 0.6, 0.8], 1, [0, 1, 4]),
    "minimum first": ([0.3, 0.5, 0.4, 0.6], 0, [0, 3]),
    "tie in the middle": ([0.9, 0.5, 0.7, 0.5, 0.8], 1, [0, 1, 4]),
    "tie at the end": ([0.9, 0.5, 0.6, 0.5], 1, [0, 1, 3]),
    "three tied minima": ([0.5, 0.5, 0.8, 0.5, 0.9], 0, [0, 4]),
    "tie, then a new minimum": ([0.9, 0.5, 0.7, 0.5, 0.4, 0.6, 0.8], 4, [0, 1, 4, 6]),
    "local decreases that are no new minimum": ([0.5, 0.9, 0.8, 0.7, 0.6, 0.55], 0, [0, 5]),
    "minimum last": ([0.9, 0.8, 0.85, 0.7], 3, [0, 1, 3]),
}


@pytest.mark.parametrize("name", CASES)
def test_test_eval_all(monkeypatch, name):
    losses, best, _ = CASES[name]
    result, calls = scripted_train(monkeypatch, losses, "all")
    check_rows(result, losses)
    assert result.early_stop is result.curve[best]
    assert result.early_stop["test_accuracy"] == accuracy_at(best)
    assert with_test_accuracy(result) == list(range(len(losses)))
    assert [c for c in calls if c[0] != "train"] == [(s, i) for i in range(len(losses)) for s in ("val", "test")]
    assert result.iterations_run == EVAL_EVERY * len(losses)


@pytest.mark.parametrize("name", CASES)
def test_test_eval_best(monkeypatch, name):
    losses, best, with_test = CASES[name]
    result, calls = scripted_train(monkeypatch, losses, "best")
    check_rows(result, losses)
    assert result.early_stop is result.curve[best]
    assert result.early_stop["test_accuracy"] == accuracy_at(best)  # exact, measured at the minimum
    assert with_test_accuracy(result) == with_test
    assert [i for s, i in calls if s == "test"] == with_test  # and nothing was evaluated in vain


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("test_every, cadence", [
    (30, [2, 5, 8]),     # eval_every 10 divides it: exactly at 30, 60, 90
    (25, [2, 4, 7, 9]),  # it does not: the first evaluation of each window of 25 (30, 50, 80, 100)
    (1000, []),          # longer than the run: the new minima and the last evaluation only
])
def test_test_eval_minima(monkeypatch, name, test_every, cadence):
    losses, best, with_test = CASES[name]
    losses = losses + [1.0] * (10 - len(losses))  # 10 evaluations, none of the padding a minimum
    result, calls = scripted_train(monkeypatch, losses, "minima", test_every=test_every)
    check_rows(result, losses)
    assert result.early_stop is result.curve[best]
    assert result.early_stop["test_accuracy"] == accuracy_at(best)
    minima = [i for i, v in enumerate(losses) if all(v < u for u in losses[:i])]
    assert set(minima) <= set(with_test)  # (the CASES' own count, the last row aside)
    expected = sorted({*minima, 9, *cadence})
    assert with_test_accuracy(result) == expected
    assert [i for s, i in calls if s == "test"] == expected


@pytest.mark.parametrize("name", CASES)
def test_every_mode_agrees_on_the_early_stop_and_final_rows(monkeypatch, name):
    losses = CASES[name][0]
    results = {mode: scripted_train(monkeypatch, losses, mode, test_every=20)[0] for mode in ("all", "minima", "best")}
    assert results["all"].early_stop == results["minima"].early_stop == results["best"].early_stop
    assert results["all"].final == results["minima"].final == results["best"].final


def test_last_evaluation_after_a_partial_interval(monkeypatch):
    """35 iterations: evaluations at 10, 20, 30 and the last one at 35."""
    losses = [0.9, 0.4, 0.6, 0.5]
    result, _ = scripted_train(monkeypatch, losses, "best", iterations=35)
    assert [row["iteration"] for row in result.curve] == [10, 20, 30, 35]
    assert result.early_stop is result.curve[1] and with_test_accuracy(result) == [0, 1, 3]


@pytest.mark.parametrize("test_eval", ["all", "minima", "best"])
@pytest.mark.parametrize("rule", ["patience", "leaf_patience"])  # a leaf's rule is the same one
@pytest.mark.parametrize("losses, patience, n_run, best", [
    ([0.9, 0.5, 0.7, 0.6, 0.8, 0.1, 0.1], 3, 5, 1),  # 3 evaluations without a new minimum: stop
    ([0.9, 0.5, 0.5, 0.5, 0.5, 0.1, 0.1], 3, 5, 1),  # a tie is no new minimum
    ([0.9, 0.5, 0.7, 0.4, 0.8, 0.6, 0.1], 3, 7, 6),  # a new minimum restarts the count
    ([0.9, 0.5, 0.7, 0.6, 0.8, 0.1, 0.1], 1, 3, 1),
])
def test_patience(monkeypatch, test_eval, rule, losses, patience, n_run, best):
    result, _ = scripted_train(monkeypatch, losses, test_eval, **{rule: patience})
    check_rows(result, losses)
    assert len(result.curve) == n_run and result.iterations_run == EVAL_EVERY * n_run
    assert result.early_stop is result.curve[best]
    assert result.early_stop["test_accuracy"] == accuracy_at(best)
    assert not math.isnan(result.final["test_accuracy"])  # the last evaluation is tested


@pytest.mark.parametrize("losses, patience, n_run, best", [
    ([0.9, 0.5, 0.7, 0.6, 0.8, 0.1, 0.1], 3, 5, 1),
    ([0.9, 0.5, 0.5, 0.5, 0.5, 0.1, 0.1], 3, 5, 1),
    ([0.9, 0.5, 0.7, 0.4, 0.8, 0.6, 0.1], 3, 7, 6),
    ([0.9, 0.5, 0.7, 0.6, 0.8, 0.1, 0.1], 1, 3, 1),
])
def test_the_patience_audit_replays_this_stopping_rule(monkeypatch, losses, patience, n_run, best):
    """lth.patience_audit's replay of a full curve stops where training stops (a leaf's rule)."""
    from lth.patience_audit import stop_index

    trained, _ = scripted_train(monkeypatch, losses, leaf_patience=patience)
    assert len(trained.curve) == n_run and trained.curve.index(trained.early_stop) == best
    assert stop_index(losses, patience) == (best, n_run - 1)
