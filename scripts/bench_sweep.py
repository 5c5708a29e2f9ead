"""Benchmark the sweep engine: microseconds per run-iteration on the Ethanol ℓ4 problem.

Usage (from the repository root)::

    .venv/bin/python scripts/bench_sweep.py [--iters 2000] [--threads 2] [--dtype float32] [--json out.json]
    python3 scripts/bench_sweep.py --device cuda --iters 5000 --json out.json   # on a GPU (3,000 or more)

Rows of the table, all on the standardized Ethanol problem (2565 x 128), ℓ4 loss, depth-2
networks with a scalar hidden layer, full-batch gradient descent:

(a) the naive PyTorch loop: ``nn.Linear(128, 1)`` then ``nn.Linear(1, 1)`` (no biases),
    ``loss.backward()``, ``torch.optim.SGD.step()``, one run;
(b) :func:`overparam.sweep.run_sweep` with B = 1 (default padding to 4 rows), and (b') with
    ``pad_rows=1``;
(c) ``run_sweep`` with B = 32 runs, and (c') with B = 110 (the size of the paper-scale sweeps);
(d) the bare matrix products alone, ``R = X @ W`` and ``G = X.T @ R`` with W of shape (d, 32);
    (d') the same products in the engine's layout, ``R = W_e @ [X, -y].T`` and ``G = R @ [X, -y]``,
    for 32 and for 110 rows.

On a CUDA device the engine rows (b), (b'), (c), (c') appear twice: with ``cuda_graph=False`` (one
kernel launch from Python per tensor operation, the engine before CUDA graphs) and with
``cuda_graph=True`` (a chunk of iterations captured once and replayed). A graph sweep runs its first
chunk (1,000 iterations) eagerly as the warm-up before capture, and the second is captured, so its
rows are the marginal cost of the replayed iterations: the time from iteration 2,000 to ``--iters``
over those iterations, read off the timestamps at the chunk boundaries that ``run_sweep``'s
``progress`` reports (it is called after each chunk's losses reached the host, so the device has
finished them). That needs ``--iters`` >= 3000. The bare pairs there are timed eagerly and as one
captured graph, so that "the device's floor" is the matmul pair without launches.

With ``--fuse`` the rows (b), (c), (c') appear once more with ``fuse=True`` (each iteration compiled by
``torch.compile``; on a CUDA device together with the CUDA graph). Compiling happens in the first chunk,
so these rows too are marginal: from iteration 1,000 on the CPU, 2,000 on a CUDA device. They are timed
last, and a failure of torch.compile there is reported (in the table and under "failed" in the JSON)
without costing any other row.

The targets: (c) at least 30x cheaper per run-iteration than (a), and within 2x of (d).
This is a measurement, not a test: it asserts nothing. Each row is the best of ``--repeats``
timings. Other processes on the machine inflate all rows; compare rows of one invocation only.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import overparam as op  # noqa: E402
from overparam.files import atomic_write  # noqa: E402
from overparam.sweep import product_runs, run_sweep  # noqa: E402


def best_time(fn: Callable[[], None], repeats: int) -> float:
    """Smallest wall time of ``repeats`` calls of ``fn`` (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def naive_loop(X: torch.Tensor, y: torch.Tensor, iters: int, lr: float) -> Callable[[], None]:
    net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 1, bias=False), torch.nn.Linear(1, 1, bias=False))
    net.to(device=X.device, dtype=X.dtype)
    opt = torch.optim.SGD(net.parameters(), lr=lr)

    def run() -> None:
        for _ in range(iters):
            opt.zero_grad()
            loss = ((net(X).squeeze(1) - y) ** 4).mean() / 4
            loss.backward()
            opt.step()
        float(loss.detach())  # wait for the device

    return run


def _engine_runs(batch: int) -> list:
    return product_runs(method="gd", depth=2, p=4, lr=list(np.geomspace(2e-4, 1e-3, batch)))


def engine(problem: op.Standardized, batch: int, iters: int, dtype: str, device: str, **kw) -> Callable[[], None]:
    runs = _engine_runs(batch)
    return lambda: run_sweep(problem, runs, iters, record=100, dtype=dtype, device=device, **kw)


