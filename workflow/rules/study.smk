import re

# A study (config key `study`, e.g. --configfile config/studies/prune_rates.yaml): the variants'
# grids in one DAG, compared in results/studies/<name>/. Jobs that variants share run once.


wildcard_constraints:
    study=re.escape(STUDY) if STUDY else "(?!)",  # no study: the rules match nothing


rule study_aggregate:
    input:
        results=[f for files in _study_inputs("result.json").values() for f in files],
    output:
        summary=report(
            "results/studies/{study}/summary.csv",
            caption="../report/study_summary.rst",
            category="5. Study",
            subcategory="{study}",
            labels={"table": "summary.csv: every job of every variant"},
        ),
        table=report(
            "results/studies/{study}/table.csv",
            caption="../report/study_table.rst",
            category="5. Study",
            subcategory="{study}",
            labels={"table": "table.csv: mean, min and max over trials"},
        ),
        claims_csv=report(
            "results/studies/{study}/claims.csv",
            caption="../report/study_claims.rst",
            category="5. Study",
            subcategory="{study}",
            labels={"table": "claims.csv: the paper's claims over the variants"},
        ),
        claims_md="results/studies/{study}/claims.md",
    log:
        "logs/studies/{study}/aggregate.log",
    localrule: True
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        code=script_code("study_aggregate.py"),
        # The variants' full configs: an edit to any of them remakes the comparison.
        variants={name: {k: c[k] for k in sorted(c)} for name, c in VARIANTS.items()},
        results=_study_inputs("result.json"),
        study=lambda wc: wc.study,
    script:
        "../scripts/study_aggregate.py"


rule study_plot:
    input:
        table=rules.study_aggregate.output.table,
    output:
        comparison=report(
            "results/studies/{study}/comparison.png",
            caption="../report/study_comparison.rst",
            category="5. Study",
            subcategory="{study}",
            labels={"figure": "comparison of the variants"},
        ),
    log:
        "logs/studies/{study}/plot.log",
    localrule: True
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=script_code("study_plot.py"),
        varied=varied_settings(VARIANTS),
        study=lambda wc: wc.study,
    script:
        "../scripts/study_plot.py"


STUDY_OUTPUTS = (
    [
        *[p.format(study=STUDY) for p in rules.study_aggregate.output],
        *[p.format(study=STUDY) for p in rules.study_plot.output],
    ]
    if STUDY
    else []
)
