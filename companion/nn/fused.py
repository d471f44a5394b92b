"""A whole-sequence engine for batched recurrent cells: forward and backward written by hand.

:class:`companion.nn.ensemble.Ensemble` runs ``M`` small models at once. Written as a
plain Python loop of tensor operations, autograd records about a dozen nodes per time
step and replays them backwards one by one; at the sizes of the course's sweeps (a
32-unit cell, batches of 32) the time goes into those many small operations, not into
arithmetic. :func:`fused_sequence` computes the same function as one
``torch.autograd.Function`` with fewer, larger kernels:

* forward, under ``no_grad``: per step ONE batched product ``[W_hh | W_ih | b] u_t``
  of the weights with the state augmented by that step's input and a constant 1
  (``u_t = [h_{t-1}; x_t; 1]``), then the gate arithmetic, keeping only what the
  backward pass needs (the gate activations and the states);
* backward: per step the element-wise gate gradients, one product accumulating the
  gradient of ``[W_hh | W_ih | b]`` (all three at once, through ``u_t``) and one
  product for the gradient flowing to the previous state; no autograd graph at all.

Work tensors are feature-major, (M, features, N), so that a gate block is contiguous,
and reused from step to step and from call to call (see ``_take``): a fresh large
tensor costs page faults that are dearer than the arithmetic on it. The training
loop (``companion.nn.ensemble.train_batched``) pairs this engine with clipping and
Adam on one flat view of all the gradients.

Cells and layouts are those of :mod:`companion.nn.ensemble` (torch's gate orders:
LSTM i, f, g, o; GRU r, z, n with the reset gate applied after the product):
``x`` (N, T, D) shared or (M, N, T, D) per member; ``weight_ih`` (M, G*H, D),
``weight_hh`` (M, G*H, H), ``bias_ih``, ``bias_hh`` (M, G*H); ``h0`` (and ``c0`` for
the LSTM) (M, N, H) or ``None`` for zeros. The result is the last hidden state (M, N, H).

For the LSTM, each step's element-wise work (four sigmoids, the cell update, the tanh
of the cell and the output gate forward; the seven gate and state gradients backward)
runs in one compiled loop instead of about a dozen small torch operations:
``_fused_kernels.c``, built once with the machine's C compiler and loaded with
``ctypes``, vectorised for AVX2 and AVX-512 CPUs. Where that is not possible (no
compiler, another CPU, ``COMPANION_FUSED_KERNELS=0``), the engine uses torch's
operations instead, the same function; :func:`kernel_status` says which is in use and
why, and :func:`compiled_kernels` switches them for a block of code.

Same function, other rounding. ``tanh`` is evaluated as ``2 * sigmoid(2 a) - 1``
(exact in real arithmetic; torch's CPU ``sigmoid`` kernel is several times faster
than its ``tanh`` at these sizes), sums run in another order, and the compiled
kernels use their own exponential (a polynomial, within two units in the last place) and fused
multiply-adds. The two engines
therefore agree to rounding, not bit for bit: in float64 to about ``1e-15``
relative (``tests/test_fused.py`` checks outputs and every gradient against the
autograd engine and against each member's ``torch.nn`` model to ``1e-12``, and
against finite differences). The stored sweeps were computed with the autograd
engine, the default.

Examples
--------
>>> import torch
>>> M, N, T, D, H = 2, 3, 5, 4, 6
>>> w_ih, w_hh = torch.randn(M, 4 * H, D), torch.randn(M, 4 * H, H)
>>> b_ih, b_hh = torch.zeros(M, 4 * H), torch.zeros(M, 4 * H)
>>> tuple(fused_sequence("lstm", torch.randn(N, T, D), w_ih, w_hh, b_ih, b_hh).shape)
(2, 3, 6)
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch.autograd.function import once_differentiable

from companion.checks import check_finite_tensor

__all__ = ["FUSED_KINDS", "compiled_kernels", "fused_sequence", "kernel_status",
           "release_buffers"]

#: Cells the fused engine runs, and their number of stacked gate blocks.
FUSED_KINDS = {"rnn": 1, "irnn": 1, "lstm": 4, "gru": 3}


def _shape(t):
    return tuple(t.shape)


def _check_tensor(name, t, shape, dtype):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor of shape {shape}; got {type(t).__name__}.")
    if t.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} (that of weight_hh); got {t.dtype}. "
                        f"Use {name}.to({dtype}).")
    if _shape(t) != shape:
        raise ValueError(f"{name} must have shape {shape}; got {_shape(t)}.")


def _check_inputs(kind, x, w_ih, w_hh, b_ih, b_hh, h0, c0):
    if kind not in FUSED_KINDS:
        raise ValueError(f"kind must be one of {sorted(FUSED_KINDS)}; got {kind!r}.")
    if not isinstance(w_hh, torch.Tensor) or w_hh.dim() != 3:
        raise ValueError("weight_hh must be a tensor (M, G*H, H); got "
                         f"{_shape(w_hh) if isinstance(w_hh, torch.Tensor) else type(w_hh).__name__}.")
    dtype = w_hh.dtype
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"weight_hh must be float32 or float64; got {dtype}.")
    G = FUSED_KINDS[kind]
    M, GH, H = w_hh.shape
    if GH != G * H:
        raise ValueError(f"weight_hh must be (M, {G}*H, H) for kind={kind!r}; got {(M, GH, H)}.")
    if not isinstance(w_ih, torch.Tensor) or w_ih.dim() != 3:
        raise ValueError(f"weight_ih must be a tensor (M={M}, {GH}, D); got "
                         f"{_shape(w_ih) if isinstance(w_ih, torch.Tensor) else type(w_ih).__name__}.")
    D = w_ih.shape[2]
    _check_tensor("weight_ih", w_ih, (M, GH, D), dtype)
    _check_tensor("bias_ih", b_ih, (M, GH), dtype)
    _check_tensor("bias_hh", b_hh, (M, GH), dtype)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch tensor (N, T, D={D}) or (M={M}, N, T, D={D}); "
                        f"got {type(x).__name__}.")
    if x.dtype != dtype:
        raise TypeError(f"x must have the weights' dtype {dtype}; got {x.dtype}. Use x.to({dtype}).")
    ok = (x.dim() == 3 and x.shape[2] == D) or (x.dim() == 4 and x.shape[0] == M and x.shape[3] == D)
    if not ok:
        raise ValueError(f"x must be (N, T, D={D}) shared by all members or (M={M}, N, T, D={D}) "
                         f"one batch per member, batch-first; got {_shape(x)}.")
    if x.shape[-2] == 0:
        raise ValueError("x must have at least one time step; got T=0.")
    N = x.shape[-3]
    if N == 0:
        raise ValueError(f"x must hold at least one sequence (N >= 1); got shape {_shape(x)}.")
    check_finite_tensor("x", x)
    for name, s in (("h0", h0), ("c0", c0)):
        if s is not None:
            _check_tensor(name, s, (M, N, H), dtype)
            check_finite_tensor(name, s)
    if c0 is not None and kind != "lstm":
        raise ValueError(f"c0 applies to kind='lstm' only; got kind={kind!r}.")


def fused_sequence(kind: str, x: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor,
                   bias_ih: torch.Tensor, bias_hh: torch.Tensor, h0: torch.Tensor | None = None,
                   c0: torch.Tensor | None = None) -> torch.Tensor:
    """Last hidden state (M, N, H) of ``M`` batched cells over ``x``; see the module docstring.

    Differentiable with respect to ``x``, every weight and bias, ``h0`` and ``c0``.
    """
    _check_inputs(kind, x, weight_ih, weight_hh, bias_ih, bias_hh, h0, c0)
    M, _, H = weight_hh.shape
    N = x.shape[-3]
    zeros = None
    if h0 is None or (kind == "lstm" and c0 is None):
        zeros = weight_hh.new_zeros(M, N, H)
    h0 = zeros if h0 is None else h0
    if kind == "lstm":
        c0 = zeros if c0 is None else c0
    else:
        c0 = weight_hh.new_zeros(0)  # placeholder, unused
    lib = _usable_kernels() if kind == "lstm" else None  # compiled once, outside autograd
    return _FusedSequence.apply(kind, x, weight_ih, weight_hh, bias_ih, bias_hh, h0, c0, lib)


def _tanh_from_doubled(buf):
    """In place: ``buf`` holds ``2 a``; leave ``tanh(a) = 2 sigmoid(2 a) - 1``."""
    return buf.sigmoid_().mul_(2.0).sub_(1.0)


def _doubled(w, G, H, blocks):
    """A copy of ``w`` (..., G*H[, ...]) along axis 1 with the listed gate blocks times 2
    (exact in floating point), so that their tanh comes out of one sigmoid."""
    if not blocks:
        return w
    w = w.clone()
    for b in blocks:
        w[:, b * H:(b + 1) * H].mul_(2.0)
    return w


# ---------------------------------------------------------------------------------------
# Compiled element-wise kernels for the LSTM step (companion/nn/_fused_kernels.c).
#
# One LSTM step forward takes about eight small element-wise torch operations and one
# backward about ten, each a separate pass over the gate tensor with a fixed dispatch
# cost; at the sweeps' sizes they, not the products, set the time. The C file does each
# step's element-wise work in one loop. It is compiled once per source version with the
# machine's C compiler ($CC, else cc) into a cache folder ($COMPANION_CACHE_DIR, else
# ~/.cache/companion, else the temporary folder), and used only if it compiles, loads,
# runs a vectorised (AVX2 or AVX-512) version of its loops and passes a self-check
# against the torch operations below. Otherwise, or with COMPANION_FUSED_KERNELS=0 in
# the environment, the engine keeps the torch operations: the same function, slower.

_KERNEL_SOURCE = Path(__file__).with_name("_fused_kernels.c")
_KERNEL_FLAGS = ("-O3", "-std=c99", "-ffp-contract=fast", "-fno-trapping-math", "-fno-signed-zeros",
                 "-fPIC", "-shared", "-DCOMPANION_CLONES")
_kernels = None          # the loaded library, once found usable
_kernel_reason = None    # why the kernels are not used, once found unusable
_kernels_enabled = True  # switched by compiled_kernels()


def _cache_dirs():
    env = os.environ.get("COMPANION_CACHE_DIR")
    if env:
        yield Path(env)
    yield Path.home() / ".cache" / "companion"
    yield Path(tempfile.gettempdir()) / f"companion-{os.getuid() if hasattr(os, 'getuid') else 0}"


def _compile_kernels():
    """Return (library, None) or (None, reason)."""
    if os.environ.get("COMPANION_FUSED_KERNELS", "1") == "0":
        return None, "disabled by COMPANION_FUSED_KERNELS=0"
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        return None, "no C compiler found (set CC, or install one such as gcc)"
    source = _KERNEL_SOURCE.read_bytes()
    key = hashlib.sha256(source + " ".join(_KERNEL_FLAGS + (cc,)).encode()).hexdigest()[:16]
    suffix = ".dll" if sys.platform == "win32" else ".so"
    name = f"fused_kernels_{key}{suffix}"
    errors = []
    for folder in _cache_dirs():
        target = folder / name
        try:
            if not target.exists():
                folder.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(suffix=suffix, dir=folder)
                os.close(fd)
                try:
                    run = subprocess.run([cc, *_KERNEL_FLAGS, str(_KERNEL_SOURCE), "-o", tmp],
                                         capture_output=True, text=True, timeout=120)
                    if run.returncode != 0:
                        return None, f"{cc} could not compile {_KERNEL_SOURCE.name}: " + \
                            (run.stderr.strip().splitlines() or ["no message"])[-1]
                    os.replace(tmp, target)  # atomic: a concurrent process sees all or nothing
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
            lib = ctypes.CDLL(str(target))
            break
        except (OSError, subprocess.SubprocessError) as err:
            errors.append(f"{folder}: {err}")
    else:
        return None, "could not build or load the kernels (" + "; ".join(errors) + ")"
    if not lib.kernels_vectorized():
        return None, "this CPU (or compiler) gives no AVX2 version of the kernels' loops"
    p, n = ctypes.c_void_p, ctypes.c_long
    for dt in ("f32", "f64"):
        getattr(lib, f"lstm_forward_{dt}").argtypes = [p, p, p, p, p, n, n, n]
        getattr(lib, f"lstm_backward_{dt}").argtypes = [p, p, p, p, p, p, n, n]
    return lib, None


def _usable_kernels():
    """The compiled library, or None (the reason is then in kernel_status())."""
    global _kernels, _kernel_reason
    if not _kernels_enabled:
        return None
    if _kernels is None and _kernel_reason is None:
        lib, reason = _compile_kernels()
        if lib is not None:
            reason = _self_check(lib)
        if reason is None:
            _kernels = lib
        else:
            _kernel_reason = reason
    return _kernels


def kernel_status() -> str:
    """Say whether the fused LSTM uses the compiled element-wise kernels, and if not, why."""
    if not _kernels_enabled:
        return "compiled kernels switched off (compiled_kernels(False)); torch operations in use"
    if _usable_kernels() is not None:
        return "compiled kernels in use (companion/nn/_fused_kernels.c)"
    return f"torch operations in use: {_kernel_reason}"


@contextlib.contextmanager
def compiled_kernels(enabled: bool):
    """Within the block, use (``True``, where available) or do not use (``False``) the
    compiled LSTM kernels; the two compute the same function."""
    global _kernels_enabled
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be True or False; got {enabled!r}.")
    before = _kernels_enabled
    _kernels_enabled = enabled
    try:
        yield
    finally:
        _kernels_enabled = before


def _ptr(t):
    return ctypes.c_void_p(t.data_ptr())


def _self_check(lib):
    """None if the compiled LSTM matches the torch path on a small float64 problem, else why."""
    g = torch.Generator().manual_seed(0)
    M, N, T, D, H = 2, 3, 4, 2, 5
    args = [torch.randn(N, T, D, generator=g, dtype=torch.float64, requires_grad=True)]
    args += [torch.randn(M, 4 * H, k, generator=g, dtype=torch.float64, requires_grad=True)
             for k in (D, H)]
    args += [torch.randn(M, 4 * H, generator=g, dtype=torch.float64, requires_grad=True)
             for _ in range(2)]
    results = []
    global _kernels, _kernels_enabled
    saved, enabled = _kernels, _kernels_enabled
    try:
        with torch.enable_grad():
            for lib_used in (lib, None):
                _kernels, _kernels_enabled = lib_used, lib_used is not None
                out = fused_sequence("lstm", *args)
                grads = torch.autograd.grad(out.sin().sum(), args)
                results.append([out, *grads])
    except Exception as err:  # noqa: BLE001 - any failure means: do not use the kernels
        return f"the compiled kernels failed their self-check ({type(err).__name__}: {err})"
    finally:
        _kernels, _kernels_enabled = saved, enabled
    for a, b in zip(*results):
        if not torch.allclose(a, b, rtol=1e-10, atol=1e-12):
            return "the compiled kernels disagree with torch's operations on a self-check"
    return None


# Work buffers (a few MB each at the sweeps' sizes) are kept for reuse: a fresh large
# tensor comes from the operating system as untouched pages, and faulting them in costs
# more than the arithmetic done on them. A buffer goes back to the pool when the
# backward pass that needed it has run.
_POOL: dict = {}
_POOL_DEPTH = 1024


def _take(shape, dtype):
    free = _POOL.get((shape, dtype))
    return free.pop() if free else torch.empty(shape, dtype=dtype)


def release_buffers() -> int:
    """Drop the work buffers kept for reuse (they are kept per shape, so a long session
    over many batch sizes may hold several sets); return how many were dropped."""
    n = sum(len(v) for v in _POOL.values())
    _POOL.clear()
    return n


def _give(*buffers):
    for b in buffers:
        free = _POOL.setdefault((tuple(b.shape), b.dtype), [])
        if len(free) < _POOL_DEPTH:
            free.append(b)


# gate blocks whose activation is a tanh: computed from doubled pre-activations
_TANH_BLOCKS = {"rnn": (0,), "irnn": (), "lstm": (2,), "gru": (2,)}


class _FusedSequence(torch.autograd.Function):
    """Layout. Every per-step tensor is feature-major, (M, features, N), so that a gate
    block is one run of H*N contiguous numbers per member. The state of step t is kept
    *augmented* with that step's input and a constant 1, ``u_t = [h; x_t; 1; 0...]``
    (M, K, N), K = H + D + 1 rounded up to a multiple of 4; the matching weights
    ``[W_hh | W_ih | b]`` make one product per step give the whole pre-activation, and
    one product per step in the backward pass accumulates the gradients of all three.
    The GRU's n block is split in two rows of blocks, ``W_hn h + b_hn`` and
    ``W_in x + b_in``, because the reset gate multiplies only the first."""

    @staticmethod
    def forward(ctx, kind, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lib):
        M, GH, H = w_hh.shape
        G = GH // H
        shared = x.dim() == 3
        N, T, D = x.shape[-3:]
        K = -(-(H + D + 1) // 4) * 4
        blocks = _TANH_BLOCKS[kind]
        dt = w_hh.dtype
        with torch.no_grad():
            w_hh2, w_ih2 = _doubled(w_hh, G, H, blocks), _doubled(w_ih, G, H, blocks)
            b_ih2, b_hh2 = _doubled(b_ih, G, H, blocks), _doubled(b_hh, G, H, blocks)
            pad = w_hh.new_zeros(M, GH, K - H - D - 1)
            if kind == "gru":  # rows: r, z, (W_hn h + b_hn), (W_in x + b_in)
                zeros_x, zeros_h = w_ih.new_zeros(M, H, D), w_hh.new_zeros(M, H, H)
                top = torch.cat([w_hh2, torch.cat([w_ih2[:, :2 * H], zeros_x], 1),
                                 torch.cat([b_ih2[:, :2 * H] + b_hh2[:, :2 * H],
                                            b_hh2[:, 2 * H:]], 1)[..., None], pad], 2)
                bottom = torch.cat([zeros_h, w_ih2[:, 2 * H:], b_ih2[:, 2 * H:, None],
                                    pad[:, :H]], 2)
                wu = torch.cat([top, bottom], 1)  # (M, 4H, K)
            else:
                wu = torch.cat([w_hh2, w_ih2, (b_ih2 + b_hh2)[..., None], pad], 2)  # (M, GH, K)
            u = _take((M, T + 1, K, N), dt)  # u[:, t] = [h_{t-1}; x_t; 1; 0]
            u[:, :T, H:H + D] = x.permute(1, 2, 0) if shared else x.permute(0, 2, 3, 1)
            u[:, :, H + D] = 1.0
            u[:, T, H:H + D] = 0.0
            u[:, :, H + D + 1:] = 0.0
            u[:, 0, :H] = h0.transpose(1, 2)
            saved = {"u": u}
            steps = []  # what the backward pass needs of each step
            if kind in ("rnn", "irnn"):
                for t in range(T):
                    pre = torch.bmm(wu, u[:, t], out=_take((M, GH, N), dt))
                    if kind == "rnn":
                        torch.sigmoid(pre, out=u[:, t + 1, :H]).mul_(2.0).sub_(1.0)
                    else:
                        torch.clamp_min(pre, 0.0, out=u[:, t + 1, :H])
                    _give(pre)
            elif kind == "lstm" and lib is not None:
                # whole-sequence buffers, addressed by pointer arithmetic: the gates'
                # sigmoids A[t], the cell states C[t] (C[0] = c0) and tanh(C[t+1]) in TC[t]
                fwd = lib.lstm_forward_f64 if dt == torch.float64 else lib.lstm_forward_f32
                A = _take((T, M, GH, N), dt)
                C = _take((T + 1, M, H, N), dt)
                TC = _take((T, M, H, N), dt)
                C[0] = c0.transpose(1, 2)
                e = A.element_size()
                pa, pc, ptc, pu = A.data_ptr(), C.data_ptr(), TC.data_ptr(), u.data_ptr()
                sa, sc, su = M * GH * N * e, M * H * N * e, K * N * e
                HN, h_stride = H * N, (T + 1) * K * N
                for t in range(T):
                    torch.bmm(wu, u[:, t], out=A[t])
                    fwd(pa + t * sa, pc + t * sc, pc + (t + 1) * sc, ptc + t * sc,
                        pu + (t + 1) * su, M, HN, h_stride)
                saved.update(A=A, C=C, TC=TC)
            elif kind == "lstm":
                # the cell state is carried doubled, c2 = 2 c, and the g block as
                # s = sigmoid(2 a_g), g = 2 s - 1: then c2 = f c2_prev + 4 i s - 2 i and
                # tanh(c) = 2 sigmoid(c2) - 1, with no separate conversions
                c = torch.mul(c0.transpose(1, 2), 2.0).contiguous()
                for t in range(T):
                    a = torch.bmm(wu, u[:, t], out=_take((M, GH, N), dt)).sigmoid_()
                    i = a[:, :H]
                    c_prev = c
                    c = torch.mul(a[:, H:2 * H], c_prev, out=_take((M, H, N), dt))
                    c.addcmul_(i, a[:, 2 * H:3 * H], value=4.0).sub_(i, alpha=2.0)
                    tc = torch.sigmoid(c, out=_take((M, H, N), dt)).mul_(2.0).sub_(1.0)
                    torch.mul(a[:, 3 * H:], tc, out=u[:, t + 1, :H])
                    steps.append((a, c_prev, tc))
                saved["c_last"] = c
            else:  # gru
                for t in range(T):
                    pre = torch.bmm(wu, u[:, t], out=_take((M, 4 * H, N), dt))
                    r_z = pre[:, :2 * H].sigmoid_()
                    n = torch.addcmul(pre[:, 3 * H:], r_z[:, :H], pre[:, 2 * H:3 * H],
                                      out=_take((M, H, N), dt))
                    _tanh_from_doubled(n)
                    # h = (1 - z) n + z h_prev = n + z (h_prev - n)
                    h = torch.sub(u[:, t, :H], n, out=u[:, t + 1, :H])
                    h.mul_(r_z[:, H:]).add_(n)
                    steps.append((pre, n))
            out = u[:, T, :H].transpose(1, 2).contiguous()  # (M, N, H)
        ctx.kind, ctx.shared, ctx.dims = kind, shared, (M, N, T, D, H, G, K)
        ctx.compiled = lib if kind == "lstm" else None
        ctx.saved, ctx.steps, ctx.wu = saved, steps, wu
        ctx.save_for_backward(x, w_ih, w_hh)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, dh_last):
        kind, shared = ctx.kind, ctx.shared
        M, N, T, D, H, G, K = ctx.dims
        x, w_ih, w_hh = ctx.saved_tensors
        s, steps, wu = ctx.saved, ctx.steps, ctx.wu
        if s is None:
            raise RuntimeError("the fused engine keeps its buffers for ONE backward pass; run "
                               "the forward pass again (or use engine='autograd' to "
                               "differentiate a graph twice).")
        ctx.saved = ctx.steps = None
        u = s["u"]
        dt = u.dtype
        GH = G * H
        need_x, need_wih, need_whh, need_bih, need_bhh, need_h0, need_c0 = ctx.needs_input_grad[1:8]
        with torch.no_grad():
            rows = 4 * H if kind == "gru" else GH
            dwu = w_hh.new_zeros(M, rows, K)  # gradient of [W_hh | W_ih | b], accumulated
            w_t = w_hh.transpose(1, 2)  # (M, H, GH)
            dxs = []
            dh = _take((M, H, N), dt).copy_(dh_last.transpose(1, 2))
            dc = None
            if need_x:  # input weights in the layout of the rows of d
                if kind == "gru":
                    wx_t = torch.cat([w_ih[:, :2 * H], w_ih.new_zeros(M, H, D), w_ih[:, 2 * H:]],
                                     1).transpose(1, 2)
                else:
                    wx_t = w_ih.transpose(1, 2)
            if kind in ("rnn", "irnn"):
                for t in range(T - 1, -1, -1):
                    h = u[:, t + 1, :H]
                    d = _take((M, GH, N), dt)
                    if kind == "rnn":  # dh (1 - h^2)
                        torch.addcmul(dh, dh, h * h, value=-1.0, out=d)
                    else:
                        torch.ops.aten.threshold_backward.grad_input(dh, h, 0, grad_input=d)
                    dwu.baddbmm_(d, u[:, t].transpose(1, 2))
                    if need_x:
                        dxs.append(torch.bmm(wx_t, d))
                    _give(dh)
                    dh = torch.bmm(w_t, d, out=_take((M, H, N), dt))
                    _give(d)
            elif kind == "lstm" and ctx.compiled is not None:
                lib = ctx.compiled
                bwd = lib.lstm_backward_f64 if dt == torch.float64 else lib.lstm_backward_f32
                A, C, TC = s["A"], s["C"], s["TC"]
                e = A.element_size()
                pa, pc, ptc = A.data_ptr(), C.data_ptr(), TC.data_ptr()
                sa, sc = M * GH * N * e, M * H * N * e
                dc = torch.zeros_like(dh)
                d = _take((M, GH, N), dt)
                pdh, pdc, pd, d_t = dh.data_ptr(), dc.data_ptr(), d.data_ptr(), d.transpose(1, 2)
                # accumulated transposed, (M, K, 4H): the faster of the two forms here
                dwu_t = dwu.new_zeros(M, K, GH)
                for t in range(T - 1, -1, -1):
                    bwd(pa + t * sa, pc + t * sc, ptc + t * sc, pdh, pdc, pd, M, H * N)
                    dwu_t.baddbmm_(u[:, t], d_t)
                    if need_x:
                        dxs.append(torch.bmm(wx_t, d))
                    torch.bmm(w_t, d, out=dh)  # the gradient reaching h_{t-1}
                _give(d)
                dwu = dwu_t.transpose(1, 2)
            elif kind == "lstm":
                dc = torch.zeros_like(dh)
                zero = u.new_zeros(())
                for t in range(T - 1, -1, -1):
                    a, c_prev, tc = steps[t]
                    d = _take((M, GH, N), dt)
                    # dc += dh * o * (1 - tanh(c)^2) = dh * (o - h tanh(c))
                    k = torch.addcmul(a[:, 3 * H:], u[:, t + 1, :H], tc, value=-1.0,
                                      out=d[:, 3 * H:])
                    dc.addcmul_(dh, k)
                    torch.mul(dh, tc, out=d[:, 3 * H:])
                    # d_i = dc g = -(dc - 2 dc s); d_f = dc c_prev = dc c2_prev / 2;
                    # d_g = dc i (1 - g^2) = 4 dc i s (1 - s): the 4 here, s (1 - s) below
                    s_g = a[:, 2 * H:3 * H]
                    torch.addcmul(dc, dc, s_g, value=-2.0, out=d[:, :H]).neg_()
                    torch.addcmul(zero, dc, c_prev, value=0.5, out=d[:, H:2 * H])
                    torch.addcmul(zero, dc, a[:, :H], value=4.0, out=d[:, 2 * H:3 * H])
                    dc.mul_(a[:, H:2 * H])  # the gradient reaching c_{t-1}
                    a.addcmul_(a, a, value=-1.0)  # s (1 - s) of every gate
                    d.mul_(a)
                    dwu.baddbmm_(d, u[:, t].transpose(1, 2))
                    if need_x:
                        dxs.append(torch.bmm(wx_t, d))
                    _give(dh)
                    dh = torch.bmm(w_t, d, out=_take((M, H, N), dt))
                    _give(d, a, tc, c_prev)
            else:  # gru
                w_t = w_hh.transpose(1, 2)  # (M, H, 3H)
                ones = u.new_ones(())
                for t in range(T - 1, -1, -1):
                    pre, n = steps[t]
                    r_z = pre[:, :2 * H]
                    z = r_z[:, H:]
                    d = _take((M, 4 * H, N), dt)
                    dn = torch.addcmul(dh, dh, z, value=-1.0)  # dh (1 - z)
                    dnp = torch.addcmul(ones, n, n, value=-1.0, out=d[:, 3 * H:]).mul_(dn)
                    torch.sub(u[:, t, :H], n, out=d[:, H:2 * H]).mul_(dh)  # dz
                    # dr = dn_pre * (W_hn h + b_hn), held doubled in pre
                    torch.mul(dnp, pre[:, 2 * H:3 * H], out=d[:, :H]).mul_(0.5)
                    torch.mul(dnp, r_z[:, :H], out=d[:, 2 * H:3 * H])
                    dhz = torch.mul(dh, z, out=dn)  # the direct path z * dh to h_{t-1}
                    d[:, :2 * H].mul_(r_z.addcmul_(r_z, r_z, value=-1.0))  # s (1 - s)
                    dwu.baddbmm_(d, u[:, t].transpose(1, 2))
                    if need_x:
                        dxs.append(torch.bmm(wx_t, d))
                    _give(dh)
                    dh = torch.baddbmm(dhz, w_t, d[:, :3 * H], out=_take((M, H, N), dt))
                    _give(d, pre, n)
            grads = [None] * 9
            if kind == "gru":
                w_rows = torch.cat([dwu[:, :2 * H], dwu[:, 3 * H:]], 1)  # r, z, n of W_ih x + b_ih
                grads[3] = dwu[:, :3 * H, :H].clone()
                grads[2] = w_rows[:, :, H:H + D].clone()
                grads[4] = w_rows[:, :, H + D].clone()
                grads[5] = dwu[:, :3 * H, H + D].clone()
            else:
                grads[3] = dwu[:, :, :H].clone()
                grads[2] = dwu[:, :, H:H + D].clone()
                grads[4] = dwu[:, :, H + D].clone()
                grads[5] = dwu[:, :, H + D].clone()
            if need_x:
                dxT = torch.stack(dxs[::-1], dim=1)  # (M, T, D, N)
                grads[1] = dxT.sum(0).permute(2, 0, 1) if shared else dxT.permute(0, 3, 1, 2)
            if need_h0:
                grads[6] = dh.transpose(1, 2).clone()
            if need_c0 and kind == "lstm":
                grads[7] = dc.transpose(1, 2).clone()
            _give(dh, *s.values())
        return tuple(grads)
