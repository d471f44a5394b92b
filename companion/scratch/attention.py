"""One attention step in NumPy, forward and backward by hand (chapter 9).

For a batch of ``N`` decoder queries ``q`` (N, Hq) (the chapter's ``h'^(t-1)``), the
encoder states ``keys`` (N, S, Hk) (the ``h^(j)``) and a boolean ``mask`` (N, S)
(True = a real source token):

    scores    e_j   = score(q, k_j)                     (N, S)
    weights   alpha = softmax over the True positions   (N, S), 0 on padding
    context   C     = sum_j alpha_j k_j                 (N, Hk)

Scores and their parameters (matrices stored (out, in), as everywhere in the course):

``"additive"``    ``v . tanh(W q + U k_j)``   params ``W`` (A, Hq), ``U`` (A, Hk), ``v`` (A,)
``"dot"``         ``q . k_j``                  no params (Hq = Hk)
``"general"``     ``q . (G k_j)``              params ``G`` (Hq, Hk)
``"scaled_dot"``  ``q . k_j / sqrt(Hk)``       no params (Hq = Hk)

:func:`attention_step_backward` returns the gradients of a loss ``L`` with respect to
the query, the keys and the parameters, given ``dC`` = dL/dC. The equations are in the
chapter; ``tests/test_attention.py`` checks them against finite differences and against
torch autograd on :mod:`companion.nn.attention`.
"""

from __future__ import annotations

import numpy as np

from companion.checks import as_float_array, check_keys, check_shape

__all__ = ["alignment_accuracy", "attention_step", "attention_step_backward",
           "init_attention_params", "masked_softmax_np"]

_PARAMS = {"additive": ("W", "U", "v"), "dot": (), "general": ("G",), "scaled_dot": ()}


def masked_softmax_np(e, mask):
    """Softmax of ``e`` (N, S) over the True entries of ``mask`` (N, S); 0 elsewhere.

    Raises ``ValueError`` when a row has no True entry (never uniform weights).
    """
    e = as_float_array("e", e)
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != e.shape:
        raise ValueError(f"mask must be a bool array of the scores' shape {e.shape} (True = "
                         f"real token); got {mask.dtype} {mask.shape}.")
    empty = ~mask.any(axis=1)
    if empty.any():
        raise ValueError(f"mask rows {np.flatnonzero(empty).tolist()} have no True position: "
                         f"softmax over an empty source is undefined. Drop empty sequences "
                         f"or check that the mask is True on real tokens, not on padding.")
    z = np.where(mask, e, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)                       # exp(-inf) = 0 on padding
    return p / p.sum(axis=1, keepdims=True)


def init_attention_params(score, query_size, key_size, attn_size=None, *, rng):
    """Random parameters for ``score`` (a dict of arrays; empty for dot scores)."""
    if score not in _PARAMS:
        raise ValueError(f"score must be one of {tuple(_PARAMS)}; got {score!r}.")
    if score == "additive":
        A = attn_size or query_size
        return {"W": rng.normal(size=(A, query_size)) / np.sqrt(query_size),
                "U": rng.normal(size=(A, key_size)) / np.sqrt(key_size),
                "v": rng.normal(size=A) / np.sqrt(A)}
    if score == "general":
        return {"G": rng.normal(size=(query_size, key_size)) / np.sqrt(key_size)}
    return {}


