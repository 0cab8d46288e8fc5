"""A run's output folder: checked before simulating, written atomically.

* :func:`check_output` refuses, before any work is done, a location that cannot receive the
  results: an empty path, an existing file (``/dev/null``), a folder holding files trialsim
  did not write (such as the working directory), a name or path too long for the file
  system, or a place where no folder can be created.
* :func:`write_outputs` writes every file into a hidden temporary folder beside the
  destination, then swaps it in with two renames: an earlier results folder is replaced
  whole or left untouched, never mixed, and an interrupted run leaves nothing half-written.
  Temporary folders left by a process that died (SIGKILL, power cut) are removed by the next
  write to the same place.
"""
from __future__ import annotations

import fnmatch
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from trialsim.config.study import study_to_yaml

#: The files a run writes.
OUTPUT_FILES = ("summary.csv", "metrics.csv", "trials.parquet", "patients.parquet", "study.yaml")
#: The event log a run writes with ``--trace K``.
TRACE_GLOB = "trace_[0-9]*.csv"
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)-[^/]*$")
_TEMP_SUFFIX = 40   # characters the temporary names add to the folder's name


class OutputError(ValueError):
    """The output location cannot receive the results."""


def check_output(out: str | Path, files: tuple[str, ...] = OUTPUT_FILES,
                 option: str = "--out") -> Path:
    """The absolute output folder, after checking it can receive ``files``; ``OutputError``
    naming ``option`` otherwise.  Nothing is created."""
    if not isinstance(out, (str, Path)) or not str(out).strip():
        raise OutputError(f"{option}: expected a folder path, got {out!r}")
    if "\0" in str(out):
        raise OutputError(f"{option}: the path contains a NUL character")
    path = Path(os.path.abspath(os.path.expanduser(str(out))))
    if path.parent == path:
        raise OutputError(f"{option}: {path} is the root folder; choose a folder for the results")
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise OutputError(f"{option}: {path} exists and is not a folder")
        ours = files + (TRACE_GLOB,) if files == OUTPUT_FILES else files
        foreign = sorted(p.name for p in path.iterdir()
                         if not any(fnmatch.fnmatchcase(p.name, f) for f in ours))
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise OutputError(f"{option}: {path} holds files trialsim did not write ({shown}); "
                              "choose a new or empty folder (a results folder is replaced "
                              "whole by the next run)")
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"{option}: {ancestor} is not a folder, so {path} cannot be created")
    try:
        name_max = os.pathconf(ancestor, "PC_NAME_MAX")
        path_max = os.pathconf(ancestor, "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):
        name_max, path_max = 255, 4096
    for part in path.relative_to(ancestor).parts:
        if len(os.fsencode(part)) + _TEMP_SUFFIX > name_max:
            raise OutputError(f"{option}: the folder name {part[:40]!r}... is too long for this "
                              f"file system (at most {name_max - _TEMP_SUFFIX} bytes)")
    if len(os.fsencode(str(path))) + _TEMP_SUFFIX + 32 > path_max:
        raise OutputError(f"{option}: the path is too long for this file system "
                          f"({len(str(path))} characters)")
    try:
        tempfile.TemporaryDirectory(prefix=".trialsim-check-", dir=ancestor).cleanup()
    except OSError as e:
        raise OutputError(f"{option}: cannot create folders in {ancestor}: "
                          f"{e.strerror or e}") from None
    return path


def write_outputs(out_dir: str | Path, writers: dict[str, Callable[[Path], None]]) -> list[Path]:
    """Call ``writers[name](tmp_path)`` for each file, then swap the complete folder in."""
    out = Path(os.path.abspath(str(out_dir)))
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out)
    pid = os.getpid()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{pid}-", dir=out.parent))
    old = None
    try:
        for name, write in writers.items():
            write(tmp / name)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)          # mkdtemp makes 0700; honour the user's umask
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{pid}-", dir=out.parent))
            os.rmdir(old)
            os.rename(out, old)
            try:
                os.rename(tmp, out)
            except BaseException:
                os.rename(old, out)
                old = None
                raise
        else:
            os.rename(tmp, out)
        return [out / n for n in writers]
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists():
            shutil.rmtree(old, ignore_errors=True)


def write_file_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` whole or not at all (a temporary file beside it, then
    renamed over it)."""
    path = Path(os.path.abspath(os.path.expanduser(str(path))))
    if path.is_dir():
        raise OutputError(f"{path} is a folder; expected a file name")
    if not path.parent.is_dir():
        raise OutputError(f"{path.parent} is not an existing folder")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def clean_stale(out: Path) -> None:
    """Remove the temporary folders that dead processes left beside ``out`` (restoring an
    earlier results folder that a killed run had moved aside and not replaced)."""
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return
    for p in entries:
        m = _TEMP_RE.match(p.name)
        if not m or m["name"] != out.name or _alive(int(m["pid"])):
            continue
        if m["kind"] == "old" and not out.exists():
            try:
                os.rename(p, out)
                continue
            except OSError:
                pass
        shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def save_simulations(sims, out_dir: str | Path, n_trials: int, version: str,
                     extra: dict[str, Callable[[Path], None]] | None = None) -> list[Path]:
    """``summary.csv``, ``metrics.csv``, ``trials.parquet``, ``patients.parquet`` and
    ``study.yaml`` (resolved config with seed, trial count and package version), and the
    ``extra`` files (name: writer), all swapped in together."""
    meta = {"seed": sims.seed, "n_trials": n_trials, "scenario": sims.scenario,
            "trialsim_version": version}
    # simulation: makes the file re-run this very run; run: records it (ignored on load)
    resolved = study_to_yaml(sims.study, simulation={"n_trials": n_trials, "seed": sims.seed},
                             run=meta)
    return write_outputs(out_dir, {
        "summary.csv": lambda p: sims.summary().to_csv(p, index=False),
        "metrics.csv": lambda p: sims.metrics().to_csv(p, index=False),
        "trials.parquet": lambda p: write_parquet(sims.trials, p, resolved),
        "patients.parquet": lambda p: write_parquet(sims.patients, p, resolved),
        "study.yaml": lambda p: p.write_text(resolved, encoding="utf-8"),
        **(extra or {}),
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
