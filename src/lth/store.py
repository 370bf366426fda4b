"""The lineage store (``results/runs/``): list what it holds, name a configuration's keys, and
delete the files of variants no longer wanted, and only those.

    python3 -m lth.store list [--run-dir DIR]
    python3 -m lth.store keys [--configfile FILE ...] [--config KEY=VALUE ...]
    python3 -m lth.store remove KEY [KEY ...] [--run-dir DIR] [--yes]

``list`` prints every lineage with its finished training jobs, size on disk and the settings
that differ from the repository's config.yaml. ``keys`` prints the lineage of a configuration
(config.yaml, then each ``--configfile``, then ``--config``, as Snakemake layers them) and of
each variant of its study. ``remove`` deletes a lineage's folders under results/runs, logs/runs
and benchmarks/runs (a dense key with every pruning lineage below it; a prune key alone keeps
the dense runs it shares); without ``--yes`` it only prints what it would delete. It refuses
while a Snakemake run holds the directory's lock. The current configuration's tables
(results/summary.csv, ...) and studies are not touched: the next run rebuilds what is missing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import yaml

from .config import check_config, load_schema
from .errors import LTHError
from .lineage import RUNS, lineage, resolve_key

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
FOLDERS = (RUNS, "logs/runs", "benchmarks/runs")


def _update(base: dict, new: dict) -> dict:
    """Snakemake's way of layering config files: nested mappings are merged."""
    for k, v in new.items():
        base[k] = _update(dict(base[k]), v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return base


def load_config(configfiles: list[str] = (), overrides: list[str] = ()) -> dict:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for path in configfiles:
        _update(config, yaml.safe_load(Path(path).read_text()) or {})
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise LTHError(f"--config {item!r}: expected KEY=VALUE")
        config[key] = yaml.safe_load(value)
    return config


def configuration_keys(config: dict) -> dict[str, str]:
    """{variant name ('' for the configuration itself): 'dense_<hash>/prune_<hash>'}."""
    from .studies import study_variants

    schema = load_schema(SCHEMA)
    config = check_config(dict(config), schema)
    configs = {"": config, **study_variants(config, schema)}
    return {name: f"{lineage(c).dense}/{lineage(c).prune}" for name, c in configs.items()}


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _settings(folder: Path) -> dict:
    path = folder / "settings.json"
    return json.loads(path.read_text()) if path.exists() else {}


def list_lineages(run_dir: Path) -> list[str]:
    runs = run_dir / RUNS
    defaults = check_config(yaml.safe_load((ROOT / "config.yaml").read_text()), load_schema(SCHEMA))
    lines = []
    for dense in sorted(p for p in runs.glob("dense_*") if p.is_dir()):
        settings = _settings(dense)
        diff = {k: v for k, v in settings.items() if k in defaults and defaults[k] != v and k != "device"}
        jobs = len(list(dense.glob("trial_*/dense/result.json")))
        lines.append(f"{dense.name}  {jobs} dense runs, {_size(dense) / 1e6:.1f} MB in all; differs from config.yaml: "
                     f"{diff or 'nothing'}")
        for prune in sorted(p for p in dense.glob("prune_*") if p.is_dir()):
            settings = _settings(prune)
            diff = {k: v for k, v in settings.items() if k in defaults and defaults[k] != v}
            jobs = len(list(prune.glob("trial_*/round_*/*/result.json")))
            lines.append(f"  {dense.name}/{prune.name}  {jobs} pruned-round jobs, {_size(prune) / 1e6:.1f} MB; "
                         f"pruning differs from config.yaml: {diff or 'nothing'}")
    return lines


def folders_of(run_dir: Path, key: str) -> list[Path]:
    """Every folder of lineage ``key`` (dense_<hash>, prune_<hash> or dense_<hash>/prune_<hash>)."""
    dense, prune = resolve_key(run_dir, key)
    rel = f"{dense}/{prune}" if prune else dense
    return [run_dir / top / rel for top in FOLDERS if (run_dir / top / rel).exists()]


def remove(run_dir: Path, keys: list[str], yes: bool) -> list[Path]:
    locks = run_dir / ".snakemake" / "locks"
    if locks.is_dir() and any(locks.iterdir()):
        raise LTHError(f"{run_dir} is locked by a Snakemake run: wait for it to end (or `snakemake --unlock`)")
    folders = [f for key in keys for f in folders_of(run_dir, key)]
    for folder in folders:
        print(("removing " if yes else "would remove ") + str(folder))
        if yes:
            shutil.rmtree(folder)
    if not yes:
        print("(nothing removed: add --yes)")
    return folders


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="every lineage in the store")
    p_list.add_argument("--run-dir", type=Path, default=Path("."))
    p_keys = sub.add_parser("keys", help="the lineage keys of a configuration and its study's variants")
    p_keys.add_argument("--configfile", nargs="*", default=[])
    p_keys.add_argument("--config", nargs="*", default=[])
    p_rm = sub.add_parser("remove", help="delete the files of lineages")
    p_rm.add_argument("keys", nargs="+")
    p_rm.add_argument("--run-dir", type=Path, default=Path("."))
    p_rm.add_argument("--yes", action="store_true", help="really delete (default: only print)")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            print("\n".join(list_lineages(args.run_dir)) or f"nothing under {args.run_dir / RUNS}")
        elif args.command == "keys":
            for name, key in configuration_keys(load_config(args.configfile, args.config)).items():
                print(f"{name or '(the configuration)'}: {key}")
        else:
            remove(args.run_dir, args.keys, args.yes)
    except LTHError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
