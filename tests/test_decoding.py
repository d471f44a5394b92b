"""Decoding as search: the decoders agree where they must, beam never beats exact search."""

import json

import numpy as np
import pytest
import torch

from companion.nn import decoding as dec

K, H, BOS, EOS, PAD = 5, 8, 1, 2, 0


def toy(seed=0, N=6, sharp=2.0):
    g = torch.Generator().manual_seed(seed)
    E = torch.randn(K, H, generator=g, dtype=torch.float64)
    W = torch.randn(H, H, generator=g, dtype=torch.float64) * 0.5
    V = torch.randn(K, H, generator=g, dtype=torch.float64) * sharp
    h0 = torch.randn(N, H, generator=g, dtype=torch.float64)

    def step(tok, h):
        h = torch.tanh(h @ W.T + E[tok])
        return torch.log_softmax(h @ V.T, dim=1), h
    return step, h0


KW = dict(bos=BOS, eos=EOS, pad=PAD)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_width_one_follows_greedy_and_never_scores_below_it(seed):
    """Width 1: the active hypothesis is greedy's path; the pool may hold an earlier ending."""
    step, h0 = toy(seed)
    g = dec.greedy(step, h0, len(h0), max_len=7, **KW)
    for alpha in (0.0, 0.7):
        b = dec.beam_search(step, h0, len(h0), max_len=7, beam_width=1, alpha=alpha, **KW)
        g_score = g.log_prob / dec.length_penalty(g.lengths, alpha)
        assert torch.all(b.score >= g_score - 1e-12)
        for n in range(len(h0)):
            L = int(b.lengths[n])
            if torch.equal(b.tokens[n], g.tokens[n]):
                continue
            # otherwise the result ends greedy's path early: greedy's prefix, then <eos>
            assert bool(b.finished[n]) and int(b.tokens[n, L - 1]) == EOS
            assert torch.equal(b.tokens[n, :L - 1], g.tokens[n, :L - 1])
            assert float(b.score[n]) > float(g_score[n])


def tree_model():
    """A tiny model given as a tree of prefixes: after <bos>, "a" (0.3) or "b" (0.65);
    "a" then ends at once (0.9); "b" goes on to "d" or "e" (0.5 each), and from there every
    continuation is unlikely, so the best hypothesis is [a, <eos>], log 0.27 = -1.309,
    found at step 2 when it is NOT among the two most probable prefixes of that length."""
    A, B_, D, E, F = 3, 4, 5, 6, 7
    V = 8
    table = {(): {A: 0.3, B_: 0.65, F: 0.05}, (A,): {EOS: 0.9, F: 0.1}, (B_,): {D: 0.5, E: 0.5}}
    prefixes = {(): 0}

    def dist(prefix):
        if prefix in table:
            d = table[prefix]
        else:  # deep in the tree: end with 0.2, go on with "f" 0.8 (each step costs)
            d = {EOS: 0.2, F: 0.8}
        p = torch.full((V,), 1e-12, dtype=torch.float64)
        for k, v in d.items():
            p[k] = v
        return torch.log(p / p.sum())

    def step(tok, st):
        out, new = [], []
        for t, s in zip(tok.tolist(), st[:, 0].tolist()):
            prefix = next(k for k, v in prefixes.items() if v == s)
            if t != BOS:
                prefix = prefix + (t,)
            prefixes.setdefault(prefix, len(prefixes))
            out.append(dist(prefix))
            new.append(prefixes[prefix])
        return torch.stack(out), torch.tensor(new)[:, None]
    return step, torch.zeros(1, 1, dtype=torch.long)


