"""Procedural scenes of simple shapes: scene model, renderer, EN/RU vocabulary, held-out split.

A scene is a few coloured, textured shapes on a cluttered background. The renderer returns the
RGB image and each object's tight pixel box ``[x, y, w, h]``. The synthetic VQA and zsOD data
(``tasks/vqa/synthetic.py``, ``tasks/zsod/synthetic.py``) are built on top of this module.

Zero-shot split: the colour-shape combinations in :data:`HELD_OUT` never appear in a train or
valid image, question or phrase; the zsOD test phrases are made of exactly those combinations.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 224
JPEG_QUALITY = 90
SUPERSAMPLE = 3  # shapes are drawn 3x larger and box-filtered down: cheap anti-aliasing

SHAPES = ("circle", "square", "triangle", "star", "hexagon", "heart", "cross")
COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown")
SIZES = ("small", "large")
TEXTURES = ("solid", "striped", "dotted")
RELATIONS = ("left", "right", "above", "below")

RGB: dict[str, tuple[int, int, int]] = {
    "red": (215, 25, 30),
    "orange": (255, 135, 0),
    "yellow": (245, 215, 0),
    "green": (25, 160, 55),
    "blue": (25, 75, 230),
    "purple": (135, 40, 185),
    "pink": (255, 105, 190),
    "brown": (120, 65, 20),
}

# Object radius (half the nominal extent) in pixels at 224x224, per size class. The two ranges
# are far apart so "small" and "large" are never in doubt.
RADIUS = {"small": (12.0, 17.0), "large": (27.0, 34.0)}

# The zero-shot set: each colour and each shape at most once, so every colour and every shape
# is still seen in training, only in other combinations.
HELD_OUT: frozenset[tuple[str, str]] = frozenset(
    {
        ("red", "star"),
        ("orange", "circle"),
        ("yellow", "square"),
        ("green", "triangle"),
        ("blue", "heart"),
        ("purple", "hexagon"),
    }
)
ALL_COMBOS: tuple[tuple[str, str], ...] = tuple((c, s) for c in COLOURS for s in SHAPES)
SEEN_COMBOS: tuple[tuple[str, str], ...] = tuple(x for x in ALL_COMBOS if x not in HELD_OUT)
HELD_OUT_COMBOS: tuple[tuple[str, str], ...] = tuple(x for x in ALL_COMBOS if x in HELD_OUT)
SPLITS = ("train", "valid", "test")


def split_rng(task: str, split: str, seed: int, index: int) -> np.random.Generator:
    """An independent generator per (task, split, seed, item): deterministic, order-free."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    key = [zlib.crc32(task.encode()), SPLITS.index(split), int(seed) & 0xFFFFFFFF, int(index)]
    return np.random.default_rng(key)


# --------------------------------------------------------------------------- vocabulary

EN_PLURAL = {s: s + "s" for s in SHAPES} | {"cross": "crosses"}

# Russian nouns: gender and the forms the templates need (nom, gen, ins, gen plural).
RU_NOUN: dict[str | None, dict[str, str]] = {  # None: the generic "фигура"
    "circle": {"g": "m", "nom": "круг", "gen": "круга", "ins": "кругом", "gen_pl": "кругов"},
    "square": {"g": "m", "nom": "квадрат", "gen": "квадрата", "ins": "квадратом",
               "gen_pl": "квадратов"},
    "triangle": {"g": "m", "nom": "треугольник", "gen": "треугольника",
                 "ins": "треугольником", "gen_pl": "треугольников"},
    "star": {"g": "f", "nom": "звезда", "gen": "звезды", "ins": "звездой", "gen_pl": "звёзд"},
    "hexagon": {"g": "m", "nom": "шестиугольник", "gen": "шестиугольника",
                "ins": "шестиугольником", "gen_pl": "шестиугольников"},
    "heart": {"g": "n", "nom": "сердце", "gen": "сердца", "ins": "сердцем", "gen_pl": "сердец"},
    "cross": {"g": "m", "nom": "крест", "gen": "креста", "ins": "крестом", "gen_pl": "крестов"},
    None: {"g": "f", "nom": "фигура", "gen": "фигуры", "ins": "фигурой", "gen_pl": "фигур"},
}
RU_COLOUR = {
    "red": "красный", "orange": "оранжевый", "yellow": "жёлтый", "green": "зелёный",
    "blue": "синий", "purple": "фиолетовый", "pink": "розовый", "brown": "коричневый",
}
RU_SIZE = {"small": "маленький", "large": "большой"}
RU_STRIPED = "полосатый"
RU_DOTTED = "в горошек"  # postposed and invariable: "синяя звезда в горошек"
RU_YES, RU_NO = "да", "нет"

