"""Procedural faces: the built-in training set, so a fresh machine can train with nothing downloaded.

Each face is drawn with Pillow at four times the output size and downsampled with Lanczos,
which gives soft, anti-aliased edges like a downscaled photo. Face i of a seed depends only
on (seed, i), so render_faces(n) is always a prefix of render_faces(m) for m > n.

The set is varied where a DCGAN has something to learn (skin tone, face shape, hair style
and colour, eyes, brows, nose, mouth, glasses, beard, clothes, background, light, small
head tilt and offset) and framed like aligned CelebA crops: eyes a little above the centre.
"""

import numpy as np
from PIL import Image, ImageDraw

SUPERSAMPLE = 4
CANVAS = 64  # drawing units: every coordinate below is on a 64x64 face

SKIN_TONES = np.array([(255, 224, 196), (241, 194, 160), (224, 172, 135), (198, 134, 96),
                       (161, 102, 70), (120, 74, 50), (88, 56, 40)], float)
HAIR_COLOURS = np.array([(20, 16, 14), (52, 36, 26), (94, 64, 40), (150, 104, 58), (200, 160, 100),
                         (226, 204, 150), (120, 40, 22), (150, 150, 150), (232, 232, 228)], float)
HAIR_WEIGHTS = np.array([22, 24, 16, 10, 8, 6, 5, 5, 4], float)
IRIS_COLOURS = np.array([(60, 38, 24), (100, 66, 40), (60, 110, 150), (80, 120, 80), (40, 30, 30)], float)


def render_faces(n, size=64, seed=0, on_face=None, start=0):
    """n procedural face images, uint8 [n, size, size, 3], the same for the same seed:
    faces start, ..., start + n - 1 of the seed's endless set.

    on_face, if given, is called after each face (a progress bar's update).
    """
    if n < 0 or size < 4:
        raise ValueError(f"render_faces: need n >= 0 and size >= 4, got n={n}, size={size}")
    faces = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        faces[i] = render_face(np.random.default_rng([seed, start + i]), size)
        if on_face is not None:
            on_face()
    return faces


def render_face(rng, size):
    scale = size * SUPERSAMPLE / CANVAS
    pixels = size * SUPERSAMPLE
    background = _background(rng, pixels)
    head = Image.new("RGBA", (pixels, pixels), (0, 0, 0, 0))
    _draw_head(ImageDraw.Draw(head), rng, scale)
    head = head.rotate(rng.normal(0, 5), resample=Image.BICUBIC,
                       translate=tuple(rng.normal(0, 1.2, 2) * scale))
    image = Image.alpha_composite(background, head).convert("RGB")
    image = _light(np.asarray(image, np.float32), rng)
    return np.asarray(Image.fromarray(image).resize((size, size), Image.LANCZOS))


def _background(rng, pixels):
    top, bottom = 0.55 * rng.uniform(20, 235, (2, 3)) + 0.45 * rng.uniform(60, 200)  # muted, like photos
    bottom = 0.6 * top + 0.4 * bottom  # mostly one colour, as in portrait photos
    t = np.linspace(0, 1, pixels, dtype=np.float32)[:, None, None]
    gradient = np.broadcast_to(top + (bottom - top) * t, (pixels, pixels, 3))
    return Image.fromarray(gradient.astype(np.uint8)).convert("RGBA")


def _light(image, rng):
    """A soft side light: a horizontal brightness ramp of up to +-15%."""
    ramp = np.linspace(-1, 1, image.shape[1], dtype=np.float32) * rng.uniform(-0.15, 0.15)
    return np.clip(image * (1 + ramp)[None, :, None], 0, 255).astype(np.uint8)


def _colour(palette, rng, weights=None, jitter=10):
    index = rng.choice(len(palette), p=None if weights is None else weights / weights.sum())
    return tuple(int(v) for v in np.clip(palette[index] + rng.normal(0, jitter, 3), 0, 255))


def _mix(colour, other, amount):
    return tuple(int(a + (b - a) * amount) for a, b in zip(colour, other))


def _skin(rng):
    """A continuous tone between two neighbouring palette entries."""
    position = rng.uniform(0, len(SKIN_TONES) - 1)
    low = int(position)
    tone = SKIN_TONES[low] + (SKIN_TONES[min(low + 1, len(SKIN_TONES) - 1)] - SKIN_TONES[low]) * (position - low)
    return tuple(int(v) for v in np.clip(tone + rng.normal(0, 6, 3), 0, 255))


