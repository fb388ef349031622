"""motionbits: Bitrate-Controlled Diffusion for video content/motion disentanglement."""
__version__ = "0.1.0"
