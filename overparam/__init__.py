"""overparam: the library behind the overparam-book course.

Arora, Cohen & Hazan (ICML 2018), *On the Optimization of Deep Networks:
Implicit Acceleration by Overparameterization*. Every chapter starts with
``import overparam as op``; this module only re-exports the public API.
"""
from .balance import (
    balanced_factors,
    balanced_init,
    gaussian_init,
    imbalance,
    max_imbalance,
    random_orthogonal,
    rotate_hidden,
)
from . import checks, ethanol, toy
from .convnet import (
    VARIANTS,
    ConvNetConfig,
    ConvNetHistory,
    TutorialConvNet,
    accuracy,
    load_histories,
    provenance,
    save_histories,
    train_convnet,
)
from .convnet_analysis import (
    LOSS_PARTS,
    PAPER_READOFFS,
    VARIANT_COLORS,
    VARIANT_LABELS,
    accumulated_step,
    crossing_step,
    error_standard_error,
    first_step_below,
    penalty_speedup,
    plot_loss_parts,
    plot_paper_figure,
    plot_validation_error,
    product_penalty_gradients,
    running_median,
    steps_to_levels,
    summary_table,
)
from .data import (
    DataIntegrityError,
    EthanolData,
    Standardized,
    cache_dir,
    load_ethanol,
    parse_uci_batch,
    standardize,
)
from .deep import DeepHistory, WarmupStep, end_to_end, layer_gradients, train_deep_linear, warmup_step
from .dynamics import (
    end_to_end_direction,
    end_to_end_step,
    preconditioner,
    psd_power,
    single_output_direction,
    single_output_step,
    train_end_to_end,
)
from .files import InvalidResultsFile, atomic_write, find_results
from .linear import DivergenceError, GDHistory, gradient_descent, largest_stable, quadratic_lr_limit
from .losses import check_problem, lp_gradient, lp_hessian, lp_loss
from .optimum import LpOptimum, lp_optimum, suboptimality
from .mnist import (
    MNIST_MIRRORS,
    MNISTData,
    load_mnist,
    mnist_training_set,
    parse_idx,
    scale_pixels,
    training_and_validation,
)
from .plotting import DEPTH_COLORS, loss_axes, note_scale, plain_log_ticks, plot_loss, use_book_style
from .sweep import (
    BEST_FINAL,
    COLLAPSE_FACTOR,
    FASTEST_TO_TARGET,
    LARGEST_STABLE,
    METHODS,
    RunConfig,
    SweepResult,
    log_steps,
    product_runs,
    quarter_decades,
    run_sweep,
    select_runs,
)
from .preconditioning import (
    RuleComparison,
    RunGap,
    compare_network_and_rule,
    plot_comparison,
    preconditioned_sharpness,
    relative_imbalance,
    rule_demo,
    run_gap,
)
from .regularizer import (
    Arc,
    Loop,
    NormPowerPenalty,
    Plane,
    Segment,
    circle,
    constant_gradient_curl,
    depth_two_potential,
    end_to_end_field,
    gradient_plane,
    half_disk,
    half_disk_integral,
    loop_integral,
    penalized_gradient_descent,
    plane_curl,
)
from .scale import is_fast, pick, scale_name
from . import training
from .training import History, Trace, train_loop
from .toy import (
    TOY_DIRECTION,
    TOY_INIT_SCALE,
    TOY_LR_GRID,
    TOY_PRESETS,
    TOY_TARGET,
    ToyPreset,
    ToyRow,
    depth1_stability_limit,
    predicted_iterations,
    run_toy,
    format_toy_table,
    load_toy_results,
    plot_iterations_vs_lr,
    toy_initial_factors,
    toy_results_paths,
    toy_runs,
    toy_table,
    two_example_problem,
)

__version__ = "0.1.0"
