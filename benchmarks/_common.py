"""What every benchmark script shares: the machine's description and its own section of
``docs/benchmarks.md`` (between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``)."""

from __future__ import annotations

import platform
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Speed figures measured by the scripts in `benchmarks/` (`python benchmarks/run_all.py` runs "
    "them all). Each script rewrites its own section.\n"
)


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of benchmark ``name``'s section."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (or the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def write_section(text: str, name: str, path: Path = DOCS) -> Path:
    """Replace benchmark ``name``'s section of ``path`` with ``text`` (which carries the
    markers), or append it."""
    start, end = markers(name)
    current = path.read_text() if path.exists() else HEADER
    if start in current and end in current:
        before, rest = current.split(start, 1)
        updated = before + text + rest.split(end, 1)[1]
    else:
        updated = current.rstrip("\n") + "\n\n" + text + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(updated)
    return path
