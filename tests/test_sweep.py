"""Tests for overparam.sweep: the lockstep engine against independent single-run loops."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import overparam as op
from overparam.sweep import (
    BEST_FINAL,
    LARGEST_STABLE,
    RunConfig,
    SweepResult,
    log_steps,
    product_runs,
    run_sweep,
    select_runs,
)

RTOL = 1e-12


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny matrices: one BLAS thread is fastest and immune to a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _random_problem(m: int = 64, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, d)) * np.geomspace(1, 0.05, d)
    y = X @ rng.standard_normal(d) + 0.3 * rng.standard_normal(m)
    s = op.standardize(X, y)
    return s.X, s.y


@pytest.fixture(scope="module")
def problem():
    return _random_problem()


@pytest.fixture(scope="module")
def ethanol_slice(ethanol_std):
    """300 rows of the standardized Ethanol problem; conftest's fixture reads OVERPARAM_DATA_DIR, else ../shared/data,
    else the user cache, and skips (never downloads) without a copy."""
    rows = np.random.default_rng(1).choice(len(ethanol_std.y), 300, replace=False)
    return ethanol_std.X[rows], ethanol_std.y[rows]


def _torch_oracle(layers0, X, y, p, T, make_opt):
    """Plain float64 autograd loop over one network: W_e = W_N ... W_1, loss (1/p) mean (X w_e - y)^p."""
    layers = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in layers0]
    Xt, yt = torch.tensor(X), torch.tensor(y)
    opt = make_opt(layers)
    losses = []
    for t in range(T + 1):
        we = layers[0]
        for w in layers[1:]:
            we = w @ we
        loss = ((Xt @ we.reshape(-1) - yt) ** p).mean() / p
        losses.append(loss.item())
        if t < T:
            opt.zero_grad()
            loss.backward()
            opt.step()
    return np.array(losses), [w.detach().numpy() for w in layers]


def _initial_layers(X, y, cfg):
    return run_sweep((X, y), [cfg], 0).factors[0]


# ---------------------------------------------------------------------------
# Against single-run oracles
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("p,gram", [(2, True), (2, False), (4, False)])
def test_depth1_gd_matches_gradient_descent(ethanol_slice, p, gram):
    X, y = ethanol_slice
    lr = 0.02 if p == 2 else 2e-3
    cfg = RunConfig("gd", lr, depth=1, p=p, seed=3)
    res = run_sweep((X, y), [cfg], 150, gram=gram)
    w0 = _initial_layers(X, y, cfg)[0].ravel()
    ref = op.gradient_descent(X, y, p, lr, 150, w0=w0)
    np.testing.assert_array_equal(res.steps, ref.steps)
    np.testing.assert_allclose(res.loss[0], ref.loss, rtol=RTOL)
    np.testing.assert_allclose(res.w_e[0], ref.w, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("p", [2, 4])
@pytest.mark.parametrize("depth", [2, 3])
def test_scalar_deep_nets_match_autograd(problem, p, depth):
    X, y = problem
    cfg = RunConfig("gd", 0.05, depth=depth, p=p, seed=1, init_scale=0.5)
    res = run_sweep((X, y), [cfg], 200)
    ref_loss, ref_layers = _torch_oracle(_initial_layers(X, y, cfg), X, y, p, 200,
                                         lambda ps: torch.optim.SGD(ps, lr=cfg.lr))
    assert ref_loss[-1] < 0.5 * ref_loss[0]  # it trained
    np.testing.assert_allclose(res.loss[0], ref_loss, rtol=RTOL)
    for got, want in zip(res.factors[0], ref_layers):
        np.testing.assert_allclose(got, want, rtol=1e-11)


def test_wide_hidden_layers_match_autograd_and_scalar_net(problem):
    X, y = problem
    wide = RunConfig("gd", 0.05, depth=3, p=4, seed=2, init_scale=0.5, width=5)
    narrow = RunConfig("gd", 0.05, depth=3, p=4, seed=2, init_scale=0.5)
    res = run_sweep((X, y), [wide, narrow], 150)
    layers0 = _initial_layers(X, y, wide)
    assert [w.shape for w in layers0] == [(5, 6), (5, 5), (1, 5)]
    # Procedure 1: balanced, with the same end-to-end vector as the scalar net.
    np.testing.assert_allclose(layers0[1].T @ layers0[1], layers0[0] @ layers0[0].T, atol=1e-15)
    np.testing.assert_allclose(layers0[2].T @ layers0[2], layers0[1] @ layers0[1].T, atol=1e-15)
    np.testing.assert_allclose(layers0[2] @ layers0[1] @ layers0[0], _initial_layers(X, y, narrow)[0] * 0.25)
    ref_loss, ref_layers = _torch_oracle(layers0, X, y, 4, 150, lambda ps: torch.optim.SGD(ps, lr=wide.lr))
    np.testing.assert_allclose(res.loss[0], ref_loss, rtol=RTOL)
    for got, want in zip(res.factors[0], ref_layers):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
    # Width does not matter from a balanced start (rotated hidden bases): same trajectory up to round-off.
    np.testing.assert_allclose(res.loss[0], res.loss[1], rtol=1e-10)


OPTIMIZERS = {
    "momentum": (dict(momentum=0.8), lambda ps, c: torch.optim.SGD(ps, lr=c.lr, momentum=c.momentum)),
    "adagrad": (dict(eps=1e-9), lambda ps, c: torch.optim.Adagrad(ps, lr=c.lr, eps=c.eps)),
    "adadelta": (dict(rho=0.95), lambda ps, c: torch.optim.Adadelta(ps, lr=c.lr, rho=c.rho, eps=c.eps)),
    "adam": (dict(beta2=0.99), lambda ps, c: torch.optim.Adam(ps, lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps)),
}


@pytest.mark.parametrize("method", sorted(OPTIMIZERS))
@pytest.mark.parametrize("depth", [1, 2])
def test_baselines_match_torch_optim(problem, method, depth):
    X, y = problem
    hyper, make = OPTIMIZERS[method]
    lr = {"momentum": 0.01, "adagrad": 0.05, "adadelta": 1.0, "adam": 0.01}[method]
    cfg = RunConfig(method, lr, depth=depth, p=4, seed=4, init_scale=0.5, **hyper)
    res = run_sweep((X, y), [cfg], 200)
    ref_loss, ref_layers = _torch_oracle(_initial_layers(X, y, cfg), X, y, 4, 200, lambda ps: make(ps, cfg))
    assert ref_loss[-1] < 0.9 * ref_loss[0]
    np.testing.assert_allclose(res.loss[0], ref_loss, rtol=RTOL)
    for got, want in zip(res.factors[0], ref_layers):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)


def _theorem1_step(w, g, lr, N):
    """One step of the general end-to-end rule (Theorem 1, discrete) via eigendecompositions, k = 1."""
    def frac_power(A, alpha):
        if alpha == 0:
            return np.eye(len(A))
        vals, vecs = np.linalg.eigh(A)
        vals = np.where(vals <= 1e-12 * vals.max(), 0.0, vals)
        return (vecs * vals**alpha) @ vecs.T

    W, G = w[None, :], g[None, :]
    step = sum(frac_power(W @ W.T, (j - 1) / N) @ G @ frac_power(W.T @ W, (N - j) / N) for j in range(1, N + 1))
    return (W - lr * step).ravel()


@pytest.mark.parametrize("N", [1, 2, 3, 5])
def test_e2e_step_matches_theorem1_general_form(problem, N):
    X, y = problem
    cfg = RunConfig("e2e", 0.1, depth=N, p=4, seed=5, init_scale=0.8)
    res = run_sweep((X, y), [cfg], 1)
    w0 = _initial_layers(X, y, cfg)[0].ravel()
    np.testing.assert_allclose(np.linalg.norm(w0), 0.8**N)
    expected = _theorem1_step(w0, op.lp_gradient(w0, X, y, 4), cfg.lr, N)
    np.testing.assert_allclose(res.w_e[0], expected, rtol=1e-12, atol=1e-15)


def test_e2e_tracks_deep_net_for_small_lr(problem):
    """The rule describes GD on the deep net (the paper's Figure 2), with a gap that shrinks with η."""
    X, y = problem
    gaps = []
    for lr, T in ((0.02, 300), (0.002, 3000)):
        res = run_sweep((X, y), product_runs(method=["gd", "e2e"], lr=lr, depth=3, p=4, init_scale=0.6), T, record=T // 30)
        gaps.append(np.max(np.abs(res.loss[1] / res.loss[0] - 1)))
        assert res.loss[0, -1] < 0.5 * res.loss[0, 0]
    assert gaps[1] < 0.3 * gaps[0]
    assert gaps[1] < 1e-3


# ---------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------
def test_mixed_batch_equals_separate_runs(problem):
    X, y = problem
    runs = (
        product_runs(method="gd", depth=[1, 2, 3], lr=0.03, p=[2, 4], init_scale=0.5)
        + product_runs(method="e2e", depth=[2, 3], lr=0.03, p=4, init_scale=0.5)
        + (RunConfig("adam", 0.01, p=4), RunConfig("momentum", 0.005, p=2), RunConfig("gd", 0.03, depth=3, width=3, p=2))
    )
    together = run_sweep((X, y), runs, 120, record=10)
    for i, cfg in enumerate(runs):
        alone = run_sweep((X, y), [cfg], 120, record=10)
        np.testing.assert_allclose(together.loss[i], alone.loss[0], rtol=1e-11)
        np.testing.assert_allclose(together.w_e[i], alone.w_e[0], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("where", ["mid-chunk", "chunk-start", "single-chunk"])
def test_divergent_run_is_frozen_and_isolated(problem, where):
    X, y = problem
    good = [RunConfig("gd", 0.05, depth=2, p=2, init_scale=0.5), RunConfig("gd", 0.5, p=2)]
    bad = RunConfig("gd", 1.3 * op.quadratic_lr_limit(X) / 1.2, p=2)  # just above 2/λ_max: slow blow-up
    ref = op.gradient_descent(X, y, 2, bad.lr, 300, w0=_initial_layers(X, y, bad)[0].ravel(), on_divergence="stop")
    assert ref.diverged and ref.diverged_at > 20  # it runs a while, then blows up
    chunk = {"mid-chunk": 7 if ref.diverged_at % 7 else 8, "chunk-start": ref.diverged_at, "single-chunk": 1000}[where]
    both = run_sweep((X, y), good + [bad], 300, chunk=chunk)
    alone = run_sweep((X, y), good, 300, chunk=chunk)
    assert both.diverged_at.tolist() == [op.training.NEVER, op.training.NEVER, ref.diverged_at]
    # The good runs are bit-identical to running them without the bad one.
    np.testing.assert_array_equal(both.loss[:2], alone.loss)
    np.testing.assert_array_equal(both.w_e[:2], alone.w_e)
    # The bad run: history up to its divergence, then NaN; finite earlier weights.
    np.testing.assert_allclose(both.loss[2, : ref.diverged_at], ref.loss, rtol=RTOL)
    assert np.isnan(both.loss[2, ref.diverged_at :]).all()
    assert np.isfinite(both.w_e[2]).all() and both.weights_step[2] < ref.diverged_at
    assert both.weights_step[2] >= ref.diverged_at - 2 * chunk
    replay = run_sweep((X, y), [bad], int(both.weights_step[2]))
    np.testing.assert_allclose(both.w_e[2], replay.w_e[0], rtol=1e-12)
    assert both.history(2).diverged_at == ref.diverged_at


def test_all_runs_diverge_stops_early(problem):
    """Once every run is frozen the sweep stops: after the first chunk of 50 steps (both runs diverge at steps 1-2,
    measured), not after 10⁶ iterations. run_sweep calls ``progress`` after each chunk that ends at or before
    ``num_iters`` and once more with ``num_iters`` at the end, so an early stop reports exactly (50, 10⁶) and
    (10⁶, 10⁶). The callback raises at a third call, so a sweep that goes on fails at once instead of running
    ~800 s (without the early exit: 200 chunks per 10⁴ iterations, about 8 s here).
    """
    X, y = problem
    calls = []

    def progress(done, total):
        calls.append((done, total))
        if len(calls) > 2:
            raise AssertionError(f"the sweep went on after every run had diverged: progress calls {calls}")

    res = run_sweep((X, y), [RunConfig("gd", 5.0, p=4), RunConfig("adam", 50.0, p=4)], 10**6, chunk=50, record=1000,
                    progress=progress)
    assert res.diverged.all() and (res.diverged_at < 50).all()
    assert np.isinf(res.final_loss).all()
    assert calls == [(50, 10**6), (10**6, 10**6)]
    # The recorded losses past the divergence are NaN, as for a sweep that ran on: the early stop is invisible there.
    assert res.steps.size == 10**3 + 1 and np.isnan(res.loss[:, 1:]).all()


def test_runs_started_at_an_exact_fit_do_not_diverge():
    """The divergence limit is DIVERGENCE_FACTOR × the initial loss only when that loss is > 0, else
    DIVERGENCE_FACTOR itself (overparam.training.divergence_limit, the rule train_loop applies too:
    tests/test_training.py's test_a_run_from_an_exact_fit_may_move_up_to_the_factor_itself).

    Every run here starts at an exact fit: X is 3×6, so w_p + (any vector of X's null space) fits y = X w_p, and
    each of 8 such starts w is given as init_direction w with init_scale ‖w‖^{1/N}, so that w_e(0) = w at every
    depth N. The loss at step 0 is then round-off, of either sign: in the moment form (gram=True,
    ½ w_eᵀ(XᵀX/m) w_e − …) it comes out below 0 for some runs (measured: 10 of the 40 here). No such run may be frozen.
    A purely relative limit (initial loss × 10⁶) would freeze a run whose initial loss is < 0 at step 0, and one
    whose initial loss is exactly 0 as soon as a later loss is > 0; the test checks that at least one run is of
    that kind, so that it exercises the rule. The methods step by the gradient (gd, e2e, momentum), which is
    round-off at a fit: the runs stay there.
    """
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 6))
    w_p = np.linalg.pinv(X) @ rng.standard_normal(3)
    null = np.linalg.svd(X)[2][3:].T  # (6, 3), X @ null = 0 up to round-off
    y = X @ w_p
    starts = [w_p + null @ rng.standard_normal(3) for _ in range(8)]
    kinds = (("gd", 1), ("gd", 2), ("gd", 3), ("e2e", 2), ("momentum", 1))
    runs = tuple(RunConfig(method, 0.01, depth=n, p=2, init_scale=np.linalg.norm(w) ** (1 / n), init_direction=tuple(w))
                 for w in starts for method, n in kinds)
    assert np.abs(X @ np.array(starts).T - y[:, None]).max() <= 1e-14  # exact fits, to round-off (measured 1.5e-15)
    scale = float(np.mean(y**2)) / 2  # the loss at w_e = 0 (0.21), for the size of round-off
    relative_rule_would_freeze = 0
    for gram in (True, False):
        res = run_sweep((X, y), runs, 300, gram=gram, chunk=100)
        assert res.diverged_at.tolist() == [op.training.NEVER] * len(runs), gram
        np.testing.assert_allclose(res.w_e, np.repeat(starts, len(kinds), axis=0), rtol=0, atol=1e-14)
        assert np.abs(res.loss).max() <= 1e-14 * scale  # measured 2.5e-16 (moment form), 5.8e-31 (direct form)
        start, later = res.loss[:, 0], res.loss[:, 1:]
        relative_rule_would_freeze += int(((start < 0) | ((start == 0) & (later > 0).any(axis=1))).sum())
    assert relative_rule_would_freeze > 0


def test_float32_close_to_float64(problem):
    X, y = problem
    runs = product_runs(method="gd", depth=[1, 3], lr=0.03, p=4, init_scale=0.5)
    lo = run_sweep((X, y), runs, 300, dtype="float32", record=10)
    hi = run_sweep((X, y), runs, 300, dtype=torch.float64, record=10)
    assert lo.dtype == "float32" and hi.dtype == "float64"
    np.testing.assert_allclose(lo.loss, hi.loss, rtol=1e-5)  # measured 2e-6 at the most


def test_initialization_is_balanced_with_shared_direction(problem):
    X, y = problem
    res = run_sweep((X, y), product_runs(method="gd", depth=[1, 2, 4], lr=0.01, init_scale=0.3, seed=7), 0)
    u = res.w_e[0] / np.linalg.norm(res.w_e[0])
    for i, N in enumerate([1, 2, 4]):
        layers = res.factors[i]
        assert len(layers) == N
        np.testing.assert_allclose([np.linalg.norm(w) for w in layers], 0.3)
        np.testing.assert_allclose(res.w_e[i], 0.3**N * u)


# ---------------------------------------------------------------------------
# Results, selection, files
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lr_grid(problem):
    X, y = problem
    runs = product_runs(method="gd", depth=[1, 2], lr=[0.01, 0.05, 0.2, 0.5], p=4, init_scale=0.5)
    runs += product_runs(method="momentum", lr=[0.005, 0.01], momentum=[0.5, 0.9], p=4)
    return run_sweep((X, y), runs, 400, record=20, command="pytest")


def _trained_by_hand(res: SweepResult) -> np.ndarray:
    """Which runs trained, read straight off the recorded losses (the rule documented on SweepResult.failed_at).

    A run fails if it diverged, ends at or above its initial loss, or ends at 2× (COLLAPSE_FACTOR) its
    best recorded loss or more, unless it ends within 100 float eps × its initial loss of its best.
    """
    out = np.zeros(len(res), dtype=bool)
    for i in range(len(res)):
        if np.isfinite(res.diverged_at[i]):
            continue
        loss = res.loss[i]
        round_off = loss[-1] - loss.min() <= 100 * np.finfo(res.dtype).eps * abs(loss[0])
        out[i] = loss[-1] < loss[0] and (round_off or loss[-1] < 2 * loss.min())
    return out


def _select_by_hand(res: SweepResult, rule: str, by: list[str]) -> dict[tuple, int]:
    """Oracle for select_runs: group the runs, drop the failed ones, then filter to the winner in two stages.

    largest_stable: the largest lr, then the lowest final loss among those; best_final: the lowest final
    loss, then the largest lr; fastest_to_target: the smallest reached_at, then the largest lr.
    """
    ok = _trained_by_hand(res)
    if rule == op.FASTEST_TO_TARGET:
        ok &= np.isfinite(res.reached_at)
    final = np.array([res.loss[i, -1] for i in range(len(res))])
    lr = np.array([c.lr for c in res.configs])
    first, second = {LARGEST_STABLE: (-lr, final), BEST_FINAL: (final, -lr),
                     op.FASTEST_TO_TARGET: (res.reached_at, -lr)}[rule]
    picked = {}
    for key in {tuple(getattr(c, n) for n in by) for c in res.configs}:
        members = np.array([i for i, c in enumerate(res.configs)
                            if tuple(getattr(c, n) for n in by) == key and ok[i]])
        if members.size == 0:
            continue  # a group in which no run trained is left out
        top = members[first[members] == first[members].min()]
        picked[key] = int(top[np.argmin(second[top])])
    return picked


def test_select_runs_rules(lr_grid):
    """Every group present, each pick the one the oracle finds; the fixture's groups are gd N=1, gd N=2, momentum."""
    res = lr_grid
    assert res.diverged.any() and not res.diverged.all()
    assert not (res.trained ^ _trained_by_hand(res)).any()
    for rule in (LARGEST_STABLE, BEST_FINAL):
        for by in (["method", "depth"], ["method"], ["depth"], ["p"]):
            assert select_runs(res, rule, by=by) == _select_by_hand(res, rule, by), (rule, by)
    # Measured on this grid (runs 0-3: gd N=1, η = 0.01..0.5, η = 0.5 diverges; 4-7: gd N=2; 8-11: momentum
    # η ∈ {0.005, 0.01} × β ∈ {0.5, 0.9}): the largest stable η, and the momentum tie at η = 0.01 goes to β = 0.9,
    # whose final loss is lower (5.8568e-3 against 6.1328e-3).
    assert select_runs(res, LARGEST_STABLE, by=["method", "depth"]) == {("gd", 1): 2, ("gd", 2): 7,
                                                                      ("momentum", 1): 11}
    assert select_runs(res, BEST_FINAL, by=["method"]) == {("gd",): 7, ("momentum",): 11}
    # The default groups: every field but lr and the optimizer's hyper-parameters, in RunConfig's order
    # (method, depth, p, seed, init_scale, width, init_direction, init); momentum runs use init_scale 0.1.
    default = select_runs(res, BEST_FINAL)
    assert default == {("gd", 1, 4, 0, 0.5, 1, None, "balanced"): 2, ("gd", 2, 4, 0, 0.5, 1, None, "balanced"): 7,
                       ("momentum", 1, 4, 0, 0.1, 1, None, "balanced"): 11}


def _hand_result(rows, target=0.1):
    """A SweepResult built from (config, losses at steps 0..3, diverged_at) rows; reached_at read off the losses."""
    configs = tuple(c for c, _, _ in rows)
    loss = np.array([lo for _, lo, _ in rows], dtype=float)
    diverged_at = np.array([d for _, _, d in rows], dtype=float)
    reached = [np.flatnonzero(np.nan_to_num(lo, nan=np.inf) <= target) for lo in loss]
    B = len(rows)
    return SweepResult(configs=configs, steps=np.arange(4), loss=loss, diverged_at=diverged_at, w_e=np.zeros((B, 1)),
                       factors=tuple((np.zeros((1, 1)),) for _ in rows), weights_step=np.full(B, 3), num_iters=3,
                       wall_time=0.0, dtype="float64", device="cpu", target=target,
                       reached_at=np.array([r[0] if r.size else np.inf for r in reached]))


def test_select_runs_tie_breaks_collapses_and_empty_groups_on_a_hand_made_result():
    """Hand-made losses: a collapsed run that would win, ties on each rule's first key, a group that all failed."""
    never = op.training.NEVER

    def gd(lr, **kwargs):
        return RunConfig("gd", lr, p=4, **kwargs)

    def mom(lr, momentum):
        return RunConfig("momentum", lr, p=4, momentum=momentum)

    rows = [
        (gd(0.1), [1, 0.5, 0.08, 0.05], never),      # 0: reaches 0.1 at step 2, final 0.05
        (gd(0.2), [1, 0.4, 0.3, 0.1], never),        # 1: largest η that trained; reaches at step 3
        (gd(0.4), [1, 0.1, 0.01, 0.03], never),      # 2: collapsed (ends 3× its best): never picked
        (gd(0.8), [1, 5, np.nan, np.nan], 2),        # 3: diverged
        (gd(0.05), [1, 0.6, 0.3, 0.05], never),      # 4: ties run 0 on the final loss, smaller η
        (mom(0.2, 0.5), [1, 0.5, 0.3, 0.2], never),  # 5: ties run 6 on η, higher final loss
        (mom(0.2, 0.9), [1, 0.5, 0.1, 0.08], never),  # 6
        (mom(0.1, 0.9), [1, 0.1, 0.07, 0.06], never),  # 7: reaches at step 1, lowest final
        (mom(0.05, 0.5), [1, 0.1, 0.09, 0.09], never),  # 8: ties run 7 on reached_at, smaller η
        (gd(0.1, depth=2), [1, 9, np.nan, np.nan], 2),  # 9: the depth-2 group: diverged ...
        (gd(0.05, depth=2), [1, 1, 1, 1], never),    # 10: ... and stuck at its initial loss
    ]
    res = _hand_result(rows)
    assert res.trained.tolist() == _trained_by_hand(res).tolist() == [True, True, False, False, True, True, True,
                                                                       True, True, False, False]
    by = ["method", "depth"]
    expected = {LARGEST_STABLE: {("gd", 1): 1, ("momentum", 1): 6},
                BEST_FINAL: {("gd", 1): 0, ("momentum", 1): 7},
                op.FASTEST_TO_TARGET: {("gd", 1): 0, ("momentum", 1): 7}}
    for rule, picks in expected.items():
        assert select_runs(res, rule, by=by) == picks == _select_by_hand(res, rule, by), rule
    # Every group of the default grouping (here method and depth) is present unless all its runs failed.
    assert {k[:2] for k in select_runs(res, LARGEST_STABLE)} == {("gd", 1), ("momentum", 1)}


def test_a_run_converged_to_round_off_has_not_collapsed():
    """Near a zero loss the float32 moment form jitters around 0 (even below it): that is not a collapse, a real
    rise back is, and so is a rise above round-off from a best of 0."""
    never = op.training.NEVER
    gd = RunConfig("gd", 0.1, p=2)
    rows = [(gd, [0.5, 1e-3, -4e-8, 2e-8], never),    # 0: converged; ends "-0.5× its best": round-off
            (gd, [0.5, 1e-3, 0.0, 3e-6], never),      # 1: 3e-6 above its best of 0, 50 units of round-off
            (gd, [0.5, 1e-3, -4e-8, 1e-4], never),    # 2: back up by 1e-4 = 1,700 units: collapsed
            (gd, [0.5, 0.1, 0.3, 0.3], never),        # 3: collapsed at step 2 (3× its best)
            (gd, [0.0, 0.0, 0.0, 0.0], never)]        # 4: never left its initial loss: failed at step 0
    res = _hand_result(rows)
    res = SweepResult(**{**res.__dict__, "dtype": "float32"})
    assert res.failed_at.tolist() == [never, never, 3, 2, 0] and res.trained.tolist() == [True, True] + [False] * 3
    assert res.outcome(2).startswith("collapsed from step 3")
    # In float64 round-off is 2e-14 of the initial loss: the same rises are collapses.
    assert _hand_result(rows).failed_at.tolist() == [3, 3, 3, 2, 0]
    assert not (res.trained ^ _trained_by_hand(res)).any()


def test_largest_stable_skips_runs_stuck_at_the_saddle(problem):
    X, y = problem
    runs = (RunConfig("gd", 0.05, depth=2, p=4, init_scale=0.5), RunConfig("gd", 0.1, depth=2, p=4, init_scale=0.0))
    res = run_sweep((X, y), runs, 100)
    assert not res.diverged.any() and res.final_loss[1] == res.loss[1, 0]  # w = 0 is a critical point
    assert select_runs(res, LARGEST_STABLE, by=["method", "depth"]) == {("gd", 2): 0}
    # Grouped by init_scale as well, the stuck run is a group of its own, and it is left out.
    assert select_runs(res, LARGEST_STABLE, by=["depth", "init_scale"]) == {(2, 0.5): 0}
    with pytest.raises(ValueError, match="rule"):
        select_runs(res, "fastest")


def test_iterations_to_target(lr_grid):
    res = lr_grid
    target = float(np.nanmedian(res.loss[:, -1]))
    its = res.iterations_to(target)
    for i in range(len(res)):
        hits = [s for s, v in zip(res.steps, res.loss[i]) if v <= target]
        assert its[i] == (hits[0] if hits else np.inf)
        h = res.history(i)
        assert (h.iterations_to(target) or np.inf) == its[i]


def test_iterations_to_target_interpolated_between_records():
    never = float(op.training.NEVER)
    cfg = RunConfig("gd", 0.1, depth=1, p=2)
    rows = [(cfg, [1.0, 0.6, 0.2, 0.1], never),     # crosses 0.3 three quarters of the way from step 1 to 2
            (cfg, [0.25, 0.2, 0.15, 0.1], never),   # below 0.3 at its first record
            (cfg, [1.0, 0.9, 0.8, 0.7], never),     # never
            (cfg, [1.0, 0.5, np.nan, np.nan], 2.0)]  # read up to its divergence: never
    res = _hand_result(rows)
    np.testing.assert_array_equal(res.iterations_to(0.3), [2, 0, np.inf, np.inf])
    np.testing.assert_allclose(res.iterations_to(0.3, interpolate=True), [1.75, 0, np.inf, np.inf], rtol=1e-15)
    # at a recorded loss exactly: that record's step
    assert res.iterations_to(0.6, interpolate=True)[0] == 1.0


def test_iterations_to_target_interpolated_lies_within_one_record_spacing(lr_grid):
    res = lr_grid
    target = float(np.nanmedian(res.loss[:, -1]))
    coarse, fine = res.iterations_to(target), res.iterations_to(target, interpolate=True)
    np.testing.assert_array_equal(np.isfinite(coarse), np.isfinite(fine))
    for a, b in zip(coarse[np.isfinite(coarse)], fine[np.isfinite(fine)]):
        k = int(np.searchsorted(res.steps, a))
        assert (res.steps[k - 1] < b <= a) if k else (b == a)


def test_save_load_roundtrip_is_exact(lr_grid, tmp_path):
    res = lr_grid
    path = res.save(tmp_path / "sub" / "sweep.npz")
    back = SweepResult.load(path)
    assert back.configs == res.configs
    for name in ("steps", "loss", "diverged_at", "w_e", "weights_step"):
        a, b = getattr(res, name), getattr(back, name)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    for fa, fb in zip(res.factors, back.factors):
        assert len(fa) == len(fb) and all(np.array_equal(a, b) for a, b in zip(fa, fb))
    assert (back.num_iters, back.wall_time, back.dtype, back.device) == (res.num_iters, res.wall_time, res.dtype, res.device)
    assert back.provenance == res.provenance and back.provenance["command"] == "pytest"
    with np.load(path, allow_pickle=False) as f:
        assert "meta" in f.files


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(method="gd", lr=0.0), "lr"),
        (dict(method="gd", lr=-1e-3), "lr"),
        (dict(method="gd", lr=float("nan")), "lr"),
        (dict(method="sgd", lr=1e-3), "method"),
        (dict(method="gd", lr=1e-3, depth=0), "depth"),
        (dict(method="gd", lr=1e-3, p=3), "p"),
        (dict(method="gd", lr=1e-3, p=0), "p"),
        (dict(method="gd", lr=1e-3, init_scale=-0.1), "init_scale"),
        (dict(method="adam", lr=1e-3, width=4, depth=2), "width"),
        (dict(method="gd", lr=1e-3, momentum=0.9), "momentum"),
        (dict(method="momentum", lr=1e-3, momentum=1.0), "momentum"),
        (dict(method="adam", lr=1e-3, eps=0.0), "eps"),
    ],
)
def test_bad_run_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=rf"^{match} "):  # the message starts with the argument's name
        RunConfig(**kwargs)


