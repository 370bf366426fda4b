"""A run in shards of whole trials (lth.shards): the shards partition the DAG's training jobs, each
runs with snakemake alone, and their archives, laid into one run directory, give the same study
outputs as one run of the whole configuration."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lth import shards
from lth.claims import claims_markdown, claims_table, evaluate_claims
from lth.errors import LTHError
from lth.lineage import grid_dirs, lineage
from lth.store import load_config
from lth.studies import rescore_study
from lth.summarize import summarize

from conftest import ROOT, TINY_CONFIG, make_small_mnist, run_snakemake

EVIDENCE = ROOT / "config" / "studies" / "evidence.yaml"


# --- plain functions ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, trials", [("0", [0]), ("0-2", [0, 1, 2]), ("5,1-2,2", [1, 2, 5]), ("13-13", [13])])
def test_trial_specs(spec, trials):
    assert shards.parse_trials(spec) == trials


@pytest.mark.parametrize("spec", ["", "a", "2-1", "-1", "1-", "0;1"])
def test_bad_trial_specs_are_refused_in_one_line(spec):
    with pytest.raises(LTHError, match="--trials"):
        shards.parse_trials(spec)


def test_shards_of_single_trials_partition_the_evidence_runs_jobs():
    """Every training job of every variant is in exactly one trial's shard: a pruning trial's
    shard holds its dense run and every round of both variants, a dense-only seed's its dense run."""
    configs = shards.dag_configs(load_config([str(EVIDENCE)]))
    every = {d for c in configs.values() for d in grid_dirs(c)}
    per_trial = {t: shards.shard_jobs(configs, [t]) for t in range(57)}
    assert sum(len(jobs) for jobs in per_trial.values()) == len(every) == 1227
    assert set().union(*map(set, per_trial.values())) == every
    assert len(per_trial[0]) == 1 + 18 * 4 + 18  # dense, iterative ticket + 3 reinits, one-shot ticket
    assert all(f"trial_{0}/" in d for d in per_trial[0])
    assert per_trial[13] == [d for d in every if "trial_13/" in d] and len(per_trial[13]) == 1  # dense-only
    assert shards.targets(configs, [0, 13])[0].endswith("trial_0/dense/result.json")
    with pytest.raises(LTHError, match="trial.s. 57: the configuration has trials 0-56"):
        shards.shard_jobs(configs, [56, 57])


