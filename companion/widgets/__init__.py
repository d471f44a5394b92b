"""ipywidgets front-ends for ``companion.plots``. ipywidgets is imported lazily.

Each widget redraws a figure produced by a pure function of ``companion.plots``;
the book always shows the static figure made by the same function next to it, so
nothing is lost where no kernel runs (the rendered book, GitHub).
"""

from companion.widgets.decoding import decoding_explorer
from companion.widgets.gradients import spectral_radius_explorer
from companion.widgets.training import temperature_explorer
from companion.widgets.unfolding import dynamics_explorer, unrolling_explorer

__all__ = [
    "decoding_explorer",
    "dynamics_explorer",
    "spectral_radius_explorer",
    "temperature_explorer",
    "unrolling_explorer",
]
