"""Regenerate the report screenshots in ``docs/img/`` (``nox -s screenshots``).

The pictures in the documentation are taken from a real report, never drawn by hand: this
script generates the demo's stand-in ASL folders (small), trains a resnet18 from scratch
(``pretrained=False``, offline), writes a report, opens it in headless Chromium through
Playwright and captures parts of the page. Each PNG is reduced to a 256-colour palette (and,
if it is still too large, scaled down) so that it stays under ``--max-kb``.

    python scripts/screenshots.py                      # writes docs/img/report-*.png
    python scripts/screenshots.py --keep work/         # keep the data, model and report

Chromium: ``--chromium PATH``, else ``$CHROMIUM``, else ``chromium`` on the PATH, else the
browser Playwright installed. Chromium runs without network access features and with its own
temporary profile; the report itself loads nothing from any host.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "img"
VIEWPORT = {"width": 1366, "height": 900}
MARGIN = 12  # pixels of page kept around each captured element
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@dataclass(frozen=True)
class Shot:
    """One picture: the page element to capture and the most of its height to keep."""

    file_name: str
    selector: str
    max_height: int


SHOTS = (
    Shot("report-top.png", "body", 1000),
    Shot("report-per-class.png", "#per-class", 1500),
    Shot("report-confusion.png", "#confusion", 1100),
    Shot("report-cam.png", "#cam", 1300),
    Shot("report-ledger.png", "#ledger", 900),
)


# The element's box in page coordinates (Playwright's bounding_box is relative to the viewport).
_PAGE_BOX = """selector => {
  const element = document.querySelector(selector);
  if (!element) return null;
  const box = element.getBoundingClientRect();
  return {x: box.left + window.scrollX, y: box.top + window.scrollY,
          width: box.width, height: box.height};
}"""


def make_report(work: Path) -> Path:
    """Run ``asl-eval demo`` (generated data, resnet18 from scratch) into ``work``."""
    from asl_eval.demo import run_demo

    files = run_demo(out=work / "reports", work_dir=work)
    return Path(files.html)


def find_chromium(explicit: str | None) -> str | None:
    """The Chromium to drive, or None for the one Playwright installed."""
    for candidate in (explicit, os.environ.get("CHROMIUM"), shutil.which("chromium")):
        if candidate:
            return candidate
    return None


def shrink_png(data: bytes, *, max_bytes: int) -> bytes:
    """A 256-colour, optimised PNG of ``data``, scaled down until it fits in ``max_bytes``."""
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB")
    while True:
        palette = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        buffer = io.BytesIO()
        palette.save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= max_bytes or image.width < 400:
            return buffer.getvalue()
        image = image.resize((int(image.width * 0.85), int(image.height * 0.85)), Image.LANCZOS)


def capture(html: Path, out: Path, *, chromium: str | None, max_bytes: int) -> list[Path]:
    """Open the report and write one PNG per entry of :data:`SHOTS`."""
    from playwright.sync_api import sync_playwright

    written = []
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
            device_scale_factor=1,
            offline=True,
        )
        page = context.new_page()
        page.goto(html.as_uri())
        page.wait_for_load_state("load")
        for shot in SHOTS:
            box = page.evaluate(_PAGE_BOX, shot.selector)
            if box is None:
                raise SystemExit(f"{shot.selector} is not on the page {html}")
            x, y = max(box["x"] - MARGIN, 0), max(box["y"] - MARGIN, 0)
            clip = {
                "x": x,
                "y": y,
                "width": min(box["width"] + 2 * MARGIN, VIEWPORT["width"] - x),
                "height": min(box["height"] + 2 * MARGIN, shot.max_height),
            }
            png = page.screenshot(clip=clip, full_page=True)
            path = out / shot.file_name
            path.write_bytes(shrink_png(png, max_bytes=max_bytes))
            written.append(path)
        context.close()
    return written


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, make the report, capture it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the PNGs")
    parser.add_argument("--chromium", help="the Chromium executable to drive")
    parser.add_argument("--keep", type=Path, help="keep the data, model and report here")
    parser.add_argument("--html", type=Path, help="capture this report instead of making one")
    parser.add_argument("--max-kb", type=int, default=250, help="largest PNG to write")
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="asl-eval-screenshots-") as temporary:
        work = args.keep or Path(temporary)
        html = args.html or make_report(work)
        written = capture(
            html, args.out, chromium=find_chromium(args.chromium), max_bytes=args.max_kb * 1024
        )
    for path in written:
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
              f"{path.stat().st_size // 1024} kB", file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
