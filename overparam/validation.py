"""Argument checks shared by every public function: one rule for scalars, one for arrays.

Scalars: Python and numpy numbers are accepted alike (``0.1``, ``np.float32(0.1)``,
``3``, ``np.int64(3)``); booleans, strings, arrays and non-finite values are
refused with a ``ValueError`` that names the argument and says what was
expected. Arrays: integer and boolean inputs are converted to float64 before
any arithmetic, so that the ℓp losses of Chapter 1 (``r ** 4`` and the like)
cannot overflow or wrap around in the input's integer type; strings, ``None``,
ragged nested lists and complex numbers are refused with one message,
``"<name> must be an array of real numbers, got ..."``.
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np

__all__ = ["all_finite", "check_callable", "check_int", "check_real", "check_sequence", "finite_array", "float_array", "is_sequence",
           "is_tensor", "rng_from_seed", "torch_seed"]


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _describe(what: str, *bounds: tuple[str, float | None]) -> str:
    """``"a finite number > 0 and < 1"`` from ``what`` and the ``(operator, bound)`` pairs that are set."""
    parts = [f"{op} {bound:g}" for op, bound in bounds if bound is not None]
    return " ".join([what, " and ".join(parts)]) if parts else what


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None, *,
              expected: str | None = None) -> int:
    """``value`` as a Python ``int``, checked against ``minimum <= value <= maximum``.

    Parameters
    ----------
    name : str
        The argument's name, for the error message.
    value : int or numpy integer
        Booleans and floats (even ``3.0``) are refused.
    minimum, maximum : int, optional
        Bounds, both inclusive.
    expected : str, optional
        What the message says was expected (default: "an integer >= minimum").

    Raises
    ------
    ValueError
        ``"<name> must be <expected>, got <value>"``.
    """
    expected = expected or _describe("an integer", (">=", minimum), ("<=", maximum))
    if _is_bool(value) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be {expected}, got {value!r} ({type(value).__name__})")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {expected}, got {value}")
    return int(value)


def check_real(name: str, value: Any, *, above: float | None = None, at_least: float | None = None,
               below: float | None = None, nonzero: bool = False, expected: str | None = None) -> float:
    """``value`` as a finite Python ``float``, checked against the bounds given.

    Parameters
    ----------
    name : str
        The argument's name, for the error message.
    value : real number
        Python or numpy ints and floats; booleans are refused.
    above, at_least, below : float, optional
        ``value > above``, ``value >= at_least``, ``value < below``.
    nonzero : bool
        Refuse 0.
    expected : str, optional
        What the message says was expected (default: "a finite number > above", ...).

    Raises
    ------
    ValueError
        ``"<name> must be <expected>, got <value>"``.
    """
    what = "a non-zero finite number" if nonzero else "a finite number"
    expected = expected or _describe(what, (">", above), (">=", at_least), ("<", below))
    if _is_bool(value) or not isinstance(value, Real):
        raise ValueError(f"{name} must be {expected}, got {value!r} ({type(value).__name__})")
    out = float(value)
    if (not math.isfinite(out) or (above is not None and out <= above) or (at_least is not None and out < at_least)
            or (below is not None and out >= below) or (nonzero and out == 0)):
        raise ValueError(f"{name} must be {expected}, got {out!r}")
    return out


def is_tensor(value: Any) -> bool:
    """Whether ``value`` is a torch tensor (told by its methods, so that this module does not import torch)."""
    return hasattr(value, "is_floating_point") and hasattr(value, "double")


def all_finite(array: Any) -> bool:
    """Whether every entry of a real numpy array or torch tensor is finite (a tensor may require grad)."""
    if is_tensor(array):
        return bool(array.isfinite().all())
    return bool(np.isfinite(array).all())


def _real_numpy(name: str, value: Any) -> np.ndarray:
    """``value`` as a numpy array of booleans, integers or floats; ``ValueError`` naming ``name`` otherwise."""
    if value is None:
        raise ValueError(f"{name} must be an array of real numbers, got None")
    try:
        array = np.asarray(value)
    except ValueError:  # numpy's "inhomogeneous shape"
        raise ValueError(f"{name} must be an array of real numbers, got a ragged nested sequence "
                         "(rows of different lengths)") from None
    if array.dtype.kind == "O":  # e.g. a list holding None or strings beside numbers
        if not all(isinstance(v, Real) for v in array.flat):
            raise ValueError(f"{name} must be an array of real numbers, got dtype object "
                             "(entries that are not numbers)")
        array = array.astype(np.float64)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be an array of real numbers, got dtype {array.dtype}")
    return array


def float_array(value: Any, *, name: str) -> Any:
    """``value`` with integer or boolean entries converted to float64; float arrays and tensors pass unchanged.

    ``name`` is the argument's name in the caller's signature, for the messages; it is required and
    keyword-only, unlike the other checks' leading ``name``, so that a call written in their order,
    ``float_array("w", w)``, fails at once instead of checking the string.

    Accepts numpy arrays, nested lists and torch tensors (an integer tensor
    becomes a float64 tensor). A float numpy array or tensor is returned as
    is, without a copy. Strings, ``None``, ragged nested lists, object arrays
    holding anything but numbers, and complex numbers (whose imaginary part
    the arithmetic would drop) are refused.

    Raises
    ------
    ValueError
        ``"<name> must be an array of real numbers, got dtype <U32"`` (or ``"... got None"``,
        ``"... got a ragged nested sequence"``).
    """
    if is_tensor(value):
        if value.is_floating_point():  # first: the training loops' path, no added cost
            return value
        if value.is_complex():
            raise ValueError(f"{name} must be an array of real numbers, got dtype {value.dtype}")
        return value.double()
    array = _real_numpy(name, value)
    return array.astype(np.float64) if array.dtype.kind in "biu" else array


def rng_from_seed(seed: Any, name: str = "seed") -> np.random.Generator:
    """A numpy ``Generator`` from a seed: an integer >= 0, or a ``Generator`` passed through unchanged.

    Every random draw of the library goes through an explicit seed; this is the
    one place that turns it into a generator, so that ``seed=1.5``, ``seed=-1``
    or ``seed="a"`` get the same error everywhere.

    Raises
    ------
    ValueError
        ``"seed must be an integer >= 0 or a numpy Generator, got ..."``.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(check_int(name, seed, 0, expected="an integer >= 0 or a numpy Generator"))


