"""hfselect: find the best pretrained Hugging Face Hub model for your dataset, fast.

The library follows the two-phase recall-and-select method (Cui et al., arXiv 2404.00069):
an offline model repository of benchmark results and learning curves, a coarse recall of
candidates with cheap proxy scores, and a fine selection by successive halving guided by each
model's convergence trend.
"""

__version__ = "0.1.0"

from hfselect.repository import ModelRepository

__all__ = ["ModelRepository", "__version__"]
