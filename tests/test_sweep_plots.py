"""companion.plots.sweeps: figures from sweep arrays, and their input errors."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from companion.plots.sweeps import (  # noqa: E402
    gradient_distance_figure,
    lr_grid_figure,
    success_length_figure,
)


def test_success_length_figure_annotates_k_over_n():
    F = np.array([[[1.0, 0.9, 0.7], [0.1, 0.2, np.nan]]])  # one model, two lengths
    fig = success_length_figure([10, 20], F, labels=["LSTM"], lrs=[3e-3], baseline=[0.15, 0.15])
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["2/3", "0/2"]
    labels = ax.get_legend_handles_labels()[1]
    assert "LSTM (lr 3e-3)" in labels and "constant predictor" in labels
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_xscale() == "log"
    plt.close(fig)


def test_a_length_not_run_ends_the_line_without_a_k_over_n():
    nan = np.full(3, np.nan)
    F = np.array([[[1.0, 0.9, 0.7], [0.1, 0.2, 0.1], nan]])  # stopped after length 20
    fig = success_length_figure([10, 20, 40], F, labels=["RNN"])  # no warning either
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["2/3", "0/3"]
    plt.close(fig)


def test_gradient_distance_figure_two_log_panels():
    d = [0, 1, 3, 9]
    fig = gradient_distance_figure(d, np.ones((2, 4)), np.full((2, 4), np.nan),
                                   labels=["RNN", "GRU"])
    assert len(fig.axes) == 2 and all(a.get_yscale() == "log" for a in fig.axes)
    assert [a.get_title() for a in fig.axes] == ["at initialisation", "after training"]
    plt.close(fig)


def test_lr_grid_figure_one_panel_per_model():
    grids = [[1e-3, 3e-3, 1e-2], [1e-4, 3e-4, 1e-3, 3e-3]]
    scores = [np.random.default_rng(0).uniform(size=(3, 2, 5)),
              np.random.default_rng(1).uniform(size=(4, 2, 5))]
    fig = lr_grid_figure(grids, scores, labels=["LSTM", "IRNN"], lengths=[10, 20],
                         chosen=[3e-3, 3e-4])
    assert len(fig.axes) == 2 and fig.axes[1].get_title() == "IRNN"
    plt.close(fig)


def test_sweep_plot_errors_are_clear():
    with pytest.raises(ValueError, match="one entry per model"):
        success_length_figure([10, 20], np.ones((2, 2, 3)), labels=["a"])
    with pytest.raises(ValueError, match="fractions must be"):
        success_length_figure([10, 20], np.ones((2, 3, 3)), labels=["a", "b"])
    with pytest.raises(TypeError, match="torch|NumPy|floats"):
        success_length_figure([10, 20], [["x", "y"]], labels=["a"])
    with pytest.raises(ValueError, match="final_norms"):
        gradient_distance_figure([0, 1], np.ones((1, 2)), np.ones((1, 3)), labels=["a"])
    with pytest.raises(ValueError, match=r"scores\[0\]"):
        lr_grid_figure([[1e-3, 1e-2]], [np.ones((3, 1, 2))], labels=["a"], lengths=[10])


def test_a_model_keeps_its_colour_whichever_subset_is_drawn():
    import numpy as np
    from matplotlib.colors import to_hex

    from companion.plots.sweeps import gradient_distance_figure, success_length_figure

    def colours(fig):
        ax = fig.axes[0]
        return {line.get_label(): to_hex(line.get_color()) for line in ax.get_lines()
                if not line.get_label().startswith("_")}

    F = np.full((3, 2, 5), 0.5)
    a = colours(success_length_figure([10, 20], F, labels=["RNN", "IRNN", "GRU"],
                                      threshold=None))
    b = colours(success_length_figure([10, 20], F[:2], labels=["LSTM", "GRU"], threshold=None))
    g = np.ones((2, 3))
    c = colours(gradient_distance_figure([0, 1, 2], g, g, labels=["GRU", "RNN"]))
    gru = {v for k, v in {**a, **b, **c}.items() if k.startswith("GRU")}
    rnn = {v for k, v in {**a, **c}.items() if k.startswith("RNN")}
    assert len(gru) == 1 and len(rnn) == 1 and gru != rnn


def test_one_colour_per_model_across_figures():
    from matplotlib.colors import to_rgba

    from companion.plots.dynamics import curves_figure
    from companion.plots.gradients import clipping_figure
    from companion.plots.sweeps import model_color
    from companion.plots.training import scaling_figure

    F = np.array([[[1.0, 1.0]], [[0.5, 1.0]]])                # LSTM, GRU: one length
    sweep_fig = success_length_figure([10], F, labels=["LSTM", "GRU"])
    sweep_cols = [to_rgba(line.get_color()) for line in sweep_fig.axes[0].get_lines()[:2]]
    assert sweep_cols == [model_color("LSTM"), model_color("GRU")]
    cols = [model_color("LSTM"), model_color("GRU"), model_color("GRU")]
    fig = curves_figure(np.arange(30.0), np.ones((3, 30)), labels=["a", "b", "c"], xlabel="",
                        ylabel="", colors=cols, styles=["-", "--", ":"], markers=["o", "s", "^"])
    lines = fig.axes[0].get_lines()
    assert [to_rgba(ln.get_color()) for ln in lines] == cols
    assert [ln.get_linestyle() for ln in lines] == ["-", "--", ":"]
    assert [ln.get_marker() for ln in lines] == ["o", "s", "^"]
    fig2 = clipping_figure(np.ones((2, 20)), labels=["LSTM", "GRU"], colors=cols[:2])
    assert [to_rgba(ln.get_color()) for ln in fig2.axes[0].get_lines()[:2]] == cols[:2]
    fig3 = scaling_figure([1.0, 2.0, 3.0], [[1.0, 2.0, 3.0], [1.0, 3.0, 2.0]], labels=["m", "t"],
                          xlabel="", ylabels=["", ""], fit=[True, False])
    assert [len(ax.get_lines()) for ax in fig3.axes] == [2, 1]       # no line fit on "t"
    with pytest.raises(ValueError, match="one entry per curve"):
        curves_figure([0.0, 1.0], np.ones((2, 2)), labels=["a", "b"], xlabel="", ylabel="",
                      colors=["red"])
    with pytest.raises(ValueError, match="colors must have one entry per run"):
        clipping_figure(np.ones((2, 5)), labels=["a", "b"], colors="red")
    with pytest.raises(ValueError, match="fit must be one bool"):
        scaling_figure([1.0, 2.0], [[1.0, 2.0]], labels=["m"], xlabel="", ylabels=[""],
                       fit=[True, False])
    with pytest.raises(ValueError, match="label must be one of"):
        model_color("vanilla RNN")
    plt.close("all")
