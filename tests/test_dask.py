"""The "dask" backend (kernels/dask.py): bit for bit the reference on the whole array, whatever
the chunking (regular, irregular, splitting any axis, the last included), with the synchronous
scheduler and with a distributed LocalCluster of worker processes. Also the runs entry
(kernels.cpu.dropout_runs) on its own. Skipped without the [dask] extra."""

from __future__ import annotations

import os

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import kernels  # noqa: E402
from kernels import dask as kd  # noqa: E402
from reference import dropout as ref  # noqa: E402
from reference import validate as v  # noqa: E402
from reference import vocab  # noqa: E402
from reference.stream import keep_threshold, scale_for  # noqa: E402

SIMULATED = vocab.cuda_simulated()
SEED = 2**40 + 12345  # > 2**32: both key words matter
OFFSETS = (0, 6, 2**61 + 3)  # 6 and 2**61 + 3 are not multiples of 4 (nor of 8)
CHUNK_BACKENDS = ["cpu", "reference"] + (["cuda"] if not SIMULATED and "cuda" in kernels.BACKENDS else [])

# (id, shape, chunks): regular and irregular chunks along every axis, the last axis split too
CASES = [
    ("0d", (), ()),
    ("1d-regular", (37,), (10,)),
    ("1d-irregular", (37,), ((5, 13, 19),)),
    ("1d-empty", (0,), ((0,),)),
    ("2d-rows", (9, 11), ((2, 3, 4), (11,))),
    ("2d-split-last", (9, 11), ((4, 5), (3, 8))),
    ("2d-columns", (9, 11), ((9,), (1, 4, 6))),
    ("2d-empty-axis", (4, 0), ((1, 3), (0,))),
    ("3d-irregular", (5, 6, 7), ((2, 3), (1, 5), (7,))),
    ("3d-split-last", (5, 6, 7), ((5,), (6,), (2, 2, 3))),
    ("3d-all", (5, 6, 7), ((1, 4), (4, 2), (3, 4))),
    ("4d-lead", (3, 4, 5, 6), ((1, 2), (2, 2), (5,), (6,))),
    ("4d-all", (3, 4, 5, 6), ((3,), (1, 3), (2, 3), (4, 2))),
]
CASE_IDS = [c[0] for c in CASES]
HALF = [vocab.np_dtype(d) for d in vocab.HALF_DTYPES]  # float16, bfloat16


def _values(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape).astype(dtype)
    flat = a.reshape(-1)
    flat[::11] = np.nan  # a dropped NaN or infinity must come out NaN, a dropped -0.0 stays -0.0
    flat[1::11] = np.inf
    flat[2::11] = -0.0
    return a


def _bits(a):
    """The bytes of an array: NaN payloads and signed zeros compared too."""
    a = np.ascontiguousarray(a)  # at least 1-D
    return a if a.dtype == np.bool_ else a.view(np.uint8)


def _same(got, want):
    assert isinstance(got, np.ndarray), type(got)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    assert np.array_equal(_bits(got), _bits(want))


def _darray(a, chunks):
    return da.from_array(a, chunks=chunks if chunks else ())


def _bits_allowed(shape, chunks):
    return not isinstance(kd.bits_chunks(da.from_array(np.empty(shape), chunks=chunks or ()).chunks, shape), str)


# --- the runs entry on its own --------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_runs,run_len", [(1, 1), (3, 5), (4, 2049), (300, 3), (2, 9000)])
def test_runs_entry_matches_the_reference_at_any_start(n_runs, run_len, dtype):
    from kernels import cpu

    rng = np.random.default_rng(n_runs * run_len)
    starts = rng.integers(0, 2**62, n_runs, dtype=np.uint64) * np.uint64(3) + np.uint64(1)  # any residue mod 4
    x = _values((n_runs, run_len), dtype)
    want_keep = np.stack([ref.stream_words(run_len, SEED, int(s)) < keep_threshold(0.3) for s in starts])
    with np.errstate(invalid="ignore"):
        want_y = (x * want_keep.astype(dtype)) * scale_for(0.3, dtype)
    y, mask = cpu.dropout_runs(x, starts, 0.3, SEED)
    _same(y, want_y)
    _same(mask, want_keep)
    y2, none = cpu.dropout_runs(np.asfortranarray(x), starts, 0.3, SEED, store_mask=False)
    assert none is None
    _same(y2, want_y)
    _same(cpu.keep_runs(starts, run_len, 0.3, SEED), want_keep)


