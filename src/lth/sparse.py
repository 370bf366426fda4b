"""The sparse execution path of LeNet-300-100 (``TrainConfig.kernels: sparse``, or ``auto`` below
the crossover): a job's cost falls with the weights that remain.

The network keeps only its surviving weights: each layer's values in row-major (CSR) order with
fixed CSR indices made once from the mask, all layers' values and then the biases in one flat
float32 vector. Adam's moments have the same layout (survivors and biases only); pruned weights
are never stored, so they stay exactly zero, and the dense weight tensors of the model are
written back on ``write_back`` (before a rewind snapshot and at the end), so checkpoints keep
their format.

The loops are compiled with numba (``lth.sparse_kernels``, imported only when a sparse network
is built: a dense job never imports numba): a training step and an evaluation are one call each,
with the activations stored batch-contiguous ([features, batch]) so that every nonzero weight is
one vectorised multiply-add across the batch, and the weight and input gradients at the
nonzeros come from one pass (the design of SparseProp, Nikdan et al., ICML 2023). The
mathematics is that of ``lth.training._MLPStep`` with masks and ``FusedAdam`` (the same loss,
gradients, Adam and early-stop protocol); only the order of floating-point sums differs, so the
numbers agree with the dense path's to float32 rounding and a rerun gives the same bits.

Only networks of linear layers with ReLU take this path (LeNet-300-100); ``lenet5`` (the CNN)
always trains with the dense kernels.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from torch import nn

from .errors import LTHError

_KERNELS = None


def _kernels():
    """The compiled loops (numba), imported and started on first use: a dense job never pays.

    numba's first call, even one its cache serves, loads numba's whole library of typing and
    lowering rules, and one of them probes SciPy for BLAS (``import scipy.linalg``: 0.5 s of CPU
    and 15 MB of memory per job on the project's machine), which these loops never use. So SciPy
    is kept out of that one start (``sys.modules["scipy"] = None`` makes its import fail, and is
    removed right after); a process that has imported SciPy already is left as it is."""
    global _KERNELS
    if _KERNELS is not None:
        return _KERNELS
    blocked = "scipy" not in sys.modules
    if blocked:
        sys.modules["scipy"] = None
    try:
        from . import sparse_kernels

        one = np.zeros(8, dtype=np.float32)
        sparse_kernels.dot_for_tests(one, one, 8)  # numba's start, here, while SciPy is kept out
    except ImportError as err:  # numba is a dependency (pyproject.toml); say what to install
        raise LTHError(f"kernels: sparse needs numba ({err}); pip install numba, or use kernels: dense") from None
    except RuntimeError as err:
        if "cannot cache" not in str(err):
            raise
        raise LTHError("kernels: sparse: numba cannot write its cache beside lth/sparse_kernels.py nor in the "
                       "user's cache folder; set NUMBA_CACHE_DIR to a writable folder") from None
    finally:
        if blocked and "scipy" in sys.modules and sys.modules["scipy"] is None:
            del sys.modules["scipy"]
    _KERNELS = sparse_kernels
    return _KERNELS


class SparseNet:
    """Linear-ReLU-...-Linear over survivor values: one training step (forward, softmax
    cross-entropy, backward at the survivors, Adam) and one evaluation per compiled call.

    ``layers`` are the network's linear layers in order, ``masks`` their weight masks (None:
    every weight survives). ``batch_size`` sizes the step's buffers; ``lr``, ``betas`` and
    ``eps`` are Adam's (as ``FusedAdam``'s)."""

    def __init__(self, layers: list[nn.Linear], masks: list[torch.Tensor | None], batch_size: int, lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.k = _kernels()
        self.layers = layers
        self.batch_size = batch_size
        self.flat: list[torch.Tensor] = []  # per layer: positions of the survivors in weight.flatten()
        values, crows, cols, meta = [], [], [], []
        w_off = c_off = a_off = 0
        for lyr, mask in zip(layers, masks):
            weight = lyr.weight.detach().cpu()
            n_out, n_in = weight.shape
            keep = torch.ones_like(weight, dtype=torch.bool) if mask is None else mask.cpu().to(torch.bool)
            if keep.shape != weight.shape:
                raise LTHError(f"mask has shape {tuple(keep.shape)}, weight has {tuple(weight.shape)}")
            flat = keep.flatten().nonzero().squeeze(1)  # row-major: the CSR order
            rows = torch.div(flat, n_in, rounding_mode="floor")
            crow = torch.zeros(n_out + 1, dtype=torch.int64)
            crow[1:] = torch.cumsum(torch.bincount(rows, minlength=n_out), 0)
            self.flat.append(flat)
            values.append(weight.flatten()[flat].numpy())
            cols.append((flat - rows * n_in).numpy())
            crows.append(crow.numpy())
            meta.append([n_in, n_out, c_off, w_off, 0, a_off])
            w_off += len(flat)
            c_off += n_out + 1
            a_off += n_out
        b_off = w_off
        for row, lyr in zip(meta, layers):
            row[4] = b_off
            b_off += lyr.out_features
        biases = [lyr.bias.detach().cpu().numpy() for lyr in layers]
        self.p = np.concatenate(values + biases).astype(np.float32)
        self.g = np.zeros_like(self.p)
        self.m = np.zeros_like(self.p)
        self.v = np.zeros_like(self.p)
        self.crow = np.concatenate(crows).astype(np.int32)
        self.col = np.concatenate(cols).astype(np.int32)
        self.meta = np.array(meta, dtype=np.int64)
        self.n_act = a_off  # rows of the activation buffers (every layer's outputs)
        self.hyper = np.array([lr, betas[0], betas[1], eps, 0.0], dtype=np.float64)  # last: Adam's step count
        n_in0 = layers[0].in_features
        self.ld = self.k.padded(batch_size)  # the batch padded to the vector width; pad columns stay zero
        self.x_t = np.zeros(n_in0 * self.ld, dtype=np.float32)
        self.active = np.zeros(n_in0, dtype=np.int32)
        self.acts = np.zeros(self.n_act * self.ld, dtype=np.float32)
        self.dzs = np.zeros(self.n_act * self.ld, dtype=np.float32)
        self.ones = np.ones(self.ld, dtype=np.float32)

    # --- the two compiled calls ------------------------------------------------------------

    def step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """One training step on the batch (x: [batch_size, n_in] float32, y: int64 labels);
        returns the mean loss of the batch before the update."""
        xn, yn = x.numpy(), y.numpy()
        if xn.shape[0] != self.batch_size:
            raise LTHError(f"the sparse step was built for batches of {self.batch_size}, got {xn.shape[0]}")
        return self.k.train_step(xn, yn, self.p, self.g, self.m, self.v, self.crow, self.col, self.meta, self.x_t,
                                 self.active, self.acts, self.dzs, self.ones, self.hyper)

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """(mean cross-entropy loss, accuracy) over a whole split."""
        xn = np.ascontiguousarray(x.numpy().reshape(len(x), -1))
        loss, correct = self.k.evaluate(xn, y.numpy(), self.p, self.crow, self.col, self.meta, self.n_act)
        return loss / len(x), correct / len(x)

    # --- the survivors, as torch tensors (views of the flat vectors) ------------------------

    def _weights(self, i: int, a: np.ndarray) -> torch.Tensor:
        lo = int(self.meta[i, 3])
        return torch.from_numpy(a[lo : lo + len(self.flat[i])])

    def _biases(self, i: int, a: np.ndarray) -> torch.Tensor:
        lo = int(self.meta[i, 4])
        return torch.from_numpy(a[lo : lo + int(self.meta[i, 1])])

    def values(self, i: int) -> torch.Tensor:
        """Layer i's surviving weights, in the order of ``flat[i]``."""
        return self._weights(i, self.p)

    def weight_grad(self, i: int) -> torch.Tensor:
        """The gradient of the last step at layer i's survivors."""
        return self._weights(i, self.g)

    def bias(self, i: int) -> torch.Tensor:
        return self._biases(i, self.p)

    def bias_grad(self, i: int) -> torch.Tensor:
        return self._biases(i, self.g)

    def dense_weight(self, i: int) -> torch.Tensor:
        """Layer i's full weight matrix, pruned entries zero."""
        lyr = self.layers[i]
        w = torch.zeros(lyr.out_features * lyr.in_features)
        w[self.flat[i]] = self.values(i)
        return w.view(lyr.out_features, lyr.in_features)

    @torch.no_grad()
    def write_back(self) -> None:
        """Write the survivors and biases into the layers' tensors (pruned entries zero)."""
        for i, lyr in enumerate(self.layers):
            lyr.weight.copy_(self.dense_weight(i))
            lyr.bias.copy_(self.bias(i))