def _archive(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    return path


def test_unpack_skips_identical_files_and_refuses_different_ones(tmp_path):
    run = tmp_path / "run"
    a = _archive(tmp_path / "a.tar.gz", {"results/runs/x/settings.json": b"{}", "results/runs/x/t0/result.json": b"1"})
    b = _archive(tmp_path / "b.tar.gz", {"results/runs/x/settings.json": b"{}", "results/runs/x/t1/result.json": b"2"})
    assert shards.unpack(run, [a, b]) == 3  # the shared settings once
    assert (run / "results/runs/x/t1/result.json").read_bytes() == b"2"
    c = _archive(tmp_path / "c.tar.gz", {"results/runs/x/t0/result.json": b"other"})
    with pytest.raises(LTHError, match="t0/result.json differs from the file already in"):
        shards.unpack(run, [c])
    assert (run / "results/runs/x/t0/result.json").read_bytes() == b"1"


def test_unpack_keeps_the_longer_of_two_versions_of_a_snakemake_log_and_no_other_file(tmp_path):
    log = ".snakemake/log/2026-01-01T000000.snakemake.log"
    early = _archive(tmp_path / "early.tar.gz", {log: b"job 1 done\n"})
    late = _archive(tmp_path / "late.tar.gz", {log: b"job 1 done\njob 2 done\n"})
    for order in ([early, late], [late, early]):
        run = tmp_path / f"run_{order[0].stem}"
        shards.unpack(run, order)
        assert (run / log).read_bytes() == b"job 1 done\njob 2 done\n"
    other = _archive(tmp_path / "other.tar.gz", {log: b"job 3 done\n"})
    with pytest.raises(LTHError, match="differs"):
        shards.unpack(tmp_path / "run_late.tar", [other])
    grown = _archive(tmp_path / "grown.tar.gz", {"results/x/curve.csv": b"a\nb\n"})
    with pytest.raises(LTHError, match="differs"):
        shards.unpack(tmp_path / "r", [_archive(tmp_path / "first.tar.gz", {"results/x/curve.csv": b"a\n"}), grown])


def test_a_packed_snakemake_log_names_no_path_of_the_machine(tmp_path):
    run, code = tmp_path / "run", tmp_path / "code"
    text = (f"Command: /opt/py/bin/snakemake -s {code}/Snakefile --configfile {code}/config/x.yaml "
            f"--config data_source=/data/mnist results/runs/d/trial_1/dense/result.json\n"
            f"Config file {code}/workflow/rules/../../config.yaml is extended\n"
            f"Complete log: {run}/.snakemake/log/a.log\nratio 1/3 and trial_1/dense stay\n"
            f"partial line being written {run}/resu")
    got = shards.redact_paths(text, {"RUN_DIR": run, "CODE_DIR": code})
    assert str(tmp_path) not in got and "/opt" not in got and "/data/" not in got
    assert "Command: /path/to/snakemake -s CODE_DIR/Snakefile --configfile CODE_DIR/config/x.yaml" in got
    assert "data_source=/path/to/mnist results/runs/d/trial_1/dense/result.json\n" in got
    assert "Complete log: RUN_DIR/.snakemake/log/a.log\nratio 1/3 and trial_1/dense stay\n" in got
    assert got.endswith("stay\n")  # the unfinished line is left out: a later pack's log extends this one
    assert shards.redact_paths(text + "lts/x.json\n", {"RUN_DIR": run, "CODE_DIR": code}).startswith(got)


@pytest.mark.parametrize("name", ["../outside.json", "/abs.json"])
def test_unpack_refuses_paths_outside_the_run_directory(tmp_path, name):
    archive = _archive(tmp_path / "bad.tar.gz", {name: b"x"})
    with pytest.raises(LTHError, match="not a plain file inside the run directory"):
        shards.unpack(tmp_path / "run", [archive])
    assert not (tmp_path / "outside.json").exists()


def test_unpack_refuses_a_file_that_is_no_archive(tmp_path):
    (tmp_path / "x.tar.gz").write_text("not gzip")
    with pytest.raises(LTHError, match="not a shard archive"):
        shards.unpack(tmp_path / "run", [tmp_path / "x.tar.gz"])


def test_an_unfinished_shard_is_not_packed(tmp_path):
    configs = shards.dag_configs(load_config([str(EVIDENCE)]))
    with pytest.raises(LTHError, match="91 of the shard's 91 training jobs have not finished"):
        shards.pack(tmp_path, tmp_path / "s.tar.gz", configs, [0])
    assert not (tmp_path / "s.tar.gz").exists()


def test_shards_that_ran_different_code_are_not_assembled(tmp_path):
    for name, commit in (("a", "1" * 40), ("b", "2" * 40)):
        path = tmp_path / "shards" / f"{name}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps({"git": {"commit": commit, "dirty": False}, "code_versions": ["c"], "data": None,
                                    "trials": [0], "cpu": "x"}))
    with pytest.raises(LTHError, match="the shards ran different commits"):
        shards.assemble(tmp_path, tmp_path / "out", load_config([str(EVIDENCE)]))


@pytest.mark.parametrize("other, error", [({"sha256": {"f": "1"}, "source": "https://mirror"}, "training jobs of the"),
                                          ({"sha256": {"f": "2"}, "source": "/path/to/mnist"}, "different data")])
def test_shards_must_have_read_the_same_data_bytes_from_wherever(tmp_path, other, error):
    """The data's checksums decide, not the folder or mirror each machine read them from."""
    for name, data in (("a", {"sha256": {"f": "1"}, "source": "/path/to/mnist"}), ("b", other)):
        path = tmp_path / "shards" / f"{name}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps({"git": {"commit": "1" * 40, "dirty": False}, "code_versions": ["c"], "data": data,
                                    "trials": [0], "cpu": "x"}))
    with pytest.raises(LTHError, match=error):
        shards.assemble(tmp_path, tmp_path / "out", load_config([str(EVIDENCE)]))


