"""The static/dynamic bias metric: a torchmetrics Metric and its functional twin, sharing the same maths."""
from lit_stbias.metrics.bias import StaticDynamicBias
from lit_stbias.metrics.functional import static_dynamic_bias
from lit_stbias.metrics.result import BiasResult

__all__ = ["BiasResult", "StaticDynamicBias", "static_dynamic_bias"]
