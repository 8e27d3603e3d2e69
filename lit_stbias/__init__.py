"""lit_stbias: how much of a spatiotemporal network encodes static vs. dynamic information.

Packages: ``data`` (video sources), ``pairs`` (styles and static/dynamic views), ``models`` (the zoo and its
taps), ``metrics`` (the StaticDynamicBias metric), ``probe`` (hooks and the BiasProbe), ``lightning``
(training modules and the bias-monitor callback), ``reports`` (plots and HTML).
"""
__version__ = "0.1.0"
