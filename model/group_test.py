"""Group-level test of doubtful links: do two tentative groups agree better as one?

A pair's own numbers cannot tell a minor overlap between neighbours that σ moved apart from a real
piece of an m:n (or n:1) group whose new part reaches a few metres into the old neighbour: both are a
few square metres of overlap at a few metres of σ. What tells them apart is the group: the pieces of
one truth group moved together (one shift), two neighbours moved independently. So for a doubtful
candidate pair (``q`` between :data:`Q_LOW` and the link threshold) whose two features are in different
tentative groups (or unmatched), the test compares

* the misfit of the merged group: the area of the symmetric difference of the union of its input members
  and the union of its reference members, after removing the best common shift (the one that makes the
  area-weighted centroids coincide), with
* the summed misfits of the two groups taken apart, each with its own shift (an unmatched feature's misfit
  is its whole area),

together with the size of the common shift in units of σ and the pair's q, through a logistic model fitted
on validation edits (``"groups"`` in ``model/match_model.json``). A candidate it accepts becomes a link of
the match graph (``CandidateEdges.linked``), with that model's probability as the link's probability.
Unions are measured by sums over member pairs (features of one layer do not overlap each other). All work
is batched over every candidate at once (one projection, one GEOS intersection call per round); rounds
(:data:`ROUNDS`) let a third piece join a group of two.

The **cut test** is its mirror, for links that should not be there: a neighbour that σ moved onto a piece of a
group, a removed building that a new one now covers in part. Each link of the graph (a pair-model edge or a
pair the group test linked) whose removal would split its group in two (a bridge), in groups of
:data:`CUT_MIN_MEMBERS` to :data:`MAX_MEMBERS` members, is tested with the same nine features: the misfit of the
group as it stands against the summed misfits of its two sides apart, each with its own common shift (a
single unmatched feature's misfit is its whole area). A second small network, fitted on validation edits
(``"cuts"`` in ``model/match_model.json``), gives the probability that the link is right; below the threshold of
the pair's σ band the link is cut (``CandidateEdges.cut``), with that probability as its edge probability.
:func:`apply_group_tests` runs the cut test, the group test, then the cut test again (a wrong link removed
first no longer pulls the group test's merges its way; a merge can make a new bridge).
"""

import numpy as np
import shapely

from .frame import unit_to_lonlat
from .graph import components, connected_labels
from .laea import laea_forward
from .match_model import _model_of
from .parallel import index_runs

Q_LOW = 0.01
ROUNDS = 2
#: A merge is tested only when the merged group would have at most this many members (both layers): the
#: groups the test was fitted on hold 2-6, and the work per candidate grows with the square of the members.
MAX_MEMBERS = 12
#: The cut test reads groups of at least this many members (both layers): a link of a group of two is the pair's
#: own decision.
CUT_MIN_MEMBERS = 3


def group_features(gain, misfit_merged, misfit_apart, shift_sigma, q, sigma, area_ratio, shift_apart_sigma,
                   members):
    """(k, 9) features of candidate merges: the misfit gain and the two misfits (shares of the merged
    group's summed area), log of the common shift in σ, logit q, log σ, log area ratio of the two groups,
    log of the larger of the two groups' own shifts in σ, log of the merged group's member count."""
    q = np.clip(np.asarray(q, dtype=float), 1e-4, 1 - 1e-4)
    return np.column_stack([gain, misfit_merged, misfit_apart, np.log(np.asarray(shift_sigma) + 0.1),
                            np.log(q / (1 - q)), np.log(np.maximum(sigma, 1e-3)), np.abs(np.log(area_ratio)),
                            np.log(np.asarray(shift_apart_sigma) + 0.1), np.log(np.maximum(members, 1))])


def _project(geoms, lon0, lat0):
    """Geometries (lon/lat) into the LAEA frame of one centre per geometry, repaired where invalid."""
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    x, y = laea_forward(coords[:, 0], coords[:, 1], lon0[owner], lat0[owner])
    out = shapely.set_coordinates(np.array(geoms, dtype=object, copy=True), np.column_stack([x, y]))
    bad = ~shapely.is_valid(out)
    if bad.any():
        out[bad] = shapely.make_valid(out[bad])
    return out


