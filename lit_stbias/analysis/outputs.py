"""Writing a document's outputs so that ``--out`` is replaced as a whole, never mixed with older results.

The new outputs (``bias.json``, ``units.csv``, the plots, ``report.html``) are written into a fresh sibling
folder, beside links to the user's own files in ``--out`` (anything that is not one of :data:`OUTPUT_FILES`).
Then two renames swap the folders: ``--out`` → ``.<name>.old-*`` and the new folder → ``--out``; if the second
fails, the first is undone. A reader of ``--out`` therefore finds the complete previous results or the
complete new ones, and for the instant between the renames no folder at all, never a mix; Ctrl-C during the
swap takes effect after it (:func:`interrupts_deferred`). The previous folder is deleted last.
:func:`write_folder` does the same for other commands (``analyze.py ablate``), each replacing its own files
and keeping the rest.
"""
from __future__ import annotations

import csv
import os
import shutil
import signal
import stat
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

from lit_stbias.analysis.document import BIAS_FILE, BiasDocument

UNITS_FILE = "units.csv"
REPORT_FILES = ("layer_percent.png", "two_stream.png", "unit_counts.png", "threshold_sweep.png", "unit_scores.png",
                "report.html")
#: the files an analysis writes into --out; a new analysis replaces all of them, and only them
OUTPUT_FILES = (BIAS_FILE, UNITS_FILE, *REPORT_FILES)


def _writable(path: Path) -> bool:
    """Writable by this process and not marked read-only (mode bits), so even root respects a chmod a-w."""
    write_bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    return os.access(path, os.W_OK | os.X_OK) and bool(path.stat().st_mode & write_bits)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_output_folder(out: str | os.PathLike) -> Path:
    """Raise ``ValueError`` naming ``--out`` unless its outputs can be written and swapped in; writes nothing.

    Runs before any measurement, so a read-only folder costs nothing but this check.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder.")
    if out.is_dir() and not _writable(out):
        raise ValueError(f"--out {out} is read-only; choose another --out or make it writable.")
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not _writable(parent):
        raise ValueError(f"--out {out} cannot be written: {parent} is read-only; choose another --out.")
    return out


def write_units_csv(path: Path, doc: BiasDocument) -> Path:
    """Every unit's two scores, per seed and tap (one row each), as ``units.csv``."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seed", "layer", "unit", "dynamic_score", "static_score", "dead"])
        writer.writerows(doc.unit_rows())
    return path


def _link_user_files(out: Path, staging: Path, replaced: Sequence[str] = OUTPUT_FILES) -> None:
    """Hard links (copies where links fail) of everything in ``out`` that is not one of the ``replaced`` files."""
    for entry in out.iterdir():
        if entry.name in replaced:
            continue
        target = staging / entry.name
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, target, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, target)


def _link_or_copy(source: str | os.PathLike, target: str | os.PathLike) -> None:
    if os.path.islink(source):
        os.symlink(os.readlink(source), target)
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C (SIGINT) during the block takes effect when the block ends: the swap's renames run all or none of
    them, so an interrupt never leaves ``--out`` missing with the previous results aside. Outside the main
    thread (where Python delivers signals) the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)  # now, through the handler that was there before


def swap_in(staging: Path, out: Path) -> None:
    """Put the finished ``staging`` folder at ``out`` with renames; on failure ``out`` is as it was."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        old.rmdir()  # a free name beside out, on the same file system
        os.rename(out, old)
    try:
        os.rename(staging, out)
    except BaseException:
        if old is not None:
            try:
                os.rename(old, out)
            except OSError as err:
                raise OSError(f"could not put the new results in {out}, nor the previous ones back: they are in "
                              f"{old} ({err})") from err
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_folder(out: str | os.PathLike, write: Callable[[Path], None], replaced: Sequence[str]) -> Path:
    """Fill a fresh folder with ``write(folder)``, add links to every file of ``out`` that is not one of the
    ``replaced`` names, and swap it in as ``out`` (see the module docstring). Returns ``out``."""
    out = check_output_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        os.chmod(staging, stat.S_IMODE(out.stat().st_mode) if out.is_dir() else 0o777 & ~_umask())
        write(staging)
        if out.is_dir():
            _link_user_files(out, staging, replaced)
        with interrupts_deferred():
            swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def write_outputs(out: str | os.PathLike, doc: BiasDocument, report: bool = True) -> Path:
    """Write ``bias.json``, ``units.csv`` and (``report``) the plots and ``report.html`` for ``doc``, replacing
    the previous outputs in ``out`` as a whole (see the module docstring). Returns ``out``."""
    from lit_stbias.reports import write_report

    text = doc.dumps()  # a non-finite number fails here, before any file exists

    def write(staging: Path) -> None:
        (staging / BIAS_FILE).write_text(text + "\n", encoding="utf-8")
        write_units_csv(staging / UNITS_FILE, doc)
        if report:
            write_report(doc, staging)

    return write_folder(out, write, OUTPUT_FILES)


__all__ = ["OUTPUT_FILES", "UNITS_FILE", "check_output_folder", "interrupts_deferred", "swap_in", "write_folder",
           "write_outputs", "write_units_csv"]