def test_beam_search_keeps_a_finished_hypothesis_it_has_found():
    """The regression the finished pool exists for: a width-2 beam used to push [a, <eos>]
    out at step 2 (two prefixes of "b" outscored it) and return a worse hypothesis."""
    step, st = tree_model()
    ex = dec.exact_search(step, st, 1, max_len=5, **KW)
    assert abs(float(ex.log_prob[0]) - np.log(0.3 * 0.9)) < 1e-9
    for width in (2, 3):  # width 1 never extends "a": it follows greedy's "b"
        step, st = tree_model()
        b = dec.beam_search(step, st, 1, max_len=5, beam_width=width, **KW)
        assert bool(b.finished[0])
        assert b.tokens[0, :2].tolist() == [3, EOS]
        assert abs(float(b.log_prob[0]) - np.log(0.27)) < 1e-9
        step, st = tree_model()
        levels, best = dec.beam_trace(step, st, max_len=5, beam_width=width, **KW)
        assert best[0][:2] == [3, EOS] and abs(best[1] - np.log(0.27)) < 1e-9


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.5])
def test_beam_result_never_scores_below_any_finished_hypothesis_it_scored(seed, alpha):
    """Against a plain re-implementation that records every ending the beam scores."""
    step, h0 = toy(seed, N=4, sharp=0.8)
    for width in (1, 2, 3):
        b = dec.beam_search(step, h0, len(h0), max_len=6, beam_width=width, alpha=alpha, **KW)
        for n in range(len(h0)):
            best_end = -np.inf
            beam = [((), 0.0, h0[n:n + 1])]
            for t in range(6):
                cont = []
                for seq, tot, h in beam:
                    last = torch.tensor([seq[-1] if seq else BOS])
                    lp, h2 = step(last, h)
                    for k in range(K):
                        c = tot + float(lp[0, k])
                        if k == EOS:
                            best_end = max(best_end,
                                           c / float(dec.length_penalty(t + 1, alpha)))
                        else:
                            cont.append((seq + (k,), c, h2))
                beam = sorted(cont, key=lambda c: -c[1])[:width]
            assert float(b.score[n]) >= best_end - 1e-9


@pytest.mark.parametrize("seed", [0, 6])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_exhaustive_finds_the_argmax_and_beam_never_beats_it(seed, alpha):
    step, h0 = toy(seed, N=3, sharp=0.7)  # a flat model: search errors happen
    ex = dec.enumerate_sequences(step, h0, len(h0), max_len=5, alpha=alpha, **KW)
    # brute force by hand: score every sequence of the search space
    for n in range(len(h0)):
        best = -np.inf
        for L in range(1, 6):
            for seq in np.ndindex(*([K] * L)):
                if EOS in seq[:-1] or (L < 5 and seq[-1] != EOS):
                    continue
                h, lp, tok = h0[n:n + 1], 0.0, torch.tensor([BOS])
                for s in seq:
                    logp, h = step(tok, h)
                    lp += float(logp[0, s])
                    tok = torch.tensor([s])
                best = max(best, lp / float(dec.length_penalty(L, alpha)))
        assert abs(float(ex.score[n]) - best) < 1e-9
    missed = 0
    for width in (1, 2, 3, 4):
        b = dec.beam_search(step, h0, len(h0), max_len=5, beam_width=width, alpha=alpha, **KW)
        assert torch.all(b.score <= ex.score + 1e-9)
        missed += int((b.score < ex.score - 1e-9).sum())
    if alpha == 0.0:
        xs = dec.exact_search(step, h0, len(h0), max_len=5, **KW)
        assert torch.allclose(xs.log_prob, ex.log_prob, atol=1e-9)
        assert torch.equal(xs.tokens, ex.tokens)
    if seed == 6 and alpha == 0.0:
        assert missed > 0  # the test would pass vacuously if beam search never erred here