def set_misfits(set_of_a, geoms_a, set_of_b, geoms_b, n_sets):
    """Per set of features (input rows ``set_of_a`` with metric geometries ``geoms_a``, reference rows
    likewise, all of a set in one frame): the misfit (symmetric difference of the unions after the common
    shift that makes their area-weighted centroids coincide), the summed area, and the shift (n_sets, 2)."""
    area_a, area_b = shapely.area(geoms_a), shapely.area(geoms_b)
    centre_a = shapely.get_coordinates(shapely.centroid(geoms_a)) if len(geoms_a) else np.zeros((0, 2))
    centre_b = shapely.get_coordinates(shapely.centroid(geoms_b)) if len(geoms_b) else np.zeros((0, 2))
    sum_a = np.bincount(set_of_a, area_a, n_sets)
    sum_b = np.bincount(set_of_b, area_b, n_sets)
    mean_a = np.column_stack([np.bincount(set_of_a, area_a * centre_a[:, k], n_sets) for k in range(2)])
    mean_b = np.column_stack([np.bincount(set_of_b, area_b * centre_b[:, k], n_sets) for k in range(2)])
    both = (sum_a > 0) & (sum_b > 0)
    shift = np.zeros((n_sets, 2))
    shift[both] = mean_a[both] / sum_a[both, None] - mean_b[both] / sum_b[both, None]
    # every (input, reference) member pair of each set
    order_b = np.argsort(set_of_b, kind="stable")
    count_b = np.bincount(set_of_b, minlength=n_sets)
    start_b = np.cumsum(count_b) - count_b
    repeat = count_b[set_of_a]
    rows_a = np.repeat(np.arange(len(set_of_a)), repeat)
    rows_b = order_b[index_runs(start_b[set_of_a], repeat)]
    pair_set = set_of_a[rows_a]
    moved = np.array(geoms_b[rows_b], dtype=object, copy=True)
    coords, owner = shapely.get_coordinates(moved, return_index=True)
    moved = shapely.set_coordinates(moved, coords + shift[pair_set[owner]])
    inter = shapely.area(shapely.intersection(geoms_a[rows_a], moved)) if len(rows_a) else np.zeros(0)
    inter_sum = np.minimum(np.bincount(pair_set, inter, n_sets), np.minimum(sum_a, sum_b))
    return sum_a + sum_b - 2.0 * inter_sum, sum_a + sum_b, shift


def threshold_at(config, sigma):
    """(k,) the group test's threshold at each σ: that of the σ band nearest on a log scale where the
    configuration has ``"threshold_bands"`` (``{"band_sigmas": [...], "thresholds": [...]}``), else its one
    ``"threshold"``."""
    sigma = np.asarray(sigma, dtype=float)
    bands = config.get("threshold_bands")
    if bands is None:
        return np.full(sigma.shape, float(config["threshold"]))
    centres = np.log(np.asarray(bands["band_sigmas"], dtype=float))
    known = np.isfinite(sigma) & (sigma > 0)
    band = np.argmin(np.abs(np.log(np.where(known, sigma, 1.0))[..., None] - centres), axis=-1)
    return np.where(known, np.asarray(bands["thresholds"], dtype=float)[band], float(config["threshold"]))


def candidate_merges(edges, group_a, group_b, linked, usable_a, usable_b, p_edge, eligible=None):
    """Positions of the doubtful candidate pairs whose features lie in different tentative groups that would
    hold at most :data:`MAX_MEMBERS` members together (``eligible``: (p,) bool, pairs the test may read,
    e.g. those in the pair model's domain; None: all)."""
    q = np.asarray(edges.q, dtype=float)
    ga, gb = group_a[edges.index_a], group_b[edges.index_b]
    n_groups = int(max(group_a.max(initial=-1), group_b.max(initial=-1)) + 1)
    size = (np.bincount(group_a[group_a >= 0], minlength=n_groups)
            + np.bincount(group_b[group_b >= 0], minlength=n_groups))
    size_a = np.where(ga >= 0, size[np.maximum(ga, 0)] if n_groups else 1, 1)
    size_b = np.where(gb >= 0, size[np.maximum(gb, 0)] if n_groups else 1, 1)
    small = size_a + size_b <= MAX_MEMBERS
    if eligible is not None:
        small &= np.asarray(eligible, dtype=bool)
    return np.flatnonzero((q >= Q_LOW) & (q < p_edge) & ~linked & usable_a[edges.index_a]
                          & usable_b[edges.index_b] & ((ga != gb) | (ga < 0)) & small)