def test_bad_sweep_arguments_raise(problem):
    X, y = problem
    cfg = RunConfig("gd", 1e-3)
    with pytest.raises(ValueError, match="runs"):
        run_sweep((X, y), [], 10)
    with pytest.raises(ValueError, match="num_iters"):
        run_sweep((X, y), [cfg], -1)
    with pytest.raises(ValueError, match="record"):
        run_sweep((X, y), [cfg], 10, record=0)
    with pytest.raises(ValueError, match="dtype"):
        run_sweep((X, y), [cfg], 10, dtype="float16")
    with pytest.raises(ValueError, match=r"^y must have shape \(64,\) to match X's 64 rows, got \(63,\)"):
        run_sweep((X, y[:-1]), [cfg], 10)


def test_defaults_and_helpers():
    assert RunConfig("adam", 1e-3).hyper == {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    assert RunConfig("adadelta", 1.0).hyper == {"rho": 0.9, "eps": 1e-6}
    assert len(product_runs(method="gd", depth=range(1, 4), lr=[1e-3, 1e-2])) == 6
    steps = log_steps(10**6, per_decade=5)
    assert steps[0] == 0 and steps[-1] == 10**6 and np.all(np.diff(steps) > 0) and len(steps) <= 32
    merged = log_steps(1000, per_decade=5, every=300)
    assert list(merged) == sorted(set(log_steps(1000, per_decade=5)) | {0, 300, 600, 900})
    assert merged.dtype == np.int64 and list(log_steps(7, every=7)) == list(log_steps(7))
    with pytest.raises(ValueError, match="^every"):
        log_steps(100, every=0)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------
def test_presets_cover_the_paper_sweeps():
    from overparam.ethanol import PRESETS

    paper = PRESETS["paper"]
    runs = paper.runs()
    assert paper.num_iters == 10**6
    for p in (2, 4):
        assert {c.depth for c in runs if c.method == "gd" and c.p == p} == set(range(1, 9))
    assert {c.method for c in runs if c.p == 4} == {"gd", "adagrad", "adadelta", "momentum", "adam"}
    # one common w_e(0): ||w_1|| = |omega_j| = s_N with s_N^N the same for every depth
    assert len({round(c.init_scale**c.depth, 12) for c in runs}) == 1


def test_cli_writes_results_and_figures(tmp_path, monkeypatch, data_dir):
    """The command line on the offline copy (conftest's ``data_dir``: OVERPARAM_DATA_DIR, else ../shared/data)."""
    import dataclasses

    from overparam import ethanol
    from overparam.__main__ import main

    tiny = dataclasses.replace(ethanol.PRESETS["fast"], num_iters=30, depths=(1, 2))
    monkeypatch.setitem(ethanol.PRESETS, "fast", tiny)
    out = tmp_path / "eth.npz"
    assert main(["ethanol", "--preset", "fast", "--out", str(out), "--data-dir", str(data_dir),
                 "--dtype", "float64"]) == 0
    res = SweepResult.load(out)
    assert res.num_iters == 30 and res.configs == tiny.runs() and res.dtype == "float64"
    assert res.provenance["command"].startswith("python -m overparam")
    assert res.provenance["cuda_graph"] is False
    # what changes the arithmetic is recorded too (the command line's defaults)
    assert {k: res.provenance[k] for k in ("fuse", "gram", "pad_rows", "chunk")} == \
        {"fuse": False, "gram": True, "pad_rows": 4, "chunk": 1000}
    for suffix in ("_depth_l2.png", "_depth_l4.png", "_teaser.png"):
        assert (tmp_path / f"eth{suffix}").stat().st_size > 10_000


def test_cli_cuda_graph_on_needs_a_cuda_device(tmp_path, capsys):
    from overparam.__main__ import main

    out = tmp_path / "eth.npz"
    assert main(["ethanol", "--preset", "fast", "--out", str(out), "--cuda-graph", "on"]) == 2
    assert "--cuda-graph on needs a CUDA --device, got 'cpu'" in capsys.readouterr().err
    assert not out.exists()


def test_cli_fuse_flag_reaches_run_sweep(tmp_path, monkeypatch, data_dir):
    """``--fuse`` is handed to run_sweep as ``fuse=True`` (the fused engine itself: tests/test_sweep_graph.py)."""
    import dataclasses

    from overparam import ethanol
    from overparam.__main__ import main
    from overparam.cli import ethanol as cli_ethanol

    monkeypatch.setitem(ethanol.PRESETS, "fast", dataclasses.replace(ethanol.PRESETS["fast"], num_iters=5, depths=(1,)))
    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs["fuse"])
        return run_sweep(*args, **{**kwargs, "fuse": False})

    monkeypatch.setattr(cli_ethanol, "run_sweep", spy)
    for flags in ([], ["--fuse"]):
        out = tmp_path / f"eth{len(flags)}.npz"
        assert main(["ethanol", "--preset", "fast", "--out", str(out), "--data-dir", str(data_dir), "--no-figures",
                     *flags]) == 0
    assert seen == [False, True]


