"""The rehearsal's stand-ins (tools/rehearsal/files.py, models.py): written once per session, fetched
over HTTP from 127.0.0.1 through ``lib.data.sources`` with each registry entry pinned to its
stand-in (download, sha256 check, extraction: the notebooks' own path), then read by lib's readers.
Also: the same seed gives the same bytes, the whole set stays small, and a stand-in out of the
real format fails with the reader's own error, as a bad real file would. The hub models are
loaded in a subprocess (huggingface_hub reads HF_HUB_OFFLINE / HF_HUB_CACHE at import)."""

import dataclasses
import functools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lib.data import blender, download, point_clouds, r2n2, sources, srn, truck
from lib.data.download import Resource
from lib.data.mesh_io import load_obj
from tools.rehearsal.files import COUNTS, write_files
from tools.rehearsal.models import install_snapshot, write_hub_cache, write_torch_hub

MAX_TOTAL_BYTES = 4_000_000  # every file stand-in together (now about 1.5 MB)
FETCHED = {"cow_obj", "cow_mtl", "cow_texture", "nerf_synthetic", "pt3d_lego_cameras", "pt3d_lego_images",
           "r2n2_chairs", "srn_cars", "a5_point_clouds"}


@pytest.fixture(scope="session")
def standins(tmp_path_factory):
    out = tmp_path_factory.mktemp("standins")
    start = time.perf_counter()
    records = write_files(out, seed=0)
    return out, records, time.perf_counter() - start


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def fetched(standins, tmp_path_factory):
    """The stand-ins served on 127.0.0.1 and fetched by ``lib.data.sources`` as the notebooks fetch
    them, each registry entry pinned to its stand-in; returns the folders and files the fetch
    functions return."""
    out, records, _ = standins
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/"
    cache = tmp_path_factory.mktemp("cache")
    kw = dict(cache_dir=cache, retries=0, progress=False)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv(getattr(download, "REHEARSAL_ENV", "COURSE3D_REHEARSAL"), raising=False)
            for name in FETCHED:
                rec = records[name]
                mp.setitem(sources.SOURCES, name, dataclasses.replace(
                    sources.SOURCES[name], urls=[base + rec["path"]], sha256=rec["sha256"], size=rec["size"]))
            truck_files = [(key[len("truck/"):], rec) for key, rec in records.items() if key.startswith("truck/")]
            mp.setattr(sources, "truck_resources", lambda: [
                (path, Resource(Path(path).name, sha256=rec["sha256"], size=rec["size"], urls=[base + rec["path"]]))
                for path, rec in truck_files])
            return {"cow": sources.fetch_cow_mesh(**kw),
                    "nerf_synthetic": sources.fetch_nerf_synthetic("lego", **kw),
                    "pt3d": sources.fetch_pytorch3d_nerf("lego", **kw),
                    "r2n2": r2n2.find_r2n2_root(sources.fetch("r2n2_chairs", **kw)),
                    "srn": sources.fetch_srn_cars(**kw),
                    "a5": sources.fetch_a5_point_clouds(**kw),
                    "truck": sources.fetch_truck_scene(workers=2, **kw)}
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------ the set: names, bytes, size
def test_records_name_the_real_files(standins):
    out, records, seconds = standins
    assert FETCHED <= set(records)
    for name in FETCHED:
        assert Path(records[name]["path"]).name == sources.SOURCES[name].filename, name
    real_truck = {path for path, _ in sources.truck_resources()}
    truck_paths = {key[len("truck/"):] for key in records if key.startswith("truck/")}
    assert len(truck_paths) == 2 * COUNTS["truck"]["frames"] + 1
    assert truck_paths <= real_truck  # the assignment's own file names (frames numbered from 1)
    for rec in records.values():
        path = out / rec["path"]
        assert path.stat().st_size == rec["size"] and download.sha256sum(path) == rec["sha256"]
    print(f"write_files: {seconds:.1f} s")


def test_total_size_is_small(standins):
    _, records, _ = standins
    total = sum(rec["size"] for rec in records.values())
    by_kind = {}
    for key, rec in records.items():
        kind = "truck" if key.startswith("truck/") else key
        by_kind[kind] = by_kind.get(kind, 0) + rec["size"]
    print("stand-in bytes:", json.dumps(by_kind), "total", total)
    assert total < MAX_TOTAL_BYTES


