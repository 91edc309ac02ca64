"""The model repository: the only package that talks SQL.

`ModelRepository` owns the SQLite file (models, datasets, benchmark results, learning curves,
proxy scores, crawl logs, selection studies); everything else calls its methods.
"""

from hfselect.store.repository import ModelRepository

__all__ = ["ModelRepository"]
