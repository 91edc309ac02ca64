"""The model repository: the only package that talks SQL.

`ModelRepository` owns the SQLite file (models, datasets, benchmark results, learning curves,
proxy scores, crawl logs, selection studies); everything else calls its methods, or those of a
`Study`. Import the public names from here (``from hfselect.store import ModelRepository``): the
modules behind them are the store's own layout.
"""

from hfselect.store.claims import CLAIM_TTL_S
from hfselect.store.connection import ENV_REPOSITORY, default_repository_path, hfselect_cache
from hfselect.store.matrices import parse_matrix
from hfselect.store.protocol import IMPORTED, Protocol
from hfselect.store.repository import ModelRepository
from hfselect.store.schema import MIGRATIONS, SCHEMA_VERSION, TABLES
from hfselect.store.sql import utcnow
from hfselect.store.studies import Study, Trial

__all__ = [
    "CLAIM_TTL_S",
    "ENV_REPOSITORY",
    "IMPORTED",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TABLES",
    "ModelRepository",
    "Protocol",
    "Study",
    "Trial",
    "default_repository_path",
    "hfselect_cache",
    "parse_matrix",
    "utcnow",
]
