"""Semantic checks (both levels): what any inverted dropout must do, whatever its RNG.

Each check is ``fn(impl, strict) -> (passed, detail)``; ``strict`` (level 'contract')
demands kept values equal ``x * scale`` exactly, otherwise within ``ULP_TOLERANCE`` ulps
(the distance is reported either way). A check that needs a capability the implementation
lacks raises ``Unsupported`` (a "not supported" row).
"""

from __future__ import annotations

import math

import numpy as np

from reference import vocab
from reference.stream import scale_for

from .arrays import bits_equal, nonzero_normal
from .protocol import Unsupported

SEED = 0x1234_5678_9ABC_DEF0  # both key words non-zero
ULP_TOLERANCE = 2             # x / (1 - p) and x * fl(1 / (1 - p)) may differ by a rounding or two
P_VALUES = (0.1, 0.5, 0.9)


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
    return impl.capabilities.base_dtypes  # float32/float64; the 16-bit formats have checks of their own


# --- the checks -----------------------------------------------------------------------


def p0_identity(impl, strict):
    for dt in _dtypes(impl):
        x = nonzero_normal(dt)
        y, _ = impl.forward(x, 0.0, seed=SEED)
        if not bits_equal(y, x):
            return False, f"{dt}: p = 0 changed {int(np.count_nonzero(y != x))} of {x.size} elements"
    return True, "y == x bit for bit"


def p1_zeros(impl, strict):
    for dt in _dtypes(impl):
        x = nonzero_normal(dt)
        y, _ = impl.forward(x, 1.0, seed=SEED)
        if np.isnan(y).any():
            return False, f"{dt}: p = 1 made {int(np.isnan(y).sum())} NaN"
        if np.count_nonzero(y):
            return False, f"{dt}: p = 1 left {int(np.count_nonzero(y))} of {x.size} elements non-zero"
    return True, "all zeros, no NaN"


def eval_identity(impl, strict):
    impl.require("training")
    for dt in _dtypes(impl):
        x = nonzero_normal(dt)
        y, _ = impl.forward(x, 0.5, seed=SEED, training=False)
        if not bits_equal(y, x):
            return False, f"{dt}: training=False is not the identity"
        if strict and np.shares_memory(y, x):  # the contract asks for a copy; identity is enough elsewhere
            return False, f"{dt}: training=False returned the input itself, not a copy"
    return True, "y == x"


def kept_scaled(impl, strict):
    worst = 0.0
    for dt in _dtypes(impl):
        x = nonzero_normal(dt)
        for p in P_VALUES + (1e-7, 1 - 1e-7):
            y, _ = impl.forward(x, p, seed=SEED)
            k = y != 0
            worst = max(worst, ulps(y[k], x[k] * scale_for(p, dt)))
    limit = 0 if strict else ULP_TOLERANCE
    detail = "exactly x * scale" if worst == 0 else f"max distance from x * scale: {worst:.3g} ulp"
    return worst <= limit, detail + ("" if worst <= limit else f" (allowed: {limit})")


def dropped_zero(impl, strict):
    for dt in _dtypes(impl):
        x = nonzero_normal(dt)
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
        x = nonzero_normal(dt, (64, 16))
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
            if not bits_equal(ky, kx * scale_for(0.5, dt)) and not (np.isnan(kx) & np.isnan(ky)).all():
                return False, f"{dt}: a kept {name} changed: {ky[:3]}"
            seen.update(f"dropped {name} -> {_fmt(v)}" for v in y[sel & ~m])
    return True, "kept NaN/inf unchanged, finite stays finite; " + (", ".join(sorted(seen)) or "-")


def _fmt(v) -> str:
    return "NaN" if math.isnan(v) else ("0" if v == 0 else str(v))


SHAPES = ((), (0,), (3, 0), (5,), (7, 13), (3, 5, 7))


def shape_dtype(impl, strict):
    for dt in _dtypes(impl):
        cases = [(str(s), nonzero_normal(dt, s)) for s in SHAPES]
        cases += [("(13, 7).T", nonzero_normal(dt, (13, 7)).T), ("(40,)[::3]", nonzero_normal(dt, (40,))[::3])]
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
        x = nonzero_normal(dt)
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
        x, g = nonzero_normal(dt), nonzero_normal(dt, seed=1)
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
    x = nonzero_normal(_dtypes(impl)[0], (16,))
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
    x = nonzero_normal(_dtypes(impl)[0], (4099,))
    off = 11 if impl.capabilities.offset else 0
    a, _ = impl.forward(x, 0.5, seed=SEED, offset=off)
    b, _ = impl.forward(x, 0.5, seed=SEED, offset=off)
    return bits_equal(a, b), "bit-identical" if bits_equal(a, b) else "two calls with the same seed differ"


