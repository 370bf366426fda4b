"""Issue 3's controls and modes on a tiny grid: reinit, random pruning, one-shot, late rewinding."""

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from lth import checkpoint
from lth.data import load_split
from lth.experiment import data_seed, make_ticket_mask
from lth.models import get_spec
from lth.pruning import PruneConfig, target_remaining
from lth.training import TrainConfig, train

from conftest import TINY_CONFIG, job_path, make_small_mnist, round_path, run_snakemake, trial_path

MODEL = "lenet_300_100"
CONFIG = dict(TINY_CONFIG, trials=1, rounds=2, controls=["reinit", "random_pruning"], rewind_iteration=20)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("controls")
    data = make_small_mnist(work / "data")
    run_snakemake(work, "--cores", "2", config=dict(CONFIG, data_source=str(data)))
    return work


def theta0(run):
    return trial_path(run, CONFIG, 0, "init.pt")


def mask_of(run, round_):
    return round_path(run, CONFIG, 0, round_, "mask.pt")


def job(run, experiment, round_, name="model.pt"):
    return job_path(run, CONFIG, 0, experiment, round_, name)


def zero_pattern(state):
    return {n: state[n] != 0 for n in ("fc1.weight", "fc2.weight", "fc3.weight")}


pytestmark = pytest.mark.workflow


@pytest.mark.bitwise
def test_reinit_trains_the_tickets_mask_from_another_init(run):
    ticket_init = checkpoint.load_weights(theta0(run), MODEL)
    inits = [checkpoint.load_weights(trial_path(run, CONFIG, 0, f"reinit_0/round_{r}.pt"), MODEL) for r in (1, 2)]
    # A fresh draw for every round, never the ticket's.
    for other in (ticket_init, inits[1]):
        assert not torch.equal(inits[0]["fc1.weight"], other["fc1.weight"])
    assert not torch.equal(ticket_init["fc1.weight"], inits[1]["fc1.weight"])
    for r in (1, 2):
        mask = checkpoint.load_masks(mask_of(run, r), MODEL)
        trained = checkpoint.load_weights(job(run, "reinit_0", r), MODEL)
        # Survivors almost surely move away from zero; pruned weights are exactly zero.
        assert all(torch.equal(zero_pattern(trained)[n], mask[n]) for n in mask)


@pytest.mark.bitwise
def test_random_pruning_has_the_tickets_sparsity_and_another_mask(run):
    for r in (1, 2):
        ticket = checkpoint.load_masks(mask_of(run, r), MODEL)
        rand = checkpoint.load_masks(job(run, "random_pruning", r, "mask.pt"), MODEL)
        for name in ticket:
            assert int(rand[name].sum()) == int(ticket[name].sum())
            assert not torch.equal(rand[name], ticket[name])
        trained = checkpoint.load_weights(job(run, "random_pruning", r), MODEL)
        assert all(torch.equal(zero_pattern(trained)[n], rand[n]) for n in rand)


@pytest.mark.bitwise
def test_late_rewinding_loads_the_dense_weights_at_iteration_k(run):
    rewind = checkpoint.load_weights(trial_path(run, CONFIG, 0, "rewind_20.pt"), MODEL)
    init = checkpoint.load_weights(theta0(run), MODEL)
    data = load_split(run / "resources" / "mnist", CONFIG["val_size"], 0)
    model = get_spec(MODEL).build()
    model.load_state_dict(init)
    cfg = TrainConfig(lr=0.0012, batch_size=CONFIG["batch_size"], iterations=20, eval_every=CONFIG["eval_every"],
                      data_seed=data_seed(0, 0), device="cpu")
    train(model, None, data, cfg)
    assert all(torch.equal(model.state_dict()[k], rewind[k]) for k in rewind)
    assert not torch.equal(rewind["fc1.weight"], init["fc1.weight"])
    # and the dense run's own weights at iteration 20, taken during its full-length training
    full = get_spec(MODEL).build()
    full.load_state_dict(init)
    snapshot = train(full, None, data, dataclasses.replace(cfg, iterations=CONFIG["iterations"], save_at=20)).snapshot
    assert all(torch.equal(snapshot[k], rewind[k]) for k in rewind)
    # The round-1 ticket is retrained from exactly that snapshot under its mask, for iterations
    # 21..60 on the dense run's batches of those iterations (Frankle et al. 2020).
    mask = checkpoint.load_masks(mask_of(run, 1), MODEL)
    ticket = get_spec(MODEL).build()
    ticket.load_state_dict(rewind)
    cfg = TrainConfig(lr=0.0012, batch_size=CONFIG["batch_size"], iterations=CONFIG["iterations"],
                      eval_every=CONFIG["eval_every"], data_seed=data_seed(0, 0), device="cpu", start_iteration=20)
    train(ticket, mask, data, cfg)
    trained = checkpoint.load_weights(job(run, "ticket", 1), MODEL)
    assert all(torch.equal(ticket.state_dict()[k], trained[k]) for k in trained)