def engine_marginal(problem: op.Standardized, batch: int, iters: int, start: int, dtype: str, device: str,
                    **kw) -> Callable[[], float]:
    """A call runs one sweep of ``iters`` iterations and returns its seconds per iteration from ``start`` on."""
    runs = _engine_runs(batch)

    def run() -> float:
        stamps: dict[int, float] = {}
        run_sweep(problem, runs, iters, record=100, dtype=dtype, device=device,
                  progress=lambda done, total: stamps.setdefault(done, time.perf_counter()), **kw)
        return (stamps[iters] - stamps[start]) / (iters - start)

    return run


def _looped(step: Callable[[], torch.Tensor], iters: int, graph: bool) -> Callable[[], None]:
    """``iters`` calls of ``step`` (which writes into fixed tensors), eagerly or as one captured CUDA graph."""
    if not graph:
        def run() -> None:
            for _ in range(iters):
                out = step()
            float(out.flatten()[0])  # wait for the device
        return run
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        out = step()  # warm-up before capture
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g, stream=side):
        for _ in range(iters):
            out = step()

    def replay() -> None:
        g.replay()
        float(out.flatten()[0])

    return replay


def _small_random(shape: tuple[int, int], like: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A seeded N(0, 0.01²) matrix of ``like``'s dtype and device (the timed products' weights)."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=gen, dtype=like.dtype) * 0.01).to(like.device)


def bare_pair(A: torch.Tensor, B: torch.Tensor, iters: int, graph: bool = False) -> Callable[[], None]:
    """``iters`` times: R = A @ W, G = B @ R (column layout) ."""
    W = _small_random((A.shape[1], 32), A)
    R = torch.empty(A.shape[0], 32, dtype=A.dtype, device=A.device)
    G = torch.empty(B.shape[0], 32, dtype=A.dtype, device=A.device)
    return _looped(lambda: torch.mm(B, torch.mm(A, W, out=R), out=G), iters, graph)


