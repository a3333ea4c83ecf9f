"""The sweep, declared as grids (in the spirit of ``triton.testing.Benchmark``).

A :class:`Grid` names its axes: providers x operation x mask format (None, 'bool', 'bits')
x size x p x dtype. :func:`points` expands a list of grids into :class:`Point` s, dropping
what a provider does not support and sizes above a provider's cap, adding one copy (the
ceiling) per device, size and dtype, removing duplicates, and ordering them so that each
size's ceiling is measured right before that size's dropouts (the machines are noisy: a
ratio to a copy timed minutes earlier means less).

Operations (the "direction" ``forward`` or ``backward``, and a variant):

- ``forward`` / ``backward``: elementwise dropout of a flat array of ``n`` elements.
- ``forward_channel`` / ``backward_channel``: channel dropout (``noise_shape =
  reference.noise.channel(shape)``) of the same ``n`` elements viewed as the
  ``(N, C, H, W)`` feature map of :func:`channel_map_shape` (``H * W = 1024``): one decision per
  sample and channel, a mask of ``N * C`` elements.
- ``forward_inplace`` / ``backward_inplace``: elementwise, ``out=x`` (forward) or
  ``out=grad_y`` (backward). The input is restored, untimed, before every timed call.

A backward with mask format ``None`` regenerates the mask from the seed; with 'bool' or
'bits' it reads a stored mask of that format.

Dtypes: float32, float64, float16 and bfloat16 (``ml_dtypes.bfloat16``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from reference import vocab

ELEMENTWISE = ("forward", "backward")
CHANNEL = ("forward_channel", "backward_channel")
INPLACE = ("forward_inplace", "backward_inplace")
OPERATIONS = ELEMENTWISE + CHANNEL + INPLACE
#: "As called": ``y, mask = dropout_forward(x, p, seed=s)``, a new output (and mask) per call,
#: against an allocating copy (``np.copy(x)``, operation ``copy_alloc``). Not in OPERATIONS:
#: the sweep's own grid (``as_called_grid``) adds these rows.
AS_CALLED = ("forward_alloc",)
COPIES = ("copy", "copy_alloc")
VARIANTS = {"": "elementwise", "channel": "channel", "inplace": "in place", "alloc": "as called"}
#: The mask formats of a sweep, in the order each size's points are measured: not kept first.
SWEEP_MASK_FORMATS = (None, *vocab.STORED_MASK_FORMATS)
CHANNEL_HW = 1024  # H * W of a channel-dropout feature map (32 x 32)
CHANNEL_MAX_C = 64


def direction(operation: str) -> str:
    """'forward', 'backward' or 'copy' of an operation name."""
    return operation.split("_", 1)[0]


def variant(operation: str) -> str:
    """'' (elementwise), 'channel' or 'inplace'."""
    return operation.split("_", 1)[1] if "_" in operation else ""


def channel_map_shape(n: int) -> tuple[int, int, int, int] | None:
    """The ``(N, C, H, W)`` feature map of ``n`` elements the channel rows use: ``H * W =
    1024`` (32 x 32), ``C`` up to 64, ``N`` the rest; below 4096 elements ``C = 4`` and
    ``H * W = n / 4`` (the CUDA simulator's tiny sizes). None when ``n`` has no such shape
    (the channel points of that size are skipped)."""
    n = int(n)
    if n >= 4 * CHANNEL_HW:
        if n % CHANNEL_HW:
            return None
        planes = n // CHANNEL_HW
        c = min(CHANNEL_MAX_C, planes)
        while planes % c:
            c -= 1
        hw, nc = CHANNEL_HW, (planes // c, c)
    else:
        if n < 4 or n % 4:
            return None
        hw, nc = n // 4, (1, 4)
    h = 1 << ((hw.bit_length() - 1) // 2) if hw & (hw - 1) == 0 else 1
    return (*nc, h, hw // h)


def mask_elements(operation: str, n: int) -> int:
    """Elements of the dropout mask of ``operation`` on ``n`` elements (``N * C`` for channel)."""
    if variant(operation) == "channel":
        shape = channel_map_shape(n)
        if shape is None:
            raise ValueError(f"no channel-dropout shape for n = {n} (a multiple of 1024 from 4096 on)")
        return shape[0] * shape[1]
    return int(n)


def ceiling_op(operation: str) -> str:
    """The copy an operation is compared with: ``copy_alloc`` (allocating) for the as-called
    rows, ``copy`` (into a preallocated output) for the others."""
    return "copy_alloc" if variant(operation) == "alloc" else "copy"


def point_ok(operation: str, n: int) -> bool:
    """False for a channel point whose size has no (N, C, H, W) shape."""
    return variant(operation) != "channel" or channel_map_shape(n) is not None


@dataclass(frozen=True)
class Point:
    provider: str
    operation: str  # 'forward', 'backward' or 'copy'
    mask_format: str | None
    n: int
    p: float
    dtype: str

    @property
    def mask_label(self) -> str:
        return mask_label(self.mask_format)

    @property
    def group(self) -> str:
        """Points that compete: same work, different providers (pytest-benchmark's group)."""
        return f"{self.operation} mask={self.mask_label} {self.dtype} n={size_label(self.n)} p={self.p:g}"

    @property
    def id(self) -> str:
        return f"{self.provider}-{self.operation}-{self.mask_label}-{self.dtype}-{size_label(self.n)}-p{self.p:g}"


@dataclass(frozen=True)
class Grid:
    """The cartesian product of the axes. ``max_size`` caps sizes per provider name."""

    name: str
    providers: tuple[str, ...]
    sizes: tuple[int, ...]
    ps: tuple[float, ...] = (0.5,)
    dtypes: tuple[str, ...] = ("float32",)
    operations: tuple[str, ...] = OPERATIONS
    mask_formats: tuple = SWEEP_MASK_FORMATS
    max_size: dict = field(default_factory=dict, hash=False, compare=False)


def mask_label(mask_format) -> str:
    return "none" if mask_format is None else str(mask_format)


def mask_from_label(label):
    if label is None or (isinstance(label, float) and math.isnan(label)):
        return None
    return None if str(label).lower() in ("none", "", "nan") else str(label)


def size_label(n: int) -> str:
    k = int(n).bit_length() - 1
    return f"2^{k}" if n > 0 and 1 << k == n else str(n)


def points(grids, providers) -> list[Point]:
    """Expand ``grids`` with ``providers`` (name -> Provider) into ordered, unique points."""
    by_key: dict[tuple, list[Point]] = {}
    seen = set()

    def add(point, key):
        if point not in seen:
            seen.add(point)
            by_key.setdefault(key, []).append(point)

    for g in grids:
        names = [n for n in g.providers if n in providers]
        for dtype in g.dtypes:
            for n in g.sizes:
                key = (dtype, n)
                for name in names:
                    prov = providers[name]
                    if n > g.max_size.get(name, math.inf):
                        continue
                    if prov.supports("copy", None):
                        for cop in dict.fromkeys(ceiling_op(op) for op in g.operations):
                            add(Point(name, cop, None, n, 0.0, dtype), key)
                        continue
                    if not prov.supports_dtype(dtype):
                        continue
                    for p in g.ps:
                        for op in g.operations:
                            for mf in g.mask_formats:
                                if point_ok(op, n) and prov.supports(op, mf):
                                    add(Point(name, op, mf, n, float(p), dtype), key)
    ordered = []
    for key in by_key:  # insertion order: grids, then dtype, then size
        pts = by_key[key]
        ordered += [pt for pt in pts if pt.operation in COPIES] + [pt for pt in pts if pt.operation not in COPIES]
    return ordered


# --- parsing the command line's axes ---------------------------------------------------

_POW = re.compile(r"^\s*(\d+)\s*(?:\*\*|\^)\s*(\d+)\s*$")


def parse_size(text: str) -> int:
    """'2**20', '2^20', '1048576', '1e6' -> int."""
    m = _POW.match(text)
    try:
        value = int(m.group(1)) ** int(m.group(2)) if m else int(text) if text.strip().isdigit() else float(text)
    except ValueError:
        value = math.nan
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        value = 0
    if value < 1:
        raise ValueError(f"size must be a positive integer such as 1024, 2**20 or 1e6, got {text!r}")
    return int(value)


def parse_sizes(text: str) -> tuple[int, ...]:
    """Comma-separated sizes; 'A..B' is every power of two from A to B (both powers of 2)."""
    sizes = []
    for part in filter(None, (s.strip() for s in text.split(","))):
        if ".." in part:
            lo, hi = (parse_size(s) for s in part.split("..", 1))
            n = lo
            while n <= hi:
                sizes.append(n)
                n *= 2
        else:
            sizes.append(parse_size(part))
    if not sizes:
        raise ValueError("no sizes given")
    return tuple(dict.fromkeys(sizes))


def parse_floats(text: str) -> tuple[float, ...]:
    """Drop probabilities: comma-separated numbers in [0, 1]."""
    try:
        values = tuple(dict.fromkeys(float(s) for s in text.split(",") if s.strip()))
    except ValueError:
        raise ValueError(f"p must be numbers in [0, 1] such as 0.1,0.5, got {text!r}") from None
    if not values:
        raise ValueError("no values given")
    for p in values:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p:g}")
    return values


def parse_dtypes(text: str) -> tuple[str, ...]:
    dtypes = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    for d in dtypes:
        if d not in vocab.DTYPES:
            raise ValueError(f"dtype must be one of {vocab.DTYPES}, got {d!r}")
    return dtypes


def parse_masks(text: str) -> tuple:
    masks = tuple(dict.fromkeys(mask_from_label(s.strip()) for s in text.split(",") if s.strip()))
    for m in masks:
        if m not in vocab.MASK_FORMATS:
            raise ValueError(f"mask format must be none, bool or bits, got {m!r}")
    return masks


def parse_operations(text: str) -> tuple[str, ...]:
    ops = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    for op in ops:
        if op not in OPERATIONS:
            raise ValueError(f"operation must be one of {OPERATIONS}, got {op!r}")
    return ops


def parse_impls(text: str) -> tuple[str, ...]:
    """``--impl``: comma-separated IMPL strings (registry names or package.module:attribute)."""
    impls = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    if not impls:
        raise ValueError("no implementation given")
    return impls


def pow2_range(lo: int, hi: int, step: int = 1) -> tuple[int, ...]:
    return tuple(2**k for k in range(lo, hi + 1, step))


# --- the declared sweeps ---------------------------------------------------------------

# The NumPy reference and PyTorch's CPU dropout run at about 0.3 GB/s: one call at 2^24
# float64 takes about a second. They are capped there; the GPU sizes go to 2^28.
SLOW_CAP = {"reference": 2**24, "torch-cpu": 2**24}
CPU_CAP = {"cpu": 2**26, "copy-cpu": 2**26}
P_SWEEP = (0.1, 0.25, 0.5, 0.75, 0.9)
# 16-bit rows: the reference and PyTorch take about 0.45 s per 16-bit call at 2^24 (the
# conversions); they stop at 2^22 there, to keep the default sweep near 8 minutes on 2 cores.
HALF_SLOW_CAP = {"reference": 2**22, "torch-cpu": 2**22}


def default_grids(providers, *, gpu: bool) -> list[Grid]:
    """The full sweep: elementwise rows at sizes 2^10..2^24 on the CPU (to 2^28 on a GPU),
    p = 0.5, float32 and float64; float16 and bfloat16 at three sizes (the slow reference and
    PyTorch at the first two); the channel and in-place
    rows (float32) at three sizes, the largest CPU size included; then p from 0.1 to 0.9 at one
    size, float32."""
    names = tuple(providers)
    caps = dict(SLOW_CAP, **CPU_CAP)
    if gpu:
        # CPU providers stay at their sizes; the GPU ones get the sizes that fill the chip.
        return [
            Grid("size", names, pow2_range(10, 24), dtypes=vocab.WIDE_DTYPES, operations=ELEMENTWISE, max_size=caps),
            Grid("size-gpu", names, pow2_range(26, 28), dtypes=vocab.WIDE_DTYPES, operations=ELEMENTWISE,
                 max_size=caps),
            Grid("half", names, (2**16, 2**20, 2**24, 2**28), dtypes=vocab.HALF_DTYPES, operations=ELEMENTWISE,
                 max_size=dict(caps, **HALF_SLOW_CAP)),
            Grid("variants", names, (2**16, 2**20, 2**24, 2**28), operations=CHANNEL + INPLACE, max_size=caps),
            Grid("p", names, (2**26,), ps=P_SWEEP, operations=ELEMENTWISE, max_size=caps),
            Grid("p-cpu", names, (2**22,), ps=P_SWEEP, operations=ELEMENTWISE, max_size=caps),
        ]
    return [
        Grid("size", names, pow2_range(10, 24), dtypes=vocab.WIDE_DTYPES, operations=ELEMENTWISE, max_size=caps),
        Grid("half", names, (2**16, 2**20, 2**24), dtypes=vocab.HALF_DTYPES, operations=ELEMENTWISE,
             max_size=dict(caps, **HALF_SLOW_CAP)),
        Grid("variants", names, (2**16, 2**20, 2**24), operations=CHANNEL + INPLACE, max_size=caps),
        Grid("p", names, (2**22,), ps=P_SWEEP, operations=ELEMENTWISE, max_size=caps),
    ]


def quick_grids(providers) -> list[Grid]:
    """A small sweep for CI: three sizes, float32, and p 0.25/0.75 at the middle size
    (elementwise); bfloat16 at the middle size; the channel and in-place rows at two sizes."""
    names = tuple(providers)
    return [
        Grid("size", names, (2**10, 2**14, 2**18), operations=ELEMENTWISE),
        Grid("half", names, (2**14,), dtypes=("bfloat16",), operations=ELEMENTWISE),
        Grid("variants", names, (2**14, 2**18), operations=CHANNEL + INPLACE),
        Grid("p", names, (2**14,), ps=(0.25, 0.75), operations=ELEMENTWISE),
    ]


# --- the sweep's studies: per call, as called ---------------------------------------------

#: Studies whose rows time threads against each other (bench/underload.py): their own table, kept
#: out of the sweep's tables and plots.
THREAD_STUDIES = ("under-load", "idle-threads")

#: Sizes of the per-call table (microseconds per call, layer sizes): 2^8 .. 2^16.
PER_CALL_SIZES = pow2_range(8, 16, 2)
AS_CALLED_N = {"cpu": 2**24, "cuda": 2**28}
QUICK_AS_CALLED_N = 2**18


def per_call_grid(providers, sizes=PER_CALL_SIZES) -> Grid:
    """Forward (mask not kept, ``out=``; and as called) and backward (regenerated; from a
    stored bool mask, which PyTorch can do) at layer sizes, float32: microseconds per call."""
    return Grid("per-call", tuple(providers), tuple(sizes), operations=ELEMENTWISE + AS_CALLED,
                mask_formats=(None, "bool"))


def as_called_grid(providers, n: int) -> Grid:
    """``dropout_forward(x, p, seed=s)`` as users write it (new output, new bool mask; and with
    ``mask_format=None``) at ``n`` float32, against ``np.copy(x)``."""
    return Grid("as-called", tuple(providers), (n,), operations=AS_CALLED, mask_formats=(None, "bool"))