class _Pen:
    """Draws in 64-unit face coordinates on the supersampled canvas, zoomed about the centre."""

    def __init__(self, draw, scale, zoom):
        self.draw, self.scale, self.zoom = draw, scale, zoom

    def _point(self, x, y):
        centre = CANVAS / 2
        return ((x - centre) * self.zoom + centre) * self.scale, ((y - centre) * self.zoom + centre) * self.scale

    def _box(self, cx, cy, rx, ry):
        (x0, y0), (x1, y1) = self._point(cx - rx, cy - ry), self._point(cx + rx, cy + ry)
        return [x0, y0, x1, y1]

    def ellipse(self, cx, cy, rx, ry, fill):
        self.draw.ellipse(self._box(cx, cy, rx, ry), fill=fill)

    def chord(self, cx, cy, rx, ry, start, end, fill):
        self.draw.chord(self._box(cx, cy, rx, ry), start, end, fill=fill)

    def arc(self, cx, cy, rx, ry, start, end, fill, width):
        self.draw.arc(self._box(cx, cy, rx, ry), start, end, fill=fill, width=self._width(width))

    def _width(self, width):
        return max(1, round(width * self.scale * self.zoom))

    def polygon(self, points, fill):
        self.draw.polygon([self._point(x, y) for x, y in points], fill=fill)

    def line(self, points, fill, width):
        self.draw.line([self._point(x, y) for x, y in points], fill=fill, width=self._width(width), joint="curve")


def _draw_head(draw, rng, scale):
    pen = _Pen(draw, scale, zoom=rng.uniform(1.2, 1.35))
    skin, hair = _skin(rng), _colour(HAIR_COLOURS, rng, HAIR_WEIGHTS)
    cx = 32.0
    face_rx, face_ry = rng.uniform(13, 17), rng.uniform(17, 21)
    cy = rng.uniform(32, 34.5)  # eyes end up slightly above the middle, as in aligned CelebA
    hair_style = rng.choice(["cap", "side", "fringe", "bald"], p=[0.4, 0.25, 0.25, 0.1])
    long_hair = hair_style != "bald" and rng.random() < 0.5

    _draw_body(pen, rng, cx, cy + face_ry, face_rx, skin)
    if long_hair:
        pen.ellipse(cx, cy - 1, face_rx + rng.uniform(3, 6), face_ry + 2, hair)
        pen.polygon([(cx - face_rx - 5, cy), (cx + face_rx + 5, cy),
                     (cx + face_rx + rng.uniform(3, 7), cy + face_ry + rng.uniform(4, 14)),
                     (cx - face_rx - rng.uniform(3, 7), cy + face_ry + rng.uniform(4, 14))], hair)
    if hair_style != "bald":
        pen.ellipse(cx, cy - 2, face_rx + 1.5, face_ry + rng.uniform(1, 3), hair)
    for side in (-1, 1):  # ears
        pen.ellipse(cx + side * face_rx, cy + 1, 2.5, 4, _mix(skin, (0, 0, 0), 0.08))
    pen.ellipse(cx, cy, face_rx, face_ry, skin)
    if rng.random() < 0.15:
        pen.chord(cx, cy + 2, face_rx * 0.95, face_ry * 0.9, 20, 160, _mix(hair, skin, 0.25))  # beard
    _draw_hairline(pen, rng, hair_style, cx, cy, face_rx, face_ry, hair)

    eye_y = cy - face_ry * rng.uniform(0.12, 0.22)
    eye_dx = face_rx * rng.uniform(0.38, 0.48)
    _draw_eyes(pen, rng, cx, eye_y, eye_dx, skin, hair)
    _draw_nose(pen, rng, cx, eye_y, face_ry, skin)
    _draw_mouth(pen, rng, cx, cy + face_ry * rng.uniform(0.48, 0.58), face_rx, skin)
    if rng.random() < 0.12:
        _draw_glasses(pen, rng, cx, eye_y, eye_dx)


def _draw_body(pen, rng, cx, chin_y, face_rx, skin):
    clothes = tuple(int(v) for v in rng.uniform(10, 230, 3))
    pen.polygon([(cx - face_rx * 0.45, chin_y - 6), (cx + face_rx * 0.45, chin_y - 6),
                 (cx + face_rx * 0.5, chin_y + 8), (cx - face_rx * 0.5, chin_y + 8)], _mix(skin, (0, 0, 0), 0.15))
    pen.ellipse(cx, chin_y + 16, rng.uniform(24, 32), 11, clothes)


