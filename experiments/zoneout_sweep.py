"""Zoneout against recurrent dropout and against no regulariser on chapter 3's character
language model, in a regime that overfits (chapter 12).

Run from the repository root::

    .venv/bin/python -m experiments.zoneout_sweep          # writes zoneout_sweep.json

Data: :func:`companion.data.text.course_corpus`, split 90/10 as in chapter 3
(:func:`~companion.data.text.train_valid_split`). Training uses only a small slice, the
last ``n_train`` characters of the training part, so that the model can memorise it;
validation is the first 6,000 held-out characters, test the next 6,000. Model: one-hot
input, tanh RNN with ``H = 64``, linear read-out (:class:`companion.nn.zoneout.CharLMEnsemble`),
Adam on random windows of 50 characters, 16 windows per step, gradient norm clipped at 5,
for ``steps`` steps; every run of the sweep is one member of a single batched model.
Regularisers: ``none``; ``zoneout`` (rate z, the expectation at evaluation);
``dropout``: variational recurrent dropout (Gal and Ghahramani), one mask per sequence
on the state entering W_hh, rate p. Fairness: the same data, steps, batch, size and
initial weights (per seed) for all; each regulariser its own grid of rates x learning
rates (``none`` a wider lr grid reaching lower, since a small rate slows memorising),
every cell run with all seeds; the (rate, lr) with the lowest median validation bits
per character is chosen, under two protocols: after the last step (a fixed budget) and
at each run's best validation checkpoint (early stopping, evaluated every
``eval_every`` steps), and ``lr_inside`` / ``rate_inside``
say whether the choice lies strictly inside its grids. Test bits per character are
reported, with the training slice's own bits per character and the gap. Baselines: the
unigram model of the training slice, and uniform over the vocabulary.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import numpy as np
import torch

from companion.data.text import Vocabulary, course_corpus, train_valid_split
from companion.nn.zoneout import CharLMEnsemble, train_char_ensemble

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "companion" / "data" / "results"
KINDS = ("none", "zoneout", "dropout")


def members(cfg):
    """Every run of the sweep: (kind, rate, lr, seed), in a fixed order."""
    out = []
    for kind in KINDS:
        rates = [0.0] if kind == "none" else cfg["rates"][kind]
        for rate in rates:
            for lr in cfg["lr_grid"][kind]:
                for s in cfg["seeds"]:
                    out.append((kind, rate, lr, s))
    return out


def data(cfg):
    text = course_corpus()
    vocab = Vocabulary.from_text(text)
    train, held = train_valid_split(vocab.encode(text), valid_fraction=0.1)
    n = cfg["n_eval"]
    return vocab, train[-cfg["n_train"]:], held[:n], held[n:2 * n]


def unigram_bpc(train, ids, K):
    counts = np.bincount(train, minlength=K) + 1.0
    p = counts / counts.sum()
    return float(-np.mean(np.log2(p[ids])))


def sweep(cfg):
    torch.set_num_threads(1)
    vocab, train, valid, test = data(cfg)
    runs = members(cfg)
    model = CharLMEnsemble(
        vocab.size, cfg["hidden"], seeds=[r[3] for r in runs],
        zoneout=[r[1] if r[0] == "zoneout" else 0.0 for r in runs],
        dropout=[r[1] if r[0] == "dropout" else 0.0 for r in runs])
    t0, c0 = time.time(), time.process_time()
    losses, evals = train_char_ensemble(
        model, train, steps=cfg["steps"], lr=[r[2] for r in runs], seq_len=cfg["seq_len"],
        batch=cfg["batch"], clip_norm=cfg["clip"], eval_every=cfg["eval_every"],
        eval_fn=lambda m: (m.bits_per_char(valid), m.bits_per_char(train),
                           m.bits_per_char(test)))
    wall, cpu = time.time() - t0, time.process_time() - c0
    eval_steps = [s for s, _ in evals]
    rec = []
    for m, (kind, rate, lr, seed) in enumerate(runs):
        curve = {k: [round(float(e[i][m]), 5) for _, e in evals]
                 for i, k in enumerate(("valid", "train", "test"))}
        best = int(np.nanargmin(curve["valid"])) if np.isfinite(curve["valid"]).any() else -1
        rec.append({"kind": kind, "rate": rate, "lr": lr, "seed": seed,
                    "diverged": bool(np.isnan(losses[-1, m])),
                    "valid_bpc": curve["valid"][-1], "train_bpc": curve["train"][-1],
                    "test_bpc": curve["test"][-1],
                    "early_step": eval_steps[best], "early_valid_bpc": curve["valid"][best],
                    "early_train_bpc": curve["train"][best],
                    "early_test_bpc": curve["test"][best],
                    "valid_curve": curve["valid"], "train_curve": curve["train"],
                    "test_curve": curve["test"]})
    return {
        "name": "zoneout_sweep", "config": {**cfg, "kinds": list(KINDS),
                                            "vocab_size": vocab.size},
        "eval_steps": eval_steps, "runs": rec,
        "summary": summarise(rec, cfg, ""), "summary_early": summarise(rec, cfg, "early_"),
        "baseline": {"unigram_test": unigram_bpc(train, test[1:], vocab.size),
                     "uniform": float(np.log2(vocab.size))},
        "timing": {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__},
    }


def summarise(rec, cfg, prefix):
    """Per regulariser: the chosen (rate, lr) by median validation bpc and its scores.

    ``prefix`` ``""``: scores after the last step (a fixed budget); ``"early_"``: each run
    at its own checkpoint with the lowest validation bpc (early stopping)."""
    summary = {}
    for kind in KINDS:
        mine = [r for r in rec if r["kind"] == kind]
        cells = sorted({(r["rate"], r["lr"]) for r in mine})
        med = {c: float(np.median([r[prefix + "valid_bpc"] for r in mine
                                   if (r["rate"], r["lr"]) == c])) for c in cells}
        best = min(cells, key=lambda c: (med[c], c[1], c[0]))
        sel = [r for r in mine if (r["rate"], r["lr"]) == best]
        rates = sorted({c[0] for c in cells})
        lrs = cfg["lr_grid"][kind]

        def stat(key):
            v = [r[prefix + key] for r in sel]
            return [float(np.median(v)), float(min(v)), float(max(v))]
        summary[kind] = {
            "rate": best[0], "lr": best[1], "n": len(sel),
            "lr_inside": lrs[0] < best[1] < lrs[-1],
            "rate_inside": len(rates) > 1 and rates[0] < best[0] < rates[-1],
            "valid_median": {f"{c[0]}|{c[1]}": med[c] for c in cells},
            "valid": stat("valid_bpc"), "test": stat("test_bpc"), "train": stat("train_bpc"),
            "gap": stat_gap(sel, prefix),
            "diverged": int(sum(r["diverged"] for r in mine))}
    return summary


def stat_gap(sel, prefix):
    g = [r[prefix + "valid_bpc"] - r[prefix + "train_bpc"] for r in sel]
    return [float(np.median(g)), float(min(g)), float(max(g))]


def table(res, key="summary") -> str:
    lines = [f"{'regulariser':<12}{'rate':>6}{'lr':>8}{'valid':>8}{'test':>8}{'train':>8}"
             f"{'gap':>7}   (bits per character, median over {len(res['config']['seeds'])} seeds)"]
    for kind, s in res[key].items():
        lines.append(f"{kind:<12}{s['rate']:>6.2f}{s['lr']:>8.0e}{s['valid'][0]:>8.3f}"
                     f"{s['test'][0]:>8.3f}{s['train'][0]:>8.3f}{s['gap'][0]:>7.3f}"
                     f"  inside lr:{'yes' if s['lr_inside'] else 'NO'}"
                     f" rate:{'yes' if s['rate_inside'] else '-' if kind == 'none' else 'NO'}")
    b = res["baseline"]
    lines.append(f"unigram (test) {b['unigram_test']:.3f}, uniform {b['uniform']:.3f}")
    return "\n".join(lines)


FULL = {"hidden": 64, "n_train": 8000, "n_eval": 6000, "steps": 800, "seq_len": 50,
        "batch": 16, "clip": 5.0, "eval_every": 100, "seeds": [0, 1, 2, 3, 4],
        "rates": {"zoneout": [0.05, 0.15, 0.4], "dropout": [0.1, 0.25, 0.5]},
        "lr_grid": {"none": [3e-4, 1e-3, 3e-3, 1e-2], "zoneout": [3e-3, 1e-2, 3e-2],
                    "dropout": [3e-3, 1e-2, 3e-2]}}
TINY = {"hidden": 4, "n_train": 300, "n_eval": 100, "steps": 4, "seq_len": 8, "batch": 2,
        "clip": 5.0, "eval_every": 2, "seeds": [0, 1],
        "rates": {"zoneout": [0.1, 0.2], "dropout": [0.1, 0.2]},
        "lr_grid": {k: [1e-2, 3e-2] for k in KINDS}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=str(RESULTS))
    parser.add_argument("--tiny", action="store_true", help="smoke test at tiny size")
    args = parser.parse_args(argv)
    res = sweep(TINY if args.tiny else FULL)
    out = pathlib.Path(args.out_dir) / "zoneout_sweep.json"
    out.write_text(json.dumps(res, indent=None, separators=(",", ":"), allow_nan=False))
    print("after the last step (fixed budget):")
    print(table(res))
    print("each run at its best validation checkpoint (early stopping):")
    print(table(res, "summary_early"))
    print(f"wall {res['timing']['wall_s']} s, CPU {res['timing']['cpu_s']} s -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
