"""Pure plotting functions: arrays (or settings) in, a matplotlib Figure out. No torch."""

from companion.plots.dynamics import curves_figure, trajectory_figure
from companion.plots.graphs import COLORS, circuit_diagram, unfolding_figure, unrolled_graph

__all__ = [
    "COLORS",
    "circuit_diagram",
    "curves_figure",
    "trajectory_figure",
    "unfolding_figure",
    "unrolled_graph",
]
