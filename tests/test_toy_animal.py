"""lib.data.toy_animal's ``facing``: the toy animal can stand as the PyTorch3D cow does (head towards -z)."""
import pytest
import torch

from lib.cameras import rotation
from lib.data.toy_animal import toy_animal


@pytest.fixture(scope="module")
def side_on():
    return toy_animal(seed=0, resolution=24)


@pytest.mark.parametrize("facing,degrees", [("+x", 0.0), ("-z", 90.0), ("-x", 180.0), ("+z", -90.0)])
def test_facing_turns_the_animal_about_y(side_on, facing, degrees):
    m = toy_animal(seed=0, resolution=24, facing=facing)
    torch.testing.assert_close(m.verts, side_on.verts @ rotation("y", degrees).T, atol=1e-6, rtol=0)
    assert torch.equal(m.faces, side_on.faces) and torch.equal(m.verts_uvs, side_on.verts_uvs)
    torch.testing.assert_close(m.verts.min(0).values, -m.verts.max(0).values)  # box still centred


def test_facing_minus_z_puts_the_snout_at_the_smallest_z(side_on):
    m = toy_animal(seed=0, resolution=24, facing="-z")
    assert m.verts[:, 2].argmin() == side_on.verts[:, 0].argmax()  # the snout: front = smallest z, as the cow
    extent = m.verts.max(0).values - m.verts.min(0).values
    assert extent[2] > 2.5 * extent[0]  # long axis along z: deep when seen from the +z axis


def test_unknown_facing_is_rejected():
    with pytest.raises(ValueError, match="facing"):
        toy_animal(seed=0, resolution=24, facing="up")