def merge_features(edges, rows, group_a, group_b, members_a, members_b, lonlat_a, lonlat_b, sigma_a):
    """(k, 9) :func:`group_features` of the candidate merges ``rows`` (positions in ``edges``)."""
    k = len(rows)
    ia, ib = edges.index_a[rows], edges.index_b[rows]
    # three sets per candidate: the group of its input feature, the group of its reference one, both
    side_a, side_b = [[], [], []], [[], [], []]
    for which, (g, alone_a, alone_b) in enumerate(((group_a[ia], ia, None), (group_b[ib], None, ib))):
        for c in range(k):
            if g[c] >= 0:
                side_a[which].append(members_a[g[c]])
                side_b[which].append(members_b[g[c]])
            else:
                side_a[which].append(np.array([alone_a[c]]) if alone_a is not None else np.zeros(0, dtype=np.int64))
                side_b[which].append(np.array([alone_b[c]]) if alone_b is not None else np.zeros(0, dtype=np.int64))
    for c in range(k):
        side_a[2].append(np.union1d(side_a[0][c], side_a[1][c]))
        side_b[2].append(np.union1d(side_b[0][c], side_b[1][c]))
    members_of_a = [m for which in side_a for m in which]  # set s = which * k + c
    members_of_b = [m for which in side_b for m in which]
    set_of_a = np.repeat(np.arange(3 * k), [len(m) for m in members_of_a])
    set_of_b = np.repeat(np.arange(3 * k), [len(m) for m in members_of_b])
    flat_a = np.concatenate(members_of_a).astype(np.int64)
    flat_b = np.concatenate(members_of_b).astype(np.int64)
    return _three_set_features(set_of_a, flat_a, set_of_b, flat_b, k, edges, rows, lonlat_a, lonlat_b, sigma_a)


def _three_set_features(set_of_a, flat_a, set_of_b, flat_b, k, edges, rows, lonlat_a, lonlat_b, sigma_a):
    """(k, 9) :func:`group_features` of ``k`` candidates (the pairs ``rows`` of ``edges``), each with three sets of
    features: its two groups apart (sets c and k + c) and both as one (2k + c). ``set_of_a``, ``flat_a``: the set
    and the input row of each input member entry, likewise for the reference; every set is projected in the frame
    of its candidate's reference feature."""
    ia, ib = edges.index_a[rows], edges.index_b[rows]
    lon0, lat0 = unit_to_lonlat(lonlat_b.unit_centres[ib])
    lon0, lat0 = np.tile(lon0, 3), np.tile(lat0, 3)
    geoms_a = _project(np.asarray(lonlat_a.geoms, dtype=object)[flat_a], lon0[set_of_a], lat0[set_of_a])
    geoms_b = _project(np.asarray(lonlat_b.geoms, dtype=object)[flat_b], lon0[set_of_b], lat0[set_of_b])
    misfit, total, shift = set_misfits(set_of_a, geoms_a, set_of_b, geoms_b, 3 * k)
    merged = slice(2 * k, 3 * k)
    scale = np.maximum(total[merged], 1e-9)
    apart = misfit[:k] + misfit[k:2 * k]
    sigma = np.maximum(np.asarray(sigma_a, dtype=float)[ia], 0.05)
    shift_size = np.hypot(shift[:, 0], shift[:, 1])
    members = np.bincount(set_of_a, minlength=3 * k) + np.bincount(set_of_b, minlength=3 * k)
    return group_features((apart - misfit[merged]) / scale, misfit[merged] / scale, apart / scale,
                          shift_size[merged] / sigma, np.asarray(edges.q, dtype=float)[rows], sigma,
                          np.maximum(total[:k], 1e-9) / np.maximum(total[k:2 * k], 1e-9),
                          np.maximum(shift_size[:k], shift_size[k:2 * k]) / sigma, members[merged])


