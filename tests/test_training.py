"""The shared training loop: recording, divergence, bad input, against a plain numpy loop."""
import math

import numpy as np
import pytest
import torch

import overparam as op
from overparam import training
from overparam.training import DIVERGENCE_FACTOR, DeepHistory, DivergenceError, GDHistory, History
from overparam.training import divergence_limit, is_divergent, largest_stable, train_loop


def _quadratic(seed=0, m=30, d=4):
    """The least-squares loss L(w) = |Xw - y|^2 / (2m), in numpy only."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, d))
    y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=m)
    loss = lambda w: float(np.mean((X @ w - y) ** 2) / 2)  # noqa: E731
    grad = lambda w: X.T @ (X @ w - y) / m  # noqa: E731
    return loss, grad, d


def _numpy_run(loss, grad, w, lr, num_iters):
    """Plain numpy gradient descent: every iterate and every loss, no stopping."""
    ws, losses = [w], [loss(w)]
    for _ in range(num_iters):
        w = w - lr * grad(w)
        ws.append(w)
        losses.append(loss(w))
    return ws, np.array(losses)


def _numpy_first_divergence(losses):
    """First t whose loss is not finite or above DIVERGENCE_FACTOR x the initial loss (> 0 here)."""
    for t, value in enumerate(losses):
        if not np.isfinite(value) or value > 1e6 * losses[0]:
            return t
    return None


def _gd_functions(loss, grad, lr):
    return (lambda w: (loss(w), w - lr * grad(w))), loss


@pytest.mark.parametrize("record_every", [1, 3, 7, 40, 41, 100])
def test_records_every_k_steps_and_the_last_as_a_numpy_loop(record_every):
    loss, grad, d = _quadratic()
    lr, T = 0.1, 40
    ws, losses = _numpy_run(loss, grad, np.zeros(d), lr, T)
    step, loss_fn = _gd_functions(loss, grad, lr)
    trace = train_loop(step, loss_fn, np.zeros(d), T, record_every=record_every,
                       observe=lambda w: torch.as_tensor(w))
    expected = sorted(set(range(0, T + 1, record_every)) | {T})
    assert trace.steps.tolist() == expected and trace.steps.dtype == np.int64
    np.testing.assert_array_equal(trace.loss, losses[expected])
    np.testing.assert_array_equal(trace.observed, np.stack(ws)[expected])
    np.testing.assert_array_equal(trace.final, ws[-1])
    assert trace.diverged_at is None and not trace.diverged and trace.final_loss == losses[-1]


def test_the_last_state_is_evaluated_by_the_loss_function_once():
    calls = {"step": 0, "loss": 0}

    def step(w):
        calls["step"] += 1
        return float(w * w), w / 2

    def loss(w):
        calls["loss"] += 1
        return float(w * w)

    trace = train_loop(step, loss, 1.0, 5)
    assert calls == {"step": 5, "loss": 1}
    np.testing.assert_array_equal(trace.loss, [4.0**-t for t in range(6)])
    assert trace.final == 1.0 / 32 and trace.observed is None
    zero = train_loop(step, loss, 3.0, 0)
    assert zero.steps.tolist() == [0] and zero.loss.tolist() == [9.0] and zero.final == 3.0


def _blow_up(w0=1.0, lr=3.0):
    """GD on w^2/2 with lr = 3: w_t = (-2)^t w0, loss 4^t w0^2/2; with the factor 1e6, step 10 diverges."""
    loss = lambda w: float(w * w / 2)  # noqa: E731
    grad = lambda w: w  # noqa: E731
    ws, losses = _numpy_run(loss, grad, w0, lr, 30)
    return loss, grad, lr, ws, losses


def test_divergence_at_the_step_a_numpy_loop_finds_raises_with_that_step():
    loss, grad, lr, _, losses = _blow_up()
    at = _numpy_first_divergence(losses)
    assert at == 10  # 4^10 = 1048576 > 1e6
    step, loss_fn = _gd_functions(loss, grad, lr)
    with pytest.raises(DivergenceError, match="my method diverged at step 10") as err:
        train_loop(step, loss_fn, 1.0, 30, what="my method")
    assert err.value.step == at and err.value.loss == losses[at]


@pytest.mark.parametrize("record_every", [1, 4, 9, 10, 50])
def test_divergence_with_stop_keeps_the_history_up_to_the_step_before(record_every):
    loss, grad, lr, ws, losses = _blow_up()
    step, loss_fn = _gd_functions(loss, grad, lr)
    trace = train_loop(step, loss_fn, 1.0, 30, record_every=record_every, on_divergence="stop",
                       observe=lambda w: torch.tensor([w]))
    expected = sorted(set(range(0, 10, record_every)) | {9})
    assert trace.diverged_at == 10 and trace.diverged and trace.final_loss == math.inf
    assert trace.steps.tolist() == expected
    np.testing.assert_array_equal(trace.loss, losses[expected])
    np.testing.assert_array_equal(trace.observed[:, 0], np.array(ws)[expected])
    assert trace.final == ws[9] and trace.loss[-1] <= DIVERGENCE_FACTOR * trace.loss[0]


def test_a_nan_loss_diverges_and_a_bad_start_is_refused_before_any_step():
    nan_at_3 = lambda t: (math.nan if t == 3 else 1.0, t + 1)  # noqa: E731
    trace = train_loop(nan_at_3, lambda t: 1.0, 0, 10, on_divergence="stop", record_every=5)
    assert trace.diverged_at == 3 and trace.steps.tolist() == [0, 2] and trace.final == 2
    # bug: a non-finite loss at the start was reported as "diverged at step 0; use a smaller learning rate",
    # although no step had been taken: it is the start (or the data's scale), named by the caller
    for bad in (math.inf, math.nan):
        for on_divergence in ("raise", "stop"):
            with pytest.raises(ValueError, match=r"loss at the start is (inf|nan) before any step.*check w0 and the "
                                                 r"scale of X and y"):
                train_loop(lambda w: (bad, w), lambda w: bad, torch.zeros(1, 3), 4, on_divergence=on_divergence,
                           start="w0", data="X and y")
        with pytest.raises(ValueError, match="check the initial state"):  # also with nothing to step: num_iters=0
            train_loop(lambda w: (bad, w), lambda w: bad, 0.0, 0)


@pytest.mark.parametrize("train, start", [
    (lambda X, y: op.gradient_descent(X, y, 4, 0.01, 10, w0=np.full(3, 1e100)), "w0"),
    (lambda X, y: op.penalized_gradient_descent(X, y, 4, op.NormPowerPenalty(0.1), 0.01, 10, w0=np.full(3, 1e100)),
     "w0"),
    (lambda X, y: op.train_deep_linear(X, y, 4, [np.full((1, 3), 1e50), np.full((1, 1), 1e50)], 0.01, 10),
     "factors0"),
    (lambda X, y: op.train_end_to_end(X, y, 4, np.full(3, 1e100), 2, 0.01, 10), "W_e0"),
    (lambda X, y: op.gradient_descent(X, 1e100 * y, 4, 0.01, 10), "the default start w0 = 0"),
])
def test_trainers_blame_the_start_not_the_learning_rate_for_an_infinite_initial_loss(train, start):
    """Bug: op.gradient_descent(X, y, 4, 0.01, 10, w0=np.full(3, 1e100)) said "diverged at step 0 (loss inf);
    use a smaller learning rate". The start overflows the ℓ4 loss before any step: the message names it."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 3)), rng.normal(size=8)
    with pytest.raises(ValueError, match=rf"loss at the start is inf before any step.*check {start} and the scale of "
                                         r"X and y"):
        train(X, y)


