# Paths and the grid, derived from the config. Every path pattern is defined once here.

wildcard_constraints:
    trial=r"\d+",
    round=r"\d+",
    replicate=r"\d+",
    experiment=r"ticket|reinit_\d+|random_pruning",


TRIALS = list(range(config["trials"]))
ROUNDS = list(range(config["rounds"] + 1))

RUN = "results/trial_{trial}/{experiment}/round_{round}"
TICKET = "results/trial_{trial}/ticket/round_{round}"
LOG = "logs/{rule}/trial_{trial}/{experiment}/round_{round}.log"


def experiments():
    """Directory names of everything trained at each pruning round >= 1."""
    names = ["ticket"]
    if "reinit" in config["controls"]:
        names += [f"reinit_{k}" for k in range(config["reinit_per_ticket"])]
    if "random_pruning" in config["controls"]:
        names.append("random_pruning")
    return names


def grid(filename):
    """``filename`` of every training job of the configured grid."""
    paths = [f"results/trial_{t}/ticket/round_0/{filename}" for t in TRIALS]
    for t in TRIALS:
        for r in ROUNDS[1:]:
            paths += [f"results/trial_{t}/{e}/round_{r}/{filename}" for e in experiments()]
    return paths


def train_params():
    """The config values a training job uses: an edit to any of them reruns training."""
    return dict(
        model=config["model"],
        lr=config["lr"],
        batch_size=config["batch_size"],
        iterations=config["iterations"],
        eval_every=config["eval_every"],
        test_eval=config["test_eval"],
        val_size=config["val_size"],
        patience=config["patience"],
        seed=config["seed"],
        device=config["device"],
    )
