import numpy as np
import pytest

from trialsim import rng


def test_streams_are_fixed_children():
    g = rng.stream(1, 2, 3, "patients")
    ref = np.random.Generator(np.random.PCG64(np.random.SeedSequence(1, spawn_key=(2, 3, 0))))
    assert g.random() == ref.random()
    assert rng.stream(1, 2, 3, "accrual").random() != rng.stream(1, 2, 3, "patients").random()


def test_unknown_stream_and_bad_seed():
    with pytest.raises(KeyError, match="unknown random stream"):
        rng.stream(1, 0, 0, "nope")
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError):
            rng.check_seed(bad)


def test_stream_is_child_of_trial_seed():
    children = rng.trial_seed(11, 2, 5).spawn(len(rng.STREAMS))
    for name, idx in rng.STREAMS.items():
        ref = np.random.Generator(np.random.PCG64(children[idx]))
        assert rng.stream(11, 2, 5, name).random(3).tolist() == ref.random(3).tolist()


def test_study_stream_key_is_outside_trials():
    ref = np.random.SeedSequence(4, spawn_key=(rng.TRUTH_SCENARIO_KEY, 1, 0))
    assert rng.study_stream(4, 1).random() == np.random.Generator(np.random.PCG64(ref)).random()


def test_stream_uniforms_rows_are_streams():
    trials = np.array([0, 3, 7])
    u = rng.stream_uniforms(5, 1, trials, "patients", 4)
    for row, k in zip(u, trials):
        assert row.tolist() == rng.stream(5, 1, int(k), "patients").random(4).tolist()


def test_check_seed_accepts_numpy_and_large_ints():
    assert rng.check_seed(np.int64(3)) == 3 and type(rng.check_seed(np.uint64(3))) is int
    assert rng.check_seed(2**70) == 2**70
