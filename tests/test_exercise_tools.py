"""The two tools every checker relies on: references_disabled and unseen_rng."""

import numpy as np
import pytest

import companion.scratch.attention as attention
from companion.exercises import DelegationError, references_disabled, unseen_rng
from companion.scratch.attention import alignment_accuracy

PATH = "companion.scratch.attention.alignment_accuracy"


def delegating(weights, gold):
    return alignment_accuracy(weights, gold)  # found through this module's globals


def via_module(weights, gold):
    return attention.alignment_accuracy(weights, gold)


def own(weights, gold):
    return float(np.mean([weights[i].argmax() == j for i, j in gold]))


@pytest.mark.parametrize("answer", [delegating, via_module])
def test_delegation_is_refused_and_restored(answer):
    w = np.eye(3)
    with references_disabled(answer, PATH):
        with pytest.raises(DelegationError, match="alignment_accuracy"):
            answer(w, [(0, 0)])
        assert own(w, [(0, 0)]) == 1.0
    assert attention.alignment_accuracy is alignment_accuracy
    assert globals()["alignment_accuracy"] is alignment_accuracy


def test_restored_when_the_block_raises():
    with pytest.raises(RuntimeError):
        with references_disabled(delegating, PATH):
            raise RuntimeError("boom")
    assert attention.alignment_accuracy is alignment_accuracy


def test_torch_reference_can_be_disabled():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    sdpa = F.scaled_dot_product_attention
    with references_disabled(own, "torch.nn.functional.scaled_dot_product_attention"):
        with pytest.raises(DelegationError):
            F.scaled_dot_product_attention(torch.ones(1, 1, 2), torch.ones(1, 1, 2), torch.ones(1, 1, 2))
    assert F.scaled_dot_product_attention is sdpa


def test_bad_path_is_named():
    with pytest.raises(ValueError, match="cannot import"):
        with references_disabled(own, "companion.nowhere.thing"):
            pass


def test_unseen_rng_differs_between_calls():
    draws = {float(unseen_rng().normal()) for _ in range(5)}
    assert len(draws) == 5


def test_the_reference_itself_as_the_answer_is_refused():
    import functools

    for answer in (alignment_accuracy, functools.partial(alignment_accuracy)):
        with pytest.raises(DelegationError, match="already holds"):
            with references_disabled(answer, PATH):
                pass
    assert attention.alignment_accuracy is alignment_accuracy


def test_a_reference_held_in_a_closure_is_refused():
    def make():
        from companion.scratch.attention import alignment_accuracy as hidden

        def helper(w, gold):
            return hidden(w, gold)

        def answer(w, gold):
            return helper(w, gold)
        return answer

    answer = make()
    with references_disabled(answer, PATH):
        with pytest.raises(DelegationError):
            answer(np.eye(2), [(0, 0)])
    assert answer(np.eye(2), [(0, 0)]) == 1.0  # restored


def test_a_reference_held_in_a_default_argument_or_a_container_is_refused():
    def by_default(w, gold, _f=alignment_accuracy):
        return _f(w, gold)

    table = {"f": alignment_accuracy}

    def by_table(w, gold):
        return table["f"](w, gold)

    for answer in (by_default, by_table):
        with references_disabled(answer, PATH):
            with pytest.raises(DelegationError, match="alignment_accuracy, which already holds"):
                answer(np.eye(2), [(0, 0)])
        assert answer(np.eye(2), [(0, 0)]) == 1.0  # the function works again afterwards
    assert by_default.__defaults__[0] is alignment_accuracy


# ---- shared helpers: existing, TORCH_AUTOGRAD, torch_refused --------------------------

def test_existing_keeps_only_the_names_this_installation_has():
    from companion.exercises import existing

    assert existing("numpy.linalg.norm", "numpy.no_such_name", "no_such_module.f") == (
        "numpy.linalg.norm",)
    assert existing() == ()


def test_torch_autograd_names_exist_in_part_and_include_the_main_entry_points():
    from companion.exercises import TORCH_AUTOGRAD, existing

    found = existing(*TORCH_AUTOGRAD)
    assert {"torch.autograd.grad", "torch.autograd.backward"} <= set(found)


def test_torch_refused_refuses_ops_under_any_name_and_restores_after():
    import pytest
    import torch

    from companion.exercises import DelegationError, torch_refused

    x = torch.randn(3, 4, dtype=torch.float64)
    with torch_refused(("log_softmax", "_log_softmax")):
        for call in (lambda: torch.log_softmax(x, 1), lambda: x.log_softmax(1),
                     lambda: torch.ops.aten._log_softmax(x, 1, False)):
            with pytest.raises(DelegationError, match="log_softmax"):
                call()
        torch.exp(x)  # other operations run
    torch.log_softmax(x, 1)  # restored


def test_torch_refused_autograd_and_engine_refuse_and_restore_also_after_a_raise():
    import pytest
    import torch
    from torch.autograd.variable import Variable

    from companion.exercises import DelegationError, torch_refused

    w = torch.randn(3, dtype=torch.float64, requires_grad=True)
    with torch_refused(autograd=True):
        with pytest.raises(DelegationError, match="autograd"):
            (w * w).sum()
    engine = Variable._execution_engine
    y = (w * w).sum()
    with pytest.raises(DelegationError, match="Write the derivative yourself"):
        with torch_refused(engine=True, engine_advice="Write the derivative yourself."):
            y.backward()
    assert Variable._execution_engine is engine
    (w * w).sum().backward()  # restored
    assert torch.allclose(w.grad, 2 * w.detach())


def test_finite_returns_floats_and_fails_on_nan_inf_shape_and_non_numbers():
    from companion.exercises import finite

    assert finite([1, 2], "x", (2,)).dtype == float
    for bad, shape, words in (([1.0, np.nan], None, "NaN or inf"), ([np.inf], None, "NaN"),
                              ([1.0, 2.0], (3,), "must have shape (3,)"),
                              ("abc", None, "array of numbers")):
        with pytest.raises(AssertionError, match=words.replace("(", r"\(").replace(")", r"\)")):
            finite(bad, "x", shape)


def test_unchanged_refuses_a_changed_argument_without_stating_a_value():
    from companion.exercises import unchanged

    a = np.array([1.0, np.nan])
    unchanged(a.copy(), a, "xs")  # NaN equals NaN
    with pytest.raises(AssertionError, match="changes its argument xs in place") as err:
        unchanged(a.copy(), a * 2, "xs")
    assert "2.0" not in str(err.value)


def test_a_staticmethod_is_refused_and_restored_as_a_staticmethod():
    import companion.nn.seq2seq as seq2seq

    cls = seq2seq.Seq2SeqEnsemble
    raw = vars(cls)["_gru_step"]
    assert isinstance(raw, staticmethod)
    path = "companion.nn.seq2seq.Seq2SeqEnsemble._gru_step"

    def answer(*args):
        return cls._gru_step(*args)

    with references_disabled(answer, path):
        with pytest.raises(DelegationError, match="_gru_step, which already holds"):
            answer(1, 2, 3)
    assert vars(cls)["_gru_step"] is raw