def seeds_differ(impl, strict):
    x = nonzero_normal(_dtypes(impl)[0], (4099,))
    a, _ = impl.forward(x, 0.5, seed=SEED)
    b, _ = impl.forward(x, 0.5, seed=SEED + 1)
    same = np.array_equal(a != 0, b != 0)
    return not same, "seed and seed + 1 give different masks" if not same else "seed and seed + 1 give the same mask"


OFFSET_BASE = 2**40 + 2045  # odd, just below a multiple of 2048 (so of a cpu tile, a warp, a CUDA block)


def offset_shift(impl, strict):
    """Offset is the position in the stream (the API): the call at offset o + d keeps exactly
    the elements that the call at o keeps, shifted by d, for d = 1, 2, 3 (not a multiple of 4
    or of any tile)."""
    impl.require("offset")
    x = np.ones(4099, dtype=_dtypes(impl)[0])
    a, _ = impl.forward(x, 0.5, seed=SEED, offset=OFFSET_BASE)
    for d in (1, 2, 3):
        b, _ = impl.forward(x, 0.5, seed=SEED, offset=OFFSET_BASE + d)
        if not np.array_equal(a[d:] != 0, b[:-d] != 0):
            return False, f"offset + {d} is not the same stream shifted by {d}"
    return True, "offset + 1, + 2, + 3 shift the stream exactly"


# --- structured masks: noise_shape ----------------------------------------------------------

NOISE_X_SHAPE = (6, 5, 4, 3)  # a 4-D input, every axis of its own size
NOISE_SHAPES = ((6, 5, 1, 1), (6, 1, 1, 1), (1, 5, 1, 3), (6, 1, 4, 1), (1, 1, 4, 3), (6, 5, 4, 3))


def supported_noise_shapes(impl, shapes=NOISE_SHAPES, x_shape=NOISE_X_SHAPE) -> list:
    """The noise shapes of ``shapes`` (for an input of ``x_shape``) the implementation supports
    (all, or the channel form); Unsupported when none (the contract checks use it too)."""
    ok = [ns for ns in shapes if impl.capabilities.allows_noise_shape(x_shape, ns)]
    if not ok:
        raise Unsupported(f"{impl.name} supports none of the noise shapes {shapes}")
    return ok


def _shared_view(a, ns):
    """``a`` at index 0 along every shared axis (the axes where ``ns`` is 1), keeping dims."""
    return a[tuple(slice(0, 1) if k == 1 else slice(None) for k in ns)]


def noise_shape(impl, strict):
    """Structured masks: with ``noise_shape`` every element of a group that shares a mask
    element is kept or dropped together (all or nothing along the shared axes), the output
    keeps x's shape and dtype, a stored mask has the noise shape and agrees with the output,
    and backward with the same noise_shape is ``grad * M * scale``."""
    impl.require("noise_shape")
    dt = _dtypes(impl)[0]
    x, g = nonzero_normal(dt, NOISE_X_SHAPE), nonzero_normal(dt, NOISE_X_SHAPE, seed=1)
    fmts = impl.capabilities.mask_formats
    tested, worst = [], 0.0
    for ns in supported_noise_shapes(impl):
        for p in (0.5, 0.2):
            y, mask = impl.forward(x, p, seed=SEED, noise_shape=ns, mask_format=_a_format(impl))
            if y.shape != x.shape or y.dtype != x.dtype:
                return False, f"noise_shape {ns}: output {y.dtype}{y.shape} for input {x.dtype}{x.shape}"
            kept = y != 0
            m = _shared_view(kept, ns)
            split = int(np.count_nonzero(np.any(kept != m, axis=tuple(d for d, k in enumerate(ns) if k == 1)
                                                if 1 in ns else None)))
            if split:
                return False, (f"noise_shape {ns}, p = {p}: {split} groups sharing a mask element are partly kept "
                               "(not all or nothing along the shared axes)")
            if mask is not None:
                if mask.dtype == np.bool_ and mask.shape != tuple(ns):
                    return False, f"noise_shape {ns}: the 'bool' mask has shape {mask.shape}, not the noise shape"
                if mask.dtype == np.uint8 and mask.size != (int(np.prod(ns)) + 7) // 8:
                    return False, (f"noise_shape {ns}: the 'bits' mask has {mask.size} bytes, "
                                   f"not {(int(np.prod(ns)) + 7) // 8}")
                if not np.array_equal(_bool_mask(mask, ns), m.reshape(ns)):
                    return False, f"noise_shape {ns}: the stored mask disagrees with the output"
            if p == 0.2 and impl.capabilities.backward:
                want = (g * np.broadcast_to(m, x.shape).astype(dt)) * scale_for(p, dt)
                srcs = [(f, mask_) for f in fmts
                        for mask_ in [impl.forward(x, p, seed=SEED, noise_shape=ns, mask_format=f)[1]]]
                if impl.capabilities.regenerate:
                    srcs.append(("regenerate", None))
                for src, mk in srcs:
                    gx = (impl.backward(g, p, mask=mk, noise_shape=ns) if mk is not None
                          else impl.backward(g, p, seed=SEED, noise_shape=ns))
                    if gx.shape != g.shape or not np.array_equal(gx == 0, want == 0):
                        return False, f"noise_shape {ns}: backward ({src}) drops other elements than the forward call"
                    worst = max(worst, ulps(gx, want))
        tested.append(ns)
    limit = 0 if strict else ULP_TOLERANCE
    if worst > limit:
        return False, (f"backward with noise_shape: max distance {worst:.3g} ulp from grad * M * scale "
                       f"(allowed: {limit})")
    return True, (f"all or nothing along the shared axes of {NOISE_X_SHAPE} for noise shapes "
                  + ", ".join(map(str, tested))
                  + ("; backward = grad * M * scale" if impl.capabilities.backward else ""))


