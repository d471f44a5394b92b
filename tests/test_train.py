"""The training loop: learning, clipping by norm and by value, non-finite detection."""

import math

import numpy as np

import pytest
import torch

from companion.train import NonFiniteError, clip_gradients, global_grad_norm, train


def _linear_problem():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    x = torch.randn(32, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    return model, (lambda step: (x, y)), (lambda m, b: ((m(b[0]) - b[1]) ** 2).mean())


def test_train_reduces_loss_and_records_history():
    model, batch_fn, loss_fn = _linear_problem()
    hist = train(model, batch_fn, loss_fn, steps=300, lr=0.05, optimizer="sgd")
    assert hist.steps == 300 and len(hist.grad_norm) == 300 and len(hist.clipped) == 300
    assert hist.loss[-1] < 1e-3 * hist.loss[0]
    assert hist.nonfinite_steps == []


def test_train_is_deterministic():
    runs = []
    for _ in range(2):
        model, batch_fn, loss_fn = _linear_problem()
        runs.append(train(model, batch_fn, loss_fn, steps=20, lr=0.01).loss)
    assert runs[0] == runs[1]


def _params_with_grads(grads):
    ps = []
    for g in grads:
        p = torch.nn.Parameter(torch.zeros_like(g))
        p.grad = g.clone()
        ps.append(p)
    return ps


def test_clip_by_norm_rescales_whole_gradient_keeping_direction():
    ps = _params_with_grads([torch.tensor([3.0, 0.0]), torch.tensor([4.0])])
    assert global_grad_norm(ps) == pytest.approx(5.0)
    assert clip_gradients(ps, clip_norm=1.0)
    assert global_grad_norm(ps) == pytest.approx(1.0)
    torch.testing.assert_close(ps[0].grad, torch.tensor([0.6, 0.0]))
    torch.testing.assert_close(ps[1].grad, torch.tensor([0.8]))
    assert not clip_gradients(ps, clip_norm=2.0)  # already small: untouched


def test_clip_by_value_clamps_each_component_changing_direction():
    ps = _params_with_grads([torch.tensor([3.0, 0.05]), torch.tensor([-4.0])])
    assert clip_gradients(ps, clip_value=0.1)
    torch.testing.assert_close(ps[0].grad, torch.tensor([0.1, 0.05]))
    torch.testing.assert_close(ps[1].grad, torch.tensor([-0.1]))


def test_clipping_is_applied_inside_train():
    model, batch_fn, loss_fn = _linear_problem()
    seen = []
    orig_step = torch.optim.SGD.step

    def spy(self, *a, **k):
        seen.append(global_grad_norm([p for g in self.param_groups for p in g["params"]]))
        return orig_step(self, *a, **k)

    torch.optim.SGD.step = spy
    try:
        hist = train(model, batch_fn, loss_fn, steps=5, lr=1e-3, optimizer="sgd", clip_norm=0.01)
    finally:
        torch.optim.SGD.step = orig_step
    assert all(c for c in hist.clipped)
    assert all(n == pytest.approx(0.01, rel=1e-5) for n in seen)
    assert all(g > 0.01 for g in hist.grad_norm)  # recorded before clipping


def test_nonfinite_loss_stops_with_the_step_named():
    model, batch_fn, _ = _linear_problem()

    def loss_fn(m, b, calls=[0]):
        calls[0] += 1
        loss = ((m(b[0]) - b[1]) ** 2).mean()
        return loss * float("nan") if calls[0] == 4 else loss

    with pytest.raises(NonFiniteError, match="training stopped at step 3: the loss is not finite"):
        train(model, batch_fn, loss_fn, steps=10, lr=1e-3)


def test_exploding_sgd_raises_or_is_recorded_when_allowed():
    model, batch_fn, loss_fn = _linear_problem()
    with pytest.raises(NonFiniteError, match="training stopped at step"):
        train(model, batch_fn, loss_fn, steps=500, lr=50.0, optimizer="sgd")
    model, batch_fn, loss_fn = _linear_problem()
    hist = train(model, batch_fn, loss_fn, steps=500, lr=50.0, optimizer="sgd",
                 allow_nonfinite=True)
    assert hist.steps == 500 and hist.nonfinite_steps
    assert not math.isfinite(hist.loss[hist.nonfinite_steps[0]])
    # clipping by norm tames the same learning rate enough to stay finite
    model, batch_fn, loss_fn = _linear_problem()
    hist = train(model, batch_fn, loss_fn, steps=500, lr=50.0, optimizer="sgd", clip_norm=0.01)
    assert all(math.isfinite(v) for v in hist.loss)


def test_argument_errors():
    model, batch_fn, loss_fn = _linear_problem()
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        train(lambda x: x, batch_fn, loss_fn, steps=1)
    with pytest.raises(ValueError, match="model has no trainable parameters"):
        train(torch.nn.Identity(), batch_fn, loss_fn, steps=1)
    with pytest.raises(TypeError, match="batch_fn must be a function"):
        train(model, None, loss_fn, steps=1)
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        train(model, batch_fn, loss_fn, steps=0)
    with pytest.raises(ValueError, match="lr must be a positive finite number"):
        train(model, batch_fn, loss_fn, steps=1, lr=-1.0)
    with pytest.raises(ValueError, match="optimizer must be 'adam' or 'sgd'"):
        train(model, batch_fn, loss_fn, steps=1, optimizer="rmsprop")
    with pytest.raises(ValueError, match="pass clip_norm or clip_value, not both"):
        train(model, batch_fn, loss_fn, steps=1, clip_norm=1.0, clip_value=1.0)
    with pytest.raises(ValueError, match="clip_norm must be a positive finite number"):
        train(model, batch_fn, loss_fn, steps=1, clip_norm=0.0)
    with pytest.raises(TypeError, match="clip_value must be a positive number or None"):
        clip_gradients(list(model.parameters()), clip_value="1")
    with pytest.raises(ValueError, match="pass clip_norm or clip_value, not both"):
        clip_gradients(list(model.parameters()), clip_norm=1.0, clip_value=1.0)
    with pytest.raises(TypeError, match="loss_fn must return a scalar tensor"):
        train(model, batch_fn, lambda m, b: m(b[0]), steps=1)


def test_clip_gradients_refuses_non_finite_gradients_and_bad_parameter_lists():
    model, _, _ = _linear_problem()
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    w = next(model.parameters())
    w.grad[0, 0] = float("nan")
    for kwargs in ({"clip_norm": 1.0}, {"clip_value": 1.0}):
        with pytest.raises(NonFiniteError, match=r"cannot clip a gradient that is not finite"):
            clip_gradients(model.parameters(), **kwargs)
    assert not clip_gradients(model.parameters())  # no clipping asked: untouched
    with pytest.raises(TypeError, match=r"parameters must be an iterable of tensors; got the "
                                        r"module Linear. Pass model.parameters\(\)"):
        clip_gradients(model, clip_norm=1.0)
    with pytest.raises(TypeError, match=r"parameters\[1\] must be a torch tensor"):
        global_grad_norm([w, 3.0])
    with pytest.raises(TypeError, match=r"parameters must be an iterable of tensors"):
        global_grad_norm(5)
    w.grad = torch.full_like(w, 3.0)
    assert global_grad_norm(w) == pytest.approx(3.0 * math.sqrt(w.numel()))  # one tensor


def test_train_argument_types():
    model, batch_fn, loss_fn = _linear_problem()
    with pytest.raises(TypeError, match=r"lr must be a positive finite number; got str"):
        train(model, batch_fn, loss_fn, steps=1, lr="0.1")
    with pytest.raises(TypeError, match=r"allow_nonfinite must be True or False"):
        train(model, batch_fn, loss_fn, steps=1, allow_nonfinite="yes")


# --- progress bar and checkpoints -------------------------------------------------------

def _regression_setup(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    gen = torch.Generator().manual_seed(seed)
    xs = torch.randn(64, 16, 3, generator=gen)
    ys = xs.sum(-1, keepdim=True).tanh()

    def batch_fn(step):
        return xs[step % 64], ys[step % 64]

    def loss_fn(m, b):
        return ((m(b[0]) - b[1]) ** 2).mean()

    return model, batch_fn, loss_fn


def test_resume_from_checkpoint_equals_an_uninterrupted_run(tmp_path):
    from companion.train import train

    model, batch_fn, loss_fn = _regression_setup()
    full = train(model, batch_fn, loss_fn, steps=40, lr=1e-2, progress=False)
    final = [p.detach().clone() for p in model.parameters()]

    model2, batch_fn, loss_fn = _regression_setup()
    path = tmp_path / "run.pt"
    train(model2, batch_fn, loss_fn, steps=15, lr=1e-2, progress=False, checkpoint=path)
    model3, _, _ = _regression_setup(seed=1)  # different weights: resume must overwrite them
    resumed = train(model3, batch_fn, loss_fn, steps=40, lr=1e-2, progress=False, resume=path)
    assert resumed.steps == full.steps == 40
    np.testing.assert_allclose(resumed.loss, full.loss, rtol=0, atol=0)
    for a, b in zip(model3.parameters(), final):
        assert torch.equal(a.detach(), b)


def test_checkpoint_every_writes_intermediate_files_readable_with_weights_only(tmp_path):
    from companion.train import load_checkpoint, train

    model, batch_fn, loss_fn = _regression_setup()
    path = tmp_path / "ck.pt"
    seen = []

    def spy_batch(step):
        if path.exists():
            seen.append(torch.load(path, weights_only=True)["step"])
        return batch_fn(step)

    train(model, spy_batch, loss_fn, steps=9, lr=1e-2, progress=False, checkpoint=path,
          checkpoint_every=4)
    assert sorted(set(seen)) == [4, 8]
    restored = load_checkpoint(path, model)
    assert restored["step"] == 9 and restored["history"].steps == 9
    assert not list(tmp_path.glob("*.tmp"))


def test_checkpoint_errors(tmp_path):
    from companion.train import load_checkpoint, save_checkpoint, train

    model, batch_fn, loss_fn = _regression_setup()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt", model)
    with pytest.raises(TypeError, match="path must be a file path"):
        save_checkpoint(3, model)
    with pytest.raises(ValueError, match="checkpoint_every needs checkpoint"):
        train(model, batch_fn, loss_fn, steps=2, checkpoint_every=1, progress=False)
    path = save_checkpoint(tmp_path / "a.pt", model)
    other = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="does not fit this model"):
        load_checkpoint(path, other)
    with pytest.raises(ValueError, match="no optimizer state"):
        load_checkpoint(path, model, torch.optim.SGD(model.parameters(), lr=0.1))
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a companion checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt", model)
    train(model, batch_fn, loss_fn, steps=3, progress=False, checkpoint=tmp_path / "b.pt")
    with pytest.raises(ValueError, match="past steps=2"):
        train(model, batch_fn, loss_fn, steps=2, progress=False, resume=tmp_path / "b.pt")
    with pytest.raises(TypeError, match="progress must be"):
        train(model, batch_fn, loss_fn, steps=2, progress="yes")


def test_progress_bar_on_long_runs_only_and_silenced_by_environment(monkeypatch, capsys):
    from companion import train as train_module

    monkeypatch.delenv("COMPANION_PROGRESS", raising=False)
    assert train_module._progress_bar(None, train_module.PROGRESS_MIN_STEPS - 1) is None
    bar = train_module._progress_bar(None, train_module.PROGRESS_MIN_STEPS)
    assert bar is not None and bar.total == train_module.PROGRESS_MIN_STEPS
    bar.close()
    assert train_module._progress_bar(False, 10_000) is None
    monkeypatch.setenv("COMPANION_PROGRESS", "0")
    assert train_module._progress_bar(True, 10_000) is None
    monkeypatch.delenv("COMPANION_PROGRESS")
    bars = []
    real = train_module._progress_bar
    monkeypatch.setattr(train_module, "_progress_bar",
                        lambda p, n: bars.append(real(p, n)) or bars[-1])
    model, batch_fn, loss_fn = _regression_setup()
    train_module.train(model, batch_fn, loss_fn, steps=5, lr=1e-2, progress=True)
    assert len(bars) == 1 and bars[0].n == 5 and bars[0].total == 5
    assert "training" in capsys.readouterr().err  # tqdm writes its text bar to stderr
