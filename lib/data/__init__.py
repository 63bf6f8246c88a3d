"""Data: the download layer (``download``), mesh files (``mesh_io``), procedural datasets
(``procedural``) and multi-view capture of a scene (``capture``)."""
