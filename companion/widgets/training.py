"""Widgets for chapter 3: sampling temperature."""

from __future__ import annotations

from companion.widgets.unfolding import _import_widgets

__all__ = ["temperature_explorer"]


def temperature_explorer(logits, labels):
    """A log-scale slider for the temperature kappa, redrawing
    :func:`companion.plots.training.temperature_figure` for one next-character distribution.

    Parameters
    ----------
    logits : (K,) floats, the model's scores for the next symbol.
    labels : K strings naming the symbols.
    """
    widgets = _import_widgets()
    import matplotlib.pyplot as plt
    from IPython.display import display

    from companion.plots.training import temperature_figure

    plt.close(temperature_figure(logits, labels, [1.0]))  # validate the arguments up front

    def draw(temperature):
        fig = temperature_figure(logits, labels, [temperature])
        display(fig)
        plt.close(fig)

    return widgets.interactive(
        draw,
        temperature=widgets.FloatLogSlider(value=1.0, base=10, min=-1, max=0.7, step=0.05,
                                           description="\u03ba (temp.)"),
    )
