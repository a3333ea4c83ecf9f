"""The implementation protocol: what the checks need from a dropout implementation.

Every check (semantic, contract, statistical) talks to an :class:`Implementation`: NumPy
arrays in, NumPy arrays out, keyword arguments as in ``kernels`` (docs/RNG_STREAM.md).
Anything else is wrapped into one:

* an object or module with the backends' API (``dropout_forward`` / ``dropout_backward``):
  :func:`from_api`; it may declare ``DROPOUT_CAPABILITIES`` (a dict of the
  :class:`Capabilities` fields) and ``DROPOUT_CONTRACT = True`` (it claims our stream);
  whatever it does not declare is probed with tiny calls (the 16-bit dtypes, ``noise_shape``
  and ``out=x`` included: a float16 input must come back float16 to count);
* a plain callable ``f(x, p, seed) -> y``: :func:`from_callable` (forward only, no offset,
  no evaluation mode, no mask);
* a stateful callable ``f(x, p) -> y`` drawing from a generator it holds (``torch.manual_seed``
  once, then many calls; a NumPy ``Generator``; Keras's ``SeedGenerator``):
  :func:`from_stateful`, with an optional ``reseed(seed)`` (then a seed reproduces its masks)
  and ``set_threads(n)``; it gets the checks of reproducible implementations where it can be
  reseeded, and the checks of successive calls (reference/conformance/stateful.py) in any case.

``seed_bits`` (``--seed-bits 32``) declares an API with 32-bit seeds: every seed a check asks
for is hashed to that many bits (:func:`fold_seed`), so neighbouring seeds stay distinct.

A capability the implementation lacks makes the checks that need it "not supported"
rows, never failures. Converting other array types (torch, CuPy, device arrays) is the
adapters' job (reference/conformance/adapters); here outputs only go through ``np.asarray``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np

from reference import noise, vocab
from reference.stream import splitmix64


class Unsupported(Exception):
    """The implementation lacks a capability that a check needs."""


class Note(Exception):
    """Not a failure but worth a reader's attention (a "note" row): a behaviour the level does
    not forbid (a layout-dependent mask at level statistical) or one its framework documents
    (a generator that advances at p = 0, downgraded by ``notes=``)."""


@dataclass(frozen=True)
class Capabilities:
    dtypes: tuple = vocab.WIDE_DTYPES            # input dtypes it accepts (float16, bfloat16 too where declared)
    backward: bool = True             # dropout_backward exists
    mask_formats: tuple = vocab.STORED_MASK_FORMATS  # stored masks it can return (and backward can read)
    regenerate: bool = True           # backward can regenerate the mask from (seed, offset)
    offset: bool = True               # an `offset` argument: the position in the stream
    training: bool = True             # a `training=False` evaluation mode
    noise_shape: bool | str = False   # structured masks: True (any noise_shape), "channel" (only
                                      # (N, C, 1, ..., 1)), False (none)
    inplace: bool = False             # out=x (and out=grad_y in backward): in place
    stateful: bool = False            # draws from a generator it holds: f(x, p), successive calls
    reproducible: bool = True         # the same seed gives the same masks (a stateful one: reseed)
    threads: bool = False             # a set_threads(n) hook: the masks at 1 and N threads compared

    def has(self, need: str) -> bool:
        """``need``: a field name that is true, ``"mask:<fmt>"``, ``"dtype:<name>"``,
        ``"noise_shape:any"`` or ``"noise_shape:channel"``."""
        kind, _, arg = need.partition(":")
        if kind == "mask":
            return self.backward and arg in self.mask_formats
        if kind == "dtype":
            return arg in self.dtypes
        if kind == "noise_shape" and arg == "any":
            return self.noise_shape is True
        return bool(getattr(self, kind))

    def allows_noise_shape(self, shape, noise_shape) -> bool:
        if self.noise_shape is True:
            return True
        return self.noise_shape == "channel" and len(shape) >= 2 and tuple(noise_shape) == noise.channel(shape)

    @property
    def base_dtypes(self) -> tuple:
        """The accepted float32/float64 (the dtypes the general checks run on)."""
        return tuple(d for d in self.dtypes if d in vocab.WIDE_DTYPES)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(eq=False)  # hashed by identity: sample caches are keyed by the object, not a name
class Implementation:
    name: str
    forward_fn: Callable = field(repr=False)
    backward_fn: Callable | None = field(default=None, repr=False)
    capabilities: Capabilities = field(default_factory=Capabilities)
    claims_contract: bool = False     # held to the reference bit for bit (level 'contract')
    description: str = ""
    source: object = field(default=None, repr=False)  # the wrapped object, for the report
    simulated: bool = False           # CUDA simulator: tiny sample sizes only
    refused: dict = field(default_factory=dict, repr=False)  # dtype -> the error: declared, then refused
    seed_bits: int = 64               # the seeds it takes: 32 for APIs with 32-bit seeds (--seed-bits)
    hooks: StatefulHooks | None = field(default=None, repr=False)  # a stateful implementation's own calls
    notes: tuple = ()                 # checks whose failure is a note: behaviour its framework documents

    def require(self, *needs: str) -> None:
        missing = [n for n in needs if not self.capabilities.has(n)]
        if missing:
            why = [f"{n} (declared, but refused: {self.refused[n.split(':', 1)[1]]})"
                   if n.startswith("dtype:") and n.split(":", 1)[1] in self.refused else n for n in missing]
            raise Unsupported(f"{self.name} does not support {', '.join(why)}")

    def reseed(self, seed: int) -> None:
        """A stateful implementation's ``reseed``, with the seed folded to its ``seed_bits``."""
        if self.hooks is None or self.hooks.reseed is None:
            raise Unsupported(f"{self.name} cannot be reseeded")
        self.hooks.reseed(fold_seed(seed, self.seed_bits))

    def _extra(self, shape, noise_shape, out) -> dict:
        """``noise_shape=`` and ``out=`` are passed on only when given (forward_fn and
        backward_fn written before them need not take them)."""
        kw = {}
        if noise_shape is not None:
            self.require("noise_shape")
            if not self.capabilities.allows_noise_shape(shape, noise_shape):
                raise Unsupported(f"{self.name} supports only the channel noise_shape, not {tuple(noise_shape)}")
            kw["noise_shape"] = tuple(noise_shape)
        if out is not None:
            self.require("inplace")
            kw["out"] = out
        return kw

    def forward(self, x, p, *, seed, offset=0, training=True, mask_format=None, noise_shape=None, out=None):
        """``(y, mask)`` as NumPy arrays (``mask`` None unless a format was asked)."""
        self.require(f"dtype:{np.dtype(x.dtype).name}")
        seed = fold_seed(seed, self.seed_bits)
        if offset:
            self.require("offset")
        if not training:
            self.require("training")
        if mask_format is not None:
            self.require(f"mask:{mask_format}")
        kw = self._extra(x.shape, noise_shape, out)
        y, mask = self.forward_fn(x, p, seed=seed, offset=offset, training=training,
                                  mask_format=mask_format, **kw)
        return np.asarray(y), (None if mask is None else np.asarray(mask))

    def backward(self, grad_y, p, *, mask=None, seed=None, offset=0, noise_shape=None, out=None):
        self.require("backward", f"dtype:{np.dtype(grad_y.dtype).name}")
        if mask is None:
            self.require("regenerate")
        if offset:
            self.require("offset")
        if self.backward_fn is None:  # capabilities that claim a backward the wrapper lacks
            raise TypeError(f"{self.name} declares a backward but has no backward function")
        kw = self._extra(grad_y.shape, noise_shape, out)
        seed = None if seed is None else fold_seed(seed, self.seed_bits)
        return np.asarray(self.backward_fn(grad_y, p, mask=mask, seed=seed, offset=offset, **kw))


