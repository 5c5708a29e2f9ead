"""The sweep engine's CUDA-graph path: the invariants it rests on (checked on the CPU) and, where a GPU is
present, the replay against the eager loop and the CPU engine.

A captured CUDA graph replays fixed kernels on fixed memory. It is only correct if every iteration of a
chunk reads and writes the same tensors: no block may rebind an attribute, and nothing may depend on a
Python-side step number. The CPU tests below check exactly that; ``scripts/gpu_sweep_check.sh`` runs the
CUDA tests on a device machine.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import overparam as op
from overparam.sweep import RunConfig, _Adam, _Chunks, _iterate, _Lockstep, _Steps, product_runs, run_sweep

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _problem(m: int = 80, d: int = 5, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, d))
    X = (X - X.mean(0)) / X.std(0)
    y = X @ rng.standard_normal(d) + 0.2 * rng.standard_normal(m)
    return X, (y - y.mean()) / y.std()


def _every_kind_of_run() -> list[RunConfig]:
    """One or more runs of every block kind and optimizer, both losses, one run that diverges."""
    runs = product_runs(method="gd", depth=[1, 2, 4], p=[2, 4], lr=[1e-2], init_scale=0.3)
    runs += product_runs(method="gd", depth=2, p=4, lr=[5.0], init_scale=0.3)  # diverges within a few steps
    runs += product_runs(method="e2e", depth=[2, 3], p=[2, 4], lr=[1e-2], init_scale=0.3)
    runs += product_runs(method="momentum", depth=[1, 2], p=4, lr=[1e-2], init_scale=0.3)
    runs += product_runs(method="adagrad", depth=[1, 3], p=4, lr=[1e-2], init_scale=0.3)
    runs += product_runs(method="adadelta", depth=[1, 2], p=4, lr=[0.5], init_scale=0.3)
    runs += product_runs(method="adam", depth=[1, 2], p=[2, 4], lr=[1e-2], init_scale=0.3)
    runs += product_runs(method="gd", depth=3, width=4, p=[2, 4], lr=[1e-2], init_scale=0.5)
    return list(runs)


def _tensors(obj, path: str = "prog", seen: set | None = None,
             found: dict[str, torch.Tensor] | None = None) -> dict[str, tuple[int, tuple[int, ...]]]:
    """Every tensor reachable from ``obj``'s attributes, lists and tuples: path -> (address, shape).

    ``found``, if given, also receives path -> the tensor itself.
    """
    seen = set() if seen is None else seen
    if isinstance(obj, torch.Tensor):
        if found is not None:
            found[path] = obj
        return {path: (obj.data_ptr(), tuple(obj.shape))}
    if id(obj) in seen or isinstance(obj, (str, bytes, int, float, np.ndarray, RunConfig)):
        return {}
    seen.add(id(obj))
    out: dict[str, tuple[int, tuple[int, ...]]] = {}
    if isinstance(obj, (list, tuple)):
        for i, x in enumerate(obj):
            out |= _tensors(x, f"{path}[{i}]", seen, found)
    elif isinstance(obj, dict):
        for k, x in obj.items():
            out |= _tensors(x, f"{path}[{k!r}]", seen, found)
    elif hasattr(obj, "__dict__"):
        for k, x in vars(obj).items():
            out |= _tensors(x, f"{path}.{k}", seen, found)
    return out


def test_every_block_updates_its_tensors_in_place():
    """Iterations, a snapshot, a restore-and-freeze: no tensor of the program moves or changes shape."""
    X, y = _problem()
    prog = _Lockstep(X, y, _every_kind_of_run(), torch.float32, torch.device("cpu"), gram=True, pad_rows=4)
    raw = torch.empty(6, prog.rows)
    before = _tensors(prog)
    kinds = {type(block).__name__ for _, block in prog.blocks}
    assert kinds == {"_ScalarNets", "_EndToEnd", "_WideNets"}
    assert len(before) > 40  # the walk reaches the blocks' and optimizers' state
    steps = _Steps(prog, fuse=False)
    _iterate(steps, raw, 6, 6)
    snap = prog.snapshot()
    _iterate(steps, raw, 6, 5)
    prog.restore_and_freeze(np.array([0, 5, prog.rows - 1]), snap)
    _iterate(steps, raw, 6, 6)
    assert _tensors(prog) == before
    # The check can fail: rebinding one attribute, as write_we once did, is caught.
    block = next(b for _, b in prog.blocks if type(b).__name__ == "_WideNets")
    block.above[0] = block.above[0].clone()
    assert _tensors(prog) != before


def test_step_count_lives_on_the_device_and_counts_updates():
    X, y = _problem()
    prog = _Lockstep(X, y, [RunConfig("adam", 1e-2)], torch.float64, torch.device("cpu"), gram=True, pad_rows=1)
    raw = torch.empty(5, prog.rows, dtype=torch.float64)
    _iterate(_Steps(prog, fuse=False), raw, 5, 4)
    _iterate(_Steps(prog, fuse=False), raw, 3, 3)
    assert isinstance(prog.count, torch.Tensor) and prog.count.dtype == torch.float64
    assert float(prog.count) == 4 + 3 + 1  # t + 1 of the next update


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adam_power_of_a_device_count_equals_torch_pow_of_an_int(dtype):
    """The bias correction reads t from a tensor; it must be bit for bit ``β.pow(t)`` with a Python int t."""
    beta = torch.tensor([[0.9], [0.999], [0.95], [0.99], [0.5], [0.123]], dtype=dtype)
    for t in [*range(1, 1500), *range(999_990, 1_000_002)]:
        count = torch.tensor([float(t)], dtype=torch.float64)  # the engine's count: one element
        got = _Adam._power(beta.double(), beta * beta * beta, count, count == 3)
        assert torch.equal(got, beta.pow(t)), t


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_does_not_depend_on_how_steps_are_chunked(dtype):
    """The step number carries across chunks: chunks of 3 and of 50 give the same bits."""
    X, y = _problem()
    runs = product_runs(method="adam", depth=[1, 2], p=[2, 4], lr=[1e-2, 3e-2], init_scale=0.3)
    a = run_sweep((X, y), runs, 120, dtype=dtype, chunk=3)
    b = run_sweep((X, y), runs, 120, dtype=dtype, chunk=50)
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(a.w_e, b.w_e)


class _FakeCuda:
    """Stands in for ``torch.cuda`` with the semantics a real capture has: the captured body changes nothing
    (its effects are undone here), and each replay runs the body once."""

    def __init__(self, chunks: _Chunks):
        self.chunks, self.captures, self.replays = chunks, 0, 0

    def install(self, monkeypatch) -> None:
        import contextlib

        fake = self

        class Stream:
            def __init__(self, *a, **k):
                pass

            def wait_stream(self, other):
                pass

        class Graph:
            def replay(self):
                fake.replays += 1
                _iterate(fake.chunks.steps, fake.chunks.raw, fake.chunks.chunk, fake.chunks.chunk)

        @contextlib.contextmanager
        def graph(g, stream=None):
            state = [x.clone() for x in self._state()]
            yield
            for x, saved in zip(self._state(), state):
                x.copy_(saved)
            fake.captures += 1

        for name, value in {"device": lambda d: contextlib.nullcontext(), "Stream": Stream,
                            "current_stream": lambda d=None: Stream(), "stream": lambda s: contextlib.nullcontext(),
                            "CUDAGraph": Graph, "graph": graph}.items():
            monkeypatch.setattr(torch.cuda, name, value)

    def _state(self) -> list[torch.Tensor]:
        """Every tensor of the program (by the walk of ``_tensors``), and ``raw``."""
        found: dict[str, torch.Tensor] = {}
        _tensors(self.chunks.steps.prog, found=found)
        return [*found.values(), self.chunks.raw]


def test_graph_chunks_run_warm_up_capture_and_replays_in_the_eager_order(monkeypatch):
    """With a stand-in for torch.cuda that behaves as a capture does, the graph path's chunk logic (warm-up,
    capture once, replay every full chunk, eager tail) gives the eager path's bits after every chunk."""
    X, y = _problem()

    def fresh() -> tuple[_Steps, torch.Tensor]:
        prog = _Lockstep(X, y, _every_kind_of_run(), torch.float32, torch.device("cpu"), gram=True, pad_rows=4)
        return _Steps(prog, fuse=False), torch.empty(5, prog.rows)

    eager, graph = _Chunks(*fresh(), 5, cuda_graph=False), _Chunks(*fresh(), 5, cuda_graph=True)
    fake = _FakeCuda(graph)
    fake.install(monkeypatch)
    for n, updates in [(5, 5), (5, 5), (5, 5), (5, 5), (3, 2)]:
        eager.run(n, updates)
        graph.run(n, updates)
        # the lr = 5 run blows up
        for a, b in [(eager.raw[:n], graph.raw[:n]), (eager.steps.prog.We, graph.steps.prog.We)]:
            torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)
        assert torch.equal(eager.steps.prog.count, graph.steps.prog.count)
    assert (fake.captures, fake.replays) == (1, 3)
    assert float(graph.steps.prog.count) == 4 * 5 + 2 + 1


