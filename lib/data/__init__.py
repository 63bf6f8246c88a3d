"""Data: downloads, file formats and datasets, real ones and their offline procedural stand-ins.

- Downloads: ``download`` (cache, mirrors, sha256, retries), ``sources`` (the registry of real
  data: the cow, nerf_synthetic, R2N2, the truck scene, SRN cars), ``archive`` (safe extraction).
- File formats: ``mesh_io`` (Wavefront OBJ + MTL + texture), ``binvox`` (voxel grids),
  ``blender`` (NeRF-synthetic transforms + images; PyTorch3D's NeRF files), ``r2n2`` (the
  R2N2/ShapeNet layout: views, cameras, voxels, meshes, splits; ``R2N2Dataset``), ``capture``
  (multi-view RGB-D captures of a mesh), ``gaussian_ply`` (the original 3D Gaussian splatting
  ``point_cloud.ply``), ``truck`` (the 16-825 Gaussian-splatting scene: PyTorch3D NDC cameras),
  ``srn`` (the SRN layout of srn_cars, read and written, with procedural objects and depth).
- Procedural data (deterministic from a seed): ``toy_animal`` (the textured offline cow),
  ``shapes`` (the registry of part-labelled shapes: ``furniture`` chairs, vases, lamps and
  ``vehicles`` cars, airplanes, built with ``shape_parts``), ``still_life`` (a ray-traced scene
  in the Blender format), ``r2n2_procedural`` (registry shapes written in the R2N2 layout).

Renderers are not here: they live in ``lib.render``.
"""
