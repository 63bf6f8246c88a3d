"""Data: downloads, file formats and datasets, real ones and their offline procedural stand-ins.

- Downloads: ``download`` (cache, mirrors, sha256, retries), ``sources`` (the registry of real
  data: the cow, nerf_synthetic, R2N2), ``archive`` (safe extraction).
- File formats: ``mesh_io`` (Wavefront OBJ + MTL + texture), ``binvox`` (voxel grids),
  ``blender`` (NeRF-synthetic transforms + images; PyTorch3D's NeRF files), ``r2n2`` (the
  R2N2/ShapeNet layout: views, cameras, voxels, meshes, splits; ``R2N2Dataset``), ``capture``
  (multi-view RGB-D captures of a mesh).
- Procedural data (deterministic from a seed): ``toy_animal`` (the textured offline cow),
  ``shapes`` (the registry of part-labelled shapes: ``furniture`` chairs, vases, lamps and
  ``vehicles`` cars, airplanes, built with ``shape_parts``), ``still_life`` (a ray-traced scene
  in the Blender format), ``r2n2_procedural`` (registry shapes written in the R2N2 layout).

Renderers are not here: they live in ``lib.render``.
"""
