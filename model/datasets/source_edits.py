"""Known-truth edits that look like two real sources of the same buildings, seeded.

:mod:`.edits` moves rectangles by σ = 0.5 m. Two real sources (a mapping agency against a cadastre,
OpenStreetMap against either) differ more: every feature is redrawn by another hand, shifted by metres,
turned by a degree, sometimes generalised. This module makes such pairs with the truth known:

* **shapes** (reference, "old"): terraced rows of rectangles sharing walls (each its own depth), and
  detached rows of rectangles, L-shapes, courtyards (a polygon with a hole) and real outlines (the
  bundled sample's cadastre, :func:`sample_outlines`, turned to their own axes); small sheds behind;
* **edits** per building: unchanged, modified (extended or cut at the back, or a corner cut off),
  split across into 2-3 parts, removed; runs of 2-3 terrace neighbours merged into one; runs of 2-3
  neighbours merged and split again along other lines into 2-3 parts (an **m:n** group, change
  ``reshaped``); new buildings in front of a block; half the removed buildings rebuilt in the same
  shape just in front of where they stood (removed and new, not a match);
* **source differences** (input, "new"): every truth group of the input moved as one by
  d ~ N(0, σ²I₂) and turned by N(0, rotation_sd²) about its centroid (so the parts of a split or of an
  m:n group stay together, as one surveyor draws them); each feature then redrawn: every vertex moved
  by N(0, noise²) per axis; a share ``p_generalise`` then simplified (Douglas-Peucker, 0.4-1.0 m) or
  smoothed (an opening by 0.3-0.8 m, which rounds the corners).

The truth is a group id per feature on both sides; class and change follow from the groups as in
:func:`.edits.truth_labels`. Seeds: :data:`VALIDATION_SEED` is for every choice (thresholds, fitted
coefficients), :data:`HELDOUT_SEED` only for the final report. Coordinates are metres in
ETRS89 / UTM 33N near Berlin.
"""

from functools import lru_cache
from pathlib import Path

import numpy as np
import shapely
import shapely.affinity

from ..gdal_layer import read_layer
from .edits import CRS, ORIGIN, EditedLayers, truth_labels

VALIDATION_SEED = 2611
HELDOUT_SEED = 2627
SIGMAS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
BLOCK_PITCH = 200.0  # metres between block centres: a turned block and its worst shift fit
SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample" / "buildings_cadastre.gpkg"


@lru_cache(maxsize=2)
def sample_outlines(path=str(SAMPLE), max_width=40.0):
    """Real building outlines (the sample's cadastre by default), each turned so that its minimum
    rotated rectangle lies along x and centred on its bounding box; those wider than ``max_width`` m or
    narrower than 4 m are left out. An empty tuple where GDAL's Python bindings are missing."""
    try:
        geoms = read_layer(path)[0]
    except (ImportError, FileNotFoundError):
        return ()
    geoms = geoms[~shapely.is_missing(geoms)]
    single = shapely.get_num_geometries(geoms) == 1  # the sample stores one-part MultiPolygons
    geoms = shapely.get_geometry(geoms[single], 0)
    geoms = geoms[shapely.is_valid(geoms) & (shapely.get_type_id(geoms) == 3)]
    out = []
    for geom in geoms:  # once per outline, cached
        box = np.asarray(shapely.minimum_rotated_rectangle(geom).exterior.coords)[:4]
        side = box[1] - box[0]
        if np.hypot(*side) < np.hypot(*(box[2] - box[1])):
            side = box[2] - box[1]
        angle = -np.arctan2(side[1], side[0])
        xy = shapely.get_coordinates(geom) - np.asarray(geom.centroid.coords[0])
        c, s = np.cos(angle), np.sin(angle)
        turned = shapely.set_coordinates(geom, xy @ np.array([[c, s], [-s, c]]))
        x0, y0, x1, y1 = turned.bounds
        if 4.0 <= x1 - x0 <= max_width and 4.0 <= y1 - y0 <= max_width:
            out.append(shapely.affinity.translate(turned, -(x0 + x1) / 2, -(y0 + y1) / 2))
    return tuple(out)


