"""The random stream itself: known answers first (Random123), then an independent
implementation (randomgen), then the mapping from tensor to stream and the threshold."""

from __future__ import annotations

import numpy as np
import pytest
from numba import cuda  # module level: the simulator swaps this global inside kernels

from kernels import philox_cpu
from reference import stream_words
from reference.stream import keep_threshold, philox4x32_10, scale_for, words_for_positions

# Random123 kat_vectors for philox4x32_10: counter words, key words, output words.
KAT = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def _u64(words):
    return [np.uint64(w) for w in words]


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_known_answers_numpy_scalars(ctr, key, expected):
    assert tuple(int(w) for w in philox4x32_10(*_u64(ctr), *_u64(key))) == expected


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_known_answers_numpy_vectorized(ctr, key, expected):
    arrays = [np.full(3, w, dtype=np.uint64) for w in ctr]
    out = philox4x32_10(*arrays, *_u64(key))
    assert all((o == e).all() for o, e in zip(out, expected))


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_known_answers_numba_cpu(ctr, key, expected):
    from numba import njit

    @njit
    def run(c0, c1, c2, c3, k0, k1):
        return philox_cpu.philox(c0, c1, c2, c3, k0, k1)

    assert tuple(int(w) for w in run(*_u64(ctr), *_u64(key))) == expected


def test_known_answers_cuda_device_function():
    import kernels

    if "cuda" not in kernels.BACKENDS:
        pytest.skip("no GPU and no CUDA simulator")
    from kernels.cuda import philox

    @cuda.jit
    def run(ctrs, keys, out):
        i = cuda.grid(1)
        if i < out.shape[0]:
            r = philox(ctrs[i, 0], ctrs[i, 1], ctrs[i, 2], ctrs[i, 3], keys[i, 0], keys[i, 1])
            for w in range(4):
                out[i, w] = r[w]

    ctrs = np.array([k[0] for k in KAT], dtype=np.uint64)
    keys = np.array([k[1] for k in KAT], dtype=np.uint64)
    out = cuda.device_array((len(KAT), 4), dtype=np.uint64)
    run[1, 32](cuda.to_device(ctrs), cuda.to_device(keys), out)
    assert [tuple(int(w) for w in row) for row in out.copy_to_host()] == [k[2] for k in KAT]


def test_agrees_with_randomgen_on_random_counters_and_keys():
    randomgen = pytest.importorskip("randomgen")
    rng = np.random.default_rng(2024)
    words = rng.integers(0, 2**32, size=(300, 6), dtype=np.uint64)
    words[:20, :4] = 0xFFFFFFFF  # carries through every counter word
    ours = np.stack(philox4x32_10(*[words[:, j] for j in range(6)]), axis=1)
    for row, mine in zip(words, ours):
        c = [int(w) for w in row[:4]]
        ctr = c[0] | c[1] << 32 | c[2] << 64 | c[3] << 96
        gen = randomgen.Philox(key=int(row[4]) | int(row[5]) << 32, counter=(ctr - 1) % 2**128, number=4, width=32)
        assert [int(w) for w in gen.random_raw(4)] == [int(w) for w in mine]


def test_stream_words_follow_the_position_rule():
    """Element i takes word (offset + i) % 4 of block (offset + i) // 4, for any offset."""
    seed = 0xDEADBEEF_01234567
    for offset in (0, 1, 2, 3, 5, 2**40 + 2, 2**64 - 20):
        numel = 17
        g = np.arange(numel, dtype=np.uint64) + np.uint64(offset)
        np.testing.assert_array_equal(stream_words(numel, seed, offset), words_for_positions(g, seed))


def test_stream_words_match_randomgen_stream():
    """Consecutive blocks of the stream are randomgen's Philox output for counters 0, 1, 2..."""
    randomgen = pytest.importorskip("randomgen")
    seed = 0x0123456789ABCDEF
    gen = randomgen.Philox(key=seed, counter=2**128 - 1, number=4, width=32)
    np.testing.assert_array_equal(stream_words(4000, seed), gen.random_raw(4000).astype(np.uint32))


def test_threshold_is_exact():
    assert keep_threshold(0.0) == 2**32
    assert keep_threshold(1.0) == 0
    assert keep_threshold(0.5) == 2**31
    assert keep_threshold(0.75) == 2**30
    rng = np.random.default_rng(3)
    for p in rng.random(1000):
        t = int(keep_threshold(p))
        assert 0 <= t <= 2**32
        assert abs(t / 2**32 - (1 - p)) <= 2**-32


def test_scale_is_rounded_once_to_the_dtype():
    assert scale_for(0.1, np.float32) == np.float32(1 / 0.9)
    assert scale_for(0.1, np.float64) == 1 / 0.9
    assert scale_for(0.1, np.float32).dtype == np.float32
    assert scale_for(1.0, np.float32) == 0
    assert scale_for(0.0, np.float64) == 1
