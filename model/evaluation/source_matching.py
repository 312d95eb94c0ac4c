"""Fit the learned matching decisions on validation edits and measure them on held-out edits.

``python -m overlap_relevance.model.evaluation.source_matching fit`` fits the pair model (stages of small
networks), the change model, the link threshold and the calibration tables on validation seeds
(:data:`..datasets.source_edits.VALIDATION_SEED` and the next ones, see :func:`fit`), and writes
``model/match_model.json``.
``... report`` measures the shipped decisions on :data:`..datasets.source_edits.HELDOUT_SEED` (never
used for a choice), per σ band: group structure and class per class, m:n groups found, change labels,
and reliability of ``m_p`` and ``m_change_p``; it writes ``model/source_matching_results.md``.
Each σ of each seed takes seconds at the default size on 2 cores.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

from ..datasets.source_edits import HELDOUT_SEED, SIGMAS, VALIDATION_SEED, generate_source_edits
from ..frame import layer_to_lonlat
from ..group_test import cut_links, link_groups
from ..match_model import PATH, Logistic, Network, change_features
from ..matching import (MatchThresholds, apply_change_test, candidate_edges, change_test, decide, kept_edges,
                        run_group_tests, tentative_groups)
from ..preparation import prepare_layer
from .tune_matching import reliability, structure_correct

CLASSES = ("1:1", "1:n", "n:1", "m:n", "unmatched")
CHANGES = ("unchanged", "modified", "split", "merged", "reshaped", "new", "removed")
N_BLOCKS = 400
REPORT_BLOCKS = 1600  # held-out blocks per σ: four times the fitting size, for more decisions per calibration bin
RESULTS = Path(__file__).resolve().parents[1] / "source_matching_results.md"
P_EDGE_GRID = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
N_LATER_STAGES = 2  # pair-model stages after the first, each on its own validation seed


def config_change_placeholder():
    """An uninformative change model (P = 0.5), for the steps that run before it is fitted."""
    return Logistic(np.zeros(8), np.ones(8), np.zeros(8), 0.0).as_dict()


def prepared(seed, sigma, n_blocks=N_BLOCKS, doubtful_blocks=0, heldout=False):
    """The edits of ``seed`` at ``sigma`` and both layers prepared; the held-out seed only where the caller
    says it measures (``heldout``: the report), so that no fitting step can read it."""
    if seed == HELDOUT_SEED and not heldout:
        raise ValueError(f"seed {HELDOUT_SEED} is held out: only the report reads it")
    edits = generate_source_edits(seed, n_blocks=n_blocks, sigma=sigma, doubtful_blocks=doubtful_blocks)
    return (edits, prepare_layer(layer_to_lonlat(edits.input, edits.crs)),
            prepare_layer(layer_to_lonlat(edits.reference, edits.crs)), np.full(len(edits.input), sigma))


def run(data, edges, thresholds, match_model, groups="shipped", cuts="shipped"):
    """MatchResult with the change test, and the change test's numbers of the 1:1 pairs. ``groups``, ``cuts``: the
    group test's and the cut test's configurations ("shipped": the match model's, None: no such test)."""
    edits, layer_a, layer_b, sigma_a = data
    config = match_model.config if match_model is not None else {}
    link(data, edges, thresholds, config.get("groups") if groups == "shipped" else groups,
         config.get("cuts") if cuts == "shipped" else cuts)
    result = decide(len(edits.input), len(edits.reference), edges, thresholds)
    one = np.flatnonzero((result.class_a == "1:1") & (result.partner_a >= 0))
    tested = change_test(layer_a.source, layer_b.source, sigma_a, one, result.partner_a[one], thresholds.sigma_floor)
    apply_change_test(result, one, tested, thresholds, sigma_a, match_model)
    return result, one, tested


def link(data, edges, thresholds, config, cuts=None):
    """The group-level tests (:func:`..group_test.apply_group_tests`) on ``edges``: the group test with ``config``
    and the cut test with ``cuts``; both None clear the links and cuts they made."""
    edits, layer_a, layer_b, sigma_a = data
    edges.linked = edges.link_p = edges.cut = edges.cut_p = None
    if (config is not None or cuts is not None) and edges.q is not None:
        n_a, n_b = len(edits.input), len(edits.reference)
        usable_a, usable_b = np.ones(n_a, dtype=bool), np.ones(n_b, dtype=bool)
        run_group_tests(n_a, n_b, edges, thresholds, usable_a, usable_b, layer_a.source, layer_b.source, sigma_a,
                        config, cuts)
    return edges


def class_rows(result, edits, doubtful=False):
    """Per truth class (hits, features) of the features of the ordinary blocks (``doubtful``: of the
    doubtful blocks instead; edits without doubtful blocks: all)."""
    ok_a, ok_b = structure_correct(result, edits)
    in_a, in_b = _family(edits, doubtful)
    ok_a, ok_b = ok_a & in_a, ok_b & in_b
    rows = {name: (int(np.sum(ok_a[edits.class_a == name]) + np.sum(ok_b[edits.class_b == name])),
                   int(np.sum(in_a & (edits.class_a == name)) + np.sum(in_b & (edits.class_b == name))))
            for name in CLASSES}
    rows["all"] = (int(ok_a.sum() + ok_b.sum()), int(in_a.sum() + in_b.sum()))
    # m:n found: truth m:n groups whose members form exactly one predicted group of class m:n
    truth_mn = np.unique(edits.group_b[(edits.class_b == "m:n") & in_b])
    found = sum(bool(np.all(ok_a[edits.group_a == g]) and np.all(ok_b[edits.group_b == g])) for g in truth_mn)
    rows["m:n groups found"] = (int(found), len(truth_mn))
    return rows


def change_rows(result, edits, doubtful=False):
    in_a, in_b = _family(edits, doubtful)
    rows = {}
    for name in CHANGES:
        hit = np.concatenate([result.change_a[in_a & (edits.change_a == name)] == name,
                              result.change_b[in_b & (edits.change_b == name)] == name])
        rows[name] = (int(hit.sum()), len(hit))
    return rows


def _family(edits, doubtful):
    """(n_a,), (n_b,) bool: the features of the ordinary blocks, or (``doubtful``) of the doubtful ones."""
    if edits.doubtful_a is None:
        return np.full(len(edits.input), not doubtful), np.full(len(edits.reference), not doubtful)
    return (edits.doubtful_a == doubtful), (edits.doubtful_b == doubtful)


def fit(n_blocks=N_BLOCKS):
    """Fit and write ``model/match_model.json`` on validation seeds only: each pair-model stage on its own
    seed (from :data:`VALIDATION_SEED` on), the change model on the next, the link threshold and the
    calibration tables on the last."""
    from ..match_model import MatchModel, Network, load_match_model, rivalry
    from ..scoring import load_model

    model = load_model()
    PATH.unlink(missing_ok=True)  # candidate_edges then leaves q to us
    load_match_model.cache_clear()
    seeds = tuple(VALIDATION_SEED + k for k in range(N_LATER_STAGES + 2))
    assert HELDOUT_SEED not in seeds
    cache = {}

    def edges_of(seed, sigma):
        if (seed, sigma) not in cache:
            data = prepared(seed, sigma, n_blocks)
            cache[(seed, sigma)] = (data, candidate_edges(model, *data[1:]))
        return cache[(seed, sigma)]

    def truth(data, edges):
        return data[0].group_a[edges.index_a] == data[0].group_b[edges.index_b]

    def stacked(seed, make):
        x, y = [], []
        for sigma in SIGMAS:
            data, edges = edges_of(seed, sigma)
            x.append(make(data, edges))
            y.append(truth(data, edges))
        return np.concatenate(x), np.concatenate(y)

    x, y = stacked(seeds[0], lambda data, edges: edges.features)
    stages = [Network.fit(x, y)]
    fitted_on = {"stages": [int(len(y))]}
    for seed in seeds[1:1 + N_LATER_STAGES]:
        partial = MatchModel({"stages": [st.as_dict() for st in stages], "change": config_change_placeholder()})

        def later_features(data, edges):
            q = partial.pair(edges.features, edges.index_a, edges.index_b, len(data[0].input),
                             len(data[0].reference), edges.area_a, edges.area_b)
            return np.column_stack([edges.features, rivalry(q, edges.index_a, edges.index_b, len(data[0].input),
                                                            len(data[0].reference), edges.area_a, edges.area_b)])

        x, y = stacked(seed, later_features)
        stages.append(Network.fit(x, y))
        fitted_on["stages"].append(int(len(y)))
    config = {"stages": [st.as_dict() for st in stages], "change": config_change_placeholder(), "tables": {}}
    staged = MatchModel(config)

    def with_q(seed, sigma):
        data, edges = edges_of(seed, sigma)
        edges.q = staged.pair(edges.features, edges.index_a, edges.index_b, len(data[0].input),
                              len(data[0].reference), edges.area_a, edges.area_b)
        return data, edges

    # The change model: 1:1 truth pairs with the right partner, unchanged against modified, at every σ.
    cx, cy = [], []
    for sigma in SIGMAS:
        data, edges = with_q(seeds[-2], sigma)
        edits = data[0]
        result, one, tested = run(data, edges, MatchThresholds(p_edge=0.5), None)
        partner = result.partner_a[one]
        right = (edits.group_a[one] == edits.group_b[partner]) & (edits.class_a[one] == "1:1")
        cx.append(change_features(tested[2], tested[1], tested[3], tested[4], tested[5], data[3][one])[right])
        cy.append(edits.change_a[one][right] == "modified")
    change = Network.fit(np.concatenate(cx), np.concatenate(cy), hidden=12)
    fitted_on["change"] = int(len(np.concatenate(cy)))
    config["change"] = change.as_dict()
    match_model = MatchModel(config)
    # The link threshold and the tables on the third seed.
    scores = {p_edge: [] for p_edge in P_EDGE_GRID}
    for sigma in SIGMAS:
        data, edges = with_q(seeds[-1], sigma)
        for p_edge in P_EDGE_GRID:
            result = decide(len(data[0].input), len(data[0].reference), edges, MatchThresholds(p_edge=p_edge))
            rows = class_rows(result, data[0])
            scores[p_edge].append(rows["all"][0] / rows["all"][1])
    p_edge = max(P_EDGE_GRID, key=lambda t: (round(float(np.mean(scores[t])), 4), t))
    config["p_edge"] = p_edge
    config["p_edge_scores"] = {str(t): [round(v, 4) for v in scores[t]] for t in P_EDGE_GRID}
    per_sigma = {}
    for sigma in SIGMAS:
        data, edges = with_q(seeds[-1], sigma)
        result, one, _ = run(data, edges, MatchThresholds(p_edge=p_edge), match_model)
        per_sigma[sigma] = {name: ([], []) for name in ("assigned", "unmatched", "grouped", "one_to_one")}
        _collect(per_sigma[sigma], result, data[0], one)
    config["tables"] = _tables(per_sigma, STEP_DECISIONS_PER_SEED)
    config["domain"] = domain([edges_of(seeds[0], sigma)[1] for sigma in SIGMAS])
    config["fitted_on"] = {**fitted_on, "seeds": list(seeds), "sigmas": list(SIGMAS), "n_blocks": n_blocks}
    PATH.write_text(json.dumps(config) + "\n")
    load_match_model.cache_clear()
    config = fit_groups(n_blocks, lambda seed, sigma: with_q(seed, sigma))
    print(json.dumps({k: config[k] for k in ("p_edge", "p_edge_scores", "fitted_on")}, indent=1))
    return config


GROUP_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
TABLE_SEEDS = 2  # validation seeds after the last pair-model seed that the calibration tables are fitted on
TABLE_BLOCKS = 1600  # blocks per σ of each table seed: four times the fitting size, for the thin middle bins
GROUP_SEEDS = 3  # validation seeds after those that the group test's network is fitted on


def fit_groups(n_blocks=N_BLOCKS, edges_of=None):
    """Fit the group test (:mod:`..group_test`) into the shipped ``model/match_model.json``, validation
    seeds only, none of which fitted the pair model: its network on :data:`GROUP_SEEDS` fresh seeds (the
    first round's candidate merges of every σ, truth: the two features are of one truth group), its threshold
    on the last pair-model seed (all-class accuracy, mean over σ), then the calibration tables again, with
    the group test in place, on :data:`TABLE_SEEDS` other fresh seeds (more decisions per σ band than one
    seed gives)."""
    from ..match_model import MatchModel, load_match_model
    from ..scoring import load_model

    load_match_model.cache_clear()
    config = json.loads(PATH.read_text())
    config.pop("groups", None)
    match_model = MatchModel(config)
    seeds = tuple(config["fitted_on"]["seeds"])
    fresh = tuple(max(seeds) + 1 + k for k in range(TABLE_SEEDS))
    network_seeds = tuple(max(fresh) + 1 + k for k in range(GROUP_SEEDS))
    assert HELDOUT_SEED not in seeds + fresh + network_seeds
    thresholds = MatchThresholds(p_edge=config["p_edge"])
    model = load_model()
    cache = {}

    def edges_with_q(seed, sigma, blocks=n_blocks):
        if edges_of is not None and seed in seeds:
            return edges_of(seed, sigma)
        if (seed, sigma) not in cache:
            data = prepared(seed, sigma, blocks)
            edges = candidate_edges(model, *data[1:])
            edges.q = match_model.pair(edges.features, edges.index_a, edges.index_b, len(data[0].input),
                                       len(data[0].reference), edges.area_a, edges.area_b)
            cache[(seed, sigma)] = (data, edges)
        return cache[(seed, sigma)]

    x, y = [], []
    for seed, sigma in ((seed, sigma) for seed in network_seeds for sigma in SIGMAS):
        data, edges = edges_with_q(seed, sigma)
        collected = []
        n_a, n_b = len(data[0].input), len(data[0].reference)
        usable_a, usable_b = np.ones(n_a, dtype=bool), np.ones(n_b, dtype=bool)
        link_groups(edges, thresholds.p_edge, usable_a, usable_b, data[1].source, data[2].source, data[3], None,
                    tentative_groups(n_a, n_b, thresholds, usable_a, usable_b), collect=collected)
        for rows, features in collected:
            x.append(features)
            y.append(data[0].group_a[edges.index_a[rows]] == data[0].group_b[edges.index_b[rows]])
    network = Network.fit(np.concatenate(x), np.concatenate(y), hidden=8)
    # the threshold: all-class accuracy (features right of both seeds together) per σ band, and its mean
    # over the bands for the one threshold used where σ is unknown
    threshold_seeds = (seeds[-1], fresh[0])
    scores, threshold, by_band = _threshold_choice(
        GROUP_THRESHOLDS, threshold_seeds, edges_with_q, thresholds,
        lambda data, edges, t: link(data, edges, thresholds, {"model": network.as_dict(), "threshold": t}))
    config["groups"] = {"model": network.as_dict(), "threshold": threshold,
                        "threshold_bands": {"band_sigmas": list(SIGMAS), "thresholds": by_band},
                        "threshold_scores": {str(t): [round(v, 4) for v in scores[t]] for t in GROUP_THRESHOLDS},
                        "fitted_on": {"network": [*network_seeds, int(len(np.concatenate(y)))],
                                      "threshold": list(threshold_seeds), "tables": list(fresh)}}
    PATH.write_text(json.dumps(config) + "\n")
    load_match_model.cache_clear()
    print(json.dumps(config["groups"]["threshold_scores"]), threshold, by_band)
    return fit_cuts(n_blocks)


CUT_THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)  # the cut test's thresholds tried per σ band (0: it never cuts)