def link_groups(edges, p_edge, usable_a, usable_b, lonlat_a, lonlat_b, sigma_a, config, tentative, collect=None,
                eligible=None):
    """Set ``edges.linked`` (bool) and ``edges.link_p`` (the group test's probability) on the doubtful
    candidate pairs the group test accepts, over :data:`ROUNDS` rounds. ``config``: the ``"groups"`` entry
    of the match model (a network and its threshold). ``tentative(edges)``: the groups of the graph as it
    stands, (group_a, group_b, members_a, members_b) (:func:`.matching.tentative_groups`). ``collect``: a
    list that receives the candidate rows and features of the first round (for fitting; nothing linked).
    ``eligible``: (p,) bool, the pairs the test may read (see :func:`candidate_merges`)."""
    linked = np.zeros(len(edges), dtype=bool)
    link_p = np.zeros(len(edges))
    edges.linked, edges.link_p = linked, link_p
    test = _model_of(config["model"]) if config is not None else None
    for _ in range(ROUNDS):
        group_a, group_b, members_a, members_b = tentative(edges)
        rows = candidate_merges(edges, group_a, group_b, linked, usable_a, usable_b, p_edge, eligible)
        if not len(rows):
            break
        features = merge_features(edges, rows, group_a, group_b, members_a, members_b, lonlat_a, lonlat_b, sigma_a)
        if collect is not None:
            collect.append((rows, features))
            break
        p = test(features)
        accept = p >= threshold_at(config, np.asarray(sigma_a, dtype=float)[edges.index_a[rows]])
        if not accept.any():
            break
        linked[rows[accept]] = True
        link_p[rows[accept]] = p[accept]
    return edges


def bridge_links(edges, keep, n_a, n_b, eligible=None):
    """The links a cut would test: positions in ``edges`` of the graph's links (``keep``: (p,) bool) that are
    bridges of their group (removing one splits it in two), in groups of :data:`CUT_MIN_MEMBERS` to
    :data:`MAX_MEMBERS` members (``eligible``: (p,) bool, pairs the test may read; None: all), and for each
    the members of its group with their side: (rows, member_row, member_node, member_side), members listed
    candidate by candidate, nodes numbered inputs first (0..n_a-1) then references (n_a..), side 0 with the
    link's input feature, 1 with its reference feature. Every group is handled at once: a copy of the group's
    links without the one tested, per candidate, and one connected-components call over all the copies."""
    empty = np.zeros(0, dtype=np.int64)
    keep = np.asarray(keep, dtype=bool)
    if not keep.any():  # no link, no group
        return empty, empty, empty, empty
    ia, ib = edges.index_a, edges.index_b
    group_a, group_b = components(n_a, n_b, ia[keep], ib[keep])
    node_group = np.concatenate([group_a, group_b])
    n_groups = int(node_group.max(initial=-1) + 1)
    size = np.bincount(node_group[node_group >= 0], minlength=n_groups)
    group_of_link = np.where(keep, group_a[ia], -1)
    wanted = keep & (group_of_link >= 0)
    wanted &= (size[np.maximum(group_of_link, 0)] >= CUT_MIN_MEMBERS) & (size[np.maximum(group_of_link, 0)]
                                                                         <= MAX_MEMBERS)
    if eligible is not None:
        wanted &= np.asarray(eligible, dtype=bool)
    rows = np.flatnonzero(wanted)
    if not rows.size:
        return rows, empty, empty, empty
    # members of each group in a row (nodes sorted by group), and each node's place among its group's members
    nodes = np.flatnonzero(node_group >= 0)
    members = nodes[np.argsort(node_group[nodes], kind="stable")]
    member_start = np.cumsum(size) - size
    local = np.zeros(n_a + n_b, dtype=np.int64)
    local[members] = np.arange(members.size) - member_start[node_group[members]]
    # the links of each group in a row
    links = np.flatnonzero(keep)
    links = links[np.argsort(group_of_link[links], kind="stable")]
    link_count = np.bincount(group_of_link[keep], minlength=n_groups)
    group = group_of_link[rows]
    others = links[index_runs((np.cumsum(link_count) - link_count)[group], link_count[group])]
    copy = np.repeat(np.arange(rows.size), link_count[group])
    other = others != rows[copy]  # every link of the group but the one tested
    copy, others = copy[other], others[other]
    labels = connected_labels(rows.size * MAX_MEMBERS, copy * MAX_MEMBERS + local[ia[others]],
                              copy * MAX_MEMBERS + local[n_a + ib[others]]).reshape(rows.size, MAX_MEMBERS)
    candidate = np.arange(rows.size)
    end_a, end_b = labels[candidate, local[ia[rows]]], labels[candidate, local[n_a + ib[rows]]]
    bridge = end_a != end_b
    rows, group, labels, end_a = rows[bridge], group[bridge], labels[bridge], end_a[bridge]
    member_node = members[index_runs(member_start[group], size[group])]
    member_row = np.repeat(np.arange(rows.size), size[group])
    member_side = (labels[member_row, local[member_node]] != end_a[member_row]).astype(np.int64)
    return rows, member_row, member_node, member_side


