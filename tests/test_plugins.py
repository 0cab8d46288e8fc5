"""A developer adds a design, a route and a distribution in their own code, or in an installed
plugin package (the ``trialsim.plugins`` entry-point group), and uses them from YAML; the
contract suite applies to their design unchanged."""
import sys
import textwrap

import numpy as np
import pytest

import trialsim as ts
from trialsim import registry
from trialsim.designs.base import NO_DOSE, BatchDecision, BatchState, Design, decide_checked
from trialsim.errors import ConfigError, ConfigErrors
from trialsim.spec import spec
from tests.contract.test_designs import check_decisions, check_round_trip


@ts.register("design", "test_fixed_dose")
@spec
class FixedDose(Design):
    """Treats every cohort at one dose and selects it; stops at max_patients."""

    dose: int
    n_doses: int = 3
    cohort_size: int = 2
    max_patients: int = 6
    start_dose: int = 0

    def decide_batch(self, state):
        T, D = state.n_trials, state.n_doses
        stop = state.total >= self.max_patients
        return BatchDecision(
            next_dose=np.where(stop, NO_DOSE, self.dose), stop=stop,
            recommended=np.full(T, self.dose), admissible=np.ones((T, D), bool),
            reason=np.where(stop, "stop: max_patients reached", "fixed dose"),
            stop_code=np.where(stop, "max_patients", ""))

    @classmethod
    def example(cls, n_doses=3):
        return cls(dose=0, n_doses=n_doses)


def test_own_design_keeps_the_contract():
    check_decisions(FixedDose.example(5))
    check_round_trip(FixedDose.example(5))


def test_registered_design_runs_from_yaml():
    study = ts.from_dict({"doses": [1, 2, 3], "truth": {"tox": [0.1, 0.5, 0.9]},
                          "design": {"type": "test_fixed_dose", "dose": 1}})
    sims = ts.simulate(study, n_trials=500, seed=3)
    t = sims.trials
    assert (t.n_patients == 6).all() and (t.selected == 1).all()
    # DLTs at dose 2 (p = 0.5) over 500 trials x 6 patients: within 4 MC standard errors
    rate = sims.patients.tox.mean()
    assert abs(rate - 0.5) < 4 * np.sqrt(0.25 / 3000)
    assert (sims.patients.dose == 2.0).all()


@pytest.mark.parametrize("dose", [7, 3, -2])
def test_a_dose_outside_the_study_is_an_error_not_a_crash(dose):
    """A design's next dose indexes compiled arrays: 7 of 3 doses overwrote memory (the process
    aborted) and -2 ran as dose 2 with an empty patients table.  Now the study is refused."""
    with pytest.raises((ConfigError, ConfigErrors),
                       match=rf"FixedDose.decide_batch returned next_dose {dose} for a trial with "
                             rf"patients \[0, 0, 0\].*; expected 0..2 where the trial goes on"):
        ts.from_dict({"doses": [1, 2, 3], "truth": {"tox": [0.1, 0.5, 0.9]},
                      "design": {"type": "test_fixed_dose", "dose": dose}})


