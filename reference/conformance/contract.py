"""Contract checks (level 'contract'): the implementation claims our stream
(docs/RNG_STREAM.md), so it must equal the NumPy reference bit for bit: outputs, stored
masks, backward, special values, offsets and seeds that use all 64 bits."""

from __future__ import annotations

import numpy as np

import reference.dropout as ref
from reference import vocab
from reference.stream import keep_threshold, scale_for

from .arrays import bits_equal, nonzero_normal
from .protocol import Unsupported
from .semantic import NOISE_SHAPES, NOISE_X_SHAPE, supported_noise_shapes

SEED = 0x1234_5678_9ABC_DEF0
P_VALUES = (0.0, 1e-7, 0.1, 0.5, 0.9, 1 - 1e-7, 1.0)


def contract_seed(seeds, label: str) -> int:
    """The 64-bit seed of a contract check: :data:`SEED` under fixed seeds (the default, so the
    committed reports stay reproducible), else a fresh one derived from the run's master seed
    (``--stat-seed random`` or an integer), all 64 bits used."""
    if seeds is None or getattr(seeds, "mode", "fixed") == "fixed":
        return SEED
    return seeds._h(f"contract/{label}") % 2**64


def _cases(dt):
    yield "4097", nonzero_normal(dt, (4097,))
    yield "7x13", nonzero_normal(dt, (7, 13))
    yield "(13x7).T", nonzero_normal(dt, (13, 7)).T
    yield "3x5x7 F-order", np.asfortranarray(nonzero_normal(dt, (3, 5, 7)))
    yield "0-d", nonzero_normal(dt, ())


def _diff(what, got, want):
    got = np.asarray(got)
    if got.shape != want.shape or got.dtype != want.dtype:
        return f"{what}: {got.dtype}{got.shape}, want {want.dtype}{want.shape}"
    return f"{what}: {int(np.count_nonzero(got != want))} of {want.size} elements differ"


def forward(impl, strict=True, seeds=None):
    SEED = contract_seed(seeds, 'forward')  # noqa: N806
    offsets = (0, 3) if impl.capabilities.offset else (0,)
    for dt in impl.capabilities.base_dtypes:
        for cid, x in _cases(dt):
            for p in P_VALUES:
                for off in offsets:
                    y, _ = impl.forward(x, p, seed=SEED, offset=off)
                    want, _ = ref.dropout_forward(x, p, seed=SEED, offset=off, mask_format=None)
                    if not bits_equal(y, want):
                        return False, _diff(f"{dt} {cid} p={p} offset={off}", y, want)
    return True, "outputs equal the reference bit for bit"


def masks(impl, strict=True, seeds=None):
    SEED = contract_seed(seeds, 'masks')  # noqa: N806
    if not impl.capabilities.mask_formats:
        raise Unsupported(f"{impl.name} returns no mask")
    for fmt in impl.capabilities.mask_formats:
        for dt in impl.capabilities.base_dtypes:
            for cid, x in _cases(dt):
                _, m = impl.forward(x, 0.3, seed=SEED, mask_format=fmt)
                _, want = ref.dropout_forward(x, 0.3, seed=SEED, mask_format=fmt)
                if not bits_equal(m, want):
                    return False, _diff(f"{fmt} mask {dt} {cid}", m, want)
    return True, "stored masks equal the reference in " + ", ".join(impl.capabilities.mask_formats)


def backward(impl, strict=True, seeds=None):
    SEED = contract_seed(seeds, 'backward')  # noqa: N806
    impl.require("backward")
    for dt in impl.capabilities.base_dtypes:
        x, g = nonzero_normal(dt, (4097,)), nonzero_normal(dt, (4097,), seed=1)
        want = ref.dropout_backward(g, 0.3, seed=SEED, offset=0)
        for fmt in impl.capabilities.mask_formats:
            _, m = impl.forward(x, 0.3, seed=SEED, mask_format=fmt)
            gx = impl.backward(g, 0.3, mask=m)
            if not bits_equal(gx, want):
                return False, _diff(f"backward from {fmt} {dt}", gx, want)
        if impl.capabilities.regenerate:
            gx = impl.backward(g, 0.3, seed=SEED)
            if not bits_equal(gx, want):
                return False, _diff(f"backward regenerated {dt}", gx, want)
    return True, "backward equals the reference"