def test_cuda_graph_argument_is_checked_and_recorded():
    X, y = _problem()
    cfg = [RunConfig("gd", 1e-2)]
    with pytest.raises(ValueError, match="cuda_graph=True needs a CUDA device, got device='cpu'"):
        run_sweep((X, y), cfg, 5, cuda_graph=True)
    with pytest.raises(ValueError, match="cuda_graph must be True, False or None, got 'yes'"):
        run_sweep((X, y), cfg, 5, cuda_graph="yes")
    assert run_sweep((X, y), cfg, 5).provenance["cuda_graph"] is False


def _sweep(device: str, cuda_graph: bool | None, dtype: str = "float32", num_iters: int = 1_000, chunk: int = 100,
           fuse: bool = False):
    X, y = _problem()
    return run_sweep((X, y), _every_kind_of_run(), num_iters, record=10, dtype=dtype, device=device, chunk=chunk,
                     cuda_graph=cuda_graph, fuse=fuse)


@cuda
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cuda_graph_replay_equals_the_eager_loop_on_the_device(dtype):
    """The same kernels on the same memory: the replayed sweep gives the eager sweep's bits."""
    eager, graph = _sweep("cuda", False, dtype), _sweep("cuda", True, dtype)
    assert graph.provenance["cuda_graph"] is True
    np.testing.assert_array_equal(graph.diverged_at, eager.diverged_at)
    np.testing.assert_array_equal(graph.loss, eager.loss)
    np.testing.assert_array_equal(graph.w_e, eager.w_e)