def _detached_shape(rng, width, depth, outlines):
    """One detached building centred on the origin: its polygon (in a width x depth box, or a real outline)."""
    kind = rng.choice(["rectangle", "l_shape", "courtyard", "outline"], p=[0.25, 0.25, 0.15, 0.35])
    if kind == "outline" and outlines:
        return outlines[int(rng.integers(len(outlines)))]
    body = shapely.box(-width / 2, -depth / 2, width / 2, depth / 2)
    if kind == "l_shape":
        cw, cd = width * rng.uniform(0.35, 0.6), depth * rng.uniform(0.35, 0.6)
        sx, sy = rng.choice([-1, 1], 2)
        x = sorted([sx * width / 2 * 1.01, sx * (width / 2 - cw)])
        y = sorted([sy * depth / 2 * 1.01, sy * (depth / 2 - cd)])
        corner = shapely.box(x[0], y[0], x[1], y[1])
        return shapely.difference(body, corner).normalize()
    if kind == "courtyard" and min(width, depth) >= 12.0:
        hole = shapely.box(-width * 0.2, -depth * 0.2, width * 0.2, depth * 0.2)
        return shapely.difference(body, hole).normalize()
    return body


def _cut(geom, fractions):
    """Parts of ``geom`` cut across x at the given fractions of its x extent; None if a part is
    smaller than 12 % of the whole or not one polygon."""
    x0, y0, x1, y1 = geom.bounds
    lines = x0 + (x1 - x0) * np.concatenate([[0.0], np.sort(fractions), [1.0]])
    parts = []
    for left, right in zip(lines[:-1], lines[1:]):
        part = shapely.intersection(geom, shapely.box(left, y0 - 1, right, y1 + 1))
        if part.geom_type != "Polygon" or part.area < 0.12 * geom.area:
            return None
        parts.append(part.normalize())
    return parts


def _reshape(rng, geom):
    """The building extended or cut at the back (10-50 % of its depth), or a corner cut off."""
    x0, y0, x1, y1 = geom.bounds
    width, depth = x1 - x0, y1 - y0
    kind = rng.integers(0, 3)
    if kind == 0:
        left = x0 + width * rng.uniform(0.0, 0.3)
        right = x1 - width * rng.uniform(0.0, 0.3)
        out = shapely.union(geom, shapely.box(left, y1 - 0.5, right, y1 + depth * rng.uniform(0.15, 0.5)))
    elif kind == 1:
        out = shapely.difference(geom, shapely.box(x0 - 1, y1 - depth * rng.uniform(0.15, 0.45), x1 + 1, y1 + 1))
    else:
        cw, cd = width * rng.uniform(0.3, 0.6), depth * rng.uniform(0.3, 0.6)
        out = shapely.difference(geom, shapely.box(x1 - cw, y1 - cd, x1 + 1, y1 + 1))
    if out.geom_type != "Polygon" or abs(out.area - geom.area) < 0.1 * geom.area:
        return None
    return out.normalize()


def _placed(geoms, angle, cx, cy):
    """Each geometry turned by angle[i] about the origin, then moved to (cx[i], cy[i])."""
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    c, s = np.cos(angle[owner]), np.sin(angle[owner])
    x, y = coords[:, 0], coords[:, 1]
    moved = np.column_stack([c * x - s * y + cx[owner], s * x + c * y + cy[owner]])
    return shapely.set_coordinates(np.asarray(geoms, dtype=object).copy(), moved)


