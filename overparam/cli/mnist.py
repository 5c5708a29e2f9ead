"""``python -m overparam mnist``: the paper's convnet runs at full length (Chapter 6, ``ch-mnist``).

Example (all four variants, the tutorial's 8,593 steps)::

    python -m overparam mnist --steps full --out results/mnist_full.npz

(``--data-dir DIR`` reads the four MNIST files from ``DIR/mnist/`` instead of the cache or a download.)

Training data: the tutorial's 55,000-image split; its validation error (the
first 5,000 training images) is measured every ``--eval-every`` steps and its
test error (the 10,000 ``t10k`` images) after the last step, as
``convolutional.py`` does. Only if the training images are absent and cannot
be downloaded does the run fall back to the 10,000-image test set, split as
``overparam.training_and_validation`` splits it (9,000 trained on, 1,000
validated on, no test error; same steps and lr schedule in steps), and record
that deviation in the results file's metadata. On a GPU the run is in full
float32 (``overparam.convnet.full_float32``).

Output: without ``--out``, ``results/mnist_<steps>.npz`` if that file does not
exist yet, else a fresh time-stamped name beside it; an existing file is
replaced only when ``--out`` names it or ``--force`` is given, and the
committed ``results/mnist_full.npz`` only by ``--steps full`` with all four
variants (``overparam.files.RESULTS_COMMANDS``). The output
folder is checked before training starts, and files are written atomically
after every variant (a run cut short keeps the variants it finished).
"""
from __future__ import annotations

import argparse
import sys

import torch

from ..convnet import VARIANTS, ConvNetConfig, resolve_device, save_histories, stand_in_note, train_convnet
from ..files import provenance
from ..mnist import final_evaluation_sets, training_and_validation
from .args import device_name, nonnegative_int, positive_int, results_output
from .progress import Progress

__all__ = ["register", "run"]


def _parse_variants(text: str) -> list[str]:
    variants = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if bad or not variants:
        raise argparse.ArgumentTypeError(f"--variants: choose from {','.join(VARIANTS)}, got {text!r}")
    repeated = sorted({v for v in variants if variants.count(v) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"--variants: each variant once, got {','.join(repeated)} more than once")
    return variants


def _parse_steps(text: str) -> int | None:
    if text == "full":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--steps: 'full' or a positive integer, got {text!r}")
    return int(text)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``mnist`` sub-command to ``python -m overparam``."""
    p = subparsers.add_parser(
        "mnist", help="train the tutorial convnet and its overparameterized variants on MNIST",
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--variants", type=_parse_variants, default=list(VARIANTS),
                   help=f"comma-separated subset of {','.join(VARIANTS)} (default: all)")
    p.add_argument("--steps", type=_parse_steps, default=None, metavar="full|N",
                   help="'full' = the tutorial's 8,593 steps (default), or a number of steps")
    p.add_argument("--device", type=device_name, default="auto",
                   help="auto (CUDA when torch sees a GPU, else CPU; the default), cpu, cuda or cuda:K")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads for torch (default: torch's own choice)")
    p.add_argument("--data-dir", default=None, help="folder holding mnist/*.gz (default: OVERPARAM_DATA_DIR, cache)")
    p.add_argument("--no-download", action="store_true", help="never download missing MNIST files")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the initialization and dropout (default 0)")
    p.add_argument("--eval-every", type=positive_int, default=None,
                   help="steps between validation-error evaluations (default: 100, the tutorial's, on CUDA; "
                        "200 on CPU, where each costs about 2 s)")
    p.add_argument("--out", default=None,
                   help="results file (.npz, a .json beside it); default results/mnist_<steps>.npz, or a fresh "
                        "time-stamped name if that exists")
    p.add_argument("--force", action="store_true", help="replace the default results file if it exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train every requested variant and write one results file; returns 0."""
    download = not args.no_download
    dev = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    steps_name = "full" if args.steps is None else str(args.steps)
    run_name = f"mnist --steps {steps_name}"  # the run, as overparam.files.RESULTS_COMMANDS names it
    if set(args.variants) != set(VARIANTS):
        run_name += f" --variants {','.join(args.variants)}"
    out = results_output(args, f"results/mnist_{steps_name}.npz", run_name, (".json",))
    train, validation = training_and_validation(args.data_dir, download)
    evals, finals = {"validation": validation}, final_evaluation_sets(train, args.data_dir, download)
    eval_every = args.eval_every or (100 if dev.type == "cuda" else 200)
    print(f"training data: {train.description}\n  from {train.source}", file=sys.stderr)
    command = getattr(args, "command_line", None)
    meta = provenance(command or None, data_source=train.source, data=train.description, train_images=len(train), steps=steps_name,
                      eval_sets=list(evals), final_eval_sets=list(finals), eval_every=eval_every,
                      tf32=False if dev.type == "cuda" else None)
    if train.stands_in_for:
        meta["deviation"] = stand_in_note(ConvNetConfig(), train, validation)
    histories = []
    total = len(args.variants)
    for i, variant in enumerate(args.variants, 1):
        config = ConvNetConfig(variant=variant, eval_every=eval_every)
        h = train_convnet(config, train, args.steps, eval_data=evals, final_eval_data=finals, device=str(dev),
                          seed=args.seed, progress=Progress(f"{variant} {i}/{total}", unit="step", runs_after=total - i))
        errs = ", ".join(f"{k} error {100 * h.error(k):.2f} %" for k in [*h.accuracy, *h.final_accuracy])
        print(f"{variant}: {h.num_steps} steps in {h.seconds:.1f} s ({h.ms_per_step:.2f} ms/step); final batch loss "
              f"{h.batch_loss[-1]:.4g} (ce {h.cross_entropy[-1]:.4g} + penalty {h.penalty[-1]:.4g}); {errs}",
              file=sys.stderr)
        histories.append(h)
        save_histories(out, histories, {**meta, "device": h.device})  # after every variant: a cut-off run keeps its results
    print(f"wrote {out} and {out.with_suffix('.json')}", file=sys.stderr)
    return 0