@cuda
def test_cuda_graph_sweep_agrees_with_the_cpu_engine():
    """Same frozen runs, and final losses within float32 round-off of the CPU engine's."""
    cpu, graph = _sweep("cpu", None), _sweep("cuda", None)
    np.testing.assert_array_equal(graph.diverged_at, cpu.diverged_at)
    np.testing.assert_array_equal(graph.weights_step, cpu.weights_step)
    trained = ~np.isfinite(cpu.diverged_at)
    assert trained.sum() == len(cpu) - 1
    np.testing.assert_allclose(graph.final_loss[trained], cpu.final_loss[trained], rtol=1e-4)
    np.testing.assert_allclose(graph.w_e[trained], cpu.w_e[trained], rtol=1e-3, atol=1e-5)


def test_compare_sweeps_reports_divergence_and_final_loss_agreement():
    """float32 against float64 of the same runs: the same run diverges at the same step, losses close."""
    X, y = _problem()
    runs = _every_kind_of_run()
    single, double = (run_sweep((X, y), runs, 300, dtype=dt) for dt in ("float32", "float64"))
    cmp = op.compare_sweeps(single, double)
    diverging = [i for i, c in enumerate(runs) if c.lr == 5.0]
    assert cmp.runs == len(runs) and cmp.diverged_in_both == tuple(diverging) and cmp.same_divergence_step
    assert cmp.diverged_only_first == cmp.diverged_only_second == ()
    assert len(cmp.completed_in_both) == len(runs) - 1
    assert 1e-9 < cmp.max_rel_diff < 1e-4 and cmp.median_rel_diff <= cmp.max_rel_diff
    assert op.compare_sweeps(double, double).max_rel_diff == 0
    assert set(cmp.as_dict()) >= {"runs", "max_rel_diff", "diverged_only_first"}
    # A run that diverged in one sweep only is named as such, and a different step is noticed.
    diverged_at = double.diverged_at.copy()
    diverged_at[0], diverged_at[diverging[0]] = 7, diverged_at[diverging[0]] + 1
    other = op.compare_sweeps(double, dataclasses.replace(double, diverged_at=diverged_at))
    assert other.diverged_only_second == (0,) and other.diverged_only_first == () and not other.same_divergence_step
    assert len(other.completed_in_both) == len(runs) - 2
    shifted = run_sweep((X, y), [*runs[:-1], dataclasses.replace(runs[-1], lr=0.02)], 300)
    with pytest.raises(ValueError, match="first and second must be sweeps of the same runs"):
        op.compare_sweeps(double, shifted)
    with pytest.raises(ValueError, match="same runs"):
        op.compare_sweeps(double, run_sweep((X, y), runs, 10))