def bare_pair_rows(Xa: torch.Tensor, iters: int, rows: int = 32, graph: bool = False) -> Callable[[], None]:
    """``iters`` times: R = W_e @ Xaᵀ, G = R @ Xa (the engine's row layout)."""
    XaT = Xa.T.contiguous()
    W = _small_random((rows, Xa.shape[1]), Xa)
    R = torch.empty(rows, Xa.shape[0], dtype=Xa.dtype, device=Xa.device)
    G = torch.empty(rows, Xa.shape[1], dtype=Xa.dtype, device=Xa.device)
    return _looped(lambda: torch.mm(torch.mm(W, XaT, out=R), Xa, out=G), iters, graph)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=2000, help="iterations per timing (default 2000)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per row; the best is kept")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None, help="folder with gas_sensor/ (default: OVERPARAM_DATA_DIR)")
    parser.add_argument("--fuse", action="store_true",
                        help="also time the engine rows with fuse=True (torch.compile; each sweep compiles anew)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = op.load_ethanol(args.data_dir)
    problem = op.standardize(data.X, data.y)
    tdtype = getattr(torch, args.dtype)
    X = torch.tensor(problem.X, dtype=tdtype, device=args.device)
    y = torch.tensor(problem.y, dtype=tdtype, device=args.device)
    Xa = torch.cat([X, -y[:, None]], dim=1)
    n, reps = args.iters, args.repeats

    on_cuda = torch.device(args.device).type == "cuda"
    graphs = [False, True] if on_cuda else [False]

    def tag(graph: bool) -> str:
        return (", CUDA graph" if graph else ", eager") if on_cuda else ""

    # Marginal rows start timing here: after the warm-up chunk (and, on CUDA, the captured one).
    start = 2000 if on_cuda else 1000
    if (on_cuda or args.fuse) and n < start + 1000:
        parser.error(f"--iters must be >= {start + 1000} {'on a CUDA device' if on_cuda else 'with --fuse'} (the "
                     f"graph and fused rows time iterations {start} to --iters), got {n}")

    def whole(fn: Callable[[], None]) -> Callable[[], float]:
        return lambda: best_time(fn, reps) / n * 1e6

    def marginal(fn: Callable[[], float]) -> Callable[[], float]:
        return lambda: min(fn() for _ in range(reps)) * 1e6

    # (name, B, a call that returns microseconds per iteration, the iterations it timed or None: all)
    rows = [("(a) naive loop: nn.Linear x2, backward, SGD.step", 1, whole(naive_loop(X, y, n, 1e-3)), None)]
    engine_rows = [("(b) engine, B = 1", 1, {}), ("(b') engine, B = 1, pad_rows=1", 1, {"pad_rows": 1}),
                   ("(c) engine, B = 32", 32, {}), ("(c') engine, B = 110", 110, {})]
    for g in graphs:
        kw = {"cuda_graph": g} if on_cuda else {}
        for label, batch, extra in engine_rows:
            if g:
                fn = marginal(engine_marginal(problem, batch, n, start, args.dtype, args.device, **kw, **extra))
                rows.append((f"{label}{tag(g)}", batch, fn, [start, n]))
            else:
                rows.append((f"{label}{tag(g)}", batch, whole(engine(problem, batch, n, args.dtype, args.device,
                                                                     **kw, **extra)), None))
    for g in graphs:
        rows += [
            (f"(d) bare X @ W, X.T @ R (W: d x 32){tag(g)}", 32, whole(bare_pair(X, X.T.contiguous(), n, g)), None),
            (f"(d') bare pair, engine layout (32 rows){tag(g)}", 32, whole(bare_pair_rows(Xa, n, 32, g)), None),
            (f"(d') bare pair, engine layout (110 rows){tag(g)}", 110, whole(bare_pair_rows(Xa, n, 110, g)), None),
        ]
    # Last, so that a torch.compile failure (another torch version may trace differently) costs no other row.
    if args.fuse:
        kw = {"cuda_graph": True} if on_cuda else {}
        for label, batch, extra in engine_rows:
            if not extra:
                fn = marginal(engine_marginal(problem, batch, n, start, args.dtype, args.device, fuse=True, **kw))
                rows.append((f"{label}{tag(on_cuda)}, fused", batch, fn, [start, n]))
    meta = {"dtype": args.dtype, "device": args.device, "threads": torch.get_num_threads(), "iters": n,
            "repeats": reps, "fuse_rows": args.fuse, "torch": torch.__version__, "machine": platform.machine(),
            "processor": platform.processor(),
            "gpu": torch.cuda.get_device_name(torch.device(args.device)) if on_cuda else None}
    results = {}
    failed: dict[str, str] = {}
    for name, batch, measure, span in rows:
        try:
            per_iter = measure()
        except Exception as err:  # only the fused rows may fail: their error is reported, the table goes on
            if not name.endswith(", fused"):
                raise
            failed[name] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            print(f"  {name}: failed: {failed[name]}", file=sys.stderr, flush=True)
        else:
            results[name] = {"batch": batch, "us_per_iter": per_iter, "us_per_run_iter": per_iter / batch,
                             "marginal_over_iters": span}
            print(f"  {name}: {per_iter:.1f} us/iter", file=sys.stderr, flush=True)
        if args.json:  # after every row, so that a run stopped at a time limit keeps the rows it finished
            record = {"meta": meta, "rows": results, "failed": failed}
            atomic_write(args.json, lambda f: f.write(json.dumps(record, indent=2).encode()))

    naive = results[rows[0][0]]["us_per_run_iter"]
    print(f"Ethanol ℓ4, {args.dtype}, device {args.device}, torch threads {torch.get_num_threads()}, "
          f"{n} iterations per timing, best of {reps}" + (f"; CUDA-graph and fused engine rows: iterations "
                                                           f"{start} to {n}" if on_cuda or args.fuse else ""))
    print(f"{'':66s} {'B':>3s} {'us/iter':>9s} {'us/run-iter':>12s} {'vs (a)':>8s}")
    for name, r in results.items():
        print(f"{name:66s} {r['batch']:3d} {r['us_per_iter']:9.1f} {r['us_per_run_iter']:12.2f} "
              f"{naive / r['us_per_run_iter']:7.1f}x")
    for name, why in failed.items():
        print(f"{name:66s} failed: {why}")
    for g in graphs:
        c = results[f"(c) engine, B = 32{tag(g)}"]["us_per_run_iter"]
        d = min(results[f"(d) bare X @ W, X.T @ R (W: d x 32){tag(g)}"]["us_per_run_iter"],
                results[f"(d') bare pair, engine layout (32 rows){tag(g)}"]["us_per_run_iter"])
        print(f"(c){tag(g)} vs (a): {naive / c:.1f}x cheaper (target >= 30x); "
              f"(c) / best of (d), (d'): {c / d:.2f} (target <= 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
