"""Claims: which bench worker is training which (model, dataset, protocol) pair.

A claim lasts ``CLAIM_TTL_S`` unless its worker renews it, so two workers never train one pair and
a crashed worker's pairs are taken over.
"""

from __future__ import annotations

import time
from typing import Any

from hfselect.store.connection import RepositoryConnection
from hfselect.store.protocol import Protocol
from hfselect.store.sql import upsert

# How long a pair's claim lasts unless its worker renews it (bench renews it every CLAIM_TTL_S / 4):
# a crashed worker's pair is free again after this long.
CLAIM_TTL_S = 600.0


class ClaimsMixin(RepositoryConnection):
    """The claims table's methods of :class:`~hfselect.store.ModelRepository`."""

    def claim_pair(
        self,
        model_id: str,
        dataset: str,
        protocol: Protocol,
        owner: str,
        *,
        ttl_s: float = CLAIM_TTL_S,
        failed_since: str | None = None,
        reclaim: bool = False,
        now: float | None = None,
    ) -> str:
        """Claim a pair for ``owner`` before training it: ``"claimed"``, ``"done"`` or ``"held"``.

        In one write transaction, so two workers can never both get ``"claimed"``. ``"done"``: the
        pair already has a finished result under ``protocol``, or a failed one recorded at or after
        ``failed_since`` (an ISO time such as the worker's start: concurrent workers do not retry
        each other's failures, a later run does). ``"held"``: another owner holds an unexpired
        claim. An expired claim (its worker crashed) is taken over. The owner renews its claim
        (the heartbeat of a long training) by claiming the pair again: ``"claimed"`` while it still
        holds it. ``reclaim`` takes over another owner's claim before it expires too (for a worker
        known to be dead: a live one would then train the pair a second time). ``now`` is the
        clock (``time.time()``), for tests.
        """
        clock = time.time() if now is None else now
        with self._transaction() as connection:
            result = connection.execute(
                "SELECT status, created_at FROM results WHERE model_id = ? AND dataset = ? AND protocol = ?",
                (model_id, dataset, protocol.key),
            ).fetchone()
            if result is not None and (
                result["status"] == "ok"
                or (failed_since is not None and (result["created_at"] or "") >= failed_since)
            ):
                return "done"
            held = connection.execute(
                "SELECT owner, expires_at FROM claims WHERE model_id = ? AND dataset = ? AND protocol = ?",
                (model_id, dataset, protocol.key),
            ).fetchone()
            if held is not None and held["owner"] != owner and held["expires_at"] > clock and not reclaim:
                return "held"
            upsert(
                connection,
                "claims",
                {
                    "model_id": model_id,
                    "dataset": dataset,
                    "protocol": protocol.key,
                    "owner": owner,
                    "claimed_at": clock,
                    "expires_at": clock + ttl_s,
                },
                ("model_id", "dataset", "protocol"),
            )
            return "claimed"

    def release_claim(self, model_id: str, dataset: str, protocol: Protocol, owner: str) -> None:
        """Drop ``owner``'s claim on a pair (after its result is recorded, or when giving up)."""
        with self._transaction() as connection:
            connection.execute(
                "DELETE FROM claims WHERE model_id = ? AND dataset = ? AND protocol = ? AND owner = ?",
                (model_id, dataset, protocol.key, owner),
            )

    def claims(self) -> list[dict[str, Any]]:
        """Every current claim: model_id, dataset, protocol, owner, claimed_at, expires_at."""
        return [dict(row) for row in self._query("SELECT * FROM claims ORDER BY model_id, dataset, protocol")]
