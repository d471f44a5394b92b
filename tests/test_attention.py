"""Attention (chapter 9): masked softmax, the four scores, NumPy against torch, references."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from companion.nn.attention import (SCORES, Attention, SingleHeadAttention, attend,
                                    make_score, masked_softmax)
from companion.scratch.attention import (attention_step, attention_step_backward,
                                         init_attention_params, masked_softmax_np)
from companion.scratch.gradcheck import numerical_gradient, relative_error

D64 = torch.float64


def _mask(lengths, S):
    return torch.arange(S)[None, :] < torch.as_tensor(lengths)[:, None]


# ---------------------------------------------------------------- masked softmax
def test_masked_softmax_zero_on_padding_and_normalised():
    torch.manual_seed(0)
    e = torch.randn(3, 5, dtype=D64)
    m = _mask([5, 2, 1], 5)
    w = masked_softmax(e, m)
    assert torch.all(w[~m] == 0)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, dtype=D64))
    # the same as a softmax over the real positions only
    torch.testing.assert_close(w[1, :2], torch.softmax(e[1, :2], -1))
    # 3-D scores with a (N, 1, S) mask
    e3 = torch.randn(3, 4, 5, dtype=D64)
    w3 = masked_softmax(e3, m[:, None, :])
    assert torch.all(w3.masked_select(~m[:, None, :].expand(3, 4, 5)) == 0)


def test_masked_softmax_empty_row_raises_never_uniform():
    e = torch.zeros(2, 4, dtype=D64)
    m = _mask([3, 0], 4)
    with pytest.raises(ValueError, match="no valid"):
        masked_softmax(e, m)
    # the silent failure this guards against: a large negative fill gives uniform weights
    bad = torch.softmax(e.masked_fill(~m, -1e9), -1)
    assert torch.allclose(bad[1], torch.full((4,), 0.25, dtype=D64))
    # the explicit rule: zero weights, finite gradients
    e.requires_grad_(True)
    w = masked_softmax(e, m, empty="zero")
    assert torch.all(w[1] == 0) and torch.allclose(w[0].sum(), torch.tensor(1.0, dtype=D64))
    (w * torch.arange(4.0, dtype=D64)).sum().backward()
    assert torch.isfinite(e.grad).all() and torch.all(e.grad[1] == 0)
    with pytest.raises(ValueError, match="no True position"):
        masked_softmax_np(np.zeros((2, 3)), np.array([[True, False, False]] * 1 + [[False] * 3]))
    ctx, _ = attend(torch.randn(2, 4, dtype=D64), torch.randn(2, 4, 3, dtype=D64), m,
                    empty="zero")
    assert torch.all(ctx[1] == 0)


def test_masked_softmax_bad_input():
    e = torch.randn(2, 3)
    with pytest.raises(TypeError, match="torch.bool"):
        masked_softmax(e, torch.ones(2, 3))
    with pytest.raises(TypeError, match="torch.Tensor"):
        masked_softmax(e, np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="broadcast"):
        masked_softmax(e, torch.ones(3, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="empty must be"):
        masked_softmax(e, None, empty="uniform")
    with pytest.raises(TypeError, match="float"):
        masked_softmax(torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="query_size == key_size"):
        make_score("dot", 4, 6)
    with pytest.raises(ValueError, match="score must be"):
        make_score("cosine", 4, 4)
    with pytest.raises(ValueError, match=r"\(N, S, Hk\)"):
        Attention("dot", 4, 4)(torch.randn(2, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="mask must be a bool"):
        masked_softmax_np(np.zeros((2, 3)), np.ones((2, 3)))


# ---------------------------------------------------------------- NumPy against torch
def _torch_attention(score, params, Hq, Hk):
    A = params["W"].shape[0] if score == "additive" else None
    att = Attention(score, Hq, Hk, A).double()
    with torch.no_grad():
        if score == "additive":
            att.scorer.W.weight.copy_(torch.from_numpy(params["W"]))
            att.scorer.U.weight.copy_(torch.from_numpy(params["U"]))
            att.scorer.v.copy_(torch.from_numpy(params["v"]))
        if score == "general":
            att.scorer.G.weight.copy_(torch.from_numpy(params["G"]))
    return att


@pytest.mark.parametrize("score", SCORES)
def test_numpy_step_matches_torch_outputs_and_gradients(score):
    rng = np.random.default_rng(1)
    N, S, Hq = 3, 6, 5
    Hk = 5 if score in ("dot", "scaled_dot") else 4      # dot scores need Hq == Hk
    q, keys = rng.normal(size=(N, Hq)), rng.normal(size=(N, S, Hk))
    mask = _mask([6, 3, 1], S).numpy()
    params = init_attention_params(score, Hq, Hk, 7, rng=rng)
    ctx, alpha, cache = attention_step(q, keys, mask, params, score)
    att = _torch_attention(score, params, Hq, Hk)
    qt = torch.tensor(q, requires_grad=True)
    kt = torch.tensor(keys, requires_grad=True)
    ct, at = att(qt, kt, torch.from_numpy(mask))
    np.testing.assert_allclose(ctx, ct.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(alpha, at.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert np.all(alpha[~mask] == 0)
    # backward: autograd
    dC = rng.normal(size=ctx.shape)
    grads = attention_step_backward(dC, cache)
    (ct * torch.from_numpy(dC)).sum().backward()
    np.testing.assert_allclose(grads["q"], qt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["keys"], kt.grad.numpy(), rtol=1e-10, atol=1e-12)
    tgrad = {"W": "scorer.W.weight", "U": "scorer.U.weight", "v": "scorer.v",
             "G": "scorer.G.weight"}
    named = dict(att.named_parameters())
    for k in params:
        np.testing.assert_allclose(grads[k], named[tgrad[k]].grad.numpy(), rtol=1e-10,
                                   atol=1e-12)
    # backward: finite differences, every input and parameter
    arrays = {"q": q, "keys": keys, **params}

    def loss():
        c, _, _ = attention_step(arrays["q"], arrays["keys"], mask,
                                 {k: arrays[k] for k in params}, score)
        return float((c * dC).sum())

    for k, arr in arrays.items():
        num = numerical_gradient(loss, arr)
        assert relative_error(grads[k], num) < 1e-7, k
    # the padded keys get no gradient
    assert np.all(grads["keys"][~mask] == 0)


def test_nan_is_caught():
    rng = np.random.default_rng(0)
    q, keys = rng.normal(size=(2, 3)), rng.normal(size=(2, 4, 3))
    keys[0, 0, 0] = np.nan
    with pytest.raises(ValueError):
        attention_step(q, keys, np.ones((2, 4), bool), {}, "dot")
    assert relative_error(np.array([np.nan]), np.array([1.0])) == np.inf


# ---------------------------------------------------------------- torch's own attention
def test_scaled_dot_matches_torch_sdpa_outputs_and_gradients():
    torch.manual_seed(0)
    N, L, S, E = 3, 4, 6, 5
    q = torch.randn(N, L, E, dtype=D64, requires_grad=True)
    k = torch.randn(N, S, E, dtype=D64, requires_grad=True)
    v = torch.randn(N, S, 7, dtype=D64, requires_grad=True)
    m = _mask([6, 4, 2], S)
    e = make_score("scaled_dot", E, E)(q, k)
    ours, w = attend(e, v, m)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=m[:, None, :])
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ours)
    gq, gk, gv = torch.autograd.grad((ours * g).sum(), (q, k, v))
    rq, rk, rv = torch.autograd.grad((ref * g).sum(), (q, k, v))
    for a, b in ((gq, rq), (gk, rk), (gv, rv)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_single_head_matches_multihead_attention_outputs_and_gradients():
    torch.manual_seed(0)
    N, L, S, E = 3, 4, 6, 8
    mha = torch.nn.MultiheadAttention(E, 1, batch_first=True, dtype=D64)
    with torch.no_grad():  # non-zero biases so that their gradients are compared too
        mha.in_proj_bias.normal_()
        mha.out_proj.bias.normal_()
    ours = SingleHeadAttention(E).double().copy_from_torch(mha)
    x = torch.randn(N, L, E, dtype=D64, requires_grad=True)
    mem = torch.randn(N, S, E, dtype=D64, requires_grad=True)
    m = _mask([6, 3, 1], S)
    out_ref, w_ref = mha(x, mem, mem, key_padding_mask=~m, need_weights=True)
    out, w = ours(x, mem, mem, m)
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(w, w_ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(out)
    ref_params = [mha.in_proj_weight, mha.in_proj_bias, mha.out_proj.weight, mha.out_proj.bias]
    our_params = list(ours.parameters())
    grads_ref = torch.autograd.grad((out_ref * g).sum(), [x, mem] + ref_params)
    grads = torch.autograd.grad((out * g).sum(), [x, mem] + our_params)
    torch.testing.assert_close(grads[0], grads_ref[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grads[1], grads_ref[1], rtol=1e-10, atol=1e-12)
    d = dict(zip([n for n, _ in ours.named_parameters()], grads[2:]))
    in_w = torch.cat([d["q_proj.weight"], d["k_proj.weight"], d["v_proj.weight"]])
    in_b = torch.cat([d["q_proj.bias"], d["k_proj.bias"], d["v_proj.bias"]])
    torch.testing.assert_close(in_w, grads_ref[2], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(in_b, grads_ref[3], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(d["out_proj.weight"], grads_ref[4], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(d["out_proj.bias"], grads_ref[5], rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="num_heads=1"):
        SingleHeadAttention(E).copy_from_torch(torch.nn.MultiheadAttention(E, 2))
    with pytest.raises(ValueError, match=r"\(N, T, E=8\)"):
        ours(x[0], mem, mem)


# ---------------------------------------------------------------- figures and widget
def test_figures_and_their_errors():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from companion.plots.attention import (attention_heatmap, attention_heatmaps_figure,
                                           attention_step_figure, cost_figure,
                                           length_accuracy_figure)

    w = np.full((2, 3), 1 / 3)
    for fig in (attention_heatmap(w, ["a", "b", "c"], ["x", "y"], gold=[(0, 1)]),
                attention_heatmaps_figure([{"weights": w, "src": "abc", "tgt": "xy"}]),
                attention_step_figure(w[0], src_tokens=["a", "b", "c"]),
                length_accuracy_figure([4, 6], {"m": ([1, 0.5], [1, 0.4], [1, 0.6])},
                                       train_range=(4, 4), baseline=[0, 0]),
                cost_figure([8, 16], [{"m": [1, 4]}], ylabels=["s"])):
        assert fig.axes
        plt.close(fig)
    with pytest.raises(ValueError, match="src_tokens must have 3"):
        attention_heatmap(w, ["a", "b"], ["x", "y"])
    with pytest.raises(ValueError, match=r"\(L, S\)"):
        attention_heatmap(w[0], ["a", "b", "c"], ["x"])
    with pytest.raises(TypeError, match="list of token strings"):
        attention_heatmap(w, "abc", ["x", "y"])
    with pytest.raises(ValueError, match="panels"):
        attention_heatmaps_figure([])
    with pytest.raises(ValueError, match="2 points"):
        length_accuracy_figure([4, 6, 8], {"m": ([1, 0.5], [1, 0.4], [1, 0.6])})


def test_widget_builds_and_reports_bad_input():
    pytest.importorskip("ipywidgets")
    from companion.widgets.attention import attention_explorer

    def fn(text):
        if not text:
            raise ValueError("empty input")
        return list(text), list(text), np.eye(len(text))

    box = attention_explorer(fn, default="ab", examples=["abc"])
    assert box.children
    with pytest.raises(TypeError, match="default"):
        attention_explorer(fn, default=3)
    with pytest.raises(TypeError):
        attention_explorer("not callable", default="a")
    with pytest.raises(TypeError, match="accepted must be a string"):
        attention_explorer(fn, default="a", accepted=["dates"])


def test_widget_asks_for_input_when_empty_and_shows_the_accepted_forms():
    pytest.importorskip("ipywidgets")
    from companion.widgets.attention import attention_explorer

    calls = []

    def fn(text):
        calls.append(text)
        return list(text), list(text), np.eye(len(text))

    box = attention_explorer(fn, default="", description="date", accepted="forms: 3 July")
    assert box.children[0].value == "forms: 3 July"          # the label above the box
    assert calls == []                                        # an empty box is not translated


# ---------------------------------------------------------------- memory kept for backward

def test_saved_for_backward_counts_a_tensor_saved_twice_once():
    from companion.nn.attention import saved_for_backward

    x = torch.ones(250, requires_grad=True)                     # 1000 bytes
    # x * x saves x twice (as both factors); the storage is held once
    assert saved_for_backward(lambda: (x * x).sum()) == 1000
    assert saved_for_backward(lambda: (x * x).sum(), count="reference") == 2000
    # two views of one storage: each reference counts its own part, the storage once
    y = torch.ones(2, 250, requires_grad=True)
    f = lambda: (y[0] * y[1]).sum()                             # noqa: E731
    assert saved_for_backward(f, count="reference") == 2000
    assert saved_for_backward(f) == 2000                        # the base, 2 x 250 x 4
    # two different tensors are two storages
    z = torch.ones(250, requires_grad=True)
    assert saved_for_backward(lambda: (x * z).sum()) == 2000


def test_saved_for_backward_attention_weights_grow_with_the_product_of_lengths():
    from companion.nn.attention import attend, make_score, saved_for_backward

    score = make_score("dot", 4, 4)

    def mem(L, S):
        q = torch.randn(2, L, 4, requires_grad=True)
        k = torch.randn(2, S, 4, requires_grad=True)
        return saved_for_backward(lambda: attend(score(q, k), k)[0].sum())

    # bilinear in (L, S): the mixed second difference is constant and positive
    d1 = mem(8, 8) - mem(8, 4) - mem(4, 8) + mem(4, 4)
    d2 = mem(16, 16) - mem(16, 8) - mem(8, 16) + mem(8, 8)
    assert d1 > 0 and d2 == 4 * d1


def test_saved_for_backward_rejects_bad_input():
    from companion.nn.attention import saved_for_backward

    with pytest.raises(TypeError, match="fn must be a callable"):
        saved_for_backward(torch.ones(3))
    with pytest.raises(ValueError, match="count must be one of"):
        saved_for_backward(lambda: None, count="bytes")
