"""The sparse execution path of LeNet-300-100 (``TrainConfig.kernels: sparse``, or ``auto`` below
the crossover): a job's cost falls with the weights that remain.

Each layer keeps only its surviving weights, as one value vector in row-major (CSR) order with
fixed CSR indices made once from the mask; the value vector is what Adam updates (FusedAdam, so
its moment buffers hold survivors only) and pruned weights are never stored, so they stay
exactly zero. Biases stay dense. The mathematics is that of ``_MLPStep`` with masks (the same
loss, gradients, Adam and early-stop protocol); only the order of floating-point sums differs.

A step works in the transposed layout (features x batch), so that every product with a CSR
matrix has a contiguous dense right operand:

- forward: ``z^T = W h^T + b`` with ``torch.mm(W_csr, h^T)``;
- weight gradient at the survivors only: ``dW = dz^T h`` sampled at the mask with
  ``torch.sparse.sampled_addmm`` (written straight into the gradient of the value vector);
- input gradient: ``dh^T = W^T dz^T`` with a CSR copy of ``W^T`` whose values are gathered from
  the value vector through a fixed permutation.

``torch``'s CSR kernels cost several times more per multiply-add than a dense GEMM, so at high
density a dense product is faster. Each layer therefore picks, per product, a CSR kernel or a
dense one by its own density (``LayerPlan``, thresholds below, measured with
``benchmarks/benchmark.py`` on one thread). A dense product uses a scratch dense copy of the
weights, refreshed from the value vector after each optimizer step (its pruned entries are
zero and are never written), and a dense weight gradient gathered at the survivors: the
numbers are the same up to summation order, and the stored weights, the optimizer state and
the update stay survivors-only in every case.

Evaluation (``SparseEvaluator``) runs in chunks of ``EVAL_CHUNK`` rows. The validation and test
images are fixed, and MNIST pixels are about 81 % zeros: a CSR copy of them, made once per job,
makes the first layer's product cheaper (``X_csr W^T``) at high density; at low density the
weights' CSR form (``W_csr X^T``) is cheaper still.

Only networks of linear layers with ReLU take this path (LeNet-300-100); ``lenet5`` (the CNN)
always trains with the dense kernels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

# --- where a CSR product beats a dense one (fraction of a layer's weights remaining) ----------
# Measured on one thread (AMD EPYC, torch 2.14 CPU, batch 60, CPU time, int32 CSR indices), per
# product of layer 1 (300 x 784): forward CSR 0.67 / 0.24 / 0.088 ms at 21.1 / 7 / 1.9 % against
# 0.45-0.6 ms dense; the sampled weight gradient 1.06 / 0.35 / 0.13 ms against 0.4-0.5 ms for the
# dense gradient; the transposed input gradient (layer 2, 100 x 300) 0.10 / 0.04 / 0.03 ms
# against 0.07-0.1 ms dense.
FORWARD_CSR_BELOW = 0.2
WEIGHT_GRAD_CSR_BELOW = 0.15
INPUT_GRAD_CSR_BELOW = 0.2
# A layer this small (the output layer, 10 x 100) takes CSR products at every density: its
# products cost about the same either way, and the dense scratch copy adds two index operations.
SMALL_LAYER = 4096
# Evaluation, layer 1 on a chunk of 1000 images (CPU time, one thread): the images' CSR form
# (X_csr W^T) took 8.8 ms against 12.1 ms dense at 100 %, and about as much as dense at 21 %;
# the weights' CSR form on a pre-transposed chunk (W_csr X^T) 9.7 / 1.3 ms at 7 / 1.9 %,
# 25 ms at 21 %. A whole evaluation with the weights' form was 1.5 times dense at 7.0 % and
# 0.57 / 0.22 at 3.6 / 1.9 % (benchmarks/benchmark.py). Layers 2 and 3 use CSR below
# FORWARD_CSR_BELOW.
EVAL_WEIGHT_CSR_BELOW = 0.05
EVAL_CHUNK = 1000


@dataclass(frozen=True)
class LayerPlan:
    """Which products of one layer use its CSR form (True) or the dense scratch copy (False)."""

    forward: bool
    weight_grad: bool
    input_grad: bool

    @classmethod
    def for_layer(cls, density: float, size: int) -> LayerPlan:
        if size <= SMALL_LAYER:
            return cls.all_csr()
        return cls(density < FORWARD_CSR_BELOW, density < WEIGHT_GRAD_CSR_BELOW, density < INPUT_GRAD_CSR_BELOW)

    @classmethod
    def all_csr(cls) -> LayerPlan:
        return cls(True, True, True)

    @property
    def needs_dense(self) -> bool:
        return not (self.forward and self.weight_grad and self.input_grad)


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, size) -> torch.Tensor:
    """A CSR tensor that shares ``values``' storage (in-place updates of the vector show through).

    The indices are made here from a mask, so torch's invariant checks are off (they cost time
    at every product); its one-time "beta" warning is silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(crow, col, values, size, check_invariants=False)


