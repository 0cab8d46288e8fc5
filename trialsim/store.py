"""Write a run's outputs atomically: every file is written in a temporary folder beside the
destination and moved into place only when complete, so an interrupted run leaves no
half-written file."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def write_outputs(out_dir: str | Path, writers: dict[str, Callable[[Path], None]]) -> list[Path]:
    """Call ``writers[name](tmp_path)`` for each file, then move them all into ``out_dir``."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for name, write in writers.items():
            write(tmp / name)
        if not out.exists():
            os.replace(tmp, out)
            return [out / n for n in writers]
        for name in writers:
            os.replace(tmp / name, out / name)
        return [out / n for n in writers]
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def save_simulations(sims, out_dir: str | Path, n_trials: int, version: str) -> list[Path]:
    """``summary.csv``, ``metrics.csv``, ``trials.parquet``, ``patients.parquet`` and
    ``study.yaml`` (resolved config with seed, trial count and package version)."""
    from trialsim.config import study_to_yaml

    def text(s: str):
        return lambda p: p.write_text(s)

    meta = {"seed": sims.seed, "n_trials": n_trials, "scenario": sims.scenario, "trialsim_version": version}
    resolved = study_to_yaml(sims.study, run=meta)
    return write_outputs(out_dir, {
        "summary.csv": lambda p: sims.summary().to_csv(p, index=False),
        "metrics.csv": lambda p: sims.metrics().to_csv(p, index=False),
        "trials.parquet": lambda p: write_parquet(sims.trials, p, resolved),
        "patients.parquet": lambda p: write_parquet(sims.patients, p, resolved),
        "study.yaml": text(resolved),
    })


def write_parquet(df, path: Path, resolved_yaml: str) -> None:
    """Parquet with the resolved study YAML (seed and version included) in the file metadata
    under the key ``trialsim.study``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"trialsim.study"] = resolved_yaml.encode()
    pq.write_table(table.replace_schema_metadata(meta), path)