def _redraw(rng, geoms, groups, sigma, rotation_sd_deg, noise, p_generalise):
    """The input's source differences: per group a shift and a turn about the group's centroid; per
    feature vertex noise and sometimes a generalisation."""
    geoms = np.asarray(geoms, dtype=object)
    _, group_index = np.unique(groups, return_inverse=True)
    n_groups = int(group_index.max(initial=-1)) + 1
    shift = rng.normal(0.0, sigma, (n_groups, 2))
    turn = np.deg2rad(rng.normal(0.0, rotation_sd_deg, n_groups))
    centre = shapely.get_coordinates(shapely.centroid(geoms))
    weight = shapely.area(geoms)
    gx = np.bincount(group_index, weight * centre[:, 0], n_groups) / np.bincount(group_index, weight, n_groups)
    gy = np.bincount(group_index, weight * centre[:, 1], n_groups) / np.bincount(group_index, weight, n_groups)
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    g = group_index[owner]
    c, s = np.cos(turn[g]), np.sin(turn[g])
    x, y = coords[:, 0] - gx[g], coords[:, 1] - gy[g]
    moved = np.column_stack([c * x - s * y + gx[g] + shift[g, 0], s * x + c * y + gy[g] + shift[g, 1]])
    out = shapely.set_coordinates(geoms.copy(), moved)
    if noise > 0:
        from .shapes import vertex_noise

        out = vertex_noise(rng, out, np.full(len(out), float(noise)))
    generalise = rng.random(len(out)) < p_generalise
    simplify = generalise & (rng.random(len(out)) < 0.5)
    smooth = generalise & ~simplify
    if simplify.any():
        out[simplify] = shapely.simplify(out[simplify], rng.uniform(0.4, 1.0, int(simplify.sum())),
                                         preserve_topology=True)
    if smooth.any():
        radius = rng.uniform(0.3, 0.8, int(smooth.sum()))
        opened = shapely.buffer(shapely.buffer(out[smooth], -radius, quad_segs=2), radius, quad_segs=2)
        keep = ~shapely.is_empty(opened) & (shapely.area(opened) > 0.5 * shapely.area(out[smooth]))
        target = np.flatnonzero(smooth)[keep]
        out[target] = opened[keep]
    from ..frame import repair_polygonal

    repair_polygonal(out)
    return out


