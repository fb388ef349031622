"""What the content encodes: linear probes from the content tokens to each Sprites label.

A disentangled content predicts the four attributes and nothing about the motion. Each probe is a
softmax regression on the flattened, standardised content tokens [K*Cc], fitted on clips of the
TRAIN split and scored on the evaluated TEST clips. Chance is 1/6 for an attribute and 1/3 for the
action or the direction. A high action/direction score means the content carries the motion (a
leak the denoiser can follow); a low attribute score means the appearance never reached it.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from motionbits.data.sprites import (ACTION_NAMES, ATTRIBUTE_NAMES, DIRECTION_NAMES, NUM_ATTRIBUTE_CLASSES, SpritesSplit,
                                     action_and_direction)
from motionbits.api import MotionBits


def linear_probe_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                          test_y: torch.Tensor, classes: int, steps: int = 300, weight_decay: float = 1e-3) -> float:
    """Fit softmax regression on (train_x [N, D], train_y [N]) and return its accuracy on the test set.
    Zero initialisation and full-batch Adam: no randomness, the same data give the same score."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    weight = torch.zeros(train_x.shape[1], classes, requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.Adam([weight, bias], lr=1e-2)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            loss = F.cross_entropy(train_x @ weight + bias, train_y) + weight_decay * weight.square().sum()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return float(((test_x @ weight + bias).argmax(-1) == test_y).float().mean())


def _labels(split: SpritesSplit, index: np.ndarray) -> dict[str, tuple[torch.Tensor, int]]:
    action, direction = action_and_direction(torch.from_numpy(split.motion[index]))
    labels = {name: (torch.from_numpy(split.attributes[index, i]), NUM_ATTRIBUTE_CLASSES)
              for i, name in enumerate(ATTRIBUTE_NAMES)}
    labels["action"] = (action, len(ACTION_NAMES))
    labels["direction"] = (direction, len(DIRECTION_NAMES))
    return labels


@torch.no_grad()
def probe_content(pipe: MotionBits, train: SpritesSplit, test: SpritesSplit, test_index: np.ndarray,
                  train_clips: int = 2000, seed: int = 0, batch_size: int = 100) -> dict[str, float]:
    """Linear-probe test accuracy of each label from the content of `test_index` clips."""
    gen = torch.Generator().manual_seed(seed)
    train_index = torch.randperm(len(train), generator=gen)[:train_clips].numpy()

    def contents(split: SpritesSplit, index: np.ndarray) -> torch.Tensor:
        frames = torch.from_numpy(split.frames)
        parts = [pipe.encode_content(frames[index[i:i + batch_size]]).flatten(1).float().cpu()
                 for i in range(0, len(index), batch_size)]
        return torch.cat(parts)                                       # [N, K*Cc]

    train_x, test_x = contents(train, train_index), contents(test, test_index)
    train_labels, test_labels = _labels(train, train_index), _labels(test, test_index)
    return {name: linear_probe_accuracy(train_x, train_labels[name][0], test_x, test_labels[name][0], classes)
            for name, (_, classes) in train_labels.items()}
