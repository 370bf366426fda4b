"""Items 1-4: the training loop of ``lth.training.train`` against the usual way of writing it and
against the bound (its eight matrix multiplications), and one evaluation against the 100 steps
it follows; ``--profile``: where a step's time goes."""

from __future__ import annotations

import gc
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from lth.data import load_split
from lth.models import init_model
from lth.training import EVAL_CHUNK, FusedAdam, _make_step, _Masker, _MLPStep, evaluate

from .common import (
    BATCH,
    CPU,
    EVAL_EVERY,
    LR,
    REMAINING,
    VAL_SIZE,
    Run,
    default_mnist_dir,
    measure,
    median,
    prepare_data,
    sync,
)


def sparse_masks(model: nn.Module, remaining: float, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    masks = {}
    for name, p in model.named_parameters():
        if name.endswith("weight"):
            flat = torch.zeros(p.numel(), dtype=torch.bool)
            flat[torch.randperm(p.numel(), generator=g)[: round(remaining * p.numel())]] = True
            masks[name] = flat.view_as(p)
    return masks


class OursLoop:
    """The body of ``lth.training.train``'s loop, built the way ``train`` builds it: the step of
    ``_make_step`` (``_MLPStep``), ``FusedAdam``, ``_Masker``, a seeded permutation per epoch and
    each batch gathered into preallocated buffers. ``check_against_train`` shows that it
    computes what ``train`` computes."""

    def __init__(self, data, masks, data_seed: int = 0, device: torch.device = CPU) -> None:
        # As train(): the model and the data on the device first, then the masker and optimizer.
        self.device = device
        self.model = init_model("lenet_300_100", 0).to(device)
        data = data.to(device)
        self.masker = _Masker(self.model, masks)
        self.masker.apply()
        self.optimizer = FusedAdam(self.model.parameters(), lr=LR)
        self.step = _make_step(self.model, BATCH, self.optimizer)
        assert isinstance(self.step, _MLPStep), "LeNet-300-100 must take the hand-written MLP step"
        self.data = data
        self.n = len(data.train_x)
        self.batches = self.n // BATCH
        self.generator = torch.Generator().manual_seed(data_seed)
        self.batch_x = torch.empty((BATCH, *data.train_x.shape[1:]), dtype=data.train_x.dtype, device=device)
        self.batch_y = torch.empty((BATCH,), dtype=data.train_y.dtype, device=device)
        self.running_loss = torch.zeros((), device=device)
        self.iteration = 0
        self.perm = None

    def run(self, steps: int) -> float:
        """Seconds per step (the per-epoch permutation included where an epoch starts)."""
        data, bx, by, step, masker = self.data, self.batch_x, self.batch_y, self.step, self.masker
        sync(self.device)
        t = time.perf_counter()
        for _ in range(steps):
            batch = self.iteration % self.batches
            if batch == 0:
                self.perm = torch.randperm(self.n, generator=self.generator).to(self.device)
            rows = self.perm[batch * BATCH : (batch + 1) * BATCH]
            torch.index_select(data.train_x, 0, rows, out=bx)
            torch.index_select(data.train_y, 0, rows, out=by)
            self.running_loss += step(bx, by)
            masker.apply()
            self.iteration += 1
        sync(self.device)
        return (time.perf_counter() - t) / steps


def check_against_train(data, masks, steps: int, device: torch.device = CPU) -> bool:
    """True if ``steps`` steps of ``OursLoop`` give the weights ``lth.training.train`` gives
    (both on ``device``)."""
    from lth.training import TrainConfig, train

    loop = OursLoop(data, masks, data_seed=7, device=device)
    loop.run(steps)
    model = init_model("lenet_300_100", 0)
    cfg = TrainConfig(lr=LR, batch_size=BATCH, iterations=steps, eval_every=steps, data_seed=7, device=device.type)
    train(model, masks, data, cfg)
    mine, theirs = loop.model.state_dict(), model.state_dict()
    return all(torch.equal(mine[k], theirs[k]) for k in theirs)


def lenet_sequential() -> nn.Sequential:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10)
    )


