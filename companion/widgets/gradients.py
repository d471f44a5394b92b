"""Widget for chapter 5: the spectral radius of W against how far a gradient travels."""

from __future__ import annotations

import numpy as np

from companion.checks import check_positive_int

__all__ = ["radius_norm_curves", "spectral_radius_explorer"]


def radius_norm_curves(radii, *, steps: int = 60, hidden: int = 32, batch: int = 8,
                       input_scale: float = 0.5, seed: int = 0):
    """Median Jacobian-product norms against distance for tanh RNNs of given spectral radii.

    One random direction for ``W`` (Gaussian, ``seed``), rescaled to each radius; the
    same random inputs for every radius, so the curves differ only by the radius.

    Returns
    -------
    distances : (steps + 1,) ints.
    norms : (len(radii), steps + 1) medians over the batch.
    bounds : (len(radii), steps + 1) Pascanu's bound ``sigma_max(W)^d`` for each matrix.
    """
    from companion.scratch.longterm import jacobian_norms, pascanu_bound, scale_to_spectral_radius

    steps = check_positive_int("steps", steps)
    hidden = check_positive_int("hidden", hidden)
    batch = check_positive_int("batch", batch)
    radii = np.atleast_1d(np.asarray(radii, dtype=float))
    if np.any(radii <= 0) or not np.all(np.isfinite(radii)):
        raise ValueError(f"radii must be positive finite numbers; got {radii.tolist()}.")
    rng = np.random.default_rng(seed)
    W0 = rng.normal(size=(hidden, hidden))
    U = rng.normal(size=(hidden, 1)) * input_scale
    b = np.zeros(hidden)
    x = rng.normal(size=(batch, steps, 1))
    distances = np.arange(steps + 1)
    norms, bounds = [], []
    for rho in radii:
        W = scale_to_spectral_radius(W0, rho)
        norms.append(np.median(jacobian_norms(x, U, W, b), axis=0))
        bounds.append(pascanu_bound(W, distances))
    return distances, np.array(norms), np.array(bounds)


def spectral_radius_explorer(steps: int = 60, hidden: int = 32):
    """A slider for the spectral radius of ``W``, redrawing
    :func:`companion.plots.gradients.gradient_norm_figure` for that radius."""
    from companion.widgets.unfolding import _import_widgets

    widgets = _import_widgets()
    import matplotlib.pyplot as plt
    from IPython.display import display

    from companion.plots.gradients import gradient_norm_figure

    def draw(radius, show_bound):
        d, norms, bounds = radius_norm_curves([radius], steps=steps, hidden=hidden)
        fig = gradient_norm_figure(d, norms, labels=[f"spectral radius {radius:.2f}"],
                                   bounds=bounds if show_bound else None)
        display(fig)
        plt.close(fig)

    return widgets.interactive(
        draw,
        radius=widgets.FloatSlider(value=1.0, min=0.3, max=3.0, step=0.05,
                                   description="radius ρ"),
        show_bound=widgets.Checkbox(value=True, description="Pascanu bound"),
    )
