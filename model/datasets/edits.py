"""Known-truth edits between an old (reference) and a new (input) building layer, seeded.

Blocks of rectangular buildings (terraces with shared walls, or detached rows with gaps), each block
turned by a random angle, form the reference layer. The input layer is made from it, building by
building:

* **unchanged**: the building moved rigidly by d ~ N(0, σ²I₂);
* **split**: cut across into 2-3 touching parts (several input, one reference: class ``n:1``,
  change ``split``);
* **merged**: 2-3 neighbours of a terrace joined into one (one input, several reference: ``1:n``,
  change ``merged``);
* **modified**: reshaped, its depth extended or cut by 20-50 %, or a corner cut off (``1:1``);
* **removed**: deleted (reference only);
* **new**: a building added in front of a block, clear of every other (input only).

Half the blocks also have sheds (3-6 m) 1-4 m behind a building, kept or removed. Every input
feature is displaced by d ~ N(0, σ²I₂) (the parts of a split by one d) and then digitised anew:
each vertex moved by N(0, noise²) per axis (``noise`` metres), so an unchanged building is not an
exact copy. The truth is a
group id per feature on both sides; class and change follow from the group's member counts as in
:mod:`..matching`. Coordinates are metres in ETRS89 / UTM 33N (:data:`CRS`), near Berlin.
"""

from dataclasses import dataclass

import numpy as np
import shapely

CRS = "EPSG:25833"
ORIGIN = (390_000.0, 5_820_000.0)
BLOCK_PITCH = (170.0, 170.0)  # metres between block centres: a turned block of 6 fits


@dataclass
class EditedLayers:
    """Reference (old) and input (new) layers with the truth.

    reference (n_b,), input (n_a,) : object arrays of polygons in :data:`CRS`.
    group_b, group_a : truth group id of every feature (a group present on one side only is a
        removed or new feature).
    class_a, class_b, change_a, change_b : truth class (1:1, 1:n, n:1, m:n, unmatched) and change.
    edit_b : the edit applied to each reference building (unchanged, split, merged, modified, removed).
    sigma : the σ of the displacements, metres.
    doubtful_a, doubtful_b : bool per feature, True for those of the doubtful blocks of
        :func:`.source_edits.generate_source_edits` (None where the generator makes none).
    """

    reference: np.ndarray
    input: np.ndarray
    group_a: np.ndarray
    group_b: np.ndarray
    class_a: np.ndarray
    class_b: np.ndarray
    change_a: np.ndarray
    change_b: np.ndarray
    edit_b: np.ndarray
    sigma: float
    crs: str = CRS
    doubtful_a: np.ndarray = None
    doubtful_b: np.ndarray = None


def _rigid(geoms, angle, dx, dy, cx, cy):
    """Each geometry turned by angle[i] about (cx[i], cy[i]) and moved by (dx[i], dy[i])."""
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    c, s = np.cos(angle[owner]), np.sin(angle[owner])
    x, y = coords[:, 0] - cx[owner], coords[:, 1] - cy[owner]
    moved = np.column_stack([c * x - s * y + cx[owner] + dx[owner], s * x + c * y + cy[owner] + dy[owner]])
    return shapely.set_coordinates(geoms.copy(), moved)