class UsualLoop:
    """torchvision MNIST + ToTensor + Normalize + DataLoader + nn.Sequential + torch.optim.Adam."""

    def __init__(self, tv_root: Path, device: torch.device = CPU) -> None:
        from torchvision import datasets, transforms

        self.device = device
        tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
        self.dataset = datasets.MNIST(str(tv_root), train=True, download=False, transform=tf)
        self.loader = torch.utils.data.DataLoader(self.dataset, batch_size=BATCH, shuffle=True, drop_last=True)
        self.model = lenet_sequential().to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.loss_fn = nn.CrossEntropyLoss()
        self.it = iter(self.loader)

    def _next(self):
        try:
            return next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            return next(self.it)

    def run(self, steps: int) -> float:
        device = self.device
        sync(device)
        t = time.perf_counter()
        for _ in range(steps):
            x, y = self._next()
            x, y = x.to(device), y.to(device)  # no-ops on the CPU
            self.optimizer.zero_grad()
            loss = self.loss_fn(self.model(x), y)
            loss.backward()
            self.optimizer.step()
        sync(device)
        return (time.perf_counter() - t) / steps


class InMemoryLoop:
    """The usual network and optimizer, fed from in-memory tensors (no DataLoader)."""

    def __init__(self, data, device: torch.device = CPU) -> None:
        self.device = device
        self.x, self.y = data.train_x.to(device), data.train_y.to(device)
        self.model = lenet_sequential().to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.loss_fn = nn.CrossEntropyLoss()
        self.batches = len(self.x) // BATCH
        self.batch = 0

    def run(self, steps: int) -> float:
        sync(self.device)
        t = time.perf_counter()
        for _ in range(steps):
            lo = self.batch * BATCH
            self.batch = (self.batch + 1) % self.batches
            self.optimizer.zero_grad()
            loss = self.loss_fn(self.model(self.x[lo : lo + BATCH]), self.y[lo : lo + BATCH])
            loss.backward()
            self.optimizer.step()
        sync(self.device)
        return (time.perf_counter() - t) / steps


class BoundLoop:
    """Eight matmuls per step, on preallocated tensors with the layouts ``_MLPStep`` uses."""

    def __init__(self, data, device: torch.device = CPU) -> None:
        self.device = device
        g = torch.Generator().manual_seed(0)  # drawn on the CPU, then moved (a no-op there)
        self.x = data.train_x[:BATCH].clone().to(device)
        self.w = [(torch.randn(o, i, generator=g) * 0.05).to(device) for i, o in ((784, 300), (300, 100), (100, 10))]
        self.a = [torch.empty(BATCH, o, device=device) for o in (300, 100, 10)]  # activations
        self.d = [torch.rand(BATCH, o, generator=g).to(device) for o in (300, 100, 10)]  # dL/dz
        self.g = [torch.empty_like(w) for w in self.w]  # weight gradients

    def run(self, steps: int) -> float:
        x, (w1, w2, w3), (a1, a2, a3), (d1, d2, d3), (g1, g2, g3) = self.x, self.w, self.a, self.d, self.g
        mm = torch.mm
        sync(self.device)
        t = time.perf_counter()
        for _ in range(steps):
            mm(x, w1.t(), out=a1)
            mm(a1, w2.t(), out=a2)
            mm(a2, w3.t(), out=a3)
            mm(d3.t(), a2, out=g3)
            mm(d3, w3, out=d2)
            mm(d2.t(), a1, out=g2)
            mm(d2, w2, out=d1)
            mm(d1.t(), x, out=g1)
        sync(self.device)
        return (time.perf_counter() - t) / steps


def check_loop(run: Run) -> dict:
    """``ours_loop_equals_train``: the timed loop computes what ``train`` computes. Returns the masks used."""
    masks20 = sparse_masks(init_model("lenet_300_100", 0), REMAINING)
    same = check_against_train(run.data, masks20, 30, run.device)
    run.put("ours_loop_equals_train", str(same), "bool", 1, "the timed loop gives train()'s weights (30 steps)")
    if not same:
        print("warning: the benchmark's loop no longer computes what lth.training.train computes")
    return masks20