def _fused_agrees(fused, eager, rtol: float) -> None:
    """The same runs frozen at the same steps, and the recorded losses within ``rtol`` of each other."""
    np.testing.assert_array_equal(fused.diverged_at, eager.diverged_at)
    np.testing.assert_array_equal(fused.weights_step, eager.weights_step)
    np.testing.assert_allclose(fused.loss, eager.loss, rtol=rtol, atol=0, equal_nan=True)
    np.testing.assert_allclose(fused.w_e, eager.w_e, rtol=rtol, atol=rtol * np.abs(eager.w_e).max())


def test_fused_sweep_compiles_two_whole_programs_and_agrees_with_the_eager_engine():
    """``fuse=True`` (torch.compile; inductor's C++ kernels on the CPU): each half of an iteration is one
    program, traced once (no graph break, no recompilation across iterations), and every block kind gives
    the eager engine's losses to float64 round-off, its diverging run frozen at the same step.

    This also catches a lost in-place update: torch.compile (2.13) dropped ``count.add_(1)`` on a 0-d
    tensor, which left Adam's bias correction at t = 1 and its losses over 90% off by step 300.
    """
    from torch._dynamo.utils import counters

    eager = _sweep("cpu", None, "float64", num_iters=300)
    counters.clear()
    fused = _sweep("cpu", None, "float64", num_iters=300, fuse=True)
    assert fused.provenance["fuse"] is True and eager.provenance["fuse"] is False
    assert counters["stats"]["unique_graphs"] == 2, dict(counters["stats"])
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert np.isfinite(eager.diverged_at).sum() == 1
    _fused_agrees(fused, eager, rtol=1e-9)
    # fused, not the eager loop again: the kernels round differently (501 of 683 recorded losses, measured)
    assert np.any(fused.loss != eager.loss)


def test_fuse_and_gram_arguments_are_checked():
    X, y = _problem()
    with pytest.raises(ValueError, match="^fuse must be True or False, got 'yes'"):
        run_sweep((X, y), [RunConfig("gd", 1e-2)], 5, fuse="yes")
    with pytest.raises(ValueError, match="^gram must be True or False, got 'yes'"):  # was accepted, as True
        run_sweep((X, y), [RunConfig("gd", 1e-2)], 5, gram="yes")


@cuda
def test_fused_cuda_graph_sweep_agrees_with_the_eager_device_engine():
    """torch.compile's Triton kernels captured in the chunk's CUDA graph: float32 round-off of the eager sweep."""
    eager = _sweep("cuda", False)
    fused = _sweep("cuda", True, fuse=True)
    assert fused.provenance["cuda_graph"] is True and fused.provenance["fuse"] is True
    _fused_agrees(fused, eager, rtol=1e-3)
