"""Quality scorers: CLIP score per image, FID/KID per group."""