def test_same_seed_same_bytes(standins, tmp_path):
    _, records, _ = standins
    again = write_files(tmp_path / "again", seed=0)
    assert {k: r["sha256"] for k, r in again.items()} == {k: r["sha256"] for k, r in records.items()}


# ---------------------------------------------------------- each stand-in through lib's reader
def test_cow_loads_with_its_texture(fetched):
    obj = fetched["cow"]
    assert [p.name for p in sorted(obj.parent.glob("cow*")) if p.suffix != ".sha256"] == \
           ["cow.mtl", "cow.obj", "cow_texture.png"]
    mesh = load_obj(obj)
    assert mesh.texture is not None and mesh.texture.shape[-1] == 3 and mesh.faces_uvs.shape == mesh.faces.shape
    extent = mesh.verts.amax(0) - mesh.verts.amin(0)
    assert extent[2] > extent[0]  # long axis z, as the PyTorch3D cow


def test_nerf_synthetic_reads_as_lego(fetched):
    root = fetched["nerf_synthetic"]
    assert root.parts[-2:] == ("nerf_synthetic", "lego")
    for split in blender.SPLITS:
        meta = json.loads((root / f"transforms_{split}.json").read_text())
        assert set(meta) == {"camera_angle_x", "frames"}  # the real keys: no near/far/scene_bounds
        assert set(meta["frames"][0]) == {"file_path", "rotation", "transform_matrix"}
        data = blender.load_blender(root, split)
        n, s = COUNTS["nerf_synthetic"][split], COUNTS["nerf_synthetic"]["image"]
        assert data["images"].shape == (n, s, s, 3) and (data["near"], data["far"]) == (2.0, 6.0)
        assert data["alpha"].min() < 0.5 < data["alpha"].max()  # RGBA with a transparent background
    with Image.open(root / "train" / "r_0.png") as im:
        assert im.mode == "RGBA"


def test_pytorch3d_lego_matches_the_blender_lego(fetched):
    """The same views in both layouts: PyTorch3D's NDC cameras (z-up world) give lib the poses and
    K that the Blender jsons give."""
    for split in blender.SPLITS:
        p3d = blender.load_pytorch3d_nerf(fetched["pt3d"], split=split)
        ref = blender.load_blender(fetched["nerf_synthetic"], split)
        torch.testing.assert_close(p3d["c2w"], ref["c2w"], atol=1e-5, rtol=0)
        torch.testing.assert_close(p3d["K"], ref["K"], atol=1e-4, rtol=0)
        torch.testing.assert_close(p3d["images"], ref["images"], atol=1.5 / 255, rtol=0)
    data = torch.load(fetched["pt3d"], weights_only=True)  # what PyTorch3D's project does
    assert data["cameras"]["R"].dtype == torch.float32 and len(data["split"]) == 3


def test_r2n2_reads_after_extraction(fetched):
    root = fetched["r2n2"]
    assert root.name == "r2n2_shapenet_dataset"
    assert sorted(p.name for p in root.iterdir()) == ["r2n2", "shapenet", "split_03001627.json"]
    assert sorted(p.name for p in (root / "r2n2").iterdir()) == ["ShapeNetRendering", "ShapeNetVoxels"]
    c = COUNTS["r2n2"]
    ds = {s: r2n2.R2N2Dataset(root, s, categories="chair", views=list(range(c["views"])), n_points=64)
          for s in ("train", "val", "test")}
    assert [len(ds[s]) for s in ("train", "val", "test")] == [c["train"], c["val"], c["test"]]
    assert ds["train"].voxel_frame == "mesh_bbox"  # the real data's (no r2n2_info.json)
    item = ds["train"][0]
    assert item["images"].shape == (c["views"], c["image"], c["image"], 3) and item["voxels"].sum() > 0
    assert len(item["model_id"]) == 32 and int(item["model_id"], 16) >= 0
    assert r2n2.to_tensors(ds["test"])["images"].shape[:2] == (c["test"], c["views"])


