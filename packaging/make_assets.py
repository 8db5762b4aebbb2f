"""Draw the app icon and the bundled sample photo (both made here, by this code; no third-party art).

    python packaging/make_assets.py          # rewrites resources/icons/* and resources/samples/*

Outputs are committed; the build only reads them.  The icon geometry is defined once and written
both as SVG (hicolor/scalable) and as PNGs rendered with Pillow (4x supersampled, then
downscaled), plus a Windows .ico and a macOS .icns made from the same renders.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

REPO = Path(__file__).resolve().parent.parent
ICON_DIR = REPO / "resources" / "icons"
SAMPLE_DIR = REPO / "resources" / "samples"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
SAMPLE_NAME = "synthetic-sedan.jpg"

# -- icon geometry, in a 256 x 256 canvas --------------------------------------------------
BG = "#1d4ed8"  # rounded-square background
BG_RADIUS = 56
BODY = "#f8fafc"  # car silhouette
WINDOW = "#1d4ed8"
TAG = "#22c55e"  # price tag
TAG_TEXT = "#ffffff"
# Car body outline (side view, facing right): lower body + cabin.
BODY_POLY: tuple[tuple[float, float], ...] = (
    (28, 168), (30, 140), (46, 128), (80, 122), (104, 96), (120, 90), (170, 90),
    (186, 96), (210, 122), (226, 128), (230, 146), (230, 168),
)
WINDOWS: tuple[tuple[tuple[float, float], ...], ...] = (
    ((92, 122), (110, 100), (140, 98), (140, 122)),
    ((148, 98), (172, 98), (196, 122), (148, 122)),
)
WHEELS: tuple[tuple[float, float], ...] = ((76, 170), (184, 170))
WHEEL_R, HUB_R = 22.0, 9.0
TAG_CENTER, TAG_R = (196.0, 60.0), 38.0


def icon_svg() -> str:
    """The icon as SVG text (same geometry as the PNGs)."""

    def pts(poly: tuple[tuple[float, float], ...]) -> str:
        return " ".join(f"{x:g},{y:g}" for x, y in poly)

    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256" stroke="none">',
        "  <title>CarValue</title>",
        f'  <rect x="0" y="0" width="256" height="256" rx="{BG_RADIUS}" ry="{BG_RADIUS}" fill="{BG}"/>',
        f'  <polygon points="{pts(BODY_POLY)}" fill="{BODY}"/>',
        *(f'  <polygon points="{pts(w)}" fill="{WINDOW}"/>' for w in WINDOWS),
    ]
    for cx, cy in WHEELS:
        parts.append(f'  <circle cx="{cx:g}" cy="{cy:g}" r="{WHEEL_R + 5:g}" fill="{BG}"/>')
        parts.append(f'  <circle cx="{cx:g}" cy="{cy:g}" r="{WHEEL_R:g}" fill="{BODY}"/>')
        parts.append(f'  <circle cx="{cx:g}" cy="{cy:g}" r="{HUB_R:g}" fill="{BG}"/>')
    tx, ty = TAG_CENTER
    parts += [
        f'  <circle cx="{tx:g}" cy="{ty:g}" r="{TAG_R + 5:g}" fill="{BG}"/>',
        f'  <circle cx="{tx:g}" cy="{ty:g}" r="{TAG_R:g}" fill="{TAG}"/>',
        f'  <path d="{_dollar_path(tx, ty, TAG_R)}" fill="none" stroke="{TAG_TEXT}" '
        'stroke-width="8" stroke-linecap="round" stroke-linejoin="round"/>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def _dollar_points(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """An 'S' as one polyline: the upper bowl counter-clockwise from its upper right to the
    centre, then the lower bowl clockwise from the centre to its lower left."""
    w, h = r * 0.40, r * 0.27
    pts: list[tuple[float, float]] = []
    for i in range(17):
        a = math.radians(35 + (270 - 35) * i / 16)
        pts.append((cx + w * math.cos(a), cy - h - h * math.sin(a)))
    for i in range(1, 17):
        a = math.radians(90 - (90 + 145) * i / 16)
        pts.append((cx + w * math.cos(a), cy + h - h * math.sin(a)))
    return pts


def _dollar_path(cx: float, cy: float, r: float) -> str:
    pts = _dollar_points(cx, cy, r)
    s = "M " + " L ".join(f"{x:.1f} {y:.1f}" for x, y in pts)
    bar = r * 0.62
    return f"{s} M {cx:.1f} {cy - bar:.1f} L {cx:.1f} {cy + bar:.1f}"


def render_icon(size: int) -> Image.Image:
    """The icon as an RGBA image of ``size`` x ``size`` (drawn at 4x, then downscaled)."""
    ss = 4
    big = size * ss
    k = big / 256.0
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)

    def sc(poly: tuple[tuple[float, float], ...]) -> list[tuple[float, float]]:
        return [(x * k, y * k) for x, y in poly]

    def circle(cx: float, cy: float, r: float, fill: str) -> None:
        d.ellipse((k * (cx - r), k * (cy - r), k * (cx + r), k * (cy + r)), fill=fill)

    d.rounded_rectangle((0, 0, big - 1, big - 1), radius=BG_RADIUS * k, fill=BG)
    d.polygon(sc(BODY_POLY), fill=BODY)
    for w in WINDOWS:
        d.polygon(sc(w), fill=WINDOW)
    for cx, cy in WHEELS:
        circle(cx, cy, WHEEL_R + 5, BG)
        circle(cx, cy, WHEEL_R, BODY)
        circle(cx, cy, HUB_R, BG)
    tx, ty = TAG_CENTER
    circle(tx, ty, TAG_R + 5, BG)
    circle(tx, ty, TAG_R, TAG)
    width = max(1, round(8 * k))
    d.line([(x * k, y * k) for x, y in _dollar_points(tx, ty, TAG_R)], fill=TAG_TEXT, width=width,
           joint="curve")
    bar = TAG_R * 0.62
    d.line([(tx * k, (ty - bar) * k), (tx * k, (ty + bar) * k)], fill=TAG_TEXT, width=width)
    return img.resize((size, size), Image.Resampling.LANCZOS)


# -- sample photo ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SampleSpec:
    width: int = 800
    height: int = 500
    body_rgb: tuple[int, int, int] = (178, 34, 34)


def render_sample(spec: SampleSpec = SampleSpec()) -> Image.Image:
    """A synthetic side view of a sedan on a road (a drawing, not a photograph)."""
    w, h = spec.width, spec.height
    img = Image.new("RGB", (w, h))
    d = ImageDraw.Draw(img)
    horizon = int(h * 0.58)
    for y in range(horizon):  # sky gradient
        t = y / horizon
        d.line([(0, y), (w, y)], fill=(int(120 + 80 * t), int(170 + 60 * t), int(230 + 20 * t)))
    d.polygon([(0, horizon), (w * 0.3, horizon - 60), (w * 0.55, horizon - 20), (w * 0.8, horizon - 80),
               (w, horizon - 30), (w, horizon)], fill=(104, 140, 104))  # hills
    d.rectangle((0, horizon, w, h), fill=(92, 92, 96))  # road
    d.rectangle((0, horizon, w, horizon + 8), fill=(150, 150, 150))  # kerb
    for x in range(0, w, 120):
        d.rectangle((x + 20, int(h * 0.9), x + 90, int(h * 0.9) + 8), fill=(235, 235, 220))

    # Car, facing right; coordinates in a 0..1 box scaled to the car's bounding box.
    x0, x1 = w * 0.12, w * 0.88
    y_roof, y_sill = h * 0.30, h * 0.78
    cw, ch = x1 - x0, y_sill - y_roof

    def p(u: float, v: float) -> tuple[float, float]:
        return (x0 + u * cw, y_roof + v * ch)

    shadow = Image.new("L", (w, h), 0)
    ImageDraw.Draw(shadow).ellipse((x0 - 10, y_sill - 12, x1 + 10, y_sill + 26), fill=150)
    img.paste((40, 40, 44), (0, 0), shadow.filter(ImageFilter.GaussianBlur(8)))
    d = ImageDraw.Draw(img)
    body = spec.body_rgb
    dark = tuple(int(c * 0.62) for c in body)
    d.polygon([p(0.0, 0.92), p(0.0, 0.55), p(0.04, 0.47), p(0.22, 0.42), p(0.33, 0.05), p(0.40, 0.0),
               p(0.66, 0.0), p(0.74, 0.05), p(0.84, 0.40), p(0.98, 0.46), p(1.0, 0.56), p(1.0, 0.92)],
              fill=body)
    d.polygon([p(0.0, 0.70), p(1.0, 0.70), p(1.0, 0.92), p(0.0, 0.92)], fill=dark)  # lower panel
    glass = (48, 64, 86)
    d.polygon([p(0.26, 0.42), p(0.35, 0.09), p(0.52, 0.08), p(0.52, 0.42)], fill=glass)
    d.polygon([p(0.55, 0.08), p(0.65, 0.08), p(0.72, 0.10), p(0.80, 0.42), p(0.55, 0.42)], fill=glass)
    d.line([p(0.535, 0.05), p(0.535, 0.92)], fill=dark, width=3)  # door gap
    d.line([p(0.25, 0.44), p(0.25, 0.90)], fill=dark, width=3)
    d.line([p(0.80, 0.44), p(0.80, 0.90)], fill=dark, width=3)
    d.rectangle((*p(0.43, 0.50), *p(0.48, 0.53)), fill=(220, 220, 220))  # handles
    d.rectangle((*p(0.68, 0.50), *p(0.73, 0.53)), fill=(220, 220, 220))
    d.polygon([p(0.955, 0.50), p(1.0, 0.53), p(1.0, 0.60), p(0.96, 0.60)], fill=(255, 240, 190))
    d.polygon([p(0.0, 0.55), p(0.03, 0.53), p(0.03, 0.62), p(0.0, 0.62)], fill=(200, 30, 30))
    r = ch * 0.22
    for u in (0.19, 0.82):
        cx, cy = p(u, 0.90)
        d.ellipse((cx - r - 6, cy - r - 6, cx + r + 6, cy + r + 6), fill=dark)  # arch
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(24, 24, 26))  # tyre
        d.ellipse((cx - r * 0.6, cy - r * 0.6, cx + r * 0.6, cy + r * 0.6), fill=(190, 192, 196))
        for i in range(5):  # spokes
            a = math.radians(90 + i * 72)
            d.line([(cx, cy), (cx + r * 0.55 * math.cos(a), cy - r * 0.55 * math.sin(a))],
                   fill=(120, 122, 126), width=4)
        d.ellipse((cx - r * 0.15, cy - r * 0.15, cx + r * 0.15, cy + r * 0.15), fill=(90, 90, 94))
    return img.filter(ImageFilter.GaussianBlur(0.6))


SAMPLE_README = """# Sample photos

