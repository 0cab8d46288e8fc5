"""Sweeps: cells from axes, tasks bit-identical whatever the backend, workers or chunk size,
resume, array-job mode, and errors that name the sweep file, the cell and the YAML path."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import trialsim as ts
from trialsim.cli import main
from trialsim.config.sweep import load_sweep
from trialsim.errors import ConfigError, ConfigErrors
from trialsim.sweep import collect, run_sweep
from trialsim.sweep.run import plan

STUDY = {"name": "sw", "doses": [1, 2, 3, 4], "truth": {"tox": [0.05, 0.15, 0.3, 0.5]},
         "design": {"type": "crm", "target": 0.3, "skeleton": [0.1, 0.2, 0.3, 0.45],
                    "max_patients": 12}}


def _write(tmp_path, name="s.yaml", **kw) -> Path:
    doc = {"study": STUDY, "n_trials": 300, "seed": 5, "chunk": 100,
           "axes": {"design": {"crm": STUDY["design"],
                               "boin": {"type": "boin", "target": 0.3, "max_patients": 12}},
                    "truth.tox.3": [0.4, 0.6]}}
    doc.update(kw)
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return p


def _files(out: Path) -> dict:
    return {p.relative_to(out).as_posix(): p for p in sorted(out.glob("cells/*/*.parquet"))}


def test_cells_expand_the_axes(tmp_path):
    s = load_sweep(_write(tmp_path))
    assert len(s.cells) == 4 and len(plan(s)) == 12
    assert s.cells[1].labels == {"design": "crm", "truth.tox.3": "0.6"}
    assert s.cells[1].doc["truth"]["tox"] == [0.05, 0.15, 0.3, 0.6]
    assert s.cells[2].doc["design"]["type"] == "boin"
    z = load_sweep(_write(tmp_path, "z.yaml", combine="zip"))
    assert [c.name for c in z.cells] == ["design=crm,truth.tox.3=0.4", "design=boin,truth.tox.3=0.6"]


def test_backends_workers_and_chunks_give_identical_results(tmp_path):
    """Serial, 2 processes, and another chunk size: the same tables, byte for byte, and each
    cell equal to one simulate() of all its trials."""
    sweep = load_sweep(_write(tmp_path))
    run_sweep(sweep, tmp_path / "a", backend="serial")
    run_sweep(sweep, tmp_path / "b", backend="processes", workers=2)
    other = load_sweep(_write(tmp_path, "c.yaml", chunk=70))
    run_sweep(other, tmp_path / "c", backend="serial")
    tables = [collect(tmp_path / d) for d in "abc"]
    for name in ("summary.csv", "metrics.csv"):
        ref = (tmp_path / "a" / name).read_bytes()
        assert (tmp_path / "b" / name).read_bytes() == ref
        assert (tmp_path / "c" / name).read_bytes() == ref
    one = ts.simulate(ts.from_dict(sweep.cells[3].doc), n_trials=300, seed=5)
    m = tables[0][1]
    got = m[m["cell"] == 3].set_index("metric")["value"]
    pd.testing.assert_series_equal(got, one.metrics().set_index("metric")["value"],
                                   check_names=False)


def test_resume_runs_only_missing_tasks_and_loses_nothing(tmp_path):
    sweep = load_sweep(_write(tmp_path))
    out = tmp_path / "r"
    assert len(run_sweep(sweep, out, backend="serial")) == 12
    before = {k: p.read_bytes() for k, p in _files(out).items()}
    victim = sorted(before)[5]
    (out / victim).unlink()
    (out / "cells" / "00001" / ".junk.tmp-1").write_text("half-written")
    again = run_sweep(sweep, out, backend="serial")
    assert [t.relpath for t in again] == [victim]
    assert {k: p.read_bytes() for k, p in _files(out).items()} == before
    assert run_sweep(sweep, out, backend="serial") == []


def test_a_sweep_resumed_with_another_chunk_collects(tmp_path):
    """Run with chunk 70, then resumed with chunk 100 into the same folder: each cell holds
    overlapping tasks (0-70 and 0-100); collect took them in name order, stopped at the
    overlap and asked, for good, to run the sweep again.  A chain covering the trials is read
    (a trial's results do not depend on its task): the tables of a plain run."""
    out = tmp_path / "o"
    run_sweep(load_sweep(_write(tmp_path, "a.yaml", chunk=70)), out, backend="serial")
    run_sweep(load_sweep(_write(tmp_path, "b.yaml", chunk=100)), out, backend="serial")
    collect(out)
    run_sweep(load_sweep(_write(tmp_path)), tmp_path / "ref", backend="serial")
    collect(tmp_path / "ref")
    for name in ("summary.csv", "metrics.csv"):
        assert (out / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()


def test_a_task_too_large_for_memory_is_refused_when_the_sweep_is_read(tmp_path):
    """3,000,000 phase II trials per task: validate said OK and sweep then failed, advising
    an option it does not have; the sweep file's chunk is named instead."""
    flagship = Path(__file__).parents[1] / "configs" / "ketamine_phase2_mcpmod.yaml"
    p = tmp_path / "big.yaml"
    p.write_text(yaml.safe_dump({"study": str(flagship), "n_trials": 3_000_000, "seed": 1,
                                 "chunk": 3_000_000, "axes": {"design.n_total": [100]}}))
    with pytest.raises((ConfigError, ConfigErrors), match=r"a task of 3,000,000 phase II trials "
                                                          r"of 100 patients needs about .* GiB.*"
                                                          r"lower chunk") as e:
        load_sweep(p)
    errors = e.value.errors if isinstance(e.value, ConfigErrors) else [e.value]
    assert tuple(errors[0].path) == ("chunk",)


def test_array_tasks_then_collect(tmp_path):
    sweep = load_sweep(_write(tmp_path))
    run_sweep(sweep, tmp_path / "full", backend="serial")
    for i in range(3):
        run_sweep(sweep, tmp_path / "arr", backend="serial", task_index=i, n_tasks=3)
    collect(tmp_path / "full")
    collect(tmp_path / "arr")
    assert (tmp_path / "arr" / "metrics.csv").read_bytes() == \
        (tmp_path / "full" / "metrics.csv").read_bytes()


def test_incomplete_and_foreign_folders_are_refused(tmp_path):
    sweep = load_sweep(_write(tmp_path))
    run_sweep(sweep, tmp_path / "p", backend="serial", task_index=0, n_tasks=2)
    with pytest.raises(ValueError, match="cell 0 has trials 0..99 of 300"):
        collect(tmp_path / "p")
    other = load_sweep(_write(tmp_path, "o.yaml", seed=6))
    with pytest.raises(ValueError, match="another sweep"):
        run_sweep(other, tmp_path / "p", backend="serial")
    with pytest.raises(ValueError, match="holds no sweep"):
        collect(tmp_path)


def test_errors_name_the_file_the_cell_and_the_path(tmp_path):
    bad = _write(tmp_path, "bad.yaml", axes={"design.target": [0.3, 1.5]})
    with pytest.raises((ConfigError, ConfigErrors)) as e:
        load_sweep(bad)
    text = str(e.value)
    assert "bad.yaml" in text and "cell 1 (design.target=1.5)" in text and "design.target" in text
    with pytest.raises(ConfigError, match="unknown key"):
        load_sweep(_write(tmp_path, "k.yaml", trials=3))
    with pytest.raises(ConfigError, match="non-empty list"):
        load_sweep(_write(tmp_path, "e.yaml", axes={"design.target": []}))
    with pytest.raises(ConfigError, match="zip needs axes of one length"):
        load_sweep(_write(tmp_path, "l.yaml", combine="zip",
                          axes={"design.target": [0.2, 0.3], "truth.tox.0": [0.1]}))


def test_phase2_cells_round_trip(tmp_path):
    """A phase II study's arrays survive the task files: the collected tables equal one run."""
    base = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs"
                           / "ketamine_phase2_mcpmod.yaml").read_text())
    base.pop("scenarios", None)
    p = tmp_path / "p2.yaml"
    p.write_text(yaml.safe_dump({"study": base, "n_trials": 40, "seed": 3, "chunk": 25,
                                 "axes": {"name": ["p2"]}}))
    sweep = load_sweep(p)
    run_sweep(sweep, tmp_path / "o", backend="serial")
    summary, metrics = collect(tmp_path / "o")
    one = ts.simulate(ts.from_dict(sweep.cells[0].doc), n_trials=40, seed=3)
    np.testing.assert_array_equal(metrics["value"].to_numpy(),
                                  one.metrics()["value"].to_numpy())
    # the truth the metrics are judged against travels with them (it was in attrs only)
    truth = one.metrics().attrs
    assert np.isfinite(truth["true_td"]) and np.isfinite(truth["true_forward"])
    assert (metrics["true_td"] == truth["true_td"]).all()
    assert (metrics["true_forward"] == truth["true_forward"]).all()


