"""The compiled loops of the sparse path (``lth.sparse``): CSR weights, activations stored
batch-contiguous, after SparseProp (Nikdan et al., ICML 2023).

Layout. Every array is flat, float32 unless said otherwise:

- ``p``: the parameters: the surviving weights of layer 0, 1, ... in CSR order (row-major), then
  the biases of layer 0, 1, ...; ``g``, ``m``, ``v`` (the gradient and Adam's moments) have the
  same layout, so Adam's state holds survivors and biases only.
- ``crow`` (int32): each layer's CSR row pointers (``n_out + 1`` entries, counting from 0 in
  that layer); ``col`` (int32): the column of each surviving weight, parallel to its value in ``p``.
- ``meta`` (int64, one row per layer): ``n_in, n_out, crow offset, weight offset in p, bias
  offset in p, activation offset`` (in rows of the activation buffers).
- activations and their gradients: ``[features, ld]``, each feature's batch contiguous, with the
  batch padded to ``ld``, a multiple of 8 (the pad columns of the input and of every gradient
  are zero, so they add exact zeros to the gradients and never reach a real column). One buffer
  holds every layer's outputs, layer ``l`` at rows ``act_off .. act_off + n_out``.

A layer's forward is, for each output row ``i``, the bias broadcast over the batch, then for each
surviving weight ``w[i, j]`` a multiply-add of ``w`` times the contiguous batch row ``h[j, :]``,
with the row's accumulators kept in vector registers (``_forward_row``). Its backward is one pass
over the same nonzeros: the gradient of ``w[i, j]`` is the dot product of ``dz[i, :]`` with
``h[j, :]``, and ``dh[j, :] += w[i, j] * dz[i, :]`` (the input gradient) from the same loads
(``_dot_axpy``). The first layer skips the input rows that are zero over the whole batch
(MNIST's border pixels): their products and gradients are exactly zero.

Determinism. Everything runs in a fixed order on one thread, without fast-math. numba leaves
LLVM's SLP vectoriser off (it miscompiled: numba issue 8705) and without fast-math the loop
vectoriser never vectorises a reduction, so the three inner loops that matter are written here
in LLVM IR as explicit ``<8 x float>`` operations (``numba.extending.intrinsic``). In the dot
products, lane ``l`` sums the products at ``l, l + 8, ...``, the ``n % 8`` last ones are added to
lane 0 in order, and the lanes are added in the tree ((0+1)+(2+3))+((4+5)+(6+7)). Every
operation is an IEEE float32 multiply or add (never fused: no fast-math) in an order fixed by
this file, so a rerun gives the same bits, and so would any other x86-64 CPU (the tests compare
the vector code with scalar references bit for bit). ``exp`` and ``log`` (the loss) come from
the C library.

Compilation. ``cache=True``: the first process on a machine compiles (10-30 s) and writes the
machine code to numba's cache (``__pycache__`` beside this file, or, where that folder is not
writable, the user's cache folder; ``NUMBA_CACHE_DIR`` overrides both); every later process loads
it (numba's start-up then costs about 0.5-1 s of a job). numba keys the cache on this file's
modification time and the CPU, so an edit, a fresh clone or another CPU compiles once more.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# Compiler options of every loop: the on-disk cache, no bounds checks, IEEE semantics (no
# fast-math: no reassociation, no fused multiply-add), and numpy's error model (a float division
# by zero gives inf instead of a check in the loop that would stop vectorisation).
_JIT = dict(cache=True, nogil=True, boundscheck=False, fastmath=False, error_model="numpy")

LANES = 8  # the vector width of the IR below, and the multiple the batch is padded to
# Images per block in evaluation: a block's transposed images (784 x 64 floats, 200 KB) and its
# activations stay in the core's L2 cache.
EVAL_BLOCK = 64


def padded(n: int) -> int:
    """The leading dimension of a batch of n: n rounded up to a multiple of LANES."""
    return -(-n // LANES) * LANES


# --- IR helpers ----------------------------------------------------------------------------

_F32 = ir.FloatType()
_I32 = ir.IntType(32)
_VEC = ir.VectorType(_F32, LANES)


def _data(context, builder, ty, value):
    """The float* (or int*) of a 1-D array argument."""
    return context.make_array(ty)(context, builder, value).data


def _vload(builder, ptr, off):
    return builder.load(builder.bitcast(builder.gep(ptr, [off]), _VEC.as_pointer()), align=4)


def _vstore(builder, value, ptr, off):
    builder.store(value, builder.bitcast(builder.gep(ptr, [off]), _VEC.as_pointer()), align=4)


def _splat(builder, x):
    v = builder.insert_element(ir.Constant(_VEC, ir.Undefined), x, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))


def _lanes_codegen(builder, a_ptr, a_off, b_ptr, b_off, n, axpy=None):
    """IR of the 8-lane dot product of a[a_off : a_off + n] and b[b_off : b_off + n]; with
    ``axpy`` = (y_ptr, y_off, w) also y[y_off + k] += w * a[a_off + k] from the same loads of a."""
    eight = ir.Constant(n.type, LANES)
    acc = cgutils.alloca_once(builder, _VEC)
    builder.store(ir.Constant(_VEC, [0.0] * LANES), acc)
    n8 = builder.udiv(n, eight)
    if axpy is not None:
        y_ptr, y_off, w = axpy
        w_vec = _splat(builder, w)
    with cgutils.for_range(builder, n8) as loop:
        off = builder.mul(loop.index, eight)
        va = _vload(builder, a_ptr, builder.add(a_off, off))
        vb = _vload(builder, b_ptr, builder.add(b_off, off))
        builder.store(builder.fadd(builder.load(acc), builder.fmul(va, vb)), acc)
        if axpy is not None:
            yo = builder.add(y_off, off)
            _vstore(builder, builder.fadd(_vload(builder, y_ptr, yo), builder.fmul(w_vec, va)), y_ptr, yo)
    total = builder.load(acc)
    lanes = [builder.extract_element(total, ir.Constant(_I32, i)) for i in range(LANES)]
    lane0 = cgutils.alloca_once(builder, _F32)
    builder.store(lanes[0], lane0)
    with cgutils.for_range_slice(builder, builder.mul(n8, eight), n, ir.Constant(n.type, 1)) as (k, _):
        a_k = builder.load(builder.gep(a_ptr, [builder.add(a_off, k)]))
        b_k = builder.load(builder.gep(b_ptr, [builder.add(b_off, k)]))
        builder.store(builder.fadd(builder.load(lane0), builder.fmul(a_k, b_k)), lane0)
        if axpy is not None:
            py = builder.gep(y_ptr, [builder.add(y_off, k)])
            builder.store(builder.fadd(builder.load(py), builder.fmul(w, a_k)), py)
    lanes[0] = builder.load(lane0)
    add = builder.fadd
    return add(add(add(lanes[0], lanes[1]), add(lanes[2], lanes[3])),
               add(add(lanes[4], lanes[5]), add(lanes[6], lanes[7])))


# --- the three inner loops, as vector IR ------------------------------------------------------


@intrinsic
def _dot(typingctx, a, a_off, b, b_off, n):
    """sum(a[a_off:][:n] * b[b_off:][:n]) in 8 fixed lanes (a, b: 1-D contiguous float32)."""

    def codegen(context, builder, sig, args):
        return _lanes_codegen(builder, _data(context, builder, sig.args[0], args[0]), args[1],
                              _data(context, builder, sig.args[2], args[2]), args[3], args[4])

    return types.float32(a, a_off, b, b_off, n), codegen


@intrinsic
def _dot_axpy(typingctx, a, a_off, b, b_off, y, y_off, w, n):
    """``_dot(a, a_off, b, b_off, n)``, and y[y_off:][:n] += w * a[a_off:][:n] from the same
    loads of a (the backward's one pass: a = dz[i, :], b = h[j, :], y = dh[j, :], w = W[i, j])."""

    def codegen(context, builder, sig, args):
        y_ptr = _data(context, builder, sig.args[4], args[4])
        return _lanes_codegen(builder, _data(context, builder, sig.args[0], args[0]), args[1],
                              _data(context, builder, sig.args[2], args[2]), args[3], args[7],
                              axpy=(y_ptr, args[5], args[6]))

    return types.float32(a, a_off, b, b_off, y, y_off, w, n), codegen


# Vectors per pass of _forward_row: 4 x 8 = 32 batch columns of accumulators in registers.
_ROW_TILES = 4


def _forward_group(builder, out_ptr, o_off, h_ptr, ld, w_ptr, col_ptr, lo, hi, act_ptr, first, bias, relu, c0, tiles):
    """out[o_off + c0 + t*8 : ...] for t < tiles: bias + sum over the row's nonzeros k of
    w[k] * h[col[k] * ld + c0 + t*8 : ...] (then ReLU), accumulated in registers."""
    accs = []
    for _ in range(tiles):
        a = cgutils.alloca_once(builder, _VEC)
        builder.store(_splat(builder, bias), a)
        accs.append(a)
    intp = lo.type
    with cgutils.for_range(builder, hi, start=lo) as loop:
        j = builder.sext(builder.load(builder.gep(col_ptr, [loop.index])), intp)
        skip = cgutils.alloca_once(builder, ir.IntType(1))
        builder.store(ir.Constant(ir.IntType(1), 0), skip)
        with builder.if_then(first):  # ``act`` has the first layer's inputs only
            is_zero = builder.icmp_signed("==", builder.load(builder.gep(act_ptr, [j])), ir.Constant(_I32, 0))
            builder.store(is_zero, skip)
        with builder.if_then(builder.not_(builder.load(skip))):
            wv = _splat(builder, builder.load(builder.gep(w_ptr, [loop.index])))
            base = builder.add(builder.mul(j, ld), c0)
            for t, a in enumerate(accs):
                hv = _vload(builder, h_ptr, builder.add(base, ir.Constant(intp, t * LANES)))
                builder.store(builder.fadd(builder.load(a), builder.fmul(wv, hv)), a)
    zero = ir.Constant(_VEC, [0.0] * LANES)
    for t, a in enumerate(accs):
        v = builder.load(a)
        # ReLU as ``if v < 0: v = 0`` per lane (a NaN stays NaN, as in torch.relu)
        v = builder.select(builder.and_(builder.fcmp_ordered("<", v, zero), _splat_bool(builder, relu)), zero, v)
        _vstore(builder, v, out_ptr, builder.add(o_off, builder.add(c0, ir.Constant(intp, t * LANES))))


def _splat_bool(builder, b):
    v = builder.insert_element(ir.Constant(ir.VectorType(ir.IntType(1), LANES), ir.Undefined), b,
                               ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))