def test_run_layout_of_a_block():
    shape = (3, 4, 5)
    whole = np.arange(60).reshape(shape)
    for loc in ([(1, 3), (1, 3), (2, 4)], [(1, 3), (0, 4), (0, 5)], [(1, 3), (1, 2), (0, 5)], [(0, 3), (0, 4), (0, 5)]):
        n_runs, run_len, _ = kd.run_shape(loc, shape)
        starts = kd.run_starts(loc, shape)
        block = whole[tuple(slice(a, b) for a, b in loc)].reshape(n_runs, run_len)
        assert np.array_equal(block, starts[:, None] + np.arange(run_len))
    assert kd.run_shape([(1, 3), (0, 4), (0, 5)], shape)[:2] == (1, 40)  # whole trailing axes: ONE run


# --- invariance: synchronous scheduler ------------------------------------------------


@pytest.mark.parametrize("chunk_backend", CHUNK_BACKENDS)
@pytest.mark.parametrize("cid,shape,chunks", CASES, ids=CASE_IDS)
def test_forward_and_backward_equal_the_reference_on_the_whole_array(cid, shape, chunks, chunk_backend):
    for k, (dtype, p, offset) in enumerate([(np.float32, 0.3, OFFSETS[1]), (np.float64, 0.3, OFFSETS[2]),
                                           (np.float32, 0.0, OFFSETS[2]), (np.float64, 1.0, OFFSETS[1]),
                                           (np.float32, 0.3, OFFSETS[0])]
                                          + [(h, 0.3, OFFSETS[1]) for h in HALF]):
        x = _values(shape, dtype, seed=k)
        gy = _values(shape, dtype, seed=k + 100)
        dx = _darray(x, chunks)
        dg = _darray(gy, chunks)
        formats = ["bool", None] + (["bits"] if _bits_allowed(shape, chunks) else [])
        for fmt in formats:
            y, mask = kd.dropout_forward(dx, p, seed=SEED, offset=offset, mask_format=fmt, chunk_backend=chunk_backend)
            assert isinstance(y, da.Array) and y.chunks == dx.chunks
            y, mask = dask.compute(y, mask, scheduler="sync")
            want_y, want_mask = ref.dropout_forward(x, p, seed=SEED, offset=offset, mask_format=fmt)
            _same(y, want_y)
            if fmt is None:
                assert mask is None
            else:
                _same(mask, want_mask)
        want_dx = ref.dropout_backward(gy, p, seed=SEED, offset=offset)
        got = kd.dropout_backward(dg, p, seed=SEED, offset=offset, chunk_backend=chunk_backend)
        assert got.chunks == dg.chunks
        _same(got.compute(scheduler="sync"), want_dx)
        # stored masks, made by the reference on the whole array, in chunks of their own
        for fmt in ("bool", "bits"):
            _, m = ref.dropout_forward(x, p, seed=SEED, offset=offset, mask_format=fmt)
            for m_in in (m, da.from_array(m, chunks=3 if m.ndim else ())):
                got = kd.dropout_backward(dg, p, mask=m_in, chunk_backend=chunk_backend)
                assert got.chunks == dg.chunks
                _same(got.compute(scheduler="sync"), want_dx)


# (shape, chunks, noise_shape): shared axes first, last, inner, several; chunks split every axis
NOISE_CASES = [
    ((6, 8, 5), ((2, 4), (3, 5), (2, 3)), (6, 1, 5)),
    ((6, 8, 5), ((2, 4), (3, 5), (2, 3)), (1, 8, 1)),
    ((6, 8, 5), ((6,), (8,), (2, 3)), (1, 1, 5)),
    ((6, 8, 5), ((1, 5), (8,), (5,)), (6, 8, 1)),
    ((16, 8), ((8, 8), (3, 5)), (16, 1)),  # the mask blocks are whole bytes: "bits" allowed
    ((4, 3, 2, 5), ((1, 3), (3,), (1, 1), (2, 3)), (4, None, 1, 5)),
]