# ---------------------------------------------------------------------------
# Fixed initial direction, exact iterations to a target, quarter decades
# ---------------------------------------------------------------------------
def test_init_direction_fixes_the_start_of_every_kind_of_run(problem):
    X, y = problem
    direction = tuple(float(v) for v in np.arange(1, X.shape[1] + 1))
    u = np.asarray(direction) / np.linalg.norm(direction)
    runs = (product_runs(method="gd", depth=[1, 2, 3], lr=0.01, init_scale=0.4, init_direction=direction)
            + product_runs(method="e2e", depth=[2, 3], lr=0.01, init_scale=0.4, init_direction=direction)
            + (RunConfig("gd", 0.01, depth=3, width=4, init_scale=0.4, init_direction=direction, seed=3),
               RunConfig("adam", 0.01, init_scale=0.4, init_direction=direction)))
    res = run_sweep((X, y), runs, 0)
    for i, cfg in enumerate(runs):
        np.testing.assert_allclose(res.w_e[i], 0.4**cfg.depth * u, rtol=1e-13)
        if cfg.method == "gd":
            np.testing.assert_allclose([np.linalg.norm(w) for w in res.factors[i]], 0.4, rtol=1e-13)
    # Without it the direction is the seeded random one, different from this one.
    plain = run_sweep((X, y), [RunConfig("gd", 0.01, init_scale=0.4)], 0)
    assert abs(plain.w_e[0] @ u / 0.4) < 0.99


