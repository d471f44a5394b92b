"""Pure plotting functions: arrays (or settings) in, a matplotlib Figure out. No torch.

graphs       circuit diagrams and unfolded graphs (chapters 1-2)
dynamics     state trajectories and generic curves (chapters 1-2)
conditional  design patterns and the four conditional-distribution types (chapter 3)
training     loss curves, scaling plots, temperature (chapters 3-4)
gradients    gradient norms against distance, clipping, success against length (chapters 5-6)
sweeps       stored sweeps: success against length, gradient norms by distance, tuning
decoding     conditioning diagrams, beam-search trees, search error, error by position (ch. 7)
bidirectional  h and g unrolled, depth in time vs per step, look-ahead and depth results (10-11)
"""

from companion.plots.bidirectional import (
    bidirectional_graph_figure,
    depth_graph_figure,
    depth_results_figure,
    gradient_depth_figure,
    lookahead_figure,
)
from companion.plots.conditional import (
    conditional_types_figure,
    graphical_model_figure,
    pattern_diagram,
)
from companion.plots.decoding import (
    beam_tree_figure,
    conditioning_figure,
    position_error_figure,
    search_error_figure,
)
from companion.plots.dynamics import curves_figure, trajectory_figure
from companion.plots.gradients import clipping_figure, gradient_norm_figure, success_figure
from companion.plots.graphs import COLORS, circuit_diagram, unfolding_figure, unrolled_graph
from companion.plots.sweeps import (
    gradient_distance_figure,
    lr_grid_figure,
    success_length_figure,
)
from companion.plots.training import (
    loss_curve_figure,
    scaling_figure,
    temperature_figure,
)

__all__ = [
    "COLORS",
    "bidirectional_graph_figure",
    "depth_graph_figure",
    "depth_results_figure",
    "gradient_depth_figure",
    "lookahead_figure",
    "beam_tree_figure",
    "conditioning_figure",
    "position_error_figure",
    "search_error_figure",
    "circuit_diagram",
    "clipping_figure",
    "conditional_types_figure",
    "curves_figure",
    "gradient_distance_figure",
    "gradient_norm_figure",
    "graphical_model_figure",
    "loss_curve_figure",
    "lr_grid_figure",
    "pattern_diagram",
    "scaling_figure",
    "success_figure",
    "success_length_figure",
    "temperature_figure",
    "trajectory_figure",
    "unfolding_figure",
    "unrolled_graph",
]