@pytest.mark.parametrize("chunk_backend", ["cpu", "reference"])
@pytest.mark.parametrize("shape,chunks,noise_shape", NOISE_CASES, ids=[str(c[2]) for c in NOISE_CASES])
def test_noise_shape_equals_the_reference_on_the_whole_array(shape, chunks, noise_shape, chunk_backend):
    full_ns = v.check_noise_shape(noise_shape, shape)
    for k, (dtype, p, offset) in enumerate([(np.float32, 0.3, OFFSETS[1]), (np.float64, 0.6, OFFSETS[2])]
                                          + [(h, 0.3, OFFSETS[0]) for h in HALF[:1]]):
        x = _values(shape, dtype, seed=k)
        dx = _darray(x, chunks)
        kw = dict(seed=SEED, offset=offset, noise_shape=noise_shape, chunk_backend=chunk_backend)
        for fmt in ("bool", None, "bits"):
            want_y, want_m = ref.dropout_forward(x, p, seed=SEED, offset=offset, mask_format=fmt,
                                                 noise_shape=noise_shape)
            try:
                y, m = kd.dropout_forward(dx, p, mask_format=fmt, **kw)
            except ValueError as e:
                assert fmt == "bits" and "mask_format='bits'" in str(e)
                continue
            if fmt == "bool":
                assert m.shape == full_ns
            y, m = dask.compute(y, m, scheduler="sync")
            _same(y, want_y)
            if fmt is not None:
                _same(m, want_m)
                back = kd.dropout_backward(dx, p, mask=m, noise_shape=noise_shape, chunk_backend=chunk_backend)
                _same(back.compute(scheduler="sync"), ref.dropout_backward(x, p, mask=want_m, noise_shape=noise_shape))
        want_dx = ref.dropout_backward(x, p, seed=SEED, offset=offset, noise_shape=noise_shape)
        _same(kd.dropout_backward(dx, p, **kw).compute(scheduler="sync"), want_dx)
        for fmt in ("bool", "bits"):  # stored masks in chunks of their own
            _, m = ref.dropout_forward(x, p, seed=SEED, offset=offset, mask_format=fmt, noise_shape=noise_shape)
            got = kd.dropout_backward(dx, p, mask=da.from_array(m, chunks=3), noise_shape=noise_shape,
                                      chunk_backend=chunk_backend)
            _same(got.compute(scheduler="sync"), want_dx)


def test_noise_shape_bad_values():
    x = da.from_array(np.ones((4, 4), np.float32), chunks=2)
    with pytest.raises(ValueError, match="noise_shape"):
        kd.dropout_forward(x, 0.3, seed=1, noise_shape=(2, 4))
    with pytest.raises(ValueError, match="noise_shape"):
        kd.dropout_forward(x, 0.3, seed=1, noise_shape=(4,))
    with pytest.raises(ValueError, match="noise_shape"):
        kd.dropout_backward(x, 0.3, mask=da.ones((4, 4), dtype=bool), noise_shape=(4, 1))
    # the call consumes prod(noise_shape) positions, not x.size
    kd.dropout_forward(x, 0.3, seed=1, offset=2**64 - 4, noise_shape=(1, 4))
    with pytest.raises(ValueError, match="offset"):
        kd.dropout_forward(x, 0.3, seed=1, offset=2**64 - 4)
    with pytest.raises(ValueError, match="offset"):
        kd.dropout_forward(x, 0.3, seed=1, offset=2**64 - 3, noise_shape=(4, 1))


@pytest.mark.parametrize("cid,shape,chunks", [c for c in CASES if c[1] and 0 not in c[1]],
                         ids=[c[0] for c in CASES if c[1] and 0 not in c[1]])