def test_srn_cars_read_by_split(fetched):
    root, c = fetched["srn"], COUNTS["srn_cars"]
    assert root.name == "srn_cars" and sorted(p.name for p in root.iterdir()) == ["cars_test", "cars_train", "cars_val"]
    train = srn.load_srn_split(root, "cars_train", 16)
    test = srn.load_srn_split(root, "cars_test")
    assert train["images"].shape == (c["train_objects"], c["train_views"], 16, 16, 3) and train["depth"] is None
    assert test["images"].shape == (c["test_objects"], c["test_views"], c["image"], c["image"], 3)
    assert test["view_names"][0][64] == "000064"  # notebook 06's input view of the held-out cars
    torch.testing.assert_close(test["K"][0], srn.srn_intrinsics(c["image"]))
    assert train["images"][..., 0, 0, :].min() > 0.99  # white background
    obj = next((root / "cars_train").iterdir())
    assert sorted(p.name for p in obj.iterdir()) == ["intrinsics.txt", "pose", "rgb"]


def test_a5_point_clouds_read_for_both_tasks(fetched):
    root, c = fetched["a5"], COUNTS["a5"]
    assert root.name == "data"
    cls = point_clouds.load_point_task(root, "cls")
    seg = point_clouds.load_point_task(root, "seg", num_points=100)
    assert cls.train_points.shape == (3 * c["cls_train"], c["points"], 3) and cls.num_classes == 3
    assert sorted(cls.train_labels.unique().tolist()) == [0, 1, 2]
    assert seg.test_labels.shape == (c["seg_test"], 100) and seg.test_labels.dtype == torch.int64
    assert np.load(root / "cls" / "data_train.npy").dtype == np.float32
    assert np.load(root / "seg" / "label_train.npy").dtype == np.int64


def test_truck_reads_as_the_assignment_scene(fetched):
    root, c = fetched["truck"], COUNTS["truck"]
    scene = truck.load_truck(root)
    assert scene["images"].shape == (c["frames"], c["height"], c["width"], 3)
    assert scene["points"].shape == (c["points"], 3) and len(scene["test_idx"]) == 5
    pose = np.load(root / "poses" / "frame000001.npy")
    assert pose.dtype == np.float64 and pose.shape == (16,)
    assert np.load(root / "points" / f"points_{c['points']}.npy").dtype == np.float64


# --------------------------------------------- out of format: the reader's own clear error
def _copy(src: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(src, tmp_path / src.name))


def test_blender_json_without_camera_angle_fails(fetched, tmp_path):
    root = _copy(fetched["nerf_synthetic"], tmp_path)
    path = root / "transforms_train.json"
    meta = json.loads(path.read_text())
    del meta["camera_angle_x"]
    path.write_text(json.dumps(meta))
    with pytest.raises(blender.BlenderFormatError, match="missing key 'camera_angle_x'"):
        blender.load_blender(root, "train")


def test_pytorch3d_cameras_without_principal_point_fail(fetched, tmp_path):
    pth = tmp_path / "lego.pth"
    data = torch.load(fetched["pt3d"], weights_only=True)
    del data["cameras"]["principal_point"]
    torch.save(data, pth)
    shutil.copy(fetched["pt3d"].with_suffix(".png"), tmp_path / "lego.png")
    with pytest.raises(ValueError, match=r"missing \['principal_point'\]"):
        blender.load_pytorch3d_nerf(pth)


@pytest.mark.parametrize("change, match", [
    ("points as float16", "expected float32 or float64 points, found dtype float16"),
    ("labels as text", "expected integer labels"),
    ("labels off by 0.5", "expected integral labels")])
def test_a5_arrays_of_a_wrong_dtype_fail(fetched, tmp_path, change, match):
    root = _copy(fetched["a5"], tmp_path)
    data_path, label_path = root / "cls" / "data_train.npy", root / "cls" / "label_train.npy"
    if change == "points as float16":
        np.save(data_path, np.load(data_path).astype(np.float16))
    elif change == "labels as text":
        np.save(label_path, np.load(label_path).astype("<U1"))
    else:
        np.save(label_path, np.load(label_path).astype(np.float32) + 0.5)
    with pytest.raises(ValueError, match=match):
        point_clouds.load_point_task(root, "cls")