@intrinsic
def _forward_row(typingctx, out, o_off, h, ld, w, col, lo, hi, act, first, bias, relu):
    """One output row of a layer over a padded batch (ld a multiple of 8): out[o_off : o_off + ld]
    = bias + sum over k in [lo, hi) of w[k] * h[col[k] * ld : ... + ld] (skipping the columns
    whose ``act`` is 0 where ``first``), then ReLU where ``relu``. Each output element sees the
    same float32 multiply-adds in the same order as the scalar loop ``_forward_row_reference``."""

    def codegen(context, builder, sig, args):
        out_a, o_off_a, h_a, ld_a, w_a, col_a, lo_a, hi_a, act_a, first_a, bias_a, relu_a = args
        ptrs = [_data(context, builder, sig.args[i], args[i]) for i in (0, 2, 4, 5, 8)]
        out_ptr, h_ptr, w_ptr, col_ptr, act_ptr = ptrs
        intp = ld_a.type
        group = ir.Constant(intp, _ROW_TILES * LANES)
        n_groups = builder.udiv(ld_a, group)
        with cgutils.for_range(builder, n_groups) as g:
            _forward_group(builder, out_ptr, o_off_a, h_ptr, ld_a, w_ptr, col_ptr, lo_a, hi_a, act_ptr, first_a,
                           bias_a, relu_a, builder.mul(g.index, group), _ROW_TILES)
        rest = builder.udiv(builder.urem(ld_a, group), ir.Constant(intp, LANES))
        start = builder.mul(n_groups, group)
        with cgutils.for_range(builder, rest) as t:
            c0 = builder.add(start, builder.mul(t.index, ir.Constant(intp, LANES)))
            _forward_group(builder, out_ptr, o_off_a, h_ptr, ld_a, w_ptr, col_ptr, lo_a, hi_a, act_ptr, first_a,
                           bias_a, relu_a, c0, 1)
        return context.get_dummy_value()

    return types.none(out, o_off, h, ld, w, col, lo, hi, act, first, bias, relu), codegen