def test_an_assembly_names_the_runs_commit_only_where_its_rules_are_the_ones_that_ran():
    run, later = {"commit": "a" * 40, "dirty": False}, {"commit": "b" * 40, "dirty": False}
    same = shards.scoring_note(run, later, same_rules=True)
    assert "src/lth/claims.py at commit aaaaaaaaaaaa" in same and "(commit bbbbbbbbbbbb) scored them with the same" in same
    assert "after the fact" not in same
    for note in (shards.scoring_note(run, later, same_rules=False),
                 shards.scoring_note(run, {**later, "dirty": True}, same_rules=True),
                 shards.scoring_note({}, later, same_rules=True)):
        assert note.startswith("**Scored after the fact.**") and "bbbbbbbbbbbb" in note


def test_the_rules_are_compared_by_their_file_at_each_commit(tmp_path):
    import subprocess

    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    rules = tmp_path / "src" / "lth" / "claims.py"
    rules.parent.mkdir(parents=True)
    commits = []
    for text, other in (("rule 1", "a"), ("rule 1", "b"), ("rule 2", "b")):
        rules.write_text(text)
        (tmp_path / "other.txt").write_text(other)
        git("add", "-A")
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
        commits.append(git("rev-parse", "HEAD").strip())
    blobs = [shards.rules_blob(tmp_path, c) for c in commits]
    assert blobs[0] == blobs[1] != blobs[2]
    assert shards.rules_blob(tmp_path, "0" * 40) is None


def test_every_committed_evidence_shard_is_the_one_its_readme_lists():
    """The shards' README lists what has run; each archive it names is in the checkout, whole,
    with the trials, jobs, CPU and training CPU time its row gives, from the design's commit (a
    listed archive that never reached a commit fails here on a clean clone)."""
    folder = ROOT / "results" / "studies" / "evidence" / "shards"
    if not (folder / "README.md").is_file():
        pytest.skip("no shard of the evidence run yet")
    lines = [line for line in (folder / "README.md").read_text().splitlines() if line.startswith("| trials_")]
    rows = [line.split("|")[1:-1] for line in lines]
    # Each row is the one `lth.shards pack` printed for its archive.
    assert lines == [shards.readme_row(folder / name.strip()) for name, *_ in rows]
    assert sorted(name.strip() for name, *_ in rows) == sorted(p.name for p in folder.glob("*.tar.gz"))
    configs = shards.dag_configs(load_config([str(EVIDENCE)]))
    for name, spec, jobs, cpu, cpu_time in (map(str.strip, row) for row in rows):
        with tarfile.open(folder / name) as tar:
            info = json.loads(tar.extractfile(f"shards/{shards.archive_name(folder / name)}.json").read())
            results = [n for n in tar.getnames() if n.endswith("/result.json")]
            seconds = shards.training_cpu_seconds(tar)  # the sum of the jobs' benchmarks' cpu_time
        trials = shards.parse_trials(spec.replace(" ", ""))
        assert info["trials"] == trials and info["training_jobs"] == int(jobs) == len(results)
        assert (info["cpu"], f"{round(seconds):,} s") == (cpu, cpu_time), name
        assert sorted(results) == sorted(f"{job}/result.json" for job in shards.shard_jobs(configs, trials))
        assert info["git"]["commit"].startswith("622a37b") and not info["git"]["dirty"]


# --- a small study in shards against the same study in one run -----------------------------------

STUDY = {
    "trials": 2,
    "dense_seeds": 1,
    "rounds": 2,
    "controls": ["reinit"],
    "reinit_per_ticket": 2,
    "study": {"name": "sharded", "variants": {"iterative": {"pruning": "iterative"},
                                              "oneshot": {"pruning": "oneshot", "controls": [],
                                                          "reinit_per_ticket": 1}}},
}


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    return make_small_mnist(tmp_path_factory.mktemp("shards_data") / "mnist")