def fit_cuts(n_blocks=N_BLOCKS):
    """Fit the cut test (:func:`..group_test.cut_links`) into the shipped ``model/match_model.json``, validation
    seeds only: its network on the group test's network seeds (the candidate cuts of every σ after the group
    test, ordinary and doubtful blocks, ``n_blocks`` each; truth: the link's two features are of one truth group),
    its threshold per σ band on the group test's threshold seeds (all-class accuracy of the ordinary and doubtful
    blocks together, through the whole chain: cut, group test, cut; ties go to the lower threshold, which cuts
    less), then the calibration tables again (:func:`fit_calibration`)."""
    from ..match_model import load_match_model
    from ..scoring import load_model

    load_match_model.cache_clear()
    config = json.loads(PATH.read_text())
    config.pop("cuts", None)
    PATH.write_text(json.dumps(config) + "\n")
    load_match_model.cache_clear()
    fitted = config["groups"]["fitted_on"]
    network_seeds, threshold_seeds = tuple(fitted["network"][:-1]), tuple(fitted["threshold"])
    assert HELDOUT_SEED not in network_seeds + threshold_seeds
    thresholds = MatchThresholds(p_edge=config["p_edge"])
    model = load_model()

    def prepared_edges(seed, sigma):
        data = prepared(seed, sigma, n_blocks, n_blocks)
        return data, candidate_edges(model, *data[1:], thresholds=thresholds)

    x, y = [], []
    for seed, sigma in ((seed, sigma) for seed in network_seeds for sigma in SIGMAS):
        data, edges = prepared_edges(seed, sigma)
        link(data, edges, thresholds, config["groups"])
        n_a, n_b = len(data[0].input), len(data[0].reference)
        usable_a, usable_b = np.ones(n_a, dtype=bool), np.ones(n_b, dtype=bool)
        collected = []
        cut_links(edges, n_a, n_b, data[1].source, data[2].source, data[3], None,
                  lambda e: kept_edges(e, thresholds, usable_a, usable_b), collect=collected)
        for rows, features in collected:
            x.append(features)
            y.append(data[0].group_a[edges.index_a[rows]] == data[0].group_b[edges.index_b[rows]])
        print("cut candidates", seed, sigma, sum(len(v) for v in y), flush=True)
    network = Network.fit(np.concatenate(x), np.concatenate(y), hidden=8)
    scores, threshold, by_band = _threshold_choice(
        CUT_THRESHOLDS, threshold_seeds, prepared_edges, thresholds,
        lambda data, edges, t: link(data, edges, thresholds, config["groups"],
                                    {"model": network.as_dict(), "threshold": t}), families=(False, True))
    config["cuts"] = {"model": network.as_dict(), "threshold": threshold,
                      "threshold_bands": {"band_sigmas": list(SIGMAS), "thresholds": by_band},
                      "threshold_scores": {str(t): [round(v, 4) for v in scores[t]] for t in CUT_THRESHOLDS},
                      "fitted_on": {"network": [*network_seeds, int(len(np.concatenate(y)))],
                                    "threshold": list(threshold_seeds), "blocks": [n_blocks, n_blocks]}}
    PATH.write_text(json.dumps(config) + "\n")
    load_match_model.cache_clear()
    print(json.dumps(config["cuts"]["threshold_scores"]), threshold, by_band)
    return fit_calibration()


