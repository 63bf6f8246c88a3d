"""Tests of lib.data.download against a real HTTP server on 127.0.0.1 (no other network)."""

import hashlib
import io
import os
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lib.data import download, sources
from lib.data.download import DownloadError, Resource, extract_archive, fetch_resource, sha256sum

DATA = bytes(range(256)) * 64  # 16 KiB
SHA = hashlib.sha256(DATA).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; ``server.plans[path]`` lists one behaviour per request
    ("ok", "404", "401", "half", "corrupt", "norange", "slow"), then "ok" for the rest."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        plan = srv.plans.get(self.path, [])
        mode = plan.pop(0) if plan else "ok"
        body = srv.files.get(self.path)
        rng = self.headers.get("Range")
        status = 404 if body is None or mode == "404" else 401 if mode == "401" else 200
        if status == 200 and rng and mode != "norange":
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            status, body = 206, body[start:]
        srv.log.append((self.path, rng, status))
        if status >= 400:
            self.send_error(status)
            return
        if mode == "slow":
            time.sleep(0.5)
        if mode == "corrupt":
            body = bytes(b ^ 0xFF for b in body)
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/*")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if mode == "half" else body)


@pytest.fixture(scope="module")
def _running_server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.handle_error = lambda request, address: None  # a client that timed out is expected
    srv.url = lambda path: f"http://127.0.0.1:{srv.server_port}{path}"
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def server(_running_server):
    """The local server with no files, no plans and an empty request log."""
    _running_server.files, _running_server.plans, _running_server.log = {}, {}, []
    return _running_server


@pytest.fixture
def cache(tmp_path, monkeypatch):
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "cache"
    monkeypatch.setenv("COURSE3D_CACHE", str(path))
    return path


def _fetch(res, **kwargs):
    kwargs = {"retries": 0, "backoff": 0, "timeout": 5, "progress": False, **kwargs}
    return fetch_resource(res, **kwargs)


def _leftovers(cache):
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


# ------------------------------------------------------------------------------ downloads


def test_fetch_then_cache_hit_without_network(server, cache):
    server.files["/a.bin"] = DATA
    res = Resource("a.bin", SHA, [server.url("/a.bin")])
    path = _fetch(res, progress=True)
    assert path == cache / "a.bin" and path.read_bytes() == DATA
    assert len(server.log) == 1
    assert _fetch(res) == path and len(server.log) == 1  # stamp: no network, no re-hash needed
    (cache / "a.bin.sha256").unlink()
    assert _fetch(res) == path and len(server.log) == 1  # re-hashed, still no network
    assert not (cache / "a.bin.part").exists()


def test_cache_dir_argument_wins_over_env(server, cache, tmp_path):
    server.files["/a.bin"] = DATA
    path = _fetch(Resource("a.bin", SHA, [server.url("/a.bin")]), cache_dir=tmp_path / "other")
    assert path == tmp_path / "other" / "a.bin" and not cache.exists()


def test_checksum_mismatch_leaves_nothing(server, cache):
    server.files["/a.bin"] = DATA
    server.plans["/a.bin"] = ["corrupt", "corrupt"]
    res = Resource("a.bin", SHA, [server.url("/a.bin")])
    with pytest.raises(DownloadError) as info:
        _fetch(res)
    msg = str(info.value)
    bad = hashlib.sha256(bytes(b ^ 0xFF for b in DATA)).hexdigest()
    assert "checksum mismatch" in msg and SHA in msg and bad in msg
    assert _leftovers(cache) == []


def test_cut_download_resumes_with_range(server, cache):
    server.files["/a.bin"] = DATA
    server.plans["/a.bin"] = ["half"]
    path = _fetch(Resource("a.bin", SHA, [server.url("/a.bin")]), retries=1)
    assert sha256sum(path) == SHA
    half = len(DATA) // 2
    assert server.log == [("/a.bin", None, 200), ("/a.bin", f"bytes={half}-", 206)]
    assert _leftovers(cache) == ["a.bin", "a.bin.sha256"]


def test_cut_download_keeps_part_for_next_call(server, cache):
    server.files["/a.bin"] = DATA
    server.plans["/a.bin"] = ["half"]
    res = Resource("a.bin", SHA, [server.url("/a.bin")])
    with pytest.raises(DownloadError, match="connection dropped"):
        _fetch(res)
    assert (cache / "a.bin.part").stat().st_size == len(DATA) // 2
    assert sha256sum(_fetch(res)) == SHA
    assert server.log[-1][1:] == (f"bytes={len(DATA) // 2}-", 206)


def test_resume_restarts_cleanly_when_server_ignores_range(server, cache):
    server.files["/a.bin"] = DATA
    server.plans["/a.bin"] = ["norange"]
    cache.mkdir()
    (cache / "a.bin.part").write_bytes(b"junk" * 100)
    path = _fetch(Resource("a.bin", SHA, [server.url("/a.bin")]))
    assert path.read_bytes() == DATA
    assert server.log == [("/a.bin", "bytes=400-", 200)]


def test_second_mirror_used_when_first_404s(server, cache):
    server.files["/b/a.bin"] = DATA
    res = Resource("a.bin", SHA, [server.url("/a/a.bin"), server.url("/b/a.bin")])
    assert _fetch(res, retries=3).read_bytes() == DATA
    assert [entry[0] for entry in server.log] == ["/a/a.bin", "/b/a.bin"]  # 404 is not retried


def test_all_mirrors_fail_message(server, cache):
    res = Resource("a.bin", SHA, [server.url("/a/a.bin"), "http://127.0.0.1:9/a.bin"],
                   description="test blob", manual="Ask the instructor for a USB stick.")
    with pytest.raises(DownloadError) as info:
        _fetch(res, retries=1)
    msg = str(info.value)
    assert server.url("/a/a.bin") in msg and "HTTP 404" in msg
    assert "http://127.0.0.1:9/a.bin" in msg and "connection failed" in msg
    assert "Ask the instructor for a USB stick." in msg and SHA in msg
    assert str(cache / "a.bin") in msg and "test blob" in msg
    assert [url for url, _ in info.value.failures] == res.urls


def test_timeout_is_retried_then_reported(server, cache):
    server.files["/a.bin"] = DATA
    server.plans["/a.bin"] = ["slow", "slow"]
    with pytest.raises(DownloadError, match=r"timed out after 0.1 s .*gave up after 2 attempts"):
        _fetch(Resource("a.bin", SHA, [server.url("/a.bin")]), retries=1, timeout=0.1)


def test_size_mismatch_is_reported(server, cache):
    server.files["/a.bin"] = DATA
    res = Resource("a.bin", SHA, [server.url("/a.bin")], size=len(DATA) + 1)
    with pytest.raises(DownloadError, match="size mismatch"):
        _fetch(res)
    assert _leftovers(cache) == []


def test_unverified_resource_refused_unless_allowed(server, cache, capsys):
    server.files["/a.bin"] = DATA
    res = Resource("a.bin", None, [server.url("/a.bin")])
    with pytest.raises(ValueError, match="allow_unverified=True"):
        _fetch(res)
    assert server.log == []
    assert _fetch(res, allow_unverified=True).read_bytes() == DATA
    assert "WARNING" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, match", [
    ({"filename": "a/b.bin"}, "plain file name"),
    ({"sha256": "abc"}, "64 hex digits"),
    ({"urls": []}, "non-empty list"),
    ({"urls": ["ftp://x/a.bin"]}, "mirror must start with"),
    ({"urls": ["hf://owner/repo/a.bin"]}, "@<revision>"),
    ({"size": 0}, "positive int"),
    ({"extract": "rar"}, "extract must be"),
    ({"extract": True}, "archive type"),
])
def test_resource_validation(kwargs, match):
    args = {"filename": "a.bin", "sha256": SHA, "urls": ["https://example.org/a.bin"], **kwargs}
    with pytest.raises(ValueError, match=match):
        Resource(**args)


# ----------------------------------------------------------------- Hugging Face, Drive


def test_hf_url_mapping():
    rev = "0123abcd"
    assert download.resolve_url(f"hf://owner/repo/unet/model.bin@{rev}") == \
        f"https://huggingface.co/owner/repo/resolve/{rev}/unet/model.bin"
    assert download.resolve_url("hf://datasets/owner/data/x y.zip@refs/pr/1") == \
        "https://huggingface.co/datasets/owner/data/resolve/refs%2Fpr%2F1/x%20y.zip"
    assert download.resolve_url("gdrive://1AbC-d_e") == "https://drive.google.com/uc?id=1AbC-d_e"
    assert download.resolve_url("https://h/a.bin") == "https://h/a.bin"
    for bad in ["hf://repo/a.bin@main", "hf://owner/repo/a.bin@", "gdrive://a/b", "hf://"]:
        with pytest.raises(ValueError):
            download.resolve_url(bad)


def test_hf_401_reads_as_deleted_or_gated(server, cache, monkeypatch):
    monkeypatch.setattr(download, "HF_ENDPOINT", server.url(""))
    server.files["/owner/repo/resolve/main/w.bin"] = DATA
    server.plans["/owner/repo/resolve/main/w.bin"] = ["401"]
    res = Resource("w.bin", SHA, ["hf://owner/repo/w.bin@main"])
    with pytest.raises(DownloadError, match="model repo deleted or gated"):
        _fetch(res, retries=2)
    assert len(server.log) == 1  # not retried
    assert _fetch(res).read_bytes() == DATA  # the same path through the hf:// mapping


def test_gdrive_quota_error_mapped(cache, monkeypatch):
    import gdown
    from gdown.exceptions import FileURLRetrievalError

    calls = []

    def refuse(**kwargs):
        calls.append(kwargs)
        raise FileURLRetrievalError("Failed to retrieve file url:\n\n\tToo many users have "
                                    "viewed or downloaded this file recently.")

    monkeypatch.setattr(gdown, "download", refuse)
    with pytest.raises(DownloadError) as info:
        _fetch(Resource("a.bin", SHA, ["gdrive://FILEID"]), retries=2)
    msg = str(info.value)
    assert "Google Drive quota exceeded" in msg and "https://drive.google.com/uc?id=FILEID" in msg
    assert len(calls) == 1 and calls[0]["id"] == "FILEID" and calls[0]["resume"] is True


def test_gdrive_success_is_verified(cache, monkeypatch):
    import gdown

    def serve(id, output, **kwargs):
        with open(output, "wb") as f:
            f.write(DATA)
        return output

    monkeypatch.setattr(gdown, "download", serve)
    assert _fetch(Resource("a.bin", SHA, ["gdrive://FILEID"])).read_bytes() == DATA


def test_sources_registry():
    assert set(sources.COW_MESH) <= set(sources.SOURCES)
    for name, res in sources.SOURCES.items():
        assert isinstance(res, Resource) and res.description and res.manual, name
    assert sources.get("cow_obj").urls[1] == "https://dl.fbaipublicfiles.com/pytorch3d/data/cow_mesh/cow.obj"
    with pytest.raises(ValueError, match="known"):
        sources.get("horse")


# The table: bytes of learning3d/assignment1 at this commit, folder data/.
COW_COMMIT = "e3c25fbd7a6ae8d0212cf00c791f621483e51a04"
COW_PINS = {
    "cow_obj": ("cow.obj", 330659, "62337f06b4aa4f2eaa95f854553a02039d853365a78b0a581c26ece5691a6d99"),
    "cow_mtl": ("cow.mtl", 155, "ce6398d52486f81f2c329b1683ad4fedce970471aa36e589e05c5177432db6cb"),
    "cow_texture": ("cow_texture.png", 78699,
                    "cddabbae52a666173e7953e238b88340d285044dc20b36f8ed3f1a41db534fa5"),
}


def test_cow_is_pinned_with_the_immutable_mirror_first():
    for name, (filename, size, sha) in COW_PINS.items():
        res = sources.get(name)
        assert (res.filename, res.size, res.sha256) == (filename, size, sha)
        assert res.urls == [
            f"https://raw.githubusercontent.com/learning3d/assignment1/{COW_COMMIT}/data/{filename}",
            f"https://dl.fbaipublicfiles.com/pytorch3d/data/cow_mesh/{filename}"]


def _local_cow(server, monkeypatch, files):
    """Register a cow served by the local server under /gh/ then /pt3d/, pinned to ``files``."""
    pinned = {name: (filename, len(data), hashlib.sha256(data).hexdigest(), "test cow")
              for name, (filename, data) in files.items()}
    local = sources._mirrored([server.url("/gh/"), server.url("/pt3d/")], "by hand", pinned)
    monkeypatch.setattr(sources, "SOURCES", {**sources.SOURCES, **local})


COW_FILES = {"cow_obj": ("cow.obj", b"mtllib cow.mtl\nv 0 0 0\n"),
             "cow_mtl": ("cow.mtl", b"newmtl m\nmap_Kd cow_texture.png\n"),
             "cow_texture": ("cow_texture.png", DATA)}


def test_fetch_cow_mesh_is_verified_without_allow_unverified(server, cache, monkeypatch):
    _local_cow(server, monkeypatch, COW_FILES)
    for filename, data in COW_FILES.values():
        server.files[f"/gh/{filename}"] = data
    path = sources.fetch_cow_mesh(progress=False, retries=0)
    assert path == cache / "cow.obj" and path.read_bytes() == COW_FILES["cow_obj"][1]
    assert (cache / "cow.mtl").is_file() and (cache / "cow_texture.png").read_bytes() == DATA
    assert [p for p, _, _ in server.log] == ["/gh/cow.obj", "/gh/cow.mtl", "/gh/cow_texture.png"]


def test_second_mirror_with_other_bytes_is_rejected(server, cache, monkeypatch):
    _local_cow(server, monkeypatch, COW_FILES)
    obj = COW_FILES["cow_obj"][1]
    server.files["/pt3d/cow.obj"] = obj.replace(b"0 0 0", b"0 0 1")  # same size, other bytes
    with pytest.raises(DownloadError) as info:
        sources.fetch("cow_obj", progress=False, retries=0)
    msg = str(info.value)
    assert server.url("/gh/cow.obj") in msg and "404" in msg
    assert server.url("/pt3d/cow.obj") in msg and "checksum mismatch" in msg and "rejected" in msg
    assert _leftovers(cache) == []
    server.files["/gh/cow.obj"] = obj  # the pinned copy appears on the first mirror: accepted
    assert sources.fetch("cow_obj", progress=False, retries=0).read_bytes() == obj


def test_sources_unpinned_refused_before_network(cache):
    unpinned = [n for n, r in sources.SOURCES.items() if r.sha256 is None]
    for name in unpinned:
        with pytest.raises(ValueError, match="no pinned sha256"):
            sources.fetch(name, progress=False)


# ------------------------------------------------------------------------------- archives


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar(path, members, mode="w"):
    """``members``: name -> bytes, or ("sym"|"hard", target) for a link."""
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(data, tuple):
                info.type = tarfile.SYMTYPE if data[0] == "sym" else tarfile.LNKTYPE
                info.linkname = data[1]
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def _assert_refused(archive, tmp_path, match):
    dest = tmp_path / "work" / "out"
    with pytest.raises(ValueError, match=match):
        extract_archive(archive, dest)
    assert not dest.exists() and os.listdir(tmp_path / "work") == []  # no temp folder left
    assert sorted(os.listdir(tmp_path)) == sorted(["work", archive.name])  # nothing outside


def test_extract_refuses_zip_slip(tmp_path):
    _assert_refused(_zip(tmp_path / "a.zip", {"ok.txt": b"1", "../evil.txt": b"x"}), tmp_path,
                    r"'\.\./evil\.txt'.*outside")


def test_extract_refuses_absolute_members(tmp_path):
    _assert_refused(_zip(tmp_path / "a.zip", {"/tmp/evil.txt": b"x"}), tmp_path, "absolute")
    (tmp_path / "a.zip").unlink()
    _assert_refused(_tar(tmp_path / "a.tar", {"/tmp/evil.txt": b"x"}), tmp_path, "absolute")


@pytest.mark.parametrize("members, match", [
    ({"link": ("sym", "../../outside")}, "symlink 'link -> ../../outside'"),
    ({"link": ("sym", "/etc/passwd")}, "absolute"),
    ({"sub/link": ("sym", "../..")}, "outside"),
    ({"link": ("sym", "."), "link/../evil.txt": b"x"}, "through the symlink 'link'"),
    ({"hard": ("hard", "../outside")}, "hardlink"),
])
def test_extract_refuses_links_outside(tmp_path, members, match):
    _assert_refused(_tar(tmp_path / "a.tar", members), tmp_path, match)


def test_extract_zip_and_tar_gz(tmp_path):
    members = {"top.txt": b"top", "sub/dir/leaf.txt": b"leaf"}
    for archive in [_zip(tmp_path / "a.zip", members),
                    _tar(tmp_path / "a.tgz", {**members, "sub/link": ("sym", "dir/leaf.txt")},
                         mode="w:gz")]:
        out = extract_archive(archive, tmp_path / archive.name.replace(".", "_"))
        assert (out / "top.txt").read_bytes() == b"top"
        assert (out / "sub" / "dir" / "leaf.txt").read_bytes() == b"leaf"
    assert (tmp_path / "a_tgz" / "sub" / "link").read_bytes() == b"leaf"


def test_extract_into_an_existing_empty_folder(tmp_path):
    archive = _zip(tmp_path / "a.zip", {"top.txt": b"top"})
    (tmp_path / "out").mkdir()
    assert extract_archive(archive, tmp_path / "out") == tmp_path / "out"
    assert sorted(os.listdir(tmp_path / "out")) == ["top.txt"]
    assert sorted(os.listdir(tmp_path)) == ["a.zip", "out"]  # no temporary folder left


def test_extract_into_a_non_empty_folder_says_what_is_there(tmp_path):
    archive = _zip(tmp_path / "a.zip", {"top.txt": b"new"})
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    for i in range(7):
        (out / f"f{i}.txt").write_bytes(b"old")
    with pytest.raises(ValueError, match=r"(?s)is not empty: it holds 8 entries \(f0\.txt, f1\.txt, "
                                         r"f2\.txt, f3\.txt, f4\.txt, \.\.\. \(3 more\)\)"
                                         r".*new or empty folder.*shutil\.rmtree"):
        extract_archive(archive, out)
    assert (out / "f0.txt").read_bytes() == b"old" and len(os.listdir(out)) == 8  # untouched
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        extract_archive(archive, tmp_path / "file")
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "sub").mkdir()
    with pytest.raises(ValueError, match=r"holds 1 entry \(sub/\)"):
        extract_archive(archive, tmp_path / "one")


def test_fetch_extracts_once(server, cache, tmp_path):
    blob = _tar(tmp_path / "scene.tar.gz", {"scene/a.txt": b"a"}, mode="w:gz").read_bytes()
    server.files["/scene.tar.gz"] = blob
    res = Resource("scene.tar.gz", hashlib.sha256(blob).hexdigest(), [server.url("/scene.tar.gz")],
                   extract=True)
    out = _fetch(res)
    assert out == cache / "scene" and (out / "scene" / "a.txt").read_bytes() == b"a"
    assert _fetch(res) == out and len(server.log) == 1
