"""Forward hooks on named taps, pooling rules, and the BiasProbe (model + taps + views -> one metric per tap)."""
from lit_stbias.probe.probe import VIEW_KEYS, BiasProbe
from lit_stbias.probe.taps import Tap, capture, extract, pool, resolve_taps, run_model

__all__ = ["VIEW_KEYS", "BiasProbe", "Tap", "capture", "extract", "pool", "resolve_taps", "run_model"]
