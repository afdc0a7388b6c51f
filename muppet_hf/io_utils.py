"""Reading JSON files with errors that name the file."""

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


__all__ = ["read_json"]