_ADJ_ENDINGS = {
    # (m nom, f nom, n nom, m/n gen, m/n ins, f gen, f ins, gen pl)
    "hard": ("ый", "ая", "ое", "ого", "ым", "ой", "ой", "ых"),
    "soft": ("ий", "яя", "ее", "его", "им", "ей", "ей", "их"),
    "velar": ("ий", "ая", "ое", "ого", "им", "ой", "ой", "их"),  # маленький (к г х + ий)
    "stressed": ("ой", "ая", "ое", "ого", "им", "ой", "ой", "их"),  # большой (ш + ой)
}


def ru_adj(lemma: str, gender: str, case: str) -> str:
    """Inflect a Russian adjective (given as its masculine nominative) for gender and case.

    ``gender`` is m/f/n or "pl" (plural, only the genitive is needed), ``case`` nom/gen/ins.
    """
    if lemma.endswith("ой"):
        kind = "stressed"
    elif lemma.endswith("ий"):
        kind = "velar" if lemma[-3] in "кгх" else "soft"
    else:
        kind = "hard"
    e = _ADJ_ENDINGS[kind]
    stem = lemma[:-2]
    if gender == "pl":
        return stem + e[7]
    table = {
        ("m", "nom"): e[0], ("f", "nom"): e[1], ("n", "nom"): e[2],
        ("m", "gen"): e[3], ("n", "gen"): e[3], ("m", "ins"): e[4], ("n", "ins"): e[4],
        ("f", "gen"): e[5], ("f", "ins"): e[6],
    }
    return stem + table[(gender, case)]


# --------------------------------------------------------------------------- scene model


