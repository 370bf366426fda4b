"""A long run in shards of whole trials, for machines that do not keep their files.

A run of many trials can outlast the machine it runs on (the evidence study: about 14 hours of 2
cores). Its trials are independent: a pruning trial (its dense run, every round, control and
variant) and a dense-only seed read nothing of another trial. So the run can go in shards of
whole trials, each run to its end by the same snakemake command with the shard's result.json
files as targets, on whatever machine is at hand. A finished shard leaves small files that are
all the summaries read: each job's result.json and curve.csv, the lineages' settings.json,
Snakemake's benchmark files and logs; ``pack`` puts them in one archive with a manifest (the
trials, the commit and numerics code that ran, the CPU), ``unpack`` lays the archives of every
shard into one run directory, refusing a file two shards made differently, and ``assemble``
makes from it what the workflow's study rules make (summary.csv, table.csv, claims, the
comparison figure) plus each variant's summary (lth.summarize), the effective config.yaml and a
provenance.json naming the shards. No checkpoint (model.pt, mask.pt, init.pt) goes into an archive.

    python3 -m lth.shards targets --configfile F [--config KEY=VALUE ...] --trials 0-1
    snakemake --cores 2 --configfile F ... $(python3 -m lth.shards targets --configfile F ... --trials 0-1)
    python3 -m lth.shards pack RUN_DIR ARCHIVE.tar.gz --configfile F ... --trials 0-1 [--code DIR]
    python3 -m lth.shards unpack RUN_DIR ARCHIVE.tar.gz ...
    python3 -m lth.shards assemble RUN_DIR OUT_DIR --configfile F ...

``--configfile`` and ``--config`` are layered on config.yaml as Snakemake layers them
(lth.store.load_config); trials are given as ``0-1``, ``13-56`` or ``2,5,7-9``.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import platform
import re
import tarfile
from pathlib import Path, PurePosixPath

import pandas as pd

from .errors import LTHError
from .fileio import write_text
from .lineage import RUNS, dense_trials, experiments, grid, job_dir, lineage

JOB_FILES = ("result.json", "curve.csv")  # what the summaries read of a training job
MANIFESTS = "shards"  # RUN_DIR/shards/<archive name>.json: one manifest per unpacked shard
CURVES = "curves.csv.gz"  # an assembled variant's curves: a long study's are tens of MB of CSV, a third gzipped
SNAKEMAKE_LOGS = (".snakemake", "log")  # one log per snakemake invocation, appended to as it runs
# An absolute path in a Snakemake log (the command line, the Snakefile, the config files): it names
# the machine the shard ran on, which a committed archive must not, so pack rewrites it.
ABSOLUTE_PATH = re.compile(r"(?<![\w.~/-])/(?:[\w.+~-]+/)*[\w.+~-]+")


def parse_trials(spec: str) -> list[int]:
    """``0-1``, ``13-56``, ``2,5,7-9`` -> sorted trial numbers (each once)."""
    trials: set[int] = set()
    try:
        for part in spec.split(","):
            first, sep, last = part.strip().partition("-")
            lo, hi = int(first), int(last) if sep else int(first)
            if lo < 0 or hi < lo:
                raise ValueError
            trials.update(range(lo, hi + 1))
    except ValueError:
        raise LTHError(f"--trials {spec!r}: expected trial numbers such as 0-1, 13-56 or 2,5,7-9") from None
    return sorted(trials)


def dag_configs(config: dict) -> dict[str, dict]:
    """The checked configurations whose jobs the workflow's default target makes: a study's
    variants, or the configuration itself ('')."""
    from .config import check_config, load_schema
    from .store import SCHEMA
    from .studies import study_variants

    schema = load_schema(SCHEMA)
    config = dict(config, data_source=None)  # the jobs' paths do not depend on where the data came from
    return study_variants(config, schema) or {"": check_config(config, schema)}


def shard_jobs(configs: dict[str, dict], trials: list[int]) -> list[str]:
    """The folder of every training job of ``trials`` in the DAG of ``configs``, each once: a
    trial's dense run, and, for a trial that starts a pruning chain, every round and control of
    every configuration. Trials beyond every configuration's dense runs are refused."""
    known = set().union(*(dense_trials(c) for c in configs.values()))
    beyond = [t for t in trials if t not in known]
    if beyond:
        raise LTHError(f"trial(s) {', '.join(map(str, beyond))}: the configuration has trials 0-{max(known)} "
                       "(trials + dense_seeds)")
    jobs: dict[str, None] = {}
    for c in configs.values():
        for t in trials:
            if t in dense_trials(c):
                jobs[job_dir(c, t, "ticket", 0)] = None
            if t < c["trials"]:
                for r in range(1, c["rounds"] + 1):
                    jobs.update(dict.fromkeys(job_dir(c, t, e, r) for e in experiments(c)))
    return list(jobs)


