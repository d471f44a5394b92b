"""Run every notebook alone under a matrix of floating-point kernel configurations
(``make portability``; not part of ``make test``).

``make test`` checks the stored outputs under two kernel configurations. A reader's CPU
may pick others: torch's ATen kernels (``ATEN_CPU_CAPABILITY``), MKL's code path
(``MKL_CBWR``), the OpenBLAS core NumPy uses (``OPENBLAS_CORETYPE``) and the thread count
(``OMP_NUM_THREADS``) all change the last bits of results, and a printed number that sits
on a rounding boundary (or a chaotic count) then prints differently. This script runs
``tools/nbval_alone.py`` (each notebook alone in an empty folder, strict nbval against the
stored outputs, ``companion`` from a non-editable install) once per configuration of
``MATRIX``, prints a table (configuration x notebook: pass, or the failing cells) and
writes it, with what each configuration really selected, to ``portability.md``.

Before running, every configuration is checked on this machine: an ATen capability the
CPU lacks makes torch fall back silently, and OpenBLAS maps some core names onto others
(or ignores unknown ones). The effective capability and core are measured in a child
process and shown; a configuration whose ATen capability is not available is reported as
not run (it would only repeat another one), never as passed. When the requested OpenBLAS
core turns out to be the machine's own, the variable is left unset (it changes nothing,
and the probe of ``nbval_alone.py`` refuses a setting that has no effect).

    python tools/portability.py [--jobs 2] [--only a,b] [--rev REV] [--out portability.md]
                                [NOTEBOOK.ipynb ...]

``--rev`` runs the notebooks and ``companion`` of a commit (exported to a temporary
folder) instead of the working tree, so that uncommitted edits made meanwhile do not
enter the run. Exit status: 0 only if every configuration that ran passed every notebook.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

ROOT = pathlib.Path(__file__).resolve().parents[1]

# name: (ATEN_CPU_CAPABILITY, OPENBLAS_CORETYPE, MKL_CBWR, OMP_NUM_THREADS).
# Every axis takes each of its values at least twice, paired differently with the others.
# Row a is `make test`'s second configuration with one thread instead of two.
MATRIX = {
    "a": ("default", "Prescott", "COMPATIBLE", "1"),
    "b": ("default", "Sandybridge", "AUTO", "2"),
    "c": ("avx2", "Haswell", "COMPATIBLE", "2"),
    "d": ("avx2", "Zen", "AUTO", "1"),
    "e": ("avx512", "SkylakeX", "COMPATIBLE", "2"),
    "f": ("avx512", "Cooperlake", "AUTO", "1"),
}

MEASURE = r"""
import ctypes, glob, json, os, sys
sys.path.insert(0, sys.argv[1])
from nbval_alone import openblas_core
import torch
print(json.dumps({"aten": torch.backends.cpu.get_cpu_capability(), "openblas": openblas_core(),
                  "threads": torch.get_num_threads()}))
"""


def notebooks_of(root: pathlib.Path) -> list[pathlib.Path]:
    """The Makefile's NOTEBOOKS list."""
    skip = ("_build", "student", ".ipynb_checkpoints")
    return sorted(p for p in (root / "book").rglob("*.ipynb")
                  if not any(part in skip for part in p.relative_to(root).parts))


