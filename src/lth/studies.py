"""Studies: named sets of variants of one configuration, run as one DAG and compared.

A study is the config key ``study`` (usually from a file under ``config/studies/``)::

    study:
      name: prune_rates
      variants:                 # each variant: config overrides on top of the rest of the config
        rate_0.1: {prune_rate: 0.1, output_prune_rate: 0.05, rounds: 21}
        rate_0.2: {prune_rate: 0.2, output_prune_rate: 0.1, rounds: 10}

Each variant is the configuration (config.yaml, the study file's other keys, ``--config``) with
its overrides applied, checked like any config. Variants that agree on a job's lineage share the
job (``lth.lineage``): the prune-rate variants above train one dense network per trial.
"""

from __future__ import annotations

import re

import pandas as pd

from .config import check_config
from .errors import LTHError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# One data set, one device and one thread count for the whole DAG.
NOT_PER_VARIANT = ("study", "data_source", "verify_data", "device", "threads")


def study_variants(config: dict, schema: dict) -> dict[str, dict]:
    """The checked configuration of every variant of ``config['study']`` ({} without a study).

    Raises LTHError with one line that names the study key at fault."""
    study = config.get("study")
    if study is None:
        return {}
    if not isinstance(study, dict) or set(study) - {"name", "variants"} or "variants" not in study:
        raise LTHError("config key 'study': expected a mapping with 'name' and 'variants' (see config/studies/)")
    name = study.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise LTHError(
            f"config key 'study.name': {name!r} is not allowed; expected a folder name of letters, digits, '_', '.', '-'"
        )
    variants = study["variants"]
    if not isinstance(variants, dict) or not variants:
        raise LTHError("config key 'study.variants': expected a mapping of variant names to config overrides")
    base = {k: v for k, v in config.items() if k != "study"}
    out: dict[str, dict] = {}
    seen: dict[str, str] = {}
    for vname, overrides in variants.items():
        where = f"study.variants.{vname}"
        if not isinstance(vname, str) or not NAME.match(vname):
            raise LTHError(f"config key 'study.variants': variant name {vname!r} is not allowed; use letters, digits, _ . -")
        overrides = overrides or {}
        if not isinstance(overrides, dict):
            raise LTHError(f"config key {where!r}: expected a mapping of config keys to values, got {overrides!r}")
        fixed = sorted(set(overrides) & set(NOT_PER_VARIANT))
        if fixed:
            raise LTHError(
                f"config key {where!r}: {', '.join(fixed)} cannot differ between variants (one DAG shares them); "
                "set them outside `study`"
            )
        unknown = sorted(set(overrides) - set(schema["properties"]))
        if unknown:
            raise LTHError(f"config key {where!r}: unknown key(s) {', '.join(map(repr, unknown))}")
        try:
            variant = check_config({**base, **overrides}, schema)
        except LTHError as err:
            raise LTHError(f"study variant {vname!r}: {err}") from None
        fingerprint = repr(sorted(variant.items()))
        if fingerprint in seen:
            raise LTHError(f"config key 'study.variants': {seen[fingerprint]!r} and {vname!r} are the same configuration")
        seen[fingerprint] = vname
        out[vname] = variant
    return out


def varied_settings(variants: dict[str, dict]) -> list[str]:
    """The config keys whose values differ between variants, sorted (the columns of a study's
    tables, whatever order the variants' configs hold their keys in)."""
    configs = list(variants.values())
    if not configs:
        return []
    return sorted(k for k in configs[0] if any(repr(c.get(k)) != repr(configs[0].get(k)) for c in configs[1:]))


def _cell(value):
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value


def study_summary(summaries: dict[str, pd.DataFrame], variants: dict[str, dict]) -> pd.DataFrame:
    """One row per training job of every variant: ``variant``, one column per varied setting, then
    the job's summary columns. A job two variants share appears under each."""
    varied = varied_settings(variants)
    frames = []
    for vname, summary in summaries.items():
        settings = {k: _cell(variants[vname][k]) for k in varied}
        frames.append(summary.assign(**settings).assign(variant=vname)[["variant", *varied, *summary.columns]])
    return pd.concat(frames, ignore_index=True)


def study_table(summary: pd.DataFrame, varied: list[str]) -> pd.DataFrame:
    """Mean, min and max over trials per (variant, experiment, round); replicates of a control are
    averaged within their trial first, so each trial counts once."""
    keys = ["variant", *varied, "experiment", "round"]
    metrics = ["early_stop_test_accuracy", "early_stop_iteration"]
    per_trial = summary.groupby([*keys, "trial"], sort=False, as_index=False, dropna=False)[
        ["percent_remaining", *metrics]
    ].mean()
    g = per_trial.groupby(keys, sort=False, dropna=False)
    table = g["percent_remaining"].mean().rename("percent_remaining").to_frame()
    table["trials"] = g["trial"].size()
    for m in metrics:
        table[f"{m}_mean"] = g[m].mean()
        table[f"{m}_min"] = g[m].min()
        table[f"{m}_max"] = g[m].max()
    return table.reset_index()


