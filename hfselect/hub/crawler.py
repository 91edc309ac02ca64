"""The Hub crawler: fills the model repository with candidate models and their metadata.

One paginated ``HfApi.list_models(expand=[...])`` listing brings every field the Hub can give in
bulk (sha, downloads, likes, gating, tags, card data, safetensors parameter counts, file list);
then only each model's ``config.json`` is downloaded, for what the listing does not give
(architecture, label mapping, hidden size). Reading a config is reading JSON: no model code is
ever imported or executed.

The crawl is incremental (a model whose commit ``sha`` is unchanged is not fetched again) and
resumable (each model is committed to the repository as soon as it is done, so a killed crawl
loses nothing and the next run skips what is stored).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
from tqdm.auto import tqdm

from hfselect.hub.client import call_with_retries, describe_hub_error, hub_error, is_transient
from hfselect.store import ModelRepository, utcnow
from hfselect.validation import check_optional_int

logger = logging.getLogger(__name__)

# Every field of the listing the crawler stores; asking for them here is what saves a
# per-model API call.
LISTING_FIELDS = [
    "sha",
    "author",
    "downloads",
    "likes",
    "gated",
    "pipeline_tag",
    "library_name",
    "tags",
    "cardData",
    "lastModified",
    "createdAt",
    "safetensors",
    "siblings",
]

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")

# Skip reasons that depend only on a commit's files: at an unchanged sha they still hold, so the
# config is not downloaded again to find them out.
CONTENT_SKIP_REASONS = frozenset({"custom code", "no config.json"})


@dataclass
class CrawlOptions:
    """What to crawl; mirrors the options of ``hfselect crawl``."""

    pipeline_tag: str | None = None
    library: str | None = "transformers"
    author: str | None = None
    search: str | None = None
    min_downloads: int | None = None
    license: str | None = None
    sort: str = "downloads"
    limit: int | None = None
    include_gated: bool = False
    allow_pickle: bool = False
    token: str | bool | None = None
    max_retry_time_s: float = 60.0

    def __post_init__(self) -> None:
        """Reject a download floor below 0 and a limit below 1 before the listing starts."""
        check_optional_int("min_downloads", self.min_downloads, minimum=0)
        check_optional_int("limit", self.limit, minimum=1)


@dataclass
class CrawlSummary:
    """What a crawl did: counts per outcome, skip reasons and failures."""

    listed: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed: dict[str, str] = field(default_factory=dict)
    listing_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view of the summary."""
        return {
            "listed": self.listed,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": dict(self.skipped),
            "failed": dict(self.failed),
            "listing_error": self.listing_error,
        }


def skip_reason(info: Any, options: CrawlOptions) -> str | None:
    """Why a listed model is not stored (gated, pickle-only weights, too few downloads), or ``None``."""
    if info.gated and not options.include_gated:
        return "gated"
    if options.min_downloads is not None and (info.downloads or 0) < options.min_downloads:
        return "below --min-downloads"
    if not has_safetensors(info) and not options.allow_pickle:
        if not any(name.endswith(PICKLE_SUFFIXES) for name in _filenames(info)):
            return "no weights"
        return "no safetensors weights (pass --allow-pickle)"
    return None


def has_safetensors(info: Any) -> bool:
    """Whether a listed model has safetensors weights (from the listing's safetensors or files)."""
    if getattr(info, "safetensors", None):
        return True
    return any(name.endswith(".safetensors") for name in _filenames(info))


def _filenames(info: Any) -> list[str]:
    return [sibling.rfilename for sibling in (getattr(info, "siblings", None) or [])]


