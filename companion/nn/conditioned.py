"""A recurrent generator conditioned on a fixed vector, as a batched ensemble.

The model writes a token sequence ``y(1), ..., y(tau)`` about a vector ``x`` (Goodfellow
et al., section 10.2.4). Its previous output is fed back as its next input, the
``y(t) -> h(t+1)`` edge that makes the outputs depend on one another::

    e(t) = E[y(t-1)]                      (y(0) = <bos>; E is the (K, De) embedding)
    a(t) = b + W h(t-1) + U e(t) [+ R^T x]
    h(t) = tanh(a(t))
    o(t) = c + V h(t),   P(y(t) | y(<t), x) = softmax(o(t))

The vector enters in one of three ways (``mode``):

``"init"``
    as the initial state only: ``h(0) = tanh(P x + p)``; ``x`` is not seen again.
    (The chapter writes ``P`` and ``p`` as W_0 and b_0: P is a probability there.)
``"input"``
    as an extra input at every step: ``x^T R`` is added to ``a(t)`` for every t.
    It is the same computation as concatenating ``x`` to the token embedding and
    widening ``U`` by ``R^T``: a bias for the hidden units that depends on the
    sequence, not on the step (Goodfellow's figure 10.9). ``h(0) = 0``.
``"both"``
    both of the above.

All parameters carry a leading **member** axis ``M``: one object holds ``M`` independent
models (every seed and learning rate of a sweep) and trains them together with batched
matrix products. Member ``m`` is initialised from its own seed ``seeds[m]``, so it does
not depend on which other members share the ensemble. ``M = 1`` is a plain model.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from companion.checks import (
    check_nonempty,
    check_positive_int,
    check_probability,
    check_real,
    check_tensor,
    check_token_tensor,
)

__all__ = ["MODES", "ConditionedGenerator", "arm_summary", "chosen_runs", "conflict_fractions",
           "find_arm", "fit", "grid_position", "lr_medians", "masked_nll", "paired_errors",
           "position_rates", "scheduled_teacher_prob"]

MODES = ("init", "input", "both")


def _check_long(name, t, shape_text, hint=""):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch LongTensor {shape_text}; got "
                        f"{type(t).__name__}. Convert with torch.as_tensor({name}, "
                        f"dtype=torch.long).")
    if t.dtype != torch.long:
        raise TypeError(f"{name} must hold token ids as torch.long {shape_text}; got "
                        f"{t.dtype}. {hint or f'Use {name}.long().'}")


class ConditionedGenerator(nn.Module):
    """``M`` conditioned tanh-RNN generators (see the module docstring).

    Parameters
    ----------
    mode : ``"init"``, ``"input"`` or ``"both"``.
    input_size : D, the size of the conditioning vector.
    vocab_size : K.
    hidden_size : H.
    embed_size : De, the size of the token embedding.
    seeds : one int per member (M = len(seeds)); default ``(0,)``.
    dtype : ``torch.float32`` (sweeps) or ``torch.float64`` (printed live numbers).

    Notes
    -----
    Initialisation: every weight matrix ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` as torch's
    ``nn.RNN``/``nn.Linear`` (``W``, ``U``, ``b`` with fan-in H; ``P``, ``R`` with fan-in D),
    the embedding ``N(0, 1)`` as ``nn.Embedding``.
    """

    def __init__(self, mode: str, input_size: int, vocab_size: int, hidden_size: int = 64,
                 embed_size: int = 16, *, seeds=(0,), dtype=torch.float32):
        super().__init__()
        if not isinstance(mode, str) or mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; got {mode!r}.")
        self.mode = mode
        self.D = check_positive_int("input_size", input_size)
        self.K = check_positive_int("vocab_size", vocab_size, minimum=2)
        self.H = check_positive_int("hidden_size", hidden_size)
        self.De = check_positive_int("embed_size", embed_size)
        seeds = [int(check_positive_int(f"seeds[{i}]", s, minimum=0)) for i, s in
                 enumerate(seeds if isinstance(seeds, (list, tuple, np.ndarray)) else [seeds])]
        if not seeds:
            raise ValueError("seeds must hold at least one seed (one per member).")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64; got {dtype}.")
        self.seeds = tuple(seeds)
        D, K, H, De = self.D, self.K, self.H, self.De
        shapes = {"E": (K, De), "U": (H, De), "W": (H, H), "b": (H,), "V": (K, H), "c": (K,)}
        if mode in ("init", "both"):
            shapes.update(P=(H, D), p=(H,))
        if mode in ("input", "both"):
            shapes.update(R=(D, H))
        fan = {"U": H, "W": H, "b": H, "V": H, "c": H, "P": D, "p": D, "R": D}
        values = {k: [] for k in shapes}
        for s in seeds:
            g = torch.Generator().manual_seed(s)
            for k, shp in shapes.items():
                if k == "E":
                    values[k].append(torch.randn(shp, generator=g, dtype=torch.float64))
                else:
                    bound = 1.0 / math.sqrt(fan[k])
                    values[k].append((torch.rand(shp, generator=g, dtype=torch.float64) * 2 - 1)
                                     * bound)
        for k, vs in values.items():
            setattr(self, k, nn.Parameter(torch.stack(vs).to(dtype)))

    def to_dict(self, member: int = 0) -> dict:
        """One member's settings and weights as plain lists (JSON-ready)."""
        member = check_positive_int("member", member, minimum=0)
        if member >= self.members:
            raise ValueError(f"member must be below M={self.members}; got {member}.")
        return {"mode": self.mode, "input_size": self.D, "vocab_size": self.K,
                "hidden_size": self.H, "embed_size": self.De, "seed": self.seeds[member],
                "weights": {k: v[member].detach().double().tolist()
                            for k, v in self.named_parameters()}}

    @classmethod
    def from_dict(cls, d: dict, *, dtype=torch.float64) -> ConditionedGenerator:
        """A one-member model from :meth:`to_dict`'s output (e.g. stored results)."""
        keys = ("mode", "input_size", "vocab_size", "hidden_size", "embed_size", "weights")
        if not isinstance(d, dict) or any(k not in d for k in keys):
            raise ValueError(f"d must be a dict with keys {keys} (ConditionedGenerator.to_dict); "
                             f"got {sorted(d) if isinstance(d, dict) else type(d).__name__}.")
        model = cls(d["mode"], d["input_size"], d["vocab_size"], d["hidden_size"],
                    d["embed_size"], seeds=[d.get("seed", 0)], dtype=dtype)
        names = [k for k, _ in model.named_parameters()]
        if not isinstance(d["weights"], dict) or sorted(d["weights"]) != sorted(names):
            got = sorted(d["weights"]) if isinstance(d["weights"], dict) else \
                type(d["weights"]).__name__
            raise ValueError(f"d['weights'] must hold exactly the parameters {sorted(names)} of "
                             f"a mode={d['mode']!r} model; got {got}. Was it saved from a model "
                             f"of another mode?")
        with torch.no_grad():
            for k, p in model.named_parameters():
                try:
                    w = torch.as_tensor(d["weights"][k], dtype=dtype)
                except (TypeError, ValueError) as err:
                    raise TypeError(f"weights[{k!r}] must be a nested list of numbers; "
                                    f"could not read it ({err}).") from err
                if not bool(torch.isfinite(w).all()):
                    raise ValueError(f"weights[{k!r}] must be finite; it holds NaN or inf.")
                if w.shape != p.shape[1:]:
                    raise ValueError(f"weights[{k!r}] must have shape {tuple(p.shape[1:])}; "
                                     f"got {tuple(w.shape)}.")
                p[0] = w
        return model

    @property
    def members(self) -> int:
        return len(self.seeds)

    def parameter_count(self) -> int:
        """Parameters of ONE member."""
        return sum(p[0].numel() for p in self.parameters())

    # ------------------------------------------------------------ input checks
    def _members_first(self, name, t, spec_tail, what):
        M = self.members
        if t.dim() == len(spec_tail):
            t = t.unsqueeze(0).expand(M, *t.shape)
        if t.dim() != len(spec_tail) + 1 or t.shape[0] != M:
            raise ValueError(
                f"{name} must be {what} shared by all members, or one per member "
                f"(M={M}, {what[1:]}; got shape {tuple(t.shape)}.")
        return t

    def _check_x(self, x):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"x must be a float torch tensor (N, D={self.D}); got "
                            f"{type(x).__name__} {getattr(x, 'dtype', '')}. Convert with "
                            f"torch.as_tensor(x, dtype={self.W.dtype}).")
        if x.dtype != self.W.dtype:
            raise TypeError(f"x must have the model's dtype {self.W.dtype}; got {x.dtype}. "
                            f"Use x.to({self.W.dtype}).")
        if x.dim() in (2, 3) and x.shape[-1] != self.D:
            raise ValueError(f"x must be (N, D={self.D}) or (M, N, D={self.D}); got "
                             f"{tuple(x.shape)}. Is it a batch of scene vectors?")
        x = self._members_first("x", x, ("N", "D"), f"(N, D={self.D})")
        check_nonempty("x", x, ("M", "N", "D"), hint="An empty batch has nothing to compute.")
        check_tensor("x", x, ("M", "N", "D"), dtype=self.W.dtype, finite=True)
        return x

    def _check_id(self, name, value):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be a token id, an int in [0, K={self.K}); got "
                            f"{type(value).__name__} {value!r}.")
        if not 0 <= value < self.K:
            raise ValueError(f"{name} must be a token id in [0, K={self.K}); got {value}. "
                             f"Ids of another vocabulary?")
        return int(value)

    # ------------------------------------------------------------ the recurrence
    def initial_state(self, x):
        """``(h0, bias)`` for conditioning vectors ``x`` (N, D) or (M, N, D): each (M, N, H)."""
        return self._initial_state(self._check_x(x))

    def _initial_state(self, x):
        M, N, _ = x.shape
        if self.mode in ("init", "both"):
            h0 = torch.tanh(torch.einsum("mnd,mhd->mnh", x, self.P) + self.p[:, None])
        else:
            h0 = x.new_zeros(M, N, self.H)
        bias = self.b[:, None].expand(M, N, self.H)
        if self.mode in ("input", "both"):
            bias = bias + torch.einsum("mnd,mdh->mnh", x, self.R)  # x^T R
        return h0, bias

    def step(self, tokens, h, bias):
        """One step for all members: tokens (M, N) -> (log_probs (M, N, K), h (M, N, H)).

        ``h`` and ``bias`` are (M, N, H), as :meth:`initial_state` returns them."""
        dims = {"M": self.members, "H": self.H}
        check_tensor("h", h, ("M", "N", "H"), dims, dtype=self.W.dtype)
        check_nonempty("h", h, ("M", "N", "H"))
        check_tensor("bias", bias, ("M", "N", "H"), dims, dtype=self.W.dtype,
                     hint="Use the bias that initial_state(x) returns.")
        _check_long("tokens", tokens, "(M, N)")
        check_token_tensor("tokens", tokens, ("M", "N"), dims, vocab_size=self.K)
        return self._step(tokens, h, bias)

    def _step(self, tokens, h, bias):
        e = self.E[torch.arange(self.members)[:, None], tokens]  # (M, N, De)
        a = bias + torch.einsum("mnh,mgh->mng", h, self.W) + torch.einsum("mne,mhe->mnh", e, self.U)
        h = torch.tanh(a)
        o = torch.einsum("mnh,mkh->mnk", h, self.V) + self.c[:, None]
        return torch.log_softmax(o, dim=-1), h

    def forward(self, x, inputs, *, teacher_prob: float = 1.0, generator=None):
        """Log-probabilities (M, N, T, K) of the next token at every step.

        ``inputs`` (N, T) or (M, N, T): the *shifted* targets, ``<bos>`` first
        (``companion.data.captions.shift_right``). With ``teacher_prob = 1`` this is
        teacher forcing. With ``teacher_prob < 1`` (scheduled sampling), at every step
        after the first each input token is, with probability ``1 - teacher_prob``,
        replaced by a token *sampled* from the model's own previous prediction (no
        gradient flows through the sample).
        """
        _check_long("inputs", inputs, "(N, T)", "Token ids, shifted right with <bos> first.")
        teacher_prob = check_real("teacher_prob", teacher_prob, low=0.0, high=1.0)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator; got {type(generator).__name__}"
                            f" {generator!r}. Use torch.Generator().manual_seed(seed).")
        x = self._check_x(x)
        if inputs.dim() == 2 and inputs.shape[0] != x.shape[1] and inputs.shape[1] == x.shape[1]:
            raise ValueError(f"inputs must be (N={x.shape[1]}, T), batch-first; got "
                             f"{tuple(inputs.shape)}. Time-first input? Use "
                             f"inputs.transpose(0, 1).")
        inputs = self._members_first("inputs", inputs, ("N", "T"), "(N, T)")
        if inputs.shape[1] != x.shape[1]:
            raise ValueError(f"inputs and x must hold the same number of sequences N; got "
                             f"inputs {tuple(inputs.shape)} and x {tuple(x.shape)}.")
        if inputs.shape[2] == 0:
            raise ValueError("inputs must have at least one time step (T >= 1).")
        if int(inputs.min()) < 0 or int(inputs.max()) >= self.K:
            raise ValueError(f"inputs must hold token ids in [0, K={self.K}); got values from "
                             f"{int(inputs.min())} to {int(inputs.max())}.")
        h, bias = self._initial_state(x)
        outs = []
        tok = inputs[:, :, 0]
        for t in range(inputs.shape[2]):
            if t > 0:
                tok = inputs[:, :, t]
                if teacher_prob < 1.0:
                    prev = outs[-1].detach().exp().reshape(-1, self.K)
                    own = torch.multinomial(prev, 1, generator=generator).reshape(tok.shape)
                    use_gold = torch.rand(tok.shape, generator=generator) < teacher_prob
                    tok = torch.where(use_gold, tok, own)
            logp, h = self._step(tok, h, bias)
            outs.append(logp)
        return torch.stack(outs, dim=2)

    @torch.no_grad()
    def free_run(self, x, *, bos: int, eos: int, pad: int = 0, max_len: int = 20):
        """Greedy free-running outputs of every member: tokens (M, N, max_len), padded
        after ``eos``; the same result as ``companion.nn.decoding.greedy`` on
        :meth:`step_fn` for each member, computed for all members at once."""
        max_len = check_positive_int("max_len", max_len)
        bos, eos, pad = (self._check_id(k, v) for k, v in (("bos", bos), ("eos", eos),
                                                           ("pad", pad)))
        h, bias = self.initial_state(x)
        M, N, _ = h.shape
        tok = torch.full((M, N), bos, dtype=torch.long)
        out = torch.full((M, N, max_len), pad, dtype=torch.long)
        done = torch.zeros(M, N, dtype=torch.bool)
        for t in range(max_len):
            logp, h = self._step(tok, h, bias)
            nxt = logp.argmax(-1)
            out[:, :, t] = torch.where(done, torch.full_like(nxt, pad), nxt)
            done = done | (nxt == eos)
            tok = nxt
            if bool(done.all()):
                break
        return out

    def step_fn(self, x, member: int = 0):
        """``(step_fn, state)`` for one member, in the form ``companion.nn.decoding`` takes.

        ``x`` (N, D). The state is a dict of (N, H) tensors, batch first.
        """
        member = check_positive_int("member", member, minimum=0)
        if member >= self.members:
            raise ValueError(f"member must be below M={self.members}; got {member}.")
        if isinstance(x, torch.Tensor) and x.dim() != 2:
            raise ValueError(f"x must be (N, D={self.D}) for one member's step_fn; got "
                             f"{tuple(x.shape)}. Select the member's rows first (x[member]).")
        h0, bias = self.initial_state(x)
        m = member

        def fn(tokens, state):
            e = self.E[m][tokens]
            h = torch.tanh(state["bias"] + state["h"] @ self.W[m].T + e @ self.U[m].T)
            o = h @ self.V[m].T + self.c[m]
            return torch.log_softmax(o, dim=-1), {"h": h, "bias": state["bias"]}

        return fn, {"h": h0[m].detach(), "bias": bias[m].detach()}


def masked_nll(log_probs, targets, mask):
    """Mean negative log-likelihood per member over the real tokens: (M,).

    ``log_probs`` (M, N, T, K); ``targets`` (N, T) or (M, N, T) long; ``mask`` the same
    shape, True on real tokens (``<eos>`` included, padding excluded).
    """
    if not isinstance(log_probs, torch.Tensor):
        raise TypeError(f"log_probs must be a float torch tensor (M, N, T, K), the model's "
                        f"output; got {type(log_probs).__name__}.")
    if log_probs.dim() != 4:
        raise ValueError(f"log_probs must be (M, N, T, K); got "
                         f"{tuple(getattr(log_probs, 'shape', ()))}.")
    if not log_probs.is_floating_point():
        raise TypeError(f"log_probs must hold floats (log-probabilities); got dtype "
                        f"{log_probs.dtype}.")
    M, N, T, K = log_probs.shape
    check_nonempty("log_probs", log_probs, ("M", "N", "T", "K"))
    if bool(torch.isnan(log_probs.detach()).any()):
        raise ValueError("log_probs must not hold NaN; the model's output has NaN. Check its "
                         "input (x) and its weights (a learning rate too large?).")
    _check_long("targets", targets, "(N, T)")
    if targets.dim() not in (2, 3) or targets.shape[-2:] != (N, T) or (
            targets.dim() == 3 and targets.shape[0] != M):
        raise ValueError(f"targets must be (N={N}, T={T}) or (M={M}, N={N}, T={T}) to match "
                         f"log_probs; got {tuple(targets.shape)}. Did you pass the shifted "
                         f"inputs instead?")
    lo, hi = int(targets.min()), int(targets.max())
    if lo < 0 or hi >= K:
        raise ValueError(f"targets must hold token ids in [0, K={K}) (the last axis of "
                         f"log_probs); got ids from {lo} to {hi}. Ids of another vocabulary, "
                         f"or a padding value such as -1? Padding must be a valid id, masked out.")
    if not isinstance(mask, torch.Tensor) or mask.shape != targets.shape:
        raise ValueError(f"mask must be a bool tensor shaped like targets "
                         f"{tuple(targets.shape)}; got {tuple(getattr(mask, 'shape', ()))}.")
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a torch.bool tensor (True on real tokens); got dtype "
                        f"{mask.dtype}. Use mask.bool(), or targets != PAD.")
    tg = targets.expand(M, N, T)
    mk = mask.expand(M, N, T).to(log_probs.dtype)
    count = mk.sum(dim=(1, 2))
    if not bool((count > 0).all()):
        m = int(torch.nonzero(count == 0)[0, 0])
        raise ValueError(f"mask must be True on at least one token of every member's batch; "
                         f"member {m} has none, so its mean would be 0/0. Is the mask inverted "
                         f"(True on padding)? Use mask = targets != PAD.")
    nll = -log_probs.gather(3, tg[..., None])[..., 0]
    # where, not a product: an -inf log-probability on a padded position would give
    # inf * 0 = NaN; on real tokens the values are the same as nll * mask
    nll = torch.where(mask.expand(M, N, T), nll, torch.zeros_like(nll))
    return nll.sum(dim=(1, 2)) / count


def scheduled_teacher_prob(schedule: str, step: int, steps: int, *, k: float | None = None,
                           minimum: float = 0.0) -> float:
    """The probability of feeding the true previous token at training step ``step``.

    Bengio et al. (2015) decay it from 1 during training:

    ``"constant"``
        1 (pure teacher forcing).
    ``"linear"``
        ``max(minimum, 1 - step / steps)`` (k unused).
    ``"exponential"``
        ``max(minimum, k ** step)``, default k chosen so that it reaches 0.05 at the
        last step.
    ``"inverse_sigmoid"``
        ``k / (k + exp(step / k))``, default k chosen so that it crosses 0.5 at
        mid-training.
    """
    if not isinstance(schedule, str) or schedule not in ("constant", "linear", "exponential",
                                                          "inverse_sigmoid"):
        raise ValueError(f"schedule must be 'constant', 'linear', 'exponential' or "
                         f"'inverse_sigmoid'; got {schedule!r}.")
    step = check_positive_int("step", step, minimum=0)
    steps = check_positive_int("steps", steps)
    if step > steps:
        raise ValueError(f"step must lie in [0, steps={steps}] (the schedule is defined over "
                         f"training); got step={step}. Are step and steps swapped?")
    minimum = check_real("minimum", minimum, low=0.0, high=1.0)
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return max(minimum, 1.0 - step / steps)
    if schedule == "exponential":
        kk = 0.05 ** (1.0 / steps) if k is None else check_real("k", k, low=0.0, high=1.0,
                                                                low_open=True)
        return max(minimum, kk ** step)
    # inverse sigmoid: k / (k + exp(i / k)) = 0.5 when exp(i/k) = k, i = k ln k
    if k is None:
        lo, hi = 1.0 + 1e-9, float(steps)
        for _ in range(100):  # solve k ln k = steps / 2
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if mid * math.log(mid) < steps / 2 else (lo, mid)
        kk = lo
    else:
        kk = check_real("k", k, low=1.0)
    return max(minimum, kk / (kk + math.exp(min(step / kk, 700.0))))


def fit(model: ConditionedGenerator, split, *, lr, steps: int, batch: int = 32,
        clip: float = 5.0, schedule: str = "constant", floor: float = 0.0, data_seeds=None,
        sampling_seed: int = 7) -> np.ndarray:
    """Train every member of ``model`` on ``split`` (a ``companion.data.captions.CaptionSplit``).

    Adam with one learning rate per member (``lr``: a number or one per member), gradient
    clipping by each member's own norm, ``steps`` steps of ``batch`` random captions.
    Member ``m`` draws its batches from ``np.random.default_rng(1000 + data_seeds[m])``
    (default: its initialisation seed), so members sharing a seed see the same data.
    ``schedule`` sets the teacher-forcing probability per step
    (:func:`scheduled_teacher_prob` with ``minimum=floor``; ``"constant"`` is pure
    teacher forcing).
    Returns the training losses, an array (steps, M).
    """
    from companion.nn.ensemble import BatchedAdam, clip_per_member

    if not isinstance(model, ConditionedGenerator):
        raise TypeError(f"model must be a ConditionedGenerator; got {type(model).__name__}.")
    for field in ("x", "inputs", "targets", "mask"):
        if not hasattr(split, field):
            raise TypeError(f"split must be a CaptionSplit (make_captions(...)['train']); it has "
                            f"no attribute {field!r}.")
    steps = check_positive_int("steps", steps)
    batch = check_positive_int("batch", batch)
    check_real("clip", clip, low=0.0, low_open=True)
    scheduled_teacher_prob(schedule, 0, steps, minimum=floor)  # validates name and floor
    sampling_seed = check_positive_int("sampling_seed", sampling_seed, minimum=0)
    M = model.members
    if data_seeds is not None and (isinstance(data_seeds, (str, bytes))
                                   or not hasattr(data_seeds, "__len__")):
        raise TypeError(f"data_seeds must be a list of ints, one per member (M={M}); got "
                        f"{type(data_seeds).__name__} {data_seeds!r}.")
    data_seeds = list(model.seeds if data_seeds is None else data_seeds)
    if len(data_seeds) != M:
        raise ValueError(f"data_seeds must hold one seed per member (M={M}); "
                         f"got {len(data_seeds)}.")
    data_seeds = [check_positive_int(f"data_seeds[{i}]", s, minimum=0)
                  for i, s in enumerate(data_seeds)]
    dtype = model.W.dtype
    params = list(model.parameters())
    opt = BatchedAdam(params, lr)
    X = torch.as_tensor(np.asarray(split.x), dtype=dtype)
    if X.dim() != 2 or X.shape[1] != model.D or X.shape[0] == 0:
        raise ValueError(f"split.x must be (n >= 1, D={model.D}), one scene vector per caption; "
                         f"got {tuple(X.shape)}. Is the model's input_size right?")
    check_tensor("split.x", X, ("n", "D"), dtype=dtype, finite=True)
    inputs, targets = torch.as_tensor(split.inputs), torch.as_tensor(split.targets)
    mask = torch.as_tensor(split.mask)
    for name, t in (("split.inputs", inputs), ("split.targets", targets), ("split.mask", mask)):
        if tuple(t.shape[:1]) != (len(X),) or t.dim() != 2:
            raise ValueError(f"{name} must be (n={len(X)}, T), one row per caption; got "
                             f"{tuple(t.shape)}.")
    check_token_tensor("split.inputs", inputs, ("n", "T"), vocab_size=model.K)
    check_token_tensor("split.targets", targets, ("n", "T"), vocab_size=model.K)
    if mask.dtype != torch.bool or mask.shape != targets.shape:
        raise ValueError(f"split.mask must be a bool array shaped like split.targets "
                         f"{tuple(targets.shape)}; got {mask.dtype} {tuple(mask.shape)}.")
    if not bool(mask.any(dim=1).all()):
        raise ValueError("split.mask must be True on at least one token of every caption; "
                         "some rows are all False (all padding).")
    uniq = sorted(set(data_seeds))
    streams = {s: np.random.default_rng(1000 + s) for s in uniq}
    gen = torch.Generator().manual_seed(sampling_seed)
    losses = np.zeros((steps, M))
    for step in range(steps):
        rows = {s: streams[s].integers(len(X), size=batch) for s in uniq}
        idx = torch.as_tensor(np.stack([rows[s] for s in data_seeds]))  # (M, batch)
        tp = scheduled_teacher_prob(schedule, step, steps, minimum=floor)
        opt.zero_grad()
        logp = model(X[idx], inputs[idx], teacher_prob=tp, generator=gen)
        loss = masked_nll(logp, targets[idx], mask[idx])
        loss.sum().backward()
        clip_per_member(params, clip)
        opt.step()
        losses[step] = loss.detach().double().numpy()
    return losses


# -------------------------------------------------------------------------------------
# Reading the stored sweeps of ``experiments/vec2seq_sweep.py``
#
# A stored *arm* is one method (mode, schedule, floor) trained at every learning rate of
# its grid ``arm["lrs"]`` with every seed; ``arm["runs"]`` holds one dict per (seed, lr)
# with its validation and test scores, and ``arm["chosen_lr"]`` the rate chosen on
# validation. The helpers below read them for chapter 7.

def _check_arm(arm):
    if not isinstance(arm, dict) or not {"runs", "lrs", "chosen_lr"} <= set(arm):
        raise TypeError("arm must be one stored arm, a dict with 'runs', 'lrs' and "
                        f"'chosen_lr' (find_arm(results, ...)); got {type(arm).__name__}"
                        + (f" with keys {sorted(arm)}" if isinstance(arm, dict) else "") + ".")
    return arm


def find_arm(results, mode: str = "input", schedule: str = "constant",
             floor: float = 0.0) -> dict:
    """The stored arm of ``results`` (a dict with an ``"arms"`` list) for one method.

    >>> res = {"arms": [{"mode": "init", "schedule": "constant", "floor": 0.0}]}
    >>> find_arm(res, "init")["mode"]
    'init'
    """
    if not isinstance(results, dict) or not isinstance(results.get("arms"), list):
        raise TypeError("results must be a stored sweep (or one part of the controls file), "
                        "a dict with an 'arms' list, e.g. load_results('vec2seq_sweep'); "
                        f"got {type(results).__name__}.")
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}.")
    floor = check_probability("floor", floor)
    for i, arm in enumerate(results["arms"]):
        if not isinstance(arm, dict) or not {"mode", "schedule", "floor"} <= set(arm):
            raise ValueError(f"results['arms'][{i}] must be a dict with 'mode', 'schedule' and "
                             f"'floor'; got {sorted(arm) if isinstance(arm, dict) else arm!r}.")
    for arm in results["arms"]:
        if (arm["mode"], arm["schedule"], float(arm["floor"])) == (mode, schedule,
                                                                     float(floor)):
            return arm
    have = sorted({(a["mode"], a["schedule"], a["floor"]) for a in results["arms"]})
    raise ValueError(f"no arm with mode={mode!r}, schedule={schedule!r}, floor={floor!r}; "
                     f"the stored arms are (mode, schedule, floor) = {have}.")


def _check_split_key(arm, split, key):
    if not isinstance(split, str) or split not in ("val", "test"):
        raise ValueError(f"split must be 'val' or 'test'; got {split!r}.")
    runs = arm["runs"]
    if not runs:
        raise ValueError("arm has no runs: nothing to summarise.")
    have = runs[0].get(split, {}) if isinstance(runs[0], dict) else {}
    if not isinstance(key, str) or key not in have:
        raise ValueError(f"key must be one of the stored scores {sorted(have)}; got {key!r}.")


def chosen_runs(arm) -> list:
    """The runs (one per seed) of an arm at its chosen learning rate."""
    arm = _check_arm(arm)
    return [r for r in arm["runs"] if r["lr"] == arm["chosen_lr"]]


def lr_medians(arm, split: str = "val", key: str = "accuracy") -> list:
    """The median over seeds of ``key`` on ``split`` at each rate of the arm's grid, in
    the order of ``arm["lrs"]`` (the selection is made on the validation accuracies)."""
    arm = _check_arm(arm)
    _check_split_key(arm, split, key)
    return [float(np.median([r[split][key] for r in arm["runs"] if r["lr"] == lr]))
            for lr in arm["lrs"]]


def grid_position(arm, fail_below: float = 0.02) -> str:
    """Where the chosen rate sits in the arm's grid: ``"inside"`` (a worse rate on each
    side), ``"edge"``, or ``"all fail"`` when the median validation accuracy is below
    ``fail_below`` at every rate (a tie at zero: no rate is better than another)."""
    arm = _check_arm(arm)
    fail_below = check_real("fail_below", fail_below, low=0.0, high=1.0)
    grid = sorted(arm["lrs"])
    if max(lr_medians(arm)) < fail_below:
        return "all fail"
    return "inside" if grid[0] < arm["chosen_lr"] < grid[-1] else "edge"


def arm_summary(arm, key: str = "accuracy", split: str = "test") -> tuple:
    """``(median, min, max)`` over seeds of ``key`` on ``split`` at the chosen rate."""
    _check_split_key(_check_arm(arm), split, key)
    if not chosen_runs(arm):
        raise ValueError(f"arm has no run at its chosen_lr={arm['chosen_lr']!r}.")
    v = np.array([r[split][key] for r in chosen_runs(arm)], dtype=float)
    return float(np.median(v)), float(v.min()), float(v.max())


def position_rates(arm, kind: str) -> np.ndarray:
    """Error rate per output position at the chosen rate, pooled over the seeds' test
    captions: ``kind="tf"`` after the true prefix, ``kind="free"`` after the model's own."""
    if not isinstance(kind, str) or kind not in ("tf", "free"):
        raise ValueError(f"kind must be 'tf' (teacher-forced) or 'free' (free-running); "
                         f"got {kind!r}.")
    runs = chosen_runs(arm)
    if not runs:
        raise ValueError(f"arm has no run at its chosen_lr={arm['chosen_lr']!r}.")
    err = np.sum([r["test"][f"{kind}_errors"] for r in runs], axis=0)
    cnt = np.sum([r["test"][f"{kind}_counts"] for r in runs], axis=0)
    return err / np.maximum(cnt, 1)


def conflict_fractions(arm) -> dict:
    """Pooled over the seeds at the chosen rate: the fractions of fed positions where the
    target contradicts the model's own sampled prefix, by cause (``"other_sentence"``,
    ``"off_track"``) and in total (see ``companion.data.captions.prefix_conflicts``)."""
    runs = chosen_runs(arm)
    if not all("conflicts" in r["test"] for r in runs):
        raise ValueError("this arm stores no prefix conflicts; they are measured in the "
                         "one-sentence part of load_results('vec2seq_controls').")
    tot = {k: sum(r["test"]["conflicts"][k] for r in runs)
           for k in ("positions", "other_sentence", "off_track")}
    n = max(tot["positions"], 1)
    return {"positions": tot["positions"], "other_sentence": tot["other_sentence"] / n,
            "off_track": tot["off_track"] / n,
            "total": (tot["other_sentence"] + tot["off_track"]) / n}


def paired_errors(tf_any, free_wrong, clusters, *, n_boot: int = 2000, seed: int = 0,
                  level: float = 0.95) -> dict:
    """Paired comparison of two per-caption error indicators over seeds and captions.

    ``tf_any`` and ``free_wrong`` are 0/1 arrays (S, N): for each of S seeds (trained
    models) and N captions, whether the model made a teacher-forced error somewhere along
    the true prefix, and whether its free-running caption is wrong. ``clusters`` (N,)
    groups captions that are not independent (captions of the same scene).

    Returns the means of both indicators, their paired difference
    ``free_wrong - tf_any`` (overall and per seed), the two discordant fractions (wrong
    only when free-running, ``"free_only"``; a teacher-forced error only, ``"tf_only"``),
    and a ``level`` percentile interval of the difference from a bootstrap that resamples
    whole clusters and whole seeds (``n_boot`` draws from ``default_rng(seed)``), so that
    neither the captions of one scene nor those of one model count as independent.

    >>> a = np.array([[1, 0, 0, 1], [0, 0, 1, 1]])
    >>> b = np.array([[1, 1, 0, 1], [0, 1, 1, 1]])
    >>> r = paired_errors(a, b, [0, 0, 1, 1], n_boot=200)
    >>> r["difference"], r["free_only"], r["tf_only"], r["per_seed"]
    (0.25, 0.25, 0.0, [0.25, 0.25])
    """
    a = np.asarray(tf_any)
    b = np.asarray(free_wrong)
    for name, v in (("tf_any", a), ("free_wrong", b)):
        if v.ndim == 2 and 0 in v.shape:
            raise ValueError(f"{name} must hold at least one seed and one caption; got shape "
                             f"{v.shape}.")
        if v.ndim != 2 or not np.isin(v, (0, 1)).all():
            raise ValueError(f"{name} must be a 0/1 array of shape (seeds, captions); got "
                             f"shape {v.shape}" + ("" if v.ndim != 2 else
                                                    " with values other than 0 and 1") +
                             ". Stack the seeds' per-caption lists with np.array(...).")
    if a.shape != b.shape:
        raise ValueError(f"tf_any and free_wrong must have the same shape; got {a.shape} "
                         f"and {b.shape}.")
    cl = np.asarray(clusters).reshape(-1)
    if len(cl) != a.shape[1]:
        raise ValueError(f"clusters must hold one id per caption ({a.shape[1]}); got "
                         f"{len(cl)}. Use e.g. one id per scene.")
    n_boot = check_positive_int("n_boot", n_boot)
    seed = check_positive_int("seed", seed, minimum=0)
    level = check_real("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    a, b = a.astype(float), b.astype(float)
    d = b - a                                                    # (S, N)
    ids, inv = np.unique(cl, return_inverse=True)
    # per (seed, cluster) sums, so that a resample is a weighted sum
    sums = np.stack([np.bincount(inv, weights=row, minlength=len(ids)) for row in d])
    sizes = np.bincount(inv, minlength=len(ids)).astype(float)
    rng = np.random.default_rng(seed)
    S, C = sums.shape
    boot = np.empty(n_boot)
    for i in range(n_boot):
        s_idx = rng.integers(S, size=S)
        c_w = np.bincount(rng.integers(C, size=C), minlength=C).astype(float)
        boot[i] = (sums[s_idx] @ c_w).sum() / (S * (sizes @ c_w))
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return {"tf_any": float(a.mean()), "free_wrong": float(b.mean()),
            "difference": float(d.mean()),
            "free_only": float(((b == 1) & (a == 0)).mean()),
            "tf_only": float(((a == 1) & (b == 0)).mean()),
            "per_seed": [float(v) for v in d.mean(1)],
            "interval": (float(lo), float(hi)), "level": level,
            "seeds": S, "captions": a.shape[1], "clusters": C}