def test_a_phase2_study_with_scenarios_sweeps_as_trialsim_run_gives_it(tmp_path):
    """The phase II flagship as written (its population keys in their order, which its draws
    follow; its scenarios): every scenario is a cell, labelled ``scenario``, and the
    collected metrics equal those ``trialsim run`` gives on the file.  Before, the cells were
    stored with sorted keys (different draws) and scenarios crashed the sweep."""
    cfg = Path(__file__).resolve().parents[1] / "configs" / "ketamine_phase2_mcpmod.yaml"
    p = tmp_path / "p2.yaml"
    p.write_text(yaml.safe_dump({"study": str(cfg), "n_trials": 30, "seed": 4, "chunk": 30},
                                sort_keys=False))
    sweep = load_sweep(p)
    run_sweep(sweep, tmp_path / "o", backend="serial")
    _, metrics = collect(tmp_path / "o")
    sims = ts.simulate(ts.load(cfg), n_trials=30, seed=4)
    assert list(metrics["scenario"].unique()) == list(sims.results)
    for name, one in sims.results.items():
        got = metrics[metrics.scenario == name]
        np.testing.assert_array_equal(got["value"].to_numpy(), one.metrics()["value"].to_numpy())


def test_cli_sweep_and_collect(tmp_path, capsys):
    path = _write(tmp_path)
    assert main(["sweep", str(path), "--out", str(tmp_path / "cli"), "--backend", "serial"]) == 0
    out = capsys.readouterr().out
    assert "4 cells x 300 trials" in out and "correct_selection_pct" in out
    assert main(["sweep", str(path), "--out", str(tmp_path / "cli"), "--backend", "serial"]) == 0
    assert "ran 0 tasks (12 already done)" in capsys.readouterr().out
    assert main(["collect", str(tmp_path / "cli")]) == 0
    plan_ = json.loads((tmp_path / "cli" / "sweep.json").read_text())
    assert plan_["n_trials"] == 300 and len(plan_["cells"]) == 4
    assert main(["sweep", str(path), "--out", str(tmp_path / "x"), "--task", "1"]) != 0


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "configs"
                                         / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_sweep_file_loads(path):
    sweep = load_sweep(path)
    assert len(sweep.cells) >= 2 and sweep.n_trials >= 1


