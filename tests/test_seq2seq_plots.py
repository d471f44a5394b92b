"""Chapter 8 figures: they draw what they are given and refuse bad input clearly."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from companion.plots.seq2seq import encoder_decoder_figure, length_curves_figure  # noqa: E402


@pytest.mark.parametrize("context", ["init", "input", "both"])
def test_encoder_decoder_figure(context):
    fig = encoder_decoder_figure(["3", "Mar", "21"], list("2021"), context=context)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "$C$" in texts and "<eos>" in texts and "<bos>" in texts
    assert sum(t.startswith("$h'") for t in texts) == 5 and sum(t.startswith("$h^") for t in texts) == 3
    plt.close(fig)


def test_length_curves_figure_draws_medians_and_bands():
    lengths = [4, 6, 8]
    vals = np.array([[1.0, 0.5, 0.2], [0.8, 0.7, 0.0], [0.9, 0.6, 0.1]])
    fig = length_curves_figure(lengths, {"a": {"token accuracy": vals, "exact match": vals}},
                               train_range=(4, 6), baseline={"token accuracy": [0.1] * 3})
    ax = fig.axes[0]
    line = [ln for ln in ax.lines if ln.get_label() == "a"][0]
    assert np.allclose(line.get_ydata(), [0.9, 0.6, 0.1])
    assert any(ln.get_label() == "positional majority" for ln in ax.lines)
    assert len(fig.axes) == 2
    plt.close(fig)


def test_figure_errors():
    with pytest.raises(TypeError, match="src must be a non-empty list of token strings"):
        encoder_decoder_figure("3 Mar", ["2"])
    with pytest.raises(ValueError, match="context must be 'init', 'input' or 'both'"):
        encoder_decoder_figure(["a"], ["b"], context="attention")
    with pytest.raises(ValueError, match="must be \\(seeds, 3\\)"):
        length_curves_figure([4, 6, 8], {"a": {"token accuracy": np.zeros((2, 2)),
                                               "exact match": np.zeros((2, 3))}})
    with pytest.raises(ValueError, match="no entry for metric 'exact match'"):
        length_curves_figure([4, 6, 8], {"a": {"token accuracy": np.zeros((2, 3))}})
    with pytest.raises(TypeError, match="curves must be a non-empty dict"):
        length_curves_figure([4, 6], {})
    with pytest.raises(ValueError, match="at least two entries"):
        length_curves_figure([4], {"a": {}})
    with pytest.raises(ValueError, match="must be finite"):
        length_curves_figure([4, 6], {"a": {"token accuracy": [[np.nan, 1.0]],
                                            "exact match": [[0.0, 1.0]]}})


def test_length_curves_figure_styles():
    vals = np.array([[1.0, 0.5], [0.8, 0.7]])
    data = {"token accuracy": vals, "exact match": vals}
    fig = length_curves_figure([4, 6], {"a": data, "b": data},
                               styles={"a": {"color": "tab:red", "linestyle": "--",
                                             "marker": "s"}})
    lines = {ln.get_label(): ln for ln in fig.axes[0].lines}
    assert lines["a"].get_linestyle() == "--" and lines["a"].get_marker() == "s"
    assert lines["a"].get_color() == "tab:red"
    assert lines["b"].get_linestyle() == "-" and lines["b"].get_marker() == "o"
    plt.close(fig)
    with pytest.raises(ValueError, match="styles has labels that are not in curves"):
        length_curves_figure([4, 6], {"a": data}, styles={"c": {"color": "k"}})
    with pytest.raises(TypeError, match="styles must be a dict"):
        length_curves_figure([4, 6], {"a": data}, styles=["a"])
