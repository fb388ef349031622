"""Pictures people look at: PNG grids of clips, animated GIFs and MP4 videos."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from motionbits.atomic_files import atomic_path
from motionbits.errors import MotionbitsError


def _np(x) -> np.ndarray:
    return x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def grid_image(rows: list, gap: int = 2) -> np.ndarray:
    """rows: list of uint8 clips [B, T, H, W, 3]; each clip becomes one row of T frames, the
    rows of a list entry stacked together -> one uint8 image [H', W', 3]."""
    clips = np.concatenate([_np(r) for r in rows], axis=0) if len(rows) > 1 else _np(rows[0])
    n, t, h, w, _ = clips.shape
    image = np.full((n * (h + gap) - gap, t * (w + gap) - gap, 3), 255, np.uint8)
    for i in range(n):
        for j in range(t):
            image[i * (h + gap): i * (h + gap) + h, j * (w + gap): j * (w + gap) + w] = clips[i, j]
    return image


def side_by_side(clips: list, gap: int = 2) -> np.ndarray:
    """Several clips [T, H, W, 3] of equal length -> one clip with the frames next to each other."""
    arrays = [_np(c) for c in clips]
    t, h = arrays[0].shape[:2]
    pad = np.full((t, h, gap, 3), 255, np.uint8)
    parts = []
    for a in arrays:
        parts += [a, pad]
    return np.concatenate(parts[:-1], axis=2)


def transfer_view(content, driver, result) -> np.ndarray:
    """content | driver | result in each frame (the content's first frame held still): one clip
    [T, H, W', 3] from clips [T', H, W, 3], driver and result of equal length T."""
    still = torch.as_tensor(_np(content))[:1].expand(len(result), -1, -1, -1)
    return side_by_side([still, driver, result])


def stack_clips(clips: list, gap: int = 2) -> np.ndarray:
    """Clips [T, H, W', 3] of equal length and width -> one clip with them one under the other."""
    arrays = [_np(c) for c in clips]
    pad = np.full((arrays[0].shape[0], gap, arrays[0].shape[2], 3), 255, np.uint8)
    return np.concatenate([x for a in arrays for x in (a, pad)][:-1], axis=1)


def save_png(image, path: str | Path, scale: int = 1) -> Path:
    path = Path(path)
    img = Image.fromarray(_np(image))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    with atomic_path(path, shared=True) as tmp:
        img.save(tmp, format="PNG")  # named: the temporary file's suffix is .tmp
    return path


def save_video(frames, path: str | Path, fps: float = 8.0, scale: int = 1) -> Path:
    """uint8 [T, H, W, 3] -> .gif (Pillow), .mp4 / .webm / .avi (PyAV), or .png (a strip), written
    atomically: a failure (full disk, a kill) leaves an existing file as it was."""
    from motionbits.frame_rate import check_fps

    path = Path(path)
    fps = check_fps(fps, f"{path}: frame rate")   # 0, inf or NaN broke both writers
    arr = _np(frames)
    if scale > 1:
        arr = arr.repeat(scale, axis=1).repeat(scale, axis=2)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        images = [Image.fromarray(f) for f in arr]
        with atomic_path(path, shared=True) as tmp:
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps),
                           loop=0)
    elif suffix == ".png":
        save_png(grid_image([arr[None]]), path)
    elif suffix in AV_CONTAINERS:
        with atomic_path(path, shared=True) as tmp:
            _write_av(arr, tmp, suffix, fps)
    else:
        raise MotionbitsError(f"{path}: unsupported output type {suffix!r} (use .gif, .mp4, .webm, .avi, .mov or .png)")
    return path


# PyAV's container format for each suffix (named, not guessed: the temporary file's suffix is .tmp)
AV_CONTAINERS = {".mp4": "mp4", ".webm": "webm", ".avi": "avi", ".mov": "mov"}