def _draw_hairline(pen, rng, style, cx, cy, face_rx, face_ry, hair):
    """The hair that covers the forehead, drawn over the face."""
    top = cy - face_ry
    depth = face_ry * rng.uniform(0.3, 0.45)
    hairline = top + depth
    if style == "bald":
        return
    if style == "cap":
        pen.chord(cx, hairline, face_rx + 0.5, depth, 180, 360, hair)
    elif style == "side":
        part = cx + rng.choice([-1, 1]) * face_rx * 0.4
        pen.polygon([(cx - face_rx - 1, hairline + 4), (part, top + 1), (cx + face_rx + 1, hairline + 2),
                     (cx + face_rx + 1, top + 3), (cx - face_rx - 1, top + 3)], hair)
    else:
        pen.polygon([(cx - face_rx - 0.5, top + 4), (cx + face_rx + 0.5, top + 4),
                     (cx + face_rx * 0.8, hairline + 3), (cx - face_rx * 0.8, hairline + 3)], hair)


def _draw_eyes(pen, rng, cx, y, dx, skin, hair):
    iris = _colour(IRIS_COLOURS, rng, jitter=8)
    rx, ry = rng.uniform(2.4, 3.2), rng.uniform(1.3, 1.9)
    brow_lift, brow_tilt = rng.uniform(2.8, 4.2), rng.uniform(-0.8, 0.8)
    brow = _mix(hair, (0, 0, 0), 0.3)
    look = rng.normal(0, 0.4)
    for side in (-1, 1):
        ex = cx + side * dx
        pen.ellipse(ex, y + 0.3, rx + 0.6, ry + 0.6, _mix(skin, (0, 0, 0), 0.18))  # socket shadow
        pen.ellipse(ex, y, rx, ry, (238, 236, 230))
        pen.ellipse(ex + look, y, ry * 0.95, ry * 0.95, iris)
        pen.ellipse(ex + look, y, ry * 0.45, ry * 0.45, (12, 10, 10))
        pen.line([(ex - side * rx * 1.1, y - brow_lift + side * brow_tilt * 0.3),
                  (ex + side * rx * 1.2, y - brow_lift - brow_tilt)], brow, rng.uniform(0.8, 1.5))


def _draw_nose(pen, rng, cx, eye_y, face_ry, skin):
    shade = _mix(skin, (0, 0, 0), 0.25)
    tip_y = eye_y + face_ry * rng.uniform(0.45, 0.6)
    width = rng.uniform(2.2, 3.5)
    pen.line([(cx + 0.6, eye_y + 2), (cx + 1.0, tip_y - 1)], _mix(skin, (0, 0, 0), 0.12), 0.7)
    pen.ellipse(cx, tip_y, width, 1.3, _mix(skin, (0, 0, 0), 0.1))
    for side in (-1, 1):
        pen.ellipse(cx + side * width * 0.5, tip_y + 0.4, 0.7, 0.5, shade)


def _draw_mouth(pen, rng, cx, y, face_rx, skin):
    lips = _mix(skin, (150, 40, 50), rng.uniform(0.25, 0.55))
    half = face_rx * rng.uniform(0.3, 0.45)
    smile = rng.uniform(-0.5, 2.5)
    if rng.random() < 0.35:  # open smile with teeth
        pen.chord(cx, y - 0.5, half, smile + 2.0, 0, 180, (90, 30, 35))
        pen.chord(cx, y - 0.5, half * 0.85, (smile + 2.0) * 0.5, 0, 180, (240, 236, 228))
    else:
        pen.arc(cx, y - smile, half, abs(smile) + 0.8, 20 if smile >= 0 else 200,
                160 if smile >= 0 else 340, lips, rng.uniform(1.0, 1.6))


def _draw_glasses(pen, rng, cx, y, dx):
    frame = tuple(int(v) for v in rng.uniform(0, 80, 3))
    r = rng.uniform(3.6, 4.4)
    for side in (-1, 1):
        pen.arc(cx + side * dx, y, r, r * 0.8, 0, 360, frame, 0.6)
    pen.line([(cx - dx + r, y), (cx + dx - r, y)], frame, 0.6)
