"""The Bitrate tab's plot: the bits each frame's motion codes cost, one bar a frame, drawn with PIL
(no plotting library needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 36          # margins around the bars, pixels
BAR, MEAN, FILE, INK = (66, 120, 200), (220, 90, 40), (40, 150, 60), (40, 40, 40)


def bits_per_frame_plot(bits: np.ndarray, path: str | Path, file_bits: float | None = None) -> Path:
    """bits [T] -> a bar chart PNG at `path`, with the mean as a line and the axis scale in bits;
    with `file_bits` (the motion stream's size in bits) also the file's bits a frame as a dashed
    line: the codes' mean plus the range coder's last words, the figure the page's table gives."""
    bits = np.asarray(bits, dtype=np.float64)
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    in_file = None if file_bits is None else file_bits / len(bits)
    top = max(float(bits.max()), in_file or 0.0, 1e-9) * 1.1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / top)

    step = plot_w / len(bits)
    for t, b in enumerate(bits):
        x0 = LEFT + t * step
        draw.rectangle([x0 + step * 0.1, y(b), x0 + step * 0.9, TOP + plot_h], fill=BAR)
    draw.line([LEFT, y(bits.mean()), LEFT + plot_w, y(bits.mean())], fill=MEAN, width=2)
    if in_file is not None:
        for x in np.arange(LEFT, LEFT + plot_w, 12.0):                          # dashed
            draw.line([x, y(in_file), min(x + 6, LEFT + plot_w), y(in_file)], fill=FILE, width=2)
    draw.line([LEFT, TOP, LEFT, TOP + plot_h, LEFT + plot_w, TOP + plot_h], fill=INK)
    for value in (0.0, top / 1.1 / 2, top / 1.1):                              # axis scale: 0, half, max
        draw.text((LEFT - 6, y(value)), f"{value:.1f}", fill=INK, font=font, anchor="rm")
    for t in sorted({0, len(bits) // 2, len(bits) - 1}):                        # frame numbers
        draw.text((LEFT + (t + 0.5) * step, TOP + plot_h + 6), str(t), fill=INK, font=font, anchor="mt")
    title = f"codes: mean {bits.mean():.1f} bits a frame (orange)"
    if in_file is not None:
        title += f"; in the file {in_file:.1f} with the coder's end (green, dashed)"
    draw.text((LEFT + plot_w, 8), title, fill=INK, font=font, anchor="ra")    # right: the page's label sits left
    draw.text((LEFT + plot_w, HEIGHT - 4), "frame", fill=INK, font=font, anchor="rb")
    path = Path(path)
    image.save(path)
    return path
