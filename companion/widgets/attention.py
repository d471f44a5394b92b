"""Widget for chapter 9: type an input, watch the translation and its attention.

``ipywidgets`` is imported lazily, inside the function, so that importing this module
costs nothing where no widget is shown (tests, scripts).
"""

from __future__ import annotations

from companion.checks import check_callable

__all__ = ["attention_explorer"]


def attention_explorer(translate_fn, *, default: str, description: str = "input",
                       examples=(), accepted: str = ""):
    """A text box: on Enter, ``translate_fn(text) -> (src_tokens, out_tokens, weights)``
    runs and the output and its heatmap (weights (L, S)) are shown.

    An empty box asks for an input; an input the model cannot read (``ValueError`` or
    ``KeyError`` from ``translate_fn``, say an unknown word) shows the error message
    instead of a figure. ``examples``: strings offered in a drop-down as starting points.
    ``accepted``: a line shown above the box saying which inputs the model was trained on.
    Returns the ``ipywidgets`` box.
    """
    check_callable("translate_fn", translate_fn, "(text) -> (src_tokens, out_tokens, weights)")
    if not isinstance(default, str):
        raise TypeError(f"default must be a string; got {type(default).__name__}.")
    if not isinstance(accepted, str):
        raise TypeError(f"accepted must be a string (a line describing the inputs the "
                        f"model reads); got {type(accepted).__name__}.")
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    from companion.plots.attention import attention_heatmap

    box = w.Text(value=default, description=description, continuous_update=False,
                 layout=w.Layout(width="480px"))
    pick = w.Dropdown(options=["(examples)"] + list(examples), description="try")
    out = w.Output()

    def redraw(_=None):
        out.clear_output(wait=True)
        with out:
            if not box.value.strip():
                print(f"type a {description} and press Enter"
                      + (f" ({accepted})" if accepted else ""))
                return
            try:
                src, hyp, weights = translate_fn(box.value)
            except (ValueError, KeyError) as err:
                print(f"cannot translate {box.value!r}: {err}")
                return
            print(f"{' '.join(src)}  ->  {' '.join(hyp)}")
            fig = attention_heatmap(weights, list(src), list(hyp),
                                    title="attention while translating your input")
            display(fig)
            plt.close(fig)

    def choose(change):
        if change["new"] != "(examples)":
            box.value = change["new"]

    box.observe(redraw, names="value")
    pick.observe(choose, names="value")
    redraw()
    rows = [w.HBox([box, pick]), out]
    if accepted:
        rows.insert(0, w.Label(accepted))
    return w.VBox(rows)
