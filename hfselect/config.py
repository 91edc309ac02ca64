"""Every default of hfselect, in one place.

The command line, the Python API (`hfselect.recall`, `hfselect.select`, `coarse_recall`), the
callback, the demo and the benchmarks read their defaults from here, so "what does hfselect do with
no flags" has one answer. The values were measured on the synthetic zoo and the paper's released
matrices; benchmarks/README.md says how.
"""

from __future__ import annotations

from typing import Literal, get_args

RecallScope = Literal["evidence", "representatives", "all", "every"]
HalvingOrder = Literal["rank_sum", "predicted", "score"]
HALVING_ORDERS: tuple[HalvingOrder, ...] = get_args(HalvingOrder)

# Coarse recall.
DEFAULT_SCOPE: RecallScope = "evidence"  # proxy rank fused with similarity-weighted benchmark evidence
DEFAULT_TOP_K = 15  # the paper recalls 15 models
DEFAULT_PROXY = "logme"  # the proxy of `hfselect recall` and of `score_models`
DEFAULT_SAMPLE_SIZE = 1000  # target examples a proxy sees

# Clustering of models by their benchmark results (the paper's NLP threshold).
DEFAULT_THRESHOLD = 0.09
DEFAULT_K_LARGEST = 5

# Fine selection.
DEFAULT_CANDIDATES = 4  # recalled models that fine selection trains
DEFAULT_PREDICTOR = "neighbours"  # the convergence-trend predictor
# "auto": each candidate's own predictor's error bound at that epoch (DEFAULT_MARGIN_COVERAGE), so
# a noisy early prediction cannot call a late bloomer a low performer; 0 is the paper's rule.
DEFAULT_MARGIN: float | str = "auto"
# "auto" margins cover this share of the predictor's held-out errors (their 90th percentile): on
# Quick-Tune's real curves the errors are heavy-tailed and a margin of their mean dropped the best
# recalled run (benchmarks/README.md, "Real learning curves").
DEFAULT_MARGIN_COVERAGE = 0.9
# How a synchronous round orders its candidates before dropping the worse half: by the sum of each
# one's rank by current score and by predicted final score. On Quick-Tune's real curves the
# prediction after 3 or 6 epochs orders a dataset's runs no better than their current score, and
# the two err differently, so their rank sum orders better than either (benchmarks/README.md,
# "Real learning curves"); "predicted" is the rule before, "score" plain successive halving's.
DEFAULT_HALVING_ORDER: HalvingOrder = "rank_sum"
# A synchronous round keeps the best 1/reduction_factor of its candidates (rounded up): the worse
# half is dropped, as in Jamieson and Talwalkar's successive halving.
DEFAULT_REDUCTION_FACTOR = 2
DEFAULT_SCHEDULE = "sync"
# The callback, for a model without benchmark curves: once this many of the study's runs have
# finished, their curves (learning curves of the target itself) give a trend as well.
STUDY_TREND_MIN_RUNS = 3
DEFAULT_OUTPUT_DIR = "hfselect-selection"

# The fine-tuning protocol of `bench` and `select`.
DEFAULT_EPOCHS = 5
DEFAULT_LEARNING_RATE = 5e-5
DEFAULT_BATCH_SIZE = 32
DEFAULT_MAX_LENGTH = 128
DEFAULT_SEED = 0
DEFAULT_METRIC = "accuracy"

# `hfselect demo`: the zoo's tiny models need a far larger learning rate than BERT.
DEMO_EPOCHS = 3
DEMO_LEARNING_RATE = 2e-3
DEMO_MAX_LENGTH = 32
DEMO_SAMPLE_SIZE = 256
# The small zoo leaves 5 benchmark datasets beside the target: with k_largest=5 no two models would
# be comparable (they must share more than k datasets), so the demo clusters on 4.
DEMO_K_LARGEST = 4
DEMO_OUTPUT_DIR = "hfselect-demo"
