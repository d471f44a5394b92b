"""The cost of attention against length: time and memory, with and without attention.

For lengths ``n`` (source length = output length = ``n``) it runs one training step
(forward, loss, backward) of three encoder-decoders of the same sizes on random tokens:
chapter 8's ``Seq2Seq`` (no attention), and ``AttentionSeq2Seq`` with additive and with
dot scores. For each it measures

- **CPU time** (``time.process_time``, the median of ``--repeats`` runs; one thread);
- **memory**: the bytes autograd keeps for the backward pass
  (``companion.nn.attention.saved_for_backward``, built on
  ``torch.autograd.graph.saved_tensors_hooks``), deterministic and the same on any
  machine. ``saved_bytes`` counts every saved storage once: the encoder states, saved by
  every decoder step that reads them, are one tensor in memory. ``saved_bytes_per_reference``
  adds up every saved reference instead (the encoder states then count once per output
  step), an overcount kept to show the difference. Attention saves, at each of the
  ``n`` output steps, tensors over all ``n`` source positions (the weights (N, S) and the
  mask; for additive scores also ``tanh(W q + U k)``, (N, S, A)): a term that grows as
  source length x output length.
- **the two lengths apart** (``separate``, memory only): the source length varies with
  the output length held at ``--fixed`` (16), and the other way round, so that a term in
  the product of the two lengths can be told from one in the square of either.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_attention              # writes attention_cost.json
    .venv/bin/python -m benchmarks.bench_attention --lengths 8 16 32 --out-dir /tmp
    .venv/bin/python -m benchmarks.bench_attention --lengths 8 16 --repeats 1 --layer-lengths 32 64 --out-dir /tmp   # seconds

It also times the attention layer alone (scaled dot scores, softmax and context for all
``n`` output steps at once, one forward and backward) at lengths up to 1024, where the
``n * n`` term dominates. Timings depend on the machine and its load: the three models are timed in the same
run, interleaved, and the chapter reads ratios (time at length 2n / time at length n),
not absolute seconds. The memory counts are exact.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import numpy as np
import torch

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "companion" / "data" / "results"
MODELS = ("no attention", "additive", "dot")


def make_model(name, V, H, emb):
    from companion.nn.attention import AttentionSeq2Seq
    from companion.nn.seq2seq import Seq2Seq

    torch.manual_seed(0)
    if name == "no attention":
        return Seq2Seq(V, V, enc_hidden=H, dec_hidden=H, emb_size=emb)
    return AttentionSeq2Seq(V, V, enc_hidden=H, dec_hidden=H, emb_size=emb, score=name)


def batch(N, n, V, seed=0, n_out=None):
    """Random sources of length ``n`` and targets of length ``n_out`` (default ``n``)."""
    n_out = n if n_out is None else n_out
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, V, (N, n), generator=g)
    tgt_in = torch.randint(4, V, (N, n_out), generator=g)
    tgt_out = torch.randint(4, V, (N, n_out), generator=g)
    return src, torch.full((N,), n), tgt_in, tgt_out


def _loss(model, src, lengths, tgt_in, tgt_out):
    logits = model(src, lengths, tgt_in)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             tgt_out.reshape(-1))


def saved_bytes(model, src, lengths, tgt_in, tgt_out, count="storage"):
    """Bytes autograd keeps for the backward pass of one training step (see
    ``companion.nn.attention.saved_for_backward`` for ``count``)."""
    from companion.nn.attention import saved_for_backward

    return saved_for_backward(_loss, model, src, lengths, tgt_in, tgt_out, count=count)


def step_time(model, src, lengths, tgt_in, tgt_out):
    t0 = time.process_time()
    model.zero_grad(set_to_none=True)
    logits = model(src, lengths, tgt_in)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             tgt_out.reshape(-1))
    loss.backward()
    return time.process_time() - t0


def layer_step(n, N, H, seed=0):
    """One forward + backward of the attention layer alone (scaled dot, all n output steps
    at once, n source positions): (CPU seconds, bytes saved for backward)."""
    from companion.nn.attention import attend, make_score

    g = torch.Generator().manual_seed(seed)
    q = torch.randn(N, n, H, generator=g, requires_grad=True)
    k = torch.randn(N, n, H, generator=g, requires_grad=True)
    from companion.nn.attention import saved_for_backward

    score = make_score("scaled_dot", H, H)
    t0 = time.process_time()
    ctx, _ = attend(score(q, k), k)
    ctx.sum().backward()
    seconds = time.process_time() - t0
    return seconds, saved_for_backward(lambda: attend(score(q, k), k)[0].sum())


def run_layer(lengths=(32, 64, 128, 256, 512, 1024), N=16, H=64, repeats=5):
    out = {"lengths": list(lengths), "cpu_s": [], "saved_bytes": []}
    for n in lengths:
        layer_step(n, N, H)  # warm-up
        runs = [layer_step(n, N, H) for _ in range(repeats)]
        out["cpu_s"].append(float(np.median([r[0] for r in runs])))
        out["saved_bytes"].append(int(runs[0][1]))
    return out


def run(lengths=(8, 16, 32, 64, 128), N=16, H=64, emb=32, V=20, repeats=5):
    torch.set_num_threads(1)
    models = {m: make_model(m, V, H, emb) for m in MODELS}
    out = {m: {"cpu_s": [], "saved_bytes": [], "saved_bytes_per_reference": []}
           for m in MODELS}
    for n in lengths:
        data = batch(N, n, V)
        for m, model in models.items():
            step_time(model, *data)  # warm-up
        times = {m: [] for m in MODELS}
        for _ in range(repeats):  # interleaved: the load hits the three models alike
            for m, model in models.items():
                times[m].append(step_time(model, *data))
        for m, model in models.items():
            out[m]["cpu_s"].append(float(np.median(times[m])))
            out[m]["saved_bytes"].append(int(saved_bytes(model, *data)))
            out[m]["saved_bytes_per_reference"].append(
                int(saved_bytes(model, *data, count="reference")))
    return {"name": "attention_cost", "lengths": list(lengths),
            "config": {"N": N, "H": H, "emb": emb, "V": V, "repeats": repeats,
                       "threads": 1},
            "models": out,
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "numpy": np.__version__}}


def run_separate(fixed=16, lengths=(16, 32, 64, 128), N=16, H=64, emb=32, V=20):
    """Memory (each storage once) with one length varied and the other held at ``fixed``."""
    models = {m: make_model(m, V, H, emb) for m in MODELS}
    out = {"fixed": fixed, "lengths": list(lengths), "vary_source": {}, "vary_target": {}}
    for m, model in models.items():
        out["vary_source"][m] = [int(saved_bytes(model, *batch(N, n, V, n_out=fixed)))
                                 for n in lengths]
        out["vary_target"][m] = [int(saved_bytes(model, *batch(N, fixed, V, n_out=n)))
                                 for n in lengths]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--layer-lengths", type=int, nargs="+",
                   default=[32, 64, 128, 256, 512, 1024])
    p.add_argument("--fixed", type=int, default=16,
                   help="the length held fixed while the other one varies")
    p.add_argument("--out-dir", default=str(RESULTS))
    args = p.parse_args(argv)
    c0 = time.process_time()
    res = run(tuple(args.lengths), repeats=args.repeats)
    res["layer"] = run_layer(tuple(args.layer_lengths), repeats=args.repeats)
    res["separate"] = run_separate(args.fixed, tuple(args.lengths))
    res["cpu_s_total"] = round(time.process_time() - c0, 1)
    path = pathlib.Path(args.out_dir) / "attention_cost.json"
    path.write_text(json.dumps(res, separators=(",", ":")))
    L = res["lengths"]
    print(f"{'length':>7}" + "".join(f"{m + ' ms':>18}{'MB':>7}" for m in MODELS))
    for k, n in enumerate(L):
        print(f"{n:>7}" + "".join(f"{1e3 * res['models'][m]['cpu_s'][k]:>18.1f}"
                                  f"{res['models'][m]['saved_bytes'][k] / 1e6:>7.2f}"
                                  for m in MODELS))
    lay = res["layer"]
    print("attention layer alone (scaled dot, N=16, H=64):")
    for n, t, b in zip(lay["lengths"], lay["cpu_s"], lay["saved_bytes"]):
        print(f"{n:>7} {1e3 * t:>10.2f} ms {b / 1e6:>9.2f} MB")
    sep = res["separate"]
    for key in ("vary_source", "vary_target"):
        print(f"{key} (other length {sep['fixed']}), MB:")
        for m, b in sep[key].items():
            print(f"  {m:>13}: " + " ".join(f"{x / 1e6:.3f}" for x in b))
    print(f"CPU {res['cpu_s_total']} s -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