@pytest.fixture(scope="module")
def sharded(tmp_path_factory, small_data) -> dict:
    """The study run whole, and in two shards on two run directories (trials 0 and 2, the
    dense-only seed; trial 1), packed, unpacked into a third and assembled."""
    base = tmp_path_factory.mktemp("sharded")
    configfile = base / "study.yaml"
    tiny = {k: v for k, v in TINY_CONFIG.items() if k not in ("trials", "rounds")}
    configfile.write_text(yaml.safe_dump({**tiny, **STUDY}))
    overrides = {"data_source": str(small_data)}
    whole = base / "whole"
    whole.mkdir()
    run_snakemake(whole, "--cores", "2", configfile=configfile, config=overrides)
    configs = shards.dag_configs(load_config([str(configfile)], [f"data_source={small_data}"]))
    archives = []
    for name, trials in (("a", [0, 2]), ("b", [1])):
        run = base / name
        run.mkdir()
        run_snakemake(run, "--cores", "2", *shards.targets(configs, trials), configfile=configfile, config=overrides)
        archives.append(base / f"shard_{name}.tar.gz")
        shards.pack(run, archives[-1], configs, trials, code_dir=ROOT)
    assembled = base / "assembled"
    shards.unpack(assembled, archives)
    out = base / "out"
    config = load_config([str(configfile)], [f"data_source={small_data}"])
    verdicts = shards.assemble(assembled, out, config)
    return {"base": base, "whole": whole / "results" / "studies" / "sharded", "out": out, "archives": archives,
            "verdicts": verdicts, "configs": configs, "config": config}


@pytest.mark.workflow
def test_a_shard_runs_only_its_own_trials(sharded):
    b = sharded["base"] / "b"
    trained = {p.parent.parent.name if p.parent.name == "dense" else p.parents[2].name
               for p in (b / "results" / "runs").rglob("result.json")}
    assert trained == {"trial_1"}
    assert not list(b.glob("results/studies/*"))  # no study output: its targets were the jobs


@pytest.mark.workflow
def test_shard_archives_hold_the_small_files_and_no_checkpoint(sharded):
    names = [m.name for m in tarfile.open(sharded["archives"][0]).getmembers()]
    assert not [n for n in names if n.endswith(".pt")]
    results = [n for n in names if n.endswith("result.json")]
    assert len(results) == 2 + 2 * (1 + 2) + 2  # two dense runs, trial 0's iterative and one-shot rounds
    assert all(n.replace("result.json", "curve.csv") in names for n in results)
    assert len([n for n in names if n.startswith("benchmarks/") and n.endswith(".tsv")]) == len(results)
    info = json.loads(tarfile.open(sharded["archives"][0]).extractfile("shards/shard_a.json").read())
    assert info["trials"] == [0, 2] and info["training_jobs"] == len(results)
    assert len(info["git"]["commit"]) == 40 and info["cpu"]
    assert info["data"]["source"] == "/path/to/mnist" and len(info["data"]["sha256"]) == 4
    with tarfile.open(sharded["archives"][0]) as tar:  # committed archives name no machine's path
        logs = [tar.extractfile(n).read().decode() for n in names if n.startswith(".snakemake/log/")]
    assert logs and all("Finished job" in log for log in logs)
    assert not [log for log in logs if str(sharded["base"]) in log or str(ROOT) in log]


@pytest.mark.workflow
@pytest.mark.bitwise
@pytest.mark.parametrize("name", ["summary.csv", "table.csv", "claims.csv"])
def test_an_assembled_study_is_the_study_of_one_run(sharded, name):
    """Each job's numbers depend on its trial's seeds only, so the shards' jobs are the whole run's
    (made here, on one CPU, both sides); the dense-only seed is flagged in the assembled summary."""
    got, want = pd.read_csv(sharded["out"] / name), pd.read_csv(sharded["whole"] / name)
    pd.testing.assert_frame_equal(got, want)
    if name == "summary.csv":
        assert got.loc[got["trial"] == 2, "dense_only"].all() and not got.loc[got["trial"] < 2, "dense_only"].any()
        assert len(got) == (3 + 2 * 2 * 3) + (3 + 2 * 2)  # each variant: the 3 dense runs, then its rounds


