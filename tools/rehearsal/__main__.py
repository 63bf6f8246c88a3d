"""``python -m tools.rehearsal --root DIR [--nb 04 ...]``: write the stand-ins and serve them; with
``--nb``, run those notebooks with real data at tiny sizes inside the rehearsal (into
``--out``, default ``outputs/rehearsal``) and exit; without, print the environment to export
in another shell and wait (Ctrl-C stops the server)."""
from __future__ import annotations

import argparse
import ast
import shlex
import sys
import time

from tools.nbrun import find_notebooks, run_notebook
from tools.rehearsal import rehearsal


def _param(text: str):
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"--param takes NAME=VALUE, got {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value  # a plain string


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.rehearsal", description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True, help="folder for the stand-ins, the cache and rehearsal.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nb", nargs="*", default=None, help="notebook prefixes to run at real-tiny (e.g. 04 09)")
    ap.add_argument("--param", type=_param, action="append", default=[], help="NAME=VALUE to inject (repeatable)")
    ap.add_argument("--out", default="outputs/rehearsal", help="output folder of --nb runs")
    args = ap.parse_args(argv)
    with rehearsal(args.root, args.seed) as env:
        if args.nb is None:
            print("Rehearsal running; in another shell:")
            for k, v in env.items():
                print(f"export {k}={shlex.quote(v)}")
            print("python -m tools.nbrun --nb 04 --smoke 0 --data real --sizes tiny   # for example")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return 0
        failed = 0
        for prefix in args.nb:
            for nb in find_notebooks(prefix):
                r = run_notebook(nb, args.out, smoke=False, data="real", sizes="tiny", parameters=dict(args.param))
                print(f"{nb.name}: {r['status']} in {r['wall_s']:.1f} s -> {args.out}/{r['run_dir']}", flush=True)
                if r["error"]:
                    print("    " + r["error"].replace("\n", "\n    "), flush=True)
                failed += r["status"] != "passed"
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
