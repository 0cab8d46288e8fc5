"""One task of a sweep: trials ``start .. stop - 1`` of one cell, simulated and stored as one
Parquet file (one row per trial; arrays with more dimensions as fixed-size lists), written
atomically, with the cell's resolved config, the seed, the trial range and the package version
in its metadata."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

META_KEY = b"trialsim"
#: Column prefix of the calendar arrays (timed path) in a task file.
CALENDAR = "calendar."


@dataclass(frozen=True)
class Task:
    """Trials ``start .. stop - 1`` of cell ``cell`` of the sweep whose identity is ``sweep``."""

    sweep: str
    cell: int
    start: int
    stop: int

    @property
    def relpath(self) -> str:
        return f"cells/{self.cell:05d}/trials-{self.start:010d}-{self.stop:010d}.parquet"


@lru_cache(maxsize=64)
def _study(doc_json: str):
    from trialsim.config.study import from_dict
    doc = json.loads(doc_json)
    return from_dict(doc, name_default=doc.get("name", "study"))


def run_task(task: Task, doc_json: str, seed: int, out: str) -> tuple[Task, int]:
    """Simulate the task's trials and write its file under ``out``; returns the task and the
    number of trials."""
    from trialsim import __version__
    from trialsim.simulate import simulate
    sims = simulate(_study(doc_json), n_trials=task.stop - task.start, seed=seed,
                    first_trial=task.start)
    table = arrays_to_table(sims.arrays)
    if getattr(sims, "calendar", None) is not None:      # the timed path's calendars
        cal = arrays_to_table(sims.calendar, CALENDAR)
        meta = {k: json.dumps({**json.loads(table.schema.metadata[k]),
                               **json.loads(cal.schema.metadata[k])}).encode()
                for k in (b"shapes", b"empty")}
        for name in cal.column_names:
            table = table.append_column(name, cal.column(name))
        table = table.replace_schema_metadata(meta)
    meta = {"version": __version__, "seed": seed, "task": task.__dict__,
            "config": json.loads(doc_json), "arrays": type(sims.arrays).__name__}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           META_KEY: json.dumps(meta).encode()})
    path = Path(out) / task.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return task, task.stop - task.start


def arrays_to_table(arrays, prefix: str = "") -> pa.Table:
    """A results dataclass of per-trial arrays (leading axis: trials) as an Arrow table, its
    column names prefixed with ``prefix``."""
    cols, shapes, empty = {}, {}, {}
    for f in fields(arrays):
        a = np.asarray(getattr(arrays, f.name))
        name = prefix + f.name
        shapes[name] = list(a.shape[1:])
        if a.ndim == 1:
            cols[name] = pa.array(a)
        elif 0 in a.shape[1:]:   # no values per trial (no safety measure, ...): its dtype only
            empty[name] = a.dtype.str
        else:
            width = int(np.prod(a.shape[1:]))
            flat = pa.array(np.ascontiguousarray(a).reshape(-1))
            cols[name] = pa.FixedSizeListArray.from_arrays(flat, width)
    table = pa.table(cols)
    return table.replace_schema_metadata({b"shapes": json.dumps(shapes).encode(),
                                          b"empty": json.dumps(empty).encode()})


def table_to_arrays(table: pa.Table, cls, prefix: str = ""):
    """Inverse of :func:`arrays_to_table` for the dataclass ``cls`` (the columns with
    ``prefix``), or None if the table has none of them."""
    shapes = json.loads(table.schema.metadata[b"shapes"])
    empty = json.loads(table.schema.metadata.get(b"empty", b"{}"))
    out = {}
    for name, shape in shapes.items():
        if not name.startswith(prefix) or (not prefix and name.startswith(CALENDAR)):
            continue
        if name in empty:
            out[name[len(prefix):]] = np.zeros((len(table), *shape), np.dtype(empty[name]))
            continue
        col = table.column(name).combine_chunks()
        if shape:
            flat = col.flatten().to_numpy(zero_copy_only=False)
            out[name[len(prefix):]] = flat.reshape(len(table), *shape)
        else:
            out[name[len(prefix):]] = col.to_numpy(zero_copy_only=False)
    return cls(**out) if out else None


def read_meta(path: Path) -> dict | None:
    """The metadata of a task file, or None if it cannot be read."""
    try:
        md = pq.read_schema(path).metadata or {}
        return json.loads(md[META_KEY])
    except Exception:  # noqa: BLE001 - an unreadable or foreign file is simply not a result
        return None
