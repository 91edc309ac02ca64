"""hfselect: find the best pretrained Hugging Face Hub model for your dataset, fast.

The library follows the two-phase recall-and-select method (Cui et al., arXiv 2404.00069):
an offline model repository of benchmark results and learning curves, a coarse recall of
candidates with cheap proxy scores, and a fine selection by successive halving guided by each
model's convergence trend.
"""

from typing import TYPE_CHECKING, Any

from hfselect._version import __version__
from hfselect.store import ModelRepository

if TYPE_CHECKING:
    from hfselect.callbacks import ConvergenceTrendCallback

__all__ = ["ConvergenceTrendCallback", "ModelRepository", "__version__"]


def __getattr__(name: str) -> Any:
    # The callback imports transformers; keep `import hfselect` (and the CLI's --help) fast.
    if name == "ConvergenceTrendCallback":
        from hfselect.callbacks import ConvergenceTrendCallback

        return ConvergenceTrendCallback
    raise AttributeError(f"module 'hfselect' has no attribute {name!r}")
