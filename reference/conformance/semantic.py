"""Semantic checks (both levels): what any inverted dropout must do, whatever its RNG.

Each check is ``fn(impl, strict) -> (passed, detail)``; ``strict`` (level 'contract')
demands kept values equal ``x * scale`` exactly, otherwise within ``ULP_TOLERANCE`` ulps
(the distance is reported either way). A check that needs a capability the implementation
lacks raises ``Unsupported`` (a "not supported" row).
"""

from __future__ import annotations

import math

import numpy as np

from reference.stream import scale_for

from .impl import Unsupported

SEED = 0x1234_5678_9ABC_DEF0  # both key words non-zero
ULP_TOLERANCE = 2             # x / (1 - p) and x * fl(1 / (1 - p)) may differ by a rounding or two
P_VALUES = (0.1, 0.5, 0.9)


def _x(dtype, shape=(37, 41), seed=0):
    """Standard normal values, none zero (so y == 0 means dropped), no overflow at any scale."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    x[x == 0] = 1.0
    return x.astype(dtype)


def _bits_equal(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind != "f":
        return bool(np.array_equal(a, b))
    nan = np.isnan(a)
    return bool(np.array_equal(nan, np.isnan(b))) and bool(
        np.array_equal(np.ascontiguousarray(a)[~nan].view(f"u{a.itemsize}"),
                       np.ascontiguousarray(b)[~nan].view(f"u{a.itemsize}")))


def ulps(got, want) -> float:
    """Largest distance in units in the last place of ``want`` (inf where one is not finite)."""
    got, want = np.asarray(got, dtype=want.dtype), np.asarray(want)
    if got.size == 0:
        return 0.0
    with np.errstate(invalid="ignore"):
        d = np.abs(got.astype(np.float64) - want.astype(np.float64)) / np.spacing(np.abs(want)).astype(np.float64)
    d = np.where(got == want, 0.0, d)
    return float(np.nanmax(np.where(np.isfinite(d), d, np.inf)))


def _dtypes(impl):
    return impl.capabilities.dtypes


def _kept(impl, x, y):
    """Kept decisions: y != 0 (x has no zeros)."""
    return y != 0


# --- the checks -----------------------------------------------------------------------


def p0_identity(impl, strict):
    for dt in _dtypes(impl):
        x = _x(dt)
        y, _ = impl.forward(x, 0.0, seed=SEED)
        if not _bits_equal(y, x):
            return False, f"{dt}: p = 0 changed {int(np.count_nonzero(y != x))} of {x.size} elements"
    return True, "y == x bit for bit"


def p1_zeros(impl, strict):
    for dt in _dtypes(impl):
        x = _x(dt)
        y, _ = impl.forward(x, 1.0, seed=SEED)
        if np.isnan(y).any():
            return False, f"{dt}: p = 1 made {int(np.isnan(y).sum())} NaN"
        if np.count_nonzero(y):
            return False, f"{dt}: p = 1 left {int(np.count_nonzero(y))} of {x.size} elements non-zero"
    return True, "all zeros, no NaN"


def eval_identity(impl, strict):
    impl.require("training")
    for dt in _dtypes(impl):
        x = _x(dt)
        y, _ = impl.forward(x, 0.5, seed=SEED, training=False)
        if not _bits_equal(y, x):
            return False, f"{dt}: training=False is not the identity"
        if strict and np.shares_memory(y, x):  # the contract asks for a copy; identity is enough elsewhere
            return False, f"{dt}: training=False returned the input itself, not a copy"
    return True, "y == x"


def kept_scaled(impl, strict):
    worst = 0.0
    for dt in _dtypes(impl):
        x = _x(dt)
        for p in P_VALUES + (1e-7, 1 - 1e-7):
            y, _ = impl.forward(x, p, seed=SEED)
            k = y != 0
            worst = max(worst, ulps(y[k], x[k] * scale_for(p, dt)))
    limit = 0 if strict else ULP_TOLERANCE
    detail = "exactly x * scale" if worst == 0 else f"max distance from x * scale: {worst:.3g} ulp"
    return worst <= limit, detail + ("" if worst <= limit else f" (allowed: {limit})")


def dropped_zero(impl, strict):
    for dt in _dtypes(impl):
        x = _x(dt)
        for p in P_VALUES:
            y, mask = impl.forward(x, p, seed=SEED, mask_format=_a_format(impl))
            dropped = ~_bool_mask(mask, x.shape) if mask is not None else np.abs(y) < 0.5 * np.abs(x)
            bad = y[dropped] != 0
            if bad.any():
                return False, f"{dt}, p = {p}: {int(bad.sum())} dropped elements are not 0 (e.g. {y[dropped][bad][:3]})"
    return True, "dropped elements are exactly 0 (either sign)"


def nonfinite(impl, strict):
    """Kept NaN and inf must pass unchanged and finite input must stay finite; what a dropped
    NaN or inf becomes is reported (the contract: NaN, a NaN is never hidden)."""
    seen = set()
    for dt in _dtypes(impl):
        x = _x(dt, (64, 16))
        x[::3, 0], x[1::3, 0], x[2::3, 0] = np.nan, np.inf, -np.inf
        with np.errstate(invalid="ignore"):
            y, mask = impl.forward(x, 0.5, seed=SEED, mask_format=_a_format(impl))
        fin = np.isfinite(x)
        if not np.isfinite(y[fin]).all():
            return False, f"{dt}: a finite input became NaN or inf"
        if mask is None:  # kept or dropped is known only where the output tells
            for xv, yv in zip(x[~fin], y[~fin]):
                if np.isinf(xv) and yv == xv:
                    continue  # a kept inf
                if not (np.isnan(yv) or yv == 0):
                    return False, f"{dt}: {xv} became {yv}"
                seen.add(f"{'NaN' if np.isnan(xv) else 'dropped inf'} -> {_fmt(yv)}")
            continue
        m = _bool_mask(mask, x.shape)
        for name, sel in (("NaN", np.isnan(x)), ("inf", np.isinf(x))):
            kx, ky = x[sel & m], y[sel & m]
            if not _bits_equal(ky, kx * scale_for(0.5, dt)) and not (np.isnan(kx) & np.isnan(ky)).all():
                return False, f"{dt}: a kept {name} changed: {ky[:3]}"
            seen.update(f"dropped {name} -> {_fmt(v)}" for v in y[sel & ~m])
    return True, "kept NaN/inf unchanged, finite stays finite; " + (", ".join(sorted(seen)) or "-")


def _fmt(v) -> str:
    return "NaN" if math.isnan(v) else ("0" if v == 0 else str(v))


SHAPES = ((), (0,), (3, 0), (5,), (7, 13), (3, 5, 7))


def shape_dtype(impl, strict):
    for dt in _dtypes(impl):
        cases = [(str(s), _x(dt, s)) for s in SHAPES]
        cases += [("(13, 7).T", _x(dt, (13, 7)).T), ("(40,)[::3]", _x(dt, (40,))[::3])]
        for name, x in cases:
            try:
                y, _ = impl.forward(x, 0.5, seed=SEED)
            except Unsupported:
                raise
            except Exception as e:
                return False, f"{dt} {name}: raised {type(e).__name__}: {e}"
            if y.shape != x.shape or y.dtype != x.dtype:
                return False, f"{dt} {name}: got {y.dtype}{y.shape}"
    return True, "shape and dtype kept (0-d, empty, 1-D to 3-D, views)"


def _a_format(impl):
    f = impl.capabilities.mask_formats
    return "bool" if "bool" in f else (f[0] if f else None)


def _bool_mask(mask, shape):
    mask = np.asarray(mask)
    if mask.dtype == np.bool_:
        return mask.reshape(shape)
    n = int(np.prod(shape))
    return np.unpackbits(mask, count=n, bitorder="little").view(np.bool_).reshape(shape)


def mask_matches_output(impl, strict):
    fmts = impl.capabilities.mask_formats
    if not fmts:
        raise Unsupported(f"{impl.name} returns no mask")
    for dt in _dtypes(impl):
        x = _x(dt)
        for fmt in fmts:
            y, mask = impl.forward(x, 0.5, seed=SEED, mask_format=fmt)
            if fmt == "bits" and (mask.dtype != np.uint8 or mask.size != (x.size + 7) // 8):
                return False, f"{dt}: 'bits' mask is {mask.dtype}[{mask.size}], not uint8[{(x.size + 7) // 8}]"
            if fmt == "bool" and (mask.dtype != np.bool_ or mask.shape != x.shape):
                return False, f"{dt}: 'bool' mask is {mask.dtype}{mask.shape}"
            if not np.array_equal(_bool_mask(mask, x.shape), y != 0):
                return False, f"{dt} {fmt}: the mask disagrees with the output"
    return True, "mask == (y != 0) in " + ", ".join(fmts)


def backward(impl, strict):
    impl.require("backward")
    sources = list(impl.capabilities.mask_formats) + (["regenerate"] if impl.capabilities.regenerate else [])
    if not sources:
        raise Unsupported(f"{impl.name}: backward takes neither a stored mask nor a seed")
    worst = 0.0
    for dt in _dtypes(impl):
        x, g = _x(dt), _x(dt, seed=1)
        p = 0.3
        for src in sources:
            y, mask = impl.forward(x, p, seed=SEED, mask_format=None if src == "regenerate" else src)
            m = (y != 0) if mask is None else _bool_mask(mask, x.shape)
            gx = impl.backward(g, p, mask=mask) if mask is not None else impl.backward(g, p, seed=SEED)
            want = (g * m.astype(dt)) * scale_for(p, dt)
            if gx.shape != g.shape or gx.dtype != g.dtype:
                return False, f"{dt} {src}: grad_x is {gx.dtype}{gx.shape}"
            if not np.array_equal(gx == 0, want == 0):
                return False, f"{dt} {src}: backward drops other elements than the forward call"
            worst = max(worst, ulps(gx, want))
    limit = 0 if strict else ULP_TOLERANCE
    ok = worst <= limit
    return ok, (f"grad * mask * scale ({', '.join(sources)}); max distance {worst:.3g} ulp"
                + ("" if ok else f" (allowed: {limit})"))


def bad_p(impl, strict):
    x = _x(impl.capabilities.dtypes[0], (16,))
    accepted = []
    for p in (-0.1, 1.5, float("nan"), float("inf")):
        try:
            impl.forward(x, p, seed=SEED)
            accepted.append(p)
        except Unsupported:
            raise
        except Exception:
            pass
    return not accepted, ("p outside [0, 1] refused" if not accepted else f"accepted p = {accepted}")


def same_seed_repeats(impl, strict):
    x = _x(impl.capabilities.dtypes[0], (4099,))
    off = 11 if impl.capabilities.offset else 0
    a, _ = impl.forward(x, 0.5, seed=SEED, offset=off)
    b, _ = impl.forward(x, 0.5, seed=SEED, offset=off)
    return _bits_equal(a, b), "bit-identical" if _bits_equal(a, b) else "two calls with the same seed differ"


def seeds_differ(impl, strict):
    x = _x(impl.capabilities.dtypes[0], (4099,))
    a, _ = impl.forward(x, 0.5, seed=SEED)
    b, _ = impl.forward(x, 0.5, seed=SEED + 1)
    same = np.array_equal(a != 0, b != 0)
    return not same, "seed and seed + 1 give different masks" if not same else "seed and seed + 1 give the same mask"


OFFSET_BASE = 2**40 + 2045  # odd, just below a multiple of 2048 (a cpu tile, a warp, a block)


def offset_shift(impl, strict):
    """Offset is the position in the stream (the API): the call at offset o + d keeps exactly
    the elements that the call at o keeps, shifted by d, for d = 1, 2, 3 (not a multiple of 4
    or of any tile)."""
    impl.require("offset")
    x = np.ones(4099, dtype=impl.capabilities.dtypes[0])
    a, _ = impl.forward(x, 0.5, seed=SEED, offset=OFFSET_BASE)
    for d in (1, 2, 3):
        b, _ = impl.forward(x, 0.5, seed=SEED, offset=OFFSET_BASE + d)
        if not np.array_equal(a[d:] != 0, b[:-d] != 0):
            return False, f"offset + {d} is not the same stream shifted by {d}"
    return True, "offset + 1, + 2, + 3 shift the stream exactly"


CHECKS = {  # name -> (needs, fn)
    "p0_identity": ((), p0_identity),
    "p1_zeros": ((), p1_zeros),
    "eval_identity": (("training",), eval_identity),
    "kept_scaled": ((), kept_scaled),
    "dropped_zero": ((), dropped_zero),
    "nonfinite": ((), nonfinite),
    "shape_dtype": ((), shape_dtype),
    "mask_matches_output": ((), mask_matches_output),
    "backward": (("backward",), backward),
    "bad_p": ((), bad_p),
    "same_seed_repeats": ((), same_seed_repeats),
    "seeds_differ": ((), seeds_differ),
    "offset_shift": (("offset",), offset_shift),
}