def test_truck_pose_of_the_wrong_length_fails(fetched, tmp_path):
    root = _copy(fetched["truck"], tmp_path)
    np.save(root / "poses" / "frame000002.npy", np.zeros(12))
    with pytest.raises(ValueError, match=r"frame000002\.npy: expected 16 numbers .* got 12"):
        truck.load_truck(root)


def test_srn_pose_of_the_wrong_length_fails(fetched, tmp_path):
    root = _copy(fetched["srn"], tmp_path)
    pose = next((root / "cars_test").iterdir()) / "pose" / "000064.txt"
    pose.write_text(" ".join(pose.read_text().split()[:12]))
    with pytest.raises(ValueError, match=r"000064\.txt: expected 16 numbers .* got 12"):
        srn.load_srn_split(root, "cars_test")


def test_r2n2_model_without_a_view_fails(fetched, tmp_path):
    root = _copy(fetched["r2n2"], tmp_path)
    model_id = next(iter(json.loads((root / "split_03001627.json").read_text())["train"]["03001627"]))
    (root / "r2n2" / "ShapeNetRendering" / "03001627" / model_id / "rendering" / "05.png").unlink()
    with pytest.raises(FileNotFoundError, match="view 5 of model .* is missing"):
        r2n2.R2N2Dataset(root, "train", n_points=16)


def test_cow_without_its_texture_fails(fetched, tmp_path):
    folder = tmp_path / "cow"
    folder.mkdir()
    for name in ("cow.obj", "cow.mtl"):
        shutil.copy(fetched["cow"].with_name(name), folder / name)
    with pytest.raises(FileNotFoundError, match="texture image 'cow_texture.png' not found"):
        load_obj(folder / "cow.obj")


# --------------------------------------------------------- the hub models, loaded offline
_LOAD_OFFLINE = r"""
import json, torch, torchvision
from diffusers import StableDiffusionPipeline
from transformers import CLIPTokenizer
from lib.pretrained.clip import load_clip_encoder
from lib.guidance.load import load_guide
from lib.guidance.stable_diffusion import SD_MODEL_IDS
from lib.pretrained.depth import estimate_inverse_depth, load_depth_estimator
from lib.models.single_view import ResNet18Encoder

torch.manual_seed(0)
r = {}
guide = load_guide("stable diffusion", "cpu")  # lib's path: the fp16 variant files, cast to float32
emb = guide.embed(["", "a chair, side view"])
latents = guide.to_model(torch.rand(1, 64, 64, 3))
eps = guide.noise_pred_fn(latents, torch.tensor([500]), emb[1:])
pictures = guide.from_model(latents)
r["guide"] = [list(guide.model_shape), list(latents.shape), list(emb.shape), list(eps.shape), list(pictures.shape),
              len(guide.alphas_cumprod)]
tok = CLIPTokenizer.from_pretrained(SD_MODEL_IDS[0], subfolder="tokenizer")
ids = tok(["a chair, side view"], padding="max_length", max_length=tok.model_max_length, truncation=True).input_ids[0]
r["tokens"] = [tok.convert_ids_to_tokens(ids[:7]), len(ids)]
full = StableDiffusionPipeline.from_pretrained(SD_MODEL_IDS[0])  # the float32 files, safety checker included
out = full("a chair", num_inference_steps=2, height=64, width=64, output_type="np")
r["full"] = [str(full.unet.dtype), type(full.scheduler).__name__, type(full.safety_checker).__name__,
             type(full.feature_extractor).__name__, list(out.images.shape)]
half = StableDiffusionPipeline.from_pretrained(SD_MODEL_IDS[0], variant="fp16", torch_dtype=torch.float16)
r["fp16"] = [str(half.unet.dtype), str(half.vae.dtype), str(half.text_encoder.dtype)]
depth = estimate_inverse_depth(torch.rand(2, 20, 24, 3))
r["depth"] = [list(depth.shape), float(depth.std())]
try:
    load_depth_estimator("rehearsal/depth-without-config")
except RuntimeError as err:
    r["broken"] = str(err)
encode = load_clip_encoder()
r["clip"] = list(encode(torch.rand(2, 40, 40, 3)).shape)
net = torchvision.models.resnet18(weights=torchvision.models.ResNet18_Weights.IMAGENET1K_V1)
r["resnet"] = list(net(torch.rand(1, 3, 64, 64)).shape)
r["encoder"] = list(ResNet18Encoder(64, pretrained=True)(torch.rand(1, 64, 64, 3)).shape)
print("RESULT " + json.dumps(r))
"""


