"""Vector-to-sequence on the captioning world: conditioning, scheduled sampling, search error.

The stored results behind chapter 7 (``companion/data/results/vec2seq_sweep.json``):

1. **Conditioning** (Goodfellow et al. 10.2.4): the same tanh-RNN generator
   (``companion.nn.conditioned.ConditionedGenerator``, H=64, embedding 16) conditioned on
   the scene vector as its initial state (``init``), as an input at every step
   (``input``, the ``x^T R`` bias) or both, trained with teacher forcing.
2. **Scheduled sampling** (Bengio et al. 2015): the ``input`` model trained with the
   teacher-forcing probability decayed linearly, exponentially or by an inverse sigmoid,
   down to a floor of 0 or of 0.5;
   pure teacher forcing is arm 1's ``input`` run (same code, same budget).
3. **Search error against beam width**, for the teacher-forced ``input`` models at their
   chosen learning rate: beam search (widths 1, 2, 3, 5, 10) against the exact most
   probable caption (``companion.nn.decoding.exact_search``), on the first ``search_n`` =
   150 test captions (the ``search`` control below repeats it on all 292).

Every arm: learning rates (3e-3, 1e-2, 3e-2), extended downwards for the arms whose best
value sat at the grid's lower edge (``EXTRA_LRS``: 3e-4 and 1e-3 for ``init``, 1e-3 or both
for two scheduled-sampling arms), x seeds (0-4), trained together as one
batched ensemble (a leading member axis on every weight) with Adam and per-member
gradient clipping at norm 5, 1000 steps of 32 captions; each seed has its own data order
and initialisation, shared by its learning rates. The learning rate is chosen per arm by
the median validation accuracy (free-running greedy captions that parse to the right
scene) and reported on the test scenes, which never appear in training.

Regenerate::

    .venv/bin/python -m experiments.vec2seq_sweep

The stored file is one such run (its wall time, about three minutes with two workers, is
stored as ``wall_seconds``). ``--only-floor`` and ``--extend`` re-run parts of it and merge
them into ``--out`` (for a grid whose best value sat at its edge); a member depends only on
its seed and learning rate, except that scheduled sampling's token draws come from one
generator shared by the members of an arm.

**Controls** (``companion/data/results/vec2seq_controls.json``, one part per command, each
part storing its ``cpu_s`` and ``wall_s``; every part regenerates in a few CPU minutes)::

    .venv/bin/python -m experiments.vec2seq_sweep --controls budget
    .venv/bin/python -m experiments.vec2seq_sweep --controls one_sentence
    .venv/bin/python -m experiments.vec2seq_sweep --controls search

- ``budget``: the conditioning arms (``init``, ``input``, ``both``) at four times the
  steps (``BUDGET_STEPS`` = 4000), each on its own grid (``BUDGET_LRS``), 5 seeds, the rate
  chosen on validation as above.
- ``one_sentence``: teacher forcing and the six scheduled-sampling arms on the task with one
  target sentence per scene (``make_captions(..., sentences="canonical")``: the same scenes,
  splits and feature noise), every arm on ``ONE_SENTENCE_LRS``, 5 seeds, 1000 steps; each
  final model is also fed its own samples, and the target tokens that contradict that
  prefix are counted by cause (``companion.data.captions.prefix_conflicts``).
- ``search``: the search-error study on every test caption (292), on the teacher-forced
  ``input`` members at the chosen rate, retrained as the main sweep trains them (the same
  ensemble of every seed and rate of the grid), with each member's per-caption
  teacher-forced and free-running errors. They are not bit-identical to the stored members:
  float32 training amplifies any difference in rounding over 1000 steps, and the package's
  training loop has changed since the main sweep was stored; their accuracies are stored.

A tiny version runs in ``tests/test_decoding.py`` (``--steps 3 --seeds 0 --lrs 0.01``), and
of the controls in ``tests/test_conditioned.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

SCHEDULES = ("constant", "linear", "exponential", "inverse_sigmoid")
MODES = ("init", "input", "both")
WIDTHS = (1, 2, 3, 5, 10)
#: scheduled sampling's minimum teacher-forcing probability: 0 (decay all the way to free
#: running) and 0.5 (Bengio et al.'s linear schedule keeps such a floor)
FLOORS = (0.0, 0.5)
DEFAULTS = dict(noise=0.3, data_seed=0, hidden=64, embed=16, batch=32, steps=1000, clip=5.0,
                lrs=(3e-3, 1e-2, 3e-2), seeds=(0, 1, 2, 3, 4), search_n=150)
#: learning rates added below the default grid for the arms whose best value sat at its lower
#: edge (found with ``--extend``); the default command runs them too, so that every chosen
#: rate has a worse neighbour on each side or the arm fails at every rate
EXTRA_LRS = {("init", "constant", 0.0): (3e-4, 1e-3), ("input", "linear", 0.0): (1e-3,),
             ("input", "inverse_sigmoid", 0.0): (3e-4, 1e-3)}
OUT = Path(__file__).resolve().parents[1] / "companion" / "data" / "results" / "vec2seq_sweep.json"
CONTROLS_OUT = OUT.with_name("vec2seq_controls.json")
#: the parts of ``vec2seq_controls.json``, each regenerated by its own command
PARTS = ("budget", "one_sentence", "search")
#: the budget arm: four times the steps, each conditioning method on its own grid
BUDGET_STEPS = 4000
BUDGET_LRS = {"init": (3e-4, 1e-3, 3e-3, 1e-2, 3e-2), "input": (1e-3, 3e-3, 1e-2, 3e-2),
              "both": (1e-3, 3e-3, 1e-2, 3e-2)}
#: the one-sentence task: every arm (teacher forcing and each schedule) on this grid
ONE_SENTENCE_LRS = (3e-4, 1e-3, 3e-3, 1e-2)


def train_arm(mode: str, schedule: str, cfg: dict, *, floor: float = 0.0, dtype=None):
    """Train one arm (all seeds x learning rates) and return (model, member list, seconds)."""
    import torch

    from companion.data.captions import VOCAB, make_captions
    from companion.nn.conditioned import ConditionedGenerator, fit

    torch.set_num_threads(1)
    dtype = dtype or torch.float32
    data = make_captions(cfg["data_seed"], noise=cfg["noise"],
                         sentences=cfg.get("sentences", "random"))["train"]
    members = [(s, lr) for s in cfg["seeds"] for lr in cfg["lrs"]]
    model = ConditionedGenerator(mode, data.x.shape[1], len(VOCAB), cfg["hidden"], cfg["embed"],
                                 seeds=[s for s, _ in members], dtype=dtype)
    t0 = time.perf_counter()
    fit(model, data, lr=[lr for _, lr in members], steps=cfg["steps"], batch=cfg["batch"],
        clip=cfg["clip"], schedule=schedule, floor=floor)
    return model, members, time.perf_counter() - t0


def evaluate(model, split, conflicts: bool = False) -> dict:
    """Per-member scores on a split: accuracy, teacher-forced NLL, per-position errors.

    With ``conflicts``, also ``"conflicts"``: each member fed its own samples (seed 2, as
    scheduled sampling does at teacher-forcing probability 0), the target tokens that do not
    continue that prefix, split by cause (``companion.data.captions.prefix_conflicts``)."""
    import torch

    from companion.data.captions import BOS, EOS, MAX_TOKENS, caption_correct
    from companion.data.captions import free_running_errors, teacher_forced_errors
    from companion.nn.conditioned import masked_nll

    dtype = model.W.dtype
    X = torch.as_tensor(split.x, dtype=dtype)
    with torch.no_grad():
        logp = model(X, torch.as_tensor(split.inputs))
        nll = masked_nll(logp, torch.as_tensor(split.targets), torch.as_tensor(split.mask))
        pred_tf = logp.argmax(-1).numpy()
    free = model.free_run(X, bos=BOS, eos=EOS, max_len=MAX_TOKENS).numpy()
    out = []
    for m in range(model.members):
        acc = float(np.mean([caption_correct(sc, f) for sc, f in zip(split.scenes, free[m])]))
        e_tf, m_tf = teacher_forced_errors(split.scenes, split.targets, pred_tf[m])
        e_fr, m_fr = free_running_errors(split.scenes, free[m])
        out.append({
            "accuracy": round(acc, 6), "nll": round(float(nll[m]), 6),
            "tf_errors": e_tf.sum(0).tolist(), "tf_counts": m_tf.sum(0).tolist(),
            "free_errors": e_fr.sum(0).tolist(), "free_counts": m_fr.sum(0).tolist(),
            "tf_any_error": round(float(np.mean((e_tf & m_tf).any(1))), 6),
        })
        if conflicts:
            from companion.data.captions import prefix_conflicts
            from companion.nn.decoding import sample
            fn, state = model.step_fn(X, member=m)
            fed = sample(fn, state, len(X), bos=BOS, eos=EOS, max_len=MAX_TOKENS,
                         generator=torch.Generator().manual_seed(2)).tokens.numpy()
            out[-1]["conflicts"] = prefix_conflicts(split.scenes, split.targets, fed)
    return out


def choose_lr(runs: list[dict], lrs) -> float:
    """The learning rate with the best median validation accuracy (ties: lower median NLL)."""
    def key(lr):
        sel = [r for r in runs if r["lr"] == lr]
        return (np.median([r["val"]["accuracy"] for r in sel]),
                -np.median([r["val"]["nll"] for r in sel]))
    return max(lrs, key=key)


def search_errors(model, members, lr, split, widths=WIDTHS, n=None) -> list[dict]:
    """Beam search against the exact argmax for each seed's member at learning rate ``lr``
    (on the first ``n`` examples of ``split``, all by default)."""
    import torch

    from companion.data.captions import BOS, EOS, MAX_TOKENS, CaptionSplit, caption_correct
    from companion.nn.decoding import beam_search, exact_search

    if n is not None:
        split = CaptionSplit(*(getattr(split, f)[:n] for f in
                               ("x", "scenes", "targets", "inputs", "mask")))
    X = torch.as_tensor(split.x, dtype=model.W.dtype)
    out = []
    for m, (seed, mlr) in enumerate(members):
        if mlr != lr:
            continue
        fn, state = model.step_fn(X, member=m)
        kw = dict(bos=BOS, eos=EOS, max_len=MAX_TOKENS)
        # exact argmax per caption; a caption whose search exceeds the budget is left out
        exact_lp, exact_len, exact_tok, solved = [], [], [], []
        for i in range(len(X)):
            one = {k: v[i:i + 1] for k, v in state.items()}
            try:
                e = exact_search(fn, one, 1, max_expansions=20_000, **kw)
            except RuntimeError:
                continue
            solved.append(i)
            exact_lp.append(float(e.log_prob[0]))
            exact_len.append(int(e.lengths[0]))
            exact_tok.append(e.tokens[0].numpy())
        idx = np.array(solved, dtype=int)
        sub = {k: v[idx] for k, v in state.items()}
        scenes = split.scenes[idx]
        ex_ok = [caption_correct(sc, t) for sc, t in zip(scenes, exact_tok)]
        row = {"seed": seed, "n_exact": len(idx), "n": len(X),
               "exact_accuracy": round(float(np.mean(ex_ok)), 6) if len(idx) else None,
               "widths": {}}
        exact_lp = np.array(exact_lp)
        for w in widths:
            for alpha in (0.0, 1.0):
                if not len(idx):
                    continue
                b = beam_search(fn, sub, len(idx), beam_width=w, alpha=alpha, **kw)
                gap = exact_lp - b.log_prob.numpy()
                ok = [caption_correct(sc, t) for sc, t in zip(scenes, b.tokens.numpy())]
                short = (b.lengths.numpy() <= 10)
                row["widths"][f"{w}_{alpha:g}"] = {
                    "missed": round(float(np.mean(gap > 1e-4)), 6),
                    "mean_gap": round(float(np.mean(np.maximum(gap, 0))), 6),
                    "max_gap": round(float(np.max(np.maximum(gap, 0))), 6),
                    "accuracy": round(float(np.mean(ok)), 6),
                    "short_fraction": round(float(np.mean(short)), 6),
                }
        row["exact_short_fraction"] = (round(float(np.mean(np.array(exact_len) <= 10)), 6)
                                       if len(idx) else None)
        out.append(row)
    return out


def run_arm(mode: str, schedule: str, cfg: dict, with_search: bool = False,
            floor: float = 0.0) -> dict:
    """Train and evaluate one arm; with ``with_search``, also measure search errors.

    ``cfg["sentences"]`` (default ``"random"``) picks the task (``make_captions``);
    ``cfg["conflicts"]`` adds the prefix-conflict counts to the test scores."""
    from companion.data.captions import make_captions

    cpu0 = time.process_time()
    model, members, seconds = train_arm(mode, schedule, cfg, floor=floor)
    data = make_captions(cfg["data_seed"], noise=cfg["noise"],
                         sentences=cfg.get("sentences", "random"))
    val = evaluate(model, data["val"])
    test = evaluate(model, data["test"], conflicts=cfg.get("conflicts", False))
    runs = [{"seed": s, "lr": lr, "val": v, "test": t}
            for (s, lr), v, t in zip(members, val, test)]
    lr = choose_lr(runs, cfg["lrs"])
    arm = {"mode": mode, "schedule": schedule, "floor": floor, "chosen_lr": lr,
           "lrs": sorted(cfg["lrs"]), "train_seconds": round(seconds, 1),
           "parameters": model.parameter_count(), "runs": runs}
    if with_search:
        arm["search"] = search_errors(model, members, lr, data["test"], n=cfg.get("search_n"))
    arm["cpu_s"] = round(time.process_time() - cpu0, 1)
    return arm


def per_caption(model, split, member: int = 0) -> dict:
    """Per-caption indicators of one member on ``split``, in its order: ``tf_any_error`` (a
    teacher-forced error somewhere along the true prefix) and ``free_wrong`` (the greedy
    free-running caption is wrong), as lists of 0/1."""
    import torch

    from companion.data.captions import BOS, EOS, MAX_TOKENS, caption_correct
    from companion.data.captions import teacher_forced_errors

    X = torch.as_tensor(split.x, dtype=model.W.dtype)
    with torch.no_grad():
        pred = model(X, torch.as_tensor(split.inputs)).argmax(-1).numpy()[member]
    free = model.free_run(X, bos=BOS, eos=EOS, max_len=MAX_TOKENS).numpy()[member]
    e_tf, m_tf = teacher_forced_errors(split.scenes, split.targets, pred)
    return {"tf_any_error": (e_tf & m_tf).any(1).astype(int).tolist(),
            "free_wrong": [int(not caption_correct(sc, f)) for sc, f in zip(split.scenes, free)]}


def search_arm(cfg: dict, lr: float) -> list:
    """Retrain the teacher-forced ``input`` arm as the main sweep does (the same ensemble of
    every seed and rate of its grid; not bit-identical to the stored members) and,
    for each seed's member at ``lr``, measure its search errors on ``cfg["search_n"]`` test
    captions (all when ``None``) and its per-caption errors on every test caption."""
    from companion.data.captions import make_captions

    cpu0 = time.process_time()
    model, members, _ = train_arm("input", "constant", cfg)
    test = make_captions(cfg["data_seed"], noise=cfg["noise"])["test"]
    rows = search_errors(model, members, lr, test, n=cfg.get("search_n"))
    scores = evaluate(model, test)
    at = [m for m, (_, mlr) in enumerate(members) if mlr == lr]
    for row, m in zip(rows, at):
        row["free_run_accuracy"] = scores[m]["accuracy"]
        row["tf_any_error"] = scores[m]["tf_any_error"]
        row["per_caption"] = per_caption(model, test, member=m)
    rows[0]["cpu_s"] = round(time.process_time() - cpu0, 1)
    return rows


def run_part(part: str, args) -> dict:
    """One part of the controls file (see the module docstring), as a dict."""
    seeds = tuple(args.seeds)
    if part == "search":
        arm = [a for a in json.loads(OUT.read_text())["arms"]
               if a["mode"] == "input" and a["schedule"] == "constant"][0]
        lrs = tuple(args.lrs or arm["lrs"])
        lr = arm["chosen_lr"] if arm["chosen_lr"] in lrs else lrs[0]
        cfg = dict(DEFAULTS, steps=args.steps or DEFAULTS["steps"], seeds=seeds, lrs=lrs,
                   search_n=args.search_n)
        jobs = [(cfg, lr)]
        fn = search_arm
    else:
        if part == "budget":
            cfg = dict(DEFAULTS, steps=args.steps or BUDGET_STEPS, seeds=seeds)
            jobs = [(m, "constant", dict(cfg, lrs=tuple(args.lrs or BUDGET_LRS[m])), False, 0.0)
                    for m in MODES]
        else:
            cfg = dict(DEFAULTS, steps=args.steps or DEFAULTS["steps"], seeds=seeds,
                       sentences="canonical", conflicts=True,
                       lrs=tuple(args.lrs or ONE_SENTENCE_LRS))
            jobs = [("input", "constant", cfg, False, 0.0)] + [
                ("input", s, cfg, False, f) for f in FLOORS for s in SCHEDULES[1:]]
        cfg = {k: v for k, v in cfg.items() if k not in ("search_n",)}
        cfg.pop("lrs")
        fn = run_arm
    t0 = time.perf_counter()
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as ex:
            done = list(ex.map(fn, *zip(*jobs)))
    else:
        done = [fn(*j) for j in jobs]
    import torch
    out = {"command": f"python -m experiments.vec2seq_sweep --controls {part}",
           "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
           "wall_s": round(time.perf_counter() - t0, 1),
           "cpu_s": round(sum(d["cpu_s"] for d in done), 1) if part != "search" else
           done[0][0]["cpu_s"], "workers": args.workers if part != "search" else 1,
           "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                        "numpy": np.__version__, "platform": platform.machine()}}
    if part == "search":
        out.update(chosen_lr=jobs[0][1], widths=list(WIDTHS), rows=done[0])
    else:
        out["arms"] = done
    return out


def baselines(cfg: dict) -> dict:
    """Trivial predictors on the test scenes, and the ceiling set by the feature noise."""
    from companion.data.captions import PAD, VOCAB, caption_correct, make_captions

    data = make_captions(cfg["data_seed"], noise=cfg["noise"])
    tr, te = data["train"], data["test"]
    sents, counts = np.unique(tr.targets, axis=0, return_counts=True)
    top = sents[np.argmax(counts)]
    freq = np.bincount(tr.targets[tr.mask], minlength=len(VOCAB)).astype(float) + 1.0
    logp = np.log(freq / freq.sum())
    unigram_nll = float(-logp[te.targets[te.mask]].mean())
    # a perfect writer that reads each attribute off the noisy features by argmax
    blocks = te.x.reshape(len(te.x), 6, 3).argmax(-1)  # (n, 6): shape, colour, count x 2 sides
    read = blocks.copy()
    read[:, [2, 5]] += 1
    ceiling = float(np.mean(np.all(read == te.scenes, axis=1)))
    del PAD
    return {"most_frequent_sentence_accuracy": float(np.mean(
                [caption_correct(sc, top) for sc in te.scenes])),
            "unigram_nll": round(unigram_nll, 6),
            "argmax_reader_accuracy": round(ceiling, 6)}


def save_model(cfg: dict, mode: str, lr: float, seed: int, out: Path) -> None:
    """Retrain one member (mode, lr, seed) alone and store its weights for the chapter's demos."""
    import torch

    from companion.data.captions import VOCAB, make_captions
    from companion.nn.conditioned import ConditionedGenerator, fit

    torch.set_num_threads(1)
    data = make_captions(cfg["data_seed"], noise=cfg["noise"])["train"]
    model = ConditionedGenerator(mode, data.x.shape[1], len(VOCAB), cfg["hidden"], cfg["embed"],
                                 seeds=[seed])
    fit(model, data, lr=lr, steps=cfg["steps"], batch=cfg["batch"], clip=cfg["clip"])
    d = model.to_dict()
    d["weights"] = {k: np.round(np.array(v), 6).tolist() for k, v in d["weights"].items()}
    d.update(lr=lr, steps=cfg["steps"], command="python -m experiments.vec2seq_sweep --model-only")
    out.write_text(json.dumps(d) + "\n")
    print(f"wrote {out}")