def test_a_step_that_does_not_return_a_pair_is_named():
    """Bug: a step returning only the loss gave "cannot unpack non-iterable float object"."""
    with pytest.raises(TypeError, match=r"step must return a pair \(loss, next state\), got float"):
        train_loop(lambda w: 1.0, lambda w: 1.0, 0.0, 3)
    with pytest.raises(TypeError, match="step must return a pair .* got tuple of length 3"):
        train_loop(lambda w: (1.0, w, w), lambda w: 1.0, 0.0, 3)
    assert train_loop(lambda w: [1.0, w], lambda w: 1.0, 0.0, 2).loss.tolist() == [1.0, 1.0, 1.0]


def test_a_run_from_an_exact_fit_may_move_up_to_the_factor_itself():
    losses = [0.0, 5.0e5, 1.0e6, 1.5e6]
    step = lambda t: (losses[t], t + 1)  # noqa: E731
    trace = train_loop(step, lambda t: losses[t], 0, 3, on_divergence="stop")
    assert trace.diverged_at == 3 and trace.loss.tolist() == losses[:3]


def test_divergence_rule():
    assert divergence_limit(2.0) == 2.0 * DIVERGENCE_FACTOR and divergence_limit(0.0) == DIVERGENCE_FACTOR
    assert divergence_limit(math.nan) == DIVERGENCE_FACTOR and is_divergent(math.nan, DIVERGENCE_FACTOR)
    limit = divergence_limit(1.0)
    assert not is_divergent(1e6, limit) and is_divergent(1.0000001e6, limit)
    assert all(is_divergent(v, limit) for v in (math.inf, -math.inf, math.nan))
    assert is_divergent(1.0, math.nan) and is_divergent(torch.tensor(math.nan), limit)
    assert type(divergence_limit(1.0)) is float and type(is_divergent(1.0, limit)) is bool