def test_rechunked_input_gives_the_same_bits(cid, shape, chunks):
    x = _values(shape, np.float32)
    a = _darray(x, chunks)
    y1, m1 = kd.dropout_forward(a, 0.5, seed=SEED, offset=7)
    other = tuple(max(1, s // 2) for s in shape)  # a different, regular chunking
    y2, m2 = kd.dropout_forward(a.rechunk(other), 0.5, seed=SEED, offset=7)
    assert y2.chunks != y1.chunks or len(y1.chunks[0]) == 1
    r1 = dask.compute(y1, m1, scheduler="sync")
    r2 = dask.compute(y2, m2, scheduler="sync")
    _same(r1[0], r2[0])
    _same(r1[1], r2[1])


def test_threaded_scheduler_gives_the_same_bits():
    x = _values((64, 1000), np.float32)  # blocks of 2^13+ elements may take the thread pool
    want_y, want_m = ref.dropout_forward(x, 0.3, seed=SEED, offset=5)
    y, m = kd.dropout_forward(da.from_array(x, chunks=(16, 300)), 0.3, seed=SEED, offset=5)
    y, m = dask.compute(y, m, scheduler="threads", num_workers=4)
    _same(y, want_y)
    _same(m, want_m)


def test_split_along_the_leading_axis_equals_offsets():
    """The Dask result of a block is the CPU kernel's at offset = the block's first position."""
    x = _values((6, 10), np.float64)
    y, _ = kd.dropout_forward(da.from_array(x, chunks=(2, 10)), 0.3, seed=SEED, offset=3, mask_format=None)
    y = y.compute(scheduler="sync")
    for r in range(0, 6, 2):
        part, _ = kernels.BACKENDS["cpu"].dropout_forward(x[r:r + 2], 0.3, seed=SEED, offset=3 + 10 * r,
                                                          mask_format=None)
        _same(y[r:r + 2], part)


def test_bits_layout_and_refusals():
    x = _values((10, 16), np.float32)
    want_y, want_bits = ref.dropout_forward(x, 0.3, seed=SEED, offset=1, mask_format="bits")
    y, bits = kd.dropout_forward(da.from_array(x, chunks=(3, 16)), 0.3, seed=SEED, offset=1, mask_format="bits")
    assert bits.ndim == 1 and bits.dtype == np.uint8 and bits.chunks == ((6, 6, 6, 2),)
    _same(bits.compute(scheduler="sync"), want_bits)
    x1 = _values((45,), np.float32)  # last block of 5: its byte has 3 unused zero bits
    _, b1 = kd.dropout_forward(da.from_array(x1, chunks=8), 0.3, seed=SEED, offset=9, mask_format="bits")
    _same(b1.compute(scheduler="sync"), ref.dropout_forward(x1, 0.3, seed=SEED, offset=9, mask_format="bits")[1])
    with pytest.raises(ValueError, match="mask_format='bits'.*separate runs"):
        kd.dropout_forward(da.from_array(x, chunks=(5, 8)), 0.3, seed=SEED, mask_format="bits")
    with pytest.raises(ValueError, match="mask_format='bits'.*multiple of 8"):
        kd.dropout_forward(da.from_array(x1, chunks=10), 0.3, seed=SEED, mask_format="bits")


def test_mask_and_output_computed_once():
    calls = []

    def source(block):
        if block.size:  # dask calls it once on an empty meta array
            calls.append(1)
        return block

    x = da.from_array(_values((8, 8), np.float32), chunks=4).map_blocks(source, dtype=np.float32)
    y, m = kd.dropout_forward(x, 0.3, seed=SEED)
    assert calls == []  # lazy: nothing ran
    dask.compute(y, m, scheduler="sync")
    assert len(calls) == 4  # one pass over each block gives both outputs


def test_evaluation_mode_returns_a_copy_and_no_mask():
    x = _values((5, 4), np.float32)
    y, m = kd.dropout_forward(da.from_array(x, chunks=2), 0.3, seed=SEED, training=False)
    assert m is None
    _same(y.compute(scheduler="sync"), x)


def test_bad_arguments():
    x = da.from_array(np.ones((4, 4), np.float32), chunks=2)
    with pytest.raises(TypeError, match="x must be a dask array"):
        kd.dropout_forward(np.ones(4, np.float32), 0.3, seed=1)
    with pytest.raises(TypeError, match="grad_y must be a dask array"):
        kd.dropout_backward(np.ones(4, np.float32), 0.3, seed=1)
    with pytest.raises(TypeError, match="mask must be"):
        kd.dropout_backward(x, 0.3, mask=[1, 0])
    with pytest.raises(TypeError, match="x must have dtype"):
        kd.dropout_forward(x.astype(np.int32), 0.3, seed=1)
    with pytest.raises(ValueError, match="p must be in"):
        kd.dropout_forward(x, 1.5, seed=1)
    with pytest.raises(ValueError, match="seed must be in"):
        kd.dropout_forward(x, 0.3, seed=2**64)
    with pytest.raises(ValueError, match="offset"):
        kd.dropout_forward(x, 0.3, seed=1, offset=2**64 - 3)
    with pytest.raises(ValueError, match="mask_format"):
        kd.dropout_forward(x, 0.3, seed=1, mask_format="bytes")
    with pytest.raises(ValueError, match="chunk_backend must be one of"):
        kd.dropout_forward(x, 0.3, seed=1, chunk_backend="tpu")
    with pytest.raises(TypeError, match="out must be None"):
        kd.dropout_forward(x, 0.3, seed=1, out=x)
    with pytest.raises(ValueError, match="needs the forward mask"):
        kd.dropout_backward(x, 0.3)
    with pytest.raises(ValueError, match="gradient's shape"):
        kd.dropout_backward(x, 0.3, mask=da.ones((4, 3), dtype=bool))
    with pytest.raises(ValueError, match="ceil"):
        kd.dropout_backward(x, 0.3, mask=da.ones(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        kd.dropout_forward(x[x > 0], 0.3, seed=1)


def test_kernel_is_a_deprecated_alias_of_chunk_backend():
    x = _values((3, 5), np.float32)
    dx = da.from_array(x, chunks=((2, 1), (5,)))
    with pytest.warns(DeprecationWarning, match="kernel= is deprecated.*chunk_backend="):
        y, m = kd.dropout_forward(dx, 0.3, seed=SEED, offset=6, kernel="reference")
    with pytest.warns(DeprecationWarning, match="kernel= is deprecated"):
        g = kd.dropout_backward(dx, 0.3, seed=SEED, offset=6, kernel="reference")
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="chunk_backend must be one of"):
        kd.dropout_forward(dx, 0.3, seed=1, kernel="tpu")
    want_y, want_m = ref.dropout_forward(x, 0.3, seed=SEED, offset=6)
    y, m, g = dask.compute(y, m, g, scheduler="sync")
    _same(np.asarray(y), want_y)
    _same(np.asarray(m), want_m)
    _same(np.asarray(g), ref.dropout_backward(x, 0.3, seed=SEED, offset=6))


@pytest.mark.skipif("cuda" in kernels.BACKENDS and not SIMULATED, reason="a GPU is present")
def test_cuda_kernel_refused_clearly_without_a_gpu():
    if "cuda" in kernels.BACKENDS:
        pytest.skip("the CUDA simulator is on")
    with pytest.raises(ValueError, match="chunk_backend='cuda' is not available"):
        kd.dropout_forward(da.ones(4, dtype=np.float32), 0.3, seed=1, chunk_backend="cuda")


@pytest.mark.skipif("cuda" not in kernels.BACKENDS, reason="no GPU and no CUDA simulator")
@pytest.mark.parametrize("chunks", [((2, 1), (5,)), ((3,), (2, 3))], ids=["one-run", "runs"])
def test_cuda_kernel_tiny(chunks):
    x = _values((3, 5), np.float32)
    y, m = kd.dropout_forward(da.from_array(x, chunks=chunks), 0.3, seed=SEED, offset=6, chunk_backend="cuda")
    y, m = dask.compute(y, m, scheduler="sync")
    want_y, want_m = ref.dropout_forward(x, 0.3, seed=SEED, offset=6)
    _same(np.asarray(y), want_y)
    _same(np.asarray(m), want_m)
    g = kd.dropout_backward(da.from_array(x, chunks=chunks), 0.3, seed=SEED, offset=6, chunk_backend="cuda")
    _same(np.asarray(g.compute(scheduler="sync")), ref.dropout_backward(x, 0.3, seed=SEED, offset=6))


# --- invariance: dask.distributed, worker processes -----------------------------------


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    if SIMULATED:
        pytest.skip("the core lane runs the distributed tests")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [root, saved]))  # the workers import kernels
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                      worker_dashboard_address=None) as cluster, distributed.Client(cluster) as c:
            yield c
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


