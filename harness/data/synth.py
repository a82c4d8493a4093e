"""A synthetic person / no-person set, deterministic by seed, for tests and training runs
that need thousands of images and exact labels.

Person images hold one to three drawn human figures (head, neck, torso, two-segment
arms and legs) in varied poses, sizes, skin and clothing colours. Both classes hold
distractors on textured backgrounds: trees, cars, lamp posts (a pole with a round
top), four-legged animals, stacked circles and plain shapes, so a model must learn the
arrangement of head, torso and limbs, not "there is an object". Each image is drawn
from its own generator seeded with ``(seed, index)``, so any image can be rebuilt on
its own and the output does not depend on how work was split between processes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from harness.data import subgroups
from harness.data.build import ImageOptions, Job, build, check_size
from harness.errors import DataError

GENERATOR_VERSION = 1
SUPERSAMPLE = 2
SIZE_BUCKET_HEIGHTS = {"small": (0.16, 0.30), "medium": (0.36, 0.68), "large": (0.78, 0.98)}
SKIN = [(255, 224, 196), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36),
        (92, 51, 23), (255, 205, 148)]  # fmt: skip
GRAY_SHARE = 0.2

Pt = tuple[float, float]


def _rgb(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in rng.integers(lo, hi, 3))
    return (r, g, b)


def _background(rng: np.random.Generator, n: int) -> np.ndarray:
    """A textured ``n x n x 3`` float background: gradient plus one texture kind."""
    level = rng.uniform(20, 235)
    tint = rng.uniform(-50, 50, 3)
    base = np.clip(level + tint, 0, 255)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n
    angle = rng.uniform(0, 2 * math.pi)
    grad = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None] * rng.uniform(-60, 60, 3)
    img = base + grad
    kind = rng.integers(0, 5)
    if kind == 0:  # noise
        img = img + rng.normal(0, rng.uniform(4, 25), (n, n, 1))
    elif kind == 1:  # stripes
        freq = rng.uniform(3, 14)
        phase = rng.uniform(0, 2 * math.pi)
        a2 = rng.uniform(0, math.pi)
        s = np.sin(2 * math.pi * freq * (np.cos(a2) * xx + np.sin(a2) * yy) + phase)
        img = img + s[..., None] * rng.uniform(10, 40)
    elif kind == 2:  # checker
        k = int(rng.integers(3, 12))
        chk = ((np.floor(xx * k) + np.floor(yy * k)) % 2)[..., None]
        img = img + (chk - 0.5) * rng.uniform(15, 60)
    elif kind == 3:  # horizon: sky over ground
        h = rng.uniform(0.3, 0.7)
        ground = np.array(_rgb(rng, 30, 200), dtype=np.float32)
        img = np.where((yy > h)[..., None], 0.5 * img + 0.5 * ground, img)
        img = img + rng.normal(0, 6, (n, n, 1))
    else:  # soft blobs
        for _ in range(int(rng.integers(3, 9))):
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
            mask = np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))
            img = img + mask[..., None] * rng.uniform(-70, 70, 3)
    return np.clip(img, 0, 255)


def _limb(draw: ImageDraw.ImageDraw, pts: list[Pt], width: int, color: tuple[int, int, int]) -> None:
    draw.line(pts, fill=color, width=width, joint="curve")
    r = width / 2
    for x, y in pts:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=color)


def _rot(p: Pt, c: Pt, a: float) -> Pt:
    dx, dy = p[0] - c[0], p[1] - c[1]
    return (c[0] + dx * math.cos(a) - dy * math.sin(a), c[1] + dx * math.sin(a) + dy * math.cos(a))


def _person(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, n: int, h: float
) -> tuple[float, float, float, float]:
    """Draw one figure of height ``h`` pixels; return its bounding box (x0, y0, x1, y1)."""
    head_r = h * 0.075
    limb_w = max(2, int(h * 0.055))
    arm_w = max(2, int(h * 0.045))
    torso_w = h * rng.uniform(0.15, 0.22)
    # Skeleton in a local frame: feet at y = h, top of head at y = 0.
    neck = (0.0, 2 * head_r + h * 0.02)
    shoulder_y = neck[1] + h * 0.03
    hip = (0.0, h * 0.53)
    pose = rng.integers(0, 4)  # 0 stand, 1 walk, 2 wave, 3 arms out
    spread = {0: 0.12, 1: 0.45, 2: 0.15, 3: 0.25}[int(pose)]
    legs, arms = [], []
    for side in (-1, 1):
        a1 = side * rng.uniform(0.02, spread)
        knee = (hip[0] + side * torso_w * 0.25 + math.sin(a1) * h * 0.24, hip[1] + math.cos(a1) * h * 0.24)
        a2 = a1 + rng.uniform(-0.15, 0.15)
        foot = (knee[0] + math.sin(a2) * h * 0.23, knee[1] + math.cos(a2) * h * 0.23)
        legs.append([(hip[0] + side * torso_w * 0.25, hip[1]), knee, foot])
        sh = (side * torso_w / 2, shoulder_y)
        if pose == 2 and side == 1:
            up = rng.uniform(2.3, 2.9)
        elif pose == 3:
            up = rng.uniform(1.2, 1.8)
        else:
            up = rng.uniform(0.05, 0.5)
        elbow = (sh[0] + side * math.sin(up) * h * 0.17, sh[1] + math.cos(up) * h * 0.17)
        bend = up + rng.uniform(-0.5, 0.6)
        hand = (elbow[0] + side * math.sin(bend) * h * 0.16, elbow[1] + math.cos(bend) * h * 0.16)
        arms.append([sh, elbow, hand])
    torso = [(-torso_w / 2, shoulder_y), (torso_w / 2, shoulder_y),
             (torso_w * 0.42, hip[1]), (-torso_w * 0.42, hip[1])]  # fmt: skip
    head_c = (rng.uniform(-0.02, 0.02) * h, head_r)
    # Place: random lean about the hip, then translate so the figure fits the canvas.
    lean = rng.uniform(-0.25, 0.25)
    groups = [legs[0], legs[1], arms[0], arms[1], torso, [head_c, neck]]
    groups = [[_rot(p, hip, lean) for p in g] for g in groups]
    pad = max(limb_w, head_r)
    xs = [p[0] for g in groups for p in g]
    ys = [p[1] for g in groups for p in g]
    w0, w1, h0, h1 = min(xs) - pad, max(xs) + pad, min(ys) - pad, max(ys) + pad
    ox = rng.uniform(-w0, max(-w0, n - w1))
    oy = rng.uniform(-h0, max(-h0, n - h1))
    groups = [[(x + ox, y + oy) for x, y in g] for g in groups]
    leg_l, leg_r, arm_l, arm_r, torso_p, (hc, nk) = groups
    skin = SKIN[int(rng.integers(0, len(SKIN)))]
    shirt, trousers = _rgb(rng), _rgb(rng, 0, 200)
    for leg in (leg_l, leg_r):
        _limb(draw, leg, limb_w, trousers)
    draw.polygon(torso_p, fill=shirt)
    _limb(draw, [nk, hc], max(2, int(head_r * 0.8)), skin)
    for arm in (arm_l, arm_r):
        _limb(draw, arm[:2], arm_w, shirt)
        _limb(draw, arm[1:], arm_w, skin)
    draw.ellipse((hc[0] - head_r, hc[1] - head_r, hc[0] + head_r, hc[1] + head_r), fill=skin)
    if rng.random() < 0.7:  # hair
        hair = _rgb(rng, 0, 120)
        draw.chord((hc[0] - head_r, hc[1] - head_r * 1.05, hc[0] + head_r, hc[1] + head_r),
                   180, 360, fill=hair)  # fmt: skip
    x0 = max(0.0, w0 + ox)
    y0 = max(0.0, h0 + oy)
    return (x0, y0, min(float(n), w1 + ox), min(float(n), h1 + oy))


def _distractor(draw: ImageDraw.ImageDraw, rng: np.random.Generator, n: int) -> None:
    """One non-person object somewhere on the canvas."""
    kind = int(rng.integers(0, 8))
    s = n * rng.uniform(0.12, 0.55)
    x, y = rng.uniform(0, n - s * 0.5), rng.uniform(0, n - s * 0.5)
    c1, c2 = _rgb(rng), _rgb(rng)
    if kind == 0:
        draw.ellipse((x, y, x + s, y + s * rng.uniform(0.5, 1.2)), fill=c1)
    elif kind == 1:
        draw.rectangle((x, y, x + s * rng.uniform(0.3, 1.2), y + s * rng.uniform(0.3, 1.2)), fill=c1)
    elif kind == 2:
        draw.polygon([(x, y + s), (x + s / 2, y), (x + s, y + s)], fill=c1)
    elif kind == 3:  # tree
        draw.rectangle((x + s * 0.42, y + s * 0.45, x + s * 0.58, y + s * 1.1), fill=(100, 70, 40))
        leaf = (int(rng.integers(20, 90)), int(rng.integers(90, 200)), 40)
        draw.ellipse((x, y, x + s, y + s * 0.6), fill=leaf)
    elif kind == 4:  # car
        draw.rectangle((x, y + s * 0.3, x + s * 1.4, y + s * 0.65), fill=c1)
        draw.rectangle((x + s * 0.3, y + s * 0.05, x + s * 1.0, y + s * 0.32), fill=c1)
        for wx in (x + s * 0.3, x + s * 1.1):
            draw.ellipse((wx - s * 0.14, y + s * 0.52, wx + s * 0.14, y + s * 0.8), fill=(20, 20, 20))
    elif kind == 5:  # lamp post: a pole with a round top, the closest thing to a stick figure
        w = max(2, int(s * 0.06))
        draw.line([(x + s * 0.5, y + s * 0.2), (x + s * 0.5, y + s * 1.5)], fill=c1, width=w)
        draw.ellipse((x + s * 0.38, y, x + s * 0.62, y + s * 0.24), fill=c2)
    elif kind == 6:  # four-legged animal
        w = max(2, int(s * 0.07))
        draw.ellipse((x, y + s * 0.2, x + s, y + s * 0.55), fill=c1)
        for lx in (0.15, 0.3, 0.7, 0.85):
            draw.line([(x + s * lx, y + s * 0.45), (x + s * lx, y + s * 0.85)], fill=c1, width=w)
        draw.ellipse((x + s * 0.85, y, x + s * 1.15, y + s * 0.3), fill=c1)
    else:  # stacked circles (snowman-like)
        r1, r2 = s * 0.3, s * 0.2
        draw.ellipse((x, y + 2 * r2, x + 2 * r1, y + 2 * r2 + 2 * r1), fill=c1)
        draw.ellipse((x + r1 - r2, y, x + r1 + r2, y + 2 * r2), fill=c2)


def render(seed: int, index: int, size: int, gray: bool | None) -> tuple[Image.Image, int, dict[str, Any]]:
    """Draw image ``index`` of the set with ``seed``: ``(image, label, subgroups)``.

    ``gray`` forces a grayscale (True) or colour (False) picture; None lets the
    generator choose, with about a fifth drawn in grayscale.
    """
    rng = np.random.default_rng([seed, index])
    label = int(rng.integers(0, 2))
    is_gray = bool(rng.random() < GRAY_SHARE) if gray is None else gray
    n = size * SUPERSAMPLE
    canvas = Image.fromarray(_background(rng, n).astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(canvas)
    n_distract = int(rng.integers(1, 6)) if label == 0 else int(rng.integers(0, 4))
    n_persons = 0
    largest = 0.0
    order = ["d"] * n_distract
    if label == 1:
        n_persons = int(rng.choice([1, 2, 3], p=[0.6, 0.25, 0.15]))
        bucket = str(rng.choice(list(SIZE_BUCKET_HEIGHTS)))
        heights = [rng.uniform(*SIZE_BUCKET_HEIGHTS[bucket])]
        heights += [rng.uniform(0.16, heights[0]) for _ in range(n_persons - 1)]
        order += [f"p{i}" for i in range(n_persons)]
        rng.shuffle(order)
        # The first-listed (tallest) figure is drawn last so it stays visible.
        order = [o for o in order if o != "p0"] + ["p0"]
    for item in order:
        if item == "d":
            _distractor(draw, rng, n)
        else:
            h = heights[int(item[1:])] * n
            x0, y0, x1, y1 = _person(draw, rng, n, h)
            largest = max(largest, (x1 - x0) * (y1 - y0) / (n * n))
    img = canvas.resize((size, size), Image.Resampling.BOX)
    if is_gray:
        img = img.convert("L")
    sg = {
        "person_size": subgroups.size_bucket(largest if label else None),
        "n_persons": n_persons,
        "grayscale_source": is_gray,
    }
    return img, label, sg


def _split_of(rank: int, n: int, fractions: tuple[float, ...], names: tuple[str, ...]) -> str:
    edge = 0.0
    for frac, name in zip(fractions, names, strict=True):
        edge += frac
        if rank < round(edge * n):
            return name
    return names[-1]


def synth_jobs(n: int, seed: int, size: int, grayscale: bool, splits: tuple[float, ...]):  # noqa: ANN201
    """Jobs for ``n`` images; the split of image ``i`` comes from a seeded permutation."""
    names = ("train", "val", "test")[: len(splits)]
    rank = np.empty(n, dtype=np.int64)
    rank[np.random.default_rng(seed).permutation(n)] = np.arange(n)
    gray: bool | None = True if grayscale else None
    for i in range(n):
        yield Job(
            id=f"synth-{seed}-{i:06d}",
            split=_split_of(int(rank[i]), n, splits, names),
            label=None,
            source=f"synthetic:seed={seed}:index={i}",
            license="cc0-1.0",
            attribution="",
            renderer=render,
            render_args=(seed, i, size, gray),
        )


def build_synthetic(
    out: Path,
    n: int,
    seed: int,
    size: int = 96,
    grayscale: bool = False,
    splits: tuple[float, ...] = (0.8, 0.1, 0.1),
    workers: int | None = None,
    force: bool = True,
) -> Path:
    """Build ``n`` synthetic images into ``out`` (replacing an earlier build there)."""
    if n < 1:
        raise DataError("--n must be at least 1")
    check_size(size)
    if len(splits) not in (1, 2, 3) or abs(sum(splits) - 1.0) > 1e-6 or min(splits) < 0:
        raise DataError(f"splits {splits} must be 1-3 non-negative fractions summing to 1")
    params = {"n": n, "seed": seed, "size": size, "grayscale": grayscale, "splits": list(splits),
              "generator_version": GENERATOR_VERSION}  # fmt: skip
    return build(
        out,
        synth_jobs(n, seed, size, grayscale, tuple(splits)),
        name=f"synthetic-s{seed}-n{n}-{size}{'g' if grayscale else ''}",
        synthetic=True,
        description=(
            "Synthetic person / no-person images drawn by harness.data.synth "
            f"(generator version {GENERATOR_VERSION}). Labels and subgroups are exact by "
            "construction. Use for pipeline tests and quick training, never to claim accuracy."
        ),
        parameters=params,
        source_hashes={"generator": f"harness.data.synth v{GENERATOR_VERSION} seed {seed}"},
        subgroup_schema=subgroups.BASE_SCHEMA,
        opts=ImageOptions(size=size, grayscale=grayscale),
        workers=workers,
        force=force,
        command=(
            f"hil data synth --n {n} --seed {seed} --size {size}"
            f"{' --grayscale' if grayscale else ''} --splits {','.join(str(f) for f in splits)}"
        ),
    )
