# Tables and figures over the whole grid.


rule aggregate:
    input:
        results=grid("result.json"),
        curves=grid("curve.csv"),
    output:
        summary="results/summary.csv",
        curves="results/curves.csv",
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