@pytest.mark.parametrize("cid,shape,chunks", [c for c in CASES if c[0] in ("1d-irregular", "2d-split-last",
                                                                               "3d-all", "4d-all")],
                         ids=["1d-irregular", "2d-split-last", "3d-all", "4d-all"])
def test_distributed_local_cluster_gives_the_reference_bits(client, cid, shape, chunks):
    for dtype, p, offset in [(np.float32, 0.3, OFFSETS[1]), (np.float64, 0.7, OFFSETS[2])]:
        x = _values(shape, dtype)
        dx = _darray(x, chunks)
        formats = ["bool", None] + (["bits"] if _bits_allowed(shape, chunks) else [])
        want_dx = ref.dropout_backward(x, p, seed=SEED, offset=offset)
        for fmt in formats:
            y, m = kd.dropout_forward(dx, p, seed=SEED, offset=offset, mask_format=fmt)
            back = kd.dropout_backward(dx, p, seed=SEED, offset=offset)
            if fmt is None:
                y, back = client.compute([y, back], sync=True)
            else:
                back_m = kd.dropout_backward(dx, p, mask=m)
                y, m, back, back_m = client.compute([y, m, back, back_m], sync=True)
                _same(m, ref.dropout_forward(x, p, seed=SEED, offset=offset, mask_format=fmt)[1])
                _same(back_m, want_dx)
            _same(y, ref.dropout_forward(x, p, seed=SEED, offset=offset, mask_format=None)[0])
            _same(back, want_dx)