def parse_arm(text: str) -> tuple:
    """``"init/constant/0"`` -> ``("init", "constant", 0.0)``."""
    parts = text.split("/")
    if len(parts) != 3:
        raise SystemExit(f"--extend: expected MODE/SCHEDULE/FLOOR, got {text!r}")
    return parts[0], parts[1], float(parts[2])


def arm_lrs(arm: dict, settings: dict) -> list:
    """The learning-rate grid one arm was run on (its own, if it was extended)."""
    return arm.get("lrs", settings["lrs"])


def extend_arms(stored: dict, new_arms: list, seconds: float) -> dict:
    """Merge the runs of ``new_arms`` (new learning rates) into the matching stored arms and
    choose each one's learning rate again over the union of the grids."""
    for new in new_arms:
        old = [a for a in stored["arms"] if (a["mode"], a["schedule"], a["floor"]) ==
               (new["mode"], new["schedule"], new["floor"])][0]
        grid = arm_lrs(old, stored["settings"])
        clash = {r["lr"] for r in new["runs"]} & set(grid)
        if clash:
            raise SystemExit(f"--extend: learning rate(s) {sorted(clash)} already in the "
                             f"grid of {old['mode']}/{old['schedule']}/{old['floor']}")
        old["runs"] = old["runs"] + new["runs"]
        old["lrs"] = sorted(set(grid) | {r["lr"] for r in new["runs"]})
        chosen = choose_lr(old["runs"], old["lrs"])
        if "search" in old and chosen != old["chosen_lr"]:
            raise SystemExit("--extend: the search-error arm changed its learning rate; "
                             "rerun the whole sweep")
        old["chosen_lr"] = chosen
        old["train_seconds"] = round(old["train_seconds"] + new["train_seconds"], 1)
    stored["wall_seconds_parts"] = stored.get("wall_seconds_parts",
                                              [stored["wall_seconds"]]) + [seconds]
    stored["wall_seconds"] = round(sum(stored["wall_seconds_parts"]), 1)
    return stored


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--steps", type=int, default=None,
                    help=f"training steps (default {DEFAULTS['steps']}; {BUDGET_STEPS} for "
                         "--controls budget)")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULTS["seeds"]))
    ap.add_argument("--lrs", type=float, nargs="+", default=None,
                    help=f"learning rates (default {list(DEFAULTS['lrs'])}, extended per arm; "
                         "with --controls, each part's own grid)")
    ap.add_argument("--controls", choices=PARTS, default=None,
                    help="run one part of the controls (budget arm, one-sentence task, "
                         "search study on every test caption) and merge it into "
                         "--controls-out")
    ap.add_argument("--controls-out", type=Path, default=CONTROLS_OUT)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only-floor", type=float, default=None,
                    help="run only the scheduled-sampling arms with this floor and merge them "
                         "into --out")
    ap.add_argument("--model-only", action="store_true",
                    help="only retrain the input-mode model (chosen lr, seed 0) stored for the "
                         "chapter's decoding demos, reading the chosen lr from --out")
    ap.add_argument("--search-n", type=int, default=None,
                    help=f"test captions used for the search-error study (default "
                         f"{DEFAULTS['search_n']} in the main sweep, all with --controls)")
    ap.add_argument("--extend", nargs="+", default=None, metavar="MODE/SCHEDULE/FLOOR",
                    help="add the learning rates --lrs to these stored arms of --out (e.g. "
                         "init/constant/0 input/linear/0): train only the new members, merge "
                         "their runs, and choose each arm's learning rate again over its "
                         "whole grid (for a grid whose best value sat at its edge)")
    args = ap.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        ap.error(f"--steps must be >= 1; got {args.steps}")
    if args.search_n is not None and args.search_n < 1:
        ap.error(f"--search-n must be >= 1; got {args.search_n}")
    if args.controls is not None:
        part = run_part(args.controls, args)
        stored = (json.loads(args.controls_out.read_text())
                  if args.controls_out.exists() else {})
        stored[args.controls] = part
        args.controls_out.parent.mkdir(parents=True, exist_ok=True)
        args.controls_out.write_text(json.dumps(stored, indent=1) + "\n")
        print(f"wrote part {args.controls!r} of {args.controls_out}: "
              f"{part['wall_s']} s wall, {part['cpu_s']} s CPU")
        return 0
    args.steps = args.steps or DEFAULTS["steps"]
    args.lrs = args.lrs or list(DEFAULTS["lrs"])
    args.search_n = args.search_n or DEFAULTS["search_n"]
    cfg = dict(DEFAULTS, steps=args.steps, seeds=tuple(args.seeds), lrs=tuple(args.lrs),
               search_n=args.search_n)
    model_out = args.out.with_name("vec2seq_model.json")
    if args.model_only:
        stored = json.loads(args.out.read_text())
        lr = [a for a in stored["arms"] if a["mode"] == "input"
              and a["schedule"] == "constant"][0]["chosen_lr"]
        save_model(dict(cfg, **{k: stored["settings"][k] for k in ("steps", "batch", "hidden",
                                                                      "embed", "clip", "noise",
                                                                      "data_seed")}),
                   "input", lr, 0, model_out)
        return 0
    jobs = [(m, "constant", m == "input", 0.0) for m in MODES] + [
        ("input", s, False, f) for f in FLOORS for s in SCHEDULES[1:]]
    if args.only_floor is not None:  # re-run only the scheduled-sampling arms with this floor
        jobs = [j for j in jobs if j[1] != "constant" and j[3] == args.only_floor]
    if args.extend is not None:
        keys = [parse_arm(a) for a in args.extend]
        bad = [k for k in keys if k not in {(m, s, f) for m, s, _, f in jobs}]
        if bad:
            ap.error(f"--extend: unknown arm(s) {bad}; use MODE/SCHEDULE/FLOOR, e.g. "
                     "init/constant/0")
        jobs = [(m, s, False, f) for m, s, f in keys]
    default_grid = tuple(args.lrs) == tuple(DEFAULTS["lrs"])

    def arm_cfg(m, s, f):  # the default grid, extended below for the arms that need it
        extra = EXTRA_LRS.get((m, s, f), ()) if default_grid and args.extend is None else ()
        return dict(cfg, lrs=tuple(sorted(set(cfg["lrs"]) | set(extra))))

    t0 = time.perf_counter()
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as ex:
            arms = list(ex.map(run_arm, *zip(*[(m, s, arm_cfg(m, s, f), w, f)
                                               for m, s, w, f in jobs])))
    else:
        arms = [run_arm(m, s, arm_cfg(m, s, f), w, f) for m, s, w, f in jobs]
    import torch
    result = {
        "command": "python -m experiments.vec2seq_sweep",
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
        "widths": list(WIDTHS),
        "baselines": baselines(cfg),
        "arms": arms,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "workers": args.workers,
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                     "numpy": np.__version__, "platform": platform.machine()},
    }
    if args.extend is not None:  # merge the new learning rates into the stored arms
        result = extend_arms(json.loads(args.out.read_text()), arms, result["wall_seconds"])
    elif args.only_floor is not None:  # merge into the stored results
        old = json.loads(args.out.read_text())
        old["arms"] = [a for a in old["arms"] if a["schedule"] == "constant"
                       or a.get("floor", 0.0) != args.only_floor] + arms
        old["wall_seconds_parts"] = old.get("wall_seconds_parts", [old["wall_seconds"]]) + [
            result["wall_seconds"]]
        old["wall_seconds"] = round(sum(old["wall_seconds_parts"]), 1)
        result = old
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out} in {result['wall_seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
