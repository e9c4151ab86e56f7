"""Sample quality: the FID Inception network, FID and KID, the face rate, and scoring a model."""
