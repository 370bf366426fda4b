"""Training with masks, evaluation, and the paper's early-stop bookkeeping.

The data lives in memory as tensors; each epoch draws one seeded permutation of the training
split, and each step gathers its batch (the next slice of the permutation) into a preallocated
buffer, so a step allocates nothing for its inputs (no DataLoader, no per-sample transforms)
and there is no shuffled copy of the whole split (172 MB for MNIST).

Two step implementations give the same mathematics:
- ``_MLPStep``: for networks made only of linear layers with ReLU (LeNet-300-100). Forward and
  backward are written out as matrix multiplications into preallocated buffers, which avoids
  autograd's bookkeeping (about 15 % of a step at batch 60 on one CPU thread).
- ``_AutogradStep``: any other network (the CNN).
Both use Adam through the fused kernel (``FusedAdam``) and re-apply the masks after every optimizer step, so pruned
weights are exactly zero in every forward pass.

``TrainConfig.kernels`` chooses how the weights are stored and multiplied: ``dense`` (the
default, and the path that made the committed results) is the above; ``sparse`` keeps only the
surviving weights of LeNet-300-100 (CSR products, gradients and Adam state at the survivors
only; see ``lth.sparse``), and writes the dense weight tensors back at the end; ``auto`` takes
``sparse`` where the job's density (percent of prunable weights remaining) is below
``AUTO_SPARSE_BELOW_PERCENT``. The CNN (``lenet5``) always uses the dense kernels.

Early stopping follows the paper: the early-stop iteration is the evaluation with the minimum
validation loss (the first one on ties), and the test accuracy reported for it is the one
measured at that iteration. With ``patience`` set, training stops after that many evaluations
without a new minimum: this saves compute but the minimum is then only the minimum of the
iterations that ran (the paper trains all iterations). ``leaf_patience`` is the same rule for a
job whose weights no later job reads (the workflow passes it to those jobs only, see
``lth.lineage.job_leaf_patience``); a job has one of the two at most.

Where the test split is evaluated (``test_eval``; evaluation changes neither the weights nor the
data order, so every mode gives the same early-stop and final rows): ``all`` at every
evaluation; ``minima`` at every evaluation that sets a new minimum validation loss, at the last
one, and at the first evaluation in each window of ``test_every`` iterations (at its multiples
when ``eval_every`` divides it), the points the curves figure draws; ``best`` at the new minima
and the last evaluation only.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .data import Split
from .errors import LTHError
from .sparse import SparseNet
from .torch_ops import FusedAdam, foreach_mul_

EVAL_CHUNK = 1000  # rows per evaluation matmul: faster than one huge batch (cache-friendly)
KERNELS = ("dense", "sparse", "auto")
TEST_EVALS = ("all", "minima", "best")
# kernels: auto takes the sparse path below this density (percent of prunable weights remaining).
# Measured with benchmarks/benchmark.py (one thread, medians of 9 interleaved repetitions, CPU
# time, sparse / dense in the same run, real MNIST, two runs): the step 1.35-1.45 / 0.79-0.87 /
# 0.42-0.45 of the dense step at 100 / 51.3 / 21.1 % remaining, a paper-protocol job (test_eval
# minima) with the sparse kernels 1.40-1.48 / 0.85-0.92 / 0.46-0.49 of the dense one; the
# crossover interpolates to 59-65 %. 60 % separates the paper's rounds 2 and 3 (64.1 and 51.3 %):
# auto picked the faster kernels for every job of the projected paper profile (its time equals
# the per-job best). See docs/sparse_kernels.md.
AUTO_SPARSE_BELOW_PERCENT = 60.0


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 1.2e-3
    batch_size: int = 60
    iterations: int = 50_000
    eval_every: int = 100
    patience: int | None = None  # evaluations without a new minimum val loss before stopping
    # The same, for a leaf job only (its weights are read by no later job): the workflow gives
    # it to leaves and None to every other job. Refused together with patience.
    leaf_patience: int | None = None
    data_seed: int = 0  # seeds the per-epoch shuffles
    device: str = "cpu"
    save_at: int | None = None  # also return the weights at this iteration (late rewinding)
    # Late rewinding (Frankle et al. 2020): a network rewound to the dense run's weights at
    # iteration k trains iterations k+1..T (T - k steps), continuing the dense run's data order
    # at batch k; evaluations stay at the same absolute iterations. Adam starts afresh (its state
    # is not rewound: the weights are), as in open_lth.
    start_iteration: int = 0
    # "all": test accuracy at every evaluation (the paper). "minima": at evaluations that set a
    # new minimum validation loss, at the last one and once per test_every iterations (Figure 3's
    # points), which keeps every early-stop and final number exact. "best": minima and the last
    # only. (The workflow's default is "minima", the schema's; this class keeps the paper's.)
    test_eval: str = "all"
    test_every: int = 1000
    # "dense" (the reference), "sparse" (survivors only, LeNet-300-100) or "auto" (by density).
    kernels: str = "dense"

    def __post_init__(self) -> None:
        for key in ("batch_size", "iterations", "eval_every"):
            if getattr(self, key) < 1:
                raise LTHError(f"{key}={getattr(self, key)} must be a positive integer")
        if not self.lr > 0:
            raise LTHError(f"lr={self.lr} must be positive")
        if self.patience is not None and self.patience < 1:
            raise LTHError(f"patience={self.patience} must be a positive integer or null")
        if self.leaf_patience is not None and self.leaf_patience < 1:
            raise LTHError(f"leaf_patience={self.leaf_patience} must be a positive integer or null")
        if self.patience is not None and self.leaf_patience is not None:
            raise LTHError(f"patience={self.patience} and leaf_patience={self.leaf_patience}: set one of them at most")
        if self.test_eval not in TEST_EVALS:
            raise LTHError(f"test_eval={self.test_eval!r} must be one of {', '.join(map(repr, TEST_EVALS))}")
        if self.test_every < 1:
            raise LTHError(f"test_every={self.test_every} must be a positive integer")
        if self.kernels not in KERNELS:
            raise LTHError(f"kernels={self.kernels!r} must be 'dense', 'sparse' or 'auto'")
        if not 0 <= self.start_iteration < self.iterations:
            raise LTHError(f"start_iteration={self.start_iteration} must be between 0 and iterations-1={self.iterations - 1}")
        if self.save_at is not None and not self.start_iteration <= self.save_at <= self.iterations:
            raise LTHError(f"rewind_iteration={self.save_at} must be between start_iteration={self.start_iteration} "
                          f"and iterations={self.iterations}")


@dataclass
class TrainResult:
    curve: list[dict]  # one row per evaluation
    early_stop: dict  # the row with minimum validation loss
    final: dict  # the last row
    final_train_accuracy: float  # accuracy on the whole training split after the last step
    iterations_run: int  # steps trained by this call (T - start, less with early stopping)
    snapshot: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    kernel: str = "dense"  # the kernels actually used: "dense" or "sparse"


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise LTHError("device=cuda but no CUDA device is available; use device: auto or cpu")
    return torch.device(device)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy) over a whole split, in chunks."""
    loss = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for start in range(0, len(x), EVAL_CHUNK):
        logits = model(x[start : start + EVAL_CHUNK])
        target = y[start : start + EVAL_CHUNK]
        loss += nn.functional.cross_entropy(logits, target, reduction="sum").double()
        correct += (logits.argmax(1) == target).sum()
    return loss.item() / len(x), correct.item() / len(x)


