"""Write or check ``assets/MANIFEST``: the sha256 and size of every committed asset file.

    python -m tools.manifest            # rewrite assets/MANIFEST from the files under assets/
    python -m tools.manifest --check    # exit 1 (and say which) if a file differs from its line

Each line is ``<sha256>  <bytes>  <path relative to assets/>``; lines starting with ``#`` are
comments (what made each asset: see its ``train_args.json`` and ``train_log.txt``).
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from lib.fileio import ASSETS_DIR

ASSETS = ASSETS_DIR
HEADER = """# assets/MANIFEST: sha256, size in bytes and path (relative to assets/) of every committed asset file.
# Written by `python -m tools.manifest`; checked by tests/test_assets.py and `python -m tools.manifest --check`.
# prior/: the offline diffusion prior of notebook 07 (tools/train_prior.py; command and log in
#   prior/train_args.json and prior/train_log.txt). It was trained on 2026-11-30 at commit 534a83b, whose
#   script saved the UNet in float32 (6.5 MB); its weights were then stored in float16, which is what the
#   script now does when it saves (3.4 MB; outputs move by < 1e-3). The run took 934 s on the 2-core machine.
# judge/: the judge of notebook 07 (tools/train_judge.py; the same two files: command, log, held-out scores).
"""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def asset_files(root: Path = ASSETS) -> list[Path]:
    """Every file under ``root`` except the MANIFEST itself and hidden files, sorted."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "MANIFEST"
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def manifest_lines(root: Path = ASSETS) -> list[str]:
    return [f"{sha256(p)}  {p.stat().st_size}  {p.relative_to(root).as_posix()}" for p in asset_files(root)]


def read_manifest(path: Path) -> dict:
    """{relative path: (sha256, size)} of a MANIFEST; ValueError naming the line if malformed."""
    entries = {}
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3 or len(parts[0]) != 64 or not parts[1].isdigit():
            raise ValueError(f"{path}:{i}: expected '<sha256>  <bytes>  <path>', got {line!r}")
        entries[parts[2]] = (parts[0], int(parts[1]))
    return entries


def check(root: Path = ASSETS) -> list[str]:
    """Problems found (empty when every file matches its line and every line has its file)."""
    listed = read_manifest(root / "MANIFEST")
    found = {p.relative_to(root).as_posix(): p for p in asset_files(root)}
    problems = [f"{rel}: listed in MANIFEST but missing" for rel in sorted(set(listed) - set(found))]
    problems += [f"{rel}: not listed in MANIFEST" for rel in sorted(set(found) - set(listed))]
    for rel in sorted(set(listed) & set(found)):
        digest, size = listed[rel]
        if found[rel].stat().st_size != size or sha256(found[rel]) != digest:
            problems.append(f"{rel}: sha256/size differ from MANIFEST (re-run `python -m tools.manifest` "
                            "if the change is intended)")
    return problems


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="check instead of writing")
    args = p.parse_args(argv)
    if args.check:
        problems = check()
        print("\n".join(problems) if problems else f"{ASSETS / 'MANIFEST'}: every file matches")
        return 1 if problems else 0
    tmp = ASSETS / ".MANIFEST.tmp"
    tmp.write_text(HEADER + "\n".join(manifest_lines()) + "\n")
    tmp.replace(ASSETS / "MANIFEST")
    print(f"wrote {ASSETS / 'MANIFEST'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