def measure(env_update: dict[str, str], drop: tuple[str, ...] = ()) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_update)
    out = subprocess.run([sys.executable, "-c", MEASURE, str(ROOT / "tools")], env=env,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def plan(names: list[str]) -> tuple[dict, list[dict]]:
    """What each configuration really selects on this machine."""
    variables = ("ATEN_CPU_CAPABILITY", "OPENBLAS_CORETYPE", "MKL_CBWR", "OMP_NUM_THREADS")
    native = measure({}, drop=variables)
    rows = []
    for name in names:
        aten, core, cbwr, threads = MATRIX[name]
        got = measure({"ATEN_CPU_CAPABILITY": aten, "OPENBLAS_CORETYPE": core})
        settings = {"ATEN_CPU_CAPABILITY": aten, "OPENBLAS_CORETYPE": core,
                    "MKL_CBWR": cbwr, "OMP_NUM_THREADS": threads}
        notes, run = [], True
        if got["aten"].lower() != aten.lower():
            notes.append(f"ATen {aten} not available on this CPU (torch falls back to "
                         f"{got['aten']}): not run")
            run = False
        if got["openblas"] == native["openblas"]:
            mapped = "is" if got["openblas"] == core else f"runs as {got['openblas']},"
            notes.append(f"OpenBLAS core {core} {mapped} this machine's own core: variable "
                         "left unset")
            del settings["OPENBLAS_CORETYPE"]
        elif got["openblas"] != core:
            notes.append(f"OpenBLAS runs {core} as its {got['openblas']} kernels")
        rows.append({"name": name, "requested": MATRIX[name], "settings": settings,
                     "aten": got["aten"], "openblas": got["openblas"], "run": run,
                     "notes": notes})
    return native, rows


def run_config(row: dict, notebooks: list[pathlib.Path], root: pathlib.Path,
               logdir: pathlib.Path) -> dict:
    junit = logdir / f"{row['name']}.xml"
    log = logdir / f"{row['name']}.log"
    command = [sys.executable, str(root / "tools" / "nbval_alone.py")]
    for key, value in row["settings"].items():
        command += ["--set", f"{key}={value}"]
    command += [*map(str, notebooks), "--", "-q", f"--junitxml={junit}"]
    env = dict(os.environ)
    env.setdefault("PYTHONHASHSEED", "0")
    env.setdefault("COMPANION_PROGRESS", "0")
    start = time.monotonic()
    with open(log, "w") as fh:
        rc = subprocess.run(command, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    elapsed = time.monotonic() - start
    failed: dict[str, list[str]] = {}
    seen: set[str] = set()
    if junit.exists():
        for case in ET.parse(junit).iter("testcase"):
            stem = pathlib.Path(case.get("file") or case.get("classname", "")).stem
            stem = stem or case.get("classname", "").split(".")[-1]
            nb = next((n.stem for n in notebooks if n.stem in (case.get("classname", "")
                                                               + (case.get("file") or ""))),
                      stem)
            seen.add(nb)
            if case.find("failure") is not None or case.find("error") is not None:
                cell = case.get("name", "?").replace("Cell ", "cell ")
                failed.setdefault(nb, []).append(cell)
    print(f"portability: {row['name']} done in {elapsed / 60:.1f} min (exit {rc})", flush=True)
    return {"rc": rc, "elapsed": elapsed, "failed": failed, "seen": seen, "log": str(log)}


def describe(row: dict) -> str:
    aten, core, cbwr, threads = row["requested"]
    shown_core = core if core == row["openblas"] else f"{core}→{row['openblas']}"
    return f"ATen {aten} ({row['aten']}), OpenBLAS {shown_core}, MKL_CBWR={cbwr}, {threads} thr"


def table(rows, results, notebooks) -> list[str]:
    ran = [r for r in rows if r["run"]]
    lines = ["| notebook | " + " | ".join(r["name"] for r in ran) + " |",
             "|---|" + "---|" * len(ran)]
    for nb in notebooks:
        cells = []
        for r in ran:
            res = results[r["name"]]
            if nb.stem in res["failed"]:
                cells.append("FAIL " + ", ".join(res["failed"][nb.stem]))
            elif nb.stem in res["seen"]:
                cells.append("pass")
            else:
                cells.append("not run")
        lines.append(f"| {nb.stem} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="default: the Makefile's NOTEBOOKS")
    parser.add_argument("--jobs", type=int, default=1, help="configurations run at once (1 or 2)")
    parser.add_argument("--only", default="", help="comma-separated configuration names")
    parser.add_argument("--rev", default=None, help="run a commit's notebooks and companion")
    parser.add_argument("--out", default=str(ROOT / "portability.md"))
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(MATRIX)
    unknown = sorted(set(names) - set(MATRIX))
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; known: {sorted(MATRIX)}")

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="portability-"))
    root = ROOT
    commit = subprocess.run(["git", "rev-parse", "--short", args.rev or "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    if args.rev:
        root = tmp / "tree"
        root.mkdir()
        archive = subprocess.run(["git", "archive", args.rev], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    else:
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "book", "companion"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
        commit += " + uncommitted changes" if dirty else ""
    if args.notebooks:
        notebooks = [root / pathlib.Path(n).resolve().relative_to(ROOT) for n in args.notebooks]
    else:
        notebooks = notebooks_of(root)

    native, rows = plan(names)
    print(f"portability: this machine: ATen {native['aten']}, OpenBLAS core "
          f"{native['openblas']}; {len(notebooks)} notebook(s); logs in {tmp}")
    for r in rows:
        print(f"  {r['name']}: {describe(r)}" + "".join(f"\n     - {n}" for n in r["notes"]))
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    results = {}
    ran = [r for r in rows if r["run"]]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(args.jobs, 2))) as pool:
        futures = {r["name"]: pool.submit(run_config, r, notebooks, root, tmp) for r in ran}
        for name, fut in futures.items():
            results[name] = fut.result()
    total = time.monotonic() - t0
    if args.rev:
        shutil.rmtree(root, ignore_errors=True)  # the exported tree; the logs stay

    ok = all(results[r["name"]]["rc"] == 0 for r in ran)
    grid = table(rows, results, notebooks)
    cpu = next((line.split(":", 1)[1].strip() for line in
                pathlib.Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    import numpy
    import torch
    report = [
        "# Portability matrix (`make portability`)",
        "",
        "Written by `tools/portability.py`; do not edit by hand. Each notebook alone "
        "(`tools/nbval_alone.py`), strict nbval against its stored outputs.",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; commit {commit}; "
        f"result: **{'PASS' if ok else 'FAIL'}**; wall time {total / 60:.0f} min "
        f"({args.jobs} at a time)",
        f"- machine: {cpu}, {os.cpu_count()} cores, ATen capability {native['aten']}, "
        f"OpenBLAS core {native['openblas']}; Python {platform.python_version()}, "
        f"torch {torch.__version__}, NumPy {numpy.__version__}",
        "",
        "| config | ATEN_CPU_CAPABILITY (torch uses) | OPENBLAS_CORETYPE (core used) | "
        "MKL_CBWR | OMP_NUM_THREADS | minutes | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        aten, core, cbwr, threads = r["requested"]
        if r["run"]:
            res = results[r["name"]]
            verdict = "pass" if res["rc"] == 0 else "FAIL"
            minutes = f"{res['elapsed'] / 60:.0f}"
        else:
            verdict, minutes = "not run", "-"
        core_shown = core if "OPENBLAS_CORETYPE" in r["settings"] else f"{core} (unset)"
        report.append(f"| {r['name']} | {aten} ({r['aten']}) | {core_shown} ({r['openblas']}) "
                      f"| {cbwr} | {threads} | {minutes} | {verdict} |")
    notes = [f"- {r['name']}: {n}" for r in rows for n in r["notes"]]
    if notes:
        report += ["", "Notes:", "", *notes]
    report += ["", *grid, ""]
    pathlib.Path(args.out).write_text("\n".join(report))
    print("\n".join(grid))
    print(f"portability: {'PASS' if ok else 'FAIL'} in {total / 60:.1f} min; "
          f"table written to {args.out}")
    if not ok:
        for r in ran:
            if results[r["name"]]["rc"] != 0:
                print(f"  {r['name']} log: {results[r['name']]['log']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
