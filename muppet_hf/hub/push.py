"""Upload of Muppet exports to the Hugging Face Hub, with the checks every upload path shares.

[`push_export`] uploads a folder written by [`~muppet_hf.hub.export_checkpoint`] (or exports a checkpoint folder
first) with `HfApi.upload_folder`: `muppet-hf push` calls it. It is named apart from the `push_to_hub` that
`MuppetForMultiTask` inherits from `PreTrainedModel` and `MuppetTrainer` from `Trainer`. Those refuse a canary model
too, and `MuppetTrainer.push_to_hub` runs [`check_upload_folder`] on the `output_dir` it uploads.
`MuppetForMultiTask.push_to_hub` uploads what `save_pretrained` writes (safetensors only in transformers 5), so the
canary mark in its config is the one check it needs.
"""

import importlib
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi, ModelCard, get_token
from huggingface_hub.errors import OfflineModeIsEnabled
from huggingface_hub.utils import filter_repo_objects, validate_repo_id

from ..io_utils import read_json
from .export import check_no_pickles, export_checkpoint
from .model_card import check_model_card
from .run_metadata import RUN_METADATA_FILE, check_type, read_run_metadata


@dataclass
class PushResult:
    """What [`push_export`] uploaded, or would upload with `dry_run=True`.

    Args:
        repo_id (`str`): the target repository.
        files (`list[tuple[str, int]]`): `(path in repo, size in bytes)` of every file, sorted.
        revision (`str`, *optional*): the target branch; `None` for the default branch.
        private (`bool`): whether a newly created repository is private.
        create_pr (`bool`): whether the upload opens a pull request.
        dry_run (`bool`): whether nothing was uploaded.
        url (`str`, *optional*): the commit or pull-request URL after an upload.
    """

    repo_id: str
    files: list[tuple[str, int]]
    revision: str | None = None
    private: bool = False
    create_pr: bool = False
    dry_run: bool = False
    url: str | None = None


def is_export_folder(path: str | os.PathLike) -> bool:
    """True for folders written by [`export_checkpoint`] (their `muppet_run.json` has an `export` field)."""
    run_path = Path(path) / RUN_METADATA_FILE
    return run_path.is_file() and "export" in check_type(read_json(run_path), dict, str(run_path), "(top level)")


def list_upload_files(folder: str | os.PathLike) -> list[tuple[str, int]]:
    """`(relative path, size)` of every file `upload_folder` would send from an export folder, sorted."""
    folder = Path(folder)
    return sorted(
        (path.relative_to(folder).as_posix(), path.stat().st_size) for path in folder.rglob("*") if path.is_file()
    )


def _check_export_for_upload(folder: Path, allow_canary: bool):
    for required in ("config.json", "README.md", RUN_METADATA_FILE):
        if not (folder / required).is_file():
            raise ValueError(f"{folder}: {required} is missing; re-export the checkpoint with `muppet-hf export`")
    if not list(folder.glob("*.safetensors")):
        raise ValueError(f"{folder}: no *.safetensors weights to upload")
    check_model_card(folder / "README.md")
    check_upload_folder(folder, allow_canary)


def check_upload_folder(
    folder: str | os.PathLike,
    allow_canary: bool,
    token: str | None = None,
    ignore_patterns: Sequence[str] | None = None,
):
    """The checks every upload of a folder passes, whichever path uploads it ([`push_export`],
    `MuppetTrainer.push_to_hub`): no pickled file, no model trained on BIG-bench (canary) data unless `allow_canary`
    (then a warning), and no text file that holds the Hub `token`.

    A model is a canary one when its `config.json`, its `muppet_run.json` or its card's tags say so; files matching
    `ignore_patterns` (as `HfApi.upload_folder` takes them) are not uploaded and not checked.

    Raises:
        `ValueError` naming the folder (or file) and what was found.
    """
    folder = Path(folder)
    check_no_pickles(folder, ignore_patterns)
    has_config = (folder / "config.json").is_file()
    metadata = read_run_metadata(folder) if has_config else None
    card_tags = ModelCard.load(folder / "README.md").data.tags or [] if (folder / "README.md").is_file() else []
    if (metadata is not None and metadata.is_canary) or "canary" in card_tags:
        tasks = (metadata.canary_tasks if metadata is not None else []) or [
            "(flagged in config.json, the run metadata or the card)"
        ]
        message = (
            f"{folder} was trained on BIG-bench (canary) data, tasks {tasks}: BIG-bench asks that models trained on "
            "its tasks not be published"
        )
        if not allow_canary:
            raise ValueError(f"{message}. Refusing to upload; pass --allow-canary (allow_canary=True) to override")
        warnings.warn(
            f"{message}. Uploading anyway because allow_canary=True; keep the repository private.",
            UserWarning,
            stacklevel=3,
        )
    if token:
        _check_token_not_in_files(folder, token, ignore_patterns)


