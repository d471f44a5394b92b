"""Widgets for chapters 1 and 2: a 2-D dynamical system and the unrolled graph."""

from __future__ import annotations

import numpy as np

__all__ = ["dynamics_explorer", "unrolling_explorer", "rotation_system"]


def rotation_system(radius: float, angle_deg: float, *, nonlinear: bool = False):
    """The transition ``s -> W s`` (or ``tanh(W s)``) with ``W = radius * rotation(angle)``.

    ``radius`` is the spectral radius of ``W``: below 1 the state spirals in, above 1
    it spirals out (and ``tanh`` then caps it on a closed curve).
    """
    theta = np.deg2rad(angle_deg)
    W = radius * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    if nonlinear:
        return (lambda s: np.tanh(W @ s)), W
    return (lambda s: W @ s), W


def _import_widgets():
    try:
        import ipywidgets
    except ImportError as err:  # pragma: no cover - exercised only without ipywidgets
        raise ImportError(
            "The interactive figures need ipywidgets: pip install ipywidgets. "
            "The static figures next to each widget show the same plots."
        ) from err
    return ipywidgets


def dynamics_explorer(steps: int = 40):
    """Sliders for the spectral radius and rotation angle of a 2-D linear (or tanh) system.

    Redraws :func:`companion.plots.dynamics.trajectory_figure` for three initial states, with the
    norm on a log axis so that decay and growth stay readable at every radius.
    """
    widgets = _import_widgets()
    import matplotlib.pyplot as plt
    from IPython.display import display

    from companion.plots.dynamics import trajectory_figure
    from companion.scratch.recurrence import unroll

    starts = np.array([[1.0, 0.0], [0.0, 0.6], [-0.4, -0.4]])

    def draw(radius, angle, nonlinear):
        f, _ = rotation_system(radius, angle, nonlinear=nonlinear)
        states = np.stack([unroll(f, s0, steps=steps) for s0 in starts])
        kind = "tanh" if nonlinear else "linear"
        fig = trajectory_figure(states, labels=[f"start {i + 1}" for i in range(len(starts))],
                                title=f"{kind} system, spectral radius {radius:.2f}",
                                log_norm=True)
        display(fig)
        plt.close(fig)

    return widgets.interactive(
        draw,
        radius=widgets.FloatSlider(value=0.9, min=0.5, max=1.3, step=0.02,
                                   description="radius ρ"),
        angle=widgets.FloatSlider(value=25.0, min=0.0, max=180.0, step=5.0,
                                  description="angle (°)"),
        nonlinear=widgets.Checkbox(value=False, description="apply tanh"),
    )


def unrolling_explorer():
    """A slider for τ and check boxes for inputs/outputs/losses, redrawing the unrolled graph."""
    widgets = _import_widgets()
    import matplotlib.pyplot as plt
    from IPython.display import display

    from companion.plots.graphs import unrolled_graph

    def draw(tau, inputs, outputs, losses):
        fig = unrolled_graph(tau, with_input=inputs, with_output=outputs,
                             with_loss=losses and outputs)
        display(fig)
        plt.close(fig)

    return widgets.interactive(
        draw,
        tau=widgets.IntSlider(value=4, min=1, max=12, description="τ (steps)"),
        inputs=widgets.Checkbox(value=True, description="inputs x"),
        outputs=widgets.Checkbox(value=True, description="outputs o"),
        losses=widgets.Checkbox(value=False, description="losses L"),
    )