def test_init_direction_axis_validation_and_file_roundtrip(problem, tmp_path):
    X, y = problem
    d = X.shape[1]
    one = product_runs(method="gd", depth=[1, 2], lr=0.01, init_direction=(1.0,) * d)
    assert len(one) == 2 and all(c.init_direction == (1.0,) * d for c in one)
    two = product_runs(method="gd", lr=0.01, init_direction=[(1.0,) * d, (2.0,) + (0.0,) * (d - 1)])
    assert [c.init_direction for c in two] == [(1.0,) * d, (2.0,) + (0.0,) * (d - 1)]
    assert RunConfig("gd", 0.01, init_direction=np.ones(3)).init_direction == (1.0, 1.0, 1.0)
    for bad in ((0.0, 0.0), (1.0, float("nan")), (), "ab", ((1.0, 2.0),)):
        with pytest.raises(ValueError, match="init_direction"):
            RunConfig("gd", 0.01, init_direction=bad)
    with pytest.raises(ValueError, match=f"init_direction must have length d = {d}"):
        run_sweep((X, y), [RunConfig("gd", 0.01, init_direction=(1.0, 1.0))], 1)
    res = run_sweep((X, y), one + two, 5)
    back = SweepResult.load(res.save(tmp_path / "dir.npz"))
    assert back.configs == res.configs
    assert select_runs(back, BEST_FINAL) == select_runs(res, BEST_FINAL)