@dataclass(frozen=True)
class SceneObject:
    """One drawn shape. ``cx, cy, radius`` are in pixels of the 224x224 image."""

    shape: str
    colour: str
    size: str
    texture: str
    cx: float
    cy: float
    radius: float
    angle: float = 0.0  # degrees, small tilt for variety
    stripe_angle: float = 45.0
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # [x, y, w, h], tight around the ink

    @property
    def combo(self) -> tuple[str, str]:
        return (self.colour, self.shape)

    @property
    def centre(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return (x + w / 2.0, y + h / 2.0)


@dataclass
class Scene:
    """Objects in drawing order (later ones on top) and the seed of the background."""

    objects: list[SceneObject]
    background_seed: int
    size: int = IMAGE_SIZE


@dataclass(frozen=True)
class Query:
    """A description of objects; ``None`` means "any". Matches an object attribute-wise."""

    shape: str | None = None
    colour: str | None = None
    size: str | None = None
    texture: str | None = None

    def matches(self, obj: SceneObject) -> bool:
        return all(
            want is None or want == have
            for want, have in (
                (self.shape, obj.shape), (self.colour, obj.colour),
                (self.size, obj.size), (self.texture, obj.texture),
            )
        )

    def combo(self) -> tuple[str, str] | None:
        """The colour-shape pair this query names, when it names both."""
        if self.colour is None or self.shape is None:
            return None
        return (self.colour, self.shape)


def select(scene: Scene, query: Query) -> list[int]:
    return [i for i, o in enumerate(scene.objects) if query.matches(o)]


def relation(a: SceneObject, b: SceneObject, rel: str) -> bool | None:
    """Whether ``a`` is ``rel`` of ``b``: True, False, or None when a human could hesitate.

    True needs the boxes' projections on the axis to be disjoint (a fully on that side);
    False needs a's centre to be at least a quarter of the mean extent on the other side.
    """
    (ax, ay), (bx, by) = a.centre, b.centre
    if rel in ("left", "right"):
        d = (bx - ax) / ((a.box[2] + b.box[2]) / 2.0)
    elif rel in ("above", "below"):
        d = (by - ay) / ((a.box[3] + b.box[3]) / 2.0)
    else:
        raise ValueError(f"unknown relation {rel!r}")
    if rel in ("right", "below"):
        d = -d
    if d >= 1.0:
        return True
    if d <= -0.25:
        return False
    return None


# --------------------------------------------------------------------------- phrases


def en_np(q: Query, *, article: str = "") -> str:
    """English noun phrase: "small striped red circle" (shape None -> "object")."""
    words = [w for w in (q.size, q.texture if q.texture != "solid" else None, q.colour) if w]
    words.append(q.shape or "object")
    text = " ".join(words)
    if article == "the":
        return "the " + text
    if article == "a":
        return ("an " if text[0] in "aeiou" else "a ") + text
    return text


def en_plural(q: Query) -> str:
    words = [w for w in (q.size, q.texture if q.texture != "solid" else None, q.colour) if w]
    words.append(EN_PLURAL[q.shape] if q.shape else "objects")
    return " ".join(words)


def ru_np(q: Query, case: str = "nom") -> str:
    """Russian noun phrase with agreement: "маленькая полосатая красная звезда" etc."""
    noun = RU_NOUN[q.shape]
    g = noun["g"]
    words = []
    if q.size:
        words.append(ru_adj(RU_SIZE[q.size], g, case))
    if q.texture == "striped":
        words.append(ru_adj(RU_STRIPED, g, case))
    if q.colour:
        words.append(ru_adj(RU_COLOUR[q.colour], g, case))
    words.append(noun[case])
    if q.texture == "dotted":
        words.append(RU_DOTTED)
    return " ".join(words)


def ru_plural_gen(q: Query) -> str:
    """Russian genitive plural, as after "Сколько": "красных кругов", "полосатых фигур"."""
    words = []
    if q.size:
        words.append(ru_adj(RU_SIZE[q.size], "pl", "gen"))
    if q.texture == "striped":
        words.append(ru_adj(RU_STRIPED, "pl", "gen"))
    if q.colour:
        words.append(ru_adj(RU_COLOUR[q.colour], "pl", "gen"))
    words.append(RU_NOUN[q.shape]["gen_pl"])
    if q.texture == "dotted":
        words.append(RU_DOTTED)
    return " ".join(words)


EN_REL = {"left": "left of", "right": "right of", "above": "above", "below": "below"}
RU_REL = {"left": ("слева от", "gen"), "right": ("справа от", "gen"),
          "above": ("над", "ins"), "below": ("под", "ins")}


def en_relation(rel: str, ref: Query) -> str:
    return f"{EN_REL[rel]} {en_np(ref, article='the')}"


def ru_relation(rel: str, ref: Query) -> str:
    prep, case = RU_REL[rel]
    return f"{prep} {ru_np(ref, case)}"


def unique_queries(scene: Scene, index: int, forms: list[tuple[str, ...]]) -> list[Query]:
    """The queries built from ``forms`` (attribute-name tuples) that match only object index."""
    obj = scene.objects[index]
    out = []
    for form in forms:
        if "texture" in form and obj.texture == "solid":
            continue  # "solid" is never said, so such a query would read as a looser one
        q = Query(**{k: getattr(obj, k) for k in form})
        if select(scene, q) == [index]:
            out.append(q)
    return out


# --------------------------------------------------------------------------- sampling


def _outline(shape: str, radius: float, angle: float) -> list[tuple[float, float]] | None:
    """Polygon vertices around (0, 0) for a shape, or None for the circle."""
    if shape == "circle":
        return None
    if shape == "square":
        r = radius * 0.86
        pts = [(-r, -r), (r, -r), (r, r), (-r, r)]
    elif shape == "triangle":
        # equilateral, apex up, shifted so its box is centred on (0, 0)
        pts = [(radius * math.cos(math.radians(a)), radius * math.sin(math.radians(a))
                + radius * 0.2) for a in (-90, 30, 150)]
    elif shape == "star":
        pts = []
        for k in range(10):
            r = radius if k % 2 == 0 else radius * 0.45
            a = math.radians(-90 + 36 * k)
            pts.append((r * math.cos(a), r * math.sin(a) + radius * 0.08))
    elif shape == "hexagon":
        pts = [(radius * math.cos(math.radians(60 * k)), radius * math.sin(math.radians(60 * k)))
               for k in range(6)]
    elif shape == "heart":
        pts = []
        for k in range(48):
            t = 2 * math.pi * k / 48
            x = 16 * math.sin(t) ** 3
            y = -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t))
            pts.append((x * radius / 16.5, (y + 2.5) * radius / 16.5))
    elif shape == "cross":
        a, b = radius * 0.9, radius * 0.32
        pts = [(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b), (b, a), (-b, a), (-b, b),
               (-a, b), (-a, -b), (-b, -b)]
    else:
        raise ValueError(f"unknown shape {shape!r}")
    if angle:
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        pts = [(x * c - y * s, x * s + y * c) for x, y in pts]
    return pts


