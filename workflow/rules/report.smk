# Tables and figures over the whole grid of the current configuration.


rule aggregate:
    input:
        results=L.grid(config, "result.json"),
        curves=L.grid(config, "curve.csv"),
        checksums=rules.download_mnist.output.checksums,
    output:
        summary=report(
            "results/summary.csv",
            caption="../report/summary.rst",
            category="3. Tables",
            labels={"table": "summary.csv: one row per training job"},
        ),
        curves="results/curves.csv",
        claims_csv=report(
            "results/claims.csv",
            caption="../report/claims.rst",
            category="1. Claims",
            labels={"table": "claims.csv: the paper's claims, measured"},
        ),
        claims_md="results/claims.md",
        provenance=report(
            "results/provenance.json",
            caption="../report/provenance.rst",
            category="4. Provenance",
            labels={"file": "provenance.json: config, versions, data checksums, commit"},
        ),
    log:
        "logs/aggregate.log",
    localrule: True
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        code=script_code("aggregate.py"),
        config={key: config[key] for key in sorted(config)},
        train=train_settings(config),
    script:
        "../scripts/aggregate.py"


rule plot:
    input:
        summary=rules.aggregate.output.summary,
        curves=rules.aggregate.output.curves,
    output:
        accuracy=report(
            "results/plots/accuracy.png",
            caption="../report/accuracy.rst",
            category="2. Figures",
            labels={"figure": "Fig. 4a right: test accuracy at early stop"},
        ),
        early_stop=report(
            "results/plots/early_stop.png",
            caption="../report/early_stop.rst",
            category="2. Figures",
            labels={"figure": "Fig. 4a left: early-stop iteration"},
        ),
        curves=report(
            "results/plots/curves.png",
            caption="../report/curves.rst",
            category="2. Figures",
            labels={"figure": "Fig. 3: test accuracy over training"},
        ),
        train_accuracy=report(
            "results/plots/train_accuracy.png",
            caption="../report/train_accuracy.rst",
            category="2. Figures",
            labels={"figure": "Fig. 4b: final training accuracy"},
        ),
    log:
        "logs/plot.log",
    localrule: True
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=script_code("plot.py"),
    script:
        "../scripts/plot.py"