def config_fields(config: dict[str, Any]) -> dict[str, Any]:
    """The model fields read from a ``config.json``: architecture, model type, labels, hidden size."""
    architectures = config.get("architectures") or []
    id2label = config.get("id2label")
    num_labels = len(id2label) if isinstance(id2label, dict) and id2label else config.get("num_labels")
    hidden_size = next(
        (config[key] for key in ("hidden_size", "d_model", "dim", "n_embd", "embed_dim") if key in config),
        None,
    )
    if hidden_size is None and isinstance(config.get("hidden_sizes"), list) and config["hidden_sizes"]:
        hidden_size = config["hidden_sizes"][-1]
    return {
        "architecture": architectures[0] if architectures else None,
        "model_type": config.get("model_type"),
        "num_labels": num_labels,
        "id2label": {str(key): value for key, value in id2label.items()}
        if isinstance(id2label, dict)
        else None,
        "hidden_size": hidden_size if isinstance(hidden_size, int) else None,
    }


def listing_fields(info: Any) -> dict[str, Any]:
    """The model fields taken from the listing entry itself."""
    card_data = info.card_data.to_dict() if getattr(info, "card_data", None) is not None else None
    tags = list(info.tags or [])
    license_name = (card_data or {}).get("license") or next(
        (tag.split(":", 1)[1] for tag in tags if tag.startswith("license:")), None
    )
    if isinstance(license_name, list):
        license_name = ",".join(map(str, license_name))
    safetensors = getattr(info, "safetensors", None)
    return {
        "sha": info.sha,
        "pipeline_tag": info.pipeline_tag,
        "library": info.library_name,
        "num_parameters": getattr(safetensors, "total", None),
        "license": license_name,
        "downloads": info.downloads,
        "likes": info.likes,
        "gated": str(info.gated) if info.gated else None,
        "has_safetensors": has_safetensors(info),
        "tags": tags,
        "card_data": card_data,
        "last_modified": info.last_modified.isoformat() if info.last_modified else None,
        "created_at": info.created_at.isoformat() if info.created_at else None,
    }


