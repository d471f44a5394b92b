"""The symbol table of the course: math symbol <-> code name <-> torch attribute.

The book follows Goodfellow, Bengio & Courville (2016), chapter 10. Matrices are
stored as in the math, (out, in), which is also torch's orientation, so weights
copy between NumPy, the from-scratch torch modules and ``torch.nn.RNN`` without a
transpose. torch keeps two biases, ``bias_ih_l0`` and ``bias_hh_l0``; the book's
``b`` is their sum.

The notation page of the book renders :data:`SYMBOLS` directly, so the page and
the code cannot drift apart.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["SYMBOLS", "DIMENSIONS", "Symbol", "markdown_table", "lookup"]


class Symbol(NamedTuple):
    """One row of the symbol table."""

    math: str  #: LaTeX, as written in the book (column-vector convention)
    code: str  #: name in ``companion`` code (batch-first arrays)
    shape: str  #: shape in code
    torch: str  #: the matching ``torch.nn.RNN`` attribute or tensor, if any
    meaning: str  #: one line


#: Sizes used in shapes.
DIMENSIONS: dict[str, str] = {
    "N": "batch size (number of sequences processed together)",
    "T": "sequence length, written $\\tau$ in the book",
    "D": "input size (e.g. vocabulary size for one-hot characters)",
    "H": "hidden-state size",
    "K": "output size (e.g. number of classes)",
}

#: Every symbol of the book, in the order of the notation page.
SYMBOLS: tuple[Symbol, ...] = (
    Symbol(r"$\boldsymbol{x}^{(t)}$", "x[:, t-1]", "(N, D)", "input[:, t-1]",
           "input at time $t$ (the whole sequence `x` is (N, T, D))"),
    Symbol(r"$\boldsymbol{h}^{(t)}$", "h[:, t-1]", "(N, H)", "output[:, t-1]",
           "hidden state at time $t$"),
    Symbol(r"$\boldsymbol{h}^{(0)}$", "h0", "(N, H)", "h_0[0]",
           "initial state (zeros unless said otherwise)"),
    Symbol(r"$\boldsymbol{a}^{(t)}$", "a[:, t-1]", "(N, H)", "-",
           "pre-activation: $\\boldsymbol{b} + W\\boldsymbol{h}^{(t-1)} + U\\boldsymbol{x}^{(t)}$"),
    Symbol(r"$\boldsymbol{o}^{(t)}$", "o[:, t-1]", "(N, K)", "-",
           "output logits, $\\boldsymbol{c} + V\\boldsymbol{h}^{(t)}$ (never the LSTM's output "
           "gate, which is $\\boldsymbol{q}^{(t)}$)"),
    Symbol(r"$\hat{\boldsymbol{y}}^{(t)}$", "y_hat[:, t-1]", "(N, K)", "-",
           "predicted distribution, $\\mathrm{softmax}(\\boldsymbol{o}^{(t)})$"),
    Symbol(r"$y^{(t)}$", "y[:, t-1]", "(N,)", "-", "target class index at time $t$"),
    Symbol(r"$U$", "U", "(H, D)", "weight_ih_l0", "input-to-hidden weights"),
    Symbol(r"$W$", "W", "(H, H)", "weight_hh_l0", "hidden-to-hidden (recurrent) weights"),
    Symbol(r"$V$", "V", "(K, H)", "Linear.weight", "hidden-to-output weights"),
    Symbol(r"$\boldsymbol{b}$", "b", "(H,)", "bias_ih_l0 + bias_hh_l0",
           "hidden bias (torch splits it in two)"),
    Symbol(r"$\boldsymbol{c}$", "c", "(K,)", "Linear.bias",
           "output bias (never the LSTM's cell state, which is $\\boldsymbol{s}^{(t)}$)"),
    Symbol(r"$L$", "loss", "()", "-", "loss summed over time steps (and averaged over the batch)"),
    Symbol(r"$m_{n,t}$", "mask[n, t-1]", "(N, T)", "-",
           "mask: 1 for a real step, 0 for padding (chapter 3)"),
    Symbol(r"$\nabla_{W} L$", "dW", "(H, H)", "weight_hh_l0.grad",
           "gradient of the loss; same shape as the parameter"),
    Symbol(r"$\boldsymbol{\delta}^{(t)}$", "da[:, t-1]", "(N, H)", "-",
           "gradient at the pre-activation, $\\nabla_{\\boldsymbol{a}^{(t)}} L$ (chapter 4)"),
    Symbol(r"$\boldsymbol{s}^{(t)}$", "s[t]", "(S,)", "-",
           "state of a generic dynamical system (chapters 1-2); `s[0]` is the initial state"),
    Symbol(r"$\tau$", "T", "int", "-", "number of time steps (sequence length)"),
    Symbol(r"$k$", "k", "int", "-", "chunk length of truncated BPTT (chapter 4)"),
    Symbol(r"$d$", "delay", "int", "-",
           "delay of a skip connection through time, $\\boldsymbol{h}^{(t-d)} \\to "
           "\\boldsymbol{h}^{(t)}$ (chapter 5); not the input size $D$"),
    Symbol(r"$\alpha$", "alpha", "() or (H,)", "-",
           "self-connection weight of a leaky unit (chapter 5)"),
    Symbol(r"$\rho(W)$", "spectral_radius(W)", "()", "-",
           "spectral radius: the largest modulus of an eigenvalue of $W$"),
    Symbol(r"$\kappa$", "temperature", "float > 0", "-",
           "sampling temperature, $\\mathrm{softmax}(\\boldsymbol{o}/\\kappa)$ (chapter 3); "
           "never $T$"),
    Symbol(r"$\mathrm{PPL}$", "2 ** bpc", "()", "-",
           "perplexity per character, $2^{\\mathrm{bpc}} = e^{\\ell}$ with $\\ell$ the mean "
           "loss per character in nats (chapter 3)"),
    Symbol(r"$\boldsymbol{i}^{(t)}$", "i", "(N, H)", "gate block i (rows 0:H)",
           "LSTM input gate (Goodfellow et al. write $g^{(t)}$)"),
    Symbol(r"$\boldsymbol{f}^{(t)}$", "f", "(N, H)", "gate block f (rows H:2H)",
           "LSTM forget gate"),
    Symbol(r"$\tilde{\boldsymbol{s}}^{(t)}$", "g", "(N, H)", "gate block g (rows 2H:3H)",
           "LSTM candidate cell content, a $\\tanh$ of its own pre-activation"),
    Symbol(r"$\boldsymbol{q}^{(t)}$", "q", "(N, H)", "gate block o (rows 3H:4H)",
           "LSTM output gate (torch's o; Goodfellow et al. also write $q^{(t)}$)"),
    Symbol(r"$\boldsymbol{s}^{(t)}$ (LSTM)", "s", "(N, H)", "c_n (the cell state)",
           "LSTM cell state (torch's c; Goodfellow et al. also write $s^{(t)}$): "
           "$\\boldsymbol{f} \\odot \\boldsymbol{s}^{(t-1)} + \\boldsymbol{i} \\odot "
           "\\tilde{\\boldsymbol{s}}^{(t)}$"),
    Symbol(r"$\boldsymbol{r}^{(t)}$", "r", "(N, H)", "gate block r (rows 0:H)",
           "GRU reset gate"),
    Symbol(r"$\boldsymbol{z}^{(t)}$", "z", "(N, H)", "gate block z (rows H:2H)",
           "GRU update gate (Goodfellow et al. write $u^{(t)}$)"),
    Symbol(r"$\tilde{\boldsymbol{h}}^{(t)}$", "n", "(N, H)", "gate block n (rows 2H:3H)",
           "GRU candidate state (torch's n)"),
    Symbol(r"$\boldsymbol{C}$", "context", "(N, H)", "h_n[-1] of the encoder",
           "context: the encoder's summary of the source, handed to the decoder (chapters 3, 8)"),
    Symbol(r"$\boldsymbol{h}'^{(t)}$", "h_dec[:, t-1]", "(N, H')", "-",
           "decoder state of an encoder-decoder (chapters 3, 7, 8, 9); primed letters "
           "($U'$, $W'$, $H'$) are the decoder's"),
    Symbol(r"$\boldsymbol{e}(y)$", "embedding(y)", "(N, E)", "Embedding.weight[y]",
           "embedding of token $y$ (chapter 8; chapter 9 writes $E\\boldsymbol{y}$, "
           "because $e$ names the scores there)"),
    Symbol(r"$e_{t,j}$", "scores[:, t-1, j-1]", "(N, T_out, T_in)", "-",
           "attention score of source position $j$ for output step $t$ (chapter 9)"),
    Symbol(r"$\alpha_{t,j}$", "weights[:, t-1, j-1]", "(N, T_out, T_in)",
           "attn_output_weights", "attention weight: the masked softmax of $e_{t,\\cdot}$ "
           "over $j$ (chapter 9); always two subscripts, unlike the leak $\\alpha$"),
    Symbol(r"$\boldsymbol{C}^{(t)}$", "context[:, t-1]", "(N, H)", "-",
           "the context at output step $t$, $\\sum_j \\alpha_{t,j} \\boldsymbol{h}^{(j)}$ "
           "(chapter 9)"),
    Symbol(r"$W_e, U_e, \boldsymbol{v}_e$", "W_e, U_e, v_e", "(A, H'), (A, H), (A,)", "-",
           "parameters of the additive score $\\boldsymbol{v}_e^\\top \\tanh(W_e "
           "\\boldsymbol{h}' + U_e \\boldsymbol{h})$ (chapter 9)"),
    Symbol(r"$G$", "G", "(H', H)", "-", "matrix of the general score "
           "$\\boldsymbol{h}'^\\top G \\boldsymbol{h}$ (chapter 9)"),
    Symbol(r"$\zeta$", "zoneout", "float in [0, 1)", "-",
           "zoneout rate: the probability that a unit keeps its previous value (chapter 12)"),
    Symbol(r"$\boldsymbol{\theta}$", "params", "(P,)", "-",
           "all parameters of a model, flattened (chapter 12, learning online)"),
    Symbol(r"$J^{(t)}$", "J", "(H, P)", "-", "influence matrix "
           "$\\partial \\boldsymbol{h}^{(t)} / \\partial \\boldsymbol{\\theta}$ carried by "
           "RTRL (chapter 12)"),
    Symbol(r"$\Lambda^{(t)}$", "diag(1 - h**2)", "(H, H)", "-",
           "$\\mathrm{diag}(1 - \\boldsymbol{h}^{(t)} \\odot \\boldsymbol{h}^{(t)})$, the "
           "derivative of tanh (chapters 4, 12)"),
    Symbol(r"$\boldsymbol{\alpha}^{(t)}, \boldsymbol{\beta}^{(t)}$", "a, b", "(N, T, H)",
           "-", "transition and offset of a diagonal linear recurrence "
           "$\\boldsymbol{h}^{(t)} = \\boldsymbol{\\alpha}^{(t)} \\odot \\boldsymbol{h}^{(t-1)} "
           "+ \\boldsymbol{\\beta}^{(t)}$ (chapter 12; the leak $\\alpha$ of chapter 5 is the "
           "constant case)"),
    Symbol(r"$\boldsymbol{\lambda}$", "lam", "(H,) complex", "-",
           "diagonal of the LRU's recurrence, $\\exp(-e^{\\nu} + i e^{\\theta})$ with its "
           "own $\\nu, \\theta$ (chapter 12, scans page only)"),
)


def lookup(code: str) -> Symbol:
    """Return the row whose code name is ``code`` (e.g. ``"W"``).

    Raises ``TypeError`` for a non-string and ``KeyError`` (listing the known names)
    for an unknown one.
    """
    if not isinstance(code, str):
        raise TypeError(f"code must be a str such as 'W'; got {type(code).__name__} {code!r}.")
    for sym in SYMBOLS:
        if sym.code == code:
            return sym
    names = ", ".join(s.code for s in SYMBOLS)
    raise KeyError(f"no symbol with code name {code!r}; known: {names}.")


def markdown_table() -> str:
    """The symbol table as a Markdown table (what the notation page displays)."""
    lines = [
        "| math | code | shape in code | torch | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in SYMBOLS:
        torch_name = f"`{s.torch}`" if s.torch != "-" else "-"
        lines.append(f"| {s.math} | `{s.code}` | {s.shape} | {torch_name} | {s.meaning} |")
    return "\n".join(lines)
