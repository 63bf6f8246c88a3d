"""Run the course notebooks headlessly with papermill and write a markdown report.

Each notebook runs with ``SMOKE`` (and ``DATA`` / ``SIZES`` when given) and
``OUTPUT_DIR = <out_root>/<stem>`` injected after its ``parameters`` cell, working directory = repo
root. Everything a run produces goes to its mode folder ``<out_root>/<stem>/smoke/``, ``.../full/``
or ``.../<data>-<sizes>/`` (``lib.report.mode_dir``): the executed notebook ``<stem>.ipynb``,
``metrics.json`` (``lib.report``), the media files, and the checkpoints and data the notebook
writes there. A run never touches another mode's folder.

    python -m tools.nbrun                  # all notebooks, smoke mode, into outputs/
    python -m tools.nbrun --nb 01 --smoke 0 --out outputs
    python -m tools.nbrun --nb 04 --data real --sizes cpu   # the real lego at CPU sizes

Exit status: 0 all passed, 1 some notebook failed, 2 no notebook matched.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import re
import shutil
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
MEDIA_SUFFIXES = {".gif", ".mp4", ".png", ".html"}
KERNEL_NAME = "course3d"  # registered by `make` for .venv
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def find_notebooks(prefix: str = "") -> list[Path]:
    """``notebooks/*.ipynb`` whose file name starts with ``prefix``, in course order."""
    return sorted(p for p in NOTEBOOK_DIR.glob("*.ipynb") if p.name.startswith(prefix))


def default_kernel() -> str:
    """``course3d`` when that kernelspec runs *this* interpreter (the checkout's .venv), else
    ``python3`` (ipykernel's built-in spec, which also runs this interpreter). A ``course3d``
    registered by another checkout is not used: it would test that checkout's code."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        if spec.argv and os.path.abspath(spec.argv[0]) == os.path.abspath(sys.executable):
            return KERNEL_NAME
    except (ImportError, NoSuchKernel, OSError, ValueError):
        pass
    return "python3"


def _error_text(exc: BaseException, tail: int = 12) -> str:
    """A short, readable account of why a run failed: exception, failing cell, traceback tail."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        src = [ln for ln in (exc.source or "").splitlines() if ln.strip()]
        head = "\n".join("    " + ln for ln in src[:4]) + ("\n    ..." if len(src) > 4 else "")
        tb = _ANSI.sub("", "\n".join(exc.traceback or [])).rstrip().splitlines()
        return (f"{exc.ename}: {exc.evalue}\n"
                f"in the cell run as In [{exc.exec_count}] (the executed notebook's cell {exc.cell_index}):\n"
                f"{head}\n"
                f"traceback (last lines):\n" + "\n".join(tb[-tail:]))
    lines = _ANSI.sub("", str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: " + "\n".join(lines[-tail:])


def run_notebook(path, out_root, smoke: bool = True, kernel_name: str | None = None,
                 timeout: int = 900, data: str | None = None, sizes: str | None = None,
                 parameters: dict | None = None) -> dict:
    """Execute one notebook with papermill; never raises for a failing notebook.

    Args:
        path: the ``.ipynb`` to run.
        out_root: folder that gets ``<stem>/<mode>/`` (that mode folder is emptied first, so no
            stale metrics or checkpoints survive; the other mode's folder is left alone).
        smoke: value injected as ``SMOKE``.
        data, sizes: injected as ``DATA`` and ``SIZES`` when given (None: the notebook's own, which
            follow ``SMOKE``); see ``lib.report.run_mode``.
        parameters: other parameters to inject (e.g. ``{"IMAGE_PATH": ...}``).
        kernel_name: Jupyter kernel; None picks ``default_kernel()``.
        timeout: seconds allowed for any single cell.

    Returns:
        dict with ``name`` (stem), ``status`` ("passed"/"failed"), ``wall_s``, ``metrics``
        (from ``lib.report.load_metrics``), ``run_dir`` (the mode folder relative to
        ``out_root``, e.g. ``"01_cameras_and_rendering/smoke"`` or ``".../real-tiny"``), ``media`` (file names in
        ``run_dir``), ``error`` (None or text), ``notebook`` (executed copy) and ``kernel``.
    """
    import papermill as pm

    from lib.report import METRICS_FILE, load_metrics, mode_dir, run_mode

    path = Path(path).resolve()
    out_dir = (Path(out_root) / path.stem).resolve()
    run_dir = mode_dir(out_dir, run_mode(bool(smoke), data, sizes))
    injected = {"SMOKE": bool(smoke), "OUTPUT_DIR": str(out_dir), **(parameters or {})}
    injected.update({k: v for k, v in (("DATA", data), ("SIZES", sizes)) if v is not None})
    shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    executed = run_dir / f"{path.stem}.ipynb"
    stray = out_dir / METRICS_FILE  # written by a notebook that ignores mode_dir (checked below)
    stray.unlink(missing_ok=True)
    kernel = kernel_name or default_kernel()
    # No MPLBACKEND here: the kernel must keep its inline backend, or figures vanish from the
    # executed notebook.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

    error = None
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(path), str(executed),
            parameters=injected,
            kernel_name=kernel, language="python", cwd=str(REPO_ROOT), progress_bar=False,
            execution_timeout=timeout,
        )
    except Exception as exc:  # a failing notebook is a result, not a crash of the runner
        error = _error_text(exc)
    wall_s = time.perf_counter() - t0

    try:
        metrics = load_metrics(run_dir)
    except (OSError, ValueError) as exc:
        metrics = {}
        error = (error + "\n" if error else "") + f"unreadable metrics.json: {exc}"
    if stray.exists() and not (run_dir / METRICS_FILE).exists():
        error = (error + "\n" if error else "") + (
            f"the notebook wrote {stray}, not {run_dir / METRICS_FILE}: make the Recorder with "
            "RUN_DIR = lib.report.mode_dir(OUTPUT_DIR, MODE), so runs of different modes never share files")
    # Media are the files the notebook saved at the top of its mode folder; sub-folders hold data
    # (captures, generated datasets), not pictures for the report.
    media = sorted(p.name for p in run_dir.iterdir() if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)
    return {
        "name": path.stem,
        "status": "failed" if error else "passed",
        "wall_s": round(wall_s, 2),
        "metrics": metrics,
        "run_dir": run_dir.relative_to(Path(out_root).resolve()).as_posix(),
        "media": media,
        "error": error,
        "notebook": str(executed),
        "kernel": kernel,
    }


def check_bounds(metrics: dict, bounds: dict) -> list[str]:
    """Problems found checking recorded ``metrics`` against ``bounds`` ([] when all hold).

    ``bounds`` maps a metric name to ``{"min": a, "max": b, "equals": c}`` (any subset); a metric
    named in ``bounds`` but not recorded is a problem, and so is an unknown key such as "mn".
    """
    problems = []
    for name, spec in bounds.items():
        if not isinstance(spec, dict) or not spec:
            problems.append(f"{name}: bound must be a non-empty dict with min/max/equals, got {spec!r}")
            continue
        unknown = sorted(set(spec) - {"min", "max", "equals"})
        if unknown:
            problems.append(f"{name}: unknown bound key(s) {unknown}; use min, max, equals")
            continue
        if name not in metrics:
            problems.append(f"{name}: missing (recorded: {', '.join(sorted(metrics)) or 'nothing'})")
            continue
        value = metrics[name]
        if "equals" in spec and value != spec["equals"]:
            problems.append(f"{name} = {value!r}, expected == {spec['equals']!r}")
        for key, ok in (("min", lambda v, b: v >= b), ("max", lambda v, b: v <= b)):
            if key not in spec:
                continue
            if isinstance(value, (bool, str)) or not isinstance(value, (int, float)):
                problems.append(f"{name} = {value!r} is not a number; cannot check {key}")
            elif not ok(value, spec[key]):
                problems.append(f"{name} = {value:.6g}, expected {'>=' if key == 'min' else '<='} {spec[key]}")
    return problems


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def machine_summary() -> str:
    """One line: CPU cores, Python, torch version and CUDA device (or CPU)."""
    parts = [f"{os.cpu_count()} CPU cores", f"Python {platform.python_version()}"]
    try:
        import torch

        dev = (f"CUDA {torch.version.cuda} on {torch.cuda.get_device_name(0)}"
               if torch.cuda.is_available() else "CPU only")
        parts += [f"torch {torch.__version__}", dev]
    except Exception as exc:  # the report should still be written
        parts.append(f"torch unavailable ({type(exc).__name__})")
    return ", ".join(parts)


def report_table(results: list[dict]) -> str:
    """Markdown table, one row per result; links are relative to the output root."""
    rows = ["| notebook | status | wall (s) | metrics | media |", "|---|---|---:|---|---|"]
    for r in results:
        name = f"[{r['name']}]({r['run_dir']}/{r['name']}.ipynb)"
        metrics = ", ".join(f"{k}={_fmt(v)}" for k, v in r["metrics"].items()) or "-"
        media = " ".join(f"[{m}]({r['run_dir']}/{m})" for m in r["media"]) or "-"
        status = "passed" if r["status"] == "passed" else "**FAILED**"
        rows.append(f"| {name} | {status} | {r['wall_s']:.1f} | {metrics} | {media} |")
    return "\n".join(rows)


def write_report(results: list[dict], out_root, smoke: bool, title: str = "Notebook run report") -> Path:
    """Write ``<out_root>/REPORT.md`` (machine, table, errors of failed runs); returns its path."""
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    kernels = sorted({r.get("kernel", "?") for r in results})
    lines = [
        f"# {title}", "",
        f"- date: {_dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- mode: {', '.join(sorted({r['run_dir'].rsplit('/', 1)[-1] for r in results})) or ('smoke' if smoke else 'full')}",
        f"- machine: {machine_summary()}",
        f"- kernel: {', '.join(kernels)}",
        f"- result: {sum(r['status'] == 'passed' for r in results)}/{len(results)} passed", "",
        report_table(results), "",
    ]
    failed = [r for r in results if r["status"] != "passed"]
    if failed:
        lines += ["## Errors", ""]
        for r in failed:
            lines += [f"### {r['name']}", "", "```", r["error"] or "", "```", ""]
    path = out_root / "REPORT.md"
    path.write_text("\n".join(lines))
    return path


def _parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in {"1", "true", "yes", "on"}:
        return True
    if t in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"--smoke takes 1 or 0, got {text!r}")


def main(argv=None) -> int:
    from lib.report import DATA_CHOICES, SIZE_CHOICES

    ap = argparse.ArgumentParser(prog="python -m tools.nbrun", description=__doc__.split("\n")[0])
    ap.add_argument("--nb", default="", help="run only notebooks whose name starts with this (e.g. 01)")
    ap.add_argument("--smoke", type=_parse_bool, default=True, help="1 = smoke mode (default), 0 = full")
    ap.add_argument("--data", choices=DATA_CHOICES, default=None,
                    help="which data (default: from --smoke): procedural, or real downloads and pretrained models")
    ap.add_argument("--sizes", choices=SIZE_CHOICES, default=None,
                    help="which sizes (default: from --smoke): tiny (rehearsal), cpu, t4 (a lab session), long")
    ap.add_argument("--out", default="outputs", help="output folder (default: outputs)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell")
    args = ap.parse_args(argv)

    notebooks = find_notebooks(args.nb)
    if not notebooks:
        print(f"error: no notebook in {NOTEBOOK_DIR} starts with {args.nb!r}", file=sys.stderr)
        return 2
    results = []
    for nb in notebooks:
        print(f"==> {nb.name} ({'smoke' if args.smoke else 'full'} mode) ...", flush=True)
        r = run_notebook(nb, args.out, smoke=args.smoke, timeout=args.timeout, data=args.data, sizes=args.sizes)
        print(f"    {r['status']} in {r['wall_s']:.1f} s", flush=True)
        if r["error"]:
            print("    " + r["error"].replace("\n", "\n    "), flush=True)
        results.append(r)
    report = write_report(results, args.out, args.smoke)
    print()
    print(report_table(results))
    print(f"\nreport: {report}")
    n_failed = sum(r["status"] != "passed" for r in results)
    print(f"{len(results) - n_failed} passed, {n_failed} failed")
    return 1 if n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