def fold_seed(seed: int, bits: int) -> int:
    """``seed`` for an API that takes ``bits``-bit seeds: the top bits of a splitmix64 mix, so
    that seeds which differ only in bits the API drops (seed + 2**32) stay distinct."""
    if bits >= 64:
        return seed
    return splitmix64(int(seed) & 0xFFFF_FFFF_FFFF_FFFF) >> (64 - bits)


@dataclass(frozen=True)
class StatefulHooks:
    """A stateful implementation's own calls: ``call(x, p)`` (or ``call(x, p, training=...)``)
    draws from the generator it holds; ``reseed(seed)`` resets it; ``set_threads(n)`` sets the
    framework's thread count and returns the previous one (None: not known)."""

    call: Callable
    reseed: Callable | None = None
    set_threads: Callable | None = None
    training_kw: bool = False         # call takes training=

    def __call__(self, x, p, *, training=True, noise_shape=None):
        """One call of the generator, passing ``training=`` and ``noise_shape=`` only when needed."""
        kw: dict = {} if training else {"training": False}
        if noise_shape is not None:
            kw["noise_shape"] = tuple(noise_shape)
        return self.call(x, p, **kw)


# --- wrapping ---------------------------------------------------------------------------------


def _works(call) -> bool:
    try:
        call()
        return True
    except Exception:
        return False


