"""Seeds by argument (lib.models.seeding): every model of lib.models takes ``seed=``; the same seed gives
the same initial weights, another seed others, and building a model leaves the global stream alone."""
import pytest
import torch

from lib.models import multi_view as mv
from lib.models import single_view as sv
from lib.models.dgcnn import DGCNN, DGCNNConfig
from lib.models.judge import Judge, JudgeConfig
from lib.models.nerf import NeRFConfig, NeRFField
from lib.models.pointnet import PointNet, PointNetConfig
from lib.models.sdf import SDFNetwork
from lib.models.splatter import SplatterConfig, SplatterImage
from lib.models.text_prior import TinyTextEncoder

BUILDERS = {
    "NeRFField": lambda seed: NeRFField(NeRFConfig(hidden=16, n_layers=2, skip=None, hidden_dir=8), seed=seed),
    "SDFNetwork": lambda seed: SDFNetwork(n_freqs=2, hidden=16, n_layers=2, n_features=4, seed=seed),
    "SingleViewModel": lambda seed: sv.SingleViewModel("points", 32, n_points=16, seed=seed),
    "VoxelDecoder": lambda seed: sv.VoxelDecoder(feature_dim=8, channels=(8, 8, 4, 4, 2), seed=seed),
    "PointDecoder": lambda seed: sv.PointDecoder(feature_dim=8, n_points=16, hidden=(8, 8), seed=seed),
    "MeshDecoder": lambda seed: sv.MeshDecoder(feature_dim=8, level=1, seed=seed),
    "ColoredPointNet": lambda seed: mv.ColoredPointNet(mv.ColoredPointNetConfig(n_views=2, image_size=16, n_points=8,
                                                                                feat_dim=8, hidden=8), seed=seed),
    "MultiViewVAEGAN": lambda seed: mv.MultiViewVAEGAN(mv.VAEGANConfig(image_size=16, feat_dim=8, latent_dim=4,
                                                                       gen_channels=(4, 4, 2)), seed=seed),
    "SplatterImage": lambda seed: SplatterImage(SplatterConfig(channels=(8, 16), groups=4), seed=seed),
    "PointNet": lambda seed: PointNet(PointNetConfig(num_classes=3, global_dim=16), seed=seed),
    "DGCNN": lambda seed: DGCNN(DGCNNConfig(num_classes=3, k=4, widths=(8, 8), emb_dim=16), seed=seed),
    "Judge": lambda seed: Judge(JudgeConfig(image_size=16, classes=("chair", "car"), width=8), seed=seed),
    "TinyTextEncoder": lambda seed: TinyTextEncoder(10, max_length=4, dim=8, n_heads=2, seed=seed),
}


def weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_seed_fixes_the_weights_and_leaves_the_global_stream(name):
    state = torch.get_rng_state()
    a, b, c = (weights(BUILDERS[name](seed)) for seed in (3, 3, 4))
    assert torch.equal(torch.get_rng_state(), state), f"{name}(seed=...) moved the global random stream"
    assert torch.equal(a, b), f"{name}: the same seed gave different weights"
    assert not torch.equal(a, c), f"{name}: another seed gave the same weights"


NO_RANDOM_INIT = {"HarmonicEmbedding", "BoxDensity", "GaussianModel", "ViewPool"}  # built from given numbers


def test_every_model_class_takes_a_seed():
    import importlib
    import inspect
    import pkgutil

    import lib.models
    from torch import nn
    public = {}
    for info in pkgutil.iter_modules(lib.models.__path__):
        module = importlib.import_module(f"lib.models.{info.name}")
        public.update({name: obj for name, obj in vars(module).items() if inspect.isclass(obj)
                       and issubclass(obj, nn.Module) and obj.__module__ == module.__name__ and not name.startswith("_")})
    seeded = {name for name, cls in public.items() if getattr(cls.__init__, "seeded", False)}
    assert set(public) - seeded == NO_RANDOM_INIT, f"models without seed= (decorate __init__ with @seeded): " \
                                                   f"{sorted(set(public) - seeded - NO_RANDOM_INIT)}"
    assert set(BUILDERS) <= seeded


def test_seed_is_in_the_signature():
    import inspect
    assert "seed" in inspect.signature(PointNet).parameters  # help(PointNet) shows it
    assert "seed" in inspect.signature(sv.SingleViewModel).parameters  # also after **decoder_kwargs


def test_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        BUILDERS["PointNet"]("0")