@intrinsic
def _relu_grad(typingctx, dz, act, off, n):
    """dz[off:][:n] = 0 where act[off:][:n] is not positive (n a multiple of 8): the gradient
    through a ReLU, as vector selects (a compare-and-branch per element costs 4 times as much)."""

    def codegen(context, builder, sig, args):
        dz_ptr = _data(context, builder, sig.args[0], args[0])
        act_ptr = _data(context, builder, sig.args[1], args[1])
        off, n = args[2], args[3]
        zero = ir.Constant(_VEC, [0.0] * LANES)
        with cgutils.for_range(builder, builder.udiv(n, ir.Constant(n.type, LANES))) as loop:
            q = builder.add(off, builder.mul(loop.index, ir.Constant(n.type, LANES)))
            positive = builder.fcmp_ordered(">", _vload(builder, act_ptr, q), zero)
            _vstore(builder, builder.select(positive, _vload(builder, dz_ptr, q), zero), dz_ptr, q)
        return context.get_dummy_value()

    return types.none(dz, act, off, n), codegen


def _transpose8x8(builder, rows):
    """The columns of the 8 x 8 block whose rows are ``rows`` (8 vectors), by three stages of
    shuffles (LLVM lowers them to the unpack / shuffle / lane-permute instructions)."""
    def shuf(a, b, mask):
        return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(_I32, LANES), mask))

    lo, hi = [0, 8, 1, 9, 4, 12, 5, 13], [2, 10, 3, 11, 6, 14, 7, 15]
    t = [shuf(rows[i], rows[i + 1], m) for i in range(0, 8, 2) for m in (lo, hi)]  # t0..t7
    pair_lo, pair_hi = [0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15]
    s = [None] * 8
    for half, base in ((0, 0), (4, 4)):  # rows 0-3 (t0..t3) and 4-7 (t4..t7)
        s[half + 0] = shuf(t[base + 0], t[base + 2], pair_lo)
        s[half + 1] = shuf(t[base + 0], t[base + 2], pair_hi)
        s[half + 2] = shuf(t[base + 1], t[base + 3], pair_lo)
        s[half + 3] = shuf(t[base + 1], t[base + 3], pair_hi)
    cols = [None] * 8
    for q in range(4):
        cols[q] = shuf(s[q], s[q + 4], [0, 1, 2, 3, 8, 9, 10, 11])
        cols[q + 4] = shuf(s[q], s[q + 4], [4, 5, 6, 7, 12, 13, 14, 15])
    return cols


