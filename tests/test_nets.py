"""Image architectures: the sizes they make, the mismatches they refuse, and their options."""

import pytest
import torch
from torch import nn

from ganzoo.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from ganzoo.nets.layers import ConditionalBatchNorm2d, check_models, spectral_normalize
from ganzoo.nets.resnet import ResNetDiscriminator, ResNetGenerator

NETS = {
    "dcgan": (lambda shape, **k: DCGANGenerator(8, shape, width=8, **k),
              lambda shape, **k: DCGANDiscriminator(shape, width=8, **k)),
    "resnet": (lambda shape, **k: ResNetGenerator(8, shape, width=8, **k),
               lambda shape, **k: ResNetDiscriminator(shape, width=8, **k)),
}


@pytest.mark.parametrize("arch", NETS)
@pytest.mark.parametrize("shape", [(1, 16, 16), (3, 32, 32), (3, 64, 64)])
def test_generator_follows_data_shape(arch, shape):
    make_g, make_d = NETS[arch]
    G, D = make_g(shape), make_d(shape)
    x = G(torch.randn(5, 8))
    assert tuple(x.shape) == (5, *shape)
    assert x.min() >= -1 and x.max() <= 1  # tanh: images in [-1, 1]
    assert D(x).shape == (5,)


@pytest.mark.parametrize("arch", NETS)
@pytest.mark.parametrize("shape", [(3, 48, 48), (3, 32, 16), (2,), (3, 8, 8)])
def test_impossible_size_names_both_sides(arch, shape):
    for make in NETS[arch]:
        with pytest.raises(ValueError) as err:
            make(shape)
        assert str(err.value) == (f"model: {arch} generates 16x16, 32x32 or 64x64 images, "
                                  f"data.shape is {list(shape)}")


def test_dcgan_layout_follows_radford():
    G = DCGANGenerator(100, (3, 64, 64))
    widths = [c.out_channels for c in G.convs] + [G.out.out_channels]
    assert widths == [512, 256, 128, 64, 3]  # 4x4x1024 in the paper's LSUN figure, /2
    D = DCGANDiscriminator((3, 64, 64))
    convs = [m for m in D.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512]
    assert not isinstance(D.features[1], nn.BatchNorm2d)  # no BN on D's input layer


@pytest.mark.parametrize("arch", NETS)
def test_conditional_generator_and_projection_discriminator(arch):
    make_g, make_d = NETS[arch]
    G = make_g((1, 16, 16), conditional=True, num_classes=10)
    D = make_d((1, 16, 16), conditional=True, num_classes=10)
    torch.manual_seed(0)
    z = torch.randn(4, 8)
    G.eval()  # batch statistics out of the way: only the label changes the output
    with torch.no_grad():  # per-class scales and shifts that differ
        for m in G.modules():
            if isinstance(m, ConditionalBatchNorm2d) and m.num_classes:
                m.embed.weight.normal_()
    a, b = G(z, torch.tensor([0, 1, 2, 3])), G(z, torch.tensor([3, 2, 1, 0]))
    assert a.shape == b.shape == (4, 1, 16, 16)
    assert not torch.allclose(a, b)
    torch.testing.assert_close(a[[3]], G(z[[3]], torch.tensor([3])))  # per sample, by label
    # The projection term: D(x, y) - D(x, y') = <embed(y) - embed(y'), phi(x)>.
    with torch.no_grad():
        D.head.embed.weight.normal_()
    x = torch.randn(4, 1, 16, 16)
    assert not torch.allclose(D(x, torch.zeros(4, dtype=torch.long)),
                              D(x, torch.ones(4, dtype=torch.long)))
    with pytest.raises(ValueError, match="class-conditional and needs labels"):
        D(x)
    with pytest.raises(ValueError, match="model.conditional: .* needs labelled data"):
        make_g((1, 16, 16), conditional=True, num_classes=0)


def test_conditional_batch_norm_starts_as_batch_norm():
    G = DCGANGenerator(8, (1, 16, 16), width=8, conditional=True, num_classes=3)
    U = DCGANGenerator(8, (1, 16, 16), width=8)
    U.load_state_dict({k: v for k, v in G.state_dict().items() if "embed" not in k},
                      strict=False)
    with torch.no_grad():
        for (name, p) in U.named_parameters():
            if name.endswith("bn.weight"):
                p.fill_(1.0)
            elif name.endswith("bn.bias"):
                p.zero_()
    z = torch.randn(6, 8)
    torch.testing.assert_close(G(z, torch.tensor([0, 1, 2, 0, 1, 2])), U(z))


def test_spectral_norm_bounds_every_layer():
    D = spectral_normalize(DCGANDiscriminator((1, 16, 16), width=8, norm="none"))
    D(torch.randn(4, 1, 16, 16))  # one power iteration in training mode
    params = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert params and all(hasattr(m, "parametrizations") for m in params)
    lin = D.head.linear
    sigma = torch.linalg.matrix_norm(lin.weight, ord=2)
    torch.testing.assert_close(sigma, torch.tensor(1.0), atol=0.05, rtol=0)


def test_mismatched_generator_and_discriminator_are_refused():
    G, D = DCGANGenerator(8, (1, 16, 16), width=8), DCGANDiscriminator((3, 16, 16), width=8)
    with pytest.raises(ValueError) as err:
        check_models(G, D, (1, 16, 16))
    assert str(err.value) == ("model.discriminator: the discriminator is built for images "
                              "of shape [3, 16, 16], data.shape is [1, 16, 16]")


def test_batch_norm_critic_with_gradient_penalty_is_refused():
    G, D = DCGANGenerator(8, (1, 16, 16), width=8), DCGANDiscriminator((1, 16, 16), width=8)
    check_models(G, D, (1, 16, 16))  # fine without a penalty
    with pytest.raises(ValueError) as err:
        check_models(G, D, (1, 16, 16), penalty="loss=wgan_gp")
    assert str(err.value) == (
        "model.discriminator: batch norm in a critic trained with a gradient penalty "
        "(loss=wgan_gp) ties each sample's gradient to its batch; use layer norm or none "
        "(dcgan: model.discriminator.norm=layer)")
    layer = DCGANDiscriminator((1, 16, 16), width=8, norm="layer")
    check_models(G, layer, (1, 16, 16), penalty="loss=wgan_gp")