@pytest.mark.parametrize("chunk", [7, 1000])
def test_reached_at_is_the_exact_first_step_below_target(problem, chunk):
    X, y = problem
    runs = product_runs(method="gd", depth=[1, 2], lr=[0.01, 0.05, 0.2], p=4, init_scale=0.5)
    runs += (RunConfig("gd", 5.0, p=4),)  # diverges at once: never counts as reaching anything
    every = run_sweep((X, y), runs, 300, record=1)
    target = float(np.nanmedian(every.loss[:, -1]))
    res = run_sweep((X, y), runs, 300, record=50, chunk=chunk, target=target)
    assert res.diverged[-1] and res.reached_at[-1] == op.training.NEVER
    for i in range(len(runs)):
        hit = np.flatnonzero(np.nan_to_num(every.loss[i], nan=np.inf) <= target)
        assert res.reached_at[i] == (hit[0] if hit.size else op.training.NEVER)
    assert np.isfinite(res.reached_at).sum() >= 2 and np.isinf(res.reached_at[:-1]).any()
    np.testing.assert_array_equal(res.loss, every.loss[:, res.steps])  # records unchanged by the target
    assert res.target == target and run_sweep((X, y), runs, 5).reached_at is None


def test_fastest_to_target_rule_and_file_roundtrip(problem, tmp_path):
    X, y = problem
    runs = product_runs(method="gd", depth=[1, 2], lr=[0.01, 0.05, 0.2, 5.0], p=4, init_scale=0.5)
    every = run_sweep((X, y), runs, 200)
    target = float(np.nanmedian(every.loss[:, -1]))
    res = run_sweep((X, y), runs, 200, record=40, target=target)
    picked = select_runs(res, op.FASTEST_TO_TARGET, by=["depth"])
    assert picked == _select_by_hand(res, op.FASTEST_TO_TARGET, ["depth"])
    # Measured: η = 0.2 is the only run of depth 2 to reach the target (step 56) and the fastest of depth 1
    # (step 39, against 184 for η = 0.05); η = 5 diverges and η = 0.01 does not get there in 200 steps.
    assert picked == {(1,): 2, (2,): 6} and res.reached_at[[2, 6]].tolist() == [39, 56]
    with pytest.raises(ValueError, match="target"):
        select_runs(every, op.FASTEST_TO_TARGET)
    back = SweepResult.load(res.save(tmp_path / "t.npz"))
    assert back.target == res.target
    np.testing.assert_array_equal(back.reached_at, res.reached_at)
    old = SweepResult.load(every.save(tmp_path / "old.npz"))
    assert old.target is None and old.reached_at is None
    for bad in (0.0, -1.0, float("inf"), "x"):
        with pytest.raises(ValueError, match="target"):
            run_sweep((X, y), runs, 5, target=bad)