def _threshold_choice(grid, seeds, edges_of, thresholds, apply, families=(False,)):
    """Per σ band, the all-class accuracy of each threshold of ``grid`` (the features right of every seed of
    ``seeds`` together, in the block ``families``: False the ordinary blocks, True the doubtful ones), the links
    made by ``apply(data, edges, threshold)`` on ``edges_of(seed, sigma)``; then the threshold for σ unknown (best
    mean over the bands) and the one of each band, ties to the lower: (scores, threshold, by_band)."""
    scores = {t: [] for t in grid}
    for sigma in SIGMAS:
        hits = {t: [0, 0] for t in grid}
        for seed in seeds:
            data, edges = edges_of(seed, sigma)
            for t in grid:
                apply(data, edges, t)
                result = decide(len(data[0].input), len(data[0].reference), edges, thresholds)
                for doubtful in families:
                    rows = class_rows(result, data[0], doubtful)
                    hits[t][0] += rows["all"][0]
                    hits[t][1] += rows["all"][1]
            link(data, edges, thresholds, None)
        for t in grid:
            scores[t].append(hits[t][0] / hits[t][1])
        print("thresholds", sigma, {t: round(scores[t][-1], 4) for t in grid}, flush=True)
    threshold = max(grid, key=lambda t: (round(float(np.mean(scores[t])), 4), -t))
    by_band = [max(grid, key=lambda t: (round(scores[t][k], 4), -t)) for k in range(len(SIGMAS))]
    return scores, threshold, by_band


