"""The overlap heads compared on the validation pairs (seed 2), never the held-out seed (issue 29).

Usage (NumPy side; the training arrays come from ``make train``'s cache under build/training-data)::

    .venv/bin/python research/overlap_head_validation.py VALIDATION.npz MODEL.npz [MODEL.npz ...]

For the pairs at σ > 0 it scores each model file against the pair's 17 displaced labels (the generator's
one and 16 more; GEOS overlays of B moved by d ~ N(0, σ²I)): the CRPS of the IoU against every label
(proper; the 2-D head's from 1,024 quasi-random points of its mixture, the u-head's from its CDF on a
1,025-point grid, :meth:`UnitMixture.crps_iou`), the MAE of the mean IoU and of P(IoU ≥ 0.5) against the labels' own mean and share (the same
label noise for every model), the share of labels inside the central 90 % interval (within :data:`TIE` of
its ends), and for the u-head its mixed NLL of u and the share of labels' u inside its central 90 % interval
of u (the same interval, without the float32 mismatch :data:`TIE` allows for). A closed interval that ends on an
atom covers more than 90 % even when the forecast is calibrated, so it also gives the randomised-PIT coverage
(share of PIT values in [0.05, 0.95]; 0.9 when calibrated, atoms included): the 2-D head's from its 1,024
points, the u-head's from its exact CDF of u, uniform over an atom's jump. Pairs whose gap exceeds 6σ are given zero overlap, as the product does.

It also scores the centroid head (the same 2-D mixture in every model) on all validation pairs with a
centroid (σ = 0 and σ > 0 apart, as the product reads it at σ = 0): its mean NLL in nats, in the units the
training loss uses, the share of targets inside the mixture's 90 % highest-density region (the region
found from 512 draws of the mixture per pair, seed 20261206), and the median and 90th percentile of the
distance from the mixture's mean to the target (units of the pair scale).
"""

import json
import sys

import numpy as np

from overlap_relevance.model.encoding import DESCRIPTOR_NAMES
from overlap_relevance.model.network import MixtureNetwork, load_model_file
from overlap_relevance.model.evaluation.metrics import pit_coverage, randomised_pit
from overlap_relevance.model.overlap_head import (U_ATOM_TOLERANCE, UnitMixture, area_scales, baseline_logit,
                                                  crps_of_samples, mixed_nll, unit_of_covers)
from overlap_relevance.model.scoring import iou_from_covers, summarise_overlap, zero_where
from overlap_relevance.model.mixture import mixture_from_raw

EPS = 1e-4  # encoding._EPS: log_area_a = log(|A| / L² + EPS)
#: Labels this close to an end of the interval count as inside. The labels are float32 covers, and the u-head's
#: IoU at its atom u = 1 is r = min/max area from the float32 area descriptors: on the validation pairs the two
#: differ by up to 1.1e-5, so at 1e-12 nearly every label at u = 1 (14 % of them) fell outside an interval
#: that ends on that atom (coverage 0.81 instead of 0.94). The 2-D head has no atom; its coverage barely moves.
TIE = 2e-5
PIT_SEED = 20261206


def column(x, name):
    return x[:, DESCRIPTOR_NAMES.index(name)].astype(np.float64)


