"""The R2N2-layout dataset: procedural cars and airplanes, the writer, the camera conversion
(checked against Mesh R-CNN's extrinsics and against a PyTorch3D render), the reader, and every
kind of broken input the reader must refuse with a message naming the file."""
import json
import math
import shutil

import numpy as np
import pytest
import torch

from lib import cameras
from lib.data import r2n2
from lib.data.binvox import write_binvox
from lib.data.furniture import chair
from lib.data.r2n2 import R2N2Dataset, r2n2_camera, to_tensors
from lib.data.r2n2_procedural import write_procedural_r2n2
from lib.data.vehicles import AIRPLANE_PARTS, CAR_PARTS, airplane, car
from lib.mesh import normalize_mesh, signed_volume
from lib.voxels import voxelize

CHAIR = "03001627"
SIZE = 32


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """10 procedural chairs (7 train, 1 val, 2 test) at 32 px."""
    return write_procedural_r2n2(tmp_path_factory.mktemp("r2n2") / "chairs", n_models=10, image_size=SIZE, seed=3)


@pytest.fixture()
def broken(root, tmp_path):
    """A fresh copy of the dataset to damage, and the files of its first training model."""
    dst = shutil.copytree(root, tmp_path / "copy")
    model_id = next(iter(json.loads((dst / "split.json").read_text())["train"][CHAIR]))
    files = {"render": dst / "r2n2" / "ShapeNetRendering" / CHAIR / model_id / "rendering",
             "binvox": dst / "r2n2" / "ShapeNetVox32" / CHAIR / model_id / "model.binvox",
             "obj": dst / "shapenet" / CHAIR / model_id / "model.obj"}
    return dst, files


# ----------------------------------------------------------------------- procedural classes
@pytest.mark.parametrize("maker,names", [(car, CAR_PARTS), (airplane, AIRPLANE_PARTS)])
def test_new_procedural_classes(maker, names):
    shapes = [maker(s) for s in range(8)]
    assert torch.equal(maker(3).verts, shapes[3].verts)  # deterministic
    assert len({round(float(m.verts[:, 2].max() - m.verts[:, 2].min()), 4) for m in shapes}) > 4  # varied
    for m in shapes:
        assert m.label_names == list(names) and m.face_labels.max() < len(names)
        assert abs(float(m.verts[:, 1].min())) < 1e-6  # stands on y = 0
        ext = m.verts.max(0).values - m.verts.min(0).values
        assert 0.8 < float(ext[2]) < 1.15 and float(ext[1]) < 0.6  # long along z (front = +z), low
        for lab in m.face_labels.unique():  # every part is closed and wound outward
            part = m.faces[m.face_labels == lab]
            assert signed_volume(m.verts, part) > 0
        assert voxelize(normalize_mesh(m, 1.0, "diagonal"), 32).sum() > 50  # solid enough to voxelise


# --------------------------------------------------------------------------------- cameras
@pytest.mark.needs_pytorch3d
def test_camera_matches_meshrcnn_extrinsics(monkeypatch):
    """Our c2w is Mesh R-CNN's world->Blender-camera RT with the y and z camera axes flipped
    (OpenGL -> OpenCV), and K projects as Blender's 35 mm / 32 mm camera does."""
    import sys
    import types

    # pytorch3d.datasets imports `tabulate` (for printing only), which is not a dependency here
    monkeypatch.setitem(sys.modules, "tabulate", sys.modules.get("tabulate", types.SimpleNamespace(tabulate=str)))
    from pytorch3d.datasets.r2n2.utils import compute_extrinsic_matrix

    rng = np.random.default_rng(0)
    az, el, ratio = rng.uniform(0, 360, 6), rng.uniform(20, 30, 6), rng.uniform(0.6, 0.9, 6)
    c2w, K = r2n2_camera(az, el, ratio, 137)
    X = torch.rand(50, 3) - 0.5
    for i in range(6):
        RT = compute_extrinsic_matrix(az[i], el[i], ratio[i] * r2n2.MAX_CAMERA_DISTANCE)
        torch.testing.assert_close(cameras.world_to_camera(c2w[i])[:3], torch.diag(torch.tensor([1.0, -1, -1])) @ RT[:3],
                                   atol=1e-5, rtol=0)
        p = X @ RT[:3, :3].T + RT[:3, 3]  # Blender camera: x right, y up, looking down -z
        expect = torch.stack([68.5 * (1 + 2.1875 * p[:, 0] / -p[:, 2]), 68.5 * (1 - 2.1875 * p[:, 1] / -p[:, 2])], 1)
        torch.testing.assert_close(cameras.project(X, c2w[i], K[i])[0], expect, atol=1e-3, rtol=0)


def test_metadata_roundtrip(tmp_path):
    rows = np.array([[12.5, 25.0, 0, 0.8, 25], [300.25, 21.0, 0, 0.75, 25]])
    r2n2.write_metadata(tmp_path / "m.txt", rows)
    np.testing.assert_allclose(r2n2.read_metadata(tmp_path / "m.txt", n_required=2), rows)