class Crawler:
    """Crawls the Hub into a :class:`ModelRepository`.

    Args:
        repository: where models are stored.
        options: what to list and which safety rules apply.
        api: the ``HfApi`` client (its endpoint and token are used); a default one when omitted.
    """

    def __init__(self, repository: ModelRepository, options: CrawlOptions, api: HfApi | None = None) -> None:
        self.repository = repository
        self.options = options
        self.api = api or HfApi(token=options.token)
        self._content_skips: dict[str, tuple[str | None, str]] = {}

    def list_models(self) -> Iterator[Any]:
        """The paginated listing, with the filters applied server-side where the Hub supports them."""
        filters = [self.options.library] if self.options.library else []
        if self.options.license:
            filters.append(f"license:{self.options.license}")
        return iter(
            self.api.list_models(
                filter=filters or None,
                author=self.options.author,
                search=self.options.search,
                pipeline_tag=self.options.pipeline_tag,
                sort=self.options.sort,
                limit=self.options.limit,
                expand=LISTING_FIELDS,
            )
        )

    def fetch_config(self, model_id: str, sha: str | None) -> dict[str, Any]:
        """Download and parse a model's ``config.json`` at the listed commit, with bounded retries."""

        def download() -> str:
            return hf_hub_download(
                model_id,
                "config.json",
                revision=sha,
                endpoint=self.api.endpoint,
                token=self.api.token,
            )

        path = call_with_retries(download, max_time_s=self.options.max_retry_time_s)
        with open(path, encoding="utf-8") as file:
            config = json.load(file)
        if not isinstance(config, dict):
            raise ValueError("config.json is not a JSON object")
        return config

    def listing(self) -> Iterator[Any]:
        """The listing, resumed where it broke off when a page fails after huggingface_hub's retries.

        huggingface_hub retries each page (honouring ``Retry-After``); when a page still fails
        midway, the listing is started again and the models already seen are skipped, within
        ``max_retry_time_s``. A failure before the first model is raised as is.
        """
        seen = 0
        deadline = time.monotonic() + self.options.max_retry_time_s
        while True:
            try:
                for position, info in enumerate(self.list_models()):
                    if position >= seen:
                        seen += 1
                        yield info
                return
            except Exception as error:
                if seen == 0 or not is_transient(error) or time.monotonic() > deadline:
                    raise
                logger.warning("listing interrupted after %d models (%s); resuming", seen, error)

    def crawl(
        self, *, progress: bool = True, on_model: Callable[[str, str], None] | None = None
    ) -> CrawlSummary:
        """Run the crawl and return its summary.

        A listing that fails before its first model raises :class:`~hfselect.errors.HubError`;
        after a partial listing, what was stored stays stored and the summary's ``listing_error``
        says why the crawl stopped early.
        """
        summary = CrawlSummary()
        known = self.repository.model_shas()
        self._content_skips = {
            model_id: (entry["sha"], entry["reason"])
            for model_id, entry in self.repository.crawl_log().items()
            if entry["status"] == "skipped" and entry["reason"] in CONTENT_SKIP_REASONS
        }
        bar = tqdm(total=self.options.limit, desc="crawling", unit="model", disable=not progress)
        listing = self.listing()
        try:
            while True:
                try:
                    info = next(listing)
                except StopIteration:
                    break
                except Exception as error:
                    if summary.listed == 0:
                        raise hub_error(error, what="the model listing") from error
                    summary.listing_error = describe_hub_error(error, what="the model listing")
                    break
                summary.listed += 1
                bar.update(1)
                bar.set_postfix_str(info.id, refresh=False)
                outcome = self._crawl_one(info, known, summary)
                if on_model is not None:
                    on_model(info.id, outcome)
                if self._below_min_downloads(info):
                    # Sorted by downloads, so every later model has fewer: stop listing.
                    break
        finally:
            bar.close()
        return summary

    def _below_min_downloads(self, info: Any) -> bool:
        return (
            self.options.sort == "downloads"
            and self.options.min_downloads is not None
            and (info.downloads or 0) < self.options.min_downloads
        )

    def _crawl_one(self, info: Any, known: dict[str, str | None], summary: CrawlSummary) -> str:
        model_id, sha = info.id, info.sha
        reason = skip_reason(info, self.options)
        if reason is not None:
            summary.skipped[reason] += 1
            self.repository.log_crawl(model_id, sha, "skipped", reason)
            return "skipped"
        if model_id in known and known[model_id] == sha and sha is not None:
            summary.unchanged += 1
            return "unchanged"
        previous_sha, previous_reason = self._content_skips.get(model_id, (None, None))
        if sha is not None and previous_sha == sha:
            summary.skipped[previous_reason] += 1
            return "skipped"
        try:
            config = self.fetch_config(model_id, sha)
        except EntryNotFoundError as error:
            if isinstance(error, LocalEntryNotFoundError):
                return self._fail(model_id, sha, summary, describe_hub_error(error, what=model_id))
            summary.skipped["no config.json"] += 1
            self.repository.log_crawl(model_id, sha, "skipped", "no config.json")
            return "skipped"
        except Exception as error:
            return self._fail(model_id, sha, summary, describe_hub_error(error, what=model_id))
        if config.get("auto_map"):
            # Loading it would need trust_remote_code, which hfselect never enables.
            summary.skipped["custom code"] += 1
            self.repository.log_crawl(model_id, sha, "skipped", "custom code")
            return "skipped"
        fields = {**listing_fields(info), **config_fields(config), "crawled_at": utcnow(), "source": "hub"}
        self.repository.upsert_model(model_id, **fields)
        self.repository.log_crawl(model_id, sha, "stored")
        if model_id in known:
            summary.updated += 1
            return "updated"
        summary.new += 1
        return "new"

    def _fail(self, model_id: str, sha: str | None, summary: CrawlSummary, reason: str) -> str:
        summary.failed[model_id] = reason
        self.repository.log_crawl(model_id, sha, "failed", reason)
        logger.warning("%s", reason)
        return "failed"


def crawl(
    repository: ModelRepository, options: CrawlOptions, *, api: HfApi | None = None, progress: bool = True
) -> CrawlSummary:
    """Crawl the Hub into ``repository`` with ``options``; see :class:`Crawler`."""
    return Crawler(repository, options, api=api).crawl(progress=progress)
