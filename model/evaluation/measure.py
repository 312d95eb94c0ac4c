"""Held-out evaluation of the overlap model: ``python -m overlap_relevance.model.evaluation``.

Writes ``model/MODEL_CARD.md`` and the machine-readable ``model/evaluation.json``
(``make evaluate``). Plain NumPy / shapely / pyproj / GDAL: no QGIS import. The optional
seed-convergence runs (``--seeds``) train with TensorFlow in a Python process of
their own (:mod:`..training.seed_runs`).

What is measured (every random choice is seeded; nothing here is tuned on it):

* **Held-out synthetic pairs** (:func:`..datasets.synthetic.generate_pairs` with seed
  :data:`HELD_OUT_SEED` = 3; training uses 1 and validation 2), at least
  20,000 pairs: for σ = 0 the MAE of the predicted mean IoU and of the two mean
  coverage fractions against the exact labels, and the intersection-centroid
  error relative to the pair scale; for σ > 0 the NLL of the overlap mixture
  at the (one-displacement) labels.
* **Monte-Carlo truth** for a seeded subset of σ > 0 pairs
  (:func:`..overlap.monte_carlo_overlap`, 512 displacements per pair): the
  coverage of the model's central 90 % IoU interval, the randomised-PIT
  coverage, the CRPS of the model's IoU distribution next to the "oracle" CRPS
  of the Monte-Carlo distribution itself (split-half estimate), and the NLL
  averaged over the Monte-Carlo samples.
* **Best match** on a held-out matching set (:func:`.heldout.matching_set`): groups of
  candidates around one input feature, the share of groups whose predicted
  best candidate (highest mean IoU) is the exact best.
* **Real layers the recipe never saw**: QGIS's ``world_map.gpkg``
  (``states_provinces`` × ``countries``) and the bundled building sample, through
  the plugin's own path (:func:`..frame.layer_to_lonlat`,
  :func:`..pairs.iter_pair_chunks`, :meth:`..scoring.OverlapModel.predict_frames`).
* **Convergence** over 5 training seeds (short runs with :func:`..training.train.fit`).
* Throughput of ``predict_frames`` and error tables by pair kind, σ bucket and
  vertex count.
* **Yardstick** (:mod:`.yardstick`): the model against exact randomised-QMC and Monte-Carlo
  sampling and the exact-kernel QMC (with and without the exact mean as a control) at equal cost
  (``--yardstick-pairs``, 0 to skip).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import shapely

from ..frame import layer_to_lonlat
from ..overlap import exact_overlap
from ..overlap_head import UnitMixture, unit_of_covers
from ..scoring import OverlapModel, summarise_overlap
from .card import display_path, target_text
from ..gdal_layer import read_layer
from .heldout import (
    ADMIN_SEARCH_M,
    BUILDING_SEARCH_M,
    CACHE,
    CANDIDATE_ROLES,
    HELD_OUT_SEED,
    PACKAGE_ROOT,
    SAMPLE_DIR,
    WORLD_MAP,
    held_out_pairs,
    matching_set,
    monte_carlo_truth,
    progress_bar,
    random_stream,
)
from .metrics import (
    INTERVAL_LEVEL,
    TARGETS,
    TIE_TOLERANCE,
    VERTEX_EDGES,
    best_match_agreement,
    bucket_codes,
    bucket_labels,
    crps_from_samples,
    grouped_means,
    interval_coverage,
    mean_absolute_error,
    model_iou_samples,
    oracle_crps,
    pit_coverage,
    randomised_pit,
    relative_centroid_error,
    sigma_bucket_codes,
    sigma_bucket_labels,
    target_status,
)
from .yardstick import DEFAULTS as YARDSTICK_DEFAULTS
from .yardstick import run_yardstick

#: Seeds of the convergence runs.
CONVERGENCE_SEEDS = (11, 12, 13, 14, 15)

# The convergence runs use the production recipe (model/training/train.py DEFAULTS: 240,000 pairs, 20,000
# validation pairs, 80 epochs), on the training data `make train` cached: about 3 min per seed here.
DEFAULTS = {"pairs": 20_000, "mc_pairs": 2_000, "mc_samples": 512, "model_samples": 1024, "groups": 3_000,
            "seeds": 5, "seed_pairs": 240_000, "seed_validation_pairs": 20_000, "seed_epochs": 80,
            "workers": min(2, os.cpu_count() or 1), "yardstick_pairs": YARDSTICK_DEFAULTS["pairs"]}


# ==========================================================================
# Evaluation steps.
# ==========================================================================
def predict(model, a, b, sigma):
    """Model outputs for aligned pairs in their frames, with timings: dict of arrays and mixtures."""
    started = time.perf_counter()
    overlap, centroid = model.predict_frames(a, b, sigma)
    predict_seconds = time.perf_counter() - started
    started = time.perf_counter()
    summary = summarise_overlap(overlap)
    summary_seconds = time.perf_counter() - started
    return {"overlap": overlap, "centroid": centroid, "iou_mean": summary.iou_mean, "iou_sd": summary.iou_sd,
            "cover_a_mean": summary.cover_a_mean, "cover_b_mean": summary.cover_b_mean,
            "predict_seconds": predict_seconds, "summary_seconds": summary_seconds}



def evaluate_sigma0(pairs, out, sigma0):
    """MAE of mean IoU and coverages at σ = 0."""
    return {
        "n": int(sigma0.sum()),
        "iou_mae": mean_absolute_error(out["iou_mean"][sigma0], pairs.iou[sigma0]),
        "cover_a_mae": mean_absolute_error(out["cover_a_mean"][sigma0], pairs.cover_a[sigma0]),
        "cover_b_mae": mean_absolute_error(out["cover_b_mean"][sigma0], pairs.cover_b[sigma0]),
        "iou_max_error": float(np.max(np.abs(out["iou_mean"][sigma0] - pairs.iou[sigma0]), initial=0.0)),
    }


def overlap_nll(overlap, pairs):
    """(n,) negative log-likelihood of the overlap distribution at the labels: the density over (cover_a, cover_b)
    for the 2-D head, the mixed likelihood of u = max(cover_a, cover_b) (atoms at 0 and 1) for the u-head."""
    return labels_nll(overlap, pairs.cover_a[:, None], pairs.cover_b[:, None])[:, 0]


def labels_nll(overlap, cover_a, cover_b):
    """(n, m) negative log-likelihood of m labels per pair, (n, m) covers each, under the (n,) overlap mixtures;
    the u-head's is the mixed one of u, which is in other units than the 2-D head's density of the covers."""
    if isinstance(overlap, UnitMixture):
        return -overlap.log_prob_unit(unit_of_covers(cover_a, cover_b))
    return -overlap.log_prob(np.stack([cover_a.T, cover_b.T], axis=-1)).T


def centroid_errors(pairs, centroid):
    """Relative centroid errors (mean and mode of the centroid mixture) where the label exists, and the mask."""
    has = np.all(np.isfinite(pairs.centroid), axis=1)
    mean_error = np.full(len(pairs), np.nan)
    mode_error = np.full(len(pairs), np.nan)
    if has.any():
        rows = np.flatnonzero(has)
        a, b = pairs.a[rows], pairs.b[rows]
        mean_error[rows] = relative_centroid_error(centroid[rows].mean(), pairs.centroid[rows], a, b)
        mode_error[rows] = relative_centroid_error(centroid[rows].mode(), pairs.centroid[rows], a, b)
    return mean_error, mode_error, has


def evaluate_uncertainty(pairs, out, rows, mc, model_samples, seed=HELD_OUT_SEED):
    """Calibration of the IoU distribution against Monte-Carlo truth on ``rows`` (σ > 0). Per-pair arrays + means."""
    overlap = out["overlap"][rows]
    forecast = model_iou_samples(overlap, model_samples)
    truth = mc["iou"]
    coverage = interval_coverage(forecast, truth)
    pit = randomised_pit(forecast, truth, random_stream(seed, "pit"))
    pit_cover = pit_coverage(pit)
    crps_model = crps_from_samples(forecast, truth)
    crps_oracle = oracle_crps(truth)
    iou0 = exact_overlap(pairs.a[rows], pairs.b[rows], assume_valid=True).iou
    crps_static = np.mean(np.abs(truth - iou0[:, None]), axis=1)  # a point forecast ignoring σ
    nll_mc = labels_nll(overlap, mc["cover_a"], mc["cover_b"]).mean(axis=1)
    degenerate = np.ptp(truth, axis=1) <= 1e-9
    per_pair = {"coverage": coverage, "pit_coverage": pit_cover, "crps_model": crps_model,
                "crps_oracle": crps_oracle, "crps_static": crps_static, "nll_mc": nll_mc,
                "iou_mean_error": np.abs(out["iou_mean"][rows] - truth.mean(axis=1)),
                "degenerate": degenerate}
    varied = ~degenerate
    summary = {
        "n": len(rows), "mc_samples": int(truth.shape[1]), "model_samples": int(model_samples),
        "n_nondegenerate": int(varied.sum()),
        "interval_coverage": float(coverage.mean()),
        "interval_coverage_nondegenerate": float(coverage[varied].mean()) if varied.any() else None,
        "pit_coverage": float(pit_cover.mean()),
        "pit_coverage_nondegenerate": float(pit_cover[varied].mean()) if varied.any() else None,
        "pit_histogram": np.histogram(pit.ravel(), bins=10, range=(0.0, 1.0))[0].tolist(),
        "crps_model": float(crps_model.mean()), "crps_oracle": float(crps_oracle.mean()),
        "crps_static": float(crps_static.mean()),
        "nll_mc": float(nll_mc.mean()),
        "iou_mae_vs_mc_mean": float(per_pair["iou_mean_error"].mean()),
    }
    return summary, per_pair


def evaluate_matching(model, pool, n_groups, seed=HELD_OUT_SEED):
    """Best-match agreement on the synthetic matching set (σ = 0)."""
    groups = matching_set(pool, n_groups, seed)
    out = predict(model, groups.a, groups.b, 0.0)
    exact = exact_overlap(groups.a, groups.b).iou
    result = best_match_agreement(groups.group, exact, out["iou_mean"])
    exact_best_role = groups.role[result.pop("_exact_best")]
    predicted_best_role = groups.role[result.pop("_predicted_best")]
    result.pop("_used_groups")
    result["candidates_per_group"] = len(CANDIDATE_ROLES)
    result["exact_best_roles"] = {name: int(np.sum(exact_best_role == code))
                                  for code, name in enumerate(CANDIDATE_ROLES)}
    result["mismatch_predicted_roles"] = {
        name: int(np.sum((predicted_best_role == code) & (predicted_best_role != exact_best_role)))
        for code, name in enumerate(CANDIDATE_ROLES)}
    result["iou_mae"] = mean_absolute_error(out["iou_mean"], exact)
    return result


def evaluate_real_layers(model, input_spec, reference_spec, search_distance_m, label, progress=True):
    """Best-match agreement with exact on two real layers, through the plugin's own pair path.

    ``*_spec``: (path, layer name, name field or None). Returns the summary dict.
    """
    from ..pairs import iter_pair_chunks

    started = time.perf_counter()
    geoms_a, crs_a, names_a = read_layer(*input_spec)
    geoms_b, crs_b, names_b = read_layer(*reference_spec)
    lonlat_a, lonlat_b = layer_to_lonlat(geoms_a, crs_a), layer_to_lonlat(geoms_b, crs_b)
    index_a, index_b, exact, predicted = [], [], [], []
    bar = progress_bar(desc=f"{label}: candidate chunks", disable=not progress)
    for chunk in iter_pair_chunks(lonlat_a, lonlat_b, search_distance_m):
        out = predict(model, chunk.frames.a, chunk.frames.b, 0.0)
        exact.append(exact_overlap(chunk.frames.a, chunk.frames.b, assume_valid=True).iou)
        predicted.append(out["iou_mean"])
        index_a.append(chunk.index_a)
        index_b.append(chunk.index_b)
        bar.update(1)
    bar.close()
    index_a, index_b = np.concatenate(index_a), np.concatenate(index_b)
    exact, predicted = np.concatenate(exact), np.concatenate(predicted)
    result = best_match_agreement(index_a, exact, predicted)
    result.pop("_used_groups")
    exact_best, predicted_best = result.pop("_exact_best"), result.pop("_predicted_best")
    wrong = np.flatnonzero(exact_best != predicted_best)
    result.update({
        "label": label, "input": f"{Path(input_spec[0]).name}:{input_spec[1]} ({crs_a})",
        "reference": f"{Path(reference_spec[0]).name}:{reference_spec[1]} ({crs_b})",
        "inputs": len(geoms_a), "references": len(geoms_b), "candidate_pairs": len(exact),
        "inputs_without_candidates": int(len(geoms_a) - result["groups"]),
        "search_distance_m": search_distance_m, "iou_mae": mean_absolute_error(predicted, exact),
        "seconds": round(time.perf_counter() - started, 1),
        "examples_of_mismatch": [
            {"input": _name(names_a, index_a[exact_best[i]]),
             "exact_best": _name(names_b, index_b[exact_best[i]]),
             "exact_best_iou": float(exact[exact_best[i]]),
             "exact_best_predicted_iou": float(predicted[exact_best[i]]),
             "predicted_best": _name(names_b, index_b[predicted_best[i]]),
             "predicted_best_iou": float(predicted[predicted_best[i]]),
             "predicted_best_exact_iou": float(exact[predicted_best[i]])}
            for i in wrong[:10]],
    })
    return result


def _name(names, index):
    return str(names[index]) if names is not None else f"feature {int(index)}"


def convergence_across_seeds(config, n_seeds, n_pairs, n_validation, epochs, progress=True, python=None):
    """Final validation NLL of ``n_seeds`` short trainings (seeds 11, 12, ...) of the evaluated architecture.

    They train with TensorFlow, so they run in ``python`` (default :func:`training_python`), a
    process of their own (:mod:`..training.seed_runs`); their summary is computed here.
    """
    request = {"config": config, "seeds": list(range(CONVERGENCE_SEEDS[0], CONVERGENCE_SEEDS[0] + n_seeds)),
               "n_pairs": n_pairs, "n_validation": n_validation, "epochs": epochs, "progress": progress}
    done = subprocess.run([python or training_python(), "-m", "overlap_relevance.model.training.seed_runs"],
                          input=json.dumps(request), stdout=subprocess.PIPE, text=True, check=True)
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    return summarise_seed_runs(reply["runs"]) | {"train": reply["train"], "validation": reply["validation"],
                                                 "epochs": epochs}


def training_python():
    """The Python with TensorFlow: $OVERLAP_RELEVANCE_PYTHON, else the project's .venv-train, else this one."""
    if os.environ.get("OVERLAP_RELEVANCE_PYTHON"):
        return os.environ["OVERLAP_RELEVANCE_PYTHON"]
    venv = PACKAGE_ROOT / ".venv-train" / "bin" / "python"
    return str(venv) if venv.is_file() else sys.executable


