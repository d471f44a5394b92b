"""Plots are pure functions returning Figures; widgets wrap them."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch, Rectangle  # noqa: E402

from companion import plots  # noqa: E402


def _count(fig, kind):
    return sum(isinstance(p, kind) for ax in fig.axes for p in ax.patches)


@pytest.mark.parametrize("tau", [1, 3, 8])
def test_unrolled_graph_has_one_column_per_step(tau):
    fig = plots.unrolled_graph(tau, with_loss=True)
    assert isinstance(fig, Figure)
    # nodes: h0 + tau * (x, h, o, L); edges: tau * (W, U, V, o->L)
    assert _count(fig, Circle) == 1 + 4 * tau
    assert _count(fig, FancyArrowPatch) == 4 * tau
    labels = {t.get_text() for t in fig.axes[0].texts}
    assert f"$h^{{({tau})}}$" in labels and "$h^{(0)}$" in labels
    plt.close(fig)


def test_unrolled_autonomous_system_has_only_states():
    fig = plots.unrolled_graph(5, state="s", with_input=False, with_output=False)
    assert _count(fig, Circle) == 6 and _count(fig, FancyArrowPatch) == 5
    plt.close(fig)


def test_circuit_diagram_has_the_delay_square():
    fig = plots.circuit_diagram()
    assert _count(fig, Rectangle) == 1  # the delay
    assert _count(fig, Circle) == 3
    plt.close(fig)


def test_unfolding_figure_combines_both():
    fig = plots.unfolding_figure(3)
    assert _count(fig, Rectangle) == 1 and _count(fig, Circle) == 3 + 1 + 3 * 3
    plt.close(fig)


def test_graph_argument_errors():
    with pytest.raises(ValueError, match="tau must be at most 30"):
        plots.unrolled_graph(31)
    with pytest.raises(ValueError, match="tau must be an int >= 1; got 0"):
        plots.unrolled_graph(0)
    with pytest.raises(ValueError, match="state must be 'h'"):
        plots.circuit_diagram(state="z")


def test_trajectory_and_curves_figures():
    states = np.cumsum(np.ones((3, 11, 2)), axis=1)
    fig = plots.trajectory_figure(states, labels=["a", "b", "c"])
    assert len(fig.axes) == 2 and len(fig.axes[1].lines) == 3
    assert fig.axes[1].get_xlabel() == "time step $t$"
    plt.close(fig)
    fig = plots.curves_figure([1, 2, 3], [[1, 2, 3], [3, 2, 1]], labels=["up", "down"],
                              xlabel="x", ylabel="y", hline=2.0, hline_label="ref")
    assert len(fig.axes[0].lines) == 3
    plt.close(fig)
    with pytest.raises(ValueError, match=r"ys must be \(C, P=3\); got \(1, 2\)"):
        plots.curves_figure([1, 2, 3], [1, 2], labels=["a"], xlabel="x", ylabel="y")
    with pytest.raises(ValueError, match="labels must have one entry per trajectory"):
        plots.trajectory_figure(states, labels=["a"])
    with pytest.raises(ValueError, match=r"states must be \(M, T1, 2\)"):
        plots.trajectory_figure(np.zeros((5, 3)))


def test_widgets_build_and_redraw():
    pytest.importorskip("ipywidgets")
    from companion.widgets import dynamics_explorer, unrolling_explorer
    from companion.widgets.unfolding import rotation_system

    w = dynamics_explorer()
    assert [c.description for c in w.children[:3]] == ["radius ρ", "angle (°)", "apply tanh"]
    w.children[0].value = 1.1  # triggers a redraw through the same plot function
    u = unrolling_explorer()
    u.children[0].value = 7
    f, W = rotation_system(0.8, 30)
    assert np.isclose(max(abs(np.linalg.eigvals(W))), 0.8)
    plt.close("all")


def test_temperature_explorer_redraws_and_validates():
    pytest.importorskip("ipywidgets")
    from companion.widgets import temperature_explorer

    w = temperature_explorer(np.array([2.0, 1.0, 0.0]), ["a", "b", "c"])
    assert w.children[0].description == "κ (temp.)"
    w.children[0].value = 3.0
    with pytest.raises(ValueError, match="labels must have one entry per logit"):
        temperature_explorer(np.array([2.0, 1.0, 0.0]), ["a", "b"])
    plt.close("all")


def test_trajectory_figure_log_norm_and_legends():
    states = np.stack([np.c_[0.5 ** np.arange(6), np.zeros(6)],
                       np.c_[2.0 ** np.arange(6), np.zeros(6)]])
    fig = plots.trajectory_figure(states, labels=["decay", "growth"], log_norm=True)
    ax_plane, ax_norm = fig.axes
    assert ax_norm.get_yscale() == "log" and ax_plane.get_yscale() == "linear"
    # both panels carry the legend, one entry per trajectory
    for ax in (ax_plane, ax_norm):
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["decay", "growth"]
    plt.close(fig)
    fig = plots.trajectory_figure(states)
    assert fig.axes[1].get_yscale() == "linear" and fig.axes[0].get_legend() is None
    plt.close(fig)


def test_trajectory_figure_plane_lim_and_line_styles():
    """plane_lim frames the plane panel; several paths differ by line style, not only colour."""
    t = np.arange(41)
    states = np.stack([np.c_[r ** t, np.zeros(41)] for r in (0.85, 1.0, 1.1)])
    fig = plots.trajectory_figure(states, labels=["a", "b", "c"], plane_lim=3.0)
    ax_plane, ax_norm = fig.axes
    assert ax_plane.get_xlim() == (-3.0, 3.0) and ax_plane.get_ylim() == (-3.0, 3.0)
    styles = {line.get_linestyle() for line in ax_norm.get_lines()}
    assert len(styles) == 3
    plt.close(fig)
    for bad in (0, -1.0, float("nan"), "3"):
        with pytest.raises(ValueError, match="plane_lim"):
            plots.trajectory_figure(states, plane_lim=bad)
