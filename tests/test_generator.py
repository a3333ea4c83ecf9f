"""kernels/generator.py: fresh, non-overlapping stream ranges; save and restore; sharing."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from bench.training.mlp import DropoutLayer, load_impl
from kernels.generator import LIMIT, StreamGenerator, as_generator, splitmix64


def test_take_hands_out_consecutive_disjoint_ranges():
    g = StreamGenerator(7, offset=10)
    assert g.take(5) == (7, 10)
    assert g.take(0) == (7, 15)
    assert g.take(3) == (7, 15)
    assert g.offset == 18


def test_state_dict_round_trip_reproduces_the_ranges():
    g = StreamGenerator(123)
    g.take(100)
    state = g.state_dict()
    a = [g.take(n) for n in (7, 9, 11)]
    h = StreamGenerator(0)
    h.load_state_dict(state)
    assert [h.take(n) for n in (7, 9, 11)] == a
    assert pickle.loads(pickle.dumps(g)).state_dict() == g.state_dict()
    assert copy.deepcopy(g).take(1) == g.take(1)  # a copy replays, on purpose


def test_bad_arguments_and_exhaustion():
    with pytest.raises(ValueError):
        StreamGenerator(-1)
    with pytest.raises(ValueError):
        StreamGenerator(LIMIT)
    with pytest.raises(TypeError):
        StreamGenerator(1.5)  # type: ignore[arg-type]
    g = StreamGenerator(1, offset=LIMIT - 4)
    assert g.take(4) == (1, LIMIT - 4)
    with pytest.raises(OverflowError):
        g.take(1)
    with pytest.raises(ValueError):
        g.load_state_dict({"seed": 1, "offset": 0, "version": 99})


def test_split_gives_disjoint_bounded_generators():
    parts = StreamGenerator(5, offset=100, end=400).split(3)
    assert [(p.offset, p.end) for p in parts] == [(100, 200), (200, 300), (300, 400)]
    parts[0].take(100)
    with pytest.raises(OverflowError):
        parts[0].take(1)


def test_take_seed_distinct_per_call_and_fresh_seed():
    g = StreamGenerator(9)
    seeds = {g.take_seed(10) for _ in range(1000)}
    assert len(seeds) == 1000
    assert len({splitmix64(i) for i in range(1000)}) == 1000
    assert StreamGenerator().seed != StreamGenerator().seed  # OS entropy
    shared = StreamGenerator(3)
    assert as_generator(shared) is shared and as_generator(4).seed == 4


def test_two_layers_sharing_a_generator_never_overlap():
    """Two dropout layers on one generator: the ranges their calls drew are disjoint, and the
    masks are the reference's at those ranges."""
    from reference import dropout as ref

    gen = StreamGenerator(2024)
    impl = load_impl("reference")
    a, b = DropoutLayer(0.5, impl, gen), DropoutLayer(0.2, impl, gen)
    drawn = []
    x = np.ones((8, 16), np.float32)
    for _ in range(3):
        for layer in (a, b):
            start = gen.offset
            y = layer.forward(x)
            drawn.append((start, start + x.size))
            expect, _ = ref.dropout_forward(x, layer.p, seed=2024, offset=start)
            assert np.array_equal(y, expect)
    drawn.sort()
    assert all(e <= s for (_, e), (s, _) in zip(drawn, drawn[1:]))