def test_dask_local_cluster_gives_the_same_results(tmp_path):
    sweep = load_sweep(_write(tmp_path))
    run_sweep(sweep, tmp_path / "s", backend="serial")
    run_sweep(sweep, tmp_path / "d", backend="dask", workers=2)
    collect(tmp_path / "s")
    collect(tmp_path / "d")
    assert (tmp_path / "d" / "metrics.csv").read_bytes() == \
        (tmp_path / "s" / "metrics.csv").read_bytes()


def test_a_killed_dask_worker_loses_and_duplicates_nothing(tmp_path):
    """SIGKILL one of two worker processes after the third task has finished: Dask runs the
    lost tasks again elsewhere and the tables equal those of an uninterrupted serial run."""
    import os
    import signal

    from distributed import Client, LocalCluster

    sweep = load_sweep(_write(tmp_path, chunk=20))          # 60 tasks
    run_sweep(sweep, tmp_path / "s", backend="serial")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    try:
        with Client(cluster) as c:
            pids = sorted(c.run(os.getpid).values())
        done = []

        def progress(n):
            done.append(n)
            if len(done) == 3:
                os.kill(pids[0], signal.SIGKILL)

        ran = run_sweep(sweep, tmp_path / "k", backend="dask", progress=progress,
                        scheduler=cluster.scheduler_address)
    finally:
        cluster.close()
    assert len(ran) == 60 and len(done) == 60
    collect(tmp_path / "s")
    collect(tmp_path / "k")
    for name in ("summary.csv", "metrics.csv"):
        assert (tmp_path / "k" / name).read_bytes() == (tmp_path / "s" / name).read_bytes()
    assert len(_files(tmp_path / "k")) == 60


