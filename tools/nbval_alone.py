"""Run notebooks through nbval the way a reader's Colab does (``make nbval-alt``).

Every notebook is copied **alone** into its own empty temporary folder and executed by
nbval (strict, against its stored outputs) with ``companion`` imported from a
**non-editable** install of this repository (``pip install --no-deps --no-index
--no-build-isolation --target``: offline, nothing fetched), never from the working tree.
The run uses the floating-point kernel settings given with ``--set VAR=VALUE``
(``make test`` passes the second kernel configuration, see the Makefile), so one run
checks both that the notebooks are portable and that they run alone.

A probe notebook runs first and fails the run if the kernel imported ``companion`` from
anywhere but the install, if its working folder is not empty of the repository, or if a
``--set`` variable did not change what it should (torch's ATen CPU capability, the
OpenBLAS core NumPy uses). The pytest summary line closes the output; the exit status is
pytest's.

    python tools/nbval_alone.py [--keep] [--set VAR=VALUE ...] NOTEBOOK.ipynb [...] [-- PYTEST ARGS]
"""

from __future__ import annotations

import ctypes
import glob
import inspect
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
PROBE_NAME = "00_standalone_probe.ipynb"

PROBE = r'''
import ctypes, glob, os, pathlib, platform, sys
import companion, numpy, torch

site = pathlib.Path(os.environ["NBVAL_ALONE_SITE"]).resolve()
where = pathlib.Path(companion.__file__).resolve()
assert where.is_relative_to(site), f"companion imported from {where}, not from {site}"
assert not (pathlib.Path.cwd() / "companion").exists(), "the repository is the working folder"
assert sorted(p.name for p in pathlib.Path.cwd().iterdir()) == ["00_standalone_probe.ipynb"]

wanted = os.environ.get("ATEN_CPU_CAPABILITY")
if wanted:
    got = torch.backends.cpu.get_cpu_capability()
    assert got.lower() == wanted.lower(), f"ATEN_CPU_CAPABILITY={wanted} but torch uses {got}"

native = os.environ.get("NBVAL_ALONE_NATIVE_OPENBLAS_CORE")
if os.environ.get("OPENBLAS_CORETYPE") and native not in (None, "Katmai", "Prescott"):
    core = openblas_core()
    assert core != native, f"OPENBLAS_CORETYPE did not change NumPy's core ({core})"
'''


def openblas_core() -> str | None:
    """Name of the OpenBLAS core NumPy uses in this process, if it can be asked."""
    import numpy

    libs = os.path.join(os.path.dirname(numpy.__file__), os.pardir, "numpy.libs")
    for lib in glob.glob(os.path.join(libs, "*openblas*")):
        handle = ctypes.CDLL(lib)
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                     "openblas_get_corename64_", "openblas_get_corename"):
            if hasattr(handle, name):
                getattr(handle, name).restype = ctypes.c_char_p
                return getattr(handle, name)().decode()
    return None


def install_companion(target: pathlib.Path) -> pathlib.Path:
    """Install ``companion`` from a copy of the working tree into ``target/site``.

    The copy keeps build by-products out of the shared working tree. The install is a
    plain (non-editable) one, offline (``--no-index``, no build isolation). Every
    non-Python file under ``companion/`` must arrive in the install (package data), or
    this raises.
    """
    src, site = target / "src", target / "site"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "companion", src / "companion",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--disable-pip-version-check", "--target", str(site), str(src)],
        check=True, cwd=target,
    )
    data = [p.relative_to(src) for p in (src / "companion").rglob("*")
            if p.is_file() and p.suffix != ".py"]
    missing = [str(p) for p in data if not (site / p).is_file()]
    if missing:
        raise SystemExit(f"nbval_alone: package data missing from the install: {missing}; "
                         "add them to [tool.setuptools.package-data] in pyproject.toml")
    return site


def write_probe(folder: pathlib.Path) -> pathlib.Path:
    folder.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    # The probe runs where tools/ cannot be imported: it gets openblas_core's source.
    source = inspect.getsource(openblas_core) + "\n" + PROBE.strip()
    cell = nbformat.v4.new_code_cell(source)
    cell.execution_count = 1
    nb.cells = [cell]
    path = folder / PROBE_NAME
    nbformat.write(nb, path)
    return path


def main(argv: list[str]) -> int:
    keep, settings, notebooks, pytest_args = False, {}, [], []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--keep":
            keep = True
        elif arg == "--set":
            name, _, value = args.pop(0).partition("=")
            settings[name] = value
        elif arg == "--":
            pytest_args, args = args, []
        else:
            notebooks.append(pathlib.Path(arg).resolve())
    if not notebooks:
        print(__doc__)
        return 2
    # Stopped from outside (make test interrupted, or the pytest that started us gone):
    # stop the notebook run and remove the temporary folder.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parent = os.getppid()

    def watch_parent():
        while os.getppid() == parent:
            time.sleep(2)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch_parent, daemon=True).start()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="nbval-alone-"))
    try:
        site = install_companion(tmp)
        run = tmp / "run"
        files = [write_probe(run / "00_probe")]
        for nb in notebooks:
            folder = run / nb.stem
            folder.mkdir(parents=True)
            shutil.copy2(nb, folder / nb.name)
            files.append(folder / nb.name)
        (run / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
        env = dict(os.environ)
        env.update(settings)
        env["PYTHONPATH"] = str(site)
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
        env["NBVAL_ALONE_SITE"] = str(site)
        core = openblas_core()  # this process runs with the machine's defaults
        if core:
            env["NBVAL_ALONE_NATIVE_OPENBLAS_CORE"] = core
        shown = " ".join(f"{k}={v}" for k, v in settings.items()) or "machine defaults"
        print(f"nbval_alone: {len(notebooks)} notebook(s), each alone in an empty folder, "
              f"companion installed in {site}, kernels: {shown}", flush=True)
        command = [sys.executable, "-m", "pytest", "-c", str(run / "pytest.ini"),
                   "--rootdir", str(run), "--nbval", *map(str, files),
                   "--nbval-sanitize-with", str(SANITIZE), *pytest_args]
        return subprocess.run(command, cwd=run, env=env).returncode
    finally:
        if keep:
            print(f"nbval_alone: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
