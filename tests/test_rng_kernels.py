"""The numba reimplementation of SeedSequence -> PCG64 -> Generator.random() is bitwise exact."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from trialsim import rng
from trialsim.rng import _kernels

SEEDS = [0, 1, 12345, 2**32 - 1, 2**32 + 5, 2**63 + 7, 2**64 - 1, 2**64 + 3, 2**130 + 9]
SCENARIOS = [0, 3, rng.TRUTH_SCENARIO_KEY, 2**32 + 1]
TRIALS = np.array([0, 1, 1000, 2**31 - 1], dtype=np.int64)


def reference(seed, scenario, trials, name, n):
    return np.array([rng.stream(seed, scenario, int(k), name).random(n) for k in trials]
                    ).reshape(len(trials), n)


@pytest.mark.parametrize("name", sorted(rng.STREAMS))
@pytest.mark.parametrize("seed", SEEDS)
def test_bitwise_equal_to_numpy(seed, name):
    for scenario in SCENARIOS:
        for n in (1, 7, 60):
            got = rng.stream_uniforms(seed, scenario, TRIALS, name, n)
            assert got.shape == (len(TRIALS), n) and got.dtype == np.float64
            np.testing.assert_array_equal(got, reference(seed, scenario, TRIALS, name, n))


def test_large_trial_indices_and_dtypes():
    big = np.array([2**32 - 1, 2**32, 2**32 + 7, 2**63 + 1, 2**64 - 1], dtype=np.uint64)
    np.testing.assert_array_equal(rng.stream_uniforms(9, 1, big, "model", 5),
                                  reference(9, 1, big, "model", 5))
    for trials in ([5, 0, 5], np.array([5, 0, 5], np.int32), np.array([5, 0, 5], np.uint16)):
        np.testing.assert_array_equal(rng.stream_uniforms(7, 2, trials, "accrual", 3),
                                      reference(7, 2, [5, 0, 5], "accrual", 3))


def test_numpy_integer_arguments():
    got = rng.stream_uniforms(np.uint64(2**63 + 7), np.int32(4), TRIALS, "conduct", np.int64(4))
    np.testing.assert_array_equal(got, reference(2**63 + 7, 4, TRIALS, "conduct", 4))


@pytest.mark.parametrize("length", range(0, 10))
def test_seed_sequence_state(length):
    words = np.random.default_rng(length).integers(0, 2**32, length, dtype=np.uint64)
    words = words.astype(np.uint32)
    expected = np.random.SeedSequence(words).generate_state(4, np.uint64)
    np.testing.assert_array_equal(_kernels.entropy_seed_state(words), expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_pcg64_seeding(seed):
    ss = np.random.SeedSequence(seed, spawn_key=(1, 2, 3))
    s_hi, s_lo, i_hi, i_lo = _kernels.pcg64_seed(ss.generate_state(4, np.uint64))
    st_ = np.random.PCG64(ss).state["state"]
    assert (int(s_hi) << 64 | int(s_lo)) == st_["state"]
    assert (int(i_hi) << 64 | int(i_lo)) == st_["inc"]


@pytest.mark.parametrize("x", [0, 1, 2**32 - 1, 2**32, 2**64 + 3, 2**130 + 9])
def test_uint32_words_match_numpy(x):
    from numpy.random.bit_generator import _coerce_to_uint32_array
    assert rng._uint32_words(x) == _coerce_to_uint32_array(x).tolist()


def test_edge_shapes():
    assert rng.stream_uniforms(1, 0, np.array([], np.int64), "patients", 4).shape == (0, 4)
    assert rng.stream_uniforms(1, 0, TRIALS, "patients", 0).shape == (len(TRIALS), 0)


def test_invalid_arguments():
    with pytest.raises(KeyError, match="unknown random stream"):
        rng.stream_uniforms(1, 0, TRIALS, "nope", 3)
    with pytest.raises(ValueError):
        rng.stream_uniforms(-1, 0, TRIALS, "patients", 3)
    with pytest.raises(ValueError):
        rng.stream_uniforms(1, -1, TRIALS, "patients", 3)
    with pytest.raises(ValueError):
        rng.stream_uniforms(1, 0, np.array([1, -2]), "patients", 3)
    with pytest.raises(ValueError):
        rng.stream_uniforms(1, 0, TRIALS.reshape(2, 2), "patients", 3)
    with pytest.raises(ValueError):
        rng.stream_uniforms(1, 0, TRIALS, "patients", -1)
    with pytest.raises(TypeError):
        rng.stream_uniforms(1, 0, np.array([1.0, 2.0]), "patients", 3)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**64 - 1) | st.integers(0, 2**160),
       scenario=st.integers(0, 2**33),
       trials=st.lists(st.integers(0, 2**64 - 1) | st.integers(0, 10**4), min_size=1, max_size=4),
       name=st.sampled_from(sorted(rng.STREAMS)),
       n=st.integers(0, 70))
def test_property_bitwise_equal(seed, scenario, trials, name, n):
    got = rng.stream_uniforms(seed, scenario, np.array(trials, np.uint64), name, n)
    np.testing.assert_array_equal(got, reference(seed, scenario, trials, name, n))
