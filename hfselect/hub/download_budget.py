"""What a recall downloads from the Hub, said before anything is downloaded, and kept under a budget.

A proxy score needs the model's weights: against a repository of Hub models (a starter repository,
a crawl) a recall downloads every model that needs a proxy, gigabytes for BERT-sized ones. Before
the first download, :func:`plan_proxy_downloads` asks the Hub for each such model's files (one
``model_info(..., files_metadata=True)`` call per model, a few at a time) and adds up what loading
it reads: the safetensors weights (or the pickle weights with ``allow_pickle``), the config and the
tokenizer or image processor files, less what the local Hub cache already holds. Downloads go to
that usual cache (``HF_HUB_CACHE``), so a second recall downloads nothing again.

With a budget (``hfselect recall --max-download 2GB``): when the requested rule (hfselect's default,
every model ranked by its own proxy) would download more, the paper's representatives rule is used
instead, one proxy per cluster of models with similar benchmark results, and the plan says so;
when even that is over the budget, :class:`~hfselect.errors.HfSelectError` says what to do.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from hfselect.errors import HfSelectError

if TYPE_CHECKING:
    from hfselect.store import ModelRepository

__all__ = [
    "DownloadBudgetError",
    "DownloadPlan",
    "ModelDownload",
    "format_size",
    "hub_model_download",
    "parse_size",
    "plan_proxy_downloads",
]

_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$")

# Besides the weights, what from_pretrained reads for a model, its tokenizer or image processor.
LOADER_FILES = frozenset(
    {
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.txt",
        "vocab.json",
        "merges.txt",
        "spiece.model",
        "sentencepiece.bpe.model",
        "tokenizer.model",
        "preprocessor_config.json",
    }
)
_PICKLE_RE = re.compile(r"^pytorch_model(-\d+-of-\d+)?\.bin(\.index\.json)?$")
LOOKUP_THREADS = 8  # Hub metadata calls in flight at once: quick for 40 models, gentle on the Hub


def parse_size(text: str) -> int:
    """Bytes in a size such as ``2GB``, ``500MB``, ``1.5 GiB`` or ``1000`` (kB, MB, GB: powers of 1000).

    Raises:
        ValueError: not a size.
    """
    match = _SIZE_RE.match(str(text))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size: write e.g. 2GB, 500MB or 1.5GiB")
    size = float(match.group(1)) * _UNITS[unit]
    if not math.isfinite(size):  # hundreds of digits: int() of an infinite float would overflow
        shown = text if len(text) <= 24 else f"{text[:12]}...{text[-6:]}"
        raise ValueError(f"{shown!r} is too large a size: write e.g. 2GB, 500MB or 1.5GiB")
    return int(size)


def format_size(size: int) -> str:
    """``size`` bytes for people: ``1.3 GB``, ``420 MB``, ``12 kB``, ``0 B``."""
    for unit, factor in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= factor:
            value = size / factor
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{size} B"


@dataclasses.dataclass(frozen=True)
class ModelDownload:
    """What loading one Hub model for a proxy reads from the Hub.

    Attributes:
        model_id: the Hub id.
        total_bytes: the files loading it reads (weights, config, tokenizer or processor).
        cached_bytes: how much of that the local Hub cache already holds (at the current commit).
        weights: ``"safetensors"``, ``"pickle"`` (only with ``allow_pickle``) or ``"none"``: no
            weights hfselect may load, so the model will be skipped.
        pickle_bytes: the size of its pickle weights when it has no safetensors ones (0 otherwise).
        error: why its files could not be listed (not on the Hub, gated, unreachable), else None.
    """

    model_id: str
    total_bytes: int = 0
    cached_bytes: int = 0
    weights: str = "none"
    pickle_bytes: int = 0
    error: str | None = None

    @property
    def to_download(self) -> int:
        """Bytes still to download (0 for a model that will be skipped)."""
        return self.total_bytes - self.cached_bytes if self.loadable else 0

    @property
    def loadable(self) -> bool:
        """Whether the proxy can load it: listed, with weights hfselect may read."""
        return self.error is None and self.weights != "none"


def hub_model_download(
    model_id: str, *, allow_pickle: bool = False, token: str | bool | None = None
) -> ModelDownload:
    """Ask the Hub for ``model_id``'s files and size what a proxy would download (see the module docs)."""
    from huggingface_hub import HfApi, try_to_load_from_cache

    from hfselect.hub.client import call_with_retries, describe_hub_error

    try:
        info = call_with_retries(
            lambda: HfApi().model_info(model_id, files_metadata=True, token=token), max_time_s=30.0
        )
    except Exception as error:
        return ModelDownload(model_id, error=describe_hub_error(error, what=f"model {model_id}"))
    # from_pretrained reads the top folder only; subfolders hold other formats (onnx, ...).
    sizes = {s.rfilename: int(s.size or 0) for s in info.siblings or [] if "/" not in s.rfilename}
    if "model.safetensors" in sizes:
        weights = ["model.safetensors"]
    else:
        weights = [
            name for name in sizes if name.endswith(".safetensors") or name == "model.safetensors.index.json"
        ]
    pickle = [name for name in sizes if _PICKLE_RE.match(name)]
    kind = "safetensors" if weights else "pickle" if pickle and allow_pickle else "none"
    if kind == "pickle":
        weights = pickle
    files = [*weights, *(name for name in sizes if name in LOADER_FILES)]
    cached = sum(
        sizes[name]
        for name in files
        if isinstance(try_to_load_from_cache(model_id, name, revision=info.sha), str)
    )
    return ModelDownload(
        model_id,
        total_bytes=sum(sizes[name] for name in files),
        cached_bytes=cached,
        weights=kind,
        pickle_bytes=sum(sizes[name] for name in pickle) if kind == "none" else 0,
    )