def fit_calibration(blocks=TABLE_BLOCKS, doubtful_blocks=TABLE_BLOCKS):
    """Fit the ``m_p`` network and every calibration table of the shipped ``model/match_model.json`` on
    the validation seeds the group test names for its tables (``groups.fitted_on.tables``, fresh: no other
    part of the model was fitted on them), each with ``blocks`` ordinary and ``doubtful_blocks`` doubtful
    blocks per σ (:func:`..datasets.source_edits._doubtful_block`: decisions over the whole probability
    range). The decisions themselves do not change (the tables only map the written probabilities).

    Three passes, the shipped file rewritten after each (``decide`` reads it): with no network and no
    tables, the assigned pairs' inputs of the network and their truth (the network: the project's tanh
    :class:`..match_model.Network`, 8 hidden units); with the network, the tables of ``m_p`` (on its
    output), of the unmatched and of the grouped change probabilities; with those, the 1:1 change table (it
    reads the calibrated ``m_p`` times the change model's probability of its label). The tables are step
    tables (:func:`step_isotonic`) of :data:`STEP_DECISIONS_PER_SEED` decisions per table seed a step at
    least."""
    from ..match_model import MatchModel, assigned_features, load_match_model
    from ..matching import edge_probability
    from ..scoring import load_model

    load_match_model.cache_clear()
    config = json.loads(PATH.read_text())
    seeds = table_seeds(config)
    thresholds = MatchThresholds(p_edge=config["p_edge"])
    model = load_model()
    config["tables"] = {}
    config.pop("assigned_model", None)
    PATH.write_text(json.dumps(config) + "\n")
    load_match_model.cache_clear()
    match_model = MatchModel(config)
    cache = {}
    for seed in seeds:
        for sigma in SIGMAS:
            data = prepared(seed, sigma, blocks, doubtful_blocks)
            edges = candidate_edges(model, *data[1:], thresholds=thresholds)
            cache[(seed, sigma)] = (data, edges)
            print("prepared", seed, sigma, flush=True)
    x, y = [], []
    for (seed, sigma), (data, edges) in cache.items():
        result, _, _ = run(data, edges, thresholds, match_model, groups=config["groups"])
        a, rows = assigned_rows(edges, result, len(data[0].reference))
        x.append(assigned_features(edge_probability(edges)[rows], edges.p_same[rows], edges.p_part[rows],
                                   edges.iou_mean[rows], data[3][a]))
        y.append(data[0].group_a[a] == data[0].group_b[result.partner_a[a]])
    network = Network.fit(np.concatenate(x), np.concatenate(y), hidden=8)
    config["assigned_model"] = network.as_dict()
    for names in (("assigned", "unmatched", "grouped"), ("one_to_one",)):
        PATH.write_text(json.dumps(config) + "\n")
        load_match_model.cache_clear()
        match_model = MatchModel(config)
        per_sigma = {}
        for sigma in SIGMAS:
            per_sigma[sigma] = {name: ([], []) for name in ("assigned", "unmatched", "grouped", "one_to_one")}
            for seed in seeds:
                data, edges = cache[(seed, sigma)]
                result, one, _ = run(data, edges, thresholds, match_model, groups=config["groups"])
                _collect(per_sigma[sigma], result, data[0], one)
        config["tables"].update({name: table for name, table in
                                 _tables(per_sigma, STEP_DECISIONS_PER_SEED * len(seeds)).items() if name in names})
    config["groups"]["fitted_on"]["table_blocks"] = [blocks, doubtful_blocks]
    config["groups"]["fitted_on"]["table_step_decisions"] = STEP_DECISIONS_PER_SEED * len(seeds)
    PATH.write_text(json.dumps(config) + "\n")
    load_match_model.cache_clear()
    return config


