"""Execute notebooks in place and store their outputs (``make execute``).

The committed outputs are what the book shows and what nbval compares, so they must
come from a clean top-to-bottom run in the project's environment. This script runs
each notebook in a fresh kernel with its own folder as the working directory,
stores widget state (so the book can render widgets), and prints how long each took.

    python tools/execute_notebooks.py book/ch01_recurrence.ipynb [more.ipynb ...]
"""

from __future__ import annotations

import os
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient


# No progress bars in stored outputs (companion.train reads this); the same thread count as
# `make test`'s first run, unless the caller chose one.
os.environ["COMPANION_PROGRESS"] = "0"
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PYTHONHASHSEED", "0")


def execute(path: pathlib.Path) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=True,
        record_timing=False,
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    if not _has_widgets(nb):
        nb.metadata.pop("widgets", None)
    coalesce_streams(nb)
    nbformat.write(nb, path)
    return elapsed


def coalesce_streams(nb) -> None:
    """Merge consecutive stdout (or stderr) outputs of a cell into one.

    How a cell's printing is cut into stream messages depends on timing (when the
    kernel flushes), so two executions of the same notebook could store the same text
    split differently; merged, the stored outputs are the same on every run.
    """
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for out in cell.get("outputs", []):
            if (out.get("output_type") == "stream" and merged
                    and merged[-1].get("output_type") == "stream"
                    and merged[-1].get("name") == out.get("name")):
                merged[-1]["text"] = "".join(merged[-1]["text"]) + "".join(out["text"])
            else:
                merged.append(out)
        cell.outputs = merged


def _has_widgets(nb) -> bool:
    return any(
        "application/vnd.jupyter.widget-view+json" in out.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    total = 0.0
    for name in argv:
        path = pathlib.Path(name)
        seconds = execute(path)
        total += seconds
        print(f"{seconds:7.1f} s  {path}", flush=True)
    print(f"{total:7.1f} s  total")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
