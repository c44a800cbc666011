"""Draw the MyPage app icons (pwa/icons/*.png) with the standard library only.

    python tools/make_icons.py

The picture: a white ICOCA-shaped card with a green band and a gold point coin, on the
brand green. `icon-192.png` and `icon-512.png` are rounded tiles (purpose "any");
`maskable-512.png` fills the square and keeps the picture inside the central 80 % circle
that launchers may crop to (purpose "maskable"). Shapes are signed-distance functions
sampled 4×4 per pixel, so edges are anti-aliased.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "pwa" / "icons"
GREEN = (10, 92, 69)  # #0a5c45, the brand colour
BAND = (11, 110, 79)  # #0b6e4f
WHITE = (255, 255, 255)
GOLD = (232, 176, 35)
GOLD_DARK = (122, 80, 0)
SS = 4  # samples per axis


def rounded_rect(x: float, y: float, cx: float, cy: float, hw: float, hh: float, r: float) -> float:
    qx, qy = abs(x - cx) - (hw - r), abs(y - cy) - (hh - r)
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    return outside + min(max(qx, qy), 0.0) - r


def circle(x: float, y: float, cx: float, cy: float, r: float) -> float:
    return math.hypot(x - cx, y - cy) - r


def letter_p(x: float, y: float, cx: float, cy: float, s: float) -> float:
    """A bold "P" of height 2s centred near (cx, cy): a stem and a stadium-shaped bowl."""
    stroke = 0.34 * s
    stem_x = cx - 0.45 * s
    stem = rounded_rect(x, y, stem_x, cy, stroke / 2, s, stroke * 0.2)
    # The bowl's centre line is a stadium from the stem to the right, on the upper half.
    top, mid = cy - s + stroke / 2, cy + 0.1 * s
    hh = (mid - top) / 2
    bowl = abs(rounded_rect(x, y, stem_x + 0.4 * s, (top + mid) / 2, 0.4 * s + hh * 0.5, hh, hh)) - stroke / 2
    return min(stem, max(bowl, stem_x - x))


def shade(x: float, y: float, maskable: bool) -> tuple[tuple[int, int, int], float]:
    """Colour and coverage of one sample; x, y in 0..1."""
    if maskable:
        bg = 1.0
        scale, ox, oy = 0.78, 0.11, 0.11  # inside the 80 % safe circle
    else:
        bg = 1.0 if rounded_rect(x, y, 0.5, 0.5, 0.5, 0.5, 0.2) <= 0 else 0.0
        scale, ox, oy = 0.96, 0.02, 0.02
    if bg == 0.0:
        return (0, 0, 0), 0.0
    u, v = (x - ox) / scale, (y - oy) / scale  # picture space 0..1
    colour = GREEN
    card_hw, card_hh = 0.36, 0.36 / 1.586
    card_cx, card_cy = 0.45, 0.45
    if rounded_rect(u, v, card_cx, card_cy, card_hw, card_hh, 0.04) <= 0:
        colour = WHITE
        band_top = card_cy - card_hh + 0.05
        if band_top <= v <= band_top + 0.07:
            colour = BAND
    coin_cx, coin_cy, coin_r = 0.68, 0.66, 0.19
    d = circle(u, v, coin_cx, coin_cy, coin_r)
    if d <= 0.022 and d > 0:
        colour = GREEN  # a green ring separates the coin from the card
    if d <= 0:
        colour = GOLD
        if letter_p(u, v, coin_cx + 0.01, coin_cy, 0.11) <= 0:
            colour = GOLD_DARK
    return colour, 1.0


def render(size: int, maskable: bool) -> bytes:
    rows = []
    for py in range(size):
        row = bytearray([0])  # filter: none
        for px in range(size):
            r = g = b = a = 0.0
            for sy in range(SS):
                for sx in range(SS):
                    (cr, cg, cb), cov = shade((px + (sx + 0.5) / SS) / size, (py + (sy + 0.5) / SS) / size, maskable)
                    r, g, b, a = r + cr * cov, g + cg * cov, b + cb * cov, a + cov
            n = SS * SS
            if a:
                row += bytes((round(r / a), round(g / a), round(b / a), round(255 * a / n)))
            else:
                row += bytes(4)
        rows.append(bytes(row))
    return png(size, size, b"".join(rows))


def png(width: int, height: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, size, maskable in (("icon-192.png", 192, False), ("icon-512.png", 512, False),
                                 ("maskable-512.png", 512, True)):
        (OUT / name).write_bytes(render(size, maskable))
        print(OUT / name)


if __name__ == "__main__":
    main()