def test_quarter_decades():
    assert op.quarter_decades(-4, 0) == [0.1, 0.178, 0.316, 0.562, 1.0]
    exact = op.quarter_decades(-13, -13, digits=None)[0]
    assert exact == 10 ** (-13 / 4) and exact != op.quarter_decades(-13, -13)[0]
    for args, match in (((2, 1), "^low_exp4 must be <= high_exp4, got 2, 1"),
                        ((0.5, 1), r"^low_exp4 must be an integer, got 0.5 \(float\)"),
                        ((0, 1, 0), "^digits must be an integer >= 1 or None, got 0")):
        with pytest.raises(ValueError, match=match):
            op.quarter_decades(*args)


# ---------------------------------------------------------------------------
# Results files: atomic saves, damaged files refused with one clear error
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_result(problem):
    return run_sweep(problem, [RunConfig("gd", 0.01), RunConfig("gd", 0.01, depth=2)], 5)


def test_interrupted_sweep_save_keeps_the_old_file(small_result, tmp_path, monkeypatch):
    """Bug: SweepResult.save wrote in place, so an interrupt left a broken file where a good one was."""
    path = small_result.save(tmp_path / "r.npz")
    good = path.read_bytes()

    def interrupted(fh, **arrays):
        fh.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        small_result.save(path)
    assert path.read_bytes() == good and list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    monkeypatch.undo()
    assert SweepResult.load(path).configs == small_result.configs