class _Masker:
    """Multiplies the masked weights by their (float) masks in one foreach call."""

    def __init__(self, model: nn.Module, masks: dict[str, torch.Tensor] | None) -> None:
        params = dict(model.named_parameters())
        masks = masks or {}
        unknown = set(masks) - set(params)
        if unknown:
            raise LTHError(f"mask names {sorted(unknown)} are not weights of this model")
        self.weights = [params[n] for n in masks]
        self.masks = [masks[n].to(device=params[n].device, dtype=params[n].dtype) for n in masks]
        for n, w, m in zip(masks, self.weights, self.masks):
            if w.shape != m.shape:
                raise LTHError(f"mask {n} has shape {tuple(m.shape)}, weight has {tuple(w.shape)}")

    @torch.no_grad()
    def apply(self) -> None:
        if self.weights:
            foreach_mul_(self.weights, self.masks)


class _AutogradStep:
    def __init__(self, model: nn.Module, batch_size: int, optimizer) -> None:
        self.model, self.optimizer = model, optimizer

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=False)
        loss = nn.functional.cross_entropy(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        return loss.detach()


class _MLPStep:
    """Forward and backward of Linear-ReLU-...-Linear + softmax cross-entropy, by hand.

    For logits z = h W^T + b and mean cross-entropy over B rows, dL/dz = (softmax(z) - onehot)/B;
    each layer's weight gradient is dz^T h, its bias gradient the column sum of dz, and the
    gradient passed down is (dz W) * [h > 0].
    """

    def __init__(self, layers: list[nn.Linear], batch_size: int, optimizer) -> None:
        self.layers, self.optimizer = layers, optimizer
        p = layers[0].weight
        kw = dict(device=p.device, dtype=p.dtype)
        self.acts = [torch.empty(batch_size, lyr.out_features, **kw) for lyr in layers]
        self.grads_out = [torch.empty(batch_size, lyr.out_features, **kw) for lyr in layers]
        self.relu_mask = [torch.empty(batch_size, lyr.out_features, **kw) for lyr in layers[:-1]]
        self.logp = torch.empty(batch_size, layers[-1].out_features, **kw)
        self.scale = 1.0 / batch_size

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        layers, acts = self.layers, self.acts
        h = x
        for i, lyr in enumerate(layers):
            torch.addmm(lyr.bias, h, lyr.weight.t(), out=acts[i])
            if i < len(layers) - 1:
                acts[i].relu_()
            h = acts[i]
        torch.log_softmax(acts[-1], 1, out=self.logp)
        picked = self.logp.gather(1, y[:, None])
        loss = -picked.mean()
        dz = self.grads_out[-1]
        torch.exp(self.logp, out=dz)
        dz.scatter_add_(1, y[:, None], torch.full_like(picked, -1.0))
        dz.mul_(self.scale)
        for i in range(len(layers) - 1, -1, -1):
            lyr = layers[i]
            h_in = x if i == 0 else acts[i - 1]
            torch.mm(dz.t(), h_in, out=lyr.weight.grad)
            torch.sum(dz, 0, out=lyr.bias.grad)
            if i > 0:
                below = self.grads_out[i - 1]
                torch.mm(dz, lyr.weight, out=below)
                torch.gt(acts[i - 1], 0, out=self.relu_mask[i - 1])
                below.mul_(self.relu_mask[i - 1])
                dz = below
        self.optimizer.step()
        return loss


def _mlp_layers(model: nn.Module) -> list[nn.Linear] | None:
    """The linear layers of a network made only of them (LeNet-300-100), else None."""
    layers = model.linear_layers() if hasattr(model, "linear_layers") else None
    if layers is not None and len(list(model.parameters())) == 2 * len(layers):
        return layers
    return None


def _make_step(model: nn.Module, batch_size: int, optimizer):
    layers = _mlp_layers(model)
    if layers is not None:
        return _MLPStep(layers, batch_size, optimizer)
    return _AutogradStep(model, batch_size, optimizer)


def percent_of_weights_remaining(model: nn.Module, masks: dict[str, torch.Tensor] | None) -> float:
    """Percent of the linear layers' weights that ``masks`` keeps (100 without masks)."""
    layers = _mlp_layers(model) or []
    names = {id(p): n for n, p in model.named_parameters()}
    total = sum(lyr.weight.numel() for lyr in layers)
    kept = sum(int(masks[names[id(lyr.weight)]].sum()) if masks and names[id(lyr.weight)] in masks
               else lyr.weight.numel() for lyr in layers)
    return 100.0 * kept / total if total else 100.0


def select_kernel(kernels: str, model: nn.Module, masks: dict[str, torch.Tensor] | None) -> str:
    """The kernels a job uses: "dense" or "sparse" (``kernels``: dense, sparse or auto).

    The sparse path exists for networks of linear layers on the CPU (LeNet-300-100); any other
    network (the CNN) or device trains with the dense kernels whatever ``kernels`` says."""
    if kernels == "dense" or _mlp_layers(model) is None or next(model.parameters()).device.type != "cpu":
        return "dense"
    if kernels == "sparse":
        return "sparse"
    return "sparse" if percent_of_weights_remaining(model, masks) < AUTO_SPARSE_BELOW_PERCENT else "dense"


class _DenseKernels:
    """Dense weight tensors, masked after every step: ``_MLPStep`` or autograd, ``evaluate``."""

    name = "dense"

    def __init__(self, model: nn.Module, masker: _Masker, cfg: TrainConfig) -> None:
        self.model, self.masker = model, masker
        # The optimizer allocates every .grad up front: the MLP step writes its gradients there.
        self.optimizer = FusedAdam(model.parameters(), lr=cfg.lr)
        self._step = _make_step(model, cfg.batch_size, self.optimizer)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = self._step(x, y)
        self.masker.apply()
        return loss

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        return evaluate(self.model, x, y)

    def write_back(self) -> None:
        """The model's weights are the trained ones already."""


class _SparseKernels:
    """Survivor values only (``lth.sparse.SparseNet``: compiled CSR loops, Adam over the
    survivors); the model's dense weights are written back on ``write_back`` (before a snapshot
    and at the end)."""

    name = "sparse"

    def __init__(self, model: nn.Module, masks: dict[str, torch.Tensor] | None, cfg: TrainConfig) -> None:
        layers = _mlp_layers(model)
        names = {id(p): n for n, p in model.named_parameters()}
        masks = masks or {}
        self.net = SparseNet(layers, [masks.get(names[id(lyr.weight)]) for lyr in layers], cfg.batch_size, cfg.lr)
        self.step = self.net.step
        self.evaluate = self.net.evaluate
        self.write_back = self.net.write_back


def _tests_every_evaluation(cfg: TrainConfig, iteration: int) -> bool:
    """Whether the evaluation at ``iteration`` measures the test accuracy whatever the validation
    loss did: every one under ``all``; under ``minima`` the first evaluation in each window of
    ``test_every`` iterations (a rule of the absolute iteration alone, so that every job of a
    grid, late-rewound ones included, tests at the same iterations: the curves figure averages
    only points that every trial has)."""
    if cfg.test_eval == "all":
        return True
    return cfg.test_eval == "minima" and iteration % cfg.test_every < cfg.eval_every


def train(
    model: nn.Module,
    masks: dict[str, torch.Tensor] | None,
    data: Split,
    cfg: TrainConfig,
    log: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place under ``masks`` (None: dense) and return its curve.

    Evaluations happen every ``cfg.eval_every`` iterations and after the last one. With
    ``cfg.start_iteration`` = k > 0, ``model`` holds the weights of iteration k and training runs
    iterations k+1..T on the batches the run from 0 would have seen there.
    """
    device = resolve_device(cfg.device)
    model.to(device)
    data = data.to(device)
    n_train = len(data.train_x)
    if cfg.batch_size > n_train:
        raise LTHError(f"batch_size={cfg.batch_size} is larger than the training split ({n_train} images)")

    masker = _Masker(model, masks)
    masker.apply()
    if select_kernel(cfg.kernels, model, masks) == "sparse":
        kernels = _SparseKernels(model, masks, cfg)
    else:
        kernels = _DenseKernels(model, masker, cfg)

    generator = torch.Generator().manual_seed(cfg.data_seed)
    batches_per_epoch = n_train // cfg.batch_size  # the last partial batch of an epoch is dropped
    # The batch buffers hold exactly the rows that slices of a shuffled copy of the split held
    # (and at the same 64-byte alignment): the same bits as before, 172 MB less per job.
    batch_x = torch.empty((cfg.batch_size, *data.train_x.shape[1:]), dtype=data.train_x.dtype, device=device)
    batch_y = torch.empty((cfg.batch_size, *data.train_y.shape[1:]), dtype=data.train_y.dtype, device=device)

    # Continue the data order at cfg.start_iteration: skip the permutations of the epochs before
    # it (the permutation of its own epoch is drawn at the first step).
    for _ in range(cfg.start_iteration // batches_per_epoch):
        torch.randperm(n_train, generator=generator)
    perm = None

    snapshot = None
    if cfg.save_at == cfg.start_iteration:
        snapshot = copy.deepcopy(model.state_dict())
    curve: list[dict] = []
    best_index = 0
    patience = cfg.patience if cfg.patience is not None else cfg.leaf_patience
    running_loss = torch.zeros((), device=device)
    since_eval = 0
    iteration = cfg.start_iteration
    model.train()
    while iteration < cfg.iterations:
        batch = iteration % batches_per_epoch
        if batch == 0 or perm is None:
            perm = torch.randperm(n_train, generator=generator).to(device)
        lo = batch * cfg.batch_size
        rows = perm[lo : lo + cfg.batch_size]
        torch.index_select(data.train_x, 0, rows, out=batch_x)
        torch.index_select(data.train_y, 0, rows, out=batch_y)
        running_loss += kernels.step(batch_x, batch_y)
        iteration += 1
        since_eval += 1
        if cfg.save_at == iteration:
            kernels.write_back()
            snapshot = copy.deepcopy(model.state_dict())
        if iteration % cfg.eval_every == 0 or iteration == cfg.iterations:
            model.eval()
            val_loss, val_acc = kernels.evaluate(data.val_x, data.val_y)
            is_best = not curve or val_loss < curve[best_index]["val_loss"]
            if is_best:
                best_index = len(curve)
            stop = patience is not None and len(curve) - best_index >= patience
            is_last = stop or iteration == cfg.iterations
            test_acc = math.nan
            if is_best or is_last or _tests_every_evaluation(cfg, iteration):
                _, test_acc = kernels.evaluate(data.test_x, data.test_y)
            model.train()
            row = {
                "iteration": iteration,
                "train_loss": running_loss.item() / since_eval,
                "val_loss": val_loss,
                "val_accuracy": val_acc,
                "test_accuracy": test_acc,
            }
            if not math.isfinite(row["train_loss"]) or not math.isfinite(val_loss):
                raise LTHError(f"training diverged at iteration {iteration} (loss {row['train_loss']}); lower lr")
            curve.append(row)
            running_loss.zero_()
            since_eval = 0
            if log is not None:
                log(row)
            if stop:
                break
    model.eval()
    kernels.write_back()
    _, train_acc = kernels.evaluate(data.train_x, data.train_y)
    return TrainResult(
        curve=curve,
        early_stop=curve[best_index],
        final=curve[-1],
        final_train_accuracy=train_acc,
        iterations_run=iteration - cfg.start_iteration,
        snapshot=snapshot,
        kernel=kernels.name,
    )