@pytest.mark.workflow
def test_an_assembled_study_names_its_shards_and_writes_each_variants_summary(sharded):
    out = sharded["out"]
    text = (out / "claims.md").read_text()
    assert "Assembled from 2 shards of whole trials (lth.shards): shard_a: trials 0, 2 on" in text
    assert "; shard_b: trials 1 on" in text
    commit = json.loads(tarfile.open(sharded["archives"][0]).extractfile("shards/shard_a.json").read())["git"]["commit"]
    assert f"at commit {commit[:12]}" in text or f"The jobs ran commit {commit[:12]}" in text
    provenance = json.loads((out / "provenance.json").read_text())
    assert sorted(provenance["shards"]) == ["shard_a", "shard_b"]
    assert provenance["config"]["study"]["name"] == "sharded"
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for variant in ("iterative", "oneshot"):
        summary = pd.read_csv(out / variant / "summary.csv")
        assert set(summary["trial"]) == {0, 1, 2}
        assert (out / variant / "plots" / "accuracy.png").is_file()


@pytest.mark.workflow
@pytest.mark.bitwise
def test_an_assembled_studys_claims_are_what_the_rules_make_of_its_summary_and_config(sharded):
    """The assembly writes the effective config.yaml (no machine's data folder) and keeps its scoring
    note in provenance.json: from them and summary.csv the rules remake claims.md and claims.csv, as
    tests/test_evidence.py checks the committed evidence study."""
    out = sharded["out"]
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["data_source"] == "/path/to/mnist"
    assert {k: v for k, v in config.items() if k != "data_source"} == {
        k: v for k, v in sharded["config"].items() if k != "data_source"}
    note = json.loads((out / "provenance.json").read_text())["scoring_note"]
    verdicts, text = rescore_study(pd.read_csv(out / "summary.csv"), out / "config.yaml", note=note)
    assert text == (out / "claims.md").read_text()
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(claims_table(verdicts).to_csv(index=False))),
                                  pd.read_csv(out / "claims.csv"))
    for variant in ("iterative", "oneshot"):  # each variant's claims, under the same note
        verdicts = evaluate_claims(pd.read_csv(out / variant / "summary.csv"), variant)
        assert claims_markdown(verdicts, note=note) == (out / variant / "claims.md").read_text()


@pytest.mark.workflow
@pytest.mark.bitwise
@pytest.mark.parametrize("variant", ["iterative", "oneshot"])
def test_an_assembled_variants_curves_are_the_whole_runs_compressed(sharded, variant, tmp_path):
    """curves.csv.gz (gzip, read by pandas as it is) holds every evaluation of the variant's jobs,
    as lth.summarize writes them for the same study run whole on this CPU."""
    lin = lineage(sharded["configs"][variant])
    summarize(sharded["base"] / "whole", tmp_path, variant, f"{lin.dense}/{lin.prune}")
    path = sharded["out"] / variant / "curves.csv.gz"
    assert path.read_bytes()[:2] == b"\x1f\x8b" and not (sharded["out"] / variant / "curves.csv").exists()
    pd.testing.assert_frame_equal(pd.read_csv(path), pd.read_csv(tmp_path / "curves.csv"))


@pytest.mark.workflow
def test_a_job_no_shard_holds_stops_the_assembly(sharded, tmp_path):
    shards.unpack(tmp_path, sharded["archives"][:1])
    with pytest.raises(LTHError, match=r"training jobs of the configuration are in no shard \(first: .*trial_1/"):
        shards.assemble(tmp_path, tmp_path / "out", sharded["config"])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("source, written", [("../shared/mnist", "../shared/mnist"), ("/srv/data/mnist", "/path/to/mnist")])
def test_the_effective_config_keeps_a_relative_data_folder_and_hides_an_absolute_one(source, written):
    config = yaml.safe_load(shards.effective_config_yaml({"data_source": source, "trials": 2}))
    assert config == {"data_source": written, "trials": 2}
