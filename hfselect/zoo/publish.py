"""Publishing a built zoo to a Hub (a local test server, or the real one)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from hfselect.zoo.manifest import ZooManifest

if TYPE_CHECKING:  # imported lazily at run time: torch/transformers are slow to import
    import huggingface_hub


def publish_zoo(
    directory: str | Path,
    *,
    organization: str = "hfselect-zoo",
    api: huggingface_hub.HfApi | None = None,
    private: bool = False,
) -> list[str]:
    """Push every model, dataset and pre-training source of a built zoo to a Hub.

    Each folder becomes one repository, ``<organization>/<name>`` (models as model repositories,
    target and source datasets as dataset repositories), created if missing and updated with one
    commit otherwise. Model cards name their training data as ``<organization>/<source>``, so the
    links resolve on that Hub. ``api`` selects the Hub (endpoint and token); by default the real Hub
    with the user's login. Returns the repository ids, models first.

    Raises:
        HubError: A repository could not be created or uploaded (one line, naming it).
    """
    from huggingface_hub import HfApi, ModelCard

    from hfselect.errors import HubError

    manifest = ZooManifest.load(directory)
    api = api if api is not None else HfApi()
    jobs = [(m.name, "model", manifest.model_path(m.name)) for m in manifest.models] + [
        (d.name, "dataset", manifest.dataset_path(d.name)) for d in [*manifest.datasets, *manifest.sources]
    ]
    pushed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hfselect-zoo-publish-") as scratch:
        for name, repo_type, folder in jobs:
            repo_id = f"{organization}/{name}"
            if repo_type == "model":
                # Upload a copy whose card points at the published source datasets.
                card = ModelCard.load(folder / "README.md")
                if card.data.datasets:
                    card.data.datasets = [f"{organization}/{d}" for d in card.data.datasets]
                staged = Path(scratch) / name
                shutil.copytree(folder, staged)
                card.save(staged / "README.md")
                folder = staged
            try:
                api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
                api.upload_folder(
                    repo_id=repo_id,
                    repo_type=repo_type,
                    folder_path=str(folder),
                    commit_message=f"Upload {name} from the hfselect zoo",
                )
            except Exception as error:  # HTTP errors, refused or dropped connections
                raise HubError(f"cannot publish {repo_type} {repo_id} to {api.endpoint}: {error}") from error
            pushed.append(repo_id)
    return pushed