_TILT = {"circle": 0, "square": 12, "triangle": 12, "star": 15, "hexagon": 30, "heart": 10,
         "cross": 12}


def _mix(rgb: tuple[int, int, int], other: tuple[int, int, int], t: float) -> tuple[int, ...]:
    return tuple(int(round(a * (1 - t) + b * t)) for a, b in zip(rgb, other, strict=True))


def _object_patch(obj: SceneObject) -> tuple[Image.Image, Image.Image, int, int]:
    """The object's colour patch and alpha mask at final scale, and their top-left corner."""
    ss = SUPERSAMPLE
    x0 = int(math.floor(obj.cx - obj.radius)) - 2
    y0 = int(math.floor(obj.cy - obj.radius)) - 2
    side = int(math.ceil(2 * obj.radius)) + 5
    big = side * ss
    ox, oy = (obj.cx - x0) * ss, (obj.cy - y0) * ss  # centre in patch, supersampled
    pts = _outline(obj.shape, obj.radius * ss, obj.angle)
    mask = Image.new("L", (big, big), 0)
    md = ImageDraw.Draw(mask)
    r = obj.radius * ss
    base = RGB[obj.colour]
    tint = _mix(base, (255, 255, 255), 0.55)
    edge = _mix(base, (0, 0, 0), 0.45)
    fill = Image.new("RGB", (big, big), base)
    fd = ImageDraw.Draw(fill)
    if obj.texture == "striped":
        period = max(5.0, obj.radius * 0.42) * ss
        a = math.radians(obj.stripe_angle)
        dx, dy = math.cos(a), math.sin(a)
        n = int(big * 1.5 / period) + 2
        for k in range(-n, n + 1):
            px, py = big / 2 + k * period * -dy, big / 2 + k * period * dx
            fd.line([(px - dx * big, py - dy * big), (px + dx * big, py + dy * big)],
                    fill=tint, width=max(1, int(period * 0.45)))
    elif obj.texture == "dotted":
        step = max(5.0, obj.radius * 0.4) * ss
        dr = step * 0.26
        k = int(big / step) + 2
        for i in range(-1, k):
            for j in range(-1, k):
                cx = (i + 0.5 * (j % 2)) * step + (ox % step)
                cy = j * step * 0.87 + (oy % step)
                fd.ellipse([cx - dr, cy - dr, cx + dr, cy + dr], fill=tint)
    width = max(2, int(round(1.3 * ss)))
    if pts is None:
        bb = [ox - r, oy - r, ox + r, oy + r]
        md.ellipse(bb, fill=255)
        fd.ellipse(bb, outline=edge, width=width)
    else:
        poly = [(ox + x, oy + y) for x, y in pts]
        md.polygon(poly, fill=255)
        fd.line(poly + [poly[0], poly[1]], fill=edge, width=width, joint="curve")
    return fill.reduce(ss), mask.reduce(ss), x0, y0