def special_values(impl, strict=True, seeds=None):
    SEED = contract_seed(seeds, 'special_values')  # noqa: N806
    for dt in impl.capabilities.base_dtypes:
        x = nonzero_normal(dt, (64,))
        x[::7], x[1::7], x[2::7], x[3::7], x[4::7] = np.nan, np.inf, -np.inf, 0.0, -0.0
        x[5::7], x[6::7] = np.finfo(dt).max, np.finfo(dt).tiny / 4
        for p in (0.0, 0.5, 1.0):
            with np.errstate(invalid="ignore", over="ignore"):
                y, _ = impl.forward(x, p, seed=SEED)
                want, _ = ref.dropout_forward(x, p, seed=SEED, mask_format=None)
            if not bits_equal(y, want):
                return False, _diff(f"{dt} p={p}", y, want)
    return True, "NaN, inf, signed zeros, max and subnormals as the reference"


def seeds_and_offsets(impl, strict=True, seeds=None):
    pairs = [(2**64 - 1, 0), (2**32, 0), (2**63 + 5, 0)]
    if impl.capabilities.offset:
        pairs += [(2**64 - 1, 2**64 - 127), (2**32, 2**34 + 1), (1, 2**63 - 3), (7, 2**32 - 2)]
    if seeds is not None and seeds.mode != "fixed":  # a fresh seed (and offset) as well
        fresh = contract_seed(seeds, "seeds_and_offsets")
        pairs.append((fresh, (fresh >> 7) % 2**63 if impl.capabilities.offset else 0))
    dt = impl.capabilities.base_dtypes[0]
    x = nonzero_normal(dt, (127,))
    for seed, off in pairs:
        y, _ = impl.forward(x, 0.5, seed=seed, offset=off)
        want, _ = ref.dropout_forward(x, 0.5, seed=seed, offset=off, mask_format=None)
        if not bits_equal(y, want):
            return False, _diff(f"seed={seed:#x} offset={off:#x}", y, want)
    return True, "all 64 bits of the seed" + (" and the offset" if impl.capabilities.offset else "")


# --- structured masks -------------------------------------------------------------------------

NOISE_CASES = (  # (x shape, noise shapes): a 4-D input, a sequence, a view, an odd size for the bits
    (NOISE_X_SHAPE, NOISE_SHAPES),
    ((5, 7, 9), ((5, 1, 9), (5, 7, 1), (5, 1, 1), (1, 7, 9))),
    ((3, 4, 11, 2), ((3, 4, 1, 1), (1, 4, 11, 1), (3, 1, 11, 2))),
)


def noise_shape(impl, strict=True, seeds=None):
    SEED = contract_seed(seeds, 'noise_shape')  # noqa: N806
    """With ``noise_shape``, outputs, stored masks (of the noise shape) and backward equal the
    reference bit for bit: the mask is drawn in its own C order from ``offset``."""
    impl.require("noise_shape")
    offsets = (0, 3) if impl.capabilities.offset else (0,)
    fmts = impl.capabilities.mask_formats
    n = 0
    for dt in impl.capabilities.base_dtypes:
        for shape, candidates in NOISE_CASES:
            try:
                nss = supported_noise_shapes(impl, candidates, shape)
            except Unsupported:
                continue
            x, g = nonzero_normal(dt, shape), nonzero_normal(dt, shape, seed=1)
            views = [("", x)] + ([("F-order ", np.asfortranarray(x))] if len(shape) == 4 else [])
            ps: tuple[float, ...] = (0.0, 0.1, 0.5, 1.0)
            if impl.simulated:  # the CUDA simulator: ~0.1 s a call; the two p that draw
                views, ps = views[:1], (0.1, 0.5)
            for ns in nss:
                for p in ps:
                    for off in offsets:
                        for vid, xv in views:
                            y, _ = impl.forward(xv, p, seed=SEED, offset=off, noise_shape=ns)
                            want, _ = ref.dropout_forward(xv, p, seed=SEED, offset=off, mask_format=None,
                                                          noise_shape=ns)
                            if not bits_equal(y, want):
                                return False, _diff(f"{dt} {vid}{shape} noise_shape={ns} p={p} offset={off}", y, want)
                            n += 1
                for fmt in fmts:
                    _, m = impl.forward(x, 0.3, seed=SEED, mask_format=fmt, noise_shape=ns)
                    _, mw = ref.dropout_forward(x, 0.3, seed=SEED, mask_format=fmt, noise_shape=ns)
                    if not bits_equal(m, mw):
                        return False, _diff(f"{fmt} mask {dt} {shape} noise_shape={ns}", m, mw)
                    if impl.capabilities.backward:
                        gx = impl.backward(g, 0.3, mask=m, noise_shape=ns)
                        want = ref.dropout_backward(g, 0.3, mask=mw, noise_shape=ns)
                        if not bits_equal(gx, want):
                            return False, _diff(f"backward from {fmt} {dt} {shape} noise_shape={ns}", gx, want)
                if impl.capabilities.backward and impl.capabilities.regenerate:
                    gx = impl.backward(g, 0.3, seed=SEED, offset=offsets[-1], noise_shape=ns)
                    want = ref.dropout_backward(g, 0.3, seed=SEED, offset=offsets[-1], noise_shape=ns)
                    if not bits_equal(gx, want):
                        return False, _diff(f"backward regenerated {dt} {shape} noise_shape={ns}", gx, want)
    if not n:
        raise Unsupported(f"{impl.name} supports none of the noise shapes tested")
    return True, f"outputs, masks and backward equal the reference with noise_shape ({n} forward calls)"


