"""The Bitrate tab's plot: the bits each frame's motion codes cost, one bar a frame, drawn with PIL
(no plotting library needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 36          # margins around the bars, pixels
BAR, MEAN, INK = (66, 120, 200), (220, 90, 40), (40, 40, 40)


def bits_per_frame_plot(bits: np.ndarray, path: str | Path) -> Path:
    """bits [T] -> a bar chart PNG at `path`, with the mean as a line and the axis scale in bits."""
    bits = np.asarray(bits, dtype=np.float64)
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    top = max(float(bits.max()), 1e-9) * 1.1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / top)

    step = plot_w / len(bits)
    for t, b in enumerate(bits):
        x0 = LEFT + t * step
        draw.rectangle([x0 + step * 0.1, y(b), x0 + step * 0.9, TOP + plot_h], fill=BAR)
    draw.line([LEFT, y(bits.mean()), LEFT + plot_w, y(bits.mean())], fill=MEAN, width=2)
    draw.line([LEFT, TOP, LEFT, TOP + plot_h, LEFT + plot_w, TOP + plot_h], fill=INK)
    for value in (0.0, top / 1.1 / 2, top / 1.1):                              # axis scale: 0, half, max
        draw.text((LEFT - 6, y(value)), f"{value:.1f}", fill=INK, font=font, anchor="rm")
    for t in sorted({0, len(bits) // 2, len(bits) - 1}):                        # frame numbers
        draw.text((LEFT + (t + 0.5) * step, TOP + plot_h + 6), str(t), fill=INK, font=font, anchor="mt")
    draw.text((LEFT + plot_w, 8), f"motion bits per frame: mean {bits.mean():.1f} (line), total {bits.sum():.0f}",
              fill=INK, font=font, anchor="ra")                                 # right: the page's label sits left
    draw.text((LEFT + plot_w, HEIGHT - 4), "frame", fill=INK, font=font, anchor="rb")
    path = Path(path)
    image.save(path)
    return path