def proxy_models(
    repository: ModelRepository,
    scope: str,
    threshold: float | str,
    k_largest: int,
    exclude: Collection[str] = (),
) -> list[str]:
    """The models a recall under ``scope`` computes a proxy for (as :func:`hfselect.recall`).

    ``exclude``: models the recall will fail to load, left out as the recall leaves them out (a
    representative left out hands its cluster to another member).
    """
    from hfselect.core.recall import models_needing_proxy, repository_candidates

    performance, new_models = repository_candidates(repository)
    performance = performance.drop(index=[m for m in exclude if m in performance.index])
    new_models = [m for m in new_models if m not in exclude]
    if performance.empty:
        return new_models
    return models_needing_proxy(performance, threshold, k_largest, scope, extra_models=new_models)  # type: ignore[arg-type]


class DownloadBudgetError(HfSelectError):
    """Over ``--max-download`` even with the representatives rule; ``plan`` holds the sizes."""

    def __init__(self, message: str, plan: DownloadPlan) -> None:
        super().__init__(message)
        self.plan = plan


@dataclasses.dataclass
class DownloadPlan:
    """The outcome of :func:`plan_proxy_downloads`: the scope to recall with and what it downloads."""

    requested_scope: str
    scope: str
    needed: dict[str, list[str]]  # scope -> the models needing a proxy under it
    downloads: dict[str, ModelDownload]  # Hub models looked up
    local: list[str]  # models loaded from local folders: nothing to download
    budget: int | None = None

    def hub_models(self, scope: str) -> list[ModelDownload]:
        """The Hub models a recall under ``scope`` needs, as looked up."""
        return [self.downloads[model] for model in self.needed[scope] if model in self.downloads]

    def size(self, scope: str) -> int:
        """Bytes a recall under ``scope`` downloads."""
        return sum(download.to_download for download in self.hub_models(scope))

    @property
    def switched(self) -> bool:
        """Whether the budget made the plan fall back to the representatives rule."""
        return self.scope != self.requested_scope

    def lines(self) -> list[str]:
        """What to tell the user before downloading (nothing when no Hub model needs a proxy)."""
        hub = self.hub_models(self.requested_scope)
        if not hub:
            return []
        from huggingface_hub import constants

        scope = self.requested_scope
        cached = sum(d.cached_bytes for d in hub if d.loadable)
        lines = [
            f"proxy downloads: {len(self.needed[scope])} models need a proxy score (scope {scope}), "
            f"{len(hub)} from the Hub: {format_size(self.size(scope))} to download"
            + (f" ({format_size(cached)} already in the Hub cache)" if cached else "")
            + f", into {constants.HF_HUB_CACHE}"
        ]
        no_weights = [d for d in hub if d.error is None and d.weights == "none"]
        if no_weights:
            extra = sum(d.pickle_bytes for d in no_weights)
            lines.append(
                f"  {len(no_weights)} {'has' if len(no_weights) == 1 else 'have'} no safetensors weights "
                "and will be skipped: "
                f"{_names(d.model_id for d in no_weights)}"
                + (
                    f" (--allow-pickle loads their pickle weights: {format_size(extra)} more)"
                    if extra
                    else ""
                )
            )
        failed = [d for d in hub if d.error is not None]
        if failed:
            lines.append(f"  {len(failed)} could not be looked up and will be skipped if they cannot be loaded: {failed[0].error}"
                         + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""))  # fmt: skip
        if self.switched:
            lines.append(
                f"  that is over --max-download {format_size(self.budget or 0)}: using the paper's representatives "
                f"rule instead (one proxy per cluster of models with similar benchmark results; the others are "
                f"ranked by their cluster's proxy): {len(self.hub_models(self.scope))} models, "
                f"{format_size(self.size(self.scope))} to download"
            )
        elif self.budget is not None and self.size(scope) > self.budget:
            fewest = "representatives"
            lines.append(
                f"  that is over --max-download {format_size(self.budget)}"
                + (
                    f", and so is the paper's representatives rule (one proxy per cluster): "
                    f"{len(self.hub_models(fewest))} models, {format_size(self.size(fewest))}"
                    if fewest in self.needed and scope != fewest
                    else ""
                )
            )
        elif self.budget is not None:
            lines.append(f"  within --max-download {format_size(self.budget)}")
        return lines


