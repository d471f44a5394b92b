"""A small diagonal linear recurrent model in the manner of Orvieto et al. (2023), the LRU.

Chapter 12 ("Linear recurrences and parallel scans"). The recurrent layer is

.. math::

    h_t = \\lambda \\odot h_{t-1} + \\gamma \\odot (B u_t), \\qquad
    y_t = \\operatorname{Re}(C h_t) + d \\odot u_t,

with a *complex diagonal* transition :math:`\\lambda \\in \\mathbb{C}^H` (``H`` the
state size), complex ``B`` (H, E) and ``C`` (E, H), a real skip ``d`` (E,) and a
real normalisation :math:`\\gamma` (``E`` is the width of the encoder's output;
``N`` stays the batch size, as everywhere in the course). The choices that make it
train (Orvieto et al. 2023, section 3):

* **stable exponential parameterisation**: :math:`\\lambda = \\exp(-e^{\\nu} + i e^{\\theta})`
  with trainable ``nu_log`` and ``theta_log``, so :math:`|\\lambda| = \\exp(-e^{\\nu}) < 1`
  whatever the optimiser does;
* **ring initialisation**: :math:`|\\lambda|` drawn so that :math:`|\\lambda|^2` is uniform on
  :math:`[r_{\\min}^2, r_{\\max}^2]` (uniform on the ring's area), the phase uniform on
  :math:`[0, \\theta_{\\max}]`;
* **normalised input**: :math:`\\gamma = \\sqrt{1 - |\\lambda|^2}` at initialisation (trainable
  as ``gamma_log``), so that a white-noise input gives a state of the same variance
  whatever :math:`|\\lambda|`; without it, channels with :math:`|\\lambda| \\to 1` grow in
  standard deviation by :math:`1 / \\sqrt{1 - |\\lambda|^2}`.

The model around it (:class:`LRUNetwork`): a position-wise MLP encoder ``D -> E``
(Linear, ReLU), the LRU layer, a position-wise MLP read-out with a residual connection
(``y_t + MLP(y_t)``, ``E -> 2E -> E``, GELU), and a linear head ``E -> K`` on the
last position. Orvieto et al. stack several LRU blocks after a linear encoder; one
block with a nonlinear encoder is the smallest version that can multiply a marker by a
value *before* the linear recurrence sums them, which the adding problem needs.

All states are computed at once by :func:`linear_scan` (a parallel prefix scan by
recursive doubling in torch, differentiable, complex-safe); :func:`linear_scan_loop` is
the sequential reference. Like :class:`companion.nn.ensemble.Ensemble`, an
:class:`LRUNetwork` holds ``M`` independent members (one per seed in ``seeds``)
stacked on a leading axis, so a whole learning-rate x seed grid trains as one model
(:func:`train_lru_ensemble`). For the ablation, ``LRUNetwork(normalise=False)`` drops
:math:`\\gamma`, and :class:`WrappedTanhRNN` puts the same encoder and read-out around a
tanh RNN core.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from companion.checks import check_finite_tensor as _refuse_nonfinite
from companion.checks import check_positive_int, check_real

__all__ = ["LRUNetwork", "WrappedTanhRNN", "last_state", "linear_scan", "linear_scan_loop",
           "ring_init", "train_lru_ensemble"]


def _check_scan_args(a, b):
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        raise TypeError(f"a and b must be torch tensors; got {type(a).__name__} and "
                        f"{type(b).__name__}. Convert with torch.as_tensor(...).")
    for name, t in (("a", a), ("b", b)):
        if not (t.is_floating_point() or t.is_complex()):
            raise TypeError(f"{name} must hold real or complex floats; got dtype {t.dtype}. "
                            f"Use {name}.double() (integer arithmetic would truncate).")
    if b.dim() < 2:
        raise ValueError(f"b must have shape (..., T, H) with time on axis -2; got "
                         f"{tuple(b.shape)}. Add a channel axis with b[..., None].")
    try:
        full = torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError:
        raise ValueError(f"a must broadcast against b {tuple(b.shape)} (time on axis -2); got "
                         f"{tuple(a.shape)}. A time-invariant transition of H channels is "
                         f"a tensor of shape (H,).") from None
    if tuple(full) != tuple(b.shape):
        raise ValueError(f"a must broadcast to the shape of b {tuple(b.shape)} without "
                         f"enlarging it; got a {tuple(a.shape)}, which would make "
                         f"{tuple(full)}. Give b every leading (batch) axis.")
    if b.shape[-2] == 0:
        raise ValueError(f"b must have at least one time step (axis -2, T >= 1); got shape "
                         f"{tuple(b.shape)}.")
    if b.numel() == 0:
        raise ValueError(f"b must not be empty (every axis >= 1: at least one sequence and "
                         f"one channel); got shape {tuple(b.shape)}.")
    _refuse_nonfinite("a", a)
    _refuse_nonfinite("b", b)


def linear_scan_loop(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """All states of ``h_t = a_t * h_{t-1} + b_t`` (``h_0 = 0``), one step at a time.

    ``b``: (..., T, H), time on axis -2; ``a``: broadcastable to ``b`` (e.g. (H,) for a
    transition that does not change with time). Returns (..., T, H).
    """
    _check_scan_args(a, b)
    return _linear_scan_loop(a, b)


def _linear_scan_loop(a, b):
    a = torch.broadcast_to(a, b.shape)
    h, out = torch.zeros_like(b[..., 0, :]), []
    for t in range(b.shape[-2]):
        h = a[..., t, :] * h + b[..., t, :]
        out.append(h)
    return torch.stack(out, dim=-2)


def linear_scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """All states of ``h_t = a_t * h_{t-1} + b_t`` (``h_0 = 0``) by a parallel scan.

    Recursive doubling (Hillis and Steele): in round ``r`` every position ``t >= 2^r``
    composes its partial map with the one ``2^r`` positions to its left, all at once,
    so ``ceil(log2 T)`` rounds of elementwise tensor operations replace ``T`` steps.
    Out-of-place, so autograd differentiates through it; works for complex tensors.
    Same arguments and result as :func:`linear_scan_loop`. (The work is
    ``O(T log T)`` instead of Blelloch's ``O(T)``, but each round is one large
    vectorised operation, which on a CPU is what counts at these sizes.)
    """
    _check_scan_args(a, b)
    return _linear_scan(a, b)


def _linear_scan(a, b):
    T, shift = b.shape[-2], 1
    B = b
    if a.dim() < 2 or a.shape[-2] == 1:
        # time-invariant a: every position t >= 2^r holds a map whose a-part is a^(2^r),
        # so the composed a's are powers of a, got by squaring, not stored per position
        power = a
        while shift < T:
            B = torch.cat([B[..., :shift, :], power * B[..., :-shift, :] + B[..., shift:, :]],
                          dim=-2)
            power, shift = power * power, 2 * shift
        return B
    A = torch.broadcast_to(a, b.shape)
    while shift < T:
        B = torch.cat([B[..., :shift, :], A[..., shift:, :] * B[..., :-shift, :]
                       + B[..., shift:, :]], dim=-2)
        if 2 * shift < T:  # the last round does not need the composed a's
            A = torch.cat([A[..., :shift, :], A[..., shift:, :] * A[..., :-shift, :]], dim=-2)
        shift *= 2
    return B


def last_state(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Only the last state ``h_T`` of ``h_t = a * h_{t-1} + b_t`` for a time-invariant ``a``.

    The closed form :math:`h_T = \\sum_{s \\le T} a^{T-s} b_s` with the powers computed
    as ``exp((T - s) log a)``: exponents with non-positive real part for ``|a| <= 1``,
    so nothing overflows and nothing is divided (the log-space form of the scan, read
    at its last position). ``a``: (H,) or broadcastable to (..., 1, H); ``b``:
    (..., T, H). Returns (..., H). One weighted sum instead of a scan: what a model
    needs when only the last position is read out.
    """
    _check_scan_args(a, b)
    if not (a.dim() < 2 or a.shape[-2] == 1):
        raise ValueError(f"last_state needs a time-invariant a of shape (H,) or (..., 1, H); "
                         f"got {tuple(a.shape)} for b {tuple(b.shape)}. Use linear_scan.")
    if not a.is_complex() and bool((a <= 0).any()):
        raise ValueError("last_state takes the logarithm of a: a real a must be positive; "
                         "got a value <= 0. Pass a as a complex tensor (its log is defined "
                         "for negative values) or use linear_scan.")
    return _last_state(a, b)


