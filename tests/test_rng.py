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