def summarise_seed_runs(runs):
    """Spread (max - min) / |mean| of the final validation NLLs, and NaN count, of convergence runs."""
    final = np.asarray([r["final_val_loss"] for r in runs], float)
    overlap = np.asarray([r["final_val_overlap_loss"] if r["final_val_overlap_loss"] is not None else np.nan
                          for r in runs], float)
    finite = np.isfinite(final)

    def spread(values):
        values = values[np.isfinite(values)]
        if not values.size or values.mean() == 0:
            return None
        return float((values.max() - values.min()) / abs(values.mean()))

    return {"runs": runs, "seeds": [r["seed"] for r in runs],
            "nan_runs": int(sum(r["nan"] for r in runs) + np.sum(~finite & ~np.array([r["nan"] for r in runs]))),
            "spread": spread(final), "spread_overlap": spread(overlap),
            "range": float(np.ptp(final[finite])) if finite.any() else None,
            "mean": float(final[finite].mean()) if finite.any() else None}


# ==========================================================================
# Orchestration.
# ==========================================================================
def evaluate(model_path=None, pairs=DEFAULTS["pairs"], mc_pairs=DEFAULTS["mc_pairs"],
             mc_samples=DEFAULTS["mc_samples"], model_samples=DEFAULTS["model_samples"], groups=DEFAULTS["groups"],
             seeds=DEFAULTS["seeds"], seed_pairs=DEFAULTS["seed_pairs"],
             seed_validation_pairs=DEFAULTS["seed_validation_pairs"], seed_epochs=DEFAULTS["seed_epochs"],
             real_layers=True, workers=DEFAULTS["workers"], yardstick_pairs=DEFAULTS["yardstick_pairs"], progress=True,
             cache=CACHE):
    """Run every step; returns the results dict that :func:`render_card` turns into the model card.

    yardstick_pairs : synthetic pairs of :func:`.yardstick.run_yardstick` (with its default real-layer pairs
    unless ``real_layers`` is False); 0 skips it.
    """
    from ..datasets.synthetic import KIND_NAMES, RECIPE, generator_fingerprint, recipe_hash

    started = time.perf_counter()
    # The NLL, calibration and centroid rows describe the model file's network (its overlap head, a density);
    # the product's σ > 0 overlap (scoring.SIGMA_PATH "exact") is measured by the yardstick below.
    model = OverlapModel.load(model_path, sigma_path="network")
    config = model.config
    results = {"model": _model_summary(model), "settings": {
        "held_out_seed": HELD_OUT_SEED, "pairs": pairs, "mc_pairs": mc_pairs, "mc_samples": mc_samples,
        "model_samples": model_samples, "groups": groups, "seeds": seeds, "seed_pairs": seed_pairs,
        "seed_validation_pairs": seed_validation_pairs, "seed_epochs": seed_epochs, "interval_level": INTERVAL_LEVEL,
        "tie_tolerance": TIE_TOLERANCE, "yardstick_pairs": yardstick_pairs}}
    step = time.perf_counter()
    data = held_out_pairs(pairs, HELD_OUT_SEED, workers=workers, progress=progress, cache=cache)
    results["data"] = {"recipe_hash": recipe_hash(), "recipe_version": RECIPE["version"],
                       "generator_sha256": generator_fingerprint(), "pairs": len(data),
                       "seed": HELD_OUT_SEED, "seconds": round(time.perf_counter() - step, 1),
                       "kinds": {name: int(np.sum(data.kind == code)) for code, name in enumerate(KIND_NAMES)},
                       "sigma0": int(np.sum(data.sigma == 0))}

    out = predict(model, data.a, data.b, data.sigma)
    results["timing"] = {"pairs": len(data), "predict_frames_seconds": round(out["predict_seconds"], 2),
                         "predict_frames_pairs_per_s": len(data) / max(out["predict_seconds"], 1e-9),
                         "summarise_seconds": round(out["summary_seconds"], 2),
                         "predict_and_summarise_pairs_per_s":
                             len(data) / max(out["predict_seconds"] + out["summary_seconds"], 1e-9),
                         "machine": _machine()}
    sigma0 = data.sigma == 0
    results["sigma0"] = evaluate_sigma0(data, out, sigma0)
    nll = overlap_nll(out["overlap"], data)
    positive = ~sigma0
    results["sigma_positive"] = {"n": int(positive.sum()), "nll_mean": float(nll[positive].mean()),
                                 "nll_median": float(np.median(nll[positive])),
                                 "nll_sigma0_mean": float(nll[sigma0].mean()),
                                 "nll_sigma0_median": float(np.median(nll[sigma0])),
                                 "iou_mae_vs_label": mean_absolute_error(out["iou_mean"][positive], data.iou[positive])}

    mean_error, mode_error, has_centroid = centroid_errors(data.subset(sigma0), out["centroid"][np.flatnonzero(sigma0)])
    ce_mean, ce_mode = 100 * mean_error[has_centroid], 100 * mode_error[has_centroid]
    results["centroid"] = {"n": int(has_centroid.sum()),
                           "mean_median_pct": float(np.median(ce_mean)), "mean_p90_pct": float(np.quantile(ce_mean, 0.9)),
                           "mode_median_pct": float(np.median(ce_mode)), "mode_p90_pct": float(np.quantile(ce_mode, 0.9))}

    candidates = np.flatnonzero(positive)
    rows = np.sort(random_stream(HELD_OUT_SEED, "mc_subset").choice(candidates, min(mc_pairs, candidates.size),
                                                                replace=False))
    step = time.perf_counter()
    mc = monte_carlo_truth(data, rows, mc_samples, progress=progress)
    uncertainty, per_pair = evaluate_uncertainty(data, out, rows, mc, model_samples)
    uncertainty["seconds"] = round(time.perf_counter() - step, 1)
    results["uncertainty"] = uncertainty

    step = time.perf_counter()
    results["matching"] = evaluate_matching(model, data, groups)
    results["matching"]["seconds"] = round(time.perf_counter() - step, 1)

    results["tables"] = _tables(data, out, nll, sigma0, mean_error, has_centroid, rows, per_pair)

    results["real_layers"] = {}
    if real_layers:
        specs = {
            "buildings": ((SAMPLE_DIR / "buildings_mapping.gpkg", "buildings_mapping", "map_id"),
                          (SAMPLE_DIR / "buildings_cadastre.gpkg", "buildings_cadastre", "building_id"),
                          BUILDING_SEARCH_M, "building footprints"),
            "admin": ((WORLD_MAP, "states_provinces", "name"), (WORLD_MAP, "countries", "NAME"),
                      ADMIN_SEARCH_M, "administrative units"),
        }
        for key, (input_spec, reference_spec, distance, label) in specs.items():
            if not Path(input_spec[0]).is_file() or not Path(reference_spec[0]).is_file():
                results["real_layers"][key] = {"label": label, "skipped": f"{input_spec[0]} not found"}
                continue
            results["real_layers"][key] = evaluate_real_layers(model, input_spec, reference_spec, distance, label,
                                                               progress)

    results["seeds"] = None
    if seeds:
        step = time.perf_counter()
        results["seeds"] = convergence_across_seeds(config, seeds, seed_pairs, seed_validation_pairs, seed_epochs,
                                                    progress)
        results["seeds"]["seconds"] = round(time.perf_counter() - step, 1)

    results["yardstick"] = None
    if yardstick_pairs:
        sizes = {} if real_layers else {"sample_pairs": 0, "world_pairs": 0}
        results["yardstick"] = run_yardstick(model_path, pairs=yardstick_pairs, progress=progress, cache=cache, **sizes)

    results["targets"] = _target_rows(results)
    results["runtime_seconds"] = round(time.perf_counter() - started, 1)
    return results


