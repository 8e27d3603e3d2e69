"""The static/dynamic bias metric: a torchmetrics Metric and its functional twin, sharing the same maths.

``StaticDynamicBias.compute()`` returns the flat scalars named in ``SCALAR_NAMES``; ``compute_result()`` and
``static_dynamic_bias`` return a ``BiasResult``. See docs/metrics.md.
"""
from lit_stbias.metrics.bias import StaticDynamicBias
from lit_stbias.metrics.functional import static_dynamic_bias
from lit_stbias.metrics.result import SCALAR_NAMES, BiasResult

__all__ = ["SCALAR_NAMES", "BiasResult", "StaticDynamicBias", "static_dynamic_bias"]