def _last_state(a, b):
    T = b.shape[-2]
    k = torch.arange(T - 1, -1, -1, dtype=b.real.dtype)[:, None]  # T - s for s = 1..T
    a = a if a.dim() >= 2 else a[None]
    return (torch.exp(k * torch.log(a)) * b).sum(dim=-2)


def ring_init(n: int, *, r_min: float, r_max: float, max_phase: float, generator=None):
    """``(nu_log, theta_log, gamma_log)`` for ``n`` eigenvalues initialised on a ring.

    :math:`|\\lambda|^2` uniform on :math:`[r_{\\min}^2, r_{\\max}^2]` and the phase
    uniform on :math:`[0, \\theta_{\\max}]` (Orvieto et al. 2023, section 3), stored as
    ``nu_log = log(-log|lambda|)``, ``theta_log = log(phase)`` and
    ``gamma_log = log sqrt(1 - |lambda|^2)``; float64 tensors of shape (n,).
    """
    n = check_positive_int("n", n)
    r_min = check_real("r_min", r_min, low=0.0)
    r_max = check_real("r_max", r_max, low=0.0)
    if not r_min < r_max < 1:
        raise ValueError(f"need 0 <= r_min < r_max < 1 (a ring inside the unit circle); got "
                         f"r_min={r_min}, r_max={r_max}.")
    max_phase = check_real("max_phase", max_phase, low=0.0)
    if max_phase <= 0:
        raise ValueError(f"max_phase must be > 0 (e.g. math.pi / 10); got {max_phase}.")
    _check_generator("generator", generator)
    u1 = torch.rand(n, generator=generator, dtype=torch.float64)
    u2 = torch.rand(n, generator=generator, dtype=torch.float64)
    nu = -0.5 * torch.log(u1 * (r_max ** 2 - r_min ** 2) + r_min ** 2)
    theta = max_phase * u2.clamp_min(1e-12)
    mod = torch.exp(-nu)
    return torch.log(nu), torch.log(theta), torch.log(torch.sqrt(1 - mod ** 2))


