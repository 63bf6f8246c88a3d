"""Strip outputs, execution counts and run metadata from notebooks, in place.

    python -m tools.strip_notebooks                 # notebooks/*.ipynb
    python -m tools.strip_notebooks a.ipynb b.ipynb
    python -m tools.strip_notebooks --check         # exit 1, listing notebooks that need it

A notebook that is already clean is left untouched (not even reformatted).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parents[1]
CELL_META_DROP = ("execution", "papermill", "collapsed", "scrolled", "ExecuteTime")
NB_META_DROP = ("papermill", "widgets")


def strip(nb) -> list[str]:
    """Strip ``nb`` (a v4 NotebookNode) in place; returns what was removed, e.g. ['outputs']."""
    removed = set()
    kept = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    if len(kept) != len(nb.cells):
        nb.cells = kept
        removed.add("papermill's injected-parameters cell")
    for cell in nb.cells:
        if cell.cell_type == "code":
            if cell.get("outputs"):
                removed.add("outputs")
            if cell.get("execution_count") is not None:
                removed.add("execution counts")
            cell.outputs = []
            cell.execution_count = None
        for key in CELL_META_DROP:
            if key in cell.get("metadata", {}):
                del cell.metadata[key]
                removed.add(f"cell metadata '{key}'")
        if cell.get("metadata", {}).get("tags") == []:
            del cell.metadata["tags"]
    for key in NB_META_DROP:
        if key in nb.metadata:
            del nb.metadata[key]
            removed.add(f"notebook metadata '{key}'")
    return sorted(removed)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.strip_notebooks", description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)")
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if any needs stripping")
    args = ap.parse_args(argv)

    paths = args.paths or sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
    dirty = []
    for path in paths:
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        removed = strip(nb)
        if not removed:
            continue
        dirty.append(path)
        if args.check:
            print(f"{path}: has {', '.join(removed)}")
        else:
            nbformat.write(nb, path)
            print(f"stripped {path} ({', '.join(removed)})")
    if args.check and dirty:
        print(f"{len(dirty)} notebook(s) need `make strip`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
