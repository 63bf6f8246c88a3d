"""The download layer: fetch a file, checked against its sha256, from a list of mirrors.

Full mode on Colab fetches real meshes, datasets and weights through :func:`fetch_resource`; smoke mode
and the tests never touch the network (the tests serve files from a local HTTP server).
A :class:`Resource` names the file, its sha256 and its mirrors, tried in order:

- ``https://host/path/file.zip``: plain HTTP(S); an interrupted download leaves ``<name>.part``,
  which the next attempt resumes with a ``Range`` request (or restarts if the server answers 200);
- ``gdrive://<file id>``: Google Drive, through ``gdown``;
- ``hf://<owner>/<repo>/<path/in/repo>@<revision>`` (``hf://datasets/...`` for a dataset repo):
  Hugging Face, fetched as plain HTTPS from ``https://huggingface.co/<repo>/resolve/<rev>/<path>``.

Each mirror gets ``1 + retries`` attempts, with exponential backoff, on transient failures
(timeouts, dropped connections, HTTP 5xx and 429). A checksum mismatch deletes the ``.part``
and moves on to the next mirror; only a verified file is renamed (atomically, ``os.replace``)
to its final name, so the cache never holds a corrupt file. When every mirror fails,
:class:`DownloadError` says what each host answered and how to fetch the file by hand.

Environment: the cache folder is the ``cache_dir`` argument, else the environment variable
``COURSE3D_CACHE``, else ``~/.cache/course3d``; ``COURSE3D_REHEARSAL`` names the rehearsal file
that ``lib.data.sources`` reads (CI's stand-ins for the real files, see there). This module is
the one place ``lib.data`` reads the environment (``lib/__init__.py`` lists every module that does).

Each fetch prints one line saying where the file came from (the mirror, or the cache).

Example:
    >>> res = Resource("cow.obj", sha256="0" * 64, urls=["https://example.org/cow.obj"])
    >>> path = fetch_resource(res)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from lib.data.archive import archive_kind, extract_archive, strip_archive_suffix  # noqa: F401 (re-exported)

CACHE_ENV = "COURSE3D_CACHE"
REHEARSAL_ENV = "COURSE3D_REHEARSAL"
DEFAULT_CACHE = "~/.cache/course3d"
HF_ENDPOINT = "https://huggingface.co"  # read at call time: tests point it at a local server
_CHUNK = 1 << 20
_USER_AGENT = "course3d-download/0.1 (python-urllib)"
_SCHEMES = ("http", "https", "gdrive", "hf")


@dataclass
class Resource:
    """One file the course can download, pinned by its sha256.

    Attributes:
        filename: name of the file in the cache folder, e.g. ``"cow.obj"`` (no folders).
        sha256: lowercase hex digest of the file. None means "not pinned yet": :func:`fetch_resource`
            then refuses the resource unless it is called with ``allow_unverified=True``.
        urls: mirrors tried in order: ``http(s)://...``, ``gdrive://<id>`` or
            ``hf://<owner>/<repo>/<path>@<revision>``.
        size: expected size in bytes, or None if unknown (checked before the sha256).
        extract: False keeps the file as is; True extracts it (type from the file name) into a
            sibling folder named without the suffix; or one of ``"zip"``, ``"tar"``, ``"tar.gz"``.
        description: one line saying what the file is, shown in messages.
        manual: how to get the file by hand when every mirror fails (licence page, login, ...).
    """

    filename: str
    sha256: str | None
    urls: list[str] = field(default_factory=list)
    size: int | None = None
    extract: bool | str = False
    description: str = ""
    manual: str = ""

    def __post_init__(self):
        name = self.filename
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise ValueError(f"Resource filename must be a plain file name, got {name!r}")
        if self.sha256 is not None:
            if not re.fullmatch(r"[0-9a-fA-F]{64}", str(self.sha256)):
                raise ValueError(f"Resource {name!r}: sha256 must be 64 hex digits, "
                                 f"got {self.sha256!r}")
            self.sha256 = self.sha256.lower()
        if isinstance(self.urls, str) or not self.urls:
            raise ValueError(f"Resource {name!r}: urls must be a non-empty list, got {self.urls!r}")
        self.urls = list(self.urls)
        for url in self.urls:
            resolve_url(url)  # raises ValueError naming a malformed mirror
        if self.size is not None and (not isinstance(self.size, int) or self.size <= 0):
            raise ValueError(f"Resource {name!r}: size must be a positive int, got {self.size!r}")
        if self.extract:
            archive_kind(name, self.extract)


class DownloadError(Exception):
    """Every mirror of a resource failed. The message lists each URL with why it failed and
    says how to fetch the file by hand.

    Attributes:
        resource: the :class:`Resource` that could not be fetched.
        failures: ``[(url, reason), ...]``, one entry per mirror, in the order tried.
        target: where the verified file belongs in the cache folder.
    """

    def __init__(self, resource: Resource, failures: list[tuple[str, str]], target: Path):
        self.resource, self.failures, self.target = resource, failures, Path(target)
        super().__init__(_error_message(resource, failures, self.target))


class _Failure(Exception):
    """One failed attempt; ``transient`` says whether trying the same mirror again may help."""

    def __init__(self, reason: str, transient: bool):
        super().__init__(reason)
        self.transient = transient


def sha256sum(path: str | os.PathLike) -> str:
    """Return the lowercase hex sha256 digest of the file at ``path`` (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return (and create) ``cache_dir``, else ``$COURSE3D_CACHE``, else ``~/.cache/course3d``."""
    path = Path(cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def rehearsal_file() -> Path | None:
    """The rehearsal file named by ``$COURSE3D_REHEARSAL`` (None when unset or empty); read by
    :func:`lib.data.sources.rehearsal`, which checks it."""
    value = os.environ.get(REHEARSAL_ENV, "").strip()
    return Path(value).expanduser() if value else None


def resolve_url(mirror: str) -> str:
    """Return the https URL behind a mirror, as urllib (or a person's browser) would open it.

    ``hf://owner/repo/dir/f.bin@rev`` -> ``https://huggingface.co/owner/repo/resolve/rev/dir/f.bin``
    (``hf://datasets/owner/repo/...`` keeps its ``datasets/`` prefix), ``gdrive://<id>`` ->
    ``https://drive.google.com/uc?id=<id>``; http(s) URLs come back unchanged.

    Raises:
        ValueError: unknown scheme, or a malformed ``hf://`` or ``gdrive://`` mirror.
    """
    scheme, sep, rest = str(mirror).partition("://")
    if not sep or scheme not in _SCHEMES or not rest:
        raise ValueError(f"mirror must start with one of {[s + '://' for s in _SCHEMES]}, "
                         f"got {mirror!r}")
    if scheme == "gdrive":
        if not re.fullmatch(r"[\w-]+", rest):
            raise ValueError(f"gdrive:// mirror needs a Drive file id, got {mirror!r}")
        return f"https://drive.google.com/uc?id={rest}"
    if scheme != "hf":
        return mirror
    body, at, revision = rest.rpartition("@")
    parts = body.split("/")
    prefix = parts.pop(0) + "/" if parts[0] in ("datasets", "spaces") else ""
    if not at or not revision or len(parts) < 3 or "" in parts:
        raise ValueError(f"hf:// mirror must be hf://<owner>/<repo>/<path>@<revision>, "
                         f"got {mirror!r}")
    repo, path = "/".join(parts[:2]), urllib.parse.quote("/".join(parts[2:]))
    return f"{HF_ENDPOINT}/{prefix}{repo}/resolve/{urllib.parse.quote(revision, safe='')}/{path}"


def fetch_resource(resource: Resource, cache_dir: str | os.PathLike | None = None, retries: int = 3,
          backoff: float = 1.0, timeout: float = 60, progress: bool = True,
          allow_unverified: bool = False) -> Path:
    """Return the cached, verified file of ``resource``, downloading it first if needed.

    Args:
        resource: what to fetch.
        cache_dir: cache folder; None means ``$COURSE3D_CACHE``, else ``~/.cache/course3d``.
        retries: extra attempts per mirror after a transient failure (0: one attempt each).
        backoff: seconds before the first retry, doubled for each later one (0 in tests).
        timeout: seconds to wait for the server on each socket operation.
        progress: show a tqdm progress bar.
        allow_unverified: accept a resource whose ``sha256`` is None (prints a loud warning).

    Returns:
        ``cache_dir / resource.filename``, or the extracted folder when ``resource.extract``.

    Raises:
        ValueError: ``resource.sha256`` is None and ``allow_unverified`` is False.
        DownloadError: every mirror failed; nothing corrupt is left in the cache.
    """
    if resource.sha256 is None:
        if not allow_unverified:
            raise ValueError(
                f"Resource {resource.filename!r} has no pinned sha256, so fetch_resource refuses to "
                "download it unverified. Fill in its sha256 from a verified download "
                "(lib.data.download.sha256sum(path)), or pass allow_unverified=True to accept "
                "whatever the host serves.")
        _warn_unverified(resource)
    target = resolve_cache_dir(cache_dir) / resource.filename
    fresh = not _is_cached(target, resource)
    if fresh:
        source = resolve_url(_download(resource, target, retries, backoff, timeout, progress))
    if progress:  # where the bytes came from, for the record of a full-mode run
        print(f"{resource.filename}: {'downloaded from ' + source if fresh else 'from the cache'} ({target.parent})")
    if not resource.extract:
        return target
    dest = target.with_name(strip_archive_suffix(target.name))
    if dest.is_dir() and not fresh:
        return dest
    if dest.exists():
        shutil.rmtree(dest)  # extracted from an older archive
    return extract_archive(target, dest, archive_kind(target.name, resource.extract))


def _warn_unverified(resource: Resource) -> None:
    bar = "!" * 78
    print(f"{bar}\nWARNING: {resource.filename!r} has no pinned sha256: it is downloaded and used "
          "WITHOUT an integrity check,\nso a moved, truncated or tampered file would go unnoticed."
          f" Pin its sha256 in the registry.\n{bar}", file=sys.stderr)


def _is_cached(target: Path, resource: Resource) -> bool:
    """True if ``target`` exists and matches; a ``.sha256`` stamp (digest, size, mtime) lets
    later calls skip re-hashing large files."""
    if not target.is_file():
        return False
    if resource.sha256 is None:
        return True
    stat, stamp = target.stat(), target.with_name(target.name + ".sha256")
    key = f"{resource.sha256} {stat.st_size} {stat.st_mtime_ns}"
    if stamp.is_file() and stamp.read_text().strip() == key:
        return True
    if sha256sum(target) != resource.sha256:
        return False
    stamp.write_text(key + "\n")
    return True


def _download(resource, target: Path, retries, backoff, timeout, progress) -> str:
    """Fetch ``resource`` into ``target``; return the mirror that served it."""
    part = target.with_name(target.name + ".part")
    failures = []
    for mirror in resource.urls:
        reason = _try_mirror(mirror, resource, part, retries, backoff, timeout, progress)
        if reason is None:
            os.replace(part, target)
            _is_cached(target, resource)  # writes the stamp
            return mirror
        failures.append((resolve_url(mirror), reason))
    raise DownloadError(resource, failures, target)


def _try_mirror(mirror, resource, part, retries, backoff, timeout, progress) -> str | None:
    """Download ``mirror`` into ``part`` and verify it; None on success, else why it failed."""
    attempts = 1 + max(0, int(retries))
    for attempt in range(attempts):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            if mirror.startswith("gdrive://"):
                _gdrive_to_part(mirror[len("gdrive://"):], part, progress)
            else:
                _http_to_part(resolve_url(mirror), part, timeout, progress, mirror[:5] == "hf://")
        except _Failure as failure:
            if not failure.transient:
                return str(failure)
            reason = f"{failure} (gave up after {attempts} attempt{'s' * (attempts > 1)})"
            continue
        return _verify_part(part, resource)
    return reason


def _verify_part(part: Path, resource: Resource) -> str | None:
    """Check the size and sha256 of ``part``; on a mismatch delete it and say why."""
    size = part.stat().st_size
    got = sha256sum(part) if resource.sha256 else None
    if resource.size is not None and size != resource.size:
        reason = (f"size mismatch: expected {resource.size} bytes, got {size} (this mirror serves "
                  "other bytes than the pinned file; its copy was rejected)")
    elif got != resource.sha256:
        reason = (f"checksum mismatch: expected sha256 {resource.sha256}, got {got} (this mirror "
                  "serves other bytes than the pinned file; its copy was rejected)")
    else:
        return None
    part.unlink()
    return reason


def _http_to_part(url: str, part: Path, timeout: float, progress: bool, hf: bool) -> None:
    """GET ``url`` into ``part``, resuming with a Range request when ``part`` exists."""
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT,
                                                   "Accept-Encoding": "identity"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # our .part is not a prefix the server knows: restart
            part.unlink()
            raise _Failure("HTTP 416: server refused the resume range", True) from None
        raise _http_failure(err.code, err.reason, hf) from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        if isinstance(reason, TimeoutError):
            raise _Failure(f"timed out after {timeout} s", True) from None
        raise _Failure(f"connection failed: {reason}", True) from None
    with response:
        if offset and response.status == 206:
            if not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
                part.unlink()
                raise _Failure("server answered a different byte range", True)
        else:
            offset = 0  # 200: the server ignored Range, start over
        length = response.headers.get("Content-Length", "")
        total = offset + int(length) if length.isdigit() else None
        _copy_body(response, part, offset, total, timeout, progress)


def _http_failure(code: int, reason: str, hf: bool) -> _Failure:
    if hf and code in (401, 403, 404):
        return _Failure(f"HTTP {code}: Hugging Face model repo deleted or gated (or the file or "
                        "revision is gone); open the repo page, accept its licence and log in if "
                        "it is gated, or use another mirror", False)
    hint = " (file moved or removed)" if code in (404, 410) else ""
    return _Failure(f"HTTP {code} {reason}{hint}", code in (408, 425, 429) or code >= 500)


def _copy_body(response, part: Path, offset: int, total, timeout: float, progress: bool) -> None:
    """Append (offset > 0) or write the response body to ``part``, checking its length."""
    bar = _progress_bar(part.name[: -len(".part")], total, offset) if progress else None
    done = offset
    try:
        with open(part, "ab" if offset else "wb") as f:
            while block := _read_block(response, done, timeout):
                f.write(block)
                done += len(block)
                if bar is not None:
                    bar.update(len(block))
    finally:
        if bar is not None:
            bar.close()
    if total is not None and done != total:
        raise _Failure(f"connection dropped after {done} of {total} bytes", True)


def _read_block(response, done: int, timeout: float) -> bytes:
    try:
        return response.read(_CHUNK)
    except TimeoutError:
        raise _Failure(f"timed out after {timeout} s at byte {done}", True) from None
    except (http.client.HTTPException, ConnectionError) as err:
        raise _Failure(f"connection dropped after {done} bytes ({err!r})", True) from None


def _progress_bar(name: str, total: int | None, initial: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                desc=name)


def _gdrive_to_part(file_id: str, part: Path, progress: bool) -> None:
    """Download a Drive file into ``part`` with gdown (which resumes its own partial file)."""
    import gdown
    from gdown.exceptions import FileURLRetrievalError

    part.unlink(missing_ok=True)  # gdown would take an existing output as already downloaded
    try:
        gdown.download(id=file_id, output=str(part), quiet=not progress, resume=True)
    except FileURLRetrievalError as err:
        text = " ".join(str(err).split())
        if re.search(r"too many users|quota", text, re.IGNORECASE):
            raise _Failure("Google Drive quota exceeded ('Too many users have viewed or "
                           "downloaded this file recently'); Drive lifts it within 24 h. Meanwhile "
                           "open the link in a browser, make a copy in your own Drive and copy it "
                           "into the cache folder (see below)", False) from None
        raise _Failure("Google Drive refused the file (deleted, or no longer shared with 'Anyone "
                       f"with the link'): {text[:300]}", False) from None
    except Exception as err:  # gdown and requests raise many types for network trouble
        raise _Failure(f"Google Drive download failed: {err!r}", True) from None
    if not part.is_file():
        raise _Failure("Google Drive download produced no file", True)


def _error_message(resource: Resource, failures: list[tuple[str, str]], target: Path) -> str:
    what = f" ({resource.description})" if resource.description else ""
    lines = [f"Could not download {resource.filename!r}{what}. Tried:"]
    lines += [f"  - {url}\n      {reason}" for url, reason in failures]
    lines += ["To fetch it by hand:", "  1. Download it from one of:"]
    lines += [f"       {resolve_url(url)}" for url in resource.urls]
    lines.append(f"  2. Put it at: {target}")
    if resource.sha256:
        lines.append(f"  3. Check that its sha256 is {resource.sha256} (lib.data.download."
                     "sha256sum(path)); fetch_resource then uses it without the network.")
    if resource.manual:
        lines.append(f"  Notes: {resource.manual}")
    return "\n".join(lines)