def attention_step(q, keys, mask, params, score="additive"):
    """One attention step: returns ``(context (N, Hk), weights (N, S), cache)``."""
    if score not in _PARAMS:
        raise ValueError(f"score must be one of {tuple(_PARAMS)}; got {score!r}.")
    dims = {}
    q = as_float_array("q", q)
    keys = as_float_array("keys", keys)
    check_shape("q", q, ("N", "Hq"), dims)
    check_shape("keys", keys, ("N", "S", "Hk"), dims)
    mask = np.asarray(mask)
    params = check_keys("params", params, _PARAMS[score])
    p = {k: as_float_array(k, params[k]) for k in _PARAMS[score]}
    cache = {"score": score, "q": q, "keys": keys, "mask": mask, "p": p}
    if score in ("dot", "scaled_dot"):
        if dims["Hq"] != dims["Hk"]:
            raise ValueError(f"{score} scores need Hq == Hk; got {dims['Hq']} and "
                             f"{dims['Hk']}. Use 'general' or 'additive'.")
        e = np.einsum("nh,nsh->ns", q, keys)
        if score == "scaled_dot":
            e = e / np.sqrt(dims["Hk"])
    elif score == "general":
        check_shape("G", p["G"], ("Hq", "Hk"), dims)
        e = np.einsum("nh,hk,nsk->ns", q, p["G"], keys)
    else:
        check_shape("W", p["W"], ("A", "Hq"), dims)
        check_shape("U", p["U"], ("A", "Hk"), dims)
        check_shape("v", p["v"], ("A",), dims)
        z = np.tanh((q @ p["W"].T)[:, None, :] + keys @ p["U"].T)   # (N, S, A)
        cache["z"] = z
        e = z @ p["v"]
    alpha = masked_softmax_np(e, mask)
    context = np.einsum("ns,nsh->nh", alpha, keys)
    cache["alpha"] = alpha
    return context, alpha, cache


def attention_step_backward(dC, cache):
    """Gradients ``{"q", "keys", *params}`` given ``dC`` = dL/dcontext (N, Hk)."""
    q, keys, alpha, p = cache["q"], cache["keys"], cache["alpha"], cache["p"]
    dC = as_float_array("dC", dC)
    check_shape("dC", dC, (q.shape[0], keys.shape[2]))
    # context C = sum_j alpha_j k_j
    dkeys = alpha[:, :, None] * dC[:, None, :]              # through the weighted sum
    dalpha = np.einsum("nh,nsh->ns", dC, keys)
    # softmax: de_j = alpha_j (dalpha_j - sum_i alpha_i dalpha_i); 0 on padding (alpha = 0)
    de = alpha * (dalpha - (alpha * dalpha).sum(axis=1, keepdims=True))
    grads = {}
    score = cache["score"]
    if score in ("dot", "scaled_dot"):
        s = 1.0 if score == "dot" else 1.0 / np.sqrt(keys.shape[2])
        grads["q"] = s * np.einsum("ns,nsh->nh", de, keys)
        dkeys += s * de[:, :, None] * q[:, None, :]
    elif score == "general":
        G = p["G"]
        grads["q"] = np.einsum("ns,nsk,hk->nh", de, keys, G)
        dkeys += de[:, :, None] * (q @ G)[:, None, :]
        grads["G"] = np.einsum("ns,nh,nsk->hk", de, q, keys)
    else:
        z = cache["z"]
        grads["v"] = np.einsum("ns,nsa->a", de, z)
        du = de[:, :, None] * p["v"] * (1.0 - z ** 2)         # (N, S, A), through tanh
        grads["W"] = np.einsum("nsa,nh->ah", du, q)
        grads["q"] = du.sum(axis=1) @ p["W"]
        grads["U"] = np.einsum("nsa,nsk->ak", du, keys)
        dkeys += du @ p["U"]
    grads["keys"] = dkeys
    return grads


def alignment_accuracy(weights, gold) -> float:
    """How often attention points at a gold-aligned source token.

    ``weights`` (L, S): row ``j`` is output position ``j``'s weights over the source.
    ``gold``: pairs ``(i, j)``, source position ``i`` aligned to output position ``j``.
    Among the output positions that have at least one gold link, the fraction whose
    most-attended source position (the row's argmax) is one of their gold partners.
    Output positions with no gold link (a word with no source counterpart) do not count.
    Returns NaN when no output position has a gold link.
    """
    w = as_float_array("weights", weights)
    if w.ndim != 2:
        raise ValueError(f"weights must be (L, S), one row per output position; got {w.shape}.")
    partners: dict[int, set[int]] = {}
    for pair in gold:
        if len(pair) != 2:
            raise ValueError(f"gold must hold pairs (source i, output j); got {pair!r}.")
        i, j = int(pair[0]), int(pair[1])
        if not (0 <= i < w.shape[1] and 0 <= j < w.shape[0]):
            raise ValueError(f"gold pair {(i, j)} lies outside weights of shape {w.shape} "
                             f"(rows = output positions, columns = source positions).")
        partners.setdefault(j, set()).add(i)
    if not partners:
        return float("nan")
    hits = [int(w[j].argmax()) in srcs for j, srcs in partners.items()]
    return float(np.mean(hits))