def table_seeds(config):
    """The validation seeds the calibration tables are fitted on (``groups.fitted_on.tables`` of the match
    model's configuration); ValueError where they include the held-out seed."""
    seeds = tuple(int(seed) for seed in config["groups"]["fitted_on"]["tables"])
    if HELDOUT_SEED in seeds:
        raise ValueError(f"the calibration tables would be fitted on the held-out seed {HELDOUT_SEED}")
    return seeds


def assigned_rows(edges, result, n_b):
    """Input positions with an assigned partner, and the row of that pair in ``edges``."""
    a = np.flatnonzero(result.partner_a >= 0)
    key = edges.index_a.astype(np.int64) * n_b + edges.index_b
    order = np.argsort(key, kind="stable")
    return a, order[np.searchsorted(key[order], a.astype(np.int64) * n_b + result.partner_a[a])]


STEP_DECISIONS_PER_SEED = 800  # decisions per step of a calibration table at least, per table seed


def _tables(per_sigma, min_count):
    """Step tables (:func:`step_isotonic`, steps of ``min_count`` decisions at least) of each written
    probability: one per σ band and one of all bands (``pooled``, for features of unknown σ)."""
    tables = {}
    for name in ("assigned", "unmatched", "grouped", "one_to_one"):
        raw = np.concatenate([np.concatenate(per_sigma[s][name][0]) for s in SIGMAS])
        right = np.concatenate([np.concatenate(per_sigma[s][name][1]) for s in SIGMAS])
        tables[name] = {
            "pooled": step_isotonic(raw, right, min_count), "band_sigmas": list(SIGMAS),
            "bands": [step_isotonic(np.concatenate(per_sigma[s][name][0]), np.concatenate(per_sigma[s][name][1]),
                                    min_count) for s in SIGMAS]}
    return tables