def torch_seed(seed: Any, name: str = "seed") -> int:
    """``seed`` checked as an integer >= 0, for ``torch.Generator().manual_seed`` (which would take ``1.5`` as 1)."""
    return check_int(name, seed, 0)


def finite_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 numpy array, refused unless every entry is finite.

    For the pure functions of the library (one step, one matrix), whose result
    would otherwise be silently NaN or fail deep inside numpy's linear algebra.

    Raises
    ------
    ValueError
        ``"<name> must be an array of real numbers, got ..."`` (as :func:`float_array`) or
        ``"<name> must contain only finite values"``.
    """
    if is_tensor(value):
        float_array(value, name=name)
        array = np.asarray(value.detach().cpu(), dtype=np.float64)
    else:
        array = np.asarray(_real_numpy(name, value), dtype=np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must contain only finite values")
    return array


def is_sequence(values: Any) -> bool:
    """Whether ``values`` is a tuple, list, range or 1-D array: what a grid, a list of widths or of step sizes may be."""
    return isinstance(values, (tuple, list, range, np.ndarray)) and getattr(values, "ndim", 1) == 1


def check_sequence(name: str, values: Any, what: str) -> Any:
    """``values`` if it is a non-empty tuple, list, range or 1-D array, else a ``ValueError`` naming ``name``.

    For the grids and lists of the presets (depths, step sizes, seeds): a
    scalar or an empty grid is refused before any run starts; ``what`` says
    what the entries are ("depths", "step sizes", ...).
    """
    if not is_sequence(values) or not len(values):
        raise ValueError(f"{name} must be a non-empty tuple of {what}, got {values!r:.100}")
    return values


def check_callable(name: str, value: Any, expected: str, *, optional: bool = False) -> Any:
    """``value`` if it is callable (or ``None``, with ``optional``), else a ``ValueError`` naming ``name``.

    For the callbacks of the trainers (``progress``, ``advance``, ``measure``), checked before any
    work starts rather than when they are first called.

    Parameters
    ----------
    name : str
        The argument's name, for the error message.
    value : Any
    expected : str
        What the message says was expected, e.g. ``"None or a callable (done, total)"``.
    optional : bool
        Accept ``None``.

    Raises
    ------
    ValueError
        ``"<name> must be <expected>, got <value> (<type>)"``.
    """
    if callable(value) or (optional and value is None):
        return value
    raise ValueError(f"{name} must be {expected}, got {value!r:.60} ({type(value).__name__})")