def test_distributed_blocks_run_on_both_workers(client):
    """Blocks land on different worker processes and still give the whole array's bits."""
    import distributed

    x = _values((64, 2000), np.float32)
    source = da.from_array(x, chunks=(8, 700), inline_array=True)  # no one task holds all of x
    y, m = kd.dropout_forward(source, 0.4, seed=SEED, offset=11)
    y, m = client.persist([y, m])
    distributed.wait([y, m])
    where = client.who_has(y)
    workers = {w for ws in where.values() for w in ws}
    y, m = client.compute([y, m], sync=True)
    want_y, want_m = ref.dropout_forward(x, 0.4, seed=SEED, offset=11)
    _same(y, want_y)
    _same(m, want_m)
    assert len(workers) == 2, where


@pytest.mark.slow
def test_distributed_larger_array(client):
    n = 1 << 24
    x = da.arange(n, chunks=(1 << 21) + 5, dtype=np.float32).reshape(1 << 12, 1 << 12).rechunk((1000, 1500))
    y, m = kd.dropout_forward(x, 0.5, seed=SEED, offset=3)
    kept, total = client.compute([m.sum(), y.sum(dtype=np.float64)], sync=True)
    xs = np.arange(n, dtype=np.float32).reshape(1 << 12, 1 << 12)
    want_y, want_m = kernels.BACKENDS["cpu"].dropout_forward(xs, 0.5, seed=SEED, offset=3)
    assert kept == want_m.sum()
    assert total == want_y.sum(dtype=np.float64)


def test_registered_in_backends():
    assert kernels.BACKENDS["dask"] is kd
    assert kernels.get_backend("dask").NAME == "dask"


def test_scale_benchmark_pieces_are_exact():
    """bench/studies/dask_scale.py: the lazy source, the fused per-block statistics and the checksum
    agree with NumPy on the whole array (the 2^32 run relies on them)."""
    from bench.studies import dask_scale as ds

    n, chunk = 5000, 1024
    x = ds.lazy_source(n, chunk)
    xs = ds.source_values(0, n)
    assert np.all(xs != 0)
    _same(x.compute(scheduler="sync"), xs)
    y, m = kd.dropout_forward(x, 0.5, seed=SEED, offset=3)
    want_y, want_m = kernels.BACKENDS["cpu"].dropout_forward(xs, 0.5, seed=SEED, offset=3)
    got = ds.stats_dask(x, y, m).compute(scheduler="sync")
    assert got[0] == want_m.sum()
    np.testing.assert_allclose(got[1:], [want_y.sum(dtype=np.float64), xs.sum(dtype=np.float64),
                                         np.dot(xs.astype(np.float64), xs.astype(np.float64)),
                                         (want_y.astype(np.float64) / xs).sum()], rtol=1e-12)
    assert int(ds.bits_checksum_dask(y).compute(scheduler="sync")) == ds.bits_checksum_numpy(want_y)