def _tables(data, out, nll, sigma0, centroid_error, has_centroid, rows, per_pair):
    """Error tables by pair kind, σ bucket and vertex count (dicts of row lists)."""
    from ..datasets.synthetic import KIND_NAMES

    n = len(data)
    iou_error = np.abs(out["iou_mean"] - data.iou)
    cover_error = 0.5 * (np.abs(out["cover_a_mean"] - data.cover_a) + np.abs(out["cover_b_mean"] - data.cover_b))
    positive = ~sigma0
    centroid_all = np.full(n, np.nan)
    centroid_all[np.flatnonzero(sigma0)] = 100 * centroid_error
    has_all = np.zeros(n, bool)
    has_all[np.flatnonzero(sigma0)] = has_centroid
    in_mc = np.zeros(n, bool)
    in_mc[rows] = True

    def spread_mc(name):
        values = np.full(n, np.nan)
        values[rows] = per_pair[name]
        return values, in_mc

    columns = {
        "iou_mae_sigma0": (iou_error, sigma0),
        "cover_mae_sigma0": (cover_error, sigma0),
        "iou_mae_sigma_pos_vs_label": (iou_error, positive),
        "nll_sigma_pos": (nll, positive),
        "median_centroid_pct": (centroid_all, has_all),
        "count_mc": (np.ones(n), in_mc),
        "mc_iou_mae_vs_mean": spread_mc("iou_mean_error"),
        "mc_coverage": spread_mc("coverage"),
        "mc_pit_coverage": spread_mc("pit_coverage"),
        "mc_crps_model": spread_mc("crps_model"),
        "mc_crps_oracle": spread_mc("crps_oracle"),
    }
    vertices = shapely.get_num_coordinates(data.a) + shapely.get_num_coordinates(data.b)
    tables = {
        "kind": grouped_means(data.kind, list(KIND_NAMES), columns),
        "sigma": grouped_means(sigma_bucket_codes(data.sigma), sigma_bucket_labels(), columns),
        "vertices": grouped_means(bucket_codes(vertices, VERTEX_EDGES), bucket_labels(VERTEX_EDGES), columns),
    }
    return tables