`{name}`: a synthetic drawing of a red sedan on a road (side view, 800 x 500 JPEG), rendered
by `packaging/make_assets.py` in this repository with Pillow.  No photograph or third-party
artwork is involved, so it is covered by the project's own licence (MIT, see pyproject.toml)
and may be redistributed with the app.

It exists so that `CarValue --self-test` (the installer smoke test) has a photo to predict
offline.  It is a drawing, not a real car: the price the model gives for it means nothing.
Do not add Stanford Cars photos here (non-commercial research data, not redistributable).
"""

ICON_README = """# App icon

Drawn by `packaging/make_assets.py` (this repository; MIT like the rest of the code):
`carvalue.svg` (scalable) and `carvalue-<N>.png` for N in {sizes}, plus `carvalue.ico`
(Windows installer) and `carvalue.icns` (macOS bundle), all from the same geometry.
Regenerate with `python packaging/make_assets.py`.
"""


def write_all(icon_dir: Path = ICON_DIR, sample_dir: Path = SAMPLE_DIR) -> list[Path]:
    icon_dir.mkdir(parents=True, exist_ok=True)
    sample_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    svg = icon_dir / "carvalue.svg"
    svg.write_text(icon_svg(), encoding="utf-8")
    written.append(svg)
    renders = {s: render_icon(s) for s in ICON_SIZES}
    for s, im in renders.items():
        out = icon_dir / f"carvalue-{s}.png"
        im.save(out, optimize=True)
        written.append(out)
    ico = icon_dir / "carvalue.ico"
    renders[256].save(ico, sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])
    icns = icon_dir / "carvalue.icns"
    renders[512].save(icns)
    (icon_dir / "README.md").write_text(ICON_README.format(sizes=", ".join(map(str, ICON_SIZES))),
                                        encoding="utf-8")
    written += [ico, icns, icon_dir / "README.md"]
    sample = sample_dir / SAMPLE_NAME
    render_sample().save(sample, quality=88, optimize=True)
    (sample_dir / "README.md").write_text(SAMPLE_README.format(name=SAMPLE_NAME), encoding="utf-8")
    written += [sample, sample_dir / "README.md"]
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--icons", type=Path, default=ICON_DIR)
    ap.add_argument("--samples", type=Path, default=SAMPLE_DIR)
    args = ap.parse_args(argv)
    for path in write_all(args.icons, args.samples):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