def _write_av(arr: np.ndarray, path: Path, suffix: str, fps: float) -> None:
    import av
    from fractions import Fraction

    h, w = arr.shape[1:3]
    if h % 2 or w % 2:  # yuv420p needs even sides
        arr = np.pad(arr, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
    codec = {".webm": "libvpx-vp9", ".avi": "mpeg4"}.get(suffix, "libx264")
    with av.open(str(path), mode="w", format=AV_CONTAINERS[suffix]) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = arr.shape[2], arr.shape[1]
        stream.pix_fmt = "yuv420p"
        for frame in arr:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def transfer_matrix(pipe, contents, motions, path: str | Path, steps: int | None = None,
                    fps: float = 8.0, scale: int = 2) -> tuple[Path, Path]:
    """Every content clip (rows) driven by every motion clip (columns).

    The GIF shows, at each time step, the motion clips along the top, the content clips' first
    frame down the left, and each transfer in its cell. The PNG beside it lays the same out as
    strips: per motion clip, its frames, then each content driven by it."""
    contents, motions = torch.as_tensor(_np(contents)), torch.as_tensor(_np(motions))
    n_c, n_m = contents.shape[0], motions.shape[0]
    results = pipe.transfer(contents.repeat_interleave(n_m, 0), motions.repeat(n_c, 1, 1, 1, 1), steps=steps)
    results = results.reshape(n_c, n_m, *results.shape[1:])               # [Nc, Nm, T, H, W, 3]
    t, h, w = results.shape[2:5]
    blank = torch.zeros(t, h, w, 3, dtype=torch.uint8)
    rows = [side_by_side([blank, *[motions[j] for j in range(n_m)]])]
    for i in range(n_c):
        still = contents[i, :1].expand(t, -1, -1, -1)
        rows.append(side_by_side([still, *[results[i, j] for j in range(n_m)]]))
    gif = save_video(stack_clips(rows), Path(path), fps=fps, scale=scale)  # [T, H', W', 3]
    strips = []
    for j in range(n_m):
        strips += [motions[j][None], results[:, j]]
    png = save_png(grid_image(strips), Path(path).with_suffix(".png"), scale=scale)
    return gif, png


def long_transfer_pictures(examples, path: str | Path, columns: int = 16) -> list[Path]:
    """Long transfers [V, 3, L, H, W, 3] (content's first frame held still, driver, result) as
    path.png, per transfer a driver row over a result row (the content's frame at the left of the
    result row, every k-th of the L frames up to `columns`), and path.gif, content | driver | result
    playing side by side, one transfer under the other."""
    examples = torch.as_tensor(_np(examples))
    length = examples.shape[2]
    picked = slice(0, length, max(1, -(-length // columns)))
    rows = []
    for content, driver, result in examples:
        rows.append(torch.cat([torch.full_like(content[:1], 255), driver[picked]])[None])
        rows.append(torch.cat([content[:1], result[picked]])[None])
    png = save_png(grid_image(rows), Path(path).with_suffix(".png"))
    playing = stack_clips([side_by_side(list(e)) for e in examples], gap=4)   # [L, H', W', 3]
    return [png, save_video(playing, Path(path).with_suffix(".gif"), fps=8)]


PALETTE = ["#1f3c88", "#d1495b", "#2e8b57", "#edae49", "#6a4c93", "#00798c", "#8d6a9f", "#444444"]


def line_chart(panels: list[dict], path: str | Path, panel_size: tuple[int, int] = (360, 260),
               columns: int | None = None) -> Path:
    """Panels side by side (`columns` to a row, default all in one), each {"title", "x", "y" (axis
    labels), "log_x" (bool), "series": {name: [(x, y), ...]}}, drawn with PIL (no plotting library
    needed); one colour per series name across panels, with a legend under the panels. Points with
    y None are left out."""
    from PIL import ImageDraw, ImageFont

    import math

    w, h = panel_size
    names = list(dict.fromkeys(name for p in panels for name in p["series"]))
    colour = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
    legend_rows = -(-len(names) // 3)
    columns = columns or len(panels)
    rows = -(-len(panels) // columns)
    img = Image.new("RGB", (w * columns, h * rows + 18 * legend_rows + 8), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=12)  # the sized default keeps its spaces; the bare one squeezes them
    for i, panel in enumerate(panels):
        fx = (lambda v: math.log10(v)) if panel.get("log_x") else (lambda v: v)  # noqa: E731
        points = [(fx(x), y) for s in panel["series"].values() for x, y in s if y is not None and (x > 0 or not panel.get("log_x"))]
        if not points:
            continue
        x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
        y_lo, y_hi = min(p[1] for p in points), max(p[1] for p in points)
        x_hi, y_hi = (x_hi if x_hi > x_lo else x_lo + 1), (y_hi if y_hi > y_lo else y_lo + 1)
        x0, y0 = (i % columns) * w, (i // columns) * h
        left, top, right, bottom = x0 + 52, y0 + 24, x0 + w - 14, y0 + h - 40
        draw.rectangle([left, top, right, bottom], outline="black")
        draw.text((left, y0 + 6), panel["title"], fill="black", font=font)
        draw.text((left - 48, top), f"{y_hi:.3g}", fill="gray", font=font)
        draw.text((left - 48, bottom - 10), f"{y_lo:.3g}", fill="gray", font=font)
        shown = (lambda v: f"{10 ** v:.3g}") if panel.get("log_x") else (lambda v: f"{v:.3g}")  # noqa: E731
        draw.text((left, bottom + 4), shown(x_lo), fill="gray", font=font)
        draw.text((right - 30, bottom + 4), shown(x_hi), fill="gray", font=font)
        draw.text((left + 60, bottom + 20), panel["x"] + (" (log)" if panel.get("log_x") else ""), fill="gray", font=font)
        for name, series in panel["series"].items():
            xy = [(left + (fx(x) - x_lo) / (x_hi - x_lo) * (right - left),
                   bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top))
                  for x, y in sorted(series) if y is not None and (x > 0 or not panel.get("log_x"))]
            if len(xy) > 1:
                draw.line(xy, fill=colour[name], width=2)
            for px, py in xy:
                draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour[name])
    for j, name in enumerate(names):
        x, y = 10 + (j % 3) * (img.width // 3), h * rows + 4 + 18 * (j // 3)
        draw.rectangle([x, y + 3, x + 12, y + 13], fill=colour[name])
        draw.text((x + 18, y + 2), name, fill="black", font=font)
    path = Path(path)
    with atomic_path(path, shared=True) as tmp:
        img.save(tmp, format="PNG")
    return path