def evaluate(arrays, path, rows):
    config, weights = load_model_file(path)
    network = MixtureNetwork(config, weights)
    x = arrays["x"][rows]
    covers = arrays["overlap"][rows].astype(np.float64)  # (n, m, 2)
    truth = iou_from_covers(covers[..., 0], covers[..., 1])  # (n, m)
    far = column(x, "gap_sigma") * 10.0 > 6.0
    raw = network.raw(x)
    k = network.overlap_components
    levels = np.array([0.05, 0.95])
    if network.overlap_head_kind == "unit_atoms":
        area_a = np.maximum(np.exp(column(x, "log_area_a")) - EPS, 0.0)
        area_b = np.maximum(np.exp(column(x, "log_area_b")) - EPS, 0.0)
        scale_a, scale_b = area_scales(area_a, area_b)
        ia, ib = network.residual_index
        mixture = UnitMixture.from_raw(raw.overlap, k, baseline_logit(x[:, ia].astype(float), x[:, ib].astype(float)),
                                       scale_a, scale_b)
        mixture = mixture.where(far, UnitMixture.point(np.zeros(len(x)), scale_a, scale_b, k))
        summary = summarise_overlap(mixture)
        crps = mixture.crps_iou(truth)
        interval = mixture.iou_quantile(levels)
        u = unit_of_covers(covers[..., 0], covers[..., 1])
        u_interval = mixture.quantile(levels)
        # Randomised PIT of u (exact CDF; at an atom, uniform over its jump), judged in u so no float32 slack.
        zero, one = u <= U_ATOM_TOLERANCE, u >= 1.0 - U_ATOM_TOLERANCE
        v = np.random.default_rng(PIT_SEED).uniform(size=u.shape)
        pit = np.where(zero, v * mixture.p0[:, None], np.where(
            one, 1.0 - mixture.p1[:, None] * (1.0 - v), mixture.cdf(np.clip(u, U_ATOM_TOLERANCE, 1 - U_ATOM_TOLERANCE))))
        extra = {"mixed_nll_u": float(np.mean(mixed_nll(u, mixture))),
                 "coverage_90_u": float(np.mean((u >= u_interval[:, :1]) & (u <= u_interval[:, 1:])))}
    else:
        mixture = zero_where(mixture_from_raw(raw.overlap, k, 2), far)
        summary = summarise_overlap(mixture)
        points = mixture.quasi_samples(1024, 20261122)
        samples = iou_from_covers(points[..., 0], points[..., 1]).T  # (n, 1024)
        crps = crps_of_samples(samples, truth)
        interval = np.quantile(samples, levels, axis=1).T
        pit = randomised_pit(samples, truth, np.random.default_rng(PIT_SEED))
        extra = {}
    inside = (truth >= interval[:, :1] - TIE) & (truth <= interval[:, 1:] + TIE)
    return {
        "model": str(path), "head": network.overlap_head_kind, "pairs": int(len(x)),
        "crps_iou": float(np.mean(crps)),
        "mae_mean_iou": float(np.mean(np.abs(summary.iou_mean - truth.mean(axis=1)))),
        "mae_p_iou_0.5": float(np.mean(np.abs(summary.p_iou - (truth >= 0.5).mean(axis=1)))),
        "coverage_90": float(np.mean(inside)),
        "pit_coverage_90": float(np.mean(pit_coverage(pit))),
        **extra,
    }


def evaluate_centroid(arrays, path, rows):
    """Mean centroid NLL (nats) and 90 % highest-density-region coverage of the targets on ``rows``."""
    config, weights = load_model_file(path)
    network = MixtureNetwork(config, weights)
    mixture = mixture_from_raw(network.raw(arrays["x"][rows]).centroid, network.centroid_components, 2)
    target = arrays["centroid"][rows].astype(np.float64)
    log_density = mixture.log_prob(target)
    draws = mixture.sample(512, np.random.default_rng(20261206))  # (512, n, 2)
    threshold = np.quantile(mixture.log_prob(draws), 0.10, axis=0)  # the 90 % HDR's density level per pair
    error = np.hypot(*(mixture.mean() - target).T)  # the mixture mean's distance from the target, pair scales
    return {"nll": float(-np.mean(log_density)), "hdr90_coverage": float(np.mean(log_density >= threshold)),
            "mean_error_median": float(np.median(error)), "mean_error_p90": float(np.quantile(error, 0.9)),
            "pairs": int(len(rows))}


def main(argv):
    with np.load(argv[0]) as data:
        arrays = {key: data[key] for key in ("x", "overlap", "sigma", "centroid", "centroid_mask")}
    rows = np.flatnonzero(arrays["sigma"] > 0)
    with_centroid = arrays["centroid_mask"] > 0
    for path in argv[1:]:
        result = evaluate(arrays, path, rows)
        for name, chosen in (("sigma0", arrays["sigma"] == 0), ("sigma_pos", arrays["sigma"] > 0)):
            result[f"centroid_{name}"] = evaluate_centroid(arrays, path, np.flatnonzero(with_centroid & chosen))
        print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
