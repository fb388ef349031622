"""The README's picture: the demo's transfer GIF at half size (one screen pixel per sprite pixel).

    python scripts/teaser.py outputs/demo/transfer.gif docs/images/teaser.gif
"""
import argparse

from PIL import Image, ImageSequence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gif", help="transfer.gif written by `motionbits demo`")
    parser.add_argument("out", help="where the halved GIF goes")
    args = parser.parse_args()
    source = Image.open(args.gif)
    half = (source.width // 2, source.height // 2)
    frames = [frame.convert("RGB").resize(half, Image.NEAREST) for frame in ImageSequence.Iterator(source)]
    frames[0].save(args.out, save_all=True, append_images=frames[1:], loop=0, optimize=True,
                   duration=source.info.get("duration", 125))


if __name__ == "__main__":
    main()
