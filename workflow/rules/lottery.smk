# The rounds x trials grid of every configuration: init -> dense training -> prune -> rewind +
# retrain, and the controls. Paths come from lth.lineage; params from the path's lineage keys.

from lth.experiment import random_mask_seed, reinit_seed, ticket_seed


# What a key stands for, written beside the outputs it keys.
rule dense_settings:
    output:
        settings=f"{L.RUNS}/{{dense}}/settings.json",
    log:
        "logs/runs/{dense}/settings.log",
    localrule: True
    conda:
        CONDA_ENV
    params:
        code=script_code("write_settings.py"),
        settings=lambda wc: L.lineage(dense_cfg(wc)).dense_settings,
    script:
        "../scripts/write_settings.py"


use rule dense_settings as prune_settings with:
    output:
        settings=f"{L.RUNS}/{{dense}}/{{prune}}/settings.json",
    log:
        "logs/runs/{dense}/{prune}/settings.log",
    localrule: True
    params:
        code=script_code("write_settings.py"),
        settings=lambda wc: L.lineage(prune_cfg(wc)).prune_settings,


rule init:
    input:
        settings=rules.dense_settings.output.settings,
    output:
        weights=f"{L.TRIAL_DIR}/init.pt",
    log:
        "logs/runs/{dense}/trial_{trial}/init.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        code=script_code("init.py"),
        model=setting("model"),
        seed=lambda wc: ticket_seed(dense_cfg(wc)["seed"], int(wc.trial)),
    script:
        "../scripts/init.py"


# The control: a fresh random initialisation for every (trial, round, replicate). It depends on
# the dense lineage's model and seed only, so every pruning variant shares it.
use rule init as init_reinit with:
    output:
        weights=f"{L.TRIAL_DIR}/reinit_{{replicate}}/round_{{round}}.pt",
    log:
        "logs/runs/{dense}/trial_{trial}/reinit_{replicate}/round_{round}.log",
    params:
        code=script_code("init.py"),
        model=setting("model"),
        seed=lambda wc: reinit_seed(dense_cfg(wc)["seed"], int(wc.trial), int(wc.replicate), int(wc["round"])),


rule train_dense:
    input:
        init=rules.init.output.weights,
        data=MNIST,
    output:
        model=f"{L.DENSE_JOB_DIR}/model.pt",
        curve=f"{L.DENSE_JOB_DIR}/curve.csv",
        result=f"{L.DENSE_JOB_DIR}/result.json",
    log:
        "logs/runs/{dense}/trial_{trial}/dense.log",
    benchmark:
        "benchmarks/runs/{dense}/trial_{trial}/dense.tsv"
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **TRAIN_GPU,
        mem_mb=train_mem_mb,
        runtime=train_runtime,
    params:
        **train_params(),
        code=script_code("train.py"),
    script:
        "../scripts/train.py"


# Late rewinding (rewind_iteration k > 0): the dense run's weights at iteration k, made by
# training the first k iterations again (the same data order and arithmetic as the dense run,
# so the same bits), so that the dense run itself is shared by every rewind iteration.
rule rewind_point:
    input:
        init=rules.init.output.weights,
        data=MNIST,
    output:
        weights=f"{L.TRIAL_DIR}/rewind_{{iteration}}.pt",
    log:
        "logs/runs/{dense}/trial_{trial}/rewind_{iteration}.log",
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **TRAIN_GPU,
        mem_mb=train_mem_mb,
        runtime=train_runtime,
    params:
        **train_params(),
        code=script_code("rewind_point.py"),
    script:
        "../scripts/rewind_point.py"


rule prune:
    input:
        unpack(_prune_inputs),
    output:
        mask=f"{L.ROUND_DIR}/mask.pt",
    log:
        "logs/runs/{dense}/{prune}/trial_{trial}/round_{round}/prune.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        code=script_code("prune.py"),
        model=setting("model", prune_cfg),
        prune_rate=setting("prune_rate", prune_cfg),
        output_prune_rate=setting("output_prune_rate", prune_cfg),
        prune_scope=setting("prune_scope", prune_cfg),
        pruning=setting("pruning", prune_cfg),
    script:
        "../scripts/prune.py"


rule random_mask:
    input:
        ticket_mask=rules.prune.output.mask,
    output:
        mask=f"{L.ROUND_DIR}/random_pruning/mask.pt",
    log:
        "logs/runs/{dense}/{prune}/trial_{trial}/round_{round}/random_mask.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        code=script_code("random_mask.py"),
        model=setting("model"),
        seed=lambda wc: random_mask_seed(dense_cfg(wc)["seed"], int(wc.trial), _round(wc)),
    script:
        "../scripts/random_mask.py"


rule train_sparse:
    input:
        unpack(_sparse_inputs),
        data=MNIST,
    output:
        model=f"{L.JOB_DIR}/model.pt",
        curve=f"{L.JOB_DIR}/curve.csv",
        result=f"{L.JOB_DIR}/result.json",
    log:
        "logs/runs/{dense}/{prune}/trial_{trial}/round_{round}/{experiment}.log",
    benchmark:
        "benchmarks/runs/{dense}/{prune}/trial_{trial}/round_{round}/{experiment}.tsv"
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
        code=script_code("train.py"),
        # late rewinding: train iterations k+1..T from the dense run's weights at k
        rewind_iteration=setting("rewind_iteration", prune_cfg),
        # early stop of a leaf (a job no later one reads): the dense runs have none
        leaf_patience=leaf_patience,
    script:
        "../scripts/train.py"