_INK_LUT = [255 if v >= 40 else 0 for v in range(256)]


def _ink_box(obj: SceneObject) -> tuple[int, int, int, int]:
    _, mask, x0, y0 = _object_patch(obj)
    # a pixel counts as ink when the shape covers at least ~15 % of it
    bb = mask.point(_INK_LUT).getbbox()
    assert bb is not None
    return (x0 + bb[0], y0 + bb[1], bb[2] - bb[0], bb[3] - bb[1])


def make_object(rng: np.random.Generator, colour: str, shape: str, size: str | None = None,
                texture: str | None = None, *, image_size: int = IMAGE_SIZE) -> SceneObject:
    """A random object of the given colour-shape at a random position (box filled in)."""
    size = size or str(rng.choice(SIZES))
    if texture is None:
        texture = str(rng.choice(TEXTURES, p=[0.5, 0.25, 0.25]))
    lo, hi = RADIUS[size]
    radius = float(rng.uniform(lo, hi))
    margin = radius + 3
    cx = float(rng.uniform(margin, image_size - margin))
    cy = float(rng.uniform(margin, image_size - margin))
    tilt = _TILT[shape]
    angle = float(rng.uniform(-tilt, tilt)) if tilt else 0.0
    stripe = float(rng.choice([0.0, 45.0, 90.0, 135.0]))
    obj = SceneObject(shape, colour, size, texture, cx, cy, radius, angle, stripe)
    return replace(obj, box=_ink_box(obj))


def _overlap_ok(box: tuple[int, ...], others: list[SceneObject], limit: float = 0.08) -> bool:
    x, y, w, h = box
    for o in others:
        ox, oy, ow, oh = o.box
        iw = min(x + w, ox + ow) - max(x, ox)
        ih = min(y + h, oy + oh) - max(y, oy)
        if iw > 0 and ih > 0 and iw * ih > limit * min(w * h, ow * oh):
            return False
    return True


def _place_objects(rng: np.random.Generator, combos, n_objects: tuple[int, int],
                   required: list[tuple[str, str]], image_size: int) -> list[SceneObject] | None:
    """One placement attempt; None when a required object (or a second object) found no place,
    and the caller starts over with the same generator (so the result stays deterministic)."""
    want = int(rng.integers(n_objects[0], n_objects[1] + 1))
    want = max(want, len(required))
    wanted = list(required)
    while len(wanted) < want:
        wanted.append(tuple(combos[int(rng.integers(len(combos)))]))
    objects: list[SceneObject] = []
    for k in rng.permutation(len(wanted)):
        colour, shape = wanted[int(k)]
        placed = None
        for attempt in range(60):
            # a crowded scene falls back to small objects, which nearly always fit somewhere
            size = "small" if attempt >= 30 else None
            cand = make_object(rng, colour, shape, size, image_size=image_size)
            if _overlap_ok(cand.box, objects):
                placed = cand
                break
        if placed is not None:
            objects.append(placed)
        elif k < len(required):
            return None
    return objects if len(objects) >= 2 else None


def sample_scene(
    rng: np.random.Generator,
    combos: tuple[tuple[str, str], ...] | list[tuple[str, str]],
    *,
    n_objects: tuple[int, int] = (2, 6),
    required: list[tuple[str, str]] | None = None,
    image_size: int = IMAGE_SIZE,
) -> Scene:
    """A random scene whose objects are drawn from ``combos`` (plus the ``required`` ones).

    Objects are placed by rejection so that boxes overlap at most slightly; an object that
    finds no place is dropped, but at least two objects (and all required ones) are kept.
    """
    required = list(required or [])
    for _ in range(100):
        objects = _place_objects(rng, combos, n_objects, required, image_size)
        if objects is not None:
            break
    else:  # pragma: no cover - a required object that never fits: impossible for 224 px
        raise RuntimeError("could not place the required objects")
    return Scene(objects=objects, background_seed=int(rng.integers(2**31)), size=image_size)


