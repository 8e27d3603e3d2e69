"""Every module of the lit_stbias package imports, and every ``>>>`` example in it prints what it says; the
code block of docs/metrics.md runs.

The walk finds modules by itself, so a new module or a new example is tested without being listed here.
"""
import doctest
import importlib
import io
import pkgutil
import re
from pathlib import Path

import pytest
import torch

import lit_stbias

DOCS = Path(__file__).resolve().parent.parent / "docs"

# onerror: a package that fails to import stays in the list, and its own test shows the traceback.
MODULES = sorted(info.name for info in pkgutil.walk_packages(lit_stbias.__path__, "lit_stbias.", onerror=print))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _examples(module):
    return [test for test in doctest.DocTestFinder(exclude_empty=True).find(module, module.__name__) if test.examples]


@pytest.mark.parametrize("name", MODULES)
def test_module_imports_and_its_docstring_examples_pass(name):
    module = importlib.import_module(name)
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in _examples(module):
        runner.run(test, out=report.write)
    assert runner.failures == 0, f"{name}: {runner.failures} of {runner.tries} examples failed\n{report.getvalue()}"


def test_the_walk_reaches_every_subpackage_and_finds_the_examples():
    assert {"lit_stbias.metrics.bias", "lit_stbias.metrics.functional", "lit_stbias.probe.probe"} <= set(MODULES)
    assert {p.rsplit(".", 1)[-1] for p in MODULES if p.count(".") == 1} >= {"data", "metrics", "models", "pairs",
                                                                             "probe", "reports", "lightning"}
    for name in ("lit_stbias.metrics.bias", "lit_stbias.metrics.functional", "lit_stbias.metrics.result"):
        assert _examples(importlib.import_module(name)), f"{name} lost its examples"


def _tested_block(path):
    """The fenced python block that follows the "run by tests/test_doctests.py" marker in ``path``."""
    text = path.read_text()
    match = re.search(r"<!-- this block is run by tests/test_doctests\.py[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert match, f"{path} lost its tested code block"
    return match.group(1)


class _Views(torch.utils.data.Dataset):
    """Tiny videos with a dynamic partner (mirrored and recoloured) and a static one (frames reversed)."""

    def __init__(self, n):
        g = torch.Generator().manual_seed(3)
        self.anchor = torch.rand(n, 3, 4, 8, 8, generator=g)
        self.recolour = torch.rand(n, 3, 1, 1, 1, generator=g)

    def __len__(self):
        return len(self.anchor)

    def __getitem__(self, i):
        video = self.anchor[i]
        return {"anchor": video, "dynamic": video.flip(-1) * self.recolour[i], "static": video.flip(1)}


def test_the_lightning_module_of_docs_metrics_logs_the_bias_of_its_layer(tmp_path):
    import lightning as L

    from lit_stbias.metrics import SCALAR_NAMES, StaticDynamicBias

    namespace = {}
    exec(compile(_tested_block(DOCS / "metrics.md"), "docs/metrics.md", "exec"), namespace)
    (module_class,) = [v for v in namespace.values()
                       if isinstance(v, type) and issubclass(v, L.LightningModule) and v is not L.LightningModule]
    torch.manual_seed(0)
    model = module_class()
    loader = torch.utils.data.DataLoader(_Views(12), batch_size=4)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    logged = trainer.validate(model, loader, verbose=False)[0]

    assert sorted(logged) == sorted(f"val/bias/{name}" for name in SCALAR_NAMES)
    expected = StaticDynamicBias(16)  # the same layer's pooled features, fed by hand
    pooled = lambda x: model.conv(x).mean(dim=(2, 3, 4))  # noqa: E731
    with torch.no_grad():
        for views in loader:
            expected.update(pooled(views["anchor"]), pooled(views["dynamic"]), factor=0)
            expected.update(pooled(views["anchor"]), pooled(views["static"]), factor=1)
    assert logged == pytest.approx({f"val/bias/{k}": float(v) for k, v in expected.compute().items()}, rel=1e-12)
    assert expected.num_pairs == {"dynamic": 12, "static": 12}