# --- 16-bit formats -----------------------------------------------------------------------------


def _half(impl, name, seeds=None):
    impl.require(f"dtype:{name}")
    SEED = contract_seed(seeds, name)  # noqa: N806
    dt = vocab.np_dtype(name)
    offsets = (0, 3) if impl.capabilities.offset else (0,)
    ps: tuple[float, ...] = P_VALUES
    if impl.simulated:  # the CUDA simulator: ~0.3 s a call
        ps, offsets = (0.1, 0.5), offsets[-1:]
    for cid, x in _cases(dt):
        for p in ps:
            for off in offsets:
                y, _ = impl.forward(x, p, seed=SEED, offset=off)
                want, _ = ref.dropout_forward(x, p, seed=SEED, offset=off, mask_format=None)
                if not bits_equal(y, want):
                    return False, _diff(f"{name} {cid} p={p} offset={off}", y, want)
    # special values: NaN, inf, signed zeros, max (overflows when scaled), smallest normal, subnormals
    import ml_dtypes

    fi = ml_dtypes.finfo(dt)
    x = nonzero_normal(dt, (72,))
    x[::9], x[1::9], x[2::9], x[3::9], x[4::9] = np.nan, np.inf, -np.inf, 0.0, -0.0
    x[5::9], x[6::9], x[7::9] = fi.max, fi.tiny, fi.smallest_subnormal
    for p in (0.0, 0.1, 0.5, 1.0):
        with np.errstate(invalid="ignore", over="ignore"):
            y, _ = impl.forward(x, p, seed=SEED)
            want, _ = ref.dropout_forward(x, p, seed=SEED, mask_format=None)
        if not bits_equal(y, want):
            return False, _diff(f"{name} special values p={p}", y, want)
    if impl.capabilities.backward:
        x, g = nonzero_normal(dt, (4097,)), nonzero_normal(dt, (4097,), seed=1)
        want = ref.dropout_backward(g, 0.3, seed=SEED)
        for fmt in impl.capabilities.mask_formats:
            _, m = impl.forward(x, 0.3, seed=SEED, mask_format=fmt)
            if not bits_equal(gx := impl.backward(g, 0.3, mask=m), want):
                return False, _diff(f"{name} backward from {fmt}", gx, want)
        if impl.capabilities.regenerate and not bits_equal(gx := impl.backward(g, 0.3, seed=SEED), want):
            return False, _diff(f"{name} backward regenerated", gx, want)
    return True, f"{name}: outputs (views, p 0 to 1, NaN, inf, max, subnormals) and backward equal the reference"


def float16(impl, strict=True, seeds=None):
    return _half(impl, "float16", seeds)


def bfloat16(impl, strict=True, seeds=None):
    return _half(impl, "bfloat16", seeds)