@intrinsic
def _transpose_blocks(typingctx, x, x_off, n_in, nb8, j8, x_t, ld, active):
    """x_t[j * ld + b] = x[x_off + b * n_in + j] for b < 8 * nb8 and j < 8 * j8 (x flat), in 8 x 8
    blocks through vector registers; active[j] |= the OR of the float bits of column j. Pure data
    movement: the scalar loop of ``_transpose_rows`` does the rest."""

    def codegen(context, builder, sig, args):
        x_ptr = _data(context, builder, sig.args[0], args[0])
        t_ptr = _data(context, builder, sig.args[5], args[5])
        a_ptr = _data(context, builder, sig.args[7], args[7])
        x_off, n_in, nb8, j8, ld = args[1], args[2], args[3], args[4], args[6]
        intp = n_in.type
        ivec = ir.VectorType(_I32, LANES)
        with cgutils.for_range(builder, j8) as jb:
            j0 = builder.mul(jb.index, ir.Constant(intp, LANES))
            bits = cgutils.alloca_once(builder, ivec)
            builder.store(ir.Constant(ivec, [0] * LANES), bits)
            with cgutils.for_range(builder, nb8) as bb:
                b0 = builder.mul(bb.index, ir.Constant(intp, LANES))
                row0 = builder.add(x_off, builder.add(builder.mul(b0, n_in), j0))
                rows = [_vload(builder, x_ptr, builder.add(row0, builder.mul(ir.Constant(intp, r), n_in)))
                        for r in range(LANES)]
                acc = builder.load(bits)
                for r in rows:
                    acc = builder.or_(acc, builder.bitcast(r, ivec))
                builder.store(acc, bits)
                for q, c in enumerate(_transpose8x8(builder, rows)):
                    _vstore(builder, c, t_ptr, builder.add(builder.mul(builder.add(j0, ir.Constant(intp, q)), ld), b0))
            pa = builder.bitcast(builder.gep(a_ptr, [j0]), ivec.as_pointer())
            builder.store(builder.or_(builder.load(pa, align=4), builder.load(bits)), pa, align=4)
        return context.get_dummy_value()

    return types.none(x, x_off, n_in, nb8, j8, x_t, ld, active), codegen