def test_a_bug_in_a_plugin_is_reported_with_its_type_and_place(tmp_path, monkeypatch, capsys):
    """A KeyError in a plugin's decide_batch was reported as "design: 'oops'"; now with its
    type and the line that raised it, chained to it, and TRIALSIM_DEBUG=1 prints the traceback."""
    from trialsim.cli import main

    @ts.register("design", "test_broken")
    @spec
    class Broken(Design):
        """A plugin design with a bug in decide_batch."""

        n_doses: int = 3
        cohort_size: int = 1
        max_patients: int = 3
        start_dose: int = 0

        def decide_batch(self, state):
            return {}["oops"]

    doc = {"doses": [1, 2, 3], "truth": {"tox": [0.1, 0.5, 0.9]}, "design": {"type": "test_broken"}}
    with pytest.raises(ConfigError, match=r"KeyError: 'oops' \(raised at test_plugins.py:\d+, "
                                          r"in decide_batch") as e:
        ts.from_dict(doc)
    assert isinstance(e.value.__cause__, KeyError)
    cfg = tmp_path / "b.yaml"
    cfg.write_text("doses: [1, 2, 3]\ntruth: {tox: [0.1, 0.5, 0.9]}\ndesign: {type: test_broken}\n")
    monkeypatch.setenv("TRIALSIM_DEBUG", "1")
    assert main(["run", str(cfg), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and 'return {}["oops"]' in err and "KeyError: 'oops'" in err


def test_extension_mistakes_are_named():
    """What a developer gets wrong first: registering a class that is not a @spec class (it
    failed later as "'NoSpec' object is not subscriptable"), a modifier without its parent
    field ("parent: unknown key; expected one of: " with an empty list), no decide_batch (a bare
    NotImplementedError) and no n_doses (an AttributeError)."""
    from trialsim.designs.modifiers import Modifier

    with pytest.raises(TypeError, match="NoSpec is not a @spec class; decorate it with @spec "
                                        "below @register"):
        @ts.register("design", "test_no_spec")
        class NoSpec(Design):
            pass

    with pytest.raises(TypeError, match="NoParent has no field 'parent'"):
        @ts.register("modifier", "test_no_parent")
        @spec
        class NoParent(Modifier):
            def adjust(self, state, d):
                return d

    @ts.register("design", "test_no_decide")
    @spec
    class NoDecide(Design):
        n_doses: int = 3
        cohort_size: int = 1
        max_patients: int = 3
        start_dose: int = 0

    @ts.register("design", "test_no_n_doses")
    @spec
    class NoNDoses(Design):
        cohort_size: int = 1
        max_patients: int = 3
        start_dose: int = 0

        def decide_batch(self, state):
            raise AssertionError("not reached")

    doc = {"doses": [1, 2, 3], "truth": {"tox": [0.1, 0.2, 0.3]}}
    with pytest.raises(ConfigError, match="NoDecide does not define decide_batch"):
        ts.from_dict({**doc, "design": {"type": "test_no_decide"}})
    with pytest.raises(ConfigError, match="NoNDoses gives no n_doses"):
        ts.from_dict({**doc, "design": {"type": "test_no_n_doses"}})


class _Says(Design):
    """Answers every state with one decision (not a @spec design: for the check only)."""

    n_doses = 3

    def __init__(self, **fields):
        self.fields = fields

    def decide_batch(self, state):
        T = state.n_trials
        base = dict(next_dose=np.zeros(T, np.int64), stop=np.zeros(T, bool),
                    recommended=np.zeros(T, np.int64), admissible=np.ones((T, 3), bool),
                    reason=np.full(T, "r"), stop_code=np.full(T, ""))
        return BatchDecision(**{**base, **self.fields})


@pytest.mark.parametrize("fields, what", [
    ({"next_dose": np.zeros((2, 1), np.int64)}, r"next_dose of shape \(2, 1\); expected \(2,\)"),
    ({"stop": np.zeros(2, int)}, "stop of dtype int64; expected bool"),
    ({"recommended": np.full(2, 9)}, r"recommended 9 for a trial .*; expected 0..2 or NO_DOSE"),
    ({"recommended": np.zeros(2)}, "recommended of dtype float64; expected integers"),
    ({"admissible": np.ones((2, 4), bool)}, r"admissible of shape \(2, 4\); expected \(2, 3\)"),
    ({"cohort_size": np.zeros(2, np.int64)}, "cohort_size 0.*at least 1"),
    ({"next_dose": np.full(2, 5), "stop": np.ones(2, bool)}, None),   # stopping: not read
])
def test_decisions_are_checked_before_they_are_used(fields, what):
    state = BatchState.empty(2, 3)
    if what is None:
        assert decide_checked(_Says(**fields), state).stop.all()
        return
    with pytest.raises(ValueError, match="_Says.decide_batch returned " + what):
        decide_checked(_Says(**fields), state)


PLUGIN = """
import numpy as np
from trialsim import register
from trialsim.designs import NO_DOSE, BatchDecision, Design
from trialsim.pk.regimen import DoseEvent, Route
from trialsim.population.distributions import Distribution
from trialsim.spec import spec


@register("distribution", "constant_test")
@spec
class Constant(Distribution):
    value: float

    def quantile(self, u):
        return 0 * u + self.value


@register("route", "split_infusion_test")
@spec
class SplitInfusion(Route):
    \"\"\"Half the dose by infusion over duration_h, the other half gap_h hours later.\"\"\"
    duration_h: float
    gap_h: float = 2.0
    ii_h: float | None = None
    addl: int = 0

    def regimen(self, amount_mg):
        return self._repeat((DoseEvent(0.0, amount_mg / 2, self.duration_h),
                             DoseEvent(self.gap_h, amount_mg / 2, self.duration_h)))


@register("design", "top_dose_test")
@spec
class TopDose(Design):
    \"\"\"Every cohort at the top dose, selected at the end.\"\"\"
    n_doses: int
    cohort_size: int = 2
    max_patients: int = 4
    start_dose: int = 0

    def decide_batch(self, state):
        T, D = state.n_trials, state.n_doses
        stop = state.total >= self.max_patients
        return BatchDecision(
            next_dose=np.where(stop, NO_DOSE, D - 1), stop=stop,
            recommended=np.full(T, D - 1), admissible=np.ones((T, D), bool),
            reason=np.where(stop, "stop: full", "top dose"),
            stop_code=np.where(stop, "max_patients", ""))

    @classmethod
    def example(cls, n_doses=5):
        return cls(n_doses=n_doses)
"""


def test_entry_point_plugin_is_discovered(tmp_path, monkeypatch):
    """A plugin package adds a route, a design and a distribution, found through the entry-point
    group and used from YAML like the built-ins."""
    (tmp_path / "my_trialsim_plugin.py").write_text(PLUGIN)
    info = tmp_path / "my_trialsim_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-trialsim-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[trialsim.plugins]\nmine = my_trialsim_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_PLUGINS_LOADED", False)
    assert "constant_test" in registry.names("distribution")
    assert "split_infusion_test" in registry.names("route")
    assert "top_dose_test" in registry.names("design")
    study = ts.from_dict({
        "doses": [1, 2], "dose_unit": "mg",
        "population": {"weight_kg": {"dist": "constant_test", "value": 70}},
        "pk": {"CL": 10, "V1": 50, "route": {"type": "split_infusion_test", "duration_h": 0.5}},
        "response": {"toxicity": {"type": "logistic", "exposure": "cmax", "x50": 30, "slope": 3}},
        "design": {"type": "top_dose_test"}})
    pts = study.scenario.population.draw(1, 0, np.arange(3), 4)
    assert (pts.covariates["weight_kg"] == 70).all()
    # the plugin route really drives the PK: two half doses give the two-peak profile's Cmax
    from trialsim.pk import Mammillary, Clearances, exposure_metrics

    route = study.scenario.pk.route
    expect = exposure_metrics(Mammillary(disposition=Clearances(CL=10, V1=50)),
                              route.regimen(2.0), metrics=("cmax",))["cmax"][0]
    ex = study.scenario.exposures(pts, np.array([1.0, 2.0]), "mg")
    np.testing.assert_allclose(ex["cmax"][..., 1], expect, rtol=1e-12)
    sims = ts.simulate(study, n_trials=20, seed=4)
    assert (sims.trials.selected == 1).all() and (sims.patients.dose == 2.0).all()
    check_decisions(registry.lookup("design", "top_dose_test").example())
    sys.modules.pop("my_trialsim_plugin", None)
