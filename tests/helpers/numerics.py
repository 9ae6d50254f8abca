"""Tolerances derived from a dtype and the size of a computation, not from one CPU.

Two results of the same maths computed in a different order (a packed row against
examples one by one, a cached prefix against a whole prompt, AVX-512 kernels against AVX2
ones) differ by rounding. Each operation rounds to the dtype's unit roundoff ``u = eps / 2``;
n independent roundings of terms of magnitude ``scale`` add up, in the typical case, to
about ``u * sqrt(n) * scale``. ``SAFETY`` covers the constant that the typical-case estimate
leaves out (the worst case grows with n, not sqrt(n), but only for adversarial data).

Where the order differs only in a reduction (a sum over tokens for a gradient), ``n`` is the
size of that reduction. Through a network, each layer adds its own rounding to what comes in,
so ``n`` is the depth (the number of layers the values pass through).
"""

from __future__ import annotations

import math

import torch

SAFETY = 8.0


def unit_roundoff(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).eps) / 2


def tolerance(dtype: torch.dtype, n: int, scale: float) -> float:
    """An absolute bound on the difference between two orderings of ``n`` roundings in
    ``dtype`` of values of magnitude ``scale``."""
    return SAFETY * unit_roundoff(dtype) * math.sqrt(max(n, 1)) * max(scale, 1e-30)


def assert_close_for(
    got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype, n: int, what: str = "values"
) -> None:
    """``got`` equals ``want`` elementwise to within ``tolerance(dtype, n, max |want|)``: the
    scale is the tensor's, so an element near zero is held to the error its neighbours'
    magnitudes bring, not to a fixed atol."""
    scale = float(want.abs().max()) if want.numel() else 0.0
    bound = tolerance(dtype, n, scale)
    worst = float((got.double() - want.double()).abs().max()) if want.numel() else 0.0
    assert worst <= bound, (
        f"{what}: max difference {worst:.3g} > {bound:.3g} ({dtype}, n={n}, scale={scale:.3g})"
    )