# ------------------------------------------------------------------------- writer + reader
def test_layout_and_determinism(root, tmp_path):
    split = json.loads((root / "split.json").read_text())
    assert {k: len(v[CHAIR]) for k, v in split.items()} == {"train": 7, "val": 1, "test": 2}
    model_id = sorted(split["train"][CHAIR])[0]
    rdir = root / "r2n2" / "ShapeNetRendering" / CHAIR / model_id / "rendering"
    assert sorted(p.name for p in rdir.glob("*.png")) == [f"{v:02d}.png" for v in range(24)]
    lines = (rdir / "rendering_metadata.txt").read_text().splitlines()
    assert len(lines) == 24 and all(len(ln.split()) == 5 and ln.split()[2] == "0" and ln.split()[4] == "25" for ln in lines)
    mtime = (root / r2n2.INFO_FILE).stat().st_mtime_ns
    assert write_procedural_r2n2(root, n_models=10, image_size=SIZE, seed=3) == root  # cached: not rewritten
    assert (root / r2n2.INFO_FILE).stat().st_mtime_ns == mtime
    other = write_procedural_r2n2(tmp_path / "again", n_models=1, image_size=SIZE, seed=3)  # model 0 only
    for rel in [f"r2n2/ShapeNetRendering/{CHAIR}/{model_id}/rendering/rendering_metadata.txt",
                f"r2n2/ShapeNetRendering/{CHAIR}/{model_id}/rendering/05.png",
                f"r2n2/ShapeNetVox32/{CHAIR}/{model_id}/model.binvox"]:
        assert (other / rel).read_bytes() == (root / rel).read_bytes()


def test_items(root):
    ds = R2N2Dataset(root, "train", n_points=500)
    assert len(ds) == 7 and ds.categories == ["chair"]
    item = ds[0]
    assert item["images"].shape == (24, SIZE, SIZE, 3) and item["images"].dtype == torch.float32
    assert item["voxels"].shape == (32, 32, 32) and set(item["voxels"].unique().tolist()) <= {0.0, 1.0}
    assert item["points"].shape == (500, 3) and item["c2w"].shape == (24, 4, 4) and item["K"].shape == (24, 3, 3)
    assert item["category"] == "chair" and item["model_id"] == ds.records[0].model_id
    assert float(item["images"].min()) >= 0 and float(item["images"].max()) <= 1
    assert torch.allclose(item["images"][:, 0, 0], torch.ones(24, 3))  # composited on white
    mesh = ds.mesh(0)
    lo, hi = mesh.verts.min(0).values, mesh.verts.max(0).values
    assert abs(float((hi - lo).norm()) - 1) < 1e-4 and float((lo + hi).abs().max()) < 1e-4  # ShapeNet normalisation
    assert torch.equal(item["voxels"].bool(), voxelize(mesh, 32))
    assert torch.equal(R2N2Dataset(root, "train", n_points=500)[0]["points"], item["points"])  # seeded


def _alpha_masks(rec):
    """(24, H, W) float: the coverage of each pixel (2x2 samples) in a model's 24 PNGs."""
    from PIL import Image

    return torch.stack([torch.from_numpy(np.asarray(Image.open(rec.render_dir / f"{v:02d}.png"))[..., 3].copy())
                        for v in range(24)]).float() / 255


def test_loaded_cameras_project_the_mesh_into_the_alpha_mask(root):
    """The cameras decoded from rendering_metadata.txt reproduce the PNGs: mesh vertices land on
    covered pixels."""
    ds = R2N2Dataset(root, "test", n_points=100)
    for i in range(len(ds)):
        mesh, (c2w, K) = ds.mesh(i), ds.cameras(i)
        alpha = _alpha_masks(ds.records[i])
        # a vertex on a thin leg's corner may sit on a pixel none of the 2x2 samples covered: allow 1 px
        near = torch.nn.functional.max_pool2d(alpha[:, None], 3, 1, 1)[:, 0] > 0
        for v in range(24):
            uv, _ = cameras.project(mesh.verts, c2w[v], K[v])
            ij = uv.floor().long()
            assert bool(((ij >= 0) & (ij < SIZE)).all())  # the whole object is in the frame
            assert float(near[v, ij[:, 1], ij[:, 0]].float().mean()) > 0.99


@pytest.mark.needs_pytorch3d
def test_pytorch3d_render_with_the_loaded_cameras_matches_the_alpha_mask(root):
    """PyTorch3D's render with the decoded cameras matches the PNGs' alpha mask."""
    from lib.render import RenderSettings, render_mesh

    ds = R2N2Dataset(root, "test", n_points=100)
    for i in range(len(ds)):
        mesh, (c2w, K) = ds.mesh(i), ds.cameras(i)
        K2 = K.clone()
        K2[:, :2] *= 2  # the same cameras for images twice as large, then 2x2 pixels averaged
        ref = render_mesh(mesh, c2w, K2, RenderSettings(image_size=2 * SIZE))["mask"].float()
        ref = torch.nn.functional.avg_pool2d(ref[:, None], 2)[:, 0]
        assert float(((ref - _alpha_masks(ds.records[i])).abs() < 0.01).float().mean()) > 0.98


