"""The command line ``python -m overparam COMMAND`` (argument parsing, progress and files only).

One module per sub-command (:mod:`~overparam.cli.ethanol`, :mod:`~overparam.cli.edge`, :mod:`~overparam.cli.toy`,
:mod:`~overparam.cli.mnist`, :mod:`~overparam.cli.convergence`, :mod:`~overparam.cli.completion`,
:mod:`~overparam.cli.data`), each with a ``register(subparsers)``; shared argument types in
:mod:`~overparam.cli.args` and the progress bar in :mod:`~overparam.cli.progress`. Nothing
outside this package imports it: chapters call the library, and the library never calls the
command line.
"""
