"""The phase II design contract, checked on every registered ``phase2_design`` from its own
``example``: :meth:`allocate` maps ``n_uniforms`` uniforms per trial to ``n_total`` arms in
range, deterministically and trial by trial (a batch allocates like its parts, so results do
not depend on batching); arms without a ratio get nobody; the long-run shares match the
ratios within Monte Carlo error; and the design survives a round trip through its YAML
configuration.
"""
from __future__ import annotations

import numpy as np
import pytest

from trialsim.config.build import build, to_config
from trialsim.designs.phase2 import Phase2Design
from trialsim.registry import lookup, names

N_DOSES = 4
EXAMPLES = [lookup("phase2_design", n).example(N_DOSES) for n in names("phase2_design")]
IDS = names("phase2_design")


def test_every_registered_type_has_an_example():
    assert len(EXAMPLES) == len(IDS) >= 1
    for d in EXAMPLES:
        assert isinstance(d, Phase2Design)


@pytest.mark.parametrize("design", EXAMPLES, ids=IDS)
def test_allocation_shapes_range_and_purity(design):
    rng = np.random.default_rng(1)
    T = 64
    u = rng.random((T, design.n_uniforms()))
    arms = design.allocate(u)
    assert arms.shape == (T, design.n_total) and arms.dtype == np.int64
    assert arms.min() >= 0 and arms.max() < design.n_arms
    again = design.allocate(u.copy())
    np.testing.assert_array_equal(arms, again)
    parts = np.concatenate([design.allocate(u[i:i + 1]) for i in range(T)])
    np.testing.assert_array_equal(arms, parts)


@pytest.mark.parametrize("design", EXAMPLES, ids=IDS)
def test_long_run_shares_follow_the_ratios(design):
    ratios = np.asarray(getattr(design, "allocation", np.ones(design.n_arms)), float)
    p = ratios / ratios.sum()
    T = 4000
    arms = design.allocate(np.random.default_rng(2).random((T, design.n_uniforms())))
    counts = np.stack([(arms == k).sum(1) for k in range(design.n_arms)], 1)
    share = counts.sum(0) / counts.sum()
    # SE of a share over T trials of n_total patients: at most that of simple randomisation
    se = np.sqrt(p * (1 - p) / (T * design.n_total))
    assert np.all(np.abs(share - p) <= 5 * se + 1e-12), (share, p)


@pytest.mark.parametrize("design", EXAMPLES, ids=IDS)
def test_round_trip(design):
    node = to_config(design)
    again = build("phase2_design", node, ("design",))
    assert again == design


def test_zero_ratio_arm_gets_nobody():
    cls = lookup("phase2_design", "parallel")
    for rand in ("block", "simple"):
        d = cls(allocation=(2, 0, 1, 1), n_total=37, randomisation=rand)
        arms = d.allocate(np.random.default_rng(3).random((50, d.n_uniforms())))
        assert not (arms == 1).any()


def test_blocks_are_balanced_after_every_block():
    d = lookup("phase2_design", "parallel")(allocation=(3, 1, 1, 1), n_total=60, block_size=12)
    arms = d.allocate(np.random.default_rng(4).random((200, d.n_uniforms())))
    for end in range(12, 61, 12):
        counts = np.stack([(arms[:, :end] == k).sum(1) for k in range(4)], 1)
        np.testing.assert_array_equal(counts, np.tile(np.array([3, 1, 1, 1]) * end // 6, (200, 1)))
