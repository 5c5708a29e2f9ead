"""overparam: the library behind the overparam-book course.

Arora, Cohen & Hazan (ICML 2018), *On the Optimization of Deep Networks:
Implicit Acceleration by Overparameterization*. Every chapter starts with
``import overparam as op``; this module only re-exports the public API.
"""
from .data import (
    DataIntegrityError,
    EthanolData,
    Standardized,
    cache_dir,
    load_ethanol,
    parse_uci_batch,
    standardize,
)
from .linear import DivergenceError, GDHistory, gradient_descent, largest_stable, quadratic_lr_limit
from .losses import check_problem, lp_gradient, lp_hessian, lp_loss
from .plotting import DEPTH_COLORS, loss_axes, note_scale, plot_loss, use_book_style
from .scale import is_fast, pick, scale_name

__version__ = "0.1.0"