def _half_inputs() -> dict:
    out = {}
    for d in vocab.HALF_DTYPES:
        with contextlib.suppress(ImportError, TypeError):  # no ml_dtypes: bfloat16 is not probed
            out[d] = np.linspace(1, 2, 16).astype(vocab.np_dtype(d))
    return out


def probe_half_dtypes(call) -> tuple:
    """The 16-bit formats for which ``call(x)`` works and returns that dtype (an implementation
    that widens float16 input to float32 does not support float16: "not supported")."""
    def keeps(x):
        y = call(x)
        return np.asarray(y).dtype == x.dtype

    found = []
    for d, x in _half_inputs().items():
        try:
            ok = keeps(x)
        except Exception:
            ok = False
        if ok:
            found.append(d)
    return tuple(found)


NOISE_PROBE_SHAPE = (2, 3, 4, 4)


def probe_noise_shape(forward):
    """True (any noise_shape), "channel" (only (N, C, 1, ..., 1)) or False, from tiny calls."""
    x = np.linspace(1, 2, int(np.prod(NOISE_PROBE_SHAPE))).reshape(NOISE_PROBE_SHAPE).astype(np.float32)

    def ok(ns):
        return np.asarray(forward(x, 0.5, seed=1, noise_shape=ns)[0]).shape == x.shape

    def works(ns):
        try:
            return ok(ns)
        except Exception:
            return False

    if works((2, 1, 4, 1)) and works(noise.channel(x.shape)):
        return True
    return "channel" if works(noise.channel(x.shape)) else False


def probe_inplace(forward, dtype) -> bool:
    """``out=x`` accepted and written to."""
    x = np.linspace(1, 2, 64, dtype=dtype)
    xc = x.copy()
    try:
        forward(xc, 0.5, seed=1, out=xc)
    except Exception:
        return False
    return not np.array_equal(xc, x)


def probe_capabilities(forward, backward) -> Capabilities:
    """What a backends-API implementation accepts, from tiny calls (errors mean 'no')."""
    x = {d: np.linspace(1, 2, 16, dtype=d) for d in vocab.WIDE_DTYPES}
    dtypes = tuple(d for d in vocab.WIDE_DTYPES if _works(lambda d=d: forward(x[d], 0.5, seed=1)))
    if not dtypes:
        raise TypeError("the implementation accepts neither float32 nor float64 input")
    dtypes += probe_half_dtypes(lambda h: forward(h, 0.5, seed=1)[0])
    x0 = x[dtypes[0]]
    formats = tuple(f for f in vocab.STORED_MASK_FORMATS
                    if _works(lambda f=f: forward(x0, 0.5, seed=1, mask_format=f)[1].shape))
    has_bwd = backward is not None
    return Capabilities(
        dtypes=dtypes,
        backward=has_bwd,
        mask_formats=formats if has_bwd else (),
        regenerate=has_bwd and _works(lambda: backward(x0, 0.5, seed=1)),
        offset=_works(lambda: forward(x0, 0.5, seed=1, offset=5)),
        training=_works(lambda: forward(x0, 0.5, seed=1, training=False)),
        noise_shape=probe_noise_shape(forward),
        inplace=probe_inplace(forward, dtypes[0]),
    )


