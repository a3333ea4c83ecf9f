"""The CPU's tile fill (kernels/philox_cpu.py) holds the stream's bits: its fills equal
``reference.stream``'s Philox word for word, and kernels/cpu.py's regen kernels equal the contract
(docs/RNG_STREAM.md) computed with NumPy from ``reference.stream``, on random counters and
keys, blocks past 2**32 and across a multiple of 2**32, keys with high bits set, and tiles
that do not start on a block. Plus: the fast loops are vectorized."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from kernels import cpu
from kernels import philox_cpu as P
from reference.stream import keep_threshold, philox4x32_10, scale_for, split_seed, words_for_positions

FIRST_BLOCKS = [0, 1, 12345, 2**32 - 1, 2**32 - 100, 2**32, 2**32 + 7, 2**40 + 3,
                2**62 - 50, 2**62 - 1]
KEYS = [0, 1, 2**32 - 1, 2**32, 2**64 - 1, 0xDEADBEEF_CAFEF00D, 0x80000000_80000000]


def _expected_blocks(first_block, n_blocks, seed):
    b = np.uint64(first_block) + np.arange(n_blocks, dtype=np.uint64)
    zero = np.zeros_like(b)
    k0, k1 = split_seed(seed)
    return [w.astype(np.uint32) for w in philox4x32_10(b & np.uint64(0xFFFFFFFF), b >> np.uint64(32),
                                                       zero, zero, k0, k1)]


def _cases():
    rng = np.random.default_rng(12)
    cases = [(fb, n, k) for fb in FIRST_BLOCKS for n in (1, 3, 512, 514) for k in KEYS[:3]]
    cases += [(int(rng.integers(0, 2**62)), int(rng.integers(1, 515)), int(rng.integers(0, 2**64, dtype=np.uint64)))
              for _ in range(40)]
    cases += [(2**32 - s, 512, k) for s in (1, 2, 3, 255, 511) for k in KEYS]  # crosses 2**32 mid-tile
    return cases


@pytest.mark.parametrize("first_block,n_blocks,seed", _cases())
def test_fill_words_equals_reference(first_block, n_blocks, seed):
    w = [np.full(n_blocks + 2, 0xA5A5A5A5, dtype=np.uint32) for _ in range(4)]
    k0, k1 = split_seed(seed)
    P.fill_words(*w, np.uint64(first_block), n_blocks, k0, k1)
    for got, want in zip(w, _expected_blocks(first_block, n_blocks, seed)):
        np.testing.assert_array_equal(got[:n_blocks], want)
        assert (got[n_blocks:] == 0xA5A5A5A5).all()  # nothing written past the run


@pytest.mark.parametrize("first_block,n_blocks,seed", _cases())
def test_fill_stream_equals_reference(first_block, n_blocks, seed):
    words = np.full(4 * n_blocks + 8, 0xA5A5A5A5, dtype=np.uint32)
    k0, k1 = split_seed(seed)
    P.fill_stream(words, np.uint64(first_block), n_blocks, k0, k1)
    want = np.stack(_expected_blocks(first_block, n_blocks, seed), axis=1).reshape(-1)
    np.testing.assert_array_equal(words[:4 * n_blocks], want)
    assert (words[4 * n_blocks:] == 0xA5A5A5A5).all()


def _contract(x, p, seed, offset):
    """docs/RNG_STREAM.md with NumPy: y, bool mask, packed bits."""
    u = words_for_positions(np.uint64(offset) + np.arange(x.size, dtype=np.uint64), seed)
    keep = u.astype(np.uint64) < keep_threshold(p)
    with np.errstate(invalid="ignore"):
        y = (x * keep.astype(x.dtype)) * scale_for(p, x.dtype)
    return y, keep, np.packbits(keep, bitorder="little")


def _run_kernel(x, p, seed, offset, mode, parallel, n_chunks):
    n = x.size
    y = np.full_like(x, 7)
    mask_bool = np.zeros(n if mode == 1 else 0, np.bool_)
    mask_bits = np.full((n + 7) // 8 if mode == 2 else 0, 0xFF, np.uint8)
    k0, k1 = split_seed(seed)
    n_tiles = (n + cpu.TILE - 1) // cpu.TILE
    chunks = max(1, min(n_tiles, n_chunks))
    cpu.compiled_kernels("regen", mode, 0)[0 if parallel else 1](
        x, y, mask_bool, mask_bits, k0, k1, np.array([offset], np.uint64), max(n, 1), keep_threshold(p),
        scale_for(p, x.dtype), chunks, 0, chunks)
    return y, mask_bool, mask_bits


REGEN_CASES = [
    (3 * cpu.TILE + 5, 0.3, 5, 0),
    (3 * cpu.TILE + 5, 0.5, 2**64 - 1, 7),                      # key with every high bit set; tile starts mid-block
    (4 * cpu.TILE, 0.0, 3, 4 * (2**32) - 2 * cpu.TILE - 6),       # blocks cross 2**32 inside a tile, skip 2
    (2 * cpu.TILE + 1, 1.0, 9, 1),
    (5 * cpu.TILE - 3, 0.7, 0xDEADBEEF_CAFEF00D, 2**64 - 5 * cpu.TILE - 1),  # up to the end of the stream
    (17, 0.5, 2**40 + 5, 3),
    (1, 0.5, 11, 2**35 + 2),
    (cpu.TILE * 2, 0.1, 2**33, 2**34 * 4 + 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("n,p,seed,offset", REGEN_CASES)
def test_regen_kernel_equals_contract(dtype, mode, n, p, seed, offset):
    rng = np.random.default_rng(n + mode)
    x = rng.standard_normal(n).astype(dtype)
    x[:6] = [np.nan, np.inf, -np.inf, -0.0, 0.0, -1.5][: min(6, n)]
    y_ref, keep, bits = _contract(x, p, seed, offset)
    for parallel, chunks in ((True, 16), (True, 3), (False, 1)):
        y, mb, mbits = _run_kernel(x, p, seed, offset, mode, parallel, chunks)
        np.testing.assert_array_equal(y.view(np.uint8), y_ref.view(np.uint8))
        if mode == 1:
            np.testing.assert_array_equal(mb, keep)
        if mode == 2:
            np.testing.assert_array_equal(mbits, bits)


def test_regen_kernel_equals_reference_dropout():
    """And the NumPy oracle itself."""
    import reference

    x = np.random.default_rng(3).standard_normal(3 * cpu.TILE + 11).astype(np.float32)
    y_ref, m_ref = reference.dropout_forward(x, 0.25, seed=2**63 + 5, offset=2**34 - 9, mask_format="bits")
    y, _, mbits = _run_kernel(x, 0.25, 2**63 + 5, 2**34 - 9, 2, True, 16)
    np.testing.assert_array_equal(y.view(np.uint8), np.asarray(y_ref).view(np.uint8))
    np.testing.assert_array_equal(mbits, m_ref)


def _asm(dispatcher):
    return "\n".join(dispatcher.inspect_asm().values())


def test_fast_loops_are_vectorized():
    """The fill runs its rounds with vpmuludq on vector registers, and the apply loop of the
    regen kernel has neither gathers nor scatters nor float32 widened to double."""
    for fill in (P.fill_words, P.fill_stream):
        if not fill.signatures:  # compiled by the tests above; compile here when run alone
            test_fill_words_equals_reference(5, 9, 1)
            test_fill_stream_equals_reference(5, 9, 1)
        asm = _asm(fill)
        assert "vpmuludq" in asm and ("ymm" in asm or "zmm" in asm), "Philox fill not vectorized"
        assert "vpmullq" not in asm, "a 64-bit multiply: LLVM lost that the factors fit in 32 bits"
    x = np.zeros(2 * cpu.TILE, np.float32)
    for mode in (0, 1, 2):
        # a fresh, uncached compilation: Numba shows no assembly for kernels loaded from its cache
        kernel = numba.njit(nogil=True)(cpu.compiled_kernels("regen", mode, 0)[1].py_func)
        mask_bool = np.zeros(x.size if mode == 1 else 0, np.bool_)
        mask_bits = np.zeros(x.size // 8 if mode == 2 else 0, np.uint8)
        kernel(x, x.copy(), mask_bool, mask_bits, np.uint64(1), np.uint64(2), np.zeros(1, np.uint64), x.size,
               keep_threshold(0.5), np.float32(2), 1, 0, 1)
        asm = kernel.inspect_asm(kernel.signatures[0])
        assert "vpmuludq" in asm
        assert "gather" not in asm and "scatter" not in asm, f"mode {mode}: apply loop gathers/scatters"
        assert "vmulps" in asm and "cvtps2pd" not in asm, f"mode {mode}: float32 widened to double"
