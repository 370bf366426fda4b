# Tables and figures over the whole grid.


rule aggregate:
    input:
        results=grid("result.json"),
        curves=grid("curve.csv"),
        checksums=rules.download_mnist.output.checksums,
    output:
        summary="results/summary.csv",
        curves="results/curves.csv",
        claims_csv="results/claims.csv",
        claims_md="results/claims.md",
        provenance="results/provenance.json",
    params:
        config={key: config[key] for key in sorted(config)},
        repo=workflow.basedir,
    log:
        "logs/aggregate.log",
    script:
        "../scripts/aggregate.py"


rule plot:
    input:
        summary=rules.aggregate.output.summary,
        curves=rules.aggregate.output.curves,
    output:
        accuracy="results/plots/accuracy.png",
        early_stop="results/plots/early_stop.png",
        curves="results/plots/curves.png",
        train_accuracy="results/plots/train_accuracy.png",
    log:
        "logs/plot.log",
    script:
        "../scripts/plot.py"
