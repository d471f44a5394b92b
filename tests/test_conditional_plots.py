"""Diagrams and training plots: they draw, label, and refuse bad settings."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from companion.plots.conditional import (  # noqa: E402
    CONDITIONAL_KINDS,
    PATTERN_KINDS,
    conditional_diagram,
    conditional_types_figure,
    graphical_model_figure,
    pattern_diagram,
)
from companion.plots.training import linear_fit, loss_curve_figure, scaling_figure  # noqa: E402


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]


@pytest.mark.parametrize("kind", CONDITIONAL_KINDS)
def test_conditional_diagrams(kind):
    fig = conditional_diagram(kind, tau=4)
    assert isinstance(fig, Figure)
    texts = _texts(fig)
    assert any("h^{(4)}" in t for t in texts)
    if kind == "seq2seq":
        assert "$C$" in texts and any("h'^{(3)}" in t for t in texts)
    plt.close(fig)


@pytest.mark.parametrize("kind", PATTERN_KINDS)
def test_pattern_diagrams(kind):
    fig = pattern_diagram(kind, tau=3)
    texts = _texts(fig)
    n_losses = sum(t.startswith("$L") for t in texts)
    assert n_losses == (1 if kind == "sequence-to-vector" else 3)
    plt.close(fig)


def test_grid_and_graphical_model():
    fig = conditional_types_figure()
    assert len(fig.axes) == 4
    plt.close(fig)
    fig = graphical_model_figure(tau=5)
    assert "10 edges" in fig.axes[0].get_title()
    plt.close(fig)


def test_bad_settings():
    with pytest.raises(ValueError, match="kind must be one of"):
        conditional_diagram("seq2tree")
    with pytest.raises(ValueError, match="kind must be one of"):
        pattern_diagram("output-to-output")
    with pytest.raises(ValueError, match="tau must be between 2 and 8"):
        pattern_diagram("hidden-to-hidden", tau=20)
    with pytest.raises(TypeError, match="tau must be an int"):
        conditional_diagram("aligned", tau=2.5)


def test_loss_curve_and_scaling():
    steps = np.arange(1, 101.0)
    fig = loss_curve_figure(steps, 5 / np.sqrt(steps), eval_steps=[50.0, 100.0],
                            eval_values=[1.0, 0.7], baseline=2.0, ylabel="bits per character",
                            smooth=10)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "training step" and ax.get_ylabel() == "bits per character"
    assert len(ax.lines) == 3
    plt.close(fig)
    x = np.array([1.0, 2, 4, 8])
    fig = scaling_figure(x, np.vstack([3 * x, 2 * x + 1]), labels=["a", "b"], xlabel=r"$\tau$",
                         ylabels=["bytes", "seconds"])
    assert len(fig.axes) == 2
    assert "R^2$ = 1.000" in fig.axes[0].get_legend().get_texts()[1].get_text()
    plt.close(fig)
    assert linear_fit(x, 3 * x + 2) == pytest.approx((3.0, 2.0, 1.0))
    with pytest.raises(ValueError, match="given together"):
        loss_curve_figure(steps, steps, eval_steps=[1.0])
    with pytest.raises(ValueError, match=r"train must be \(S=100,?\); got \(5,\)"):
        loss_curve_figure(steps, steps[:5])
    with pytest.raises(ValueError, match="one entry per row"):
        scaling_figure(x, x, labels=["a", "b"], xlabel="", ylabels=["y"])
    with pytest.raises(ValueError, match="at least 2 points"):
        linear_fit([1.0], [2.0])


def test_temperature_figure():
    from companion.plots.training import temperature_figure

    logits = np.array([2.0, 1.0, 0.0, -1.0, -3.0])
    fig = temperature_figure(logits, list("ab $\n"), [0.5, 1.0, 4.0], top=3)
    assert len(fig.axes) == 3
    # the top-3 mass falls as the temperature rises
    masses = [float(ax.get_title().split("mass ")[1]) for ax in fig.axes]
    assert masses[0] > masses[1] > masses[2]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a", "b", "␣"]
    plt.close(fig)
    with pytest.raises(ValueError, match="one entry per logit"):
        temperature_figure(logits, list("ab"), [1.0])
    with pytest.raises(ValueError, match="positive numbers"):
        temperature_figure(logits, list("abcde"), [0.0])


def test_vec2seq_variants_differ_by_the_feedback_edges():
    from companion.plots.conditional import vec2seq_variants_figure

    fig = vec2seq_variants_figure(tau=3)
    left, right = fig.axes
    assert "no feedback" in left.get_title() and "fed back" in right.get_title()
    # the feedback panel has exactly tau - 1 more arrows: y^(t) -> h^(t+1)
    assert len(right.patches) - len(left.patches) == 2
    plt.close(fig)
    with pytest.raises(ValueError, match="tau must be between 2 and 5"):
        vec2seq_variants_figure(tau=7)


def test_seq2seq_decoder_feeds_its_outputs_back():
    """The encoder-decoder panel draws y^(j) -> h'^(j+1): arrows that go down and right."""
    from matplotlib.patches import FancyArrowPatch

    fig = conditional_diagram("seq2seq", tau=4)  # decoder of max(2, tau - 1) = 3 steps
    ax = fig.axes[0]
    downward = [p for p in ax.patches if isinstance(p, FancyArrowPatch)
                and p._posA_posB[1][1] < p._posA_posB[0][1] - 0.5
                and p._posA_posB[1][0] > p._posA_posB[0][0]]
    assert len(downward) == 2
    plt.close(fig)