def from_api(obj, name: str | None = None, *, claims_contract: bool | None = None,
             capabilities: Capabilities | dict | None = None, description: str = "") -> Implementation:
    """An object or module with ``dropout_forward`` (and optionally ``dropout_backward``)."""
    fwd = getattr(obj, "dropout_forward", None)
    if not callable(fwd):
        raise TypeError(f"{obj!r} has no dropout_forward")
    bwd = getattr(obj, "dropout_backward", None)
    bwd = bwd if callable(bwd) else None

    def forward(x, p, *, seed, offset, training, mask_format, **extra):  # extra: noise_shape, out
        kw = {"seed": seed, "mask_format": mask_format, **extra}
        if offset:
            kw["offset"] = offset
        if not training:
            kw["training"] = False
        return fwd(x, p, **kw)

    caps = capabilities if capabilities is not None else getattr(obj, "DROPOUT_CAPABILITIES", None)
    if isinstance(caps, dict):
        caps = Capabilities(**caps)
    if caps is None:
        caps = probe_capabilities(fwd, bwd)
    if claims_contract is None:
        claims_contract = bool(getattr(obj, "DROPOUT_CONTRACT", False))
    name = name or getattr(obj, "NAME", None) or getattr(obj, "__name__", None) or repr(obj)
    return Implementation(name, forward, _api_backward(bwd) if bwd else None, caps, claims_contract,
                          description or (obj.__doc__ or "").strip().split("\n")[0], source=obj)


def _api_backward(bwd: Callable) -> Callable:
    """The protocol's backward call on a backends-API ``dropout_backward``."""

    def backward(g, p, *, mask, seed, offset, **extra):  # extra: noise_shape, out
        kw = {"mask": mask} if mask is not None else {"seed": seed}
        if offset:
            kw["offset"] = offset
        return bwd(g, p, **kw, **extra)

    return backward


