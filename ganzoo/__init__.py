"""ganzoo: a PyTorch Lightning GAN model zoo."""