def test_divergence_rule_on_many_runs_is_the_scalar_rule_element_by_element():
    """The sweep applies the rule to a (steps, runs) array of losses against one limit per run."""
    initial = np.array([2.0, 0.0, -1.0, math.nan, 1e300])
    limits = divergence_limit(initial)
    assert limits.tolist() == [divergence_limit(v) for v in initial]
    losses = np.array([[2.0, 0.0, -1.0, math.nan, 1e300],
                       [2e6, 1e6, 1e6 + 1, 1.0, math.inf],
                       [2.1e6, -math.inf, 0.5, 1.0, 1e299]])
    bad = is_divergent(losses, limits)
    assert bad.shape == losses.shape
    assert bad.tolist() == [[is_divergent(v, lim) for v, lim in zip(row, limits)] for row in losses]
    assert bad[:, 0].tolist() == [False, False, True] and bad[0, 3], "a NaN start diverges at step 0"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"step": None}, "step must be a callable"),
        ({"loss": 3}, "loss must be a callable"),
        ({"observe": "W_e"}, "observe must be None or a callable"),
        ({"num_iters": -1}, "num_iters"),
        ({"num_iters": 2.5}, "num_iters"),
        ({"record_every": 0}, "record_every"),
        ({"on_divergence": "ignore"}, "on_divergence"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, match):
    args = {"step": lambda w: (0.0, w), "loss": lambda w: 0.0, "state": 0.0, "num_iters": 3} | kwargs
    with pytest.raises(ValueError, match=match):
        train_loop(**args)


def test_check_run_names_the_bad_argument():
    assert training.check_run(0.5, 3, 2, "stop") == (0.5, 3, 2)
    for args, match in [((0.0, 3, 1, "raise"), "lr"), ((0.1, -1, 1, "raise"), "num_iters"),
                        ((0.1, 3, 0, "raise"), "record_every"), ((0.1, 3, 1, "x"), "on_divergence")]:
        with pytest.raises(ValueError, match=match):
            training.check_run(*args)


def test_one_history_family_and_one_sentinel():
    assert issubclass(GDHistory, History) and issubclass(DeepHistory, GDHistory)
    assert op.GDHistory is GDHistory is op.linear.GDHistory and op.DeepHistory is DeepHistory is op.deep.DeepHistory
    assert op.largest_stable is largest_stable is op.linear.largest_stable
    assert op.DivergenceError is DivergenceError and op.linear.DIVERGENCE_FACTOR == DIVERGENCE_FACTOR
    h = History(steps=np.array([0, 5]), loss=np.array([2.0, 1.0]))
    assert h.diverged_at is None and h.iterations_to(1.5) == 5 and h.iterations_to(0.5) is None
    runs = [GDHistory(steps=np.array([0, 3]), loss=np.array([1.0, 0.5]), w=np.zeros(2), lr=lr, p=2, diverged_at=at)
            for lr, at in [(0.1, None), (0.3, None), (0.9, 4)]]
    assert largest_stable(runs).lr == 0.3
    with pytest.raises(ValueError, match="every run diverged or collapsed"):
        largest_stable(runs[2:])


