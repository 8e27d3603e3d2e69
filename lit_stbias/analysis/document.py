"""`BiasDocument`: the one typed record of a measurement, and its JSON form (``bias.json``).

What a document holds: per seed and per tap the numbers of a :class:`~lit_stbias.metrics.BiasResult`
(``BiasResult.to_dict``: layer scores, dims, percentages, unit counts at λ and over the λ sweep, pair counts,
optionally every unit's two scores); per tap the mean over seeds and the half-width of its 95% interval (one
function, :func:`lit_stbias.analysis.intervals.half_width`); and where the numbers come from (provenance).

The JSON form keeps the layout the reports read: ``layers[tap]`` holds the tap's numbers (one seed: that
seed's; several: the means) beside ``per_seed``, ``mean`` and ``ci95``. Only finite numbers are written
(``allow_nan=False``); a non-finite value is refused, naming the tap and the field, before anything is written.
"""
from __future__ import annotations

import copy
import datetime
import json
import math
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from lit_stbias.analysis.clips import ClipSettings
from lit_stbias.analysis.intervals import DESCRIPTIONS, LEVEL, check_method, half_width

SCHEMA = "lit_stbias.bias/2"
BIAS_FILE = "bias.json"
#: per-tap groups that get a mean and an interval over seeds
SUMMARY_KEYS = ("layer_scores", "layer_percent", "layer_dims", "unit_counts")
DEFAULT_THRESHOLDS = tuple(round(0.1 * k, 1) for k in range(1, 10))


def provenance(command: Sequence[str] | str | None = None) -> dict[str, Any]:
    """Versions of lit_stbias and torch, the command line and the date (UTC), for a new document."""
    import torch

    import lit_stbias

    if command is None:
        command = [os.path.basename(sys.argv[0]), *sys.argv[1:]]
    text = command if isinstance(command, str) else shlex.join(str(c) for c in command)
    date = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    return {"lit_stbias": lit_stbias.__version__, "torch": torch.__version__, "command": text, "date": date}