def test_the_api_script_runs(tmp_path, capsys):
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "scripts" / "sweep_api.py"
    spec = importlib.util.spec_from_file_location("sweep_api", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(str(_write(tmp_path)), str(tmp_path / "api"))
    out = capsys.readouterr().out
    assert "design" in out and len(out.strip().splitlines()) == 5


def test_flagship_sweep_on_a_dask_cluster_equals_serial(tmp_path, capsys):
    """The ketamine flagship over 3 targets x 3 scenarios x 2 designs (18 cells) from the CLI,
    on a Dask LocalCluster of 2 worker processes and serially: identical tables."""
    src = Path(__file__).resolve().parents[1] / "configs" / "sweeps" / "ketamine_flagship.yaml"
    doc = yaml.safe_load(src.read_text())
    doc.update(n_trials=30, chunk=15, study=str(src.parent.parent / "ketamine_iv_trd.yaml"))
    path = tmp_path / "flagship.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert main(["sweep", str(path), "--out", str(tmp_path / "d"), "--backend", "dask",
                 "--workers", "2"]) == 0
    assert main(["sweep", str(path), "--out", str(tmp_path / "s"), "--backend", "serial"]) == 0
    assert "18 cells x 30 trials" in capsys.readouterr().out
    for name in ("summary.csv", "metrics.csv"):
        assert (tmp_path / "d" / name).read_bytes() == (tmp_path / "s" / name).read_bytes()
    m = pd.read_csv(tmp_path / "s" / "metrics.csv")
    assert set(m["design.target,target"]) == {0.2, 0.25, 0.3}
    assert set(m["response.toxicity.x50"]) == {"more_toxic", "as_assumed", "less_toxic"}


def test_timed_cells_keep_their_calendars(tmp_path):
    """A study with a conduct: section: the task files keep each trial's calendar, and the
    collected duration metrics equal one timed run."""
    doc = dict(STUDY, conduct={"sites": [{"rate_per_week": 1.0}], "window_h": 48})
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump({"study": doc, "n_trials": 60, "seed": 2, "chunk": 25,
                                 "axes": {"design.target": [0.25, 0.3]}}, sort_keys=False))
    sweep = load_sweep(p)
    run_sweep(sweep, tmp_path / "o", backend="serial")
    _, metrics = collect(tmp_path / "o")
    one = ts.simulate(ts.from_dict(sweep.cells[1].doc), n_trials=60, seed=2)
    got = metrics[metrics["cell"] == 1].set_index("metric")["value"]
    want = one.metrics().set_index("metric")["value"]
    assert "duration_weeks" in got.index
    pd.testing.assert_series_equal(got, want, check_names=False)


def test_a_sweep_file_s_top_level_errors_are_reported_together(tmp_path):
    """An unknown key hid the others, and a missing base study was reported as the sweep file
    that could not be read: every top-level error now, the study's at study."""
    p = tmp_path / "bad.yaml"
    p.write_text("nonsense: 1\nstudy: nothere.yaml\nn_trials: 100.0\nseed: -1\nchunk: 0\n"
                 "axes: {target: [0.2]}\n")
    with pytest.raises(ConfigErrors) as e:
        load_sweep(p)
    paths = [tuple(x.path) for x in e.value.errors]
    assert paths == [("nonsense",), ("study",), ("n_trials",), ("seed",), ("chunk",)]
    assert "the base study" in e.value.errors[1].message and "nothere.yaml" in \
        e.value.errors[1].message
