"""leaf_patience: only the jobs whose weights no later job reads stop early.

Which jobs are leaves (lth.lineage.is_leaf, last_rounds), the stopping rule each job gets
through its params and trains with (a workflow run: the dense run and an iterative ticket with a
later round train all iterations; a run with one more round retrains the former last round's
ticket in full), the pruning step's refusal of weights that stopped early, and the audit command
(lth.patience_audit) on curves whose minimum comes late."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lth import checkpoint
from lth.aggregate import write_csv
from lth.errors import LTHError
from lth.experiment import make_ticket_mask
from lth.lineage import is_leaf, job_leaf_patience, last_rounds, lineage
from lth.models import init_model
from lth.patience_audit import audit_rows, main, read_jobs, replay
from lth.pruning import PruneConfig

from conftest import TINY_CONFIG, full_config, job_path, make_small_mnist, round_path, run_snakemake

# --- which jobs are leaves ---------------------------------------------------------------------


def test_leaves_are_the_jobs_no_later_job_reads():
    for pruning in ("iterative", "oneshot"):
        assert not is_leaf(pruning, "ticket", 0, 5)  # the dense run: pruned from (and rewound to)
        for experiment in ("reinit_0", "reinit_2", "random_pruning"):
            assert is_leaf(pruning, experiment, 1, 5) and is_leaf(pruning, experiment, 5, 5)
    assert is_leaf("oneshot", "ticket", 1, 5)  # one-shot rounds prune from the dense run
    assert not is_leaf("iterative", "ticket", 4, 5)  # round 5 prunes from it
    assert is_leaf("iterative", "ticket", 5, 5)


def test_only_leaves_get_leaf_patience():
    config = full_config({"device": "cpu", "leaf_patience": 7, "rounds": 3})
    assert job_leaf_patience(config, "ticket", 0, 3) is None
    assert job_leaf_patience(config, "ticket", 2, 3) is None
    assert job_leaf_patience(config, "ticket", 3, 3) == 7
    assert job_leaf_patience(config, "reinit_0", 1, 3) == 7
    unset = full_config({"device": "cpu", "rounds": 3})
    assert job_leaf_patience(unset, "reinit_0", 1, 3) is None  # null: the paper, every job trains all T


def test_the_last_round_is_the_last_of_every_configuration_sharing_the_pruning_key():
    """A study (or the current config beside it) with more rounds under the same key makes the
    round-3 ticket a job that round 4 prunes from."""
    short = full_config({"device": "cpu", "leaf_patience": 7, "rounds": 3})
    longer = full_config({"device": "cpu", "leaf_patience": 7, "rounds": 5, "controls": []})
    oneshot = full_config({"device": "cpu", "leaf_patience": 7, "rounds": 8, "pruning": "oneshot"})
    last = last_rounds([short, longer, oneshot])
    assert last == {lineage(short).prune: 5, lineage(oneshot).prune: 8}
    assert job_leaf_patience(short, "ticket", 3, last[lineage(short).prune]) is None
    assert last_rounds([short])[lineage(short).prune] == 3


def test_leaf_patience_keys_the_pruned_jobs_only_and_only_when_set():
    base = lineage(full_config({"device": "cpu"}))
    leaf = lineage(full_config({"device": "cpu", "leaf_patience": 10}))
    assert leaf.dense == base.dense  # the dense runs never stop early: shared
    assert leaf.prune != base.prune and leaf.prune_settings["leaf_patience"] == 10
    assert "leaf_patience" not in base.prune_settings  # so every earlier pruning key is unchanged


# --- through the workflow: the params each job gets, and what it trains -------------------------


@pytest.mark.workflow
@pytest.mark.bitwise
def test_leaf_patience_stops_leaves_only_and_more_rounds_retrain_the_former_last_ticket(tmp_path):
    data = make_small_mnist(tmp_path / "data")
    config = {**TINY_CONFIG, "data_source": str(data), "trials": 1, "rounds": 2, "iterations": 300,
              "eval_every": 10, "leaf_patience": 1}

    def result(cfg, experiment, round_):
        return json.loads(job_path(tmp_path, cfg, 0, experiment, round_, "result.json").read_text())

    run_snakemake(tmp_path, "--cores", "2", config=config)
    for experiment, round_ in (("ticket", 0), ("ticket", 1)):  # non-leaves: the weights at T are pruned
        r = result(config, experiment, round_)
        assert r["train_config"]["leaf_patience"] is None and r["iterations_run"] == 300, (experiment, round_)
        assert "leaf_stop_iteration" not in checkpoint.weights_meta(
            job_path(tmp_path, config, 0, experiment, round_, "model.pt"))
    leaves = [("reinit_0", 1), ("ticket", 2), ("reinit_0", 2)]
    for experiment, round_ in leaves:
        assert result(config, experiment, round_)["train_config"]["leaf_patience"] == 1
    stopped = [(e, r) for e, r in leaves if result(config, e, r)["iterations_run"] < 300]
    assert stopped, "patience 1 over 30 evaluations stopped no leaf"
    for e, r in stopped:
        meta = checkpoint.weights_meta(job_path(tmp_path, config, 0, e, r, "model.pt"))
        assert meta["leaf_stop_iteration"] == result(config, e, r)["final_iteration"]

    # One round more: the round-2 ticket is pruned from now, so it reruns and trains all of T.
    reinit = job_path(tmp_path, config, 0, "reinit_0", 2, "result.json")
    before = reinit.read_bytes(), reinit.stat().st_mtime_ns
    more = {**config, "rounds": 3}
    run_snakemake(tmp_path, "--cores", "2", config=more)
    again = result(more, "ticket", 2)
    assert again["train_config"]["leaf_patience"] is None and again["iterations_run"] == 300
    assert result(more, "ticket", 3)["train_config"]["leaf_patience"] == 1
    assert round_path(tmp_path, more, 0, 3, "mask.pt").is_file()
    assert (reinit.read_bytes(), reinit.stat().st_mtime_ns) == before  # a leaf still: not rerun


def test_pruning_refuses_weights_that_stopped_early_as_a_leaf(tmp_path):
    model = init_model("lenet_300_100", 0)
    stopped, full = tmp_path / "stopped.pt", tmp_path / "full.pt"
    checkpoint.save_weights(stopped, "lenet_300_100", model.state_dict(), {"leaf_stop_iteration": 1200})
    checkpoint.save_weights(full, "lenet_300_100", model.state_dict())
    cfg = PruneConfig(rate=0.2, output_rate=0.1, scope="layerwise")
    with pytest.raises(LTHError, match=r"stopped\.pt: round 3 would prune weights that stopped early at iteration "
                                       r"1200 \(leaf_patience") as info:
        make_ticket_mask("lenet_300_100", stopped, None, 3, cfg, tmp_path / "mask.pt")
    assert "\n" not in str(info.value) and not (tmp_path / "mask.pt").exists()
    make_ticket_mask("lenet_300_100", full, None, 3, cfg, tmp_path / "mask.pt")
    assert (tmp_path / "mask.pt").is_file()


# --- the audit ---------------------------------------------------------------------------------


# Validation losses with the minimum late (index 8, after six evaluations without a new one) and
# early (index 1); the test accuracy of evaluation i is 0.9 + i / 1000.
LATE = [1.0, 0.8, 0.85, 0.86, 0.87, 0.88, 0.89, 0.9, 0.5, 0.6, 0.7, 0.75]
EARLY = [1.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.96, 0.97, 0.98]


def write_run(folder):
    """curves.csv and summary.csv of a finished iterative run of 1 trial, 2 rounds with the reinit
    control, 12 evaluations of 100 iterations each: every job's minimum is late but one reinit's."""
    jobs = {("ticket", 0, 0, 0): LATE, ("ticket", 0, 0, 1): LATE, ("ticket", 0, 0, 2): LATE,
            ("reinit", 0, 0, 1): EARLY, ("reinit", 0, 0, 2): LATE}
    rows, summary = [], []
    for (experiment, replicate, trial, round_), losses in jobs.items():
        for i, loss in enumerate(losses):
            rows.append(dict(experiment=experiment, replicate=replicate, trial=trial, round=round_,
                             iteration=100 * (i + 1), train_loss=1.0, val_loss=loss, val_accuracy=0.9,
                             test_accuracy=0.9 + i / 1000))
        summary.append(dict(experiment=experiment, replicate=replicate, trial=trial, round=round_,
                            iterations_run=1200))
    folder.mkdir()
    pd.DataFrame(rows).to_csv(folder / "curves.csv", index=False)
    pd.DataFrame(summary).to_csv(folder / "summary.csv", index=False)
    return folder


def test_the_audit_reports_a_leaf_whose_late_minimum_a_small_patience_misses(tmp_path):
    jobs, _ = read_jobs(write_run(tmp_path / "run"), "iterative")
    leaves = {j.key: j for j in jobs if j.leaf}
    assert set(leaves) == {("ticket", 0, 0, 2), ("reinit", 0, 0, 1), ("reinit", 0, 0, 2)}  # not dense, not round 1
    small, large = audit_rows(jobs, [3, 7])
    # patience 3 stops the two late leaves at evaluation 4 (early stop 1, not 8); the early one at 4 too
    assert small["iteration_changed"] == 2 and small["accuracy_changed"] == 2
    assert small["largest_change"] == pytest.approx(0.007)
    assert small["saved"] == 3 * (1200 - 500)
    assert small["of_leaves"] == pytest.approx(3 * 700 / (3 * 1200))
    assert small["of_all"] == pytest.approx(3 * 700 / (5 * 1200))
    # patience 7 waits out the six evaluations: every early stop as in the full run
    assert large["iteration_changed"] == 0 and large["accuracy_changed"] == 0 and large["largest_change"] == 0
    assert large["saved"] == (1200 - 900) + 0 + 0  # the early leaf stops at evaluation 8; the late ones run out
    r = replay(leaves[("ticket", 0, 0, 2)], 3)
    assert (r["best"], r["stop"], r["iteration_changed"]) == (1, 4, True)


def test_the_audit_command_prints_the_table(tmp_path, capsys):
    folder = write_run(tmp_path / "run")
    assert main([str(folder), "--patience", "3", "7", "--pruning", "iterative"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("| 3 ") or line.startswith("| 7 ")]
    assert lines[0].startswith("| 3 | 3 | 2 | 2 | 0.70 | 2,100 | 58.3% | 35.0% |"), out
    assert lines[1].startswith("| 7 | 3 | 0 | 0 | 0.00 | 300 | 8.3% | 5.0% |"), out


def test_the_audit_reads_the_compressed_curves_of_an_assembled_study(tmp_path, capsys):
    folder = write_run(tmp_path / "run")
    assert main([str(folder), "--patience", "3", "--pruning", "iterative"]) == 0
    plain = capsys.readouterr().out
    curves = folder / "curves.csv"
    write_csv(pd.read_csv(curves), folder / "curves.csv.gz")
    curves.unlink()
    assert main([str(folder), "--patience", "3", "--pruning", "iterative"]) == 0
    assert capsys.readouterr().out == plain


def test_the_audit_refuses_a_run_that_stopped_early(tmp_path):
    folder = write_run(tmp_path / "run")
    curves = pd.read_csv(folder / "curves.csv")
    curves = curves[~((curves["experiment"] == "reinit") & (curves["round"] == 1) & (curves["iteration"] > 500))]
    curves.to_csv(folder / "curves.csv", index=False)
    with pytest.raises(SystemExit, match="ends at iteration 500, others at 1200: this command reads a run that "
                                         "trained every iteration"):
        main([str(folder), "--pruning", "iterative"])


def test_the_audit_finds_the_pruning_of_a_study_variant(tmp_path):
    from lth.patience_audit import folder_pruning

    (tmp_path / "config.yaml").write_text("pruning: iterative\nstudy:\n  name: s\n  variants:\n"
                                          "    one: {pruning: oneshot}\n    it: {prune_rate: 0.4}\n")
    for name in ("one", "it", "other"):
        (tmp_path / name).mkdir()
    assert folder_pruning(tmp_path / "one") == "oneshot"
    assert folder_pruning(tmp_path / "it") == "iterative"
    assert folder_pruning(tmp_path / "other") is None
