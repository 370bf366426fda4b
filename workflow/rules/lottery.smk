# The rounds x trials grid: init -> dense training -> prune -> rewind + retrain, and the controls.

from lth.experiment import random_mask_seed, reinit_seed, ticket_seed


rule init:
    output:
        weights="results/trial_{trial}/ticket/init.pt",
    log:
        "logs/init/trial_{trial}/ticket.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        model=config["model"],
        seed=lambda wc: ticket_seed(config["seed"], int(wc.trial)),
    script:
        "../scripts/init.py"


# The control: a fresh random initialisation for every (trial, round, replicate).
rule init_reinit:
    output:
        weights="results/trial_{trial}/reinit_{replicate}/round_{round}/init.pt",
    log:
        "logs/init/trial_{trial}/reinit_{replicate}/round_{round}.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        model=config["model"],
        seed=lambda wc: reinit_seed(config["seed"], int(wc.trial), int(wc.replicate), int(wc["round"])),
    script:
        "../scripts/init.py"


rule train_dense:
    input:
        init="results/trial_{trial}/ticket/init.pt",
        data=MNIST,
    output:
        model="results/trial_{trial}/ticket/round_0/model.pt",
        rewind="results/trial_{trial}/ticket/round_0/rewind.pt",
        curve="results/trial_{trial}/ticket/round_0/curve.csv",
        result="results/trial_{trial}/ticket/round_0/result.json",
    log:
        "logs/train/trial_{trial}/ticket/round_0.log",
    benchmark:
        "benchmarks/train/trial_{trial}/ticket/round_0.tsv"
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **TRAIN_GPU,
        mem_mb=train_mem_mb,
        runtime=train_runtime,
    params:
        **train_params(),
        rewind_iteration=config["rewind_iteration"],
    script:
        "../scripts/train.py"


rule prune:
    input:
        unpack(_prune_inputs),
    output:
        mask="results/trial_{trial}/ticket/round_{round}/mask.pt",
    log:
        "logs/prune/trial_{trial}/round_{round}.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        model=config["model"],
        prune_rate=config["prune_rate"],
        output_prune_rate=config["output_prune_rate"],
        prune_scope=config["prune_scope"],
        pruning=config["pruning"],
    script:
        "../scripts/prune.py"


rule random_mask:
    input:
        ticket_mask=rules.prune.output.mask,
    output:
        mask="results/trial_{trial}/random_pruning/round_{round}/mask.pt",
    log:
        "logs/random_mask/trial_{trial}/round_{round}.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        model=config["model"],
        seed=lambda wc: random_mask_seed(config["seed"], int(wc.trial), _round(wc)),
    script:
        "../scripts/random_mask.py"


rule train_sparse:
    input:
        unpack(_sparse_inputs),
        data=MNIST,
    output:
        model="results/trial_{trial}/{experiment}/round_{round}/model.pt",
        curve="results/trial_{trial}/{experiment}/round_{round}/curve.csv",
        result="results/trial_{trial}/{experiment}/round_{round}/result.json",
    log:
        "logs/train/trial_{trial}/{experiment}/round_{round}.log",
    benchmark:
        "benchmarks/train/trial_{trial}/{experiment}/round_{round}.tsv"
    wildcard_constraints:
        round=r"[1-9]\d*",
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **TRAIN_GPU,
        mem_mb=train_mem_mb,
        runtime=train_runtime,
    params:
        **train_params(),
    script:
        "../scripts/train.py"