def _rewrite(path, drop=(), **replace):
    """Copy the members of an ``.npz`` into itself, without ``drop`` and with ``replace``."""
    with np.load(path) as f:
        members = {k: f[k] for k in f.files if k not in drop}
    np.savez(path, **(members | replace))


@pytest.mark.parametrize("damage", ["truncated", "not a zip", "missing member", "rows != configs",
                                    "missing factors", "no metadata"])
def test_damaged_sweep_file_is_not_a_valid_results_file(small_result, tmp_path, damage):
    """Bug: truncated or mismatched files raised KeyError/EOFError/BadZipFile, or loaded silently."""
    path = small_result.save(tmp_path / "r.npz")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "not a zip":
        path.write_bytes(b"this is not a results file\n")
    elif damage == "missing member":
        _rewrite(path, drop=["diverged_at"])
    elif damage == "rows != configs":
        _rewrite(path, loss=small_result.loss[:1])
    elif damage == "missing factors":
        _rewrite(path, drop=["factor_1_0"])
    else:
        _rewrite(path, drop=["meta"])
    with pytest.raises(op.InvalidResultsFile, match=f"{path.name}: not a valid results file"):
        SweepResult.load(path)


def test_missing_sweep_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results file"):
        SweepResult.load(tmp_path / "absent.npz")


# ---------------------------------------------------------------------------
# Clear errors (an audit found these raw)
# ---------------------------------------------------------------------------
def test_run_sweep_names_runs_and_record_and_checks_record_as_the_trainers_do(problem):
    """Bugs: record=2.0 gave "'float' object is not iterable", a single RunConfig "'RunConfig' object is not
    iterable", and an unsorted record=[3, 3, 1] was accepted while gradient_descent refused it."""
    X, y = problem
    cfg = RunConfig("gd", 1e-3)
    with pytest.raises(ValueError, match=r"^record must be an integer >= 1 \(every so many steps\) or a non-empty 1-D sequence of integer steps.*got 2.0"):
        run_sweep((X, y), [cfg], 50, record=2.0)
    with pytest.raises(ValueError, match=r"^record must be an integer >= 1 .* got None"):
        run_sweep((X, y), [cfg], 50, record=None)  # it raised AttributeError once the trainers' rule read record
    with pytest.raises(ValueError, match=r"^runs must be a non-empty sequence of RunConfig, got a single RunConfig"):
        run_sweep((X, y), cfg, 50)
    with pytest.raises(ValueError, match=r"^runs must be .* got runs\[1\] of type str"):
        run_sweep((X, y), [cfg, "gd"], 50)
    with pytest.raises(ValueError, match=r"^runs must be .* got int"):
        run_sweep((X, y), 3, 50)
    for record in ([3, 3, 1], [0, 60], [1.5, 2.0], [[1, 2]]):
        with pytest.raises(ValueError, match="^record must") as sweep_error:
            run_sweep((X, y), [cfg], 50, record=record)
        with pytest.raises(ValueError, match="^record must") as gd_error:
            op.gradient_descent(X, y, 2, 1e-3, 50, record=record)
        assert str(sweep_error.value) == str(gd_error.value), "one rule: training.check_record"
    res = run_sweep((X, y), [cfg], 50, record=np.array([1, 7, 20]))
    assert res.steps.tolist() == [0, 1, 7, 20, 50]