@pytest.fixture(scope="session")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    start = time.perf_counter()
    ids = write_hub_cache(root / "hf", seed=0)
    written = write_torch_hub(root / "torch", seed=0)
    seconds = time.perf_counter() - start
    depth = next((root / "hf" / "models--depth-anything--Depth-Anything-V2-Small-hf" / "snapshots").iterdir())
    broken = root / "broken"  # weights and processor, no config.json
    broken.mkdir()
    for name in ("model.safetensors", "preprocessor_config.json"):
        shutil.copy(depth / name, broken / name)
    install_snapshot(root / "hf", "rehearsal/depth-without-config", broken)
    return root, ids, written, seconds


def test_hub_cache_layout_and_determinism(hub, tmp_path):
    root, ids, written, seconds = hub
    print(f"write_hub_cache + write_torch_hub: {seconds:.1f} s")
    assert written == ["hub/checkpoints/resnet18-f37072fd.pth"]
    sizes = {}
    for repo_id in ids:
        repo = root / "hf" / ("models--" + repo_id.replace("/", "--"))
        commit = (repo / "refs" / "main").read_text()
        assert len(commit) == 40 and (repo / "snapshots" / commit).is_dir()
        sizes[repo_id] = sum(p.stat().st_size for p in repo.rglob("*") if p.is_file())
    snapshot = next((root / "hf" / "models--stable-diffusion-v1-5--stable-diffusion-v1-5" / "snapshots").iterdir())
    for part, name in (("unet", "diffusion_pytorch_model"), ("vae", "diffusion_pytorch_model"),
                       ("text_encoder", "model"), ("safety_checker", "model")):
        for file in (f"{name}.safetensors", f"{name}.fp16.safetensors"):
            assert (snapshot / part / file).is_file(), f"{part}/{file}"
    assert sorted(p.name for p in (snapshot / "tokenizer").iterdir()) == \
           ["merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"]
    state = torch.load(root / "torch" / written[0], weights_only=True)
    assert state["conv1.weight"].shape == (64, 3, 7, 7) and state["conv1.weight"].dtype == torch.float16
    print("hub bytes:", json.dumps(sizes), "resnet", (root / "torch" / written[0]).stat().st_size)
    assert max(sizes.values()) < 5_000_000
    again = write_torch_hub(tmp_path, seed=0)
    assert download.sha256sum(tmp_path / again[0]) == download.sha256sum(root / "torch" / written[0])


def test_hub_models_load_offline_through_lib(hub):
    root, *_ = hub
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_CACHE": str(root / "hf"),
           "HF_HOME": str(root / "hf_home"), "TORCH_HOME": str(root / "torch"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _LOAD_OFFLINE], env=env, capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).resolve().parents[1])
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert proc.returncode == 0 and line is not None, proc.stdout[-2000:] + proc.stderr[-4000:]
    r = json.loads(line[len("RESULT "):])
    words = ["<|startoftext|>", "a</w>", "chair</w>", ",</w>", "side</w>", "view</w>", "<|endoftext|>"]
    assert r["tokens"] == [words, 77]  # English words, padded to 77
    assert r["guide"] == [[4, 64, 64], [1, 4, 64, 64], [2, 77, 32], [1, 4, 64, 64], [1, 512, 512, 3], 1000]
    assert r["full"] == ["torch.float32", "PNDMScheduler", "StableDiffusionSafetyChecker", "CLIPImageProcessor",
                         [1, 64, 64, 3]]
    assert r["fp16"] == ["torch.float16"] * 3
    assert r["depth"][0] == [2, 20, 24] and r["depth"][1] > 0.01  # a non-constant relative depth
    assert "rehearsal/depth-without-config" in r["broken"] and "HF_HUB_OFFLINE is set" in r["broken"]
    assert r["clip"] == [2, 8] and r["resnet"] == [1, 1000] and r["encoder"] == [1, 512]
