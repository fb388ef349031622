"""motionbits: Bitrate-Controlled Diffusion (Li et al., ICCV 2025) for video content/motion
disentanglement, motion transfer, motion generation and very low-bitrate motion.

The package, by concern: models/ (tokenizer, encoder, quantizer, denoiser, prior, bcd: the whole
model), diffusion.py (EDM), data/ (Sprites, video datasets, media reading, clips, latent cache),
checkpoints.py (reading checkpoints, as data only), training/ (the one loop, the BCD model's and
the prior's training, writing checkpoints), evaluation/ (judge, protocols, metrics), codec/ (the
motion bitstream), app/ (the web page), api.py (the trained model from Python) and cli.py (the
`motionbits` command). docs/architecture.md draws which may import which.
"""
__version__ = "1.0.0"


def __getattr__(name: str):
    if name == "MotionBits":  # imported on first use: `import motionbits` stays light
        from motionbits.api import MotionBits

        return MotionBits
    raise AttributeError(f"module 'motionbits' has no attribute {name!r}")