# --- scalar references of the vector code (the tests compare them bit for bit) --------------


@njit(**_JIT)
def _dot_reference(a, b, n):
    """What ``_dot`` computes, written as scalar loops."""
    s = np.zeros(LANES, dtype=np.float32)
    n8 = n - n % LANES
    for k in range(0, n8, LANES):
        for lane in range(LANES):
            s[lane] += a[k + lane] * b[k + lane]
    for k in range(n8, n):
        s[0] += a[k] * b[k]
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))


@njit(**_JIT)
def _forward_row_reference(h, w, col, bias, relu):
    """What ``_forward_row`` computes for one row (h: [n_in, ld]), as a scalar loop."""
    out = np.empty(h.shape[1], dtype=np.float32)
    for b in range(h.shape[1]):
        o = bias
        for k in range(w.shape[0]):
            o += w[k] * h[col[k], b]
        if relu and o < 0:
            o = np.float32(0.0)
        out[b] = o
    return out


@njit(**_JIT)
def dot_for_tests(a, b, n):
    return _dot(a, 0, b, 0, n)


@njit(**_JIT)
def forward_row_for_tests(h, w, col, bias, relu):
    ld = h.shape[1]
    out = np.empty(ld, dtype=np.float32)
    act = np.ones(h.shape[0], dtype=np.int32)
    _forward_row(out, 0, h.ravel(), ld, w, col, 0, w.shape[0], act, False, bias, relu)
    return out


# --- the layers ----------------------------------------------------------------------------