def _check_token_not_in_files(folder: Path, token: str, ignore_patterns: Sequence[str] | None = None):
    # Weights are binary and large; the token could only have leaked into the text files (config, card, metadata).
    needle = token.encode()
    files = [path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()]
    for name in filter_repo_objects(files, ignore_patterns=ignore_patterns):
        if not name.endswith(".safetensors") and needle in (folder / name).read_bytes():
            raise ValueError(f"{folder / name}: contains the Hugging Face token; refusing to upload it")


def push_export(
    checkpoint_or_export: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    dry_run: bool = False,
    allow_canary: bool = False,
    heads: str | Sequence[str] = "all",
    commit_message: str | None = None,
    token: str | None = None,
    api: HfApi | None = None,
) -> PushResult:
    """Uploads an export folder (or exports a checkpoint folder first) to the Hub with `HfApi`.

    Creates the repository if needed (`create_repo`, `exist_ok=True`), the branch `revision` if given, then calls
    `upload_folder`. The token comes from `token`, else from `HF_TOKEN` or the stored `hf auth login`; it is never
    printed nor written into a file, and the upload is refused if a text file of the folder contains it.

    Args:
        checkpoint_or_export (`str` or `os.PathLike`): an [`export_checkpoint`] folder, or a checkpoint folder that
            is exported (with `heads`) into a temporary folder first.
        repo_id (`str`): `namespace/name` on the Hub.
        private (`bool`, *optional*, defaults to `False`): create the repository private.
        revision (`str`, *optional*): branch to upload to, created if missing.
        create_pr (`bool`, *optional*, defaults to `False`): open a pull request instead of committing.
        dry_run (`bool`, *optional*, defaults to `False`): list the files only; no token or network needed.
        allow_canary (`bool`, *optional*, defaults to `False`): upload a model trained on BIG-bench data anyway
            (with a warning).
        heads (`str` or `Sequence[str]`, *optional*, defaults to `"all"`): heads to export a checkpoint folder with.
        commit_message (`str`, *optional*): the commit message.
        token (`str`, *optional*): a Hub token; prefer the environment or the stored login.
        api (`HfApi`, *optional*): the client to use (e.g. one pointed at another endpoint); defaults to `HfApi()`.

    Raises:
        `ValueError` for a canary model, a folder that is not a clean export or a missing token; `ConnectionError`
        when the Hub cannot be reached; `huggingface_hub.errors.HfHubHTTPError` when the Hub refuses the request.
    """
    validate_repo_id(repo_id)
    source = Path(checkpoint_or_export)
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: not a folder")
    with tempfile.TemporaryDirectory(prefix="muppet-push-") as scratch:
        folder = source
        if not is_export_folder(source):
            folder = export_checkpoint(source, Path(scratch) / repo_id.split("/")[-1], heads=heads, repo_id=repo_id)
        _check_export_for_upload(folder, allow_canary)
        result = PushResult(
            repo_id=repo_id,
            files=list_upload_files(folder),
            revision=revision,
            private=private,
            create_pr=create_pr,
            dry_run=dry_run,
        )
        if dry_run:
            return result
        api = api or HfApi()
        token = token or api.token or get_token()
        if not token:
            raise ValueError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (needed to upload)")
        _check_token_not_in_files(folder, token)
        try:
            # `private=None` rather than False lets an organisation's default visibility apply.
            api.create_repo(repo_id, token=token, private=private or None, exist_ok=True, repo_type="model")
            if revision is not None and not create_pr:
                api.create_branch(repo_id, branch=revision, token=token, exist_ok=True)
            commit = api.upload_folder(
                repo_id=repo_id,
                folder_path=folder,
                token=token,
                repo_type="model",
                revision=revision,
                create_pr=create_pr,
                commit_message=commit_message or f"Upload Muppet checkpoint ({len(result.files)} files)",
            )
        except (*_transport_errors(), OfflineModeIsEnabled) as err:
            raise ConnectionError(
                f"cannot reach the Hugging Face Hub at {api.endpoint} to upload {repo_id} ({err}); check the network, "
                "HF_ENDPOINT and HF_HUB_OFFLINE. No commit was confirmed; push again once the Hub is reachable."
            ) from err
        result.url = commit.pr_url if create_pr and commit.pr_url else commit.commit_url
        return result


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The network-failure exceptions of the HTTP client that `huggingface_hub` uses (httpx2, httpx or requests, by version)."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    candidates = (
        ("httpx2", "TransportError"),
        ("httpx", "TransportError"),
        ("requests.exceptions", "ConnectionError"),
    )
    for module_name, attribute in candidates:
        try:
            errors.append(getattr(importlib.import_module(module_name), attribute))
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


__all__ = ["PushResult", "check_upload_folder", "is_export_folder", "list_upload_files", "push_export"]
