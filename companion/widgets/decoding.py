"""Widget for chapter 7: sampling temperature and beam width, side by side.

``ipywidgets`` is imported lazily, inside the function, so that importing this module
costs nothing where no widget is shown (tests, scripts).
"""

from __future__ import annotations

from companion.checks import check_callable

__all__ = ["decoding_explorer", "format_captions"]


def format_captions(rows) -> str:
    """Text lines for a list of ``(caption, log_prob, correct)`` triples."""
    if not isinstance(rows, (list, tuple)):
        raise TypeError(f"rows must be a list of (caption, log_prob, correct) triples; got "
                        f"{type(rows).__name__}.")
    lines = []
    for r in rows:
        if not isinstance(r, (list, tuple)) or len(r) != 3:
            raise ValueError(f"each row must be a triple (caption, log_prob, correct); got {r!r}.")
        cap, lp, ok = r
        lines.append(f"{'ok ' if ok else 'BAD'} {float(lp):7.2f}  {cap}")
    return "\n".join(lines)


def decoding_explorer(sample_fn, beam_fn, *, temperatures=None, accuracy=None, distinct=None,
                      max_width: int = 10):
    """Sliders for the temperature kappa and the beam width, with the captions they give.

    ``sample_fn(kappa) -> rows`` and ``beam_fn(width) -> rows``, rows being
    ``(caption, log_prob, correct)`` triples (e.g. eight samples; the ``n_best`` beam).
    With ``temperatures``, ``accuracy`` and ``distinct`` (the static figure's arrays,
    :func:`companion.plots.decoding.temperature_sweep_figure`), the figure is redrawn with
    the chosen temperature marked. Returns the ``ipywidgets`` box.
    """
    check_callable("sample_fn", sample_fn, "(temperature) -> [(caption, log_prob, correct)]")
    check_callable("beam_fn", beam_fn, "(width) -> [(caption, log_prob, correct)]")
    import ipywidgets as w
    import matplotlib.pyplot as plt

    from companion.plots.decoding import temperature_sweep_figure

    kappa = w.FloatLogSlider(value=1.0, base=10, min=-1.5, max=1.0, step=0.05,
                             description="kappa", continuous_update=False)
    width = w.IntSlider(value=1, min=1, max=int(max_width), description="beam width",
                        continuous_update=False)
    out = w.Output()

    def redraw(_=None):
        out.clear_output(wait=True)
        with out:
            if temperatures is not None:
                fig = temperature_sweep_figure(temperatures, accuracy, distinct,
                                               highlight=kappa.value)
                plt.show(fig)
            print(f"samples at kappa = {kappa.value:.3g}:")
            print(format_captions(sample_fn(kappa.value)))
            print(f"\nbeam search, width {width.value}:")
            print(format_captions(beam_fn(width.value)))

    kappa.observe(redraw, names="value")
    width.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox([kappa, width]), out])
