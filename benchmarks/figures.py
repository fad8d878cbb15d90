"""The current figures of every benchmark, read from ``benchmarks/results/NAME/``, as a Markdown table.

    python benchmarks/figures.py            # print the table
    python benchmarks/figures.py --write    # and put it in benchmarks/README.md, between its markers

Run it after a benchmark's results change, so that the README shows what the results hold. A benchmark
whose results are missing, or whose file no longer has the fields read here, says so in the table.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE / "README.md"
BEGIN, END = "<!-- figures: begin (python benchmarks/figures.py --write) -->", "<!-- figures: end -->"


def _load(name: str, file: str = "results.json") -> dict:
    return json.loads((RESULTS / name / file).read_text())


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def annotators() -> str:
    s = _load("annotators")["summary"]
    parts = []
    for ds, acc in s["consensus"].items():
        best = ", ".join(f"{m} {_pct(acc[m])}%" for m in ("majority", "dawid-skene", "model-weighted") if m in acc)
        bad = s["bad_annotator"][ds]
        parts.append(f"{ds}: consensus accuracy {best}; bad annotator ranked worst {bad['ranked_last']}/{bad['seeds']}")
    return "; ".join(parts)


def campaign_suspect() -> str:
    d = _load("campaign_suspect")
    parts = []
    for pool in d["rare"]:
        s = pool["summary"]
        pos, neg = s["pos"], s["neg"]
        ratio = pos["by_class"]["rate"] / neg["by_class"]["rate"] if neg["by_class"]["rate"] else float("inf")
        parts.append(
            f"{pool['dataset']}, correct labels flagged: positives {pos['by_class']['flagged']:,}/{pos['correct']:,} "
            f"({_pct(pos['by_class']['rate'])}%; one shared threshold: {_pct(pos['shared']['rate'])}%), negatives "
            f"{neg['by_class']['flagged']:,}/{neg['correct']:,} ({_pct(neg['by_class']['rate'])}%), ratio {ratio:.1f}x, "
            f"targets met: {s['target_by_class']}"
        )
    planted = d["planted"]
    row = min(planted["table"], key=lambda r: abs(r["threshold"] - 0.8))
    rule = row["by_class"]
    parts.append(
        f"{planted['dataset']} with {100 * planted['noise']:.0f}% planted errors, threshold {row['threshold']}: "
        f"precision {_pct(rule['precision'])}%, recall {_pct(rule['recall'])}%, correct labels flagged "
        f"{_pct(rule['correct_flagged_share'])}%"
    )
    return "; ".join(parts)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def deep_dirty_check() -> str:
    runs = _load("deep_dirty_check")["runs"]
    parts = []
    for method in dict.fromkeys(r["method"] for r in runs):
        rs = [r for r in runs if r["method"] == method]
        parts.append(
            f"{method} precision {_mean([r['suspect_precision'] for r in rs]):.2f}, recall "
            f"{_mean([r['suspect_recall'] for r in rs]):.2f}, quality AUC {_mean([r['quality_auc'] for r in rs]):.3f}, "
            f"{_mean([r['seconds'] for r in rs]):.1f} s ({_mean([r['step_seconds'] for r in rs]):.1f} s without "
            "the network fit)"
        )
    return "suspects against the flipped labels of L (2,000, 10% ambiguous noise), mean over seeds: " + "; ".join(parts)


def deep_embeddings() -> str:
    runs = _load("deep_embeddings")["runs"]
    parts = []
    for emb in dict.fromkeys(r["embedding"] for r in runs):
        rs = [r for r in runs if r["embedding"] == emb]
        parts.append(
            f"{emb} {_mean([r['copies_in_batch'] for r in rs]):.1f} ({_mean([r['distinct_groups'] for r in rs]):.1f} "
            f"groups, embedding {_mean([r['embed_seconds'] for r in rs]):.1f} s)"
        )
    return "batch rows from a planted group (mean over seeds): " + ", ".join(parts)


def deep_images() -> str:
    runs = _load("deep_images")["runs"]
    tpr: dict[tuple[str, str, str], float] = {}
    for key in dict.fromkeys((r["setting"], r["model"], r["strategy"]) for r in runs):
        tpr[key] = _mean([r["tpr_at_1pct_fpr"] for r in runs if (r["setting"], r["model"], r["strategy"]) == key])
    parts, checks = [], {}
    for st in dict.fromkeys(k[0] for k in tpr):
        cnn = ", ".join(
            f"{k} {tpr[st, 'cnn', k]:.2f}" for k in ("random", "lc", "qbc", "hw", "full") if (st, "cnn", k) in tpr
        )
        lgb = ", ".join(f"{k} {tpr[st, 'lightgbm', k]:.2f}" for k in ("random", "full") if (st, "lightgbm", k) in tpr)
        parts.append(f"{st}: cnn {cnn}; lightgbm {lgb}")
        t = {k: tpr[st, "cnn", k] for k in ("random", "lc", "hw", "full")}
        checks[f"{st} cnn random > lightgbm random"] = t["random"] > tpr[st, "lightgbm", "random"]
        checks[f"{st} cnn full > lightgbm full"] = t["full"] > tpr[st, "lightgbm", "full"]
        margin = -0.3 if st == "clean" else 0.0
        checks[f"{st} hw >= lc{' - 0.3' if margin else ''}"] = t["hw"] >= t["lc"] + margin
        checks[f"{st} lc >= random + 2"] = t["lc"] >= t["random"] + 2
        checks[f"{st} hw >= random + 2"] = t["hw"] >= t["random"] + 2
    missed = [k for k, ok in checks.items() if not ok]
    return (
        "TPR@1%FPR "
        + "; ".join(parts)
        + f"; targets met {len(checks) - len(missed)}/{len(checks)}"
        + (f" (missed: {', '.join(missed)})" if missed else "")
    )


def diversity() -> str:
    s = _load("diversity")["summary"]
    out = []
    for setting in ("copies", "clean"):
        if setting in s:
            runs = s[setting]
            out.append(
                f"{setting}: "
                + ", ".join(
                    f"{k} {_pct(runs[k]['tpr_at_1pct_fpr'])}" for k in ("lc", "hw", "hw+near-duplicates") if k in runs
                )
            )
    targets = _load("diversity")["targets"]
    met = sum(bool(v) for v in targets.values())
    return "TPR@1%FPR " + "; ".join(out) + f"; targets met {met}/{len(targets)}"


def diversity_index() -> str:
    d = _load("diversity_index")
    return (
        f"{d['rows']:,} rows x {d['dims']}: activemine {d['activemine_projected_seconds']:.2f} s, cKDTree "
        f"{d['ckdtree_seconds']:.2f} s, scikit-learn {d['sklearn_kd_tree_seconds']:.2f} s, faiss flat "
        f"{d['faiss_flat_seconds_extrapolated']:.2f} s; same pairs: {d['activemine_pairs'] == d['pairs']}"
    )


def diversity_library() -> str:
    d = _load("diversity_library")
    c, f = d["centroids"], d["filter_directions"]
    return (
        f"k-means ({c['clusters']:,} on {c['sample_rows']:,}): library {c['library']['cpu_seconds']:.2f} CPU s "
        f"(inertia {c['library']['inertia']:,.0f}), hand-written {c['hand']['cpu_seconds']:.2f} "
        f"({c['hand']['inertia']:,.0f}); PCA directions: library {f['library']['cpu_seconds']:.3f}, hand-written "
        f"{f['hand']['cpu_seconds']:.3f} CPU s; scikit-learn import {d['sklearn_import_seconds']:.1f} s"
    )


def diversity_scale() -> str:
    s = _load("diversity_scale")["scale"]
    return (
        f"{s['rows']:,} rows, {s['budget']:,} selected: {s['seconds']:.1f} s against a {s['floor_seconds']:.1f} s "
        f"floor ({s['ratio_to_floor']:.1f}x), dedup {s['dedup_seconds']:.1f} s, peak {s['peak_rss_mb'] / 1024:.2f} GB; "
        f"Ray batch equal: {s.get('ray_equal')}"
    )


def fast_start() -> str:
    r = _load("fast_start")["results"]
    return (
        f"`activemine --help` {r['this_help']['wall_s_median']:.2f} s ({r['this_help']['cpu_s_median']:.2f} CPU s), "
        f"`import activemine` {r['this_import']['wall_s_median']:.3f} s; model libraries imported: "
        f"{r['this_help']['heavy_imports'] or 'none'}"
    )


def few_positives() -> str:
    rows = _load("few_positives")["rows"]
    few = [r for r in rows if r["case"] == "few positives"]
    parts = []
    for k in sorted({r["positives"] for r in few}):
        sel = {
            m: [r for r in few if r["positives"] == k and r["model"] == m]
            for m in ("default", "fixed min_child_weight 1")
        }
        parts.append(
            f"k={k}: "
            + " / ".join(
                f"{_mean([r['tpr'] for r in v]):.1f} ({_mean([r['auc'] for r in v]):.2f})" for v in sel.values()
            )
        )
    sep = [r for r in rows if r["case"] != "few positives"]
    big = max(r["rows"] for r in sep)
    sep_text = ", ".join(f"{r['model']} {r['auc']:.3f} (TPR {r['tpr']:.0f})" for r in sep if r["rows"] == big)
    return (
        f"TPR@1%FPR (AUC), means over {len({r['seed'] for r in few})} seeds, with k positives in 2,000 rows, default (scaled min_child_weight) / fixed "
        "min_child_weight 1: " + ", ".join(parts) + f"; separable 0.4% class at {big:,} rows: AUC {sep_text}"
    )


def image_pool_memory() -> str:
    d = _load("image_pool_memory")
    parts = []
    for kind in ("folder", "manifest"):
        runs = sorted((r for r in d["runs"] if r["kind"] == kind), key=lambda r: r["pool"])
        g = d["growth"][kind]
        rss = " / ".join(format(r["peak_rss_mb"], ",.0f") for r in runs)
        sizes = " / ".join(format(r["pool"], ",") for r in runs)
        parts.append(f"{kind}: peak RSS {rss} MB at {sizes} images, {g['bytes_per_image']:.0f} bytes per image")
    return "; ".join(parts)


def drop_check() -> str:
    d = _load("drop_check")
    return "; ".join(
        f"{k}: drops kept, check with the detection on every row {v['leaky_keeps']}/{v['runs']}, "
        f"nested {v['nested_keeps']}/{v['runs']}"
        for k, v in d["summary"].items()
    )


def inference_images() -> str:
    d = _load("inference_images")
    sizes = sorted(d["ratio_ours_over_floor"], key=int)
    rss = {(r["config"], str(r["pool"])): r["peak_rss_mb"] for r in d["runs"]}

    def both(values: dict, fmt: str) -> str:
        return " / ".join(format(values[n], fmt) for n in sizes)

    ratios = [*d["ratio_ours_over_floor"].values(), *d["cpu_ratio_ours_over_floor"].values()]
    return (
        f"{' / '.join(f'{int(n):,}' for n in sizes)} images, ours over a plain torch DataLoader loop: wall "
        f"{both(d['ratio_ours_over_floor'], '.2f')}x, CPU {both(d['cpu_ratio_ours_over_floor'], '.2f')}x "
        f"(within 1.3x: {max(ratios) <= 1.3}); peak RSS ours {both({n: rss['ours', n] for n in sizes}, ',.0f')} MB "
        f"(+{d['ours_peak_rss_growth_mb']:.0f} MB), loop {both({n: rss['floor', n] for n in sizes}, ',.0f')} MB"
    )


def label_efficiency() -> str:
    targets = _load("label_efficiency", "targets.json")
    keys = ("random", "lc", "qbc", "hw", "reference:initial", "reference:full")
    tpr: dict[str, list[float]] = {k: [] for k in keys}
    hw_vs_lc = cells = 0
    for path in sorted((RESULTS / "label_efficiency").glob("*/results.json")):
        s = json.loads(path.read_text())["summary"]
        cells += 1
        for k in keys:
            tpr[k].append(s[k]["tpr_at_fpr"]["mean"])
        hw_vs_lc += s["hw"]["tpr_at_fpr"]["mean"] >= s["lc"]["tpr_at_fpr"]["mean"]
    means = ", ".join(f"{k.removeprefix('reference:')} {_pct(_mean(v))}" for k, v in tpr.items())
    missed = [k for k, v in targets.items() if not v["holds"]]
    return (
        f"{cells} cells (4 datasets x clean, noisy, class-noise x enough, few positives), mean TPR@1%FPR over cells: "
        f"{means}; hw >= lc in {hw_vs_lc}/{cells} cells; targets met {len(targets) - len(missed)}/{len(targets)}"
        + (f" (missed: {'; '.join(missed)})" if missed else "")
    )


def label_noise() -> str:
    d = _load("label_noise")
    t = d["targets"]
    f1 = {m: [] for m in ("activemine", "cleanlab")}
    for row in d["summary"]:
        if row["method"] in f1:
            f1[row["method"]].append(row["f1"])
    mean = {m: sum(v) / len(v) for m, v in f1.items() if v}
    datasets = ", ".join(dict.fromkeys(row["dataset"] for row in d["summary"]))
    return (
        f"{datasets}: mean F1 of detection activemine {mean['activemine']:.3f}, cleanlab {mean['cleanlab']:.3f}; F1 within "
        f"target {sum(r['f1_ok'] for r in t)}/{len(t)}, pruning not worse {sum(r['not_worse_ok'] for r in t)}/{len(t)}"
    )


def qbc() -> str:
    d = _load("qbc")
    one = d["one_shot"]["summary"]
    parts = [f"{k} {_pct(v['tpr_at_fpr']['mean'])}" for k, v in one.items() if "tpr_at_fpr" in v]
    multi = d["multi_round"]["summary"]
    parts += [f"multi-round {k} {_pct(v['tpr_at_fpr']['mean'])}" for k, v in multi.items()]
    return "TPR@1%FPR " + ", ".join(parts)


def scale() -> str:
    s = _load("scale")["summary"]
    keys = ("local_bin_over_floor", "cli_bin_over_floor_process", "local_c10_over_floor")
    return ", ".join(f"{k.replace('_', ' ')} {s[k]:.2f}x" for k in keys if k in s)


def scale_campaign() -> str:
    d = _load("scale_campaign")
    steps = d["steps"]
    met = d["targets_met"]
    return (
        f"{d['rows']:,} rows, {d['budget']:,} a round: mine {steps['mine_round_1']['wall_s']:.1f} s "
        f"({d['checks']['mine_round_1_over_floor']:.2f}x the floor, {steps['mine_round_1']['peak_rss_mb']:,.0f} MB), "
        f"import {steps['import']['wall_s']:.1f} s ({steps['import']['peak_rss_mb']:,.0f} MB); "
        f"targets met {sum(met.values())}/{len(met)}"
    )


def select_1m() -> str:
    d = _load("select_1m")
    c = d["configs"]
    return ", ".join(f"{k} {v['median_seconds']:.2f} s ({v['ratio_to_floor']:.1f}x)" for k, v in c.items())


def stopping() -> str:
    t = _load("stopping", "summary.json")["targets"]
    parts = []
    for ds, v in t.items():
        parts.append(
            f"{ds}: kappa-refit saves {100 * v['kappa_refit_labels_saved_share']:.0f}% of labels for "
            f"{v['kappa_refit_tpr_lost_points']:.2f} points (target met: {v['kappa_refit_target_met']}), "
            f"forecast made {v['forecasts_made']}/{v['seeds']} ({v.get('forecasts_measured', 0)} measured), "
            f"interval missed {v['interval_misses']}"
        )
    return "; ".join(parts)


FIGURES: dict[str, Callable[[], str]] = {
    "annotators": annotators,
    "campaign_suspect": campaign_suspect,
    "deep_dirty_check": deep_dirty_check,
    "deep_embeddings": deep_embeddings,
    "deep_images": deep_images,
    "diversity": diversity,
    "drop_check": drop_check,
    "diversity_index": diversity_index,
    "diversity_library": diversity_library,
    "diversity_scale": diversity_scale,
    "fast_start": fast_start,
    "few_positives": few_positives,
    "image_pool_memory": image_pool_memory,
    "inference_images": inference_images,
    "label_efficiency": label_efficiency,
    "label_noise": label_noise,
    "qbc": qbc,
    "scale": scale,
    "scale_campaign": scale_campaign,
    "select_1m": select_1m,
    "stopping": stopping,
}


def table() -> str:
    lines = ["| benchmark | current figures (`benchmarks/results/NAME/`) |", "|---|---|"]
    for name, figures in FIGURES.items():
        try:
            text = figures()
        except (OSError, KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            text = f"(no figures: {type(exc).__name__} {exc})"
        lines.append(f"| `{name}` | {text} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="put the table in benchmarks/README.md")
    args = ap.parse_args()
    text = table()
    print(text)
    if args.write:
        readme = README.read_text()
        start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
        README.write_text(readme[:start] + "\n" + text + "\n" + readme[end:])


if __name__ == "__main__":
    main()