# --- 16-bit formats ------------------------------------------------------------------------------


def round16(x, p, dtype):
    """The documented 16-bit result of a kept element: ``to_dtype(float32(x) * scale32)``."""
    with np.errstate(over="ignore", invalid="ignore"):
        return (np.asarray(x).astype(np.float32) * scale_for(p, np.float32)).astype(dtype)


def ulps16(got, want) -> int:
    """Largest distance in ulps between 16-bit arrays: the difference of their bit patterns
    in sign-magnitude order (exact for float16 and bfloat16 alike; NaN compared to NaN is 0,
    to a number the largest possible)."""
    got, want = np.asarray(got), np.asarray(want)
    if got.size == 0:
        return 0

    def order(a):
        b = np.ascontiguousarray(a).view(np.uint16).astype(np.int64)
        return np.where(b & 0x8000, -(b & 0x7FFF), b)

    d = np.abs(order(got) - order(want))
    gn, wn = np.isnan(got.astype(np.float32)), np.isnan(want.astype(np.float32))
    d = np.where(gn & wn, 0, np.where(gn | wn, 0x10000, d))
    return int(d.max())


def _half(impl, strict, name):
    impl.require(f"dtype:{name}")
    dt = vocab.np_dtype(name)
    x = nonzero_normal(dt)
    notes = []
    # dtype and shape kept
    cases = [(str(s), nonzero_normal(dt, s)) for s in SHAPES] + [("(13, 7).T", nonzero_normal(dt, (13, 7)).T)]
    for cid, xc in cases:
        y, _ = impl.forward(xc, 0.5, seed=SEED)
        if y.shape != xc.shape or y.dtype != xc.dtype:
            return False, f"{name} {cid}: got {y.dtype}{y.shape}"
    # p = 0 is the identity
    y, _ = impl.forward(x, 0.0, seed=SEED)
    if not bits_equal(y, x):
        return False, f"{name}: p = 0 changed {int(np.count_nonzero(y.view(np.uint16) != x.view(np.uint16)))} elements"
    # kept values: round16(float32(x) * scale32); dropped: exactly 0
    worst = 0
    for p in P_VALUES + (1e-3,):
        y, mask = impl.forward(x, p, seed=SEED, mask_format=_a_format(impl))
        kept = (y != 0) if mask is None else _bool_mask(mask, x.shape)
        worst = max(worst, ulps16(y[kept], round16(x[kept], p, dt)))
        if mask is not None and np.count_nonzero(y[~kept]):
            return False, f"{name}, p = {p}: {int(np.count_nonzero(y[~kept]))} dropped elements are not 0"
    # backward, the same rule
    if impl.capabilities.backward and (impl.capabilities.regenerate or impl.capabilities.mask_formats):
        g, p = nonzero_normal(dt, seed=1), 0.3
        fmt = _a_format(impl)
        y, mask = impl.forward(x, p, seed=SEED, mask_format=fmt)
        gx = impl.backward(g, p, mask=mask) if mask is not None else impl.backward(g, p, seed=SEED)
        m = (y != 0) if mask is None else _bool_mask(mask, x.shape)
        if gx.dtype != dt or not np.array_equal(gx != 0, m):
            return False, f"{name}: backward returns {gx.dtype} or drops other elements than forward"
        worst = max(worst, ulps16(gx[m], round16(g[m], p, dt)))
        notes.append("backward too")
    # NaN and inf: kept ones unchanged, finite stays finite; a dropped one reported
    xn = nonzero_normal(dt, (64, 16))
    xn[::3, 0], xn[1::3, 0], xn[2::3, 0] = np.nan, np.inf, -np.inf
    with np.errstate(invalid="ignore"):
        y, mask = impl.forward(xn, 0.5, seed=SEED, mask_format=_a_format(impl))
    f32 = xn.astype(np.float32)
    y32 = y.astype(np.float32)
    fin = np.isfinite(f32)
    if not np.isfinite(y32[fin]).all():
        return False, f"{name}: a finite input became NaN or inf"
    seen = set()
    kept = None if mask is None else _bool_mask(mask, xn.shape)
    for xv, yv, k in zip(f32[~fin], y32[~fin], (kept[~fin] if kept is not None else [None] * int((~fin).sum()))):
        if k is None:  # no mask: a kept inf is the inf itself, anything else was dropped; NaN is reported
            if np.isnan(xv):
                seen.add(f"NaN -> {_fmt(yv)}")
                continue
            k = bool(yv == xv)
        if k and not ((np.isnan(xv) and np.isnan(yv)) or yv == xv):
            return False, f"{name}: a kept {xv} became {yv}"
        if not k:
            seen.add(f"dropped {'NaN' if np.isnan(xv) else 'inf'} -> {_fmt(yv)}")
    limit = 0 if strict else ULP_TOLERANCE
    detail = ("kept values exactly round16(float32(x) * scale32)" if worst == 0 else
              f"kept values within {worst} ulp of round16(float32(x) * scale32)")
    detail += f"; dtype and shape kept, p = 0 identity, dropped 0; {', '.join(sorted(seen)) or 'NaN/inf kept'}"
    if notes:
        detail += "; " + ", ".join(notes)
    return worst <= limit, detail + ("" if worst <= limit else f" (allowed: {limit} ulp)")