def test_sweep_readers_name_a_result_that_is_not_one(problem):
    """Bugs: SweepResult.history(99) raised IndexError; compare_sweeps(res, 3), op.ethanol.summary(3) and
    op.ethanol.precision_table(None, 0.1, 3) an AttributeError."""
    X, y = problem
    res = run_sweep((X, y), [RunConfig("gd", 1e-3), RunConfig("gd", 1e-2)], 5)
    for i in (99, 2, -1, 1.0):
        with pytest.raises(ValueError, match=r"^i must be a run index in 0\.\.1"):
            res.history(i)
    assert res.history(np.int64(1)).lr == 1e-2
    with pytest.raises(ValueError, match="^second must be a SweepResult"):
        op.compare_sweeps(res, 3)
    with pytest.raises(ValueError, match="^first must be a SweepResult"):
        op.compare_sweeps(None, res)
    with pytest.raises(ValueError, match="^result must be a SweepResult"):
        select_runs({"loss": []})
    with pytest.raises(ValueError, match="^result must be a SweepResult"):
        op.ethanol.summary(3)
    with pytest.raises(ValueError, match=r"^result must be a SweepResult .*got NoneType"):
        op.ethanol.precision_table(None, 0.1, 3)
    for reader in (op.ethanol.failed_groups, op.ethanol.plot_depth_sweep):
        with pytest.raises(ValueError, match="^result must be a SweepResult"):
            reader([], 2)
    for reader in (op.ethanol.teaser_runs, op.ethanol.plot_teaser):
        with pytest.raises(ValueError, match="^result must be a SweepResult"):
            reader("results.npz")


def test_save_names_provenance_that_json_cannot_hold(small_result, tmp_path):
    """Bug: a provenance entry JSON cannot hold raised json's bare TypeError, naming neither the file part nor the key."""
    broken = replace(small_result, provenance={"note": object()})
    with pytest.raises(TypeError, match=r"metadata\['provenance'\]\['note'\]"):
        broken.save(tmp_path / "r.npz")
    assert not (tmp_path / "r.npz").exists()


def test_run_config_refuses_an_init_scale_whose_power_overflows():
    """Bug: RunConfig("gd", 0.01, depth=3, init_scale=1e120) was accepted; its sweep run "diverged at step 0",
    which points at the learning rate (balanced_init refuses such a scale)."""
    with pytest.raises(ValueError, match=r"^init_scale must keep init_scale\*\*depth a finite float, got "
                                         r"init_scale=1e\+120 and depth=3"):
        RunConfig("gd", 0.01, depth=3, init_scale=1e120, p=4)
    assert RunConfig("gd", 0.01, depth=3, init_scale=1e100, p=4).init_scale == 1e100  # 1e300: finite


def test_run_sweep_says_a_non_finite_start_is_not_the_learning_rate(problem):
    """Bug: data scaled by 1e100 gave outcome(0) "diverged at step 0"; the trainers say the learning rate is not
    the cause, and so does the sweep now."""
    X, y = problem
    with pytest.raises(ValueError, match=r"^run_sweep: the loss at the start is (inf|nan) .* the learning rate is "
                                         "not the cause"):
        run_sweep((X * 1e100, y), [RunConfig("gd", 0.01, p=4)], 3)


def test_run_sweep_checks_progress_before_any_work(problem):
    """Bug: progress="yes" raised "'str' object is not callable" after the first chunk."""
    with pytest.raises(ValueError, match=r"^progress must be None or a callable \(done, total\), got 'yes' \(str\)"):
        run_sweep(problem, [RunConfig("gd", 0.01, p=4)], 3, progress="yes")


def test_load_says_a_file_that_is_not_an_npz_archive_is_not_one(tmp_path):
    """Bug: an HTML page saved as a results file gave numpy's advice to load it with allow_pickle=True."""
    path = tmp_path / "page.npz"
    path.write_bytes(b"<!DOCTYPE html><html><body>404 Not Found</body></html>")
    with pytest.raises(op.InvalidResultsFile, match=r"page\.npz: not a valid results file \(it is not an \.npz "
                                                    r"archive: damaged, or not a results file\)") as info:
        SweepResult.load(path)
    assert "pickle" not in str(info.value)


def test_run_config_names_a_method_that_is_not_a_string():
    """Bug: RunConfig(["gd"], 0.1) raised "unhashable type: 'list'"."""
    with pytest.raises(ValueError, match=r"^method must be one of .* got \['gd'\]"):
        RunConfig(["gd"], 0.1)


def test_differs_from_names_the_first_field_that_is_another_run():
    base = RunConfig("gd", 1e-3, depth=3, init_scale=0.2364886821865924, init_direction=(0.1, -0.2))
    assert base.differs_from(base) is None
    ulp = replace(base, init_scale=0.23648868218659244, init_direction=(0.1, -0.20000000000000004))
    assert base != ulp and base.differs_from(ulp) is None and ulp.differs_from(base) is None
    assert base.differs_from(ulp, rtol=0) == "init_scale"
    # an entry near zero is compared with the vector's largest entry, not with itself
    cancelled = replace(base, init_direction=(0.1, -0.2, 1e-17))
    assert cancelled.differs_from(replace(base, init_direction=(0.1, -0.2, 2e-17))) is None
    assert cancelled.differs_from(replace(base, init_direction=(0.1, -0.2, 1e-12))) == "init_direction"
    assert base.differs_from(replace(base, lr=1.001e-3)) == "lr"
    assert base.differs_from(replace(base, depth=2)) == "depth"
    assert base.differs_from(replace(base, init_direction=(0.1, -0.2, 0.0))) == "init_direction"
    assert base.differs_from(replace(base, init_direction=None)) == "init_direction"
    assert base.differs_from(replace(base, method="e2e", width=1)) == "method"
    with pytest.raises(TypeError, match="other must be a RunConfig, got dict"):
        base.differs_from({"method": "gd"})
    with pytest.raises(ValueError, match="rtol"):
        base.differs_from(base, rtol=-1)
