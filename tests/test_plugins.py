"""A developer adds a design and a distribution in their own code and uses them from YAML."""
import sys
import textwrap

import numpy as np

import trialsim as ts
from trialsim import registry
from trialsim.designs.base import NO_DOSE, BatchDecision, Design
from trialsim.spec import spec


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


def test_entry_point_plugin_is_discovered(tmp_path, monkeypatch):
    (tmp_path / "my_trialsim_plugin.py").write_text(textwrap.dedent("""
        from trialsim import register
        from trialsim.population.distributions import Distribution
        from trialsim.spec import spec

        @register("distribution", "constant_test")
        @spec
        class Constant(Distribution):
            value: float
            def quantile(self, u):
                return 0 * u + self.value
    """))
    info = tmp_path / "my_trialsim_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-trialsim-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[trialsim.plugins]\nmine = my_trialsim_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_PLUGINS_LOADED", False)
    assert "constant_test" in registry.names("distribution")
    study = ts.from_dict({
        "doses": [1, 2], "population": {"weight_kg": {"dist": "constant_test", "value": 70}},
        "response": {"toxicity": {"type": "logistic", "exposure": "dose", "x50": 2, "slope": 3}},
        "design": {"type": "test_fixed_dose", "dose": 0}})
    pts = study.scenario.population.draw(1, 0, np.arange(3), 4)
    assert (pts.covariates["weight_kg"] == 70).all()
    sys.modules.pop("my_trialsim_plugin", None)
