"""What a file needs of the decoder's models, and what a model needs to be coded: the checks both
ends of the bitstream share (codec/__init__.py, codec/stream.py)."""
from __future__ import annotations

import numpy as np

import motionbits.codec.content as content_coding
from motionbits.codec.format import FIELD_RANGES, MAX_ENTRIES, Header, header_problem
from motionbits.errors import MotionbitsError


def check_codable(cfg, where: str = "this model") -> None:
    """A model whose codes the bitstream can carry: at most MAX_ENTRIES entries per group, and
    sizes its header fields hold."""
    if cfg.model.codebook_size > MAX_ENTRIES:
        raise MotionbitsError(f"{where}: model.codebook_size = {cfg.model.codebook_size}, above {MAX_ENTRIES}, the most "
                              "entries per group the bitstream codes (docs/bitstream.md)")
    for name, value in (("size", cfg.data.image_size), ("groups", cfg.model.groups),
                        ("content_tokens", cfg.model.content_queries), ("content_dim", cfg.model.content_dim)):
        least, most = FIELD_RANGES[name]
        if not least <= value <= most:
            raise MotionbitsError(f"{where}: its {name} {value} is outside {least}..{most}, what the bitstream holds")


def check_models(h: Header, pipe, prior, where: str) -> None:
    """`pipe` (and `prior`) are the ones the header names; one line otherwise."""
    problem = header_problem(h)   # a header built in Python rather than read
    if problem:
        raise MotionbitsError(f"{where}: corrupt bitstream ({problem})")
    if h.model_fingerprint != pipe.fingerprint():
        raise MotionbitsError(f"{where}: made by model {h.model_fingerprint.hex()}, but "
                              f"{getattr(pipe, 'source', 'the given model')} is model {pipe.fingerprint().hex()}")
    if h.uses_prior and prior is None:
        raise MotionbitsError(f"{where}: its motion was coded under a motion prior: pass that prior (--prior PRIOR)")
    if h.uses_prior and h.prior_fingerprint != prior_fingerprint(prior):
        raise MotionbitsError(f"{where}: coded under motion prior {h.prior_fingerprint.hex()}, but the prior given "
                              f"is {prior_fingerprint(prior).hex()}")
    # The fingerprint covers the config, so only a forged header (with a valid CRC) differs here.
    m = pipe.cfg.model
    ours = (pipe.cfg.data.image_size, m.groups, m.codebook_size, m.content_queries, m.content_dim, pipe.model.window)
    theirs = (h.size, h.groups, h.codebook_size, h.content_tokens, h.content_dim, h.window)
    if theirs != ours:
        raise MotionbitsError(f"{where}: corrupt bitstream (its header says {h.size}px frames, {h.groups} groups of "
                              f"{h.codebook_size} entries, content {theirs[3]} x {theirs[4]}, windows of {h.window}; "
                              f"its model has {ours[0]}px, {ours[1]} of {ours[2]}, {ours[3]} x {ours[4]}, {ours[5]})")


def section_values(section: bytes, h: Header, where: str = "bitstream", pipe=None) -> np.ndarray:
    """A content section as the decoder renders it: float32 [K, Cc]. A key frame's picture needs
    the model (`pipe`) that reads the content from it."""
    if h.content_coding == content_coding.FLOAT16:
        return content_coding.float16_values(section, h.content_tokens, h.content_dim)
    try:
        if h.content_coding == content_coding.IMAGE:
            from motionbits.codec.key_frame import check_image_content, decode_key_frame, key_frame_values

            if pipe is None:
                raise MotionbitsError(f"{where}: its content is a key frame's picture, read by its model only")
            check_image_content(pipe.cfg, where)
            return key_frame_values(pipe, decode_key_frame(section, h.size))
        return content_coding.decode_content(section, h.content_tokens, h.content_dim)
    except (ValueError, RuntimeError) as err:
        raise MotionbitsError(f"{where}: corrupt content section ({err})") from None


def prior_fingerprint(prior) -> bytes:
    if prior is None:
        return bytes(8)
    from motionbits.api import weights_fingerprint

    return weights_fingerprint(prior.state_dict(), prior.cfg.to_dict())
