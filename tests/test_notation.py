"""The symbol table: consistent with the code's shapes and torch's attributes."""

import numpy as np
import pytest

from companion import notation


def test_every_parameter_has_a_row_with_out_in_shape():
    shapes = {s.code: s.shape for s in notation.SYMBOLS}
    assert shapes["U"] == "(H, D)" and shapes["W"] == "(H, H)" and shapes["V"] == "(K, H)"
    assert shapes["b"] == "(H,)" and shapes["c"] == "(K,)"


def test_torch_attributes_exist_with_the_stated_shapes():
    torch = pytest.importorskip("torch")
    rnn = torch.nn.RNN(3, 4, batch_first=True)
    for code, expected in [("U", (4, 3)), ("W", (4, 4))]:
        attr = notation.lookup(code).torch
        assert tuple(getattr(rnn, attr).shape) == expected
    b_attrs = notation.lookup("b").torch.split(" + ")
    assert all(tuple(getattr(rnn, a).shape) == (4,) for a in b_attrs)


def test_markdown_table_lists_every_symbol():
    table = notation.markdown_table()
    assert table.count("\n") == len(notation.SYMBOLS) + 1
    assert "`weight_hh_l0`" in table


def test_lookup_unknown_name():
    with pytest.raises(KeyError, match="no symbol with code name 'Q'"):
        notation.lookup("Q")


def test_dimensions_cover_the_shapes():
    letters = set("".join(s.shape for s in notation.SYMBOLS)) & set("NTDHKS")
    assert letters - {"S"} <= set(notation.DIMENSIONS)
    assert np.all([len(v) > 0 for v in notation.DIMENSIONS.values()])


def test_lookup_non_string():
    with pytest.raises(TypeError, match=r"code must be a str such as 'W'; got int 3"):
        notation.lookup(3)