@njit(**_JIT)
def _transpose_rows(x, r0, nb, x_t, ld, active):
    """x_t[j * ld + b] = x[r0 + b, j] for b < nb; active[j] != 0 where column j has a nonzero
    (the OR of its float bits: a -0.0 counts as active, which only costs its products)."""
    n_in = x.shape[1]
    for j in range(n_in):
        active[j] = 0
    nb8, j8 = nb // 8, n_in // 8
    _transpose_blocks(x.ravel(), r0 * n_in, n_in, nb8, j8, x_t, ld, active)
    xi = x.view(np.int32)
    for b in range(r0, r0 + nb):  # the rows and columns the 8 x 8 blocks left
        xb, ib = x[b], xi[b]
        j_lo = j8 * 8 if b < r0 + nb8 * 8 else 0
        for j in range(j_lo, n_in):
            x_t[j * ld + b - r0] = xb[j]
            active[j] |= ib[j]


@njit(**_JIT)
def _forward(x_t, active, p, crow, col, meta, acts, ld):
    """Every layer's forward over a padded block of ld columns (outputs in ``acts``)."""
    n_layers = meta.shape[0]
    for lyr in range(n_layers):
        n_out, c0, w0, b0, a0 = meta[lyr, 1], meta[lyr, 2], meta[lyr, 3], meta[lyr, 4], meta[lyr, 5]
        h = x_t if lyr == 0 else acts[meta[lyr - 1, 5] * ld :]
        first, relu = lyr == 0, lyr < n_layers - 1
        for i in range(n_out):
            lo, hi = w0 + crow[c0 + i], w0 + crow[c0 + i + 1]
            _forward_row(acts, (a0 + i) * ld, h, ld, p, col, lo, hi, active, first, p[b0 + i], relu)


@njit(**_JIT)
def _backward(x_t, active, p, g, crow, col, meta, acts, dzs, ld, ones):
    """From the last layer's dz (in ``dzs``): every layer's gradients at the survivors and its
    biases (into ``g``: a bias gradient is the 8-lane sum of dz's row, its dot with ``ones``),
    and the input gradients through the ReLUs (into ``dzs``)."""
    n_layers = meta.shape[0]
    for lyr in range(n_layers - 1, -1, -1):
        n_in, n_out, c0, w0, b0, a0 = meta[lyr, 0], meta[lyr, 1], meta[lyr, 2], meta[lyr, 3], meta[lyr, 4], meta[lyr, 5]
        dz_off = a0 * ld
        if lyr == 0:
            h, h_off = x_t, 0
        else:
            h, h_off = acts, meta[lyr - 1, 5] * ld
            dzs[h_off : h_off + n_in * ld] = 0  # dh, accumulated below
        for i in range(n_out):
            d_off = dz_off + i * ld
            g[b0 + i] = _dot(dzs, d_off, ones, 0, ld)
            for k in range(w0 + crow[c0 + i], w0 + crow[c0 + i + 1]):
                j = col[k]
                if lyr == 0:
                    g[k] = _dot(dzs, d_off, h, j * ld, ld) if active[j] != 0 else np.float32(0.0)
                else:
                    g[k] = _dot_axpy(dzs, d_off, h, h_off + j * ld, dzs, h_off + j * ld, p[k], ld)
        if lyr > 0:  # through the ReLU below: zero where its output was not positive
            _relu_grad(dzs, acts, h_off, n_in * ld)


@njit(**_JIT)
def _softmax_xent_grad(acts, z_off, n_cls, y, dzs, nb, ld, scale):
    """dz = (softmax(z) - onehot(y)) * scale for the columns b < nb of z = acts[z_off:] viewed as
    [n_cls, ld], into dzs at the same offset (the pad columns stay zero); returns the summed loss
    (float64). softmax(z) = exp(z - max) / sum (one exp per logit; the dense step takes the exp of
    the log-softmax: the same to float32 rounding)."""
    total = 0.0
    for b in range(nb):
        mx = acts[z_off + b]
        for c in range(1, n_cls):
            mx = max(mx, acts[z_off + c * ld + b])
        s = np.float32(0.0)
        for c in range(n_cls):
            e = np.exp(acts[z_off + c * ld + b] - mx)
            dzs[z_off + c * ld + b] = e
            s += e
        total += np.log(s) - (acts[z_off + y[b] * ld + b] - mx)
        for c in range(n_cls):
            q = z_off + c * ld + b
            dzs[q] = (dzs[q] / s - (np.float32(1.0) if c == y[b] else np.float32(0.0))) * scale
    return total