def cut_features(edges, rows, member_row, member_node, member_side, n_a, lonlat_a, lonlat_b, sigma_a):
    """(k, 9) :func:`group_features` of the candidate cuts ``rows`` (and their groups' members with their sides,
    from :func:`bridge_links`): the group as it stands is the merged one, its two sides the groups apart."""
    k = len(rows)
    is_a = member_node < n_a
    # three sets per candidate: side 0 (c), side 1 (k + c), the whole group (2k + c)
    set_of_a = np.concatenate([member_side[is_a] * k + member_row[is_a], 2 * k + member_row[is_a]])
    set_of_b = np.concatenate([member_side[~is_a] * k + member_row[~is_a], 2 * k + member_row[~is_a]])
    return _three_set_features(set_of_a, np.tile(member_node[is_a], 2), set_of_b, np.tile(member_node[~is_a] - n_a, 2),
                               k, edges, rows, lonlat_a, lonlat_b, sigma_a)


def cut_links(edges, n_a, n_b, lonlat_a, lonlat_b, sigma_a, config, kept, collect=None, eligible=None):
    """One pass of the cut test: set ``edges.cut`` (bool) and ``edges.cut_p`` (the cut test's probability) on the
    bridges it cuts, keeping the cuts made before. ``config``: the ``"cuts"`` entry of the match model (a
    network and its thresholds); ``kept(edges)``: (p,) bool, the graph's links as they stand
    (:func:`.matching.kept_edges`). ``collect``: a list that receives the candidate rows and features (for
    fitting; nothing cut). ``eligible``: as in :func:`bridge_links`."""
    if edges.cut is None:
        edges.cut, edges.cut_p = np.zeros(len(edges), dtype=bool), np.full(len(edges), np.nan)
    rows, member_row, member_node, member_side = bridge_links(edges, kept(edges), n_a, n_b, eligible)
    if not rows.size:
        return edges
    features = cut_features(edges, rows, member_row, member_node, member_side, n_a, lonlat_a, lonlat_b, sigma_a)
    if collect is not None:
        collect.append((rows, features))
        return edges
    p = _model_of(config["model"])(features)
    cut = p < threshold_at(config, np.asarray(sigma_a, dtype=float)[edges.index_a[rows]])
    edges.cut[rows[cut]] = True
    edges.cut_p[rows[cut]] = p[cut]
    return edges


def apply_group_tests(edges, p_edge, usable_a, usable_b, lonlat_a, lonlat_b, sigma_a, groups, cuts, tentative, kept,
                      eligible=None):
    """The group-level tests in their order: the cut test (``cuts``: its configuration, None: none), the group
    test of the doubtful pairs (``groups``, None: none; :func:`link_groups`), then the cut test again.
    ``tentative`` and ``kept``: functions of the edges giving the groups and the links as they stand."""
    n_a, n_b = len(usable_a), len(usable_b)
    edges.linked = edges.link_p = edges.cut = edges.cut_p = None
    if cuts is not None:
        cut_links(edges, n_a, n_b, lonlat_a, lonlat_b, sigma_a, cuts, kept, eligible=eligible)
    if groups is not None:
        link_groups(edges, p_edge, usable_a, usable_b, lonlat_a, lonlat_b, sigma_a, groups, tentative,
                    eligible=eligible)
    if cuts is not None:
        cut_links(edges, n_a, n_b, lonlat_a, lonlat_b, sigma_a, cuts, kept, eligible=eligible)
    return edges