def test_every_trainer_stops_by_the_same_rule():
    """The four trainers on one diverging problem: the same step, the same message shape, the same sentinel."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20, 3))
    y = X @ np.ones(3)
    w0 = 0.5 * np.ones(3)
    runs = {
        "linear": op.gradient_descent(X, y, 2, 3.0, 200, w0=w0, on_divergence="stop"),
        "penalized": op.penalized_gradient_descent(X, y, 2, op.NormPowerPenalty(0.0), 3.0, 200, w0=w0,
                                                   on_divergence="stop"),
        "end-to-end": op.train_end_to_end(X, y, 2, w0, 1, 3.0, 200, on_divergence="stop"),
        "deep": op.train_deep_linear(X, y, 2, [w0[None, :]], 3.0, 200, on_divergence="stop"),
    }
    # the plain numpy loop of GD on this problem (depth 1 everywhere)
    loss = lambda w: float(np.mean((X @ w - y) ** 2) / 2)  # noqa: E731
    grad = lambda w: X.T @ (X @ w - y) / len(y)  # noqa: E731
    ws, losses = _numpy_run(loss, grad, w0, 3.0, 200)
    at = _numpy_first_divergence(losses)
    assert at is not None and at > 2
    for name, h in runs.items():
        assert h.diverged_at == at, name
        assert h.steps.tolist() == list(range(at)), name
        np.testing.assert_allclose(h.loss, losses[:at], rtol=1e-13, err_msg=name)  # measured 1.8e-15
        np.testing.assert_allclose(h.w, ws[at - 1], rtol=1e-13, err_msg=name)  # measured 9.6e-16


def test_one_sentinel_for_never_in_arrays_and_scalars():
    """Arrays of steps are float with NEVER (inf); scalars are int or None; files of the old format (-1) convert."""
    from overparam.training import NEVER, as_step_array, step_or_none

    old = np.array([-1, 0, 7], dtype=np.int64)
    new = as_step_array(old)
    assert new.dtype == float and new.tolist() == [NEVER, 0.0, 7.0]
    assert as_step_array(new).tolist() == new.tolist() and new is not as_step_array(new)
    assert [step_or_none(v) for v in new] == [None, 0, 7]
    assert np.argsort(new).tolist() == [1, 2, 0], "never sorts after every step"
    res = op.SweepResult(configs=(op.RunConfig("gd", 0.1, p=2),) * 3, steps=np.arange(2), loss=np.ones((3, 2)),
                         diverged_at=old, w_e=np.zeros((3, 1)), factors=((),) * 3, weights_step=np.ones(3, int),
                         num_iters=1, wall_time=0.0, dtype="float64", device="cpu")
    assert res.diverged.tolist() == [False, True, True] and res.history(0).diverged_at is None
    assert res.history(2).diverged_at == 7


def test_one_provenance_format_and_the_old_key():
    record = op.provenance("python -m overparam test", problem="x")
    assert record["command"] == "python -m overparam test" and record["problem"] == "x"
    assert {"date_utc", "python", "numpy", "torch", "torch_threads", "machine", "host"} <= set(record)
    with pytest.raises(ValueError, match="standard keys"):
        op.provenance(date_utc="yesterday")
    old = {"command": "c", "date": "2026-01-01T00:00:00+00:00"}
    assert op.read_provenance(old) == {"command": "c", "date_utc": "2026-01-01T00:00:00+00:00"}
    assert op.read_provenance(record) == record


def test_reader_command_drops_the_machines_data_folder_and_nothing_else():
    recorded = "python -m overparam mnist --steps full --data-dir ../shared/data --out results/mnist_full.npz --threads 2"
    assert op.reader_command(recorded) == "python -m overparam mnist --steps full --out results/mnist_full.npz --threads 2"
    assert op.reader_command("python -m overparam ethanol --data-dir=/work/data --preset paper") == \
        "python -m overparam ethanol --preset paper"
    plain = "python -m overparam toy --preset paper --threads 1"
    assert op.reader_command(plain) == plain


def test_largest_stable_run_trains_from_the_top_and_stops_at_the_first_stable_run():
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = X @ np.ones(3)
    limit = op.quadratic_lr_limit(X)
    tried = []

    def train(lr):
        tried.append(lr)
        return op.gradient_descent(X, y, 2, lr, 200, on_divergence="stop")

    grid = [0.5 * limit, 1.5 * limit, 0.9 * limit, 3 * limit, 0.1 * limit]
    run = op.largest_stable_run(train, grid)
    assert run.lr == 0.9 * limit and not run.diverged
    assert tried == [3 * limit, 1.5 * limit, 0.9 * limit], "from the largest down, nothing after the first stable run"
    every = [op.gradient_descent(X, y, 2, lr, 200, on_divergence="stop") for lr in grid]
    assert largest_stable(every).lr == run.lr, "the same rule as largest_stable"
    with pytest.raises(ValueError, match="every run diverged"):
        op.largest_stable_run(train, [2 * limit, 3 * limit])
    with pytest.raises(ValueError, match="at least one"):
        op.largest_stable_run(train, [])
    with pytest.raises(ValueError, match="lrs"):
        op.largest_stable_run(train, [0.1, -1.0])
    # bug: the message said "lrs must be a finite number > 0" for a grid; it names the entry now
    with pytest.raises(ValueError, match=r"^lrs\[0\] must be a finite number > 0, got -1.0"):
        op.largest_stable_run(train, [-1.0, 0.01])
    with pytest.raises(ValueError, match=r"^lrs must be a sequence of learning rates, got 0.1"):
        op.largest_stable_run(train, 0.1)
    with pytest.raises(ValueError, match="^train must be a callable"):
        op.largest_stable_run(None, [0.1])


def test_measure_at_equals_one_long_run_measured_at_the_checkpoints():
    X = np.random.default_rng(1).normal(size=(30, 4))
    y = X @ np.arange(1.0, 5.0)
    lr = 0.5 * op.quadratic_lr_limit(X)
    checkpoints = [1, 3, 10, 40]
    values = op.measure_at(lambda w, n: op.gradient_descent(X, y, 2, lr, n, w0=w).w, np.zeros(4), checkpoints,
                           lambda w: float(np.linalg.norm(w)))
    w, expected = np.zeros(4), [0.0]
    for t in range(1, 41):
        w = w - lr * op.lp_gradient(w, X, y, 2)
        if t in checkpoints:
            expected.append(np.linalg.norm(w))
    np.testing.assert_allclose(values, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="strictly increasing"):
        op.measure_at(lambda w, n: w, np.zeros(4), [3, 3], np.linalg.norm)
    with pytest.raises(ValueError, match="checkpoints"):
        op.measure_at(lambda w, n: w, np.zeros(4), [0, 3], np.linalg.norm)


def test_to_numpy_is_a_detached_float64_copy():
    t = torch.tensor([1.5, -2.0], dtype=torch.float32, requires_grad=True)
    a = training.to_numpy(t * 2)
    assert a.dtype == np.float64 and a.tolist() == [3.0, -4.0]
    u = torch.zeros(2, dtype=torch.float64)
    b = training.to_numpy(u)
    b[0] = 1.0
    assert u[0].item() == 0.0  # a copy even when no conversion is needed


def test_is_recorded_keeps_every_kth_step_and_the_last():
    assert [t for t in range(11) if training.is_recorded(t, 10, 4)] == [0, 4, 8, 10]
    assert [t for t in range(11) if training.is_recorded(t, 10, 1)] == list(range(11))


def test_train_loop_names_step_when_its_loss_is_not_a_scalar():
    """Bug: a vector loss gave torch's "only one element tensors can be converted to Python scalars", a string
    "could not convert string to float"; neither named step."""
    w0 = torch.zeros(3)
    with pytest.raises(TypeError, match=r"^step must return \(scalar loss, next state\); the loss has shape \(8,\)"):
        train_loop(lambda w: (torch.ones(8), w), lambda w: 1.0, w0, 3)
    with pytest.raises(TypeError, match=r"^step must return \(scalar loss, next state\); the loss is 'a' \(str\)"):
        train_loop(lambda w: ("a", w), lambda w: 1.0, w0, 3)
    with pytest.raises(TypeError, match=r"^loss must return a scalar loss; the loss has shape \(2,\)"):
        train_loop(lambda w: (1.0, w), lambda w: np.ones(2), w0, 0)
    assert train_loop(lambda w: (torch.tensor(2.0), w), lambda w: np.float32(2.0), w0, 2).loss.tolist() == [2.0] * 3


def test_measure_at_checks_its_callables_and_checkpoints_before_any_step():
    """Bugs: advance=None failed with "'NoneType' object is not callable" after measuring the start; a scalar
    checkpoints gave "'int' object is not iterable"."""
    calls = []

    def measure(state):
        calls.append(state)
        return 0.0

    with pytest.raises(ValueError, match=r"^advance must be a callable \(state, n\) -> state, got None"):
        op.measure_at(None, 0.0, [5], measure)
    with pytest.raises(ValueError, match=r"^measure must be a callable state -> float, got 'f'"):
        op.measure_at(lambda s, n: s, 0.0, [5], "f")
    with pytest.raises(ValueError, match=r"^checkpoints must be a non-empty tuple of steps >= 1, got 5"):
        op.measure_at(lambda s, n: s, 0.0, 5, measure)
    assert calls == []
