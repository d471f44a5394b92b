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