def _names(models: Iterable[str], shown: int = 5) -> str:
    names = list(models)
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def plan_proxy_downloads(
    repository: ModelRepository,
    *,
    scope: str,
    threshold: float | str,
    k_largest: int,
    max_download: int | None = None,
    allow_pickle: bool = False,
    token: str | bool | None = None,
    lookup: Callable[..., ModelDownload] = hub_model_download,
) -> DownloadPlan:
    """Size what a recall under ``scope`` downloads and pick the scope that fits ``max_download`` bytes.

    Models that load from a local folder download nothing. Over the budget, a scope other than
    ``"representatives"`` falls back to it (the paper's rule, one proxy per cluster).

    Raises:
        DownloadBudgetError: over the budget even with the representatives rule (``plan.lines()``
            still says what each rule would download).
        HfSelectError: a budget was set and no model's size could be looked up.
    """
    plan = DownloadPlan(scope, scope, {}, {}, [], max_download)

    def look_up(models: list[str]) -> None:
        hub = []
        for model in models:
            if model in plan.downloads or model in plan.local:
                continue
            if Path(repository.model_location(model)).is_dir():
                plan.local.append(model)
            else:
                hub.append(model)
        with ThreadPoolExecutor(max_workers=LOOKUP_THREADS) as pool:
            found = pool.map(lambda model: lookup(model, allow_pickle=allow_pickle, token=token), hub)
            plan.downloads.update({download.model_id: download for download in found})

    def settle(scope: str) -> None:
        # A model that cannot be loaded is skipped by the recall, and a representative's cluster then
        # goes to another member: list that one too, so the plan sizes what the recall downloads.
        unloadable: set[str] = set()
        while True:
            models = proxy_models(repository, scope, threshold, k_largest, exclude=unloadable)
            look_up(models)
            failing = {m for m in models if m in plan.downloads and not plan.downloads[m].loadable}
            if not failing:
                plan.needed[scope] = [*models, *sorted(unloadable)]
                return
            unloadable |= failing

    settle(scope)
    hub = plan.hub_models(scope)
    if max_download is None or not hub:
        return plan
    if all(download.error is not None for download in hub):
        raise HfSelectError(f"cannot check the download size against --max-download: {hub[0].error}")
    if plan.size(scope) <= max_download:
        return plan
    if scope != "representatives":
        settle("representatives")
        if plan.size("representatives") <= max_download:
            plan.scope = "representatives"
            return plan
    fewest = "representatives"
    raise DownloadBudgetError(
        f"the proxies would download {format_size(plan.size(fewest))} even with the paper's representatives rule "
        f"(one proxy per cluster: {len(plan.hub_models(fewest))} Hub models), over --max-download "
        f"{format_size(max_download)}: raise --max-download to at least {format_size(plan.size(fewest))}, "
        "pass a larger --threshold (fewer, larger clusters), or give precomputed scores with --proxy-scores FILE",
        plan,
    )
