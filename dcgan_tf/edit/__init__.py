"""Attributes at work: the attribute classifier, latent directions and vector arithmetic, conditional inputs."""