def targets(configs: dict[str, dict], trials: list[int]) -> list[str]:
    """The result.json of every job of a shard: snakemake's targets, which it makes with all
    they need (inits, masks, the earlier rounds) and nothing of the other trials."""
    return [f"{d}/result.json" for d in shard_jobs(configs, trials)]


def _side_file(job: str, top: str, suffix: str) -> str:
    """A job's benchmark (``benchmarks``, ``.tsv``) or log (``logs``, ``.log``) file: the job's
    folder under ``top`` instead of ``results``, as workflow/rules/lottery.smk names them."""
    return top + "/" + job.removeprefix("results/") + suffix


def shard_files(run_dir: Path, configs: dict[str, dict], trials: list[int]) -> list[str]:
    """Every file of a shard's archive (relative to ``run_dir``), after checking that every job
    finished: the jobs' result.json and curve.csv, their benchmark files, the lineages'
    settings.json and Snakemake's logs of the run directory."""
    jobs = shard_jobs(configs, trials)
    missing = [j for j in jobs if not (run_dir / j / "result.json").is_file()]
    if missing:
        raise LTHError(f"{len(missing)} of the shard's {len(jobs)} training jobs have not finished (first: {missing[0]}); "
                       "run the snakemake command with `python3 -m lth.shards targets` again before packing")
    files = [f"{j}/{name}" for j in jobs for name in JOB_FILES]
    files += [b for j in jobs if (run_dir / (b := _side_file(j, "benchmarks", ".tsv"))).is_file()]
    for c in configs.values():
        lin = lineage(c)
        files += [f"{RUNS}/{lin.dense}/settings.json", f"{RUNS}/{lin.dense}/{lin.prune}/settings.json"]
    files += sorted(str(p.relative_to(run_dir)) for p in (run_dir / ".snakemake" / "log").glob("*.snakemake.log"))
    return [f for f in dict.fromkeys(files) if (run_dir / f).is_file()]