def generate_source_edits(seed, n_blocks=200, sigma=1.0, rotation_sd_deg=1.0, noise=0.3, p_generalise=0.3,
                          outlines=None, p_split=0.07, p_modify=0.08, p_remove=0.06, p_merge=0.3, p_mn=0.35,
                          p_new=0.35, p_shed=0.4, p_rebuilt=0.5, doubtful_blocks=0):
    """Seeded reference and input layers with their truth (:class:`.edits.EditedLayers`).

    sigma : SD of each input group's shift per axis (m); rotation_sd_deg : SD of its turn (degrees);
    noise : vertex noise of the redrawing (m); p_generalise : share of input features simplified or
    smoothed; outlines : real outlines to draw from (default :func:`sample_outlines`); p_merge, p_mn :
    chances that a terrace has a merged run, an m:n run; p_new, p_shed : per block; p_rebuilt : share of
    removed buildings with a new one of the same shape just in front; the others per building;
    doubtful_blocks : number of extra blocks of doubtful situations (:func:`_doubtful_block`), drawn from a
    stream of their own and placed after the others, so that the first ``n_blocks`` blocks are the same
    with or without them (``doubtful_a`` / ``doubtful_b`` of the result mark their features).
    """
    rng = np.random.default_rng(seed)
    outlines = sample_outlines() if outlines is None else tuple(outlines)
    ref, ref_block, ref_group, edit_b = [], [], [], []
    new, new_block, new_group = [], [], []
    group = 0

    def add_ref(geom, block, g, edit):
        ref.append(geom)
        ref_block.append(block)
        ref_group.append(g)
        edit_b.append(edit)

    def add_new(geom, block, g):
        new.append(geom)
        new_block.append(block)
        new_group.append(g)

    for block in range(n_blocks):  # one iteration per block of a few buildings
        terrace = rng.random() < 0.45
        if terrace:
            k = int(rng.integers(4, 8))
            widths = rng.uniform(6.0, 14.0, k)
            gaps = np.zeros(k)
            depths = rng.uniform(9.0, 15.0, k)
            shapes = [None] * k
        else:
            k = int(rng.integers(3, 6))
            widths = rng.uniform(8.0, 18.0, k)
            depths = rng.uniform(9.0, 16.0, k)
            shapes = [_detached_shape(rng, w, d, outlines) for w, d in zip(widths, depths)]
            widths = np.array([s.bounds[2] - s.bounds[0] for s in shapes])
            depths = np.array([s.bounds[3] - s.bounds[1] for s in shapes])
            gaps = rng.uniform(3.0, 10.0, k)
        x0 = np.concatenate([[0.0], np.cumsum(widths + gaps)[:-1]])
        x0 -= (x0[-1] + widths[-1]) / 2.0
        if terrace:
            buildings = [shapely.box(x0[i], 0.0, x0[i] + widths[i], depths[i]) for i in range(k)]
        else:
            buildings = [shapely.affinity.translate(shapes[i], x0[i] + widths[i] / 2, depths[i] / 2)
                         for i in range(k)]
        edits = rng.choice(["unchanged", "split", "modified", "removed"], size=k,
                           p=[1 - p_split - p_modify - p_remove, p_split, p_modify, p_remove]).astype(object)
        runs = []
        if terrace:
            free = np.ones(k, dtype=bool)
            for kind, chance in (("reshaped", p_mn), ("merged", p_merge)):
                if rng.random() < chance:
                    length = int(rng.integers(2, 4))
                    starts = [s for s in range(k - length + 1) if free[s:s + length].all()]
                    if starts:
                        start = int(rng.choice(starts))
                        free[start:start + length] = False
                        runs.append((kind, start, start + length))
                        edits[start:start + length] = kind
        for kind, start, stop in runs:
            union = shapely.union_all(buildings[start:stop]).normalize()
            parts = [union]
            if kind == "reshaped":
                parts = _resplit(rng, union, x0[start:stop], widths[start:stop])
                if parts is None:  # no new line far enough from the old walls: a plain merge
                    parts = [union]
                    edits[start:stop] = "merged"
            for i in range(start, stop):
                add_ref(buildings[i], block, group, edits[i])
            for part in parts:
                add_new(part, block, group)
            group += 1
        for i in range(k):
            if edits[i] in ("merged", "reshaped"):
                continue
            edit = edits[i]
            parts = [buildings[i]]
            if edit == "split":
                n_parts = int(rng.integers(2, 4))
                fractions = rng.uniform(0.3, 0.7, 1) if n_parts == 2 else np.array([1 / 3, 2 / 3])
                parts = _cut(buildings[i], fractions)
                if parts is None:
                    edit, parts = "unchanged", [buildings[i]]
            elif edit == "modified":
                changed = _reshape(rng, buildings[i])
                if changed is None:
                    edit = "unchanged"
                else:
                    parts = [changed]
            elif edit == "removed" and rng.random() < p_rebuilt:
                # rebuilt next to where it stood, the same shape, touching the old outline or up to 3 m off:
                # another building (the old one removed, this one new)
                rebuilt = shapely.affinity.translate(buildings[i], 0.0, -(depths[i] + rng.uniform(0.0, 3.0)))
                add_new(rebuilt, block, group + 1)
            add_ref(buildings[i], block, group, edit)
            if edit != "removed":
                for part in parts:
                    add_new(part, block, group)
            group += 2 if edit == "removed" else 1
        if rng.random() < p_shed:  # sheds 1-4 m behind buildings that keep their back
            behind = [i for i in range(k) if edits[i] in ("unchanged", "split", "removed")]
            chosen = rng.choice(behind, size=min(len(behind), int(rng.integers(1, 3))), replace=False) if behind else []
            for i in chosen:
                size = rng.uniform(3.0, 6.0, 2)
                left = x0[i] + rng.uniform(0.0, max(widths[i] - size[0], 0.0))
                near = depths[i] + rng.uniform(1.5, 4.0)
                shed = shapely.box(left, near, left + size[0], near + size[1])
                kept = rng.random() > 0.15
                add_ref(shed, block, group, "unchanged" if kept else "removed")
                if kept:
                    add_new(shed, block, group)
                group += 1
        if rng.random() < p_new:  # a new building in front, 6-10 m clear of the block
            width = rng.uniform(6.0, 12.0)
            offset = rng.uniform(-20.0, 20.0)
            front = -rng.uniform(6.0, 10.0)
            add_new(shapely.box(offset - width / 2, front - rng.uniform(6.0, 10.0), offset + width / 2, front),
                    block, group)
            group += 1
    columns = int(np.ceil(np.sqrt(n_blocks)))
    centre_x = ORIGIN[0] + BLOCK_PITCH * (np.arange(n_blocks) % columns)
    centre_y = ORIGIN[1] + BLOCK_PITCH * (np.arange(n_blocks) // columns)
    angle = rng.uniform(0.0, 2 * np.pi, n_blocks)
    ref_block, new_block = np.asarray(ref_block), np.asarray(new_block)
    reference = _placed(np.array(ref, dtype=object), angle[ref_block], centre_x[ref_block], centre_y[ref_block])
    placed = _placed(np.array(new, dtype=object), angle[new_block], centre_x[new_block], centre_y[new_block])
    group_a, group_b = np.asarray(new_group, dtype=np.int64), np.asarray(ref_group, dtype=np.int64)
    inputs = _redraw(rng, placed, group_a, sigma, rotation_sd_deg, noise, p_generalise)
    edit_b = np.asarray(edit_b, dtype=object)
    doubtful_a, doubtful_b = np.zeros(len(inputs), dtype=bool), np.zeros(len(reference), dtype=bool)
    if doubtful_blocks:
        more = _doubtful_layers(np.random.default_rng([seed, 26]), doubtful_blocks, sigma, rotation_sd_deg, noise,
                                p_generalise, outlines, columns, int(np.ceil(n_blocks / columns)), group)
        reference = np.concatenate([reference, more[0]])
        inputs = np.concatenate([inputs, more[1]])
        group_a, group_b = np.concatenate([group_a, more[2]]), np.concatenate([group_b, more[3]])
        edit_b = np.concatenate([edit_b, more[4]])
        doubtful_a = np.concatenate([doubtful_a, np.ones(len(more[1]), dtype=bool)])
        doubtful_b = np.concatenate([doubtful_b, np.ones(len(more[0]), dtype=bool)])
    class_a, class_b, change_a, change_b = truth_labels(group_a, group_b, edit_b)
    return EditedLayers(reference, inputs, group_a, group_b, class_a, class_b, change_a, change_b, edit_b,
                        float(sigma), CRS, doubtful_a, doubtful_b)


DOUBTFUL_KINDS = ("twins", "moved", "narrow_terrace", "outbuildings", "partial")


def _doubtful_layers(rng, n_blocks, sigma, rotation_sd_deg, noise, p_generalise, outlines, columns, first_row,
                     first_group):
    """Reference, input, their groups and the reference edits of ``n_blocks`` doubtful blocks, placed in the
    grid rows from ``first_row`` on and redrawn as the other blocks are; group ids from ``first_group`` on."""
    ref, ref_block, ref_group, edit_b = [], [], [], []
    new, new_block, new_group = [], [], []
    group = first_group
    for block in range(n_blocks):  # one iteration per block of a few buildings
        features = _doubtful_block(rng, sigma, outlines)
        for geom, side, g, edit in features:
            if side == "b":
                ref.append(geom), ref_block.append(block), ref_group.append(group + g), edit_b.append(edit)
            else:
                new.append(geom), new_block.append(block), new_group.append(group + g)
        group += max(g for _, _, g, _ in features) + 1
    index = np.arange(n_blocks)
    centre_x = ORIGIN[0] + BLOCK_PITCH * (index % columns)
    centre_y = ORIGIN[1] + BLOCK_PITCH * (first_row + index // columns)
    angle = rng.uniform(0.0, 2 * np.pi, n_blocks)
    ref_block, new_block = np.asarray(ref_block, dtype=np.int64), np.asarray(new_block, dtype=np.int64)
    reference = _placed(np.array(ref, dtype=object), angle[ref_block], centre_x[ref_block], centre_y[ref_block])
    placed = _placed(np.array(new, dtype=object), angle[new_block], centre_x[new_block], centre_y[new_block])
    group_a, group_b = np.asarray(new_group, dtype=np.int64), np.asarray(ref_group, dtype=np.int64)
    inputs = _redraw(rng, placed, group_a, sigma, rotation_sd_deg, noise, p_generalise)
    return reference, inputs, group_a, group_b, np.asarray(edit_b, dtype=object)


def _scaled(geom, fx, fy):
    return shapely.affinity.scale(geom, fx, fy, origin="centroid")


def _doubtful_block(rng, sigma, outlines):
    """One block of a doubtful kind (:data:`DOUBTFUL_KINDS`), centred near the origin, truth known: a list of
    (geometry, "a" or "b", group within the block, the reference edit). The kinds are the situations of real
    sources where a match is in doubt, so that decisions spread over the whole probability range:

    * twins: 2-4 buildings of one shape side by side, 0.5 m + 0-2 σ apart, a quarter removed;
    * moved: buildings either kept (resized by up to ±15 % per axis: unchanged or modified) or rebuilt
      (removed, and a new one of about the same size 1-2 σ away, which looks like a kept one);
    * narrow_terrace: 5-8 houses 3.5-6 m wide sharing walls, some modified or removed;
    * outbuildings: a main building with 2-4 small outbuildings 0-1 m from it, some kept, some removed,
      some replaced by a new one of another size 1-2 m away;
    * partial: buildings either replaced by a new one that overlaps 20-60 % of the old (removed and new) or
      extended / cut by 30-60 % of their depth (the same building, modified).
    """
    kind = DOUBTFUL_KINDS[int(rng.integers(len(DOUBTFUL_KINDS)))]
    out = []
    g = 0
    if kind == "twins":
        k = int(rng.integers(2, 5))
        shape = _detached_shape(rng, rng.uniform(5.0, 10.0), rng.uniform(7.0, 12.0), outlines)
        width = shape.bounds[2] - shape.bounds[0]
        gaps = 0.5 + rng.uniform(0.0, 2.0, k) * sigma
        x = np.concatenate([[0.0], np.cumsum(width + gaps[:-1])])
        for xi in x - x[-1] / 2:
            geom = shapely.affinity.translate(shape, xi, 0.0)
            removed = rng.random() < 0.25
            out.append((geom, "b", g, "removed" if removed else "unchanged"))
            if not removed:
                out.append((geom, "a", g, None))
            g += 1
        return out
    if kind in ("moved", "partial"):
        k = int(rng.integers(3, 5))
        widths, depths = rng.uniform(7.0, 15.0, k), rng.uniform(8.0, 14.0, k)
        spacing = rng.uniform(5.0, 10.0, k - 1) if kind == "moved" else rng.uniform(13.0, 18.0, k - 1)
        x = np.concatenate([[0.0], np.cumsum((widths[:-1] + widths[1:]) / 2 + spacing)])
        x -= x[-1] / 2
        for i in range(k):
            old = shapely.box(x[i] - widths[i] / 2, 0.0, x[i] + widths[i] / 2, depths[i])
            if kind == "moved":
                factors = rng.uniform(0.85, 1.15, 2)
                shape = _scaled(old, *factors)
                if rng.random() < 0.5:  # rebuilt 1-2 σ away: another building
                    angle = rng.uniform(0.0, 2 * np.pi)
                    step = rng.uniform(1.0, 2.0) * sigma
                    out += [(old, "b", g, "removed"),
                            (shapely.affinity.translate(shape, step * np.cos(angle), step * np.sin(angle)), "a",
                             g + 1, None)]
                    g += 2
                else:
                    edit = "modified" if abs(np.prod(factors) - 1.0) >= 0.1 else "unchanged"
                    out += [(old, "b", g, edit), (shape, "a", g, None)]
                    g += 1
            elif rng.random() < 0.5:  # replaced by a new building over 20-60 % of the old one
                share = rng.uniform(0.2, 0.6)
                step = widths[i] * (1.0 - share) * rng.choice([-1.0, 1.0])
                shape = shapely.affinity.translate(_scaled(old, 1.0, rng.uniform(0.8, 1.2)), step, 0.0)
                out += [(old, "b", g, "removed"), (shape, "a", g + 1, None)]
                g += 2
            else:  # the same building extended or cut at the back by 30-60 % of its depth
                grow = rng.uniform(0.3, 0.6) * depths[i] * rng.choice([-1.0, 1.0])
                shape = shapely.box(x[i] - widths[i] / 2, 0.0, x[i] + widths[i] / 2, depths[i] + grow)
                out += [(old, "b", g, "modified"), (shape, "a", g, None)]
                g += 1
        return out
    if kind == "narrow_terrace":
        k = int(rng.integers(5, 9))
        widths, depths = rng.uniform(3.5, 6.0, k), rng.uniform(8.0, 12.0, k)
        x = np.concatenate([[0.0], np.cumsum(widths)])
        x -= x[-1] / 2
        for i in range(k):
            old = shapely.box(x[i], 0.0, x[i + 1], depths[i])
            edit = rng.choice(["unchanged", "modified", "removed"], p=[0.75, 0.15, 0.1])
            shape = _reshape(rng, old) if edit == "modified" else old
            if shape is None:
                edit, shape = "unchanged", old
            out.append((old, "b", g, edit))
            if edit != "removed":
                out.append((shape, "a", g, None))
            g += 1
        return out
    # outbuildings
    width, depth = rng.uniform(10.0, 16.0), rng.uniform(9.0, 14.0)
    main = shapely.box(-width / 2, 0.0, width / 2, depth)
    out += [(main, "b", g, "unchanged"), (main, "a", g, None)]
    g += 1
    for slot in rng.permutation(4)[:int(rng.integers(2, 5))]:  # behind left, behind right, left, right
        size = rng.uniform(2.0, 4.5, 2)
        gap = rng.uniform(0.0, 1.0)
        if slot < 2:
            sign = -1.0 if slot == 0 else 1.0
            cx = sign * rng.uniform(size[0] / 2 + 0.5, width / 2 - size[0] / 2)
            cy = depth + gap + size[1] / 2
        else:
            sign = -1.0 if slot == 2 else 1.0
            cx = sign * (width / 2 + gap + size[0] / 2)
            cy = rng.uniform(size[1] / 2, depth - size[1] / 2)
        shed = shapely.box(cx - size[0] / 2, cy - size[1] / 2, cx + size[0] / 2, cy + size[1] / 2)
        fate = rng.random()
        if fate < 0.6:
            out += [(shed, "b", g, "unchanged"), (shed, "a", g, None)]
            g += 1
        elif fate < 0.8:
            out.append((shed, "b", g, "removed"))
            g += 1
        else:  # replaced by one of another size 1-2 m away
            other = shapely.affinity.translate(_scaled(shed, *rng.uniform(0.7, 1.3, 2)),
                                               *(rng.uniform(1.0, 2.0) * rng.choice([-1.0, 1.0], 2)))
            out += [(shed, "b", g, "removed"), (other, "a", g + 1, None)]
            g += 2
    return out


def _resplit(rng, union, starts, widths):
    """The union of a run of terrace neighbours cut again into 2-3 parts along lines at least 35 % of
    the narrower neighbour (and 2.5 m) away from every old wall: the parts, or None."""
    x0, _, x1, _ = union.bounds
    walls = starts[1:]
    gap = max(2.5, 0.35 * float(np.min(widths)))
    for _ in range(20):  # a few draws until the lines keep clear of the walls and leave parts >= 4 m
        n_parts = int(rng.integers(2, min(len(starts) + 1, 3) + 1))
        lines = np.sort(rng.uniform(x0 + 4.0, x1 - 4.0, n_parts - 1))
        if np.min(np.abs(lines[:, None] - walls[None, :])) < gap or np.any(np.diff(np.r_[x0, lines, x1]) < 4.0):
            continue
        parts = _cut(union, (lines - x0) / (x1 - x0))
        if parts is not None:
            return parts
    return None
