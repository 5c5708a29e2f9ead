"""One rule for scalar arguments across the public functions: numpy scalars accepted, bad values named."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import overparam as op
from overparam.validation import check_int, check_real, finite_array, float_array

_RNG = np.random.default_rng(0)
X, Y = _RNG.normal(size=(8, 3)), _RNG.normal(size=8)
W_E = _RNG.normal(size=(1, 3))
PLANE = op.gradient_plane(np.array([1.0, 0.0]), np.array([0.0, 1.0]))

#: (id, call taking the scalar under test, a good numpy value, the argument's name, a bad value).
CASES = [
    ("lp_loss p", lambda v: op.lp_loss(W_E, X, Y, v), np.int64(4), "p", 3),
    ("random_orthogonal n", lambda v: op.random_orthogonal(v, 0), np.int64(3), "n", 0),
    ("random_orthogonal seed", lambda v: op.random_orthogonal(3, v), np.int64(3), "seed", 0.5),
    ("balanced_init scale", lambda v: op.balanced_init(3, 1, 2, v, 0), np.float32(0.1), "scale", -1.0),
    ("balanced_init depth", lambda v: op.balanced_init(3, 1, v, 0.1, 0), np.int64(2), "depth", 0),
    ("balanced_init d", lambda v: op.balanced_init(v, 1, 2, 0.1, 0), np.int32(3), "d", 2.0),
    ("gaussian_init std", lambda v: op.gaussian_init([3, 1], v, 0), np.float32(0.1), "std", float("nan")),
    ("gaussian_init dims", lambda v: op.gaussian_init([v, 1], 0.1, 0), np.int64(3), "dims", 0),
    ("warmup_step lr", lambda v: op.warmup_step(np.ones(3), 0.5, np.ones(3), v), np.float32(0.1), "lr", -0.1),
    ("warmup_step omega2", lambda v: op.warmup_step(np.ones(3), v, np.ones(3), 0.1), np.float32(0.5), "omega2", 0),
    ("train_deep_linear lr", lambda v: op.train_deep_linear(X, Y, 2, [W_E, np.ones((1, 1))], v, 3),
     np.float32(0.01), "lr", "0.01"),
    ("train_deep_linear num_iters", lambda v: op.train_deep_linear(X, Y, 2, [W_E, np.ones((1, 1))], 0.01, v),
     np.int64(3), "num_iters", -1),
    ("train_deep_linear record_every",
     lambda v: op.train_deep_linear(X, Y, 2, [W_E, np.ones((1, 1))], 0.01, 3, record_every=v),
     np.int64(1), "record_every", 0),
    ("train_deep_linear weight_decay",
     lambda v: op.train_deep_linear(X, Y, 2, [W_E, np.ones((1, 1))], 0.01, 3, weight_decay=v),
     np.float32(0.0), "weight_decay", -1.0),
    ("psd_power alpha", lambda v: op.psd_power(np.eye(2), v), np.float32(0.5), "alpha", -0.5),
    ("psd_power rtol", lambda v: op.psd_power(np.eye(2), 0.5, v), np.float64(1e-9), "rtol", True),
    ("preconditioner depth", lambda v: op.preconditioner(W_E, v), np.int64(2), "depth", 1.5),
    ("end_to_end_step lr", lambda v: op.end_to_end_step(W_E, W_E, 2, v), np.float32(0.1), "lr", float("inf")),
    ("end_to_end_step weight_decay", lambda v: op.end_to_end_step(W_E, W_E, 2, 0.1, v),
     np.float32(0.0), "weight_decay", -1),
    ("train_end_to_end depth", lambda v: op.train_end_to_end(X, Y, 2, W_E, v, 0.01, 3), np.int64(2), "depth", 0),
    ("gradient_descent lr", lambda v: op.gradient_descent(X, Y, 2, v, 3), np.float32(0.01), "lr", 0),
    ("gradient_descent num_iters", lambda v: op.gradient_descent(X, Y, 2, 0.01, v), np.int64(3), "num_iters", 2.5),
    ("gradient_descent record_every", lambda v: op.gradient_descent(X, Y, 2, 0.01, 3, record_every=v),
     np.int64(1), "record_every", 0),
    ("penalized_gradient_descent lr",
     lambda v: op.penalized_gradient_descent(X, Y, 2, op.NormPowerPenalty(0.1), v, 3), np.float32(0.01), "lr", -1),
    ("NormPowerPenalty strength", lambda v: op.NormPowerPenalty(v), np.float32(0.1), "strength", float("nan")),
    ("NormPowerPenalty power", lambda v: op.NormPowerPenalty(0.1, v), np.float32(3.0), "power", 1.0),
    ("half_disk radius", lambda v: op.half_disk(PLANE, v), np.float32(1.0), "radius", 0),
    ("loop_integral n_points", lambda v: op.loop_integral(op.end_to_end_field(np.array([1.0, 0.0]), 2),
                                                          op.circle(PLANE, 1.0), v), np.int64(50), "n_points", 0),
    ("half_disk_integral c_norm", lambda v: op.half_disk_integral(v, 1.0, 2), np.float32(1.0), "c_norm", -1),
    ("half_disk_integral depth", lambda v: op.half_disk_integral(1.0, 1.0, v), np.int64(2), "depth", 0),
    ("plane_curl h", lambda v: op.plane_curl(op.end_to_end_field(np.array([1.0, 0.0]), 2), PLANE, 0.3, 0.2, v),
     np.float32(1e-3), "h", 0),
    ("ConvNetConfig lr", lambda v: op.ConvNetConfig(lr=v), np.float32(0.01), "lr", 0),
    ("ConvNetConfig batch_size", lambda v: op.ConvNetConfig(batch_size=v), np.int64(32), "batch_size", 2.5),
    ("ConvNetConfig keep_prob", lambda v: op.ConvNetConfig(keep_prob=v), np.float32(0.5), "keep_prob", 1.5),
    ("RunConfig lr", lambda v: op.RunConfig("gd", v), np.float32(0.1), "lr", 0),
    ("RunConfig depth", lambda v: op.RunConfig("gd", 0.1, depth=v), np.int64(2), "depth", 0),
    ("RunConfig init_scale", lambda v: op.RunConfig("gd", 0.1, init_scale=v), np.float32(0.1), "init_scale", -1),
    ("RunConfig momentum", lambda v: op.RunConfig("momentum", 0.1, momentum=v), np.float32(0.9), "momentum", 1.0),
    ("run_sweep target", lambda v: op.run_sweep((X, Y), [op.RunConfig("gd", 0.01)], 3, target=v),
     np.float32(1e-3), "target", -1.0),
    ("run_sweep num_iters", lambda v: op.run_sweep((X, Y), [op.RunConfig("gd", 0.01)], v), np.int64(3),
     "num_iters", -1),
    ("log_steps num_iters", lambda v: op.log_steps(v), np.int64(100), "num_iters", 1.5),
    ("two_example_problem y1", lambda v: op.two_example_problem(v), np.float32(5.0), "y1", "5"),
    ("toy_initial_factors init_scale", lambda v: op.toy_initial_factors(2, v), np.float32(0.01), "init_scale", 0),
    ("depth1_stability_limit y1", lambda v: op.depth1_stability_limit(v), np.int64(5), "y1", 0),
    ("predicted_iterations lr", lambda v: op.predicted_iterations(v, 2, 5.0), np.float32(1e-3), "lr", 0),
    ("predicted_iterations depth", lambda v: op.predicted_iterations(1e-3, v, 5.0), np.int64(2), "depth", 0),
    ("running_median window", lambda v: op.running_median(np.arange(9.0), v), np.int64(3), "window", 2),
    ("error_standard_error error", lambda v: op.error_standard_error(v, 100), np.float32(0.1), "error", 1.5),
    ("error_standard_error n", lambda v: op.error_standard_error(0.1, v), np.int64(100), "n", 0),
    ("accumulated_step momentum", lambda v: op.accumulated_step(np.full(4, 0.1), v), np.float32(0.9),
     "momentum", 1.0),
    ("first_step_below level", lambda v: op.first_step_below(np.arange(9.0)[::-1], v, 3), np.float32(4.0),
     "level", "4"),
]


@pytest.mark.parametrize("call, good, name, bad", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_numpy_scalars_are_accepted_and_bad_values_named(call, good, name, bad):
    call(good)  # a numpy scalar passes exactly as the Python number would
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call(bad)


def test_training_and_validation_takes_a_numpy_integer(tmp_path):
    missing = tmp_path / "nothing here"
    with pytest.raises(FileNotFoundError):  # past the argument check, to the missing data
        op.training_and_validation(missing, download=False, stand_in_validation=np.int64(500))
    with pytest.raises(ValueError, match="stand_in_validation"):
        op.training_and_validation(missing, download=False, stand_in_validation=np.float64(500))


@pytest.mark.parametrize("value", [True, np.bool_(True), "3", None, 3.0, np.array([3])])
def test_check_int_refuses_what_is_not_an_integer(value):
    with pytest.raises(ValueError, match=r"^depth must be an integer >= 1, got "):
        check_int("depth", value, 1)


@pytest.mark.parametrize("value", [True, "0.1", None, float("nan"), float("inf"), -0.1, 0, np.array([0.1])])
def test_check_real_refuses_what_is_not_a_positive_number(value):
    with pytest.raises(ValueError, match=r"^lr must be a finite number > 0, got "):
        check_real("lr", value, above=0)


def test_check_helpers_return_python_numbers():
    assert type(check_int("n", np.int64(3))) is int and type(check_real("lr", np.float32(0.5))) is float
    assert check_real("momentum", 0.5, at_least=0, below=1) == 0.5


def test_float_array_converts_integers_only():
    assert float_array(np.arange(3, dtype=np.uint8), name="A").dtype == np.float64
    assert float_array([[1, 2]], name="A").dtype == np.float64
    floats = np.ones(2, dtype=np.float32)
    assert float_array(floats, name="A") is floats


W_INT = np.array([300, 400], dtype=np.int64)
#: Public functions taking arrays, with integer input: the answer must be the float64 one (no overflow, no wrap).
ARRAY_CASES = [
    ("depth_two_potential", lambda w: op.depth_two_potential(w, w)),
    ("NormPowerPenalty.value", lambda w: op.NormPowerPenalty(0.1, 4).value(w)),
    ("NormPowerPenalty.gradient", lambda w: op.NormPowerPenalty(0.1, 4).gradient(w)),
    ("lp_gradient", lambda w: op.lp_gradient(w, np.stack([w, w[::-1]]), w, 4)),
    ("preconditioner", lambda w: op.preconditioner(w[None, :], 3)),
    ("end_to_end_step", lambda w: op.end_to_end_step(w[None, :], w[None, :], 3, 0.1)),
    ("single_output_direction", lambda w: op.single_output_direction(w, w, 3)),
    ("end_to_end", lambda w: op.end_to_end([w[None, :], w[None, :1]])),
    ("quadratic_lr_limit", lambda w: op.quadratic_lr_limit(np.stack([w, w[::-1]]))),
    ("standardize", lambda w: op.standardize(np.stack([w, w[::-1], w + 1]), w[[0, 1, 1]]).X),
]


@pytest.mark.parametrize("dtype", [np.int64, np.uint8])
@pytest.mark.parametrize("call", [c[1] for c in ARRAY_CASES], ids=[c[0] for c in ARRAY_CASES])
def test_integer_arrays_give_the_float64_answer(call, dtype):
    w = W_INT.astype(dtype)
    np.testing.assert_allclose(call(w), call(w.astype(np.float64)), rtol=1e-12)


def test_configurations_from_numpy_scalars_are_saved_as_json():
    """Numpy scalars in a configuration used to reach json.dumps at save time, after the whole run."""
    import dataclasses
    import json

    for config in (op.RunConfig("gd", np.float32(0.1), depth=np.int64(2), seed=np.int64(1)),
                   op.ConvNetConfig(lr=np.float32(0.01), batch_size=np.int64(32), eval_every=np.int64(5))):
        assert json.loads(json.dumps(dataclasses.asdict(config))) == dataclasses.asdict(config)


NAN3 = np.array([np.nan, 0.0, 1.0])
#: Bad arrays: (id, call, the argument the message must name). Each used to return NaN silently, raise a
#: numpy/LAPACK error, crash on a list, or blame the learning rate for a start that was never finite.
BAD_ARRAY_CASES = [
    ("lp_loss empty X", lambda: op.lp_loss(np.zeros(3), np.zeros((0, 3)), np.zeros(0), 2), "X"),
    ("gradient_descent empty X", lambda: op.gradient_descent(np.zeros((0, 3)), np.zeros(0), 2, 0.1, 5), "X"),
    ("gradient_descent X without columns", lambda: op.gradient_descent(np.zeros((6, 0)), np.zeros(6), 2, 0.1, 5), "X"),
    ("gradient_descent w0 shape", lambda: op.gradient_descent(X, Y, 2, 0.1, 5, w0=np.zeros(5)), "w0"),
    ("gradient_descent w0 NaN", lambda: op.gradient_descent(X, Y, 2, 0.1, 5, w0=NAN3), "w0"),
    ("penalized_gradient_descent w0 shape",
     lambda: op.penalized_gradient_descent(X, Y, 2, op.NormPowerPenalty(0.1), 0.1, 3, w0=np.zeros(5)), "w0"),
    ("train_end_to_end W_e0 shape", lambda: op.train_end_to_end(X, Y, 2, np.zeros(4), 2, 0.1, 3), "W_e0"),
    ("train_deep_linear NaN start", lambda: op.train_deep_linear(X, Y, 2, [NAN3[None, :]], 0.1, 3), r"factors0\[0\]"),
    ("compare_network_and_rule overflowing start",
     lambda: op.compare_network_and_rule(X, Y, 4, [np.full((1, 3), 1e200), np.full((1, 1), 1e200)], 0.1, 3),
     "factors0"),
    ("lp_optimum empty X", lambda: op.lp_optimum(np.zeros((0, 3)), np.zeros(0), 4), "X"),
    ("lp_optimum NaN y", lambda: op.lp_optimum(X, np.full(8, np.nan), 4), "y"),
    ("quadratic_lr_limit empty", lambda: op.quadratic_lr_limit(np.zeros((0, 3))), "X"),
    ("quadratic_lr_limit NaN", lambda: op.quadratic_lr_limit(np.full((2, 3), np.nan)), "X"),
    ("quadratic_lr_limit zeros", lambda: op.quadratic_lr_limit(np.zeros((2, 3))), "X"),
    ("standardize empty", lambda: op.standardize(np.zeros((0, 3)), np.zeros(0)), "X"),
    ("run_sweep bare array", lambda: op.run_sweep(X, [op.RunConfig("gd", 0.1)], 5), "problem"),
    ("run_sweep empty X", lambda: op.run_sweep((np.zeros((0, 3)), np.zeros(0)), [op.RunConfig("gd", 0.1)], 5), "X"),
    ("largest_stable empty", lambda: op.largest_stable([]), "histories"),
    ("balanced_init overflowing scale", lambda: op.balanced_init(3, 1, 3, 1e200, 0), "scale"),
    ("balanced_factors NaN", lambda: op.balanced_factors(NAN3[None, :], 2), "W_e"),
    ("end_to_end NaN", lambda: op.end_to_end([NAN3[None, :]]), r"factors\[0\]"),
    ("max_imbalance NaN", lambda: op.max_imbalance([NAN3[None, :], np.ones((1, 1))]), r"factors\[0\]"),
    ("layer_gradients NaN grad_e", lambda: op.layer_gradients([W_E, np.ones((1, 1))], NAN3[None, :]), "grad_e"),
    ("single_output_direction NaN grad", lambda: op.single_output_direction(np.ones(3), NAN3, 2), "grad"),
    ("end_to_end_step NaN W_e", lambda: op.end_to_end_step(NAN3[None, :], W_E, 2, 0.1), "W_e"),
    ("preconditioner NaN", lambda: op.preconditioner(NAN3[None, :], 2), "W_e"),
    ("preconditioned_sharpness NaN hessian",
     lambda: op.preconditioned_sharpness(np.ones((1, 3)), 2, np.full((3, 3), np.nan)), "hessian"),
    ("warmup_step NaN grad", lambda: op.warmup_step(np.ones(3), 0.5, NAN3, 0.1), "grad"),
    ("warmup_trajectory NaN w1", lambda: op.warmup_trajectory(NAN3, 0.5, lambda w: w, 0.1, 3), "w1"),
    ("gradient_descent dtype", lambda: op.gradient_descent(X, Y, 2, 0.1, 3, dtype="float32"), "dtype"),
    ("train_deep_linear integer dtype",
     lambda: op.train_deep_linear(X, Y, 2, [W_E, np.ones((1, 1))], 0.01, 3, dtype=__import__("torch").int64), "dtype"),
    ("lp_optimum tol", lambda: op.lp_optimum(X, Y, 4, tol="a"), "tol"),
    ("gradient_plane NaN direction", lambda: op.gradient_plane(np.ones(3), NAN3), "direction"),
    ("select_runs by a string",
     lambda: op.select_runs(op.run_sweep((X, Y), [op.RunConfig("gd", 0.01)], 3), by="depth"), "by"),
    ("run_sweep on a missing GPU", lambda: op.run_sweep((X, Y), [op.RunConfig("gd", 0.01)], 3, device="cuda"),
     "device") if not __import__("torch").cuda.is_available() else
    ("run_sweep on a bad device", lambda: op.run_sweep((X, Y), [op.RunConfig("gd", 0.01)], 3, device="tpu"),
     "device"),
]


@pytest.mark.parametrize("call, name", [c[1:] for c in BAD_ARRAY_CASES], ids=[c[0] for c in BAD_ARRAY_CASES])
def test_bad_arrays_are_named(call, name):
    with pytest.raises(ValueError, match=rf"(^|\W){name}(\W|$)"):
        call()


def test_lists_train_like_arrays():
    """The trainers used to call ``X.shape`` on their raw input, so a list crashed with an AttributeError."""
    arrays = op.gradient_descent(X, Y, 2, 0.1, 5, w0=np.zeros(3))
    lists = op.gradient_descent(X.tolist(), Y.tolist(), 2, 0.1, 5, w0=[0.0, 0.0, 0.0])
    np.testing.assert_array_equal(lists.loss, arrays.loss)
    deep = op.train_deep_linear(X.tolist(), Y.tolist(), 2, [W_E.tolist(), [[1.0]]], 0.01, 3)
    np.testing.assert_array_equal(deep.loss, op.train_deep_linear(X, Y, 2, [W_E, np.ones((1, 1))], 0.01, 3).loss)


def test_a_diverging_warmup_names_its_step():
    """It used to print overflow warnings and then blame ``w`` inside the gradient."""
    import warnings

    grad = lambda w: op.lp_gradient(w, X, Y, 4)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning may escape either
        with pytest.raises(op.DivergenceError, match=r"^the warm-up diverged at step \d+; ") as caught:
            op.warmup_trajectory(np.ones(3), 1.0, grad, 1e6, 20)
    assert 1 <= caught.value.step <= 20 and caught.value.loss is None
    assert len(op.warmup_trajectory(np.full(3, 0.1), 0.1, grad, 1e-3, 20).rho) == 20


def test_seeds_are_checked_in_one_place():
    from overparam.validation import finite_array, rng_from_seed, torch_seed

    generator = np.random.default_rng(3)
    assert rng_from_seed(generator) is generator
    assert rng_from_seed(np.int64(3)).standard_normal() == np.random.default_rng(3).standard_normal()
    for bad in (-1, 1.5, "a", None, True):
        with pytest.raises(ValueError, match=r"^seed must be an integer >= 0 or a numpy Generator"):
            rng_from_seed(bad)
        with pytest.raises(ValueError, match=r"^seed must be an integer >= 0"):
            torch_seed(bad)
    with pytest.raises(ValueError, match=r"^M must be an array of real numbers"):
        finite_array("M", [[1.0], "a"])
    assert finite_array("M", [[1, 2]]).dtype == np.float64


def test_readers_of_results_name_the_bad_argument():
    """Errors a reader meets when passing the wrong thing to the functions that read results."""
    history = op.gradient_descent(np.eye(2), np.ones(2), 2, 0.1, 3)
    with pytest.raises(ValueError, match="target must be a finite number, got None"):
        history.iterations_to(None)
    with pytest.raises(ValueError, match=r"histories\[0\] must be a GDHistory"):
        op.largest_stable([1, 2])
    with pytest.raises(ValueError, match="optimum must be an LpOptimum or a finite number"):
        op.suboptimality(np.ones(3), "abc")
    result = op.run_sweep((np.eye(2), np.ones(2)), [op.RunConfig("gd", 0.1, p=2)], 2, record=1)
    with pytest.raises(ValueError, match="target must be a finite number"):
        result.iterations_to(None)
    with pytest.raises(ValueError, match=r"results\[1.0\] has no target"):
        op.toy.plot_iterations_vs_lr({1.0: result})


@pytest.mark.parametrize("value, got", [
    (None, "got None"),
    ("abc", "got dtype <U3"),
    ([[1.0, 2.0], [3.0]], "got a ragged nested sequence"),
    (np.array([1.0, "2"], dtype=object), r"got dtype object \(entries that are not numbers\)"),
    (np.array([1 + 2j]), "got dtype complex128"),
    (np.array(["2020-01-01"], dtype="datetime64[D]"), r"got dtype datetime64\[D\]"),
])
def test_float_array_and_finite_array_refuse_what_is_not_real_numbers(value, got):
    """One message for every array argument: "<name> must be an array of real numbers, got ..."."""
    with pytest.raises(ValueError, match=rf"^A must be an array of real numbers, {got}"):
        float_array(value, name="A")
    with pytest.raises(ValueError, match=rf"^A must be an array of real numbers, {got}"):
        finite_array("A", value)


def test_float_array_takes_tensors_and_object_arrays_of_numbers():
    t = torch.ones(2, dtype=torch.float32)
    assert float_array(t, name="A") is t and float_array(torch.arange(3), name="A").dtype == torch.float64
    with pytest.raises(ValueError, match="^A must be an array of real numbers, got dtype torch.complex64"):
        float_array(torch.ones(2, dtype=torch.complex64), name="A")
    assert float_array(np.array([1, 2.5], dtype=object), name="A").dtype == np.float64
    assert finite_array("A", torch.ones(2, requires_grad=True)).tolist() == [1.0, 1.0]


FZ_PROBLEM = op.factorization.completion_problem(4, 1, 8, 0)
FZ_START = op.factorization.small_balanced_start(4, 4, 2, 0.1, 0)
#: Array arguments that used to go through np.asarray(..., float64): (id, call taking the array under test, the
#: argument's name in the message, a complex value of the right shape). A string gave numpy's unnamed "could not
#: convert string to float", a complex array lost its imaginary part with only a ComplexWarning.
ARRAY_ENTRY_CASES = [
    ("lp_optimum X", lambda v: op.lp_optimum(v, Y, 4), "X", X + 1j),
    ("lp_optimum y", lambda v: op.lp_optimum(X, v, 4), "y", Y + 1j),
    ("train_end_to_end W_e0", lambda v: op.train_end_to_end(X, Y, 2, v, 2, 0.1, 3), "W_e0", W_E + 1j),
    ("psd_power A", lambda v: op.psd_power(v, 0.5), "A", np.eye(2) + 0j),
    ("end_to_end", lambda v: op.end_to_end(v), r"factors(\[0\])?", [W_E + 1j]),
    ("layer_gradients", lambda v: op.layer_gradients(v, W_E), r"factors(\[0\])?", [W_E + 1j]),
    ("imbalance", lambda v: op.imbalance(v), r"factors(\[1\])?", [W_E, np.ones((1, 1)) + 1j]),
    ("max_imbalance", lambda v: op.max_imbalance(v), r"factors(\[0\])?", [W_E + 1j]),
    ("rotate_hidden", lambda v: op.rotate_hidden(v, 0), r"factors(\[0\])?", [W_E + 1j]),
    ("relative_imbalance", lambda v: op.relative_imbalance(v), r"factors(\[0\])?", [W_E + 1j, np.ones((1, 1))]),
    ("train_deep_linear factors0", lambda v: op.train_deep_linear(X, Y, 2, v, 0.01, 3), r"factors0(\[0\])?",
     [W_E + 1j, np.ones((1, 1))]),
    ("compare_network_and_rule factors0", lambda v: op.compare_network_and_rule(X, Y, 2, v, 0.01, 3),
     r"factors0(\[0\])?", [W_E + 1j, np.ones((1, 1))]),
    ("train_deep_factorization factors",
     lambda v: op.factorization.train_deep_factorization(FZ_PROBLEM, v, 0.1, 3), r"factors(\[1\])?",
     [FZ_START[0], FZ_START[1] + 1j]),
    ("singular_value_rates W_e", lambda v: op.factorization.singular_value_rates(v, np.ones((2, 2)), 2), "W_e",
     np.eye(2) + 1j),
    ("effective_rank W", lambda v: op.factorization.effective_rank(v), "W", np.eye(2) + 1j),
    ("CompletionProblem target", lambda v: op.factorization.CompletionProblem(v, np.ones((2, 2), dtype=bool)),
     "target", np.eye(2) + 1j),
    ("CompletionProblem.loss W", lambda v: FZ_PROBLEM.loss(v), "W", np.zeros((4, 4)) + 1j),
    ("circle center", lambda v: op.circle(PLANE, 1.0, center=v), "center", np.array([0.0, 1j])),
    ("Segment end", lambda v: op.Segment((0.0, 0.0), v), "end", np.array([1.0, 1j])),
    ("Plane u", lambda v: op.Plane(v, np.array([0.0, 1.0])), "u", np.array([1.0, 0j])),
]


@pytest.mark.parametrize("call, name, complex_value", [c[1:] for c in ARRAY_ENTRY_CASES],
                         ids=[c[0] for c in ARRAY_ENTRY_CASES])
def test_array_arguments_refuse_strings_and_complex_numbers_by_name(call, name, complex_value):
    for bad in ("abc", complex_value):
        with pytest.raises(ValueError, match=rf"^{name} must "):
            call(bad)


def test_factors_must_be_a_list_of_layers():
    """``op.end_to_end(5)`` used to fail with "object of type 'int' has no len()"."""
    for bad, got in ((5, "int"), (np.ones((2, 1, 3)), "ndarray"), ("abc", "str"), (None, "NoneType"),
                     ([], "an empty list")):
        with pytest.raises(ValueError, match=rf"^factors must be a non-empty list \[W_1, \.\.\., W_N\] of 2-D arrays, "
                                             rf"got {got}$"):
            op.end_to_end(bad)
    np.testing.assert_array_equal(op.end_to_end((W_E, np.ones((1, 1)))), W_E)


def test_float_array_takes_its_name_by_keyword_and_penalties_name_w():
    """Its default name "array" leaked into messages: NormPowerPenalty(1.0).value("abc") said "array must be ..."."""
    for method in (op.NormPowerPenalty(1.0).value, op.NormPowerPenalty(1.0).gradient):
        with pytest.raises(ValueError, match="^w must be an array of real numbers, got dtype <U3"):
            method("abc")
    with pytest.raises(TypeError):
        float_array(np.ones(2))  # no name
    with pytest.raises(TypeError):
        float_array("w", np.ones(2))  # the order of finite_array and check_int, by mistake


def test_check_callable_names_the_argument_and_accepts_none_only_when_optional():
    from overparam.validation import check_callable

    assert check_callable("f", len, "a callable") is len
    assert check_callable("progress", None, "None or a callable", optional=True) is None
    with pytest.raises(ValueError, match=r"^progress must be None or a callable, got 'yes' \(str\)"):
        check_callable("progress", "yes", "None or a callable", optional=True)
    with pytest.raises(ValueError, match=r"^f must be a callable, got None \(NoneType\)"):
        check_callable("f", None, "a callable")
