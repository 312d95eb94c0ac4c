"""The command line of `make evaluate`: measure the model, then write the card and evaluation.json."""

import argparse
import json
from pathlib import Path

from .card import format_value, render_card, write_outputs
from .heldout import CACHE, MODEL_DIR
from .measure import DEFAULTS, evaluate
from .yardstick import PLOT_PATH
from .yardstick import write_outputs as write_yardstick


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the bundled model)")
    parser.add_argument("--pairs", type=int, default=DEFAULTS["pairs"], help="held-out pairs (seed 3)")
    parser.add_argument("--mc-pairs", type=int, default=DEFAULTS["mc_pairs"], help="σ > 0 pairs with Monte-Carlo truth")
    parser.add_argument("--mc-samples", type=int, default=DEFAULTS["mc_samples"], help="displacements per MC pair")
    parser.add_argument("--model-samples", type=int, default=DEFAULTS["model_samples"],
                        help="quasi-random points of the model's distribution per MC pair")
    parser.add_argument("--groups", type=int, default=DEFAULTS["groups"], help="synthetic best-match groups")
    parser.add_argument("--seeds", type=int, default=DEFAULTS["seeds"],
                        help="convergence runs over training seeds 11, 12, ... (0: skip; needs TensorFlow)")
    parser.add_argument("--seed-pairs", type=int, default=DEFAULTS["seed_pairs"])
    parser.add_argument("--seed-validation-pairs", type=int, default=DEFAULTS["seed_validation_pairs"])
    parser.add_argument("--seed-epochs", type=int, default=DEFAULTS["seed_epochs"])
    parser.add_argument("--no-real-layers", action="store_true", help="skip world_map.gpkg and the building sample")
    parser.add_argument("--workers", type=int, default=DEFAULTS["workers"], help="processes generating pairs")
    parser.add_argument("--yardstick-pairs", type=int, default=DEFAULTS["yardstick_pairs"],
                        help="synthetic pairs of the yardstick against exact sampling (0: skip); writes "
                             "yardstick.json and .md next to --json, its plot to docs/ (or next to a custom --json)")
    parser.add_argument("--card", type=Path, default=MODEL_DIR / "MODEL_CARD.md")
    parser.add_argument("--json", type=Path, default=MODEL_DIR / "evaluation.json")
    parser.add_argument("--card-only", action="store_true",
                        help="rewrite the card from an existing --json (e.g. after architecture_results.md changed)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write build/evaluation-data/")
    parser.add_argument("--yardstick-from", type=Path, default=None,
                        help="with --card-only: the yardstick section from this results file of a later standalone "
                             "yardstick run (e.g. make bench's test/benchmarks/results_yardstick.json, timed on a "
                             "quiet machine), stored in --json and its yardstick files too")
    args = parser.parse_args(argv)
    yardstick_json = args.json.parent / "yardstick.json"
    if args.card_only:
        results = json.loads(args.json.read_text(encoding="utf-8"))
        if args.yardstick_from is not None:
            results["yardstick"] = json.loads(args.yardstick_from.read_text(encoding="utf-8"))
            write_yardstick(results["yardstick"], yardstick_json, args.json.parent / "yardstick.md",
                            _plot_path(args.json))
            write_outputs(results, args.card, args.json, yardstick_json)
        else:
            args.card.write_text(render_card(results, yardstick_json), encoding="utf-8")
        print(f"Model card rewritten: {args.card}")
        return results
    results = evaluate(args.model, pairs=args.pairs, mc_pairs=args.mc_pairs, mc_samples=args.mc_samples,
                       model_samples=args.model_samples, groups=args.groups, seeds=args.seeds,
                       seed_pairs=args.seed_pairs, seed_validation_pairs=args.seed_validation_pairs,
                       seed_epochs=args.seed_epochs,
                       real_layers=not args.no_real_layers, workers=args.workers,
                       yardstick_pairs=args.yardstick_pairs, cache=None if args.no_cache else CACHE)
    if results["yardstick"]:
        write_yardstick(results["yardstick"], yardstick_json, args.json.parent / "yardstick.md", _plot_path(args.json))
    write_outputs(results, args.card, args.json, yardstick_json)
    print(f"Model card: {args.card}; results: {args.json} ({results['runtime_seconds']:.0f} s)")
    for row in results["targets"]:
        print(f"  {row['metric']}: {format_value(row['key'], row['value'])} (target {row['target']}) {row['status']}")
    for row in (results["yardstick"] or {}).get("targets", []):
        print(f"  {row['metric']}: {row['text']} (target {row['target']}) {row['status']}")
    return results



def _plot_path(json_path):
    """The yardstick plot's path: docs/ for the bundled model's results, else next to ``json_path``."""
    return PLOT_PATH if json_path.resolve().parent == MODEL_DIR.resolve() else json_path.parent / "yardstick.png"
