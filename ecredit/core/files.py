"""Small files the pipeline writes whole or not at all (markers, gate results, kept attempts)."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def write_json_atomic(path: Path, obj, *, pretty: bool = False) -> None:
    """Write ``obj`` as JSON to ``path`` through a hidden temporary file in the same folder and an
    atomic rename: a reader sees the old file or the new one, never a part (a crash leaves only a
    dot-file no reader opens)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
    text = (
        json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True) if pretty else json.dumps(obj, ensure_ascii=False)
    )
    tmp.write_text(text, "utf-8")
    os.replace(tmp, path)


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """One process at a time inside the block: an ``flock`` on ``path`` (created if missing), waited
    for; the kernel releases it when the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock
