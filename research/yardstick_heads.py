"""A reduced yardstick run: two model files (e.g. the 2-D head and the u-head) against exact-kernel QMC-k.

Usage (QGIS-side venv; held-out seed 3, as the full yardstick; report only, never tune on it)::

    .venv/bin/python research/yardstick_heads.py OUT.json MODEL.npz [MODEL.npz ...]
        [--pairs 300] [--sample-pairs 150] [--world-pairs 0] [--truth-draws 1024] [--repeats 1]

It runs :func:`overlap_relevance.model.evaluation.yardstick.run_yardstick` with a chosen list of contestants:
each model file's network (``sigma_path="network"``, named by its file), the product as it ships
(``sigma_path="exact"``, with the first file's network for the centroid), GEOS QMC-4 and QMC-16 (so the GEOS frontier is not
empty), the sweep, and exact-kernel QMC-k for k in 8, 16, 32, 64, 256; it writes the results JSON and prints
one line per contestant with its cost in overlays and the three measures, and the per σ band × kind groups.
"""

import argparse
import dataclasses
import json
from pathlib import Path

from overlap_relevance.model.evaluation import samplers, yardstick
from overlap_relevance.model.scoring import OverlapModel


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--sample-pairs", type=int, default=150)
    parser.add_argument("--world-pairs", type=int, default=0)
    parser.add_argument("--truth-draws", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--exact-ks", type=int, nargs="*", default=[8, 16, 32, 64, 256])
    args = parser.parse_args(argv)
    contestants = []
    for index, path in enumerate(args.models):
        model = samplers.model_contestant(OverlapModel.load(path, sigma_path="network"))
        # The first model keeps the family "model" (the yardstick's reference row); the others are "model2", ...
        name = "model" if index == 0 else f"model:{Path(path).stem}"
        contestants.append(dataclasses.replace(model, name=name, family="model" if index == 0 else "model2"))
    # The product as it ships (scoring.SIGMA_PATH "exact": the overlap exact at 32 fixed shifts, the centroid
    # from the first model file's network; its descriptors are computed as for the network).
    product = samplers.model_contestant(OverlapModel.load(args.models[0], sigma_path="exact"))
    contestants.append(dataclasses.replace(product, name="product (exact-32 path)", family="product"))
    contestants += [samplers.qmc_contestant(k) for k in (4, 16)]
    contestants += [samplers.sweep_contestant()]
    contestants += [samplers.exact_kernel_contestant(k) for k in args.exact_ks]
    results = yardstick.run_yardstick(args.models[0], pairs=args.pairs, sample_pairs=args.sample_pairs,
                                      world_pairs=args.world_pairs, truth_draws=args.truth_draws,
                                      repeats=args.repeats, ks=(4, 16), contestants=contestants,
                                      exact_ks=args.exact_ks, progress=False)
    args.out.write_text(json.dumps(results, indent=1, default=float))
    print("contestant | overlays | µs/pair | MAE mean IoU | MAE P(IoU>=0.5) | CRPS | 90% coverage")
    for row in results["contestants"]:
        print(f"{row['name']} | {row['cost_overlays']:.2f} | {row['us_per_pair']:.0f} | {row['mae_mean']:.4f} | "
              f"{row['mae_p']:.4f} | {row['crps']:.4f} | {row['coverage']:.3f} | "
              + " ; ".join(f"{name}: {v['cost_overlays']:.2f} ov {v['mae_mean']:.4f}/{v['mae_p']:.4f}/{v['crps']:.4f}"
                           f"/{v['coverage']:.3f}" for name, v in row["by_set"].items()))
    print(json.dumps(results.get("groups"), default=float)[:6000])


if __name__ == "__main__":
    main()