def test_late_rewound_jobs_train_the_remaining_iterations(run):
    """Every pruned job of a rewind_iteration k lineage (ticket and controls, as open_lth's
    branches do by default) trains iterations k+1..T; the dense run trains all T."""
    T, k = CONFIG["iterations"], CONFIG["rewind_iteration"]
    dense = json.loads(trial_path(run, CONFIG, 0, "dense/result.json").read_text())
    assert dense["iterations_run"] == T and dense["train_config"]["start_iteration"] == 0
    for r in (1, 2):
        for experiment in ("ticket", "reinit_0", "random_pruning"):
            result = json.loads(job(run, experiment, r, "result.json").read_text())
            assert result["iterations_run"] == T - k, (experiment, r)
            assert result["train_config"]["start_iteration"] == k
            curve = pd.read_csv(job(run, experiment, r, "curve.csv"))
            assert curve["iteration"].tolist() == [40, 60]
            assert result["early_stop_iteration"] in (40, 60)


def test_oneshot_masks_hit_iterative_sparsity(tmp_path):
    torch.manual_seed(0)
    model = get_spec(MODEL).build()
    path = tmp_path / "trained.pt"
    checkpoint.save_weights(path, MODEL, model.state_dict())
    cfg = PruneConfig()
    previous = None
    for r in (1, 2, 3):
        it = tmp_path / f"iter_{r}.pt"
        make_ticket_mask(MODEL, path, previous, r, cfg, it)
        previous = it
        one = tmp_path / f"one_{r}.pt"
        make_ticket_mask(MODEL, path, None, r, cfg, one)
        a, b = checkpoint.load_masks(it, MODEL), checkpoint.load_masks(one, MODEL)
        for name, rate in (("fc1.weight", 0.2), ("fc2.weight", 0.2), ("fc3.weight", 0.1)):
            expected = target_remaining(a[name].numel(), rate, r)
            assert int(a[name].sum()) == int(b[name].sum()) == expected


def test_oneshot_workflow_prunes_from_the_dense_net(tmp_path):
    data = make_small_mnist(tmp_path / "data")
    config = dict(TINY_CONFIG, trials=1, rounds=2, controls=[], pruning="oneshot", data_source=str(data))
    run_snakemake(tmp_path, "--cores", "2", config=config)
    dense = checkpoint.load_weights(job_path(tmp_path, config, 0, "ticket", 0, "model.pt"), MODEL)
    mask2 = checkpoint.load_masks(round_path(tmp_path, config, 0, 2, "mask.pt"), MODEL)
    # Round 2's one-shot mask keeps the largest dense weights of each layer.
    for name, m in mask2.items():
        w = dense[name].abs()
        assert w[m].min() >= w[~m].max()
    summary = (tmp_path / "results/claims.md").read_text()
    assert "claims 1-5 need `pruning: iterative`" in summary


@pytest.mark.bitwise
def test_summarize_a_run_directory_matches_the_aggregate_step(run, tmp_path):
    from lth.summarize import main

    main([str(run), str(tmp_path / "out")])
    assert (tmp_path / "out/summary.csv").read_bytes() == (run / "results/summary.csv").read_bytes()
    assert (tmp_path / "out/claims.csv").read_bytes() == (run / "results/claims.csv").read_bytes()
    assert all((tmp_path / "out/plots" / f"{name}.png").stat().st_size > 1000
               for name in ("accuracy", "early_stop", "curves", "train_accuracy"))


def test_results_table_gives_mean_min_max_over_trials_with_replicates_averaged():
    import pandas as pd

    from lth.summarize import results_markdown

    rows = [
        dict(experiment="reinit", replicate=k, trial=t, round=1, percent_remaining=80.0,
             early_stop_test_accuracy=acc, early_stop_iteration=it, final_train_accuracy=1.0)
        for t, k, acc, it in [(0, 0, 0.90, 100), (0, 1, 0.94, 300), (1, 0, 0.96, 400)]
    ] + [
        dict(experiment="ticket", replicate=0, trial=t, round=0, percent_remaining=100.0,
             early_stop_test_accuracy=0.95, early_stop_iteration=500, final_train_accuracy=0.99)
        for t in (0, 1)
    ]
    lines = results_markdown(pd.DataFrame(rows)).splitlines()
    assert lines[2] == "| ticket | 0 | 100.0% | 95.00 [95.00, 95.00] | 500 [500, 500] | 99.00 [99.00, 99.00] | 2 |"
    # trial 0's two replicates average to 92 % and 200 iterations; trial 1 gives 96 % and 400
    assert lines[3] == "| reinit | 1 | 80.0% | 94.00 [92.00, 96.00] | 300 [200, 400] | 100.00 [100.00, 100.00] | 2 |"
