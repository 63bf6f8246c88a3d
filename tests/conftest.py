"""Session-wide test settings: two torch threads, no silent empty runs, and the
``needs_pytorch3d`` marker skipping where PyTorch3D is not installed.

MPLBACKEND is deliberately not set: notebook kernels inherit the environment and must keep
their inline backend so the executed notebooks (CI artifacts) show their figures; matplotlib
picks Agg by itself in the test process on a headless machine.
"""
import importlib.util
import os

import pytest

os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

try:
    import torch
except ImportError:  # the static checks still run without torch
    torch = None
else:
    torch.set_num_threads(2)  # the CI machine has 2 cores

# find_spec, not an import: a PyTorch3D that is installed but broken (built for another torch)
# must fail the tests that use it, not skip them.
HAS_PYTORCH3D = importlib.util.find_spec("pytorch3d") is not None


def pytest_runtest_setup(item):
    """Skip a test marked ``needs_pytorch3d`` where PyTorch3D is not installed (the Colab-like
    runtime of requirements-colab.txt); everything else in lib runs there."""
    if not HAS_PYTORCH3D and item.get_closest_marker("needs_pytorch3d") is not None:
        pytest.skip("PyTorch3D is not installed")


@pytest.fixture
def one_thread():
    """Run a test on one torch thread: tiny tensors and MLPs are faster there than on the
    thread pool (much faster on a busy machine). Restores the thread count afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pytest_sessionfinish(session, exitstatus):
    """A run that collected no test must fail loudly: pytest's exit 5 is never a green run."""
    if session.testscollected == 0:
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED  # non-zero
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        msg = "ERROR: no tests were collected (or all were deselected); this run counts as a failure"
        if reporter is not None:
            reporter.write_line(msg, red=True, bold=True)
        else:
            print(msg)


@pytest.fixture(scope="session")
def notebook_runs():
    """Runs each notebook at most once per session in smoke mode, into
    ``outputs/test-run/<stem>/smoke/`` (tests/test_notebooks.py asserts their metrics; the
    rehearsals compare their keys and files with them); writes REPORT.md at the end."""
    from pathlib import Path

    from tools.nbrun import run_notebook, write_report

    run_root = Path(__file__).resolve().parents[1] / "outputs" / "test-run"
    cache = {}

    def get(nb_path):
        if nb_path not in cache:
            cache[nb_path] = run_notebook(nb_path, run_root, smoke=True)
        return cache[nb_path]

    yield get
    if cache:
        write_report(list(cache.values()), run_root, smoke=True, title="Test run report (smoke)")