def test_wide_beam_reaches_the_argmax_on_a_small_space():
    step, h0 = toy(5, sharp=0.7)
    ex = dec.enumerate_sequences(step, h0, len(h0), max_len=3, **KW)
    b = dec.beam_search(step, h0, len(h0), max_len=3, beam_width=K ** 3, **KW)
    assert torch.allclose(b.score, ex.score, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_sampling_limits_are_greedy(seed):
    step, h0 = toy(seed)
    g = dec.greedy(step, h0, len(h0), max_len=8, **KW)
    gen = torch.Generator().manual_seed(0)
    for kw in ({"top_k": 1}, {"top_p": 1e-9}, {"temperature": 1e-4},
               {"top_k": 1, "temperature": 3.0}):
        s = dec.sample(step, h0, len(h0), max_len=8, generator=gen, **kw, **KW)
        assert torch.equal(s.tokens, g.tokens), kw
        assert torch.allclose(s.log_prob, g.log_prob)


def test_sampling_at_temperature_one_follows_the_model():
    probs = torch.tensor([[0.6, 0.3, 0.1]], dtype=torch.float64)

    def step(tok, state):
        return probs.log().expand(len(tok), -1), state
    s = dec.sample(step, torch.zeros(4000, 1), 4000, bos=1, eos=2, pad=0, max_len=1,
                   generator=torch.Generator().manual_seed(0))
    freq = np.bincount(s.tokens[:, 0].numpy(), minlength=3) / 4000
    assert np.allclose(freq, probs[0].numpy(), atol=0.03)
    top2 = dec.sample(step, torch.zeros(4000, 1), 4000, bos=1, eos=2, pad=0, max_len=1,
                      top_k=2, generator=torch.Generator().manual_seed(1))
    assert (top2.tokens[:, 0] != 2).all()
    nuc = dec.sample(step, torch.zeros(4000, 1), 4000, bos=1, eos=2, pad=0, max_len=1,
                     top_p=0.7, generator=torch.Generator().manual_seed(2))
    assert set(nuc.tokens[:, 0].tolist()) == {0, 1}  # 0.6 < 0.7, so the 0.3 token stays


def short_or_long_step():
    """Stop at once (p 0.4), or go long: 0.6, then 0.7 twice, then eos: p 0.294, 4 tokens."""
    def step(tok, t):
        n = len(tok)
        lp = torch.full((n, 5), -30.0, dtype=torch.float64)
        first = t[:, 0] == 0
        mid = (t[:, 0] >= 1) & (t[:, 0] < 3)
        lp[first, EOS] = np.log(0.4)
        lp[first, 3] = np.log(0.6)
        lp[mid, 3] = np.log(0.7)
        lp[mid, 4] = np.log(0.3)
        lp[t[:, 0] >= 3, EOS] = 0.0
        return torch.log_softmax(lp, 1), t + 1
    return step


def test_length_normalisation_changes_the_preference_for_short_outputs():
    step = short_or_long_step()
    t0 = torch.zeros(1, 1, dtype=torch.long)
    short = dec.beam_search(step, t0, 1, max_len=6, beam_width=2, alpha=0.0, **KW)
    assert int(short.lengths[0]) == 1  # log 0.4 > log 0.294
    # with normalisation the long hypothesis wins, although its log-probability is lower
    step2 = short_or_long_step()
    long_ = dec.beam_search(step2, t0, 1, max_len=6, beam_width=2, alpha=2.0, **KW)
    assert int(long_.lengths[0]) == 4 and bool(long_.finished[0])
    assert float(long_.log_prob[0]) < float(short.log_prob[0])  # it won on the score only


def test_finished_hypotheses_stop_growing_and_are_padded():
    step, h0 = toy(0)
    for res in (dec.greedy(step, h0, len(h0), max_len=9, **KW),
                dec.beam_search(step, h0, len(h0), max_len=9, beam_width=3, **KW)):
        for row, L, fin in zip(res.tokens, res.lengths, res.finished):
            L = int(L)
            if fin:
                assert int(row[L - 1]) == EOS and (row[L:] == PAD).all()
                assert EOS not in row[: L - 1].tolist()
            else:
                assert L == 9 and EOS not in row.tolist()
    nb = dec.beam_search(step, h0, len(h0), max_len=9, beam_width=4, n_best=3, **KW)
    assert nb.tokens.shape == (len(h0), 3, 9)
    assert torch.all(nb.score[:, :-1] >= nb.score[:, 1:])


def test_beam_trace_agrees_with_the_batched_beam_search():
    step, h0 = toy(2, sharp=0.8)
    for width in (1, 2, 3):
        for alpha in (0.0, 1.0):
            for n in range(len(h0)):
                levels, best = dec.beam_trace(step, h0[n:n + 1], max_len=6, beam_width=width,
                                              alpha=alpha, **KW)
                b = dec.beam_search(step, h0[n:n + 1], 1, max_len=6, beam_width=width,
                                    alpha=alpha, **KW)
                assert abs(best[1] - float(b.log_prob[0])) < 1e-9
                assert all(sum(c["kept"] and not c["finished"] for c in lv) <= width
                           for lv in levels)
                assert all(sum(c["kept"] and c["finished"] for c in lv) <= width
                           for lv in levels)


def test_state_can_be_a_dict_or_tuple():
    step, h0 = toy(0)

    def step_dict(tok, st):
        lp, h = step(tok, st["h"])
        return lp, {"h": h, "extra": (st["extra"][0],)}
    a = dec.beam_search(step, h0, len(h0), max_len=6, beam_width=3, **KW)
    b = dec.beam_search(step_dict, {"h": h0, "extra": (torch.zeros(len(h0), 2),)}, len(h0),
                        max_len=6, beam_width=3, **KW)
    assert torch.equal(a.tokens, b.tokens)


def test_bad_input_errors_are_clear():
    step, h0 = toy(0)
    with pytest.raises(TypeError, match="step_fn must be a function"):
        dec.greedy(3, h0, 6, **KW)
    with pytest.raises(ValueError, match="batch on their first axis"):
        dec.greedy(step, h0[None], 6, **KW)

    def logits_step(tok, h):
        return torch.randn(len(tok), K) * 5 + 3, h
    with pytest.raises(ValueError, match="log_softmax"):
        dec.greedy(logits_step, h0, 6, **KW)

    def wrong_shape(tok, h):
        return torch.zeros(len(tok), 1, K), h
    with pytest.raises(ValueError, match="one row per hypothesis"):
        dec.greedy(wrong_shape, h0, 6, **KW)
    with pytest.raises(TypeError, match="pair"):
        dec.greedy(lambda t, h: torch.zeros(len(t), K), h0, 6, **KW)
    with pytest.raises(ValueError, match="vocabulary size"):
        dec.greedy(step, h0, 6, bos=1, eos=7, pad=0)
    with pytest.raises(ValueError, match="temperature"):
        dec.sample(step, h0, 6, temperature=0.0, **KW)
    with pytest.raises(ValueError, match="top_p"):
        dec.sample(step, h0, 6, top_p=1.5, **KW)
    with pytest.raises(ValueError, match="top_k"):
        dec.sample(step, h0, 6, top_k=0, **KW)
    with pytest.raises(TypeError, match="generator"):
        dec.sample(step, h0, 6, generator=0, **KW)
    with pytest.raises(ValueError, match="n_best"):
        dec.beam_search(step, h0, 6, beam_width=2, n_best=3, **KW)
    with pytest.raises(ValueError, match="beam_width"):
        dec.beam_search(step, h0, 6, beam_width=0, **KW)
    with pytest.raises(ValueError, match="alpha"):
        dec.beam_search(step, h0, 6, alpha=-1.0, **KW)
    with pytest.raises(ValueError, match="limit"):
        dec.enumerate_sequences(step, h0, 6, max_len=6, limit=100, **KW)

    def never_ends(tok, h):  # eos almost impossible: the search must go deep
        lp = torch.zeros(len(tok), K, dtype=torch.float64)
        lp[:, EOS] = -50.0
        return torch.log_softmax(lp, 1), h
    with pytest.raises(RuntimeError, match="max_expansions"):
        dec.exact_search(never_ends, h0, 6, max_len=20, max_expansions=5, **KW)
    with pytest.raises(TypeError, match="state must be"):
        dec.greedy(step, "h", 6, **KW)
    with pytest.raises(ValueError, match="max_len"):
        dec.greedy(step, h0, 6, max_len=0, **KW)


def test_sweep_command_runs_at_tiny_size(tmp_path):
    from experiments import vec2seq_sweep as sw
    out = tmp_path / "v.json"
    assert sw.main(["--out", str(out), "--steps", "2", "--seeds", "0", "--lrs", "0.01",
                    "--workers", "1", "--search-n", "1"]) == 0
    data = json.loads(out.read_text())
    assert {(a["mode"], a["schedule"], a["floor"]) for a in data["arms"]} == {
        ("init", "constant", 0.0), ("input", "constant", 0.0), ("both", "constant", 0.0)} | {
        ("input", s, f) for s in ("linear", "exponential", "inverse_sigmoid") for f in sw.FLOORS}
    search = [a for a in data["arms"] if "search" in a][0]["search"][0]
    assert set(search["widths"]) == {f"{w}_{a:g}" for w in sw.WIDTHS for a in (0.0, 1.0)}
    for v in search["widths"].values():
        assert 0 <= v["missed"] <= 1 and v["mean_gap"] >= 0


def test_stored_sweep_results_are_complete():
    from companion.data.results import load_results
    data = load_results("vec2seq_sweep")
    assert len(data["settings"]["seeds"]) >= 5 and len(data["settings"]["lrs"]) >= 3
    for arm in data["arms"]:
        grid = arm["lrs"]
        assert set(data["settings"]["lrs"]) <= set(grid) and arm["chosen_lr"] in grid
        assert len(arm["runs"]) == len(data["settings"]["seeds"]) * len(grid)
        assert {r["lr"] for r in arm["runs"]} == set(grid)
        assert all(np.isfinite(r["test"]["nll"]) for r in arm["runs"])
        # the chosen rate is bracketed by the grid, unless the arm fails at every rate
        # (median validation accuracy below 0.02 everywhere: a tie at zero)
        med = [np.median([r["val"]["accuracy"] for r in arm["runs"] if r["lr"] == lr])
               for lr in grid]
        assert min(grid) < arm["chosen_lr"] < max(grid) or max(med) < 0.02, (
            arm["mode"], arm["schedule"], arm["floor"], arm["chosen_lr"], grid)
        assert arm["chosen_lr"] == sw_choose(arm["runs"], grid)


def sw_choose(runs, grid):
    from experiments.vec2seq_sweep import choose_lr
    return choose_lr(runs, grid)


def test_extend_adds_learning_rates_and_chooses_again(tmp_path):
    from experiments import vec2seq_sweep as sw
    out = tmp_path / "v.json"
    tiny = ["--out", str(out), "--steps", "2", "--seeds", "0", "--workers", "1",
            "--search-n", "1"]
    assert sw.main(tiny + ["--lrs", "0.01"]) == 0
    assert sw.main(tiny + ["--lrs", "0.001", "--extend", "init/constant/0"]) == 0
    arms = {(a["mode"], a["schedule"], a["floor"]): a for a in json.loads(out.read_text())["arms"]}
    init = arms[("init", "constant", 0.0)]
    assert init["lrs"] == [0.001, 0.01] and {r["lr"] for r in init["runs"]} == {0.001, 0.01}
    assert init["chosen_lr"] == sw.choose_lr(init["runs"], init["lrs"])
    assert arms[("both", "constant", 0.0)]["lrs"] == [0.01]          # untouched
    with pytest.raises(SystemExit):                                  # a rate already there
        sw.main(tiny + ["--lrs", "0.001", "--extend", "init/constant/0"])
    with pytest.raises(SystemExit):                                  # no such arm
        sw.main(tiny + ["--lrs", "0.003", "--extend", "init/linear/0"])