def step_isotonic(x, y, min_count):
    """A step table ({"edges", "calibrated"}, read by :func:`..match_model.monotone`) of y (0/1) on x: the
    pool-adjacent-violators blocks (decisions of equal x always in one block), then joined from the low
    end until each holds ``min_count`` decisions (a short last run joins the block before it); each step
    writes its block's observed share, its edges lie halfway between neighbouring blocks. Joining
    neighbours of a monotone sequence keeps it monotone, and on the decisions it is fitted on every step is
    exactly calibrated (a knot table interpolated between block means is not: a cluster of equal x inside
    a block gets a value between two blocks' shares).

    ``min_count`` trades resolution for variance: the decisions of one block of buildings are not
    independent (the members of a group share their probability), and a step of a few hundred of them
    moved by 0.1 from one seed to the next. Chosen on the validation seeds 2620-2623 (steps of 200, 400,
    800, 1200, 1600, 2000 decisions over the two table seeds; steps of 1600, :data:`STEP_DECISIONS_PER_SEED`
    per seed, missed ±0.05 in 1 of the 40 σ band x field cells, steps of 200 in 17, the knot tables of
    200 in 26). The price is resolution: a σ band's ``m_p`` takes a handful of values below 0.9 (Brier
    score of ``m_p`` on those seeds 0.0797, with the knot tables 0.0750; of ``m_change_p`` 0.0748 and
    0.0758), and a step that mixes clear and doubtful pairs errs low on the clear ones."""
    order = np.argsort(x, kind="stable")
    x, y = np.asarray(x, float)[order], np.asarray(y, float)[order]
    if len(x) == 0:
        return {"edges": [], "calibrated": [0.5]}
    blocks = []  # [sum y, count, first x, last x]
    for xi, yi in zip(x, y):  # one pass; blocks merge backwards while they violate monotonicity or tie in x
        blocks.append([yi, 1.0, xi, xi])
        while len(blocks) > 1 and (blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]
                                   or blocks[-2][3] == blocks[-1][2]):
            last = blocks.pop()
            blocks[-1] = [blocks[-1][0] + last[0], blocks[-1][1] + last[1], blocks[-1][2], last[3]]
    joined = [list(blocks[0])]
    for block in blocks[1:]:
        if joined[-1][1] < min_count:
            joined[-1] = [joined[-1][0] + block[0], joined[-1][1] + block[1], joined[-1][2], block[3]]
        else:
            joined.append(list(block))
    if len(joined) > 1 and joined[-1][1] < min_count:
        last = joined.pop()
        joined[-1] = [joined[-1][0] + last[0], joined[-1][1] + last[1], joined[-1][2], last[3]]
    return {"edges": [float(0.5 * (low[3] + high[2])) for low, high in zip(joined[:-1], joined[1:])],
            "calibrated": [round(b[0] / b[1], 6) for b in joined]}


def domain(edge_sets):
    """The range the pair model is used in: twice the largest feature size (square root of the area)
    fitted on, the largest log area ratio plus 1, 1.5 times the largest σ."""
    area_a = np.concatenate([e.area_a for e in edge_sets])
    area_b = np.concatenate([e.area_b for e in edge_sets])
    ratio = np.abs(np.log(np.maximum(area_a, 1e-6) / np.maximum(area_b, 1e-6)))
    return {"size_m": round(2.0 * float(np.sqrt(np.maximum(area_a, area_b).max())), 1),
            "log_area_ratio": round(float(ratio.max()) + 1.0, 2), "sigma_m": 1.5 * max(SIGMAS)}


def _collect(collected, result, edits, one):
    """Raw probabilities (before the tables) and their truth, per table."""
    assigned = np.flatnonzero(result.partner_a >= 0)
    # The raw values are recovered from the result: tables are identity while fitting (match_model has none).
    collected["assigned"][0].append(result.p_a[assigned])
    collected["assigned"][1].append(edits.group_a[assigned] == edits.group_b[result.partner_a[assigned]])
    for change_p, change, truth, group, klass in ((result.change_p_a, result.change_a, edits.change_a,
                                                   result.group_a, result.class_a),
                                                  (result.change_p_b, result.change_b, edits.change_b,
                                                   result.group_b, result.class_b)):
        for name, rows in (("unmatched", group < 0), ("grouped", (group >= 0) & (klass != "1:1")),
                           ("one_to_one", klass == "1:1")):
            rows = rows & np.isfinite(change_p)
            collected[name][0].append(change_p[rows])
            collected[name][1].append(change[rows] == truth[rows])


