# The rounds x trials grid: init -> dense training -> prune -> rewind + retrain, and the controls.

from lth.experiment import random_mask_seed, reinit_seed, ticket_seed


def _round(wc):
    return int(wc["round"])


rule init:
    output:
        weights="results/trial_{trial}/{init_of}/init.pt",
    wildcard_constraints:
        init_of=r"ticket|reinit_\d+",
    params:
        model=config["model"],
        seed=lambda wc: (
            ticket_seed(config["seed"], int(wc.trial))
            if wc.init_of == "ticket"
            else reinit_seed(config["seed"], int(wc.trial), int(wc.init_of.split("_")[1]))
        ),
    log:
        "logs/init/trial_{trial}/{init_of}.log",
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
    params:
        **train_params(),
        rewind_iteration=config["rewind_iteration"],
    threads: config["threads"]
    resources:
        mem_mb=1500,
        runtime=lambda wc: 5 + config["iterations"] // 10000 * 3,
    log:
        "logs/train/trial_{trial}/ticket/round_0.log",
    benchmark:
        "benchmarks/train/trial_{trial}/ticket/round_0.tsv"
    script:
        "../scripts/train.py"


def _prune_inputs(wc):
    r = _round(wc)
    if r < 1:
        raise ValueError("round 0 is the dense network: it has no pruning mask")
    if config["pruning"] == "oneshot":  # straight from the dense net to round r's sparsity
        return {"trained": rules.train_dense.output.model.format(trial=wc.trial)}
    inputs = {"trained": f"results/trial_{wc.trial}/ticket/round_{r - 1}/model.pt"}
    if r > 1:
        inputs["previous_mask"] = f"results/trial_{wc.trial}/ticket/round_{r - 1}/mask.pt"
    return inputs


rule prune:
    input:
        unpack(_prune_inputs),
    output:
        mask="results/trial_{trial}/ticket/round_{round}/mask.pt",
    params:
        model=config["model"],
        prune_rate=config["prune_rate"],
        output_prune_rate=config["output_prune_rate"],
        prune_scope=config["prune_scope"],
        pruning=config["pruning"],
    log:
        "logs/prune/trial_{trial}/round_{round}.log",
    script:
        "../scripts/prune.py"


rule random_mask:
    input:
        ticket_mask=rules.prune.output.mask,
    output:
        mask="results/trial_{trial}/random_pruning/round_{round}/mask.pt",
    params:
        model=config["model"],
        seed=lambda wc: random_mask_seed(config["seed"], int(wc.trial), _round(wc)),
    log:
        "logs/random_mask/trial_{trial}/round_{round}.log",
    script:
        "../scripts/random_mask.py"


def _sparse_inputs(wc):
    ticket_mask = rules.prune.output.mask.format(trial=wc.trial, round=wc["round"])
    rewind = rules.train_dense.output.rewind.format(trial=wc.trial)
    if wc.experiment == "ticket":
        return {"init": rewind, "mask": ticket_mask}
    if wc.experiment == "random_pruning":
        mask = rules.random_mask.output.mask.format(trial=wc.trial, round=wc["round"])
        return {"init": rewind, "mask": mask}
    # reinit_k: the ticket's mask, a fresh random initialisation
    init = rules.init.output.weights.format(trial=wc.trial, init_of=wc.experiment)
    return {"init": init, "mask": ticket_mask}


rule train_sparse:
    input:
        unpack(_sparse_inputs),
        data=MNIST,
    output:
        model="results/trial_{trial}/{experiment}/round_{round}/model.pt",
        curve="results/trial_{trial}/{experiment}/round_{round}/curve.csv",
        result="results/trial_{trial}/{experiment}/round_{round}/result.json",
    wildcard_constraints:
        round=r"[1-9]\d*",
    params:
        **train_params(),
    threads: config["threads"]
    resources:
        mem_mb=1500,
        runtime=lambda wc: 5 + config["iterations"] // 10000 * 3,
    log:
        "logs/train/trial_{trial}/{experiment}/round_{round}.log",
    benchmark:
        "benchmarks/train/trial_{trial}/{experiment}/round_{round}.tsv"
    script:
        "../scripts/train.py"