def cpu_model() -> str:
    """The CPU's model name (Linux), else what platform knows: low bits of the numbers depend on it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _places(run_dir: Path, code_dir: str | Path | None) -> dict[str, Path]:
    return {"RUN_DIR": Path(run_dir), **({"CODE_DIR": Path(code_dir)} if code_dir else {})}


def manifest(run_dir: Path, configs: dict[str, dict], trials: list[int], code_dir: Path | None) -> dict:
    from .aggregate import code_versions
    from .provenance import PACKAGES, _version, git_state

    jobs = shard_jobs(configs, trials)
    checksums = run_dir / "resources" / "mnist" / "checksums.json"
    data = json.loads(checksums.read_text()) if checksums.is_file() else None
    if data and data.get("source"):  # the folder the data came from, on that machine
        data["source"] = neutral_path(str(data["source"]), _places(run_dir, code_dir))
    return {
        "trials": trials,
        "training_jobs": len(jobs),
        "git": git_state(code_dir) if code_dir else {},
        "code_versions": sorted(code_versions([run_dir / j / "result.json" for j in jobs])),
        "cpu": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "data": data,
        "packed": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def neutral_path(path: str, places: dict[str, Path]) -> str:
    """An absolute path made machine-neutral: below a folder of ``places``, that folder's name
    (``RUN_DIR/results/...``); any other, ``/path/to/<its last part>``. A relative path names no
    machine and is returned as it is."""
    if not path.startswith("/"):
        return path
    for name, root in sorted(((n, str(Path(d).resolve())) for n, d in places.items()), key=lambda r: -len(r[1])):
        if path == root or path.startswith(root + "/"):
            return name + path[len(root) :]
    return "/path/to/" + path.rstrip("/").rsplit("/", 1)[-1]


def redact_paths(text: str, places: dict[str, Path]) -> str:
    """``text`` with every absolute path made machine-neutral (``neutral_path``). An unfinished
    last line (a log still being written) is left out, so that a log packed early stays a prefix
    of the same log packed later (unpack keeps the longer)."""
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return ABSOLUTE_PATH.sub(lambda match: neutral_path(match.group(0), places), text)


def archive_name(archive: Path) -> str:
    return archive.name.removesuffix(".gz").removesuffix(".tar")


def training_cpu_seconds(tar: tarfile.TarFile) -> float:
    """The CPU time of an archive's training jobs: the sum of their Snakemake benchmarks'
    ``cpu_time``, the figure a shard's row in its study's README gives."""
    return sum(pd.read_csv(tar.extractfile(n), sep="\t")["cpu_time"].sum()
               for n in tar.getnames() if n.startswith("benchmarks/") and n.endswith(".tsv"))


def readme_row(archive: str | Path) -> str:
    """The archive's row of the shards' README table: name, trials, training jobs, CPU, training
    CPU time."""
    archive = Path(archive)
    with tarfile.open(archive) as tar:
        info = json.loads(tar.extractfile(f"{MANIFESTS}/{archive_name(archive)}.json").read())
        seconds = training_cpu_seconds(tar)
    cells = [archive.name, ", ".join(map(str, info["trials"])), str(info["training_jobs"]), info["cpu"],
             f"{round(seconds):,} s"]
    return "| " + " | ".join(cells) + " |"


def pack(run_dir: str | Path, archive: str | Path, configs: dict[str, dict], trials: list[int],
         code_dir: str | Path | None = None) -> dict:
    """Write the shard's archive (a .tar.gz) and return its manifest, also stored inside it as
    ``shards/<archive name>.json``."""
    run_dir, archive = Path(run_dir), Path(archive)
    files = shard_files(run_dir, configs, trials)
    info = manifest(run_dir, configs, trials, Path(code_dir) if code_dir else None)
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(archive.name + ".tmp")
    places = _places(run_dir, code_dir)
    now = int(datetime.datetime.now().timestamp())

    def add(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
        entry = tarfile.TarInfo(name)
        entry.size, entry.mtime = len(data), mtime
        tar.addfile(entry, io.BytesIO(data))

    with tarfile.open(tmp, "w:gz") as tar:
        for f in files:
            if PurePosixPath(f).parts[:2] == SNAKEMAKE_LOGS:
                text = (run_dir / f).read_text(errors="replace")
                add(tar, f, redact_paths(text, places).encode(), int((run_dir / f).stat().st_mtime))
            else:
                tar.add(run_dir / f, arcname=f, recursive=False)
        add(tar, f"{MANIFESTS}/{archive_name(archive)}.json", json.dumps(info, indent=2).encode() + b"\n", now)
    tmp.replace(archive)  # a killed pack leaves no archive that looks whole
    return info


def unpack(run_dir: str | Path, archives: list[str | Path]) -> int:
    """Lay the archives' files into ``run_dir``; returns how many were written. A file already
    there with the same bytes is skipped (two shards packed from one run directory share its
    settings and logs), and of two versions of a Snakemake log the longer one is kept (one shard
    was packed while the invocation went on); any other file with other bytes is refused, since
    two shards then made one job."""
    run_dir = Path(run_dir)
    written = 0
    for archive in archives:
        try:
            tar = tarfile.open(archive, "r:gz")
        except (OSError, tarfile.TarError) as err:
            raise LTHError(f"{archive}: not a shard archive ({err})") from None
        with tar:
            for member in tar.getmembers():
                name = PurePosixPath(member.name)
                if not member.isfile() or name.is_absolute() or ".." in name.parts:
                    raise LTHError(f"{archive}: {member.name!r} is not a plain file inside the run directory")
                data = tar.extractfile(member).read()
                target = run_dir / name
                if target.is_file():
                    old = target.read_bytes()
                    if name.parts[:2] == SNAKEMAKE_LOGS and (old.startswith(data) or data.startswith(old)):
                        # Snakemake appends to a run's log: a shard packed while it ran holds a beginning
                        if len(data) > len(old):
                            target.write_bytes(data)
                            written += 1
                        continue
                    if old != data:
                        raise LTHError(f"{archive}: {member.name} differs from the file already in {run_dir} "
                                       "(two shards trained the same job?)")
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                written += 1
    return written


def read_manifests(run_dir: str | Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((Path(run_dir) / MANIFESTS).glob("*.json"))}


def _one(manifests: dict[str, dict], key: str, what: str, value=None):
    """The one value of ``key`` (or of ``value(manifest)``) that every shard shares."""
    value = value or (lambda m: m[key])
    values = {json.dumps(value(m), sort_keys=True) for m in manifests.values()}
    if len(values) > 1:
        shown = "; ".join(f"{name}: {json.dumps(value(m), sort_keys=True)}" for name, m in manifests.items())
        raise LTHError(f"the shards ran different {what} ({shown}): they are not one run")
    return json.loads(values.pop()) if values else None


RULES = "src/lth/claims.py"


def rules_blob(repo: str | Path, commit: str) -> str | None:
    """The git object id of the claims' rules at ``commit`` of ``repo`` (None where unknown)."""
    import subprocess

    try:
        return subprocess.run(["git", "-C", str(repo), "rev-parse", f"{commit}:{RULES}"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def scoring_note(run_git: dict, scorer_git: dict, same_rules: bool) -> str:
    """Which rules judged an assembled run: the jobs ran ``run_git``'s commit, the assembly scores
    them with the code of ``scorer_git``. Where the rules file is the same at both commits, the
    run's commit is named (a run started after it tests the rules as fixed before it); otherwise
    the verdicts are labelled as the later rules' after the fact."""
    from .claims import rules_note

    if not run_git or not scorer_git or scorer_git.get("dirty") or not same_rules:
        scorer = (scorer_git or {}).get("commit", "?")[:12]
        return (f"**Scored after the fact.** The jobs ran commit {(run_git or {}).get('commit', '?')[:12]}; these "
                f"verdicts are those of {RULES} at commit {scorer}"
                f"{', with uncommitted changes' if (scorer_git or {}).get('dirty') else ''}, "
                "which differs from it or could not be compared.")
    return rules_note(run_git) + (f" The assembly (commit {scorer_git['commit'][:12]}) scored them with the same "
                                  f"{RULES}.")


def assemble(run_dir: str | Path, out_dir: str | Path, config: dict) -> list:
    """A study's outputs from an assembled run directory, as the workflow's study rules and
    ``lth.summarize`` make them, and a provenance.json with every shard's manifest. Refuses a run
    that lacks a job of the configuration, or whose shards ran different code or data."""
    from .plots import plot_comparison
    from .provenance import git_state
    from .store import ROOT
    from .studies import varied_settings, write_study
    from .summarize import summarize

    run_dir, out = Path(run_dir), Path(out_dir)
    study = config.get("study")
    if not study:
        raise LTHError("assemble makes a study's outputs: the configuration has no `study`")
    configs = dag_configs(config)
    manifests = read_manifests(run_dir)
    if not manifests:
        raise LTHError(f"{run_dir} holds no unpacked shard ({MANIFESTS}/*.json): `python3 -m lth.shards unpack` first")
    git = _one(manifests, "git", "commits")
    _one(manifests, "code_versions", "numerics code")
    # the data's bytes, not the folder they were read from on each machine
    _one(manifests, "data", "data", value=lambda m: (m.get("data") or {}).get("sha256"))
    results = {name: [run_dir / p for p in grid(c, "result.json")] for name, c in configs.items()}
    missing = sorted({str(p.relative_to(run_dir)) for paths in results.values() for p in paths if not p.is_file()})
    if missing:
        raise LTHError(f"{len(missing)} training jobs of the configuration are in no shard (first: {missing[0]})")
    shards = "Assembled from {} shards of whole trials (lth.shards): {}.".format(
        len(manifests), "; ".join(f"{name}: trials {_span(m['trials'])} on {m['cpu']}" for name, m in manifests.items()))
    files = {"summary": out / "summary.csv", "table": out / "table.csv", "claims_csv": out / "claims.csv",
             "claims_md": out / "claims.md"}
    scorer = git_state(ROOT)
    run_rules = rules_blob(ROOT, git["commit"]) if git else None
    same = run_rules is not None and scorer and run_rules == rules_blob(ROOT, scorer["commit"])
    note = scoring_note(git, scorer, same) + " " + shards
    _, verdicts = write_study(results, configs, study["name"], files, note=note)
    plot_comparison(pd.read_csv(files["table"]), out / "comparison.png",
                    f"study {study['name']}: {', '.join(varied_settings(configs))} varied")
    for name, c in configs.items():
        lin = lineage(c)
        summarize(run_dir, out / name, c["pruning"], f"{lin.dense}/{lin.prune}", curves_name=CURVES, note=note)
    write_text(out / "config.yaml", effective_config_yaml(config))
    provenance = {"config": dict(sorted(config.items())), "git": git, "assembled_by": scorer, "shards": manifests,
                  "scoring_note": note}
    write_text(out / "provenance.json", json.dumps(provenance, indent=2, default=str) + "\n")
    return verdicts


def effective_config_yaml(config: dict) -> str:
    """The study's effective config.yaml, as ``python3 -m lth.summarize --rescore`` (and
    tests/test_evidence.py) read a committed study's: the data folder of the machine that ran it
    is written as ``/path/to/<name>`` (a relative one as given), since the file is committed."""
    import yaml

    config = dict(config)
    if config.get("data_source"):
        config["data_source"] = neutral_path(str(config["data_source"]), {})
    return ("# The effective config of this study: config.yaml, then the --configfile and --config given\n"
            "# to its run and to `python3 -m lth.shards assemble` (the same), as Snakemake layers them.\n"
            + yaml.safe_dump(config, sort_keys=False))


def _span(trials: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'."""
    runs, start = [], None
    for i, t in enumerate(trials):
        if start is None:
            start = t
        if i + 1 == len(trials) or trials[i + 1] != t + 1:
            runs.append(f"{start}-{t}" if t != start else f"{t}")
            start = None
    return ", ".join(runs)


def main(argv=None) -> int:
    from .store import load_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p):
        p.add_argument("--configfile", action="append", default=[], help="as snakemake's, layered on config.yaml")
        p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help="as snakemake's")

    p = sub.add_parser("targets", help="print the result.json of every job of the trials (snakemake's targets)")
    with_config(p)
    p.add_argument("--trials", required=True)
    p = sub.add_parser("pack", help="archive a finished shard's small files")
    p.add_argument("run_dir")
    p.add_argument("archive")
    with_config(p)
    p.add_argument("--trials", required=True)
    p.add_argument("--code", default=None, help="the checkout that ran (its commit goes into the manifest)")
    p = sub.add_parser("unpack", help="lay shard archives into one run directory")
    p.add_argument("run_dir")
    p.add_argument("archives", nargs="+")
    p = sub.add_parser("assemble", help="a study's outputs from an assembled run directory")
    p.add_argument("run_dir")
    p.add_argument("out_dir")
    with_config(p)
    args = parser.parse_args(argv)
    try:
        if args.command == "unpack":
            print(f"{unpack(args.run_dir, args.archives)} files written into {args.run_dir}")
            return 0
        config = load_config(args.configfile, args.config)
        if args.command == "targets":
            print("\n".join(targets(dag_configs(config), parse_trials(args.trials))))
        elif args.command == "pack":
            info = pack(args.run_dir, args.archive, dag_configs(config), parse_trials(args.trials), args.code)
            print(f"{args.archive}: {info['training_jobs']} training jobs of trials {_span(info['trials'])}")
            print(readme_row(args.archive))  # the row its study's shards README lists
        else:
            verdicts = assemble(args.run_dir, args.out_dir, config)
            print(f"{args.out_dir}: " + ", ".join(f"{v.claim_id}:{v.verdict}" for v in verdicts))
    except LTHError as err:
        raise SystemExit(f"error: {err}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