def _check_generator(name, generator):
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None; got "
                        f"{type(generator).__name__} {generator!r}. Use "
                        f"torch.Generator().manual_seed(seed).")


def _check_seeds(seeds, name: str = "seeds") -> list:
    """One non-negative int per member (an int alone is one member)."""
    if isinstance(seeds, (str, bytes)) or seeds is None:
        raise TypeError(f"{name} must be a list of non-negative ints, one per member; got "
                        f"{type(seeds).__name__} {seeds!r}. E.g. seeds=[0, 1, 2, 3, 4].")
    if isinstance(seeds, bool):
        raise TypeError(f"{name} must be a list of non-negative ints; got {seeds!r}.")
    try:
        seeds = [seeds] if isinstance(seeds, (int, np.integer)) else list(seeds)
    except TypeError:
        raise TypeError(f"{name} must be a list of non-negative ints, one per member; got "
                        f"{type(seeds).__name__} {seeds!r}.") from None
    if not seeds:
        raise ValueError(f"{name} must be a non-empty list of ints, one per member; "
                         "e.g. seeds=[0, 1, 2, 3, 4].")
    for i, s in enumerate(seeds):
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"{name} must hold non-negative ints, one per member; {name}[{i}] "
                            f"is {type(s).__name__} {s!r}.")
        if s < 0:
            raise ValueError(f"{name} must hold non-negative ints, one per member; {name}[{i}] "
                             f"is {s}.")
    return [int(s) for s in seeds]


def _check_inputs_x(x, model):
    """The input of an LRU-style model: the batched-members check, then N >= 1 and finite."""
    from companion.nn.ensemble import check_member_inputs

    check_member_inputs(x, members=model.members, input_size=model.input_size,
                        dtype=model.enc_weight.dtype, owner="model")
    if x.shape[-3] == 0:
        raise ValueError(f"x must have at least one sequence (axis {x.dim() - 3}, N >= 1); "
                         f"got shape {tuple(x.shape)}.")
    _refuse_nonfinite("x", x)


def _check_flag(name, value):
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False; got {type(value).__name__} {value!r}.")
    return value


