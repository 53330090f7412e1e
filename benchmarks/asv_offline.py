"""Make a published asv dashboard work offline.

``asv publish`` writes ``index.html`` with ``<script>``/``<link>`` tags pointing at
public CDNs (jQuery, Flot, Bootstrap, ...): without internet access the page
loads but shows nothing.  This script copies the same library versions, kept in
``benchmarks/third_party/asv_assets/``, into ``<html_dir>/vendor/`` and rewrites those tags to
the local copies (dropping the CDN-specific ``integrity``/``crossorigin``
attributes).  It fails loudly if the page references a CDN file it does not
know, so a future asv version cannot silently break the offline dashboard.

Usage (from the repository root, after ``asv publish``)::

    python benchmarks/asv_offline.py [HTML_DIR]      # default: .asv/html
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "third_party" / "asv_assets"

#: CDN URL suffix -> local path under ``vendor/``.
LOCAL = {
    "/jquery-3.3.1.min.js": "vendor/js/jquery-3.3.1.min.js",
    "/flot/0.8.3/jquery.flot.min.js": "vendor/js/jquery.flot-0.8.3.js",
    "/flot/0.8.3/jquery.flot.time.min.js": "vendor/js/jquery.flot.time-0.8.3.js",
    "/flot/0.8.3/jquery.flot.selection.min.js": "vendor/js/jquery.flot.selection-0.8.3.js",
    "/flot/0.8.3/jquery.flot.categories.min.js": "vendor/js/jquery.flot.categories-0.8.3.js",
    "/js/jquery.flot.orderBars.js": "vendor/js/jquery.flot.orderBars-1.0.0.js",
    "/stupidtable.min.js": "vendor/js/stupidtable-1.1.3.min.js",
    "/js/md5.min.js": "vendor/js/md5-2.19.0.min.js",
    "/dist/js/bootstrap.min.js": "vendor/js/bootstrap-3.1.1.min.js",
    "/dist/css/bootstrap.min.css": "vendor/css/bootstrap-3.1.1.min.css",
}

_TAG = re.compile(r"<(script|link)\b[^>]*?\b(?:src|href)=\"(https?://[^\"]+)\"[^>]*>", re.S)
_CDN_ATTRS = re.compile(r"\s+(?:integrity|crossorigin|referrerpolicy)=\"[^\"]*\"")


def _local_for(url: str) -> str:
    for suffix, local in LOCAL.items():
        if url.endswith(suffix):
            return local
    raise ValueError(
        f"the dashboard loads {url}, which has no local copy in {ASSETS}; "
        "add the file there and to LOCAL in benchmarks/asv_offline.py"
    )


def rewrite(page: str) -> tuple[str, int]:
    """``page`` with every CDN script/stylesheet tag pointing at ``vendor/``; and the count."""
    count = 0

    def repl(match: re.Match) -> str:
        nonlocal count
        tag, url = match.group(0), match.group(2)
        if match.group(1) == "link" and 'rel="stylesheet"' not in tag:
            return tag  # e.g. an alternate feed: not a resource the page needs
        count += 1
        return _CDN_ATTRS.sub("", tag.replace(url, _local_for(url)))

    return _TAG.sub(repl, page), count


def make_offline(html_dir: str | Path) -> int:
    """Copy the assets to ``html_dir/vendor``, rewrite the pages; returns the tags rewritten."""
    html_dir = Path(html_dir)
    index = html_dir / "index.html"
    if not index.is_file():
        raise FileNotFoundError(f"{index} not found: run `asv publish` first")
    vendor = html_dir / "vendor"
    shutil.rmtree(vendor, ignore_errors=True)
    shutil.copytree(ASSETS, vendor, ignore=shutil.ignore_patterns("README.md"))
    total = 0
    for page in html_dir.glob("*.html"):
        text, count = rewrite(page.read_text(encoding="utf-8"))
        if count:
            page.write_text(text, encoding="utf-8")
            total += count
    return total


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    html_dir = Path(argv[0]) if argv else Path(".asv/html")
    count = make_offline(html_dir)
    print(f"{html_dir}: {count} CDN reference(s) now served from {html_dir / 'vendor'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