def generate_edits(seed, n_blocks=200, sigma=0.5, noise=0.1, p_split=0.08, p_modify=0.08, p_remove=0.06,
                   p_merge=0.25, p_new=0.35, p_shed=0.5):
    """Seeded reference and input layers with their truth (:class:`EditedLayers`).

    n_blocks : blocks of 3-6 buildings; p_merge : chance that a terrace block has one merged run;
    p_new, p_shed : chances that a block gets a new building in front, sheds behind; the others are
    per building. noise : vertex noise of the input's digitisation, metres.
    """
    rng = np.random.default_rng(seed)
    ref_geoms, ref_block, ref_group, edit_b = [], [], [], []
    in_geoms, in_block, in_group, in_shift = [], [], [], []
    group = 0
    for block in range(n_blocks):  # one iteration per block of a few buildings
        k = int(rng.integers(3, 7))
        terrace = rng.random() < 0.5
        widths = rng.uniform(8.0, 16.0, k)
        gaps = np.zeros(k) if terrace else rng.uniform(3.0, 8.0, k)
        depth = rng.uniform(10.0, 16.0)
        x0 = np.concatenate([[0.0], np.cumsum(widths + gaps)[:-1]])
        x0 -= (x0[-1] + widths[-1]) / 2.0
        boxes = shapely.box(x0, -depth / 2, x0 + widths, depth / 2)
        edits = rng.choice(["unchanged", "split", "modified", "removed"], size=k,
                           p=[1 - p_split - p_modify - p_remove, p_split, p_modify, p_remove]).astype(object)
        merged_run = None
        if terrace and rng.random() < p_merge:
            length = int(rng.integers(2, 4))
            start = int(rng.integers(0, k - length + 1))
            merged_run = range(start, start + length)
            edits[start:start + length] = "merged"
        for i in range(k):
            ref_geoms.append(boxes[i])
            ref_block.append(block)
            edit_b.append(edits[i])
            shift = rng.normal(0.0, sigma, 2)
            if edits[i] == "merged":
                if i == merged_run.start:
                    last = merged_run.stop - 1  # one box: a union of touching boxes can keep rounding seams
                    in_geoms.append(shapely.box(x0[i], -depth / 2, x0[last] + widths[last], depth / 2))
                    in_block.append(block)
                    in_group.append(group)
                    in_shift.append(shift)
                ref_group.append(group)
                if i == merged_run.stop - 1:
                    group += 1
                continue
            ref_group.append(group)
            if edits[i] == "unchanged":
                in_geoms.append(boxes[i])
                in_block.append(block)
                in_group.append(group)
                in_shift.append(shift)
            elif edits[i] == "split":
                n_parts = int(rng.integers(2, 4))
                cuts = np.sort(rng.uniform(0.25, 0.75, n_parts - 1)) if n_parts == 2 else np.array([1 / 3, 2 / 3])
                edges = x0[i] + widths[i] * np.concatenate([[0.0], cuts, [1.0]])
                for left, right in zip(edges[:-1], edges[1:]):
                    in_geoms.append(shapely.box(left, -depth / 2, right, depth / 2))
                    in_block.append(block)
                    in_group.append(group)
                    in_shift.append(shift)
            elif edits[i] == "modified":
                in_geoms.append(_reshape(rng, x0[i], widths[i], depth))
                in_block.append(block)
                in_group.append(group)
                in_shift.append(shift)
            group += 1
        behind = np.flatnonzero(np.isin(edits, ["unchanged", "split", "removed"]))
        if len(behind) and rng.random() < p_shed:  # sheds behind buildings whose back does not move
            for i in rng.choice(behind, size=min(len(behind), int(rng.integers(1, 3))), replace=False):
                size = rng.uniform(3.0, 6.0, 2)
                left = x0[i] + rng.uniform(0.0, max(widths[i] - size[0], 0.0))
                near = depth / 2 + rng.uniform(1.0, 4.0)
                shed = shapely.box(left, near, left + size[0], near + size[1])
                ref_geoms.append(shed)
                ref_block.append(block)
                ref_group.append(group)
                kept = rng.random() > 0.15
                edit_b.append("unchanged" if kept else "removed")
                if kept:
                    in_geoms.append(shed)
                    in_block.append(block)
                    in_group.append(group)
                    in_shift.append(rng.normal(0.0, sigma, 2))
                group += 1
        if rng.random() < p_new:  # a new building in front of the block, 6-10 m clear of it
            width = rng.uniform(6.0, 12.0)
            offset = rng.uniform(-20.0, 20.0)
            front = -depth / 2 - rng.uniform(6.0, 10.0)
            in_geoms.append(shapely.box(offset - width / 2, front - rng.uniform(6.0, 10.0), offset + width / 2, front))
            in_block.append(block)
            in_group.append(group)
            in_shift.append(np.zeros(2))
            group += 1
    ref_geoms, in_geoms = np.array(ref_geoms, dtype=object), np.array(in_geoms, dtype=object)
    ref_block, in_block = np.asarray(ref_block), np.asarray(in_block)
    # Blocks on a grid, each turned about its centre; input features then displaced by σ.
    columns = int(np.ceil(np.sqrt(n_blocks)))
    centre_x = ORIGIN[0] + BLOCK_PITCH[0] * (np.arange(n_blocks) % columns)
    centre_y = ORIGIN[1] + BLOCK_PITCH[1] * (np.arange(n_blocks) // columns)
    angle = rng.uniform(0.0, np.pi, n_blocks)
    zero_b, zero_a = np.zeros(len(ref_geoms)), np.zeros(len(in_geoms))
    reference = _rigid(ref_geoms, angle[ref_block], centre_x[ref_block], centre_y[ref_block], zero_b, zero_b)
    shift = np.asarray(in_shift).reshape(-1, 2)
    placed = _rigid(in_geoms, angle[in_block], centre_x[in_block], centre_y[in_block], zero_a, zero_a)
    centre = shapely.get_coordinates(shapely.centroid(placed))
    inputs = _rigid(placed, np.zeros(len(placed)), shift[:, 0], shift[:, 1], centre[:, 0], centre[:, 1])
    if noise > 0:
        from .shapes import vertex_noise

        inputs = vertex_noise(rng, inputs, np.full(len(inputs), float(noise)))
    group_a, group_b = np.asarray(in_group, dtype=np.int64), np.asarray(ref_group, dtype=np.int64)
    class_a, class_b, change_a, change_b = truth_labels(group_a, group_b, np.asarray(edit_b, dtype=object))
    return EditedLayers(reference, inputs, group_a, group_b, class_a, class_b, change_a, change_b,
                        np.asarray(edit_b, dtype=object), float(sigma))


def _reshape(rng, x0, width, depth):
    """The building (x0..x0+width, ±depth/2) with its depth extended or cut, or a corner cut off."""
    kind = rng.integers(0, 3)
    if kind == 0:  # extended backwards by 10-50 % of its depth
        return shapely.box(x0, -depth / 2, x0 + width, depth / 2 + depth * rng.uniform(0.1, 0.5))
    if kind == 1:  # cut at the back by 10-45 %
        return shapely.box(x0, -depth / 2, x0 + width, depth / 2 - depth * rng.uniform(0.1, 0.45))
    corner_w, corner_d = width * rng.uniform(0.25, 0.6), depth * rng.uniform(0.25, 0.6)
    body = shapely.box(x0, -depth / 2, x0 + width, depth / 2)
    return shapely.difference(body, shapely.box(x0 + width - corner_w, depth / 2 - corner_d, x0 + width + 1,
                                                depth / 2 + 1)).normalize()


def truth_labels(group_a, group_b, edit_b):
    """Truth class and change per feature from the group ids (and the reference edits, for modified)."""
    from ..matching import CHANGE_OF_CLASS, group_classes

    n_groups = int(max(group_a.max(initial=-1), group_b.max(initial=-1)) + 1)
    count_a = np.bincount(group_a, minlength=n_groups)
    count_b = np.bincount(group_b, minlength=n_groups)
    group_class = group_classes(count_a, count_b)
    group_class[(count_a == 0) | (count_b == 0)] = "unmatched"
    modified = np.zeros(n_groups, dtype=bool)
    modified[group_b[edit_b == "modified"]] = True
    group_change = np.full(n_groups, "unchanged", dtype=object)
    group_change[modified] = "modified"
    for name, change in CHANGE_OF_CLASS.items():
        group_change[group_class == name] = change
    group_change[count_b == 0] = "new"
    group_change[count_a == 0] = "removed"
    return group_class[group_a], group_class[group_b], group_change[group_a], group_change[group_b]