def _crow(rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    crow = torch.zeros(n_rows + 1, dtype=torch.int32, device=rows.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=n_rows), 0)
    return crow


class SparseLinear:
    """One linear layer's surviving weights: a value vector with fixed CSR indices.

    ``values`` (with ``values.grad``) is the parameter Adam updates; ``csr`` and ``grad_csr``
    are CSR views of the value and gradient vectors; ``t_csr`` is ``W^T`` in CSR form, its
    values gathered through ``t_perm`` before each input-gradient product."""

    def __init__(self, layer: nn.Linear, mask: torch.Tensor | None, plan: LayerPlan | None = None) -> None:
        self.layer = layer
        weight = layer.weight.detach()
        self.out_features, self.in_features = weight.shape
        device = weight.device
        keep = torch.ones_like(weight, dtype=torch.bool) if mask is None else mask.to(device=device, dtype=torch.bool)
        self.flat = keep.flatten().nonzero().squeeze(1)  # row-major: the CSR order
        self.nnz = self.flat.numel()
        self.density = self.nnz / weight.numel()
        self.full = self.nnz == weight.numel()
        self.plan = plan or LayerPlan.for_layer(self.density, weight.numel())
        self.values = weight.flatten()[self.flat].clone()
        self.values.grad = torch.zeros_like(self.values)
        rows = torch.div(self.flat, self.in_features, rounding_mode="floor")
        cols = self.flat - rows * self.in_features
        size = (self.out_features, self.in_features)
        crow, col = _crow(rows, self.out_features), cols.to(torch.int32)
        self.csr = _csr(crow, col, self.values, size)
        self.grad_csr = _csr(crow, col, self.values.grad, size)
        # W^T in CSR form: the survivors ordered by (column, row); a stable sort keeps rows ascending.
        self.t_perm = torch.argsort(cols, stable=True)
        self.t_values = torch.empty_like(self.values)
        self.t_csr = _csr(_crow(cols[self.t_perm], self.in_features), rows[self.t_perm].to(torch.int32),
                          self.t_values, (self.in_features, self.out_features))
        self.dense = self.dense_grad = None
        if self.plan.needs_dense:
            if self.full:  # every weight survives: the value vector is the dense matrix
                self.dense, self.dense_grad = self.values.view(size), self.values.grad.view(size)
            else:
                self.dense, self.dense_grad = torch.zeros(size, device=device), torch.empty(size, device=device)
                self.refresh_dense()

    def refresh_dense(self) -> None:
        """Copy the value vector into the dense scratch copy (its pruned entries stay zero)."""
        if self.dense is not None and not self.full:
            self.dense.view(-1).index_copy_(0, self.flat, self.values)

    def dense_weight(self) -> torch.Tensor:
        """The full weight matrix, pruned entries zero."""
        w = torch.zeros(self.out_features, self.in_features, device=self.values.device)
        w.view(-1).index_copy_(0, self.flat, self.values)
        return w

    @torch.no_grad()
    def write_back(self) -> None:
        """Write the survivors into the layer's dense weight tensor (pruned entries zero)."""
        self.layer.weight.copy_(self.dense_weight())