PAPER_PRUNING = {"prune_rate": 0.2, "output_prune_rate": 0.1, "prune_scope": "layerwise", "rewind_iteration": 0}


def study_claims(summaries: dict[str, pd.DataFrame], variants: dict[str, dict]) -> list:
    """The paper's claims over a study: each claim measured on the first variant that can measure
    it (claims 1-5 need iterative pruning, claim 6 one-shot), preferring variants that prune as the
    paper does (20 % / 10 %, layer-wise, reset to theta0). The verdict's ``measured`` names the
    variant. A claim no variant can measure is NOT-RUN with the reason of the first variant that
    prunes as the claim needs (the levels it lacks, not a pruning mode another variant has), else
    with the first variant's."""
    from .claims import CLAIMS, NOT_RUN, evaluate_claims

    def paper_like(name: str) -> bool:
        return all(variants[name].get(k) == v for k, v in PAPER_PRUNING.items())

    order = sorted(summaries, key=lambda name: not paper_like(name))  # stable: study order otherwise
    per_variant = {name: evaluate_claims(summaries[name], variants[name]["pruning"]) for name in order}
    combined = []
    for i, claim in enumerate(CLAIMS):
        fallback = next((name for name in order if variants[name]["pruning"] == claim.pruning), order[0])
        chosen, variant = per_variant[fallback][i], fallback
        for name in order:
            if per_variant[name][i].verdict != NOT_RUN:
                chosen, variant = per_variant[name][i], name
                break
        chosen.measured = f"[{variant}] {chosen.measured}"
        combined.append(chosen)
    return combined


def study_note(name: str, variants: dict[str, dict]) -> str:
    """The line under the title of a study's claims.md."""
    return (f"Study `{name}`: variants {', '.join(variants)}; varied: {', '.join(varied_settings(variants))}. "
            "Each claim is measured on the variant named in brackets.")


def study_claims_markdown(verdicts: list, name: str, variants: dict[str, dict], note: str | None = None) -> str:
    from .claims import claims_markdown

    return claims_markdown(verdicts, note="\n\n".join(filter(None, [note, study_note(name, variants)])))


def rescore_study(summary: pd.DataFrame, config_path, note: str | None = None) -> tuple[list, str]:
    """A committed study re-scored: its summary.csv (``study_summary``: a ``variant`` column and
    one per varied setting) split into its variants' summaries, the variants from the study's
    effective config.yaml, and the claims over them (``study_claims``) with their claims.md."""
    from pathlib import Path

    import yaml

    from .config import load_schema

    schema = load_schema(Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml")
    config = yaml.safe_load(Path(config_path).read_text())
    config["data_source"] = None  # a path of the machine that ran it; the scores do not read data
    variants = study_variants(config, schema)
    extra = ["variant", *varied_settings(variants)]
    summaries = {name: summary[summary["variant"] == name].drop(columns=extra).reset_index(drop=True)
                 for name in variants}
    verdicts = study_claims(summaries, variants)
    return verdicts, study_claims_markdown(verdicts, config["study"]["name"], variants, note)



def write_study(results: dict[str, list], variants: dict[str, dict], study: str, out: dict, note: str | None = None
                ) -> tuple[pd.DataFrame, list]:
    """A study's tables and claims from its variants' result.json files (``results``: variant ->
    paths, as the workflow's study_aggregate gets them, or lth.shards from an assembled run):
    ``out`` names the files (summary, table, claims_csv, claims_md). Results trained with other
    settings than their variant's are refused (lth.aggregate.check_fresh). Returns the study's
    summary and verdicts."""
    from .aggregate import build_summary, check_fresh, write_csv
    from .claims import claims_table
    from .fileio import write_text
    from .lineage import train_settings

    for name, paths in results.items():
        check_fresh(paths, train_settings(variants[name]))
    # Each variant's trials start pruning chains; its later dense runs are dense-only seeds.
    summaries = {name: build_summary(paths, variants[name]["trials"]) for name, paths in results.items()}
    summary = study_summary(summaries, variants)
    write_csv(summary, out["summary"])
    write_csv(study_table(summary, varied_settings(variants)), out["table"])
    verdicts = study_claims(summaries, variants)
    write_csv(claims_table(verdicts), out["claims_csv"])
    write_text(out["claims_md"], study_claims_markdown(verdicts, study, variants, note=note))
    return summary, verdicts
