"""Accuracy against source length with and without attention; the four scores (chapter 9).

Run from the repository root::

    .venv/bin/python -m experiments.attention_sweep     # attention_sweep.json, attention_models.json
    .venv/bin/python -m experiments.attention_sweep --part budget     # attention_budget.json
    .venv/bin/python -m experiments.attention_sweep --part positions  # attention_positions.json

Part 1, **length** (the analogue of Bahdanau et al. 2015, figure 2). The task and lengths
are chapter 8's bottleneck sweep (``experiments/seq2seq_sweep.py``): ``copy`` with 10
symbols, trained on sources of 4 to 12 tokens, tested on 200 fresh sources at each length
4, 6, ..., 24 (``make_length_tests``, seed 1). Two models of the same sizes (GRU encoder
and decoder, hidden ``HIDDEN``, embeddings 32), the same initial decoder state (the
encoder's final state) and the same data stream, budget and clipping (global norm 1):
``no_attention`` (chapter 8's ``Seq2Seq(context="init")``, trained as
``Seq2SeqEnsemble``) and ``attention`` (``AttentionSeq2Seq(score="additive")``, trained
as ``AttentionEnsemble``). Each model has its own learning-rate grid; every value runs
with every seed (5); the value with the best median exact match on the validation split
(lengths 4-12) is chosen per model (ties go to the smallest; ``inside`` says whether the
choice is strictly inside the grid), and test exact match and token accuracy at every
length are reported for that value. Trivial baseline: the training set's most frequent
symbol repeated to the source's length (it knows the length, which no model is told).

Part 2, **scores**: the four score functions (additive, dot, general, scaled dot) on the
``dates`` task, same protocol (own grid each, 5 seeds, selection on validation exact
match, test exact match reported). Baseline: the most frequent training target.

Part 3, **models** for the chapter's heatmaps and widget (``attention_models.json``):
the additive dates model (seed 0 at the chosen learning rate of part 2), and one additive
model trained alone on the toy language pair.

Part 4, **budget and size** (``--part budget``, ``attention_budget.json``): part 1's
model without attention with one change each, the same task, data stream, seeds, clipping
and selection rule, each arm on its own grid: ``steps_4000`` trains 4000 steps (4x part 1)
and stores the mean training loss of the 50 steps before steps 1000, 2000, 3000 and 4000
(``loss_at``); ``hidden_41`` has hidden size 41, 19934 parameters, as many as the
attention model's 19630 within 2 %, at part 1's 1000 steps.

Part 5, **positions** (``--part positions``, ``attention_positions.json``): part 1's two
models retrained at the rates part 1 chose (5 seeds each, the same data and initial
weights; the batched ensembles hold other members than in part 1, so the numbers agree
with part 1's only to rounding), with, at every test length, the fraction of test strings
whose output token at each position is right (``position``; a missing token is wrong),
the fraction of outputs shorter than their reference (``short``) and the median output
length (``out_len``).

Members of one ensemble share the data stream (the same batches), so seeds differ by
their initial weights only. Each result file stores its CPU time (``time.process_time``)
and wall time; the CPU time is the measure of cost (parts 1-3: 281 s, part 4: 216 s,
part 5: 61 s), since the stored wall times (680 s, 952 s, 318 s) were measured while
other jobs shared the machine's two cores.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time
from collections import Counter

import numpy as np
import torch

from companion.data.seq2seq import collate, make_length_tests, make_task
from companion.metrics import exact_match, token_accuracy
from companion.nn.attention import AttentionEnsemble, AttentionSeq2Seq, train_attention_ensemble
from companion.nn.seq2seq import Seq2SeqEnsemble, fit_seq2seq, train_seq2seq_ensemble

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "companion" / "data" / "results"
SEEDS = [0, 1, 2, 3, 4]

LENGTH = {"task": "copy", "n_symbols": 10, "min_len": 4, "max_len": 12, "n_train": 5000,
          "n_valid": 500, "n_test": 500, "seed": 0, "test_lengths": list(range(4, 25, 2)),
          "n_per_length": 200, "length_seed": 1, "hidden": 32, "emb": 32, "batch": 32,
          "steps": 1000, "lr_grid": {"no_attention": [3e-3, 1e-2, 3e-2, 1e-1],
                                     "attention": [1e-3, 3e-3, 1e-2]}}
SCORES = {"task": "dates", "n_train": 5000, "n_valid": 500, "n_test": 500, "seed": 0,
          "hidden": 32, "emb": 32, "attn": 32, "batch": 32, "steps": 400,
          "lr_grid": {s: [3e-3, 1e-2, 3e-2] for s in ("additive", "dot", "general",
                                                       "scaled_dot")}}
TOY = {"task": "toy_language", "n_train": 5000, "n_valid": 500, "n_test": 500, "seed": 0,
       "hidden": 48, "emb": 32, "batch": 32, "steps": 800, "lr": 3e-3, "model_seed": 0}
SUCCESS = 0.9
# Part 4: the model without attention at 4x the steps, and at the attention model's size.
BUDGET = {**{k: v for k, v in LENGTH.items() if k != "lr_grid"},
          "arms": {"steps_4000": {"hidden": 32, "steps": 4000,
                                  "lr_grid": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
                                  "loss_at": [1000, 2000, 3000, 4000]},
                   "hidden_41": {"hidden": 41, "steps": 1000,
                                 "lr_grid": [3e-3, 1e-2, 3e-2, 1e-1],
                                 "loss_at": [1000]}}}
# Part 5: per-position accuracy of part 1's two models at the rates part 1 chose.
POSITIONS = {**{k: v for k, v in LENGTH.items() if k != "lr_grid"},
             "lr": {"no_attention": 3e-2, "attention": 3e-3}}


def _batches(examples, task, batch, seed):
    def fn(step):
        idx = np.random.default_rng([seed, step]).choice(len(examples), batch, replace=False)
        return collate([examples[i] for i in idx], task.src_vocab, task.tgt_vocab)
    return fn


def _decode_all(ens, examples, task, *, chunk=250):
    """Greedy outputs of every member: a list (one per member) of token lists."""
    out = [[] for _ in range(ens.members)]
    for start in range(0, len(examples), chunk):
        part = examples[start:start + chunk]
        b = collate(part, task.src_vocab, task.tgt_vocab)
        max_len = max(len(ex.tgt) for ex in part) + 5
        toks = ens.greedy(b.src, b.src_lengths, max_len)
        for m in range(ens.members):
            out[m] += [task.tgt_vocab.decode(row) for row in toks[m]]
    return out


def _choose(grid, valid):
    """valid: {lr: [per-seed scores]} -> (chosen lr, ties, inside, medians)."""
    med = {lr: float(np.median(valid[lr])) for lr in grid}
    best = max(med.values())
    ties = [lr for lr in grid if med[lr] == best]
    chosen = ties[0]
    return chosen, ties, any(grid[0] < lr < grid[-1] for lr in ties), med


def _train(kind, task, cfg, grid, **extra):
    members = [(lr, s) for lr in grid for s in SEEDS]
    seeds = [s for _, s in members]
    lrs = torch.tensor([lr for lr, _ in members], dtype=torch.float64)
    V, K = len(task.src_vocab), len(task.tgt_vocab)
    if kind == "no_attention":
        ens = Seq2SeqEnsemble(V, K, enc_hidden=cfg["hidden"], dec_hidden=cfg["hidden"],
                              emb_size=cfg["emb"], seeds=seeds)
        hist = train_seq2seq_ensemble(ens, _batches(task.train, task, cfg["batch"], 7),
                                      steps=cfg["steps"], lr=lrs)
    else:
        ens = AttentionEnsemble(V, K, hidden=cfg["hidden"], emb_size=cfg["emb"],
                                attn_size=extra.get("attn"), seeds=seeds,
                                score=extra.get("score", "additive"))
        hist = train_attention_ensemble(ens, _batches(task.train, task, cfg["batch"], 7),
                                        steps=cfg["steps"], lr=lrs)
    return ens, members, hist


def baseline(task, examples):
    top = Counter(t for ex in task.train for t in ex.tgt).most_common(1)[0][0]
    hyps = [[top] * len(ex.src) for ex in examples]
    refs = [ex.tgt for ex in examples]
    return exact_match(hyps, refs), token_accuracy(hyps, refs)


def _length_arm(kind, task, tests, cfg, grid, *, loss_at=()):
    """Train one model of the length experiment on its grid (all seeds), decode the
    validation and test sets, choose the rate: (runs, summary). ``loss_at``: steps at
    which the mean training loss of the 50 steps before is stored per run."""
    c0 = time.process_time()
    ens, members, hist = _train(kind, task, cfg, grid)
    refs_v = [ex.tgt for ex in task.valid]
    hyp_v = _decode_all(ens, task.valid, task)
    hyp_t = {L: _decode_all(ens, exs, task) for L, exs in tests.items()}
    runs = []
    for m, (lr, seed) in enumerate(members):
        div = bool(hist["diverged"][m])
        run = {"model": kind, "lr": lr, "seed": seed, "diverged": div,
               "final_loss": None if div else round(float(np.mean(hist["loss"][-50:, m])), 5),
               "valid_exact": 0.0 if div else round(exact_match(hyp_v[m], refs_v), 4),
               "test_exact": {}, "test_token": {}}
        if loss_at:
            run["loss_at"] = {str(t): None if div else
                              round(float(np.mean(hist["loss"][max(0, t - 50):t, m])), 5)
                              for t in loss_at}
        for L, exs in tests.items():
            refs = [ex.tgt for ex in exs]
            run["test_exact"][str(L)] = 0.0 if div else round(exact_match(hyp_t[L][m], refs), 4)
            run["test_token"][str(L)] = 0.0 if div else round(token_accuracy(hyp_t[L][m], refs), 4)
        runs.append(run)
    valid = {lr: [r["valid_exact"] for r in runs if r["lr"] == lr] for lr in grid}
    chosen, ties, inside, med = _choose(grid, valid)
    sel = [r for r in runs if r["lr"] == chosen]
    summary = {
        "lr": chosen, "ties": ties, "inside": inside, "valid_median": {str(k): v for k, v in med.items()},
        "params": ens.parameter_count(), "cpu_s": round(time.process_time() - c0, 1),
        "per_length": {str(L): {
            "median": float(np.median([r["test_exact"][str(L)] for r in sel])),
            "min": min(r["test_exact"][str(L)] for r in sel),
            "max": max(r["test_exact"][str(L)] for r in sel),
            "token_median": float(np.median([r["test_token"][str(L)] for r in sel])),
            "k": int(sum(r["test_exact"][str(L)] >= SUCCESS for r in sel)), "n": len(sel)}
            for L in tests}}
    if loss_at:
        alive = {t: [r["loss_at"][str(t)] for r in sel if r["loss_at"][str(t)] is not None]
                 for t in loss_at}
        summary["loss_at_median"] = {str(t): float(np.median(v)) if v else None
                                     for t, v in alive.items()}
    return runs, summary


def _length_setup(cfg):
    task = make_task(cfg["task"], n_train=cfg["n_train"], n_valid=cfg["n_valid"],
                     n_test=cfg["n_test"], min_len=cfg["min_len"], max_len=cfg["max_len"],
                     seed=cfg["seed"], n_symbols=cfg["n_symbols"])
    tests = make_length_tests(task, cfg["test_lengths"], n_per_length=cfg["n_per_length"],
                              seed=cfg["length_seed"])
    return task, tests


def length_part(cfg):
    task, tests = _length_setup(cfg)
    out = {"runs": [], "summary": {}, "baseline": {}}
    for L, exs in tests.items():
        em, ta = baseline(task, exs)
        out["baseline"][str(L)] = {"exact": round(em, 4), "token": round(ta, 4)}
    for kind in ("no_attention", "attention"):
        runs, out["summary"][kind] = _length_arm(kind, task, tests, cfg, cfg["lr_grid"][kind])
        out["runs"] += runs
    return out


def scores_part(cfg):
    task = make_task(cfg["task"], n_train=cfg["n_train"], n_valid=cfg["n_valid"],
                     n_test=cfg["n_test"], seed=cfg["seed"])
    refs_v = [ex.tgt for ex in task.valid]
    refs_t = [ex.tgt for ex in task.test]
    out = {"runs": [], "summary": {}}
    top = Counter(tuple(ex.tgt) for ex in task.train).most_common(1)[0][0]
    out["baseline"] = {"exact": exact_match([list(top)] * len(refs_t), refs_t),
                       "token": token_accuracy([list(top)] * len(refs_t), refs_t)}
    model = None
    for score, grid in cfg["lr_grid"].items():
        c0 = time.process_time()
        ens, members, hist = _train("attention", task, cfg, grid, score=score, attn=cfg["attn"])
        hyp_v, hyp_t = _decode_all(ens, task.valid, task), _decode_all(ens, task.test, task)
        runs = []
        for m, (lr, seed) in enumerate(members):
            div = bool(hist["diverged"][m])
            runs.append({"score": score, "lr": lr, "seed": seed, "diverged": div,
                         "valid_exact": 0.0 if div else round(exact_match(hyp_v[m], refs_v), 4),
                         "test_exact": 0.0 if div else round(exact_match(hyp_t[m], refs_t), 4),
                         "test_token": 0.0 if div else round(token_accuracy(hyp_t[m], refs_t), 4)})
        out["runs"] += runs
        valid = {lr: [r["valid_exact"] for r in runs if r["lr"] == lr] for lr in grid}
        chosen, ties, inside, med = _choose(grid, valid)
        sel = [r["test_exact"] for r in runs if r["lr"] == chosen]
        out["summary"][score] = {
            "lr": chosen, "ties": ties, "inside": inside,
            "valid_median": {str(k): v for k, v in med.items()},
            "median": float(np.median(sel)), "min": min(sel), "max": max(sel),
            "k": int(sum(a >= SUCCESS for a in sel)), "n": len(sel),
            "params": ens.parameter_count(), "cpu_s": round(time.process_time() - c0, 1)}
        if score == "additive":
            m0 = members.index((chosen, SEEDS[0]))
            model = {"task": {k: cfg[k] for k in ("task", "n_train", "n_valid", "n_test",
                                                  "seed")},
                     "lr": chosen, "steps": cfg["steps"], "seed": SEEDS[0],
                     **ens.member_model(m0).to_dict()}
    return out, model


def toy_model(cfg):
    c0 = time.process_time()
    task = make_task(cfg["task"], n_train=cfg["n_train"], n_valid=cfg["n_valid"],
                     n_test=cfg["n_test"], seed=cfg["seed"])
    torch.manual_seed(cfg["model_seed"])
    model = AttentionSeq2Seq(len(task.src_vocab), len(task.tgt_vocab),
                             enc_hidden=cfg["hidden"], dec_hidden=cfg["hidden"],
                             emb_size=cfg["emb"], score="additive")
    hist = fit_seq2seq(model, task, lr=cfg["lr"], steps=cfg["steps"],
                       batch_size=cfg["batch"], seed=cfg["model_seed"])
    return {"task": {k: cfg[k] for k in ("task", "n_train", "n_valid", "n_test", "seed")},
            "lr": cfg["lr"], "steps": cfg["steps"], "seed": cfg["model_seed"],
            "final_loss": round(float(np.mean(hist["loss"][-50:])), 5),
            "cpu_s": round(time.process_time() - c0, 1), **model.to_dict()}


def run(length_cfg, scores_cfg, toy_cfg):
    torch.set_num_threads(1)
    t0, c0 = time.time(), time.process_time()
    length = length_part(length_cfg)
    scores, dates_model = scores_part(scores_cfg)
    toy = toy_model(toy_cfg)
    sweep = {"name": "attention_sweep",
             "config": {"length": length_cfg, "scores": scores_cfg, "seeds": SEEDS,
                        "success": SUCCESS},
             "length": length, "scores": scores,
             "timing": {"wall_s": round(time.time() - t0, 1),
                        "cpu_s": round(time.process_time() - c0, 1)},
             "versions": {"python": platform.python_version(), "torch": torch.__version__,
                          "numpy": np.__version__}}
    models = {"name": "attention_models", "dates": dates_model, "toy_language": toy}
    return sweep, models


def budget_run(cfg):
    """Part 4: each arm is the ``no_attention`` model of part 1 with one change (steps or
    hidden size), on its own grid with every seed, the same data and selection rule."""
    torch.set_num_threads(1)
    t0, c0 = time.time(), time.process_time()
    task, tests = _length_setup(cfg)
    out = {"name": "attention_budget", "config": cfg, "seeds": SEEDS, "success": SUCCESS,
           "runs": {}, "summary": {}}
    for arm, a in cfg["arms"].items():
        arm_cfg = {**cfg, "hidden": a["hidden"], "steps": a["steps"]}
        runs, summ = _length_arm("no_attention", task, tests, arm_cfg, a["lr_grid"],
                                 loss_at=[t for t in a["loss_at"] if t <= a["steps"]])
        out["runs"][arm], out["summary"][arm] = runs, summ
    out["timing"] = {"wall_s": round(time.time() - t0, 1),
                     "cpu_s": round(time.process_time() - c0, 1)}
    out["versions"] = {"python": platform.python_version(), "torch": torch.__version__,
                       "numpy": np.__version__}
    return out


def positions_run(cfg):
    """Part 5: per output position, the fraction of test strings whose token there is
    right, for each model of part 1 retrained at the rate part 1 chose (every seed)."""
    torch.set_num_threads(1)
    t0, c0 = time.time(), time.process_time()
    task, tests = _length_setup(cfg)
    out = {"name": "attention_positions", "config": cfg, "seeds": SEEDS, "models": {}}
    for kind, lr in cfg["lr"].items():
        ens, members, hist = _train(kind, task, cfg, [lr])
        hyp_t = {L: _decode_all(ens, exs, task) for L, exs in tests.items()}
        runs = []
        for m, (lr_m, seed) in enumerate(members):
            run = {"lr": lr_m, "seed": seed, "diverged": bool(hist["diverged"][m]),
                   "test_exact": {}, "position": {}, "short": {}, "out_len": {}}
            for L, exs in tests.items():
                refs, hyps = [ex.tgt for ex in exs], hyp_t[L][m]
                run["test_exact"][str(L)] = round(exact_match(hyps, refs), 4)
                run["short"][str(L)] = round(float(np.mean([len(h) < len(r) for h, r in
                                                            zip(hyps, refs)])), 4)
                run["out_len"][str(L)] = float(np.median([len(h) for h in hyps]))
                run["position"][str(L)] = [
                    round(float(np.mean([len(h) > p and h[p] == r[p]
                                         for h, r in zip(hyps, refs)])), 4)
                    for p in range(len(refs[0]))]
            runs.append(run)
        out["models"][kind] = {
            "runs": runs, "params": ens.parameter_count(),
            "position_median": {str(L): [float(np.median([r["position"][str(L)][p]
                                                          for r in runs]))
                                         for p in range(len(runs[0]["position"][str(L)]))]
                                for L in tests},
            "exact_median": {str(L): float(np.median([r["test_exact"][str(L)] for r in runs]))
                             for L in tests},
            "short_median": {str(L): float(np.median([r["short"][str(L)] for r in runs]))
                             for L in tests},
            "out_len_median": {str(L): float(np.median([r["out_len"][str(L)] for r in runs]))
                               for L in tests}}
    out["timing"] = {"wall_s": round(time.time() - t0, 1),
                     "cpu_s": round(time.process_time() - c0, 1)}
    out["versions"] = {"python": platform.python_version(), "torch": torch.__version__,
                       "numpy": np.__version__}
    return out


def budget_table(res) -> str:
    lines = []
    for arm, s in res["summary"].items():
        lines.append(f"{arm}: lr {s['lr']:g} (inside {s['inside']}), valid medians "
                     f"{s['valid_median']}, {s['params']} params, {s['cpu_s']} s CPU, "
                     f"loss {s.get('loss_at_median')}")
        lines.append("  " + " ".join(f"{L}:{p['median']:.2f}[{p['min']:.2f},{p['max']:.2f}]"
                                     f"{p['k']}/{p['n']} tok {p['token_median']:.3f}"
                                     for L, p in s["per_length"].items()))
    return "\n".join(lines)


def table(res) -> str:
    lines = []
    Ls = list(res["length"]["summary"]["attention"]["per_length"])
    lines.append(f"{'length':>7}" + "".join(f"{m:>24}" for m in res["length"]["summary"])
                 + f"{'baseline':>10}")
    for L in Ls:
        row = f"{L:>7}"
        for m, s in res["length"]["summary"].items():
            p = s["per_length"][L]
            row += f"{p['median']:>9.2f} [{p['min']:.2f}, {p['max']:.2f}] {p['k']}/{p['n']}"
        lines.append(row + f"{res['length']['baseline'][L]['exact']:>10.2f}")
    for m, s in res["length"]["summary"].items():
        lines.append(f"{m}: lr {s['lr']:g} (inside {s['inside']}), {s['params']} params, "
                     f"{s['cpu_s']} s CPU")
    for sc, s in res["scores"]["summary"].items():
        lines.append(f"dates {sc:>10}: lr {s['lr']:g} (inside {s['inside']}) "
                     f"{s['median']:.3f} [{s['min']:.3f}, {s['max']:.3f}] {s['k']}/{s['n']}, "
                     f"{s['cpu_s']} s CPU")
    return "\n".join(lines)


def _tiny(cfg, **kw):
    return {**cfg, "n_train": 60, "n_valid": 20, "n_test": 20, "hidden": 6, "emb": 4,
            "batch": 8, "steps": 3, **kw}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=str(RESULTS))
    parser.add_argument("--tiny", action="store_true", help="smoke test at tiny size")
    parser.add_argument("--part", choices=("main", "budget", "positions"), default="main",
                        help="main: parts 1-3 (attention_sweep.json, attention_models.json); "
                             "budget: part 4 (attention_budget.json); positions: part 5 "
                             "(attention_positions.json)")
    args = parser.parse_args(argv)
    if args.part == "positions":
        cfg = _tiny(POSITIONS, test_lengths=[4, 6], n_per_length=5) if args.tiny else POSITIONS
        res = positions_run(cfg)
        path = pathlib.Path(args.out_dir) / "attention_positions.json"
        path.write_text(json.dumps(res, separators=(",", ":"), allow_nan=False))
        for kind, m in res["models"].items():
            for L, v in m["position_median"].items():
                print(f"{kind:>13} L={L:>2} exact {m['exact_median'][L]:.2f} short "
                      f"{m['short_median'][L]:.2f} len {m['out_len_median'][L]:g} positions "
                      + " ".join(f"{x:.2f}" for x in v))
        print(f"wall {res['timing']['wall_s']} s, CPU {res['timing']['cpu_s']} s -> {path}")
        return 0
    if args.part == "budget":
        cfg = BUDGET
        if args.tiny:
            cfg = _tiny(BUDGET, test_lengths=[4, 6], n_per_length=5, arms={
                "steps_4000": {"hidden": 6, "steps": 4, "lr_grid": [1e-2, 3e-2],
                               "loss_at": [2, 4]},
                "hidden_41": {"hidden": 7, "steps": 2, "lr_grid": [1e-2], "loss_at": [2]}})
        res = budget_run(cfg)
        path = pathlib.Path(args.out_dir) / "attention_budget.json"
        path.write_text(json.dumps(res, separators=(",", ":"), allow_nan=False))
        print(budget_table(res))
        print(f"wall {res['timing']['wall_s']} s, CPU {res['timing']['cpu_s']} s -> {path}")
        return 0
    if args.tiny:
        cfgs = (_tiny(LENGTH, test_lengths=[4, 6], n_per_length=5,
                      lr_grid={"no_attention": [1e-2], "attention": [1e-2]}),
                _tiny(SCORES, attn=4, lr_grid={s: [1e-2] for s in SCORES["lr_grid"]}),
                _tiny(TOY))
    else:
        cfgs = (LENGTH, SCORES, TOY)
    sweep, models = run(*cfgs)
    out = pathlib.Path(args.out_dir)
    (out / "attention_sweep.json").write_text(json.dumps(sweep, separators=(",", ":"),
                                                         allow_nan=False))
    (out / "attention_models.json").write_text(json.dumps(models, separators=(",", ":"),
                                                          allow_nan=False))
    print(table(sweep))
    print(f"wall {sweep['timing']['wall_s']} s, CPU {sweep['timing']['cpu_s']} s -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
