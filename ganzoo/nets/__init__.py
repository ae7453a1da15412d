"""Architectures, one file per family, generator and discriminator side by side."""

# The generators a checkpoint may ask ``ganzoo.sample`` to build. A checkpoint is data from
# anywhere: its config must not choose what code runs, so sampling builds only these
# classes, by dotted path, with plain-data arguments (ganzoo.checkpoint.build_generator).
GENERATORS: tuple[str, ...] = (
    "ganzoo.nets.dcgan.DCGANGenerator",
    "ganzoo.nets.gaussian.GaussianGenerator",
    "ganzoo.nets.mlp.MLPGenerator",
    "ganzoo.nets.resnet.ResNetGenerator",
)