def check_finite(value: Any, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` (e.g. ``stage5.layer_scores.static``) for a NaN or an infinity."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            check_finite(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        bad = [i for i, item in enumerate(value) if isinstance(item, float) and not math.isfinite(item)]
        if bad:
            raise ValueError(f"{where} holds non-finite values at {bad[:8]}; a bias document holds finite "
                             "numbers only.")
        for i, item in enumerate(value):
            if isinstance(item, (Mapping, list, tuple)):
                check_finite(item, f"{where}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} is {value}; a bias document holds finite numbers only.")


@dataclass
class BiasDocument:
    """The results of one measurement: ``per_seed[seed][tap]`` is ``BiasResult.to_dict`` data.

    Everything else says what was measured and how: ``model``/``preset``/``checkpoint``/``task``, ``data``
    (the spec), ``clip`` (:class:`ClipSettings`), ``tap_modules`` (tap → the module it reads), ``threshold``,
    ``thresholds`` (the λ sweep), ``layer_score_mode``, ``init_seed`` (weights of a model without checkpoint),
    ``devices``, ``pairs_asked`` (per factor) with ``skipped`` (files left out, with the reason),
    ``interval`` (``"normal"`` or ``"student-t"``), ``provenance`` (versions, command line, date) and
    ``context`` (free-form, e.g. the epoch of a monitor measurement).
    """

    per_seed: dict[int, dict[str, dict[str, Any]]]
    threshold: float = 0.5
    thresholds: list[float] = field(default_factory=lambda: list(DEFAULT_THRESHOLDS))
    layer_score_mode: str = "pooled"
    model: str | None = None
    preset: str | None = None
    checkpoint: str | None = None
    task: str | None = None
    data: str | None = None
    clip: ClipSettings = field(default_factory=ClipSettings)
    tap_modules: dict[str, str] = field(default_factory=dict)
    init_seed: int | None = None
    devices: int = 1
    pairs_asked: int | None = None
    skipped: list[dict[str, Any]] = field(default_factory=list)
    interval: str = "normal"
    provenance: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_method(self.interval)
        if not self.per_seed or not all(self.per_seed.values()):
            raise ValueError("a bias document needs at least one seed with at least one tap.")
        taps = [list(t) for t in self.per_seed.values()]
        if any(t != taps[0] for t in taps):
            raise ValueError(f"every seed must hold the same taps; got {taps}.")

    # -- building ----------------------------------------------------------------------------------------
    @classmethod
    def from_results(cls, results: Mapping[int, Mapping[str, Any]], thresholds: Sequence[float] | None = None,
                     units: bool = True, **settings: Any) -> "BiasDocument":
        """A document from ``{seed: {tap: BiasResult}}``; ``thresholds`` is the λ sweep (default: 0.1..0.9),
        ``units`` keeps every unit's two scores (the unit-score plot and ``units.csv`` read them)."""
        thresholds = list(DEFAULT_THRESHOLDS if thresholds is None else thresholds)
        per_seed = {int(seed): {tap: r.to_dict(thresholds=thresholds, include_units=units) for tap, r in taps.items()}
                    for seed, taps in results.items()}
        first = next(iter(next(iter(results.values())).values()))
        settings.setdefault("threshold", first.threshold)
        settings.setdefault("layer_score_mode", first.layer_score_mode)
        return cls(per_seed=per_seed, thresholds=thresholds, **settings)

    # -- reading the numbers -------------------------------------------------------------------------------
    @property
    def seeds(self) -> list[int]:
        return list(self.per_seed)

    @property
    def taps(self) -> list[str]:
        """Tap names in network order."""
        return list(next(iter(self.per_seed.values())))

    def tap(self, name: str, seed: int | None = None) -> dict[str, Any]:
        """One tap's numbers of one seed (default: the first)."""
        seed = self.seeds[0] if seed is None else seed
        if name not in self.per_seed[seed]:
            raise ValueError(f"tap {name!r} is not in this document; it has {', '.join(self.taps)}.")
        return self.per_seed[seed][name]

    def summary(self, name: str) -> dict[str, dict[str, dict[str, float]]]:
        """``{"mean": {group: {key: value}}, "ci95": {...}}`` of one tap over the seeds (``SUMMARY_KEYS``)."""
        runs = [self.tap(name, seed) for seed in self.seeds]
        mean: dict[str, dict[str, float]] = {}
        ci95: dict[str, dict[str, float]] = {}
        for group in SUMMARY_KEYS:
            keys = list(runs[0][group])
            values = np.array([[float(run[group][k]) for k in keys] for run in runs], dtype=np.float64)
            mean[group] = dict(zip(keys, values.mean(axis=0).tolist()))
            ci95[group] = dict(zip(keys, np.atleast_1d(half_width(values, self.interval)).tolist()))
        return {"mean": mean, "ci95": ci95}

    def measured(self) -> list[int]:
        """Pairs measured per factor, one number per seed (the first tap's count of dynamic pairs)."""
        return [int(self.tap(self.taps[0], seed)["num_pairs"]["dynamic"]) for seed in self.seeds]

    def unit_rows(self) -> Iterable[list[Any]]:
        """Rows of ``units.csv``: seed, tap, unit, dynamic score, static score, dead (when units were kept)."""
        for seed, taps in self.per_seed.items():
            for tap, data in taps.items():
                scores = data.get("unit_scores")
                if scores is None:
                    continue
                for i, (d, s, dead) in enumerate(zip(scores["dynamic"], scores["static"], scores["dead"])):
                    yield [seed, tap, i, f"{d:.6f}", f"{s:.6f}", int(dead)]

    # -- JSON ----------------------------------------------------------------------------------------------
    def to_json(self, units: bool = True) -> dict[str, Any]:
        """The ``bias.json`` form; ``units=False`` leaves out every unit's scores (the monitor's history).

        Raises ``ValueError`` naming the tap and field when a number is not finite.
        """
        seeds = self.seeds
        layers: dict[str, Any] = {}
        for tap in self.taps:
            per_seed = [copy.deepcopy(self.tap(tap, s)) for s in seeds]
            if not units:
                for run in per_seed:
                    run.pop("unit_scores", None)
            layer = {k: v for k, v in per_seed[0].items() if k != "unit_scores"}
            if len(seeds) > 1:
                stats = self.summary(tap)
                layer.update({k: stats["mean"][k] for k in SUMMARY_KEYS})
                layer.update(stats)
            layer["per_seed"] = per_seed
            check_finite(layer, tap)
            layers[tap] = layer
        doc = {
            "schema": SCHEMA,
            "model": self.model,
            "preset": self.preset,
            "checkpoint": self.checkpoint,
            "task": self.task,
            "data": self.data,
            "clip": self.clip.as_dict(),
            "threshold": self.threshold,
            "thresholds": list(self.thresholds),
            "layer_score_mode": self.layer_score_mode,
            "seeds": seeds,
            "init_seed": self.init_seed,
            "devices": self.devices,
            "num_pairs": dict(self.tap(self.taps[0])["num_pairs"]),
            "pairs": {"asked": self.pairs_asked, "measured": self.measured(), "skipped": list(self.skipped)},
            "interval": {"method": self.interval, "level": LEVEL, "formula": DESCRIPTIONS[self.interval]},
            "tap_modules": dict(self.tap_modules),
            "provenance": dict(self.provenance),
            "context": dict(self.context),
            "layer_order": self.taps,
            "layers": layers,
        }
        check_finite({k: v for k, v in doc.items() if k != "layers"}, "document")
        return doc

    def dumps(self, units: bool = True) -> str:
        return json.dumps(self.to_json(units=units), indent=2, allow_nan=False)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], where: str = "the document") -> "BiasDocument":
        """Read a document written by :meth:`to_json`; anything else is one ``ValueError`` naming ``where``."""
        if not isinstance(doc, Mapping) or not isinstance(doc.get("layers"), Mapping) or not doc["layers"]:
            raise ValueError(f"{where} is not a bias document: it has no non-empty 'layers' mapping")
        if doc.get("schema") != SCHEMA:
            found = f"schema {doc['schema']!r}" if "schema" in doc else "no 'schema' field"
            raise ValueError(f"{where} has {found}, not {SCHEMA!r}: it was written by an older analyze.py or "
                             "another tool; run analyze.py again to make a current one")
        try:
            seeds = [int(s) for s in doc["seeds"]]
            per_seed = {seed: {} for seed in seeds}
            for tap in doc.get("layer_order") or list(doc["layers"]):
                runs = doc["layers"][tap]["per_seed"]
                if len(runs) != len(seeds):
                    raise ValueError(f"tap {tap!r} has {len(runs)} per-seed entries for {len(seeds)} seeds")
                for seed, run in zip(seeds, runs):
                    per_seed[seed][tap] = dict(run)
            pairs = doc.get("pairs") or {}
            return cls(
                per_seed=per_seed, threshold=float(doc["threshold"]), thresholds=list(doc.get("thresholds") or []),
                layer_score_mode=doc.get("layer_score_mode", "pooled"), model=doc.get("model"),
                preset=doc.get("preset"), checkpoint=doc.get("checkpoint"), task=doc.get("task"),
                data=doc.get("data"), clip=ClipSettings.from_dict(doc.get("clip") or {}),
                tap_modules=dict(doc.get("tap_modules") or {}), init_seed=doc.get("init_seed"),
                devices=int(doc.get("devices", 1)), pairs_asked=pairs.get("asked"),
                skipped=list(pairs.get("skipped") or []), interval=(doc.get("interval") or {}).get("method", "normal"),
                provenance=dict(doc.get("provenance") or {}), context=dict(doc.get("context") or {}),
            )
        except (KeyError, TypeError, ValueError) as err:
            detail = f"missing {err}" if isinstance(err, KeyError) else str(err)
            raise ValueError(f"{where} is not a valid bias document ({detail})") from None

    def write(self, path: str | os.PathLike, units: bool = True) -> Path:
        """Write the JSON form to ``path`` (a file; see ``lit_stbias.analysis.write_outputs`` for a folder)."""
        path = Path(path)
        path.write_text(self.dumps(units=units) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: str | os.PathLike) -> "BiasDocument":
        """Read a run's document, given its output folder or the ``bias.json`` file itself.

        ``FileNotFoundError`` names the expected file when it is missing; ``ValueError`` names the file when
        it is not JSON, not a bias document, or one of another version.
        """
        path = Path(path)
        file = path if path.suffix == ".json" else path / BIAS_FILE
        if not file.is_file():
            raise FileNotFoundError(f"no bias document: expected {file} (the {BIAS_FILE} that analyze.py writes)")
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{file} is not valid JSON: {err}") from err
        return cls.from_json(doc, where=str(file))


__all__ = ["BIAS_FILE", "DEFAULT_THRESHOLDS", "SCHEMA", "SUMMARY_KEYS", "BiasDocument", "check_finite", "provenance"]