def _target_rows(results):
    seeds = results.get("seeds") or {}
    real = results.get("real_layers", {})
    values = {
        "iou_mae_sigma0": results["sigma0"]["iou_mae"],
        "matching_agreement": results["matching"]["agreement"],
        "interval_coverage": results["uncertainty"]["interval_coverage"],
        "pit_coverage": results["uncertainty"]["pit_coverage"],
        "centroid_median_pct": results["centroid"]["mean_median_pct"],
        "seed_nan_runs": seeds.get("nan_runs"),
        "seed_spread": seeds.get("spread"),
        "buildings_agreement": real.get("buildings", {}).get("agreement"),
        "admin_agreement": real.get("admin", {}).get("agreement"),
    }
    return [{"key": key, "metric": TARGETS[key][0], "value": values[key], "target": target_text(key),
             "status": target_status(key, values[key])} for key in TARGETS]


def _model_summary(model):
    config = model.config
    weights_shapes = {name: tuple(np.shape(w)) for name, w in _weights_of(model).items()}
    parameters = int(sum(int(np.prod(s)) for name, s in weights_shapes.items() if name not in ("input_mean",
                                                                                              "input_std")))
    return {"path": display_path(model.path), "file": Path(model.path).name, "network": config["network"],
            "encoding": config.get("encoding", {}), "training": {k: v for k, v in config.get("training", {}).items()
                                                                 if k != "history"},
            "final_history": {k: v[-1] for k, v in config.get("training", {}).get("history", {}).items() if v},
            "weights_sha256": config.get("weights_sha256"), "parameters": parameters}


def _weights_of(model):
    from ..network import load_model_file

    return load_model_file(model.path)[1]


def _machine():
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