def _require_seed_parameter(f) -> None:
    """``from_callable`` needs ``f(x, p, seed)``: a callable ``f(x, p)`` is a stateful dropout,
    for :func:`from_stateful`; say so clearly rather than load it and report an error per check."""
    import inspect

    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):
        return
    params = list(sig.parameters.values())
    if any(q.kind in (q.VAR_POSITIONAL, q.VAR_KEYWORD) for q in params):
        return
    positional = [q for q in params if q.kind in (q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 3:
        raise TypeError(f"{getattr(f, '__qualname__', f)!r} takes {len(positional)} positional arguments "
                        f"({', '.join(q.name for q in positional)}), not f(x, p, seed): a stateful dropout "
                        "(no seed) is checked by from_stateful (which loader.wrap and dropout-check choose by "
                        "themselves), with f.reseed(seed) where it can be reseeded")


def from_callable(f, name: str | None = None, *, description: str = "",
                  dtypes: tuple | None = None) -> Implementation:
    """A plain ``f(x, p, seed) -> y`` (NumPy in and out): forward only."""

    def forward(x, p, *, seed, offset, training, mask_format):
        return f(x, p, seed), None

    _require_seed_parameter(f)
    if dtypes is None:
        dtypes = tuple(d for d in vocab.WIDE_DTYPES
                       if _works(lambda d=d: np.asarray(f(np.linspace(1, 2, 16, dtype=d), 0.5, 1)).shape))
        dtypes += probe_half_dtypes(lambda h: f(h, 0.5, 1))
    caps = Capabilities(dtypes=dtypes, backward=False, mask_formats=(), regenerate=False,
                        offset=False, training=False)
    name = name or getattr(f, "__qualname__", None) or repr(f)
    return Implementation(name, forward, None, caps, False,
                          description or (getattr(f, "__doc__", None) or "").strip().split("\n")[0], source=f)


def _takes_training(f) -> bool:
    x = np.linspace(1, 2, 16, dtype=np.float32)  # float32: some frameworks (JAX's 32-bit mode) narrow float64
    try:
        y = np.asarray(f(x, 0.5, training=False))
    except Exception:
        return False
    return y.shape == x.shape and bool(np.array_equal(y, x))


def from_stateful(f, name: str | None = None, *, reseed: Callable | None = None, seed_bits: int = 64,
                  set_threads: Callable | None = None, description: str = "", dtypes: tuple | None = None,
                  notes: tuple = ()) -> Implementation:
    """A stateful ``f(x, p) -> y`` (NumPy in and out) drawing from a generator it holds.

    ``reseed(seed)`` (or ``f.reseed``) resets the generator: a check's seed then reproduces its
    masks and every check of a seeded implementation applies; without it the seed is ignored
    (two calls with one seed are two successive calls) and only the checks that need no
    reproducibility run. ``f(x, p, training=False)``, where it works, is the evaluation mode.
    ``f(x, p, noise_shape=...)``, where it works, gives structured masks (probed as for the
    backends' API). ``notes``: check names whose failure is a behaviour the framework documents
    (a note row)."""
    if not callable(f):
        raise TypeError(f"{f!r} is not callable")
    reseed = reseed if reseed is not None else getattr(f, "reseed", None)
    set_threads = set_threads if set_threads is not None else getattr(f, "set_threads", None)
    seed_bits = int(getattr(f, "seed_bits", seed_bits))
    if not 1 <= seed_bits <= 64:
        raise ValueError(f"seed_bits must be in [1, 64], got {seed_bits}")
    hooks = StatefulHooks(f, reseed if callable(reseed) else None,
                          set_threads if callable(set_threads) else None, _takes_training(f))

    def forward(x, p, *, seed, offset=0, training=True, mask_format=None, noise_shape=None):
        if hooks.reseed is not None:
            hooks.reseed(seed)
        return hooks(x, p, training=training, noise_shape=noise_shape), None

    if dtypes is None:
        dtypes = tuple(d for d in vocab.WIDE_DTYPES
                       if _works(lambda d=d: np.asarray(f(np.linspace(1, 2, 16, dtype=d), 0.5)).shape))
        if not dtypes:
            raise TypeError(f"{getattr(f, '__qualname__', f)!r} accepts neither float32 nor float64 input as f(x, p)")
        dtypes += probe_half_dtypes(lambda h: f(h, 0.5))
    caps = Capabilities(dtypes=dtypes, backward=False, mask_formats=(), regenerate=False, offset=False,
                        training=hooks.training_kw, noise_shape=probe_noise_shape(forward), stateful=True,
                        reproducible=hooks.reseed is not None, threads=hooks.set_threads is not None)
    name = name or getattr(f, "__qualname__", None) or repr(f)
    return Implementation(name, forward, None, caps, False,
                          description or (getattr(f, "__doc__", None) or "").strip().split("\n")[0], source=f,
                          seed_bits=seed_bits, hooks=hooks, notes=tuple(notes))


def is_stateful_signature(f) -> bool:
    """``f(x, p)``: two positional parameters and no seed (a generator it holds)."""
    import inspect

    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):
        return False
    params = list(sig.parameters.values())
    if any(q.kind == q.VAR_POSITIONAL for q in params) or "seed" in sig.parameters:
        return False
    positional = [q for q in params if q.kind in (q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD)
                  and q.default is q.empty]
    return len(positional) == 2


_WRAPPED: dict = {}  # id(obj) -> (obj, Implementation): one wrapper per object, so caches hit


def register_wrapper(obj, impl: Implementation) -> None:
    """Make ``impl`` the wrapper of ``obj`` (the registry's backends claim the contract)."""
    _WRAPPED[id(obj)] = (obj, impl)


def as_implementation(obj, **kw) -> Implementation:
    """``obj`` itself if it is an Implementation, else its (memoized) :func:`from_api` wrapper."""
    if isinstance(obj, Implementation):
        return obj
    hit = _WRAPPED.get(id(obj))
    if hit is None or hit[0] is not obj:
        hit = _WRAPPED[id(obj)] = (obj, from_api(obj, **kw))
    return hit[1]
