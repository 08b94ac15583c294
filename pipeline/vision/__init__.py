"""The image task of the Robust Privacy paper (Section 6): private and public images, the target,
evaluator and generator networks, and the WGAN-GP prior."""