class LRUNetwork(nn.Module):
    """Encoder MLP, one LRU layer, residual MLP read-out, linear head; ``M`` members.

    Parameters
    ----------
    input_size, output_size : ``D`` and ``K``.
    state_size : ``H``, the number of complex state channels (the "hidden size").
    width : ``E``, the width of the encoder output and of the read-out.
    seeds : one seed per member; member ``m`` is initialised from
        ``torch.Generator().manual_seed(seeds[m])``.
    r_min, r_max, max_phase : the ring initialisation of the eigenvalues.
    scan : how the states are computed: ``"parallel"`` (:func:`linear_scan`), ``"loop"``
        (:func:`linear_scan_loop`) or ``"last"`` (:func:`last_state`: when only the last
        position is read out, its state from the closed form; the same numbers to
        rounding error, a fraction of the cost; ``all_steps=True`` then uses the scan).
    dtype : ``torch.float32`` or ``torch.float64`` (the state is complex of twice the size).
    normalise : keep the normalisation :math:`\\gamma` (default). ``False`` drops it
        (:math:`\\gamma = 1`, no ``gamma_log`` parameter): the ablation of Orvieto et al.

    ``forward(x)``: ``x`` (N, T, D) shared by all members or (M, N, T, D); returns the
    head's output at the last position, (M, N, K), or at every position, (M, N, T, K),
    with ``all_steps=True``.
    """

    def __init__(self, input_size: int, state_size: int, width: int, output_size: int, *,
                 seeds, r_min: float = 0.9, r_max: float = 0.999,
                 max_phase: float = math.pi / 10, scan: str = "parallel",
                 dtype=torch.float32, normalise: bool = True):
        super().__init__()
        if not isinstance(normalise, bool):
            raise TypeError(f"normalise must be True or False; got {normalise!r}.")
        self.normalise = normalise
        D = self.input_size = check_positive_int("input_size", input_size)
        H = self.state_size = check_positive_int("state_size", state_size)
        E = self.width = check_positive_int("width", width)
        K = self.output_size = check_positive_int("output_size", output_size)
        if scan not in ("parallel", "loop", "last"):
            raise ValueError(f"scan must be 'parallel', 'loop' or 'last'; got {scan!r}.")
        self.scan = scan
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64; got {dtype}.")
        self.seeds = _check_seeds(seeds)
        r_min = check_real("r_min", r_min, low=0.0)
        r_max = check_real("r_max", r_max, low=0.0)
        max_phase = check_real("max_phase", max_phase, low=0.0, low_open=True)
        self.ring = (float(r_min), float(r_max), float(max_phase))
        init = [self._init_member(s, D, H, E, K) for s in self.seeds]
        if not normalise:  # gamma = 1: drawn (so every other parameter is unchanged), not kept
            for p in init:
                del p["gamma_log"]
        for name in init[0]:
            self.register_parameter(name, nn.Parameter(
                torch.stack([p[name] for p in init]).to(dtype)))

    def _init_member(self, seed, D, H, E, K):
        """One member's parameters, float64: ``D`` inputs, ``H`` complex state channels,
        width ``E``, ``K`` outputs (the letters of the module docstring; ``N``, the batch
        size, does not occur here)."""
        g = torch.Generator().manual_seed(seed)
        f64 = torch.float64

        def uniform(shape, fan_in):  # torch.nn.Linear's default range
            bound = 1.0 / math.sqrt(fan_in)
            return (torch.rand(shape, generator=g, dtype=f64) * 2 - 1) * bound

        r_min, r_max, max_phase = self.ring
        nu_log, theta_log, gamma_log = ring_init(H, r_min=r_min, r_max=r_max,
                                                 max_phase=max_phase, generator=g)
        return {
            "enc_weight": uniform((E, D), D), "enc_bias": uniform((E,), D),
            "nu_log": nu_log, "theta_log": theta_log, "gamma_log": gamma_log,
            # complex B and C as real and imaginary parts, variance 1/(2 fan_in) each
            "B_re": torch.randn((H, E), generator=g, dtype=f64) / math.sqrt(2 * E),
            "B_im": torch.randn((H, E), generator=g, dtype=f64) / math.sqrt(2 * E),
            "C_re": torch.randn((E, H), generator=g, dtype=f64) / math.sqrt(H),
            "C_im": torch.randn((E, H), generator=g, dtype=f64) / math.sqrt(H),
            "skip": torch.randn((E,), generator=g, dtype=f64),
            "mlp1_weight": uniform((2 * E, E), E), "mlp1_bias": uniform((2 * E,), E),
            "mlp2_weight": uniform((E, 2 * E), 2 * E), "mlp2_bias": uniform((E,), 2 * E),
            "head_weight": uniform((K, E), E), "head_bias": uniform((K,), E),
        }

    @property
    def members(self) -> int:
        return len(self.seeds)

    def extra_repr(self) -> str:
        return (f"members={self.members}, input_size={self.input_size}, state_size="
                f"{self.state_size}, width={self.width}, output_size={self.output_size}, "
                f"scan={self.scan!r}" + ("" if self.normalise else ", normalise=False"))

    def parameter_count(self) -> int:
        """Trainable real parameters of ONE member (a complex number counts as two)."""
        return sum(p[0].numel() for p in self.parameters())

    def eigenvalues(self) -> torch.Tensor:
        """The complex transition :math:`\\lambda`, (M, H)."""
        return torch.exp(torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))

    def _check_x(self, x):
        _check_inputs_x(x, self)

    def _inputs(self, x):
        self._check_x(x)
        eq = "ntd,mwd->mntw" if x.dim() == 3 else "mntd,mwd->mntw"
        u = torch.relu(torch.einsum(eq, x, self.enc_weight) + self.enc_bias[:, None, None])
        Bu = torch.complex(torch.einsum("mntw,mkw->mntk", u, self.B_re),
                           torch.einsum("mntw,mkw->mntk", u, self.B_im))
        if not self.normalise:
            return u, Bu, self.eigenvalues()[:, None, None, :]
        gamma = torch.exp(self.gamma_log)[:, None, None, :]
        return u, gamma * Bu, self.eigenvalues()[:, None, None, :]  # lambda: (M, 1, 1, H)

    def states(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder output ``u`` (M, N, T, E) and the complex states ``h`` (M, N, T, H)."""
        u, b, lam = self._inputs(x)
        scan = _linear_scan_loop if self.scan == "loop" else _linear_scan
        return u, scan(lam, b)

    def forward(self, x: torch.Tensor, *, all_steps: bool = False) -> torch.Tensor:
        _check_flag("all_steps", all_steps)
        if all_steps or self.scan != "last":
            u, h = self.states(x)
            if not all_steps:  # only the last position is read out
                u, h = u[:, :, -1:], h[:, :, -1:]
        else:
            u, b, lam = self._inputs(x)
            u, h = u[:, :, -1:], _last_state(lam, b)[:, :, None]
        y = (torch.einsum("mntk,mwk->mntw", h.real, self.C_re)
             - torch.einsum("mntk,mwk->mntw", h.imag, self.C_im)
             + self.skip[:, None, None] * u)  # Re(C h) + d * u
        hid = torch.nn.functional.gelu(torch.einsum("mntw,mvw->mntv", y, self.mlp1_weight)
                                       + self.mlp1_bias[:, None, None])
        z = y + torch.einsum("mntv,mwv->mntw", hid, self.mlp2_weight) \
            + self.mlp2_bias[:, None, None]
        out = torch.einsum("mntw,mkw->mntk", z, self.head_weight) \
            + self.head_bias[:, None, None]
        return out if all_steps else out[:, :, 0]

    @torch.no_grad()
    def predict(self, x: torch.Tensor, *, chunk: int = 250) -> torch.Tensor:
        """``forward`` without gradients, over chunks of ``chunk`` sequences."""
        self._check_x(x)
        chunk = check_positive_int("chunk", chunk)
        n_axis = 0 if x.dim() == 3 else 1
        return torch.cat([self(p) for p in torch.split(x, chunk, dim=n_axis)], dim=1)


class WrappedTanhRNN(nn.Module):
    """:class:`LRUNetwork`'s encoder, read-out and head around a *tanh RNN* core; ``M`` members.

    The ablation that separates the LRU's recurrence from what surrounds it: the same
    position-wise encoder (Linear ``D -> E``, ReLU), the same residual GELU MLP read-out
    and linear head on the last position, with the linear recurrence replaced by
    ``h_t = tanh(W_ih u_t + b_ih + W_hh h_{t-1} + b_hh)`` (``H`` real channels, torch's
    ``nn.RNN`` initialisation, as the bare tanh RNN of :mod:`companion.nn.ensemble`) and
    its real read-out ``y = C h + d * u``. Evaluated by a loop (the recurrence is
    nonlinear). Arguments as :class:`LRUNetwork` (``state_size``: ``H``; ``width``: ``E``);
    ``forward(x)``: ``x`` (N, T, D) or (M, N, T, D), returns (M, N, K).
    """

    def __init__(self, input_size: int, state_size: int, width: int, output_size: int, *,
                 seeds, dtype=torch.float32):
        super().__init__()
        D = self.input_size = check_positive_int("input_size", input_size)
        H = self.state_size = check_positive_int("state_size", state_size)
        E = self.width = check_positive_int("width", width)
        K = self.output_size = check_positive_int("output_size", output_size)
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64; got {dtype}.")
        self.seeds = _check_seeds(seeds)
        init = [self._init_member(s, D, H, E, K) for s in self.seeds]
        for name in init[0]:
            self.register_parameter(name, nn.Parameter(
                torch.stack([p[name] for p in init]).to(dtype)))

    def _init_member(self, seed, D, H, E, K):
        g = torch.Generator().manual_seed(seed)

        def uniform(shape, fan_in):  # torch.nn.Linear's and nn.RNN's default range
            bound = 1.0 / math.sqrt(fan_in)
            return (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1) * bound

        return {
            "enc_weight": uniform((E, D), D), "enc_bias": uniform((E,), D),
            "W_ih": uniform((H, E), H), "W_hh": uniform((H, H), H),
            "b_ih": uniform((H,), H), "b_hh": uniform((H,), H),
            "C": uniform((E, H), H),
            "skip": torch.randn((E,), generator=g, dtype=torch.float64),
            "mlp1_weight": uniform((2 * E, E), E), "mlp1_bias": uniform((2 * E,), E),
            "mlp2_weight": uniform((E, 2 * E), 2 * E), "mlp2_bias": uniform((E,), 2 * E),
            "head_weight": uniform((K, E), E), "head_bias": uniform((K,), E),
        }

    @property
    def members(self) -> int:
        return len(self.seeds)

    def parameter_count(self) -> int:
        """Trainable parameters of ONE member."""
        return sum(p[0].numel() for p in self.parameters())

    def _check_x(self, x):
        _check_inputs_x(x, self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_x(x)
        eq = "ntd,mwd->mntw" if x.dim() == 3 else "mntd,mwd->mntw"
        u = torch.relu(torch.einsum(eq, x, self.enc_weight) + self.enc_bias[:, None, None])
        pre = torch.einsum("mntw,mhw->mnth", u, self.W_ih) + \
            (self.b_ih + self.b_hh)[:, None, None]
        h = torch.zeros_like(pre[:, :, 0])
        for t in range(pre.shape[2]):
            h = torch.tanh(pre[:, :, t] + torch.einsum("mnk,mhk->mnh", h, self.W_hh))
        y = torch.einsum("mnh,mwh->mnw", h, self.C) + self.skip[:, None] * u[:, :, -1]
        hid = torch.nn.functional.gelu(torch.einsum("mnw,mvw->mnv", y, self.mlp1_weight)
                                       + self.mlp1_bias[:, None])
        z = y + torch.einsum("mnv,mwv->mnw", hid, self.mlp2_weight) + self.mlp2_bias[:, None]
        return torch.einsum("mnw,mkw->mnk", z, self.head_weight) + self.head_bias[:, None]

    @torch.no_grad()
    def predict(self, x: torch.Tensor, *, chunk: int = 250) -> torch.Tensor:
        """``forward`` without gradients, over chunks of ``chunk`` sequences."""
        self._check_x(x)
        chunk = check_positive_int("chunk", chunk)
        n_axis = 0 if x.dim() == 3 else 1
        return torch.cat([self(p) for p in torch.split(x, chunk, dim=n_axis)], dim=1)


def train_lru_ensemble(model: LRUNetwork, batch_fn, loss_fn, *, steps: int, lr,
                       clip_norm=math.inf):
    """Adam on every member at its own learning rate, as ``companion.nn.ensemble`` does.

    ``batch_fn(step) -> (x, y)``, ``loss_fn(out, y) -> (M,)`` (each member's mean loss);
    ``lr`` and ``clip_norm`` a number or one per member. The loop is
    :func:`companion.nn.ensemble.train_batched` (BatchedAdam, per-member clipping);
    a member whose loss or gradient is not finite is frozen from that step on.
    Returns ``(losses (steps, M) with NaN after divergence, diverged_step (M,), -1 if never)``.
    """
    from companion.nn.ensemble import train_batched

    if not isinstance(model, LRUNetwork):
        raise TypeError(f"model must be an LRUNetwork; got {type(model).__name__}.")
    hist = train_batched(model, batch_fn, loss_fn, steps=steps, lr=lr, clip_norm=clip_norm)
    return hist.loss, hist.diverged_step