def test_resize_and_to_tensors(root):
    ds = R2N2Dataset(root, "test", image_size=16, views=[0, 5, 9], n_points=64)
    item = ds[1]
    assert item["images"].shape == (3, 16, 16, 3)
    assert math.isclose(float(item["K"][0, 0, 0]), r2n2.BLENDER_FOCAL_NDC * 8, rel_tol=1e-6)
    data = to_tensors(ds)
    assert data["images"].shape == (2, 3, 16, 16, 3) and data["images"].dtype == torch.uint8
    assert data["voxels"].dtype == torch.bool and data["points"].shape == (2, 64, 3)
    assert data["category"].tolist() == [0, 0] and data["categories"] == ["chair"]
    assert r2n2.find_r2n2_root(root.parent) == root  # an outer folder (the course zip's) works too


def test_multiclass_and_category_filter(tmp_path):
    root = write_procedural_r2n2(tmp_path / "3c", categories=("chair", "car", "airplane"), n_models=2, image_size=16)
    ds = R2N2Dataset(root, "train", n_points=32)
    assert ds.categories == ["chair", "car", "airplane"] and len(ds) == 3
    assert [r.category for r in R2N2Dataset(root, "train", categories=["02691156"], n_points=32).records] == ["airplane"]
    with pytest.raises(ValueError, match="unknown categories"):
        R2N2Dataset(root, "train", categories=["spaceship"])


def test_real_layout_voxels_in_mesh_bbox_frame(tmp_path):
    """Real R2N2 grids carry no usable frame: they are stretched onto the mesh's bounding box."""
    mesh = normalize_mesh(chair(1), 1.0, "diagonal")  # ShapeNet's normalisation
    lo, hi = mesh.verts.min(0).values, mesh.verts.max(0).values
    pad = (hi - lo) / 30
    tight = voxelize(mesh, 32, bounds=((lo - pad).tolist(), (hi + pad).tolist()))
    write_binvox(tmp_path / "m.binvox", tight, translate=(7.0, 7.0, 7.0), scale=3.0)  # a meaningless header
    got = r2n2.canonical_voxels(tmp_path / "m.binvox", mesh, frame="mesh_bbox")
    want = voxelize(mesh, 32)
    assert float((got & want).sum() / (got | want).sum()) > 0.6


def test_obj_without_its_material_files_still_loads(tmp_path):
    mesh = chair(2)
    from lib.data.mesh_io import save_obj

    path = save_obj(tmp_path / "model.obj", mesh)
    path.write_text("mtllib model.mtl\nusemtl material_0\n" + path.read_text())  # model.mtl does not exist
    loaded = r2n2.load_mesh(path)
    assert loaded.num_faces == mesh.num_faces and torch.allclose(loaded.verts, mesh.verts)


# ------------------------------------------------------------------------------ bad input
def test_missing_view(broken):
    dst, f = broken
    (f["render"] / "07.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"07\.png: view 7 of model .* is missing"):
        R2N2Dataset(dst, "train")


def test_image_of_another_size(broken):
    from PIL import Image

    dst, f = broken
    Image.new("RGBA", (20, 20)).save(f["render"] / "03.png")
    with pytest.raises(ValueError, match=r"03\.png: image is 20x20 pixels, expected 32x32"):
        R2N2Dataset(dst, "train")


def test_truncated_binvox(broken):
    dst, f = broken
    raw = f["binvox"].read_bytes()
    f["binvox"].write_bytes(raw[: len(raw) - 21])
    with pytest.raises(ValueError, match=r"model\.binvox.*expected a 32\^3 \.binvox.*truncated"):
        R2N2Dataset(dst, "train")


def test_obj_with_out_of_range_face(broken):
    dst, f = broken
    with open(f["obj"], "a") as fh:
        fh.write("f 1 2 99999\n")
    with pytest.raises(ValueError, match=r"model\.obj line \d+: vertex index 99999 is out of range"):
        R2N2Dataset(dst, "train")


@pytest.mark.parametrize("damage,message", [
    (lambda lines: lines[:4] + ["12.0 abc 0 0.8 25"] + lines[5:], r"rendering_metadata\.txt line 5: expected 5 numbers"),
    (lambda lines: lines[:4] + ["12.0 25.0 0 0.8"] + lines[5:], r"rendering_metadata\.txt line 5: expected 5 numbers"),
    (lambda lines: lines[:20], r"rendering_metadata\.txt: expected 24 lines \(one per view\), got 20"),
])
def test_malformed_metadata(broken, damage, message):
    dst, f = broken
    meta = f["render"] / "rendering_metadata.txt"
    meta.write_text("\n".join(damage(meta.read_text().splitlines())) + "\n")
    with pytest.raises(ValueError, match=message):
        R2N2Dataset(dst, "train")


def test_missing_files_and_bad_split(broken, tmp_path):
    dst, f = broken
    with pytest.raises(ValueError, match="no split 'validation'"):
        R2N2Dataset(dst, "validation")
    f["obj"].unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.obj: mesh missing"):
        R2N2Dataset(dst, "train")
    with pytest.raises(FileNotFoundError, match="no R2N2 dataset here"):
        R2N2Dataset(tmp_path / "nowhere")