def report(n_blocks=REPORT_BLOCKS, sigmas=SIGMAS, baseline=None, doubtful_blocks=None):
    """The held-out report (``model/source_matching_results.md``): ``n_blocks`` ordinary blocks per σ (the
    class and change tables) and ``doubtful_blocks`` doubtful ones (default as many; their own class table,
    and their decisions join the reliability tables)."""
    doubtful_blocks = n_blocks if doubtful_blocks is None else doubtful_blocks
    from ..match_model import load_match_model
    from ..scoring import load_model

    model = load_model()
    match_model = load_match_model()
    config = match_model.config
    thresholds = MatchThresholds(p_edge=config["p_edge"])
    fitted = config.get("groups", {}).get("fitted_on")
    lines = ["# Matching two sources that really differ: held-out results", "",
             "Generated by `python -m overlap_relevance.model.evaluation.source_matching report` on the held-out "
             f"seed {HELDOUT_SEED} of `model/datasets/source_edits.py` ({n_blocks} blocks per σ; every input group "
             "shifted by σ per axis and turned by N(0, 1°), vertices redrawn with 0.3 m noise, 30 % simplified or "
             "smoothed). The pair and change models and the link threshold were fitted on validation seeds "
             f"{', '.join(map(str, config['fitted_on']['seeds']))} (`model/match_model.json`, link threshold "
             f"p_edge = {config['p_edge']})" + (
                 f"; the group test's network on seeds {', '.join(map(str, fitted['network'][:-1]))}, its threshold "
                 f"on seeds {', '.join(map(str, np.atleast_1d(fitted['threshold'])))}"
                 + (", the cut test's network on seeds "
                    f"{', '.join(map(str, config['cuts']['fitted_on']['network'][:-1]))} and its threshold on seeds "
                    f"{', '.join(map(str, config['cuts']['fitted_on']['threshold']))}" if "cuts" in config else "")
                 + ", the `m_p` network and the calibration tables on seeds "
                 f"{', '.join(map(str, fitted['tables']))}." if fitted else "."), "",
             f"Each σ also has {doubtful_blocks} **doubtful blocks** (`_doubtful_block`: twins side by side, buildings "
             "rebuilt 1-2 σ aside or kept and resized, narrow terraced houses sharing walls, small outbuildings next "
             "to a main building, partial overlaps of a replaced or an extended building), drawn from a stream of "
             "their own: the class and change tables below are of the ordinary blocks (the same features with or "
             "without the doubtful ones), the doubtful blocks have a class table of their own, and the reliability "
             "tables hold the decisions of both.", ""]
    per_sigma = {}
    without = {}
    no_cuts = {}
    doubtful = {}
    reliability_rows = {}
    ordinary_rows = {}
    for sigma in sigmas:
        started = time.perf_counter()
        data = prepared(HELDOUT_SEED, sigma, n_blocks, doubtful_blocks, heldout=True)
        edits = data[0]
        edges = candidate_edges(model, *data[1:], thresholds=thresholds)
        result, one, _ = run(data, edges, thresholds, match_model)
        per_sigma[sigma] = (class_rows(result, edits), change_rows(result, edits), time.perf_counter() - started)
        doubtful[sigma] = (class_rows(result, edits, True), change_rows(result, edits, True))
        link(data, edges, thresholds, config.get("groups"))
        no_cuts[sigma] = class_rows(decide(len(edits.input), len(edits.reference), edges, thresholds), edits)
        link(data, edges, thresholds, None)
        without[sigma] = class_rows(decide(len(edits.input), len(edits.reference), edges, thresholds), edits)
        assigned = np.flatnonzero(result.partner_a >= 0)
        m_p = (result.p_a[assigned], edits.group_a[assigned] == edits.group_b[result.partner_a[assigned]])
        change_p = np.concatenate([result.change_p_a, result.change_p_b])
        change_ok = np.concatenate([result.change_a == edits.change_a, result.change_b == edits.change_b])
        finite = np.isfinite(change_p)
        reliability_rows[sigma] = (m_p, (change_p[finite], change_ok[finite]))
        ordinary = np.concatenate(_family(edits, False))
        ordinary_rows[sigma] = ((m_p[0][~edits.doubtful_a[assigned]], m_p[1][~edits.doubtful_a[assigned]]),
                                (change_p[finite & ordinary], change_ok[finite & ordinary]))
        print(sigma, per_sigma[sigma][0]["all"], flush=True)
    lines += ["## Group structure and class per truth class (feature right when its predicted group holds exactly "
              "its truth group's members and the class is right)", "",
              "| σ (m) | " + " | ".join(CLASSES) + " | all | m:n groups found | target |",
              "|---|" + "---|" * (len(CLASSES) + 3)]
    for sigma, (rows, _, _) in per_sigma.items():
        target = "≥ 0.97 all, ≥ 0.9 per class" if sigma <= 2 else ("≥ 0.93 all" if sigma <= 3 else "none set")
        lines.append(f"| {sigma} | " + " | ".join(_cell(*rows[name]) for name in CLASSES) + f" | {_cell(*rows['all'])} "
                     f"| {_cell(*rows['m:n groups found'])} | {target} |")
    groups, cuts = config.get("groups", {}), config.get("cuts", {})
    for table, text in (
            (no_cuts, "The same held-out edits with the group test but without the cut test (the cut test: "
                      f"`model/group_test.py`, `cut_links`, threshold {_thresholds_text(cuts)}, network fitted on "
                      f"seeds {', '.join(map(str, cuts.get('fitted_on', {}).get('network', [])[:-1]))}):"),
            (without, "The same held-out edits without the group test and the cut test (the pair model's links "
                      f"alone; the group test: `model/group_test.py`, threshold {_thresholds_text(groups)}, network "
                      f"fitted on seeds {', '.join(map(str, groups.get('fitted_on', {}).get('network', [])[:-1]))}):")):
        if table is no_cuts and not cuts:
            continue
        lines += ["", text, "", "| σ (m) | " + " | ".join(CLASSES) + " | all | m:n groups found |",
                  "|---|" + "---|" * (len(CLASSES) + 2)]
        for sigma, rows in table.items():
            lines.append(f"| {sigma} | " + " | ".join(_cell(*rows[name]) for name in CLASSES)
                         + f" | {_cell(*rows['all'])} | {_cell(*rows['m:n groups found'])} |")
    lines += ["", f"The doubtful blocks ({doubtful_blocks} per σ; targets are set on the ordinary blocks):", "",
              "| σ (m) | " + " | ".join(CLASSES) + " | all | changes right |",
              "|---|" + "---|" * (len(CLASSES) + 2)]
    for sigma, (rows, changes) in doubtful.items():
        total = (sum(v[0] for v in changes.values()), sum(v[1] for v in changes.values()))
        lines.append(f"| {sigma} | " + " | ".join(_cell(*rows[name]) for name in CLASSES)
                     + f" | {_cell(*rows['all'])} | {_cell(*total)} |")
    if baseline:
        lines += ["", "The same held-out edits with the fixed thresholds of before (raw P(IoU ≥ 0.5) or "
                  "P(cover ≥ 0.5) "
                  "≥ 0.2, expected-IoU assignment, offset rule):", "",
                  "| σ (m) | " + " | ".join(CLASSES) + " | all | changes right |",
                  "|---|" + "---|" * (len(CLASSES) + 2)]
        for sigma, rows in baseline.items():
            lines.append(f"| {sigma} | " + " | ".join(_cell(*rows[name]) for name in CLASSES)
                         + f" | {_cell(*rows['all'])} | {_cell(*rows['change'])} |")
    lines += ["", "## Change labels (share of each truth change predicted)", "",
              "| σ (m) | " + " | ".join(CHANGES) + " | all |", "|---|" + "---|" * (len(CHANGES) + 1)]
    for sigma, (_, rows, _) in per_sigma.items():
        total = (sum(v[0] for v in rows.values()), sum(v[1] for v in rows.values()))
        lines.append(f"| {sigma} | " + " | ".join(_cell(*rows[name]) for name in CHANGES) + f" | {_cell(*total)} |")
    lines += ["", "## Reliability per σ band (10 bins; target |mean p − observed| ≤ 0.05 where a bin has ≥ 100)",
              ""]
    bands = (("σ ≤ 0.5 m", [s for s in sigmas if s <= 0.5]), ("σ = 1 m", [s for s in sigmas if s == 1.0]),
             ("σ = 2 m", [s for s in sigmas if s == 2.0]), ("σ = 3 m", [s for s in sigmas if s == 3.0]),
             ("σ = 5 m", [s for s in sigmas if s == 5.0]))
    summary = []
    ordinary_summary = {}
    for label, members in bands:
        for which in (0, 1):
            if not members:
                continue
            p = np.concatenate([ordinary_rows[s][which][0] for s in members])
            t = np.concatenate([ordinary_rows[s][which][1] for s in members]).astype(float)
            gaps = [abs(mean_p - observed) for _, _, n, mean_p, observed in reliability(p, t) if n >= 100]
            ordinary_summary[(label, which)] = (len(gaps), max(gaps, default=0.0))
    for label, members in bands:
        if not members:
            continue
        for which, title in ((0, "m_p (is the one-to-one assignment right?)"),
                             (1, "m_change_p (is the change label right?)")):
            p = np.concatenate([reliability_rows[s][which][0] for s in members])
            t = np.concatenate([reliability_rows[s][which][1] for s in members]).astype(float)
            lines += [f"### {title}, {label} ({len(p)} decisions)", "",
                      "| bin | decisions | mean p | observed | within ±0.05 |",
                      "|---|---|---|---|---|"]
            worst, full = 0.0, 0
            for low, high, n, mean_p, observed in reliability(p, t):
                verdict = "n < 100" if n < 100 else ("yes" if abs(mean_p - observed) <= 0.05 else "NO")
                if n >= 100:
                    worst = max(worst, abs(mean_p - observed))
                    full += 1
                lines.append(f"| {low:.1f}–{high:.1f} | {n} | {mean_p:.3f} | {observed:.3f} | {verdict} |")
            summary.append((label, title.split(" ")[0], full, worst, *ordinary_summary[(label, which)]))
            lines += ["", f"Equal-count view (10 bins of {len(p) // 10} or {len(p) // 10 + 1} decisions each):", "",
                      "| bin | p from | p to | mean p | observed | gap |", "|---|---|---|---|---|---|"]
            for k, (low, high, mean_p, observed) in enumerate(equal_count_bins(p, t)):
                lines.append(f"| {k + 1} | {low:.3f} | {high:.3f} | {mean_p:.3f} | {observed:.3f} "
                             f"| {abs(mean_p - observed):.3f} |")
            lines.append("")
    lines += ["### Summary: largest calibration gap over bins with ≥ 100 decisions", "",
              "| σ band | field | bins with ≥ 100 | largest gap | within ±0.05 | ordinary blocks only: bins ≥ 100 "
              "| largest gap |", "|---|---|---|---|---|---|---|"]
    for label, field, full, worst, ordinary_full, ordinary_worst in summary:
        lines.append(f"| {label} | {field} | {full} | {worst:.3f} | {'yes' if worst <= 0.05 else 'NO'} "
                     f"| {ordinary_full} | {ordinary_worst:.3f} |")
    lines += ["", "Seconds per σ (generate, score, decide, change test; 2 shared cores): "
              + ", ".join(f"{s} m {v[2]:.1f}" for s, v in per_sigma.items()), ""]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


def _thresholds_text(groups):
    bands = groups.get("threshold_bands")
    if not bands:
        return str(groups.get("threshold"))
    return (", ".join(f"{t} at {s:g} m" for s, t in zip(bands["band_sigmas"], bands["thresholds"]))
            + f" (σ unknown: {groups.get('threshold')})")


def equal_count_bins(p, truth, bins=10):
    """(low, high, mean p, observed) of ``bins`` bins holding equal numbers of decisions (sorted by p)."""
    order = np.argsort(p, kind="stable")
    return [(float(p[rows].min()), float(p[rows].max()), float(p[rows].mean()), float(truth[rows].mean()))
            for rows in np.array_split(order, bins) if len(rows)]


def _cell(hit, n):
    return f"{hit / n:.3f} ({hit}/{n})" if n else "–"


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "report"
    if command == "fit":
        fit()
    elif command == "fit-groups":
        fit_groups()
    elif command == "fit-cuts":
        fit_cuts()
    elif command == "fit-calibration":
        fit_calibration()
    else:
        base = json.loads(Path(sys.argv[2]).read_text()) if len(sys.argv) > 2 else None
        report(baseline={float(k): v for k, v in base.items()} if base else None)
