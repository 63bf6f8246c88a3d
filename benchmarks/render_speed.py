"""Render time vs image size and face / point count, for lib's renderers.

Tables: PyTorch3D's mesh and point rasterizers (skipped when PyTorch3D is not installed), lib's
pure-torch z-buffer (``lib.render.zbuffer.render_views``) and the sphere-traced still life
(``lib.data.still_life.render_scene``, 2x2 supersampling, as its Blender-format writer uses it).
Later notebooks size their smoke settings from these tables. Run on the machine you care about:

    .venv/bin/python benchmarks/render_speed.py              # CPU, default sizes
    .venv/bin/python benchmarks/render_speed.py --device cuda --sizes 128 256 512

Each cell is the median of ``--repeats`` renders of one view (after one warm-up), in milliseconds.
"""
from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics

import torch

from lib import cameras, geometry
from lib.data.still_life import render_scene
from lib.primitives import ico_sphere
from lib.render.common import RenderSettings
from lib.render.mesh import render_mesh
from lib.render.points import render_points
from lib.render.zbuffer import render_views
from lib.train import Stopwatch


def median_ms(fn, repeats: int, device: str) -> float:
    fn()  # warm-up (lazy imports, allocations)
    times = []
    for _ in range(repeats):
        with Stopwatch(device) as watch:
            fn()
        times.append(watch.seconds)
    return 1000 * statistics.median(times)


def table(title: str, col_name: str, rows: dict, sizes) -> str:
    head = f"| {col_name} | " + " | ".join(f"{s} px" for s in sizes) + " |"
    lines = [f"\n{title} (ms per view, median)", head, "|" + "---|" * (len(sizes) + 1)]
    lines += [f"| {k} | " + " | ".join(f"{v:.1f}" for v in vals) + " |" for k, vals in rows.items()]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 96, 128, 256])
    ap.add_argument("--levels", type=int, nargs="+", default=[2, 3, 4, 5], help="ico-sphere levels (faces = 20 * 4^level)")
    ap.add_argument("--points", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(torch.get_num_threads())
    c2w = cameras.orbit_poses(torch.tensor([30.0]), 20.0, 3.0)
    print(f"# render_speed on {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, device {args.device}")

    spheres = []
    for level in args.levels:
        sphere = ico_sphere(level)
        spheres.append(sphere.with_colors(geometry.color_gradient(sphere.verts, (0, 0, 1), (1, 0, 0))))
    K = {s: cameras.intrinsics_from_fov(50.0, s) for s in args.sizes}

    if importlib.util.find_spec("pytorch3d") is None:
        print("\n(PyTorch3D is not installed: its mesh and point rasterizers are skipped)")
    else:
        mesh_rows = {f"{m.num_faces} faces": [
            median_ms(lambda s=s, m=m: render_mesh(m, c2w, K[s], RenderSettings(image_size=s, device=args.device)),
                      args.repeats, args.device) for s in args.sizes] for m in spheres}
        print(table("Mesh renderer (PyTorch3D rasterizer + Phong)", "faces", mesh_rows, args.sizes))
        point_rows = {}
        gen = torch.Generator().manual_seed(0)
        for n in args.points:
            pts = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=-1)
            point_rows[f"{n} points"] = [
                median_ms(lambda s=s: render_points(pts, (pts + 1) / 2, c2w, K[s],
                                                    RenderSettings(image_size=s, device=args.device)),
                          args.repeats, args.device) for s in args.sizes]
        print(table("Point renderer (PyTorch3D points rasterizer + alpha compositing)", "points", point_rows,
                    args.sizes))

    # lib's pure-torch renderers run on the CPU tensors they are given
    zbuf_rows = {f"{m.num_faces} faces": [median_ms(lambda s=s, m=m: render_views(m, c2w, K[s], s), args.repeats, "cpu")
                                          for s in args.sizes] for m in spheres}
    print(table("Z-buffer (lib.render.zbuffer.render_views, pure torch, CPU)", "faces", zbuf_rows, args.sizes))
    scene_K = {s: cameras.intrinsics_from_fov(40.0, s) for s in args.sizes}
    scene_c2w = cameras.orbit_poses(torch.tensor([30.0]), 30.0, 4.0)
    scene_rows = {"still life": [median_ms(lambda s=s: render_scene(scene_c2w, scene_K[s], s), args.repeats, "cpu")
                                 for s in args.sizes]}
    print(table("Sphere-traced SDF scene (lib.render.raytrace via lib.data.still_life, 2x2 rays/pixel, CPU)",
                "scene", scene_rows, args.sizes))


if __name__ == "__main__":
    main()