@njit(**_JIT)
def _adam(p, g, m, v, hyper):
    """Adam without weight decay over the flat parameters; hyper = [lr, beta1, beta2, eps, step]
    (float64; the step count is advanced here)."""
    hyper[4] += 1.0
    lr, beta1, beta2, eps, t = hyper[0], hyper[1], hyper[2], hyper[3], hyper[4]
    step_size = np.float32(lr / (1.0 - beta1**t))
    bc2_sqrt = np.float32(np.sqrt(1.0 - beta2**t))
    b1, b2, e = np.float32(beta1), np.float32(beta2), np.float32(eps)
    c1, c2 = np.float32(1.0 - beta1), np.float32(1.0 - beta2)
    for k in range(p.shape[0]):
        gk = g[k]
        mk = b1 * m[k] + c1 * gk
        vk = b2 * v[k] + c2 * (gk * gk)
        m[k] = mk
        v[k] = vk
        p[k] -= step_size * mk / (np.sqrt(vk) / bc2_sqrt + e)


@njit(**_JIT)
def train_step(x, y, p, g, m, v, crow, col, meta, x_t, active, acts, dzs, ones, hyper):
    """One training step: forward, loss, backward at the survivors, Adam. Returns the mean loss.

    x: [nb, n_in] float32 (the batch as the training loop gathers it); y: [nb] int64; x_t, acts,
    dzs: flat [rows, ld] buffers (``SparseNet`` makes them; their pad columns zero); active:
    [n_in] int32; ones: [ld] float32 ones."""
    nb = x.shape[0]
    ld = ones.shape[0]
    _transpose_rows(x, 0, nb, x_t, ld, active)
    _forward(x_t, active, p, crow, col, meta, acts, ld)
    last = meta.shape[0] - 1
    loss = _softmax_xent_grad(acts, meta[last, 5] * ld, meta[last, 1], y, dzs, nb, ld, np.float32(1.0 / nb))
    _backward(x_t, active, p, g, crow, col, meta, acts, dzs, ld, ones)
    _adam(p, g, m, v, hyper)
    return loss / nb


@njit(**_JIT)
def evaluate(x, y, p, crow, col, meta, n_act):
    """(summed cross-entropy loss as float64, number of correct predictions: the first maximum
    of the logits, as torch.argmax) over the rows of x, in blocks of EVAL_BLOCK."""
    n_rows, n_in = x.shape
    ld = EVAL_BLOCK
    x_t = np.zeros(n_in * ld, dtype=np.float32)
    active = np.empty(n_in, dtype=np.int32)
    acts = np.empty(n_act * ld, dtype=np.float32)
    last = meta.shape[0] - 1
    z_off = meta[last, 5] * ld
    n_cls = meta[last, 1]
    total = 0.0
    correct = 0
    for r0 in range(0, n_rows, ld):
        nb = min(ld, n_rows - r0)
        if nb < ld:  # the last, partial block: zero the columns the previous block left
            for j in range(n_in):
                x_t[j * ld + nb : (j + 1) * ld] = 0
        _transpose_rows(x, r0, nb, x_t, ld, active)
        _forward(x_t, active, p, crow, col, meta, acts, ld)
        for b in range(nb):
            mx = acts[z_off + b]
            arg = 0
            for c in range(1, n_cls):
                zc = acts[z_off + c * ld + b]
                if zc > mx:
                    mx = zc
                    arg = c
            s = np.float32(0.0)
            for c in range(n_cls):
                s += np.exp(acts[z_off + c * ld + b] - mx)
            total += np.log(s) - (acts[z_off + y[r0 + b] * ld + b] - mx)
            if arg == y[r0 + b]:
                correct += 1
    return total, correct