# --------------------------------------------------------------------------- rendering


_NOISE_SIDE = 512


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """Gaussian noise, drawn once from a fixed seed; each image takes a random window of it
    (drawing fresh noise per image was the renderer's largest cost)."""
    bank = np.random.default_rng(0x5CE7E).standard_normal((_NOISE_SIDE, _NOISE_SIDE, 4))
    bank = bank.astype(np.float32)
    bank.setflags(write=False)
    return bank


def render_background(seed: int, size: int = IMAGE_SIZE) -> Image.Image:
    """Clutter: a muted two-colour gradient, cloudy low-frequency noise, pixel noise and faint
    lines and blobs that are not objects (faint and desaturated, so never read as a shape)."""
    rng = np.random.default_rng(seed)
    # muted base colours: low saturation, mid lightness, so the saturated shapes stand out
    grey = rng.uniform(70, 200, size=2)
    tint = rng.uniform(-25, 25, size=(2, 3))
    c1 = (grey[0] + tint[0]).astype(np.float32)
    c2 = (grey[1] + tint[1]).astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    axis = np.linspace(0.0, 1.0, size, dtype=np.float32)
    t = axis[None, :] * np.float32(np.cos(theta)) + axis[:, None] * np.float32(np.sin(theta))
    t -= t.min()
    t /= max(float(t.max()), 1e-6)
    img = c1 + (c2 - c1) * t[..., None]
    cloud = rng.normal(0, 1, size=(8, 8))
    cloud_img = Image.fromarray(((cloud + 4) * 32).clip(0, 255).astype(np.uint8))
    cloud_up = np.asarray(cloud_img.resize((size, size), Image.BICUBIC), np.float32) / 32 - 4
    img += cloud_up[..., None] * np.float32(rng.uniform(4, 12))
    ox, oy = (int(v) for v in rng.integers(0, _NOISE_SIDE - size + 1, 2))
    noise = _noise_bank()[oy:oy + size, ox:ox + size]
    img += noise[..., 3:4] * np.float32(rng.uniform(3, 10))  # grey grain
    img += noise[..., :3] * np.float32(3)  # colour grain
    base = Image.fromarray(img.clip(0, 255).astype(np.uint8), "RGB")
    # clutter is drawn at half size and scaled up: soft edges at a fraction of a blur's cost
    half = size // 2
    layer = Image.new("RGBA", (half, half), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(2, 7))):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        x1, y1, x2, y2 = (float(v) for v in rng.uniform(-10, half + 10, 4))
        d.line([(x1, y1), (x2, y2)], fill=c + (int(rng.integers(25, 60)),),
               width=int(rng.integers(1, 3)))
    for _ in range(int(rng.integers(2, 6))):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y = (float(v) for v in rng.uniform(0, half, 2))
        rx, ry = (float(v) for v in rng.uniform(4, 20, 2))
        d.ellipse([x - rx, y - ry, x + rx, y + ry], fill=c + (int(rng.integers(15, 40)),))
    layer = layer.resize((size, size), Image.BILINEAR)
    return Image.alpha_composite(base.convert("RGBA"), layer).convert("RGB")


def render(scene: Scene, *, background: bool = True, only: list[int] | None = None,
           blank: tuple[int, int, int] = (128, 128, 128)) -> Image.Image:
    """Draw the scene (RGB, ``scene.size`` square). ``only`` draws a subset of the objects and
    ``background=False`` a plain ``blank`` background: both are for checking labels."""
    if background:
        img = render_background(scene.background_seed, scene.size)
    else:
        img = Image.new("RGB", (scene.size, scene.size), blank)
    for i, obj in enumerate(scene.objects):
        if only is not None and i not in only:
            continue
        fill, mask, x0, y0 = _object_patch(obj)
        img.paste(fill, (x0, y0), mask)
    return img


def save_jpeg(img: Image.Image, path) -> None:
    """Save as JPEG, quality 90, no optional metadata: the bytes depend on pixels only."""
    img.save(path, format="JPEG", quality=JPEG_QUALITY, optimize=False, progressive=False)