def float16(impl, strict):
    """float16: dtype kept, p = 0 identity, kept values ``round16(float32(x) * scale32)`` (exactly
    at level contract, else within 2 ulps; the distance is reported), dropped 0, NaN/inf reported."""
    return _half(impl, strict, "float16")


def bfloat16(impl, strict):
    """bfloat16 (ml_dtypes): as float16."""
    return _half(impl, strict, "bfloat16")


# --- in place ----------------------------------------------------------------------------------


def inplace(impl, strict):
    """``out=x`` (and ``out=grad_y``): the input's memory holds the result, equal to the
    out-of-place call with the same seed bit for bit."""
    impl.require("inplace")
    dt = _dtypes(impl)[0]
    x = nonzero_normal(dt, (61, 67))
    want, _ = impl.forward(x, 0.4, seed=SEED)
    xc = x.copy()
    got, _ = impl.forward(xc, 0.4, seed=SEED, out=xc)
    if not bits_equal(xc, want):
        return False, "forward with out=x: x does not hold the out-of-place result"
    if not bits_equal(got, want):
        return False, "forward with out=x returned something else than the result"
    done = "forward"
    if impl.capabilities.backward and impl.capabilities.regenerate:
        g = nonzero_normal(dt, (61, 67), seed=1)
        want = impl.backward(g, 0.4, seed=SEED)
        gc = g.copy()
        impl.backward(gc, 0.4, seed=SEED, out=gc)
        if not bits_equal(gc, want):
            return False, "backward with out=grad_y: grad_y does not hold the out-of-place result"
        done += " and backward"
    return True, f"{done} in place equal out of place bit for bit"


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
    "same_seed_repeats": (("reproducible",), same_seed_repeats),
    "seeds_differ": ((), seeds_differ),
    "offset_shift": (("offset",), offset_shift),
    "noise_shape": (("noise_shape",), noise_shape),
    "float16": (("dtype:float16",), float16),
    "bfloat16": (("dtype:bfloat16",), bfloat16),
    "inplace": (("inplace",), inplace),
}
