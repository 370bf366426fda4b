"""The private PyTorch entry points the training loop uses, checked once at import.

``torch._fused_adam_`` (the kernel behind ``torch.optim.Adam(fused=True)``) and the
``torch._foreach_*`` ops are not public API: a PyTorch release may rename them or change their
arguments. They are probed here with a one-element call when ``lth`` loads them, so that a
PyTorch without them fails every training job at once with one line that says what to install,
instead of deep inside the first step.

- ``_foreach_zero_``, ``_foreach_add_`` (a scalar), ``_foreach_mul_`` (a list of tensors) have an
  exact fallback: the same elementwise op tensor by tensor (the same bits; only slower).
- ``_fused_adam_`` has none that gives the same numbers (the single-tensor Adam rounds in another
  order), so without it training stops with an error naming the PyTorch that has it (2.4 and
  newer: CPU fused Adam; tested versions in docs/install.md).
"""

from __future__ import annotations

import torch

from .errors import LTHError

FUSED_ADAM_SINCE = "2.4"


def _probe_foreach() -> dict[str, bool]:
    """Which foreach ops work as this module calls them (name -> usable)."""
    usable = {}
    calls = {
        "_foreach_zero_": lambda op, t: op([t]),
        "_foreach_add_": lambda op, t: op([t], 1),
        "_foreach_mul_": lambda op, t: op([t], [torch.ones(1)]),
    }
    for name, call in calls.items():
        op = getattr(torch, name, None)
        try:
            call(op, torch.ones(1))
            usable[name] = True
        except (TypeError, RuntimeError, AttributeError, NotImplementedError):
            usable[name] = False
    return usable


def _probe_fused_adam() -> str | None:
    """None when ``torch._fused_adam_`` takes the arguments FusedAdam passes, else why not."""
    op = getattr(torch, "_fused_adam_", None)
    if op is None:
        return "torch._fused_adam_ does not exist"
    t = [torch.ones(1)]
    try:
        op(t, [torch.ones(1)], [torch.zeros(1)], [torch.zeros(1)], [], [torch.ones(())], lr=1e-3, beta1=0.9,
           beta2=0.999, weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)
    except (TypeError, RuntimeError, NotImplementedError) as err:
        return f"torch._fused_adam_ refuses the arguments lth passes ({type(err).__name__}: {str(err).splitlines()[0]})"
    return None


FOREACH = _probe_foreach()
FUSED_ADAM_PROBLEM = _probe_fused_adam()


def require_fused_adam(problem: str | None = None) -> None:
    """Raise the one-line error for a PyTorch whose fused Adam this package cannot call."""
    problem = FUSED_ADAM_PROBLEM if problem is None else problem
    if problem:
        raise LTHError(f"PyTorch {torch.__version__}: {problem}; lth trains with PyTorch's fused Adam "
                       f"(PyTorch >= {FUSED_ADAM_SINCE}): install a tested version (docs/install.md)")


def foreach_zero_(tensors: list[torch.Tensor]) -> None:
    if FOREACH["_foreach_zero_"]:
        torch._foreach_zero_(tensors)
    else:
        for t in tensors:
            t.zero_()


def foreach_add_(tensors: list[torch.Tensor], scalar: float) -> None:
    if FOREACH["_foreach_add_"]:
        torch._foreach_add_(tensors, scalar)
    else:
        for t in tensors:
            t.add_(scalar)


def foreach_mul_(tensors: list[torch.Tensor], others: list[torch.Tensor]) -> None:
    if FOREACH["_foreach_mul_"]:
        torch._foreach_mul_(tensors, others)
    else:
        for t, o in zip(tensors, others):
            t.mul_(o)


class FusedAdam:
    """Adam (no weight decay) through PyTorch's fused kernel, bit-identical to
    ``torch.optim.Adam(params, lr, fused=True)``.

    Why not that class: constructing any ``torch.optim`` optimizer imports ``torch._dynamo``,
    which costs about 1.5 s per training job on this machine's CPUs (a third of a job's fixed
    cost). A test checks that both give the same bits.
    """

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        require_fused_adam()
        self.params = [p for p in params]
        self.lr, self.betas, self.eps = lr, betas, eps
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        self.exp_avgs = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in self.params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]

    def zero_grad(self, set_to_none: bool = False) -> None:
        foreach_zero_([p.grad for p in self.params])

    @torch.no_grad()
    def step(self) -> None:
        foreach_add_(self.steps, 1)
        torch._fused_adam_(
            self.params,
            [p.grad for p in self.params],
            self.exp_avgs,
            self.exp_avg_sqs,
            [],
            self.steps,
            lr=self.lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=0.0,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )
