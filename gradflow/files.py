"""Files gradflow writes: atomically (a temporary sibling renamed over the target), and JSON
read back with errors that name the file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gradflow.errors import CheckpointError

__all__ = ["read_json", "write_atomic", "write_json"]


def write_atomic(path: str | Path, write: Callable[[Any], None], mode: str = "wb") -> Path:
    """Write a file through ``write(file object)`` into a temporary sibling, then rename it.

    A failure (a full disk, a read-only file system) leaves the previous file, if any, intact
    and removes the partial temporary file; the ``OSError`` is re-raised with the path.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            write(fh)
        tmp.replace(path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if (isinstance(exc, OSError) and exc.errno is not None
                and exc.filename in (None, str(tmp))):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    return path


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically (:func:`write_atomic`)."""
    text = json.dumps(data, indent=2)
    return write_atomic(path, lambda fh: fh.write(text), mode="w")


def read_json(path: str | Path) -> dict[str, Any]:
    """Read a JSON object written by gradflow (a summary), naming the file if it is not one.

    Raises
    ------
    CheckpointError
        Missing, unreadable, not UTF-8, not JSON, or not a JSON object.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not a JSON file written by gradflow ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(
            f"{path} holds a JSON {type(data).__name__}, not the object gradflow writes"
        )
    return data
