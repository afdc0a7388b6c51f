"""Reading and writing JSON files: errors that name the file, and writes that are atomic."""

import json
import os
from pathlib import Path
from typing import Any


def read_json(path: str | os.PathLike) -> Any:
    """The JSON document in `path`.

    Raises:
        `ValueError` naming the file when it does not parse.
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from err


def write_json(path: str | os.PathLike, payload: Any, *, sort_keys: bool = False) -> Path:
    """Writes `payload` as indented JSON to `path` atomically; returns the path.

    The text goes to a temporary file beside `path`, which then replaces it in one rename (`os.replace`), as
    checkpoints are written: a reader, or a run that resumes after a kill, sees the old file or the new one, never
    half of one. The payload is serialised before anything is written, so one that is not JSON leaves no file.

    Raises:
        `TypeError` naming the file when `payload` holds something JSON cannot represent.
    """
    path = Path(path)
    try:
        text = json.dumps(payload, indent=2, sort_keys=sort_keys) + "\n"
    except TypeError as err:
        raise TypeError(f"{path}: cannot be written as JSON: {err}") from err
    # Hidden and named by process, so concurrent writers of one folder never share a temporary file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


__all__ = ["read_json", "write_json"]