class SparseMLPStep:
    """One training step of Linear-ReLU-...-Linear + softmax cross-entropy over survivor values.

    The same mathematics as ``lth.training._MLPStep`` (see there), in the transposed layout:
    for logits z^T and mean cross-entropy over B rows, dL/dz^T = (softmax(z^T) - onehot)/B.
    ``optimizer`` must update ``[l.values for l in layers]`` and the layers' biases."""

    def __init__(self, layers: list[SparseLinear], batch_size: int, optimizer) -> None:
        self.layers, self.optimizer = layers, optimizer
        p = layers[0].values
        kw = dict(device=p.device, dtype=p.dtype)
        self.x_t = torch.empty(layers[0].in_features, batch_size, **kw)
        self.acts = [torch.empty(lyr.out_features, batch_size, **kw) for lyr in layers]
        self.grads_in = [torch.empty(lyr.in_features, batch_size, **kw) for lyr in layers]
        self.relu_mask = [torch.empty(lyr.out_features, batch_size, **kw) for lyr in layers[:-1]]
        self.logp = torch.empty(layers[-1].out_features, batch_size, **kw)
        self.biases = [lyr.layer.bias.detach()[:, None] for lyr in layers]
        self.bias_grads = [lyr.layer.bias.grad for lyr in layers]
        self.scale = 1.0 / batch_size

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        layers, acts = self.layers, self.acts
        self.x_t.copy_(x.t())
        h = self.x_t
        for i, lyr in enumerate(layers):
            if lyr.plan.forward:
                torch.mm(lyr.csr, h, out=acts[i])
                acts[i].add_(self.biases[i])
            else:
                torch.addmm(self.biases[i], lyr.dense, h, out=acts[i])
            if i < len(layers) - 1:
                acts[i].relu_()
            h = acts[i]
        torch.log_softmax(acts[-1], 0, out=self.logp)
        picked = self.logp.gather(0, y[None, :])
        loss = -picked.mean()
        dz = self.logp.exp_()
        dz.scatter_add_(0, y[None, :], torch.full_like(picked, -1.0))
        dz.mul_(self.scale)
        for i in range(len(layers) - 1, -1, -1):
            lyr = layers[i]
            h_in = self.x_t if i == 0 else acts[i - 1]
            if lyr.plan.weight_grad:
                torch.sparse.sampled_addmm(lyr.grad_csr, dz, h_in.t(), beta=0.0, out=lyr.grad_csr)
            else:  # the dense gradient, then its survivors (with every weight alive, it is the vector)
                torch.mm(dz, h_in.t(), out=lyr.dense_grad)
                if not lyr.full:
                    torch.index_select(lyr.dense_grad.view(-1), 0, lyr.flat, out=lyr.values.grad)
            torch.sum(dz, 1, out=self.bias_grads[i])
            if i > 0:
                below = self.grads_in[i]
                if lyr.plan.input_grad:
                    torch.index_select(lyr.values, 0, lyr.t_perm, out=lyr.t_values)
                    torch.mm(lyr.t_csr, dz, out=below)
                else:
                    torch.mm(lyr.dense.t(), dz, out=below)
                torch.gt(acts[i - 1], 0, out=self.relu_mask[i - 1])
                below.mul_(self.relu_mask[i - 1])
                dz = below
        self.optimizer.step()
        for lyr in layers:
            lyr.refresh_dense()
        return loss


def _csr_int32(x: torch.Tensor) -> torch.Tensor:
    """CSR copy of a dense matrix with int32 indices (torch converts int64 ones on every product)."""
    c = x.to_sparse_csr()
    return _csr(c.crow_indices().to(torch.int32), c.col_indices().to(torch.int32), c.values(), c.shape)