# --- crafted from the stream: the exact edges of the contract ------------------------------------
#
# The checks above draw a few thousand words at a handful of p: a threshold off by one, or one
# computed from float32(1 - p), differs from the contract only for the element whose word lies
# in a window of width 1 (or 256) out of 2**32, which they hit with probability ~2**-32 per
# element. The checks below are built from the stream itself: they read the words of the
# call's positions and choose p so that some element's word lies exactly at, just below and
# just above the threshold; they choose p where the plausible wrong scale formulas round
# differently, and place input values where that difference shows at kept positions; and they
# cross the counter's word boundaries. A wrong implementation fails them with certainty, on
# every seed.

EDGE_N = 64            # elements per call of the crafted checks
EDGE_WORDS = 6         # elements whose word is put at the threshold


def _all_dtypes(impl) -> tuple:
    """Every dtype the implementation supports: float32/float64 and the 16-bit formats."""
    return tuple(impl.capabilities.dtypes)


def p_for_threshold(t: int) -> float:
    """The p with ``keep_threshold(p) == t``: ``1 - t / 2**32`` (exact in double precision)."""
    return (2**32 - t) / 2**32


def _edge_words(words: np.ndarray, k: int = EDGE_WORDS) -> list[int]:
    """Indices of ``k`` elements to put at the threshold: the largest words (where float32 has
    the coarsest grid, 256 words) whose low byte is not a rounding tie (127, 128), the smallest
    and one from the middle: every plausible wrong threshold is caught on one of them."""
    order = np.argsort(words, kind="stable")
    lowbyte = words[order] & 0xFF
    big = [int(i) for i, b in zip(order[::-1], lowbyte[::-1]) if b not in (127, 128)][: k - 2]
    rest = [int(order[0]), int(order[len(order) // 2])]
    return list(dict.fromkeys(big + rest))


def threshold_cases(seed: int, offset: int) -> list[tuple[float, int, int, str]]:
    """``(p, element, word, where)``: for each chosen element, p with the threshold just above
    its word (kept), exactly at it (dropped), and the two float64 neighbours of the latter p
    (threshold one below: dropped; the same threshold: dropped)."""
    words = ref.stream_words(EDGE_N, seed, offset)
    out = []
    for i in _edge_words(words):
        w = int(words[i])
        pw = p_for_threshold(w)
        out.append((p_for_threshold(w + 1), i, w, "word = threshold - 1 (kept)"))
        out.append((pw, i, w, "word = threshold (dropped)"))
        out.append((float(np.nextafter(pw, 1.0)), i, w, "p one ulp above: word = threshold + 1 (dropped)"))
        out.append((float(np.nextafter(pw, 0.0)), i, w, "p one ulp below: word = threshold (dropped)"))
    return out


#: Plausible wrong keep thresholds (name -> t(p)), named in a failure's diagnosis.
WRONG_THRESHOLDS = {
    "keep iff word <= t (threshold off by one, kept one word too many)": lambda p: int(keep_threshold(p)) + 1,
    "keep iff word < t - 1 (threshold off by one, one word too few)": lambda p: max(int(keep_threshold(p)) - 1, 0),
    "threshold computed from float32(1 - p)":
        lambda p: int(np.floor(np.float64(np.float32(1.0 - p)) * 4294967296.0)),
    "threshold rounded, not floored: round((1 - p) 2**32)": lambda p: int(round((1.0 - p) * 4294967296.0)),
}


def _diagnose_threshold(observed, words) -> str:
    """``observed``: [(p, kept)] of every crafted call of one dtype; the wrong thresholds that
    explain all of them, or a note that the stream itself differs."""
    hits = [name for name, f in WRONG_THRESHOLDS.items()
            if all(np.array_equal(kept, words.astype(np.int64) < f(p)) for p, kept in observed)]
    if hits:
        return "; likely cause: " + " or ".join(hits)
    return ("; no threshold formula explains the decisions: the words themselves differ "
            "(seed, offset or counter), see contract/counter_boundaries and contract/forward")


def keep_threshold_edges(impl, strict=True, seeds=None):
    """Elements whose word is exactly at, just below and just above the threshold of a p
    chosen from the stream (``p = 1 - w/2**32`` and its float64 neighbours): kept iff
    ``word < floor((1 - p) 2**32)``, bit for bit, in every supported dtype."""
    seed = contract_seed(seeds, "keep_threshold_edges")
    if not impl.capabilities.offset:
        offset = 0
    elif seeds is None or seeds.mode == "fixed":
        offset = 2**33 + 3
    else:
        offset = (contract_seed(seeds, "keep_threshold_edges/offset") % 2**40) * 4 + 3
    cases = threshold_cases(seed, offset)
    if impl.simulated:  # the CUDA simulator: ~0.1 s a call; the first two words (8 p) suffice
        cases = cases[:8]
    words = ref.stream_words(EDGE_N, seed, offset)
    n = 0
    for dt in _all_dtypes(impl):
        dtype = vocab.np_dtype(dt)
        x = nonzero_normal(dtype, (EDGE_N,), seed=2) if dtype.itemsize > 2 else \
            np.linspace(0.5, 2.0, EDGE_N).astype(dtype)
        observed, first_bad = [], None
        for p, i, w, where in cases:
            y, _ = impl.forward(x, p, seed=seed, offset=offset)
            want, _ = ref.dropout_forward(x, p, seed=seed, offset=offset, mask_format=None)
            n += 1
            y = np.asarray(y)
            if y.shape != want.shape:
                return False, _diff(f"{dt} p={p!r}", y, want)
            observed.append((p, y.astype(np.float64) != 0))
            if first_bad is None and not bits_equal(y, want):
                first_bad = (p, i, w, where, y, want)
        if first_bad is None:
            continue
        p, i, w, where, y, want = first_bad
        t = int(keep_threshold(p))
        kept_got, kept_want = y.astype(np.float64) != 0, want.astype(np.float64) != 0
        at = f"{dt} p={p!r} (threshold t = {t}) seed={seed:#x} offset={offset}"
        if np.array_equal(kept_got, kept_want):  # the decisions are right, the values are not
            bad = np.flatnonzero(y.astype(np.float64) != want.astype(np.float64))
            j = int(bad[0]) if bad.size else 0
            return False, (f"{at}: the keep decisions are right but {bad.size} kept values differ, e.g. "
                           f"x = {x[j]!r}: got {y[j]!r}, want {want[j]!r}" + _diagnose_scale(x, y, p))
        wrong = np.flatnonzero(kept_got != kept_want)
        if kept_got[i] != kept_want[i]:
            head = (f"element {i}, word {w} ({where.split(':')[-1].strip()}): "
                    f"{'kept' if kept_got[i] else 'dropped'}, the contract {'keeps' if w < t else 'drops'} it")
        else:
            head = f"elements {wrong[:4].tolist()} (words {words[wrong[:4]].tolist()}) decided differently"
        return False, f"{at}: {head}" + _diagnose_threshold(observed, words)
    return True, (f"keep iff word < floor((1 - p) 2**32) at the edge: {len(cases)} p values crafted from the "
                  f"stream (words at, just below and just above the threshold) x {len(_all_dtypes(impl))} "
                  f"dtypes ({n} calls)")


# --- the scale: where the wrong formulas round differently ---------------------------------------


def _compute(dt):
    from reference.half import compute_dtype
    return compute_dtype(vocab.np_dtype(dt))


def _contract_kept(x, p):
    """Contract value of kept elements: ``round(x_c * scale_for(p, compute))``."""
    work = _compute(x.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        return (x.astype(work) * scale_for(p, work)).astype(x.dtype)


def _with_scale(s_fn):
    def kept(x, p):
        work = _compute(x.dtype)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return (x.astype(work) * work.type(s_fn(p, work, x.dtype))).astype(x.dtype)
    return kept


def _divided(x, p):
    work = _compute(x.dtype)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return (x.astype(work) / work.type(1.0 - p)).astype(x.dtype)


def _in_float64(x, p):
    with np.errstate(over="ignore", invalid="ignore"):
        return (x.astype(np.float64) * (1.0 / (1.0 - p))).astype(x.dtype)


def _is16(dt) -> bool:
    return vocab.np_dtype(dt).itemsize == 2


#: Plausible wrong formulas for a kept value (name -> (applies to dtype?, kept(x, p))).
WRONG_SCALES = {
    "scale computed as float32(1) / float32(1 - p) (float32 division), not 1/(1-p) rounded once":
        (lambda dt: np.dtype(_compute(dt)) == np.float32,
         _with_scale(lambda p, w, dt: np.float32(1) / np.float32(1.0 - p))),
    "scale computed in float32 and used for float64":
        (lambda dt: np.dtype(dt) == np.float64, _with_scale(lambda p, w, dt: np.float32(1.0 / (1.0 - p)))),
    "x / (1 - p) (division) instead of x * scale": (lambda dt: True, _divided),
    "scale one ulp too high": (lambda dt: True,
                               _with_scale(lambda p, w, dt: np.nextafter(scale_for(p, w), w.type(np.inf)))),
    "scale one ulp too low": (lambda dt: True,
                              _with_scale(lambda p, w, dt: np.nextafter(scale_for(p, w), w.type(0)))),
    "scale rounded to the 16-bit dtype before multiplying (two roundings)":
        (_is16, _with_scale(lambda p, w, dt: np.float32(scale_for(p, np.float32)).astype(dt).astype(np.float32))),
    "x * 1/(1-p) computed in float64, rounded once to the 16-bit dtype (not in float32)":
        (_is16, _in_float64),
}

#: p values searched (in this order) for one where each wrong formula differs from the contract
SCALE_P_POOL = (0.15, 0.45, 1e-6, 0.1, 0.3, 0.5, 0.7, 0.9, 1e-3, 0.01, 0.2, 0.25, 0.33, 0.6, 0.8, 0.99,
                *(k / 97 for k in range(1, 97)))


def _x_pool(dt) -> np.ndarray:
    """Candidate inputs: every finite positive and negative 16-bit value, or 4096 normals."""
    dt = vocab.np_dtype(dt)
    if np.dtype(dt).itemsize == 2:
        bits = np.arange(1, 0x7C00 if np.dtype(dt) == np.float16 else 0x7F80, dtype=np.uint16)
        pos = bits.view(dt)
        return np.concatenate([pos, (bits | 0x8000).astype(np.uint16).view(dt)])
    return np.concatenate([nonzero_normal(dt, (4096,), seed=3), np.array([1.0, -1.0, 3.0, 0.7], dtype=dt)])


def scale_cases(dt, extra_p=()) -> list[tuple[float, str, np.ndarray]]:
    """``(p, wrong formula, x values)``: for each wrong formula that applies to ``dt``, the first p
    (of ``extra_p`` then :data:`SCALE_P_POOL`) where it gives a different kept value than the
    contract for some x, and up to 8 such x (finite results only)."""
    pool = _x_pool(dt)
    out = []
    for name, (applies, kept) in WRONG_SCALES.items():
        if not applies(vocab.np_dtype(dt)):
            continue
        for p in (*extra_p, *SCALE_P_POOL):
            want, got = _contract_kept(pool, p), kept(pool, p)
            w64, g64 = want.astype(np.float64), got.astype(np.float64)
            differ = np.isfinite(w64) & np.isfinite(g64) & (w64 != g64)
            if differ.any():
                idx = np.flatnonzero(differ)
                out.append((float(p), name, pool[idx[np.linspace(0, idx.size - 1, min(8, idx.size)).astype(int)]]))
                break
    return out


def _diagnose_scale(x, y, p) -> str:
    kept = y.astype(np.float64) != 0
    if not kept.any():
        return ""
    xs, ys = x[kept], y[kept]
    hits = [name for name, (applies, f) in WRONG_SCALES.items()
            if applies(x.dtype) and bits_equal(f(xs, p), ys)]
    return ("; likely cause: " + " or ".join(hits)) if hits else ""


def scale_rounding(impl, strict=True, seeds=None):
    """Kept values ``x * scale`` with the scale ``1/(1-p)`` rounded once to the dtype (float32 for
    the 16-bit formats, rounded once more at the end), at p chosen where the plausible wrong
    formulas (float32 division, x / (1 - p), one ulp off, the scale rounded to 16 bits, float64
    arithmetic) round differently, with inputs that show the difference at kept positions."""
    seed = contract_seed(seeds, "scale_rounding")
    offset = 0
    extra_p: tuple = ()
    if seeds is not None and seeds.mode != "fixed":
        rng = np.random.default_rng(seeds._h("contract/scale_rounding/p"))
        extra_p = tuple(float(v) for v in rng.uniform(1e-3, 0.99, 6))
    n_cases = 0
    for dt in _all_dtypes(impl):
        dtype = vocab.np_dtype(dt)
        cases = scale_cases(dt, extra_p)
        if impl.simulated:
            cases = cases[:2]
        for p in dict.fromkeys(p for p, _, _ in cases):
            xs = np.concatenate([v for q, _, v in cases if q == p])
            n = EDGE_N  # long enough that every distinguishing x lands on a kept position
            while np.count_nonzero(keep := ref.keep_mask((n,), p, seed, offset)) < xs.size and n < 2**16:
                n *= 2
            slots = np.flatnonzero(keep)[: xs.size]
            x = (nonzero_normal(dtype, (n,), seed=4) if dtype.itemsize > 2 else
                 np.linspace(0.5, 2.0, n).astype(dtype))
            x[slots] = xs[: slots.size]
            y, _ = impl.forward(x, p, seed=seed, offset=offset)
            want, _ = ref.dropout_forward(x, p, seed=seed, offset=offset, mask_format=None)
            n_cases += 1
            if not bits_equal(y, want):
                y = np.asarray(y)
                if y.shape != want.shape or y.dtype != want.dtype:
                    return False, _diff(f"{dt} p={p!r}", y, want)
                bad = np.flatnonzero(y.astype(np.float64) != want.astype(np.float64))
                i = int(bad[0]) if bad.size else 0
                return False, (f"{dt} p={p!r}: {bad.size} of {n} elements differ, e.g. x = {x[i]!r}: "
                               f"got {y[i]!r}, want {want[i]!r} (scale_for(p) = {scale_for(p, _compute(dtype))!r})"
                               + _diagnose_scale(x, y, p))
    return True, (f"kept values x * (1/(1-p) rounded once) at {n_cases} p values where float32 division, "
                  "x / (1 - p), a scale one ulp off, a 16-bit scale or float64 arithmetic would round differently")


# --- the counter's word boundaries and the seed's high bits ------------------------------------

BOUNDARY_OFFSETS = (2**32 - 61, 2**34 - 61, 2**36 - 61, 2**63 - 61, 2**64 - 128)


def counter_boundaries(impl, strict=True, seeds=None):
    """Calls whose positions cross 2**32 (the position's low word), 2**34 (the block counter's
    high word), 2**36 and 2**63, and end at 2**64 - 1; seeds that differ only in their high
    32 bits, each equal to the reference."""
    base = contract_seed(seeds, "counter_boundaries")
    lo = base & 0xFFFFFFFF
    seeds_hi = [lo | (h << 32) for h in (0, 1, 2**31, 2**32 - 1, (base >> 32) or 5)]
    dt = impl.capabilities.base_dtypes[0] if impl.capabilities.base_dtypes else impl.capabilities.dtypes[0]
    x = nonzero_normal(dt, (128,), seed=5)
    cases = [(s, 0) for s in seeds_hi]  # the seeds first: a failure there names the seed, not the counter
    cases += [(base, off) for off in BOUNDARY_OFFSETS] if impl.capabilities.offset else []
    for seed, off in cases:
        y, _ = impl.forward(x, 0.5, seed=seed, offset=off)
        want, _ = ref.dropout_forward(x, 0.5, seed=seed, offset=off, mask_format=None)
        if not bits_equal(y, want):
            what = (f"offset {off:#x} (positions {off:#x} .. {off + 127:#x})" if off else
                    f"seed {seed:#x} (high word {seed >> 32:#x})")
            return False, _diff(f"{what}", y, want) + (
                "; likely cause: the seed's high 32 bits ignored or folded" if not off else
                "; likely cause: a counter word boundary mishandled (position or block held in 32 bits)")
    return True, (f"{len(seeds_hi)} seeds differing only in the high 32 bits"
                  + ("; positions across 2**32, 2**34, 2**36, 2**63 and up to 2**64 - 1" if cases[-1][1] else "")
                  + ": as the reference")


CHECKS = {
    "forward": ((), forward),
    "masks": ((), masks),
    "backward": (("backward",), backward),
    "special_values": ((), special_values),
    "seeds_and_offsets": ((), seeds_and_offsets),
    "noise_shape": (("noise_shape",), noise_shape),
    "float16": (("dtype:float16",), float16),
    "bfloat16": (("dtype:bfloat16",), bfloat16),
    "keep_threshold_edges": ((), keep_threshold_edges),
    "scale_rounding": ((), scale_rounding),
    "counter_boundaries": ((), counter_boundaries),
}
