"""The repository's schema: its tables, their columns and the migrations that create them.

Declarations only; :mod:`hfselect.store.connection` opens a file and applies :data:`MIGRATIONS`.
"""

from __future__ import annotations

import re

# Columns stored as JSON text in SQLite and exported as JSON strings (Parquet stays flat and the
# Hub's dataset viewer shows it as is).
JSON_COLUMNS = {"id2label", "tags", "card_data", "label_names", "config", "details"}

MODEL_COLUMNS = (
    "model_id",
    "sha",
    "architecture",
    "model_type",
    "pipeline_tag",
    "library",
    "num_parameters",
    "num_labels",
    "id2label",
    "hidden_size",
    "license",
    "downloads",
    "likes",
    "gated",
    "has_safetensors",
    "tags",
    "card_data",
    "last_modified",
    "created_at",
    "crawled_at",
    "source",
    "location",
)

# Forward migrations: entry i brings a file from schema version i to i + 1. Never edit a released
# entry; append a new one. ``PRAGMA user_version`` holds the file's version.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE models (
        model_id TEXT PRIMARY KEY,
        sha TEXT,
        architecture TEXT,
        model_type TEXT,
        pipeline_tag TEXT,
        library TEXT,
        num_parameters INTEGER,
        num_labels INTEGER,
        id2label TEXT,
        hidden_size INTEGER,
        license TEXT,
        downloads INTEGER,
        likes INTEGER,
        gated TEXT,
        has_safetensors INTEGER,
        tags TEXT,
        card_data TEXT,
        last_modified TEXT,
        created_at TEXT,
        crawled_at TEXT,
        source TEXT NOT NULL DEFAULT 'hub'
    );
    CREATE TABLE datasets (
        name TEXT PRIMARY KEY,
        num_labels INTEGER,
        label_names TEXT,
        modality TEXT,
        fingerprint TEXT,
        train_size INTEGER,
        validation_size INTEGER,
        test_size INTEGER,
        added_at TEXT
    );
    CREATE TABLE results (
        model_id TEXT NOT NULL REFERENCES models(model_id) ON DELETE CASCADE,
        dataset TEXT NOT NULL REFERENCES datasets(name) ON DELETE CASCADE,
        protocol TEXT NOT NULL,
        metric TEXT NOT NULL,
        score REAL,
        status TEXT NOT NULL DEFAULT 'ok',
        error TEXT,
        epochs INTEGER,
        learning_rate REAL,
        batch_size INTEGER,
        seed INTEGER,
        train_samples INTEGER,
        eval_samples INTEGER,
        max_length INTEGER,
        duration_s REAL,
        created_at TEXT,
        PRIMARY KEY (model_id, dataset, protocol)
    );
    CREATE TABLE curves (
        model_id TEXT NOT NULL REFERENCES models(model_id) ON DELETE CASCADE,
        dataset TEXT NOT NULL REFERENCES datasets(name) ON DELETE CASCADE,
        protocol TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        score REAL,
        PRIMARY KEY (model_id, dataset, protocol, epoch)
    );
    CREATE TABLE proxy_scores (
        model_id TEXT NOT NULL,
        model_sha TEXT NOT NULL DEFAULT '',
        dataset TEXT NOT NULL,
        dataset_fingerprint TEXT NOT NULL,
        proxy TEXT NOT NULL,
        sample_size INTEGER NOT NULL,
        seed INTEGER NOT NULL DEFAULT 0,
        score REAL,
        seconds REAL,
        computed_at TEXT,
        PRIMARY KEY (model_id, model_sha, dataset_fingerprint, proxy, sample_size, seed)
    );
    CREATE TABLE studies (
        study_id TEXT PRIMARY KEY,
        target TEXT,
        config TEXT,
        status TEXT,
        created_at TEXT,
        updated_at TEXT
    );
    CREATE TABLE study_trials (
        study_id TEXT NOT NULL REFERENCES studies(study_id) ON DELETE CASCADE,
        model_id TEXT NOT NULL,
        state TEXT NOT NULL,
        epochs_trained INTEGER,
        final_score REAL,
        predicted_final REAL,
        wall_time_s REAL,
        reason TEXT,
        details TEXT,
        updated_at TEXT,
        PRIMARY KEY (study_id, model_id)
    );
    CREATE TABLE study_curves (
        study_id TEXT NOT NULL REFERENCES studies(study_id) ON DELETE CASCADE,
        model_id TEXT NOT NULL,
        epoch REAL NOT NULL,
        score REAL,
        predicted_final REAL,
        recorded_at TEXT,
        PRIMARY KEY (study_id, model_id, epoch)
    );
    CREATE TABLE crawl_log (
        model_id TEXT PRIMARY KEY,
        sha TEXT,
        status TEXT NOT NULL,
        reason TEXT,
        crawled_at TEXT
    );
    CREATE INDEX results_dataset ON results(dataset);
    CREATE INDEX curves_pair ON curves(model_id, dataset);
    """,
    # v2: where a model benchmarked from a local folder lives, so recall and select can load it.
    """
    ALTER TABLE models ADD COLUMN location TEXT;
    """,
    # v3: claims, so concurrent bench workers never train one pair twice (a claim expires unless
    # its worker renews it, so a crashed worker's pairs are taken over); a study's total wall time.
    """
    CREATE TABLE claims (
        model_id TEXT NOT NULL,
        dataset TEXT NOT NULL,
        protocol TEXT NOT NULL,
        owner TEXT NOT NULL,
        claimed_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (model_id, dataset, protocol)
    );
    ALTER TABLE studies ADD COLUMN wall_time_s REAL;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def tables_at_version(version: int) -> frozenset[str]:
    """The tables a repository file at schema ``version`` holds (those its migrations created).

    What tells an hfselect repository from another application's SQLite file, before anything
    is written to it.
    """
    created = re.findall(r"CREATE TABLE (\w+)", "".join(MIGRATIONS[: max(0, min(version, SCHEMA_VERSION))]))
    return frozenset(created)


# Export order: parents before children, so an import never breaks a foreign key.
TABLES: tuple[str, ...] = (
    "models",
    "datasets",
    "results",
    "curves",
    "proxy_scores",
    "studies",
    "study_trials",
    "study_curves",
    "crawl_log",
)
