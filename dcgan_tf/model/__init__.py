"""The networks and how they learn: generator and discriminator, the GAN's train step, losses, augmentation, EMA, latents."""