class SparseEvaluator:
    """(mean cross-entropy loss, accuracy) over a split, from the survivor values, in chunks.

    ``add_fixed_input(x)`` prepares a split that is evaluated again and again (the validation
    and test images), once per job: where the first layer keeps ``EVAL_WEIGHT_CSR_BELOW`` of its
    weights or more, a CSR copy of the images (its product runs over the nonzero pixels only);
    below, transposed copies of its chunks, the dense right operand of the weights' CSR form."""

    def __init__(self, layers: list[SparseLinear], input_csr: bool = True) -> None:
        self.layers = layers
        self.input_csr = input_csr
        self.weight_csr_first = layers[0].density < EVAL_WEIGHT_CSR_BELOW
        self.csr_later = [lyr.density < FORWARD_CSR_BELOW or lyr.values.numel() <= SMALL_LAYER for lyr in layers]
        self._fixed: list[tuple[torch.Tensor, list[torch.Tensor]]] = []

    def add_fixed_input(self, x: torch.Tensor) -> None:
        if self.weight_csr_first:
            chunks = [x[s : s + EVAL_CHUNK].t().contiguous() for s in range(0, len(x), EVAL_CHUNK)]
        elif self.input_csr:
            chunks = [_csr_int32(x[s : s + EVAL_CHUNK]) for s in range(0, len(x), EVAL_CHUNK)]
        else:
            return
        self._fixed.append((x, chunks))

    def _chunks_of(self, x: torch.Tensor) -> list[torch.Tensor] | None:
        return next((chunks for fixed, chunks in self._fixed if fixed is x), None)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        layers = self.layers
        prepared = self._chunks_of(x)
        w1_t = None if self.weight_csr_first else layers[0].dense_weight().t().contiguous()
        dense = [None if csr else lyr.dense_weight() for csr, lyr in zip(self.csr_later, layers)]
        biases = [lyr.layer.bias.detach() for lyr in layers]
        loss = torch.zeros((), dtype=torch.float64, device=x.device)
        correct = torch.zeros((), dtype=torch.int64, device=x.device)
        for k, start in enumerate(range(0, len(x), EVAL_CHUNK)):
            # Layer 1; h is (rows x features), or (features x rows) where ``transposed``.
            if self.weight_csr_first:
                x_t = prepared[k] if prepared is not None else x[start : start + EVAL_CHUNK].t().contiguous()
                h, transposed = torch.mm(layers[0].csr, x_t).add_(biases[0][:, None]), True
            elif prepared is not None:  # the images' CSR form
                h, transposed = torch.mm(prepared[k], w1_t).add_(biases[0]), False
            else:
                h, transposed = torch.addmm(biases[0], x[start : start + EVAL_CHUNK], w1_t), False
            for i in range(1, len(layers)):
                h.relu_()
                if self.csr_later[i]:
                    h_t = h if transposed else h.t().contiguous()
                    h, transposed = torch.mm(layers[i].csr, h_t).add_(biases[i][:, None]), True
                elif transposed:
                    h = torch.addmm(biases[i][:, None], dense[i], h)
                else:
                    h = torch.addmm(biases[i], h, dense[i].t())
            logits = h.t() if transposed else h
            target = y[start : start + EVAL_CHUNK]
            loss += nn.functional.cross_entropy(logits, target, reduction="sum").double()
            correct += (logits.argmax(1) == target).sum()
        return loss.item() / len(x), correct.item() / len(x)


def sparse_layers(layers: list[nn.Linear], masks: dict[str, torch.Tensor] | None, names: list[str],
                  plan: LayerPlan | None = None) -> list[SparseLinear]:
    """``SparseLinear`` for each of ``layers`` (weight names ``names``) under ``masks``."""
    masks = masks or {}
    return [SparseLinear(lyr, masks.get(name), plan) for lyr, name in zip(layers, names)]
