"""Where the bundled reference programs (`programs/*.npi`) are, installed or in a checkout."""

from __future__ import annotations

import importlib.resources
from pathlib import Path


def programs_dir() -> Path:
    """The folder holding addition.npi, sorting.npi, max.npi, canonicalize.npi, ...."""
    return Path(str(importlib.resources.files("npi_programs")))


def program_path(name: str) -> Path:
    """The path of a bundled program by file name (`"addition.npi"` or `"addition"`)."""
    if not name.endswith(".npi"):
        name += ".npi"
    path = programs_dir() / name
    if not path.is_file():
        available = ", ".join(sorted(p.name for p in programs_dir().glob("*.npi")))
        raise FileNotFoundError(f"no bundled program {name} (bundled: {available})")
    return path