def gpu_memory(run: Run, masks20) -> None:
    """Peak GPU memory of our loop (20 % remaining) and one evaluation, the split already there."""
    device, data = run.device, run.data
    gc.collect()  # check_against_train's models and buffers
    sync(device)
    split_bytes = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    probe = OursLoop(data, masks20, device=device)
    probe.run(run.steps)
    probe.model.eval()
    evaluate(probe.model, data.val_x, data.val_y)
    evaluate(probe.model, data.test_x, data.test_y)
    sync(device)
    peak = torch.cuda.max_memory_allocated(device)
    del probe
    run.put("gpu_split_mb", split_bytes / 2**20, "MB", 1, "MNIST split on the device (allocated before the loop)")
    run.put("gpu_peak_allocated_mb", peak / 2**20, "MB", 1,
            f"torch.cuda.max_memory_allocated: split + our loop (20% remaining, {run.steps} steps) + one evaluation")
    run.put("gpu_peak_minus_split_mb", (peak - split_bytes) / 2**20, "MB", 1, "our loop and evaluation alone")


def time_in_process(run: Run, masks20) -> tuple[dict, dict, dict]:
    """Items 1-4, interleaved: (median wall s, median CPU s, steps per repetition) per name."""
    device, data, steps = run.device, run.data, run.steps
    dense = OursLoop(data, None, device=device)
    loops = {
        "ours_dense": dense,
        "ours_sparse20": OursLoop(data, masks20, device=device),
        "usual": UsualLoop(run.tv_root, device),
        "usual_inmemory": InMemoryLoop(data, device),
        "bound": BoundLoop(data, device),
    }
    usual_steps = max(10, steps // 4)  # the usual way is slow: fewer steps, same repetitions
    n_steps = {k: usual_steps if k == "usual" else steps for k in loops}
    # Warm-up: allocator, MKL, the DataLoader's iterator; on a GPU also the CUDA context,
    # cuBLAS handles and the lazily loaded kernels (evaluation's too).
    for loop in loops.values():
        loop.run(min(20, steps))

    def eval_val(_n):
        evaluate(dense.model, data.val_x, data.val_y)

    def eval_test(_n):
        evaluate(dense.model, data.test_x, data.test_y)

    dense.model.eval()
    eval_val(1)
    eval_test(1)
    dense.model.train()
    sync(device)
    wall: dict[str, list[float]] = {k: [] for k in [*loops, "eval_val", "eval_test"]}
    cpu: dict[str, list[float]] = {k: [] for k in wall}
    for _ in range(run.reps):
        for name, loop in loops.items():
            w, c = measure(loop.run, n_steps[name], device)
            wall[name].append(w)
            cpu[name].append(c)
        dense.model.eval()
        for name, fn in (("eval_val", eval_val), ("eval_test", eval_test)):
            w, c = measure(fn, 1, device)
            wall[name].append(w)
            cpu[name].append(c)
        dense.model.train()
    mw = {k: median(v) for k, v in wall.items()}
    # On a GPU the CPU-time figures are not written (put_dev); stand-ins keep the arithmetic safe.
    mc = mw if run.gpu else {k: median(v) for k, v in cpu.items()}
    return mw, mc, n_steps


def put_step_rows(run: Run, mw: dict, mc: dict, n_steps: dict) -> None:
    """Items 1-3: time per step, steps per second, and the ratios against the usual way and the bound."""
    loops = [k for k in n_steps]
    for name in loops:
        run.put_dev(f"{name}_step_ms", mw[name] * 1e3, "ms", detail=f"{n_steps[name]} steps per repetition",
                    cpu=mc[name] * 1e3)
    for name in loops:
        run.put_dev(f"{name}_steps_per_s", 1 / mw[name], "steps/s", cpu=1 / mc[name])
    for name in ("ours_dense", "ours_sparse20"):
        run.put_dev(f"ratio_{name}_over_usual", mw["usual"] / mw[name], "x", detail="steps/s ratio; target >= 4",
                    cpu=mc["usual"] / mc[name])
        run.put_dev(f"ratio_{name}_over_bound", mw["bound"] / mw[name], "x", detail="steps/s ratio; target >= 0.8",
                    cpu=mc["bound"] / mc[name])
    for name in ("usual", "usual_inmemory"):
        run.put_dev(f"ratio_{name}_over_bound", mw["bound"] / mw[name], "x", cpu=mc["bound"] / mc[name])


def put_eval_rows(run: Run, mw: dict, mc: dict) -> None:
    """Item 4: one evaluation, and its cost against the 100 steps it follows."""
    data = run.data
    run.put_dev("eval_val_ms", mw["eval_val"] * 1e3, "ms", detail=f"{len(data.val_x)} images, chunks of {EVAL_CHUNK}",
                cpu=mc["eval_val"] * 1e3)
    run.put_dev("eval_test_ms", mw["eval_test"] * 1e3, "ms",
                detail=f"{len(data.test_x)} images, chunks of {EVAL_CHUNK}", cpu=mc["eval_test"] * 1e3)
    hw, hc = EVAL_EVERY * mw["ours_dense"], EVAL_EVERY * mc["ours_dense"]
    run.put_dev("eval_all_over_100_steps", (mw["eval_val"] + mw["eval_test"]) / hw, "x",
                detail="test_eval=all: val + test per evaluation; target <= 0.25",
                cpu=(mc["eval_val"] + mc["eval_test"]) / hc)
    run.put_dev("eval_best_over_100_steps", mw["eval_val"] / hw, "x",
                detail="test_eval=best: val only (+ test at a new minimum)", cpu=mc["eval_val"] / hc)


def breakdown(data, reps: int = 9, steps: int = 200) -> dict[str, float]:
    """CPU seconds per step of our step's parts, each timed alone (interleaved repetitions)."""
    full = OursLoop(data, sparse_masks(init_model("lenet_300_100", 0), REMAINING))
    no_opt = OursLoop(data, sparse_masks(init_model("lenet_300_100", 0), REMAINING))
    no_opt.step.optimizer = type("NoStep", (), {"step": lambda self: None})()
    opt, masker = full.optimizer, full.masker
    bx, by = full.batch_x, full.batch_y
    perm = torch.randperm(len(data.train_x))
    bound = BoundLoop(data)

    def gather(n):
        for i in range(n):
            rows = perm[i * BATCH : (i + 1) * BATCH]
            torch.index_select(data.train_x, 0, rows, out=bx)
            torch.index_select(data.train_y, 0, rows, out=by)

    def repeat(fn):
        def run(n):
            for _ in range(n):
                fn()
        return run

    parts = {
        "whole step (train()'s loop, 20% remaining)": full.run,
        "  without the optimizer step": no_opt.run,
        "  FusedAdam.step alone": repeat(opt.step),
        "  _Masker.apply alone": repeat(masker.apply),
        "  batch gather alone": gather,
        "bound: the 8 matmuls": bound.run,
    }
    times: dict[str, list[float]] = {k: [] for k in parts}
    for fn in parts.values():
        fn(20)
    for _ in range(reps):
        for k, fn in parts.items():
            times[k].append(measure(fn, steps)[1])
    return {k: median(v) for k, v in times.items()}


def profile(args) -> int:
    """Where the time of a step goes: torch.profiler's per-operator self CPU time, for 300 steps
    of our loop (20 % remaining), 300 steps of the bound, and one evaluation (val + test)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    torch.set_num_threads(args.threads)
    steps = args.steps or 300
    with tempfile.TemporaryDirectory(prefix="lth-bench-") as tmp_name:
        idx, _tv, what = prepare_data(args.mnist or default_mnist_dir(), Path(tmp_name))
        data = load_split(idx, VAL_SIZE, 0)
    ours = OursLoop(data, sparse_masks(init_model("lenet_300_100", 0), REMAINING))
    bound = BoundLoop(data)
    ours.run(50)
    bound.run(50)

    def evaluation(_n):
        evaluate(ours.model, data.val_x, data.val_y)
        evaluate(ours.model, data.test_x, data.test_y)

    print(f"data: {what}; {args.threads} thread(s)")
    print("\n== our step in parts: CPU time per step, median of 9 repetitions of 200 steps")
    for name, per_step in breakdown(data).items():
        print(f"{name:<48} {per_step * 1e3:8.3f} ms")
    print("\n== self CPU time per operator (torch.profiler)")
    for title, fn, n in ((f"ours, {steps} steps", ours.run, steps), (f"bound, {steps} steps", bound.run, steps),
                         ("one evaluation (5K val + 10K test)", evaluation, 1)):
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            fn(n)
        print(f"\n== {title}")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=16))
    return 0
