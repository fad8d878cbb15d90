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
    from_setups = []
    for setup in d["setups"]:
        row = min(setup["table"], key=lambda r: abs(r["threshold"] - 0.6))
        from_setups.append(
            f"{setup['dataset']} ({setup['strategy']['name']}), threshold {row['threshold']}: precision "
            f"{_pct(row['precision'])}%, recall {_pct(row['recall'])}%, correct labels flagged "
            f"{_pct(row['correct_flagged_share'])}%"
        )
    return "; ".join(from_setups)


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


def label_efficiency() -> str:
    targets = _load("label_efficiency", "targets.json")
    runs = {}
    for setting in ("fashion-clean", "fashion-noisy", "rare-clean", "rare-class-noise", "rare-noisy"):
        path = RESULTS / "label_efficiency" / setting / "results.json"
        if path.exists():
            s = json.loads(path.read_text())["summary"]
            runs[setting] = ", ".join(
                f"{k} {_pct(s[k]['tpr_at_fpr']['mean'])}" for k in ("random", "lc", "qbc", "hw") if k in s
            )
    met = sum(v["holds"] for v in targets.values())
    return "TPR@1%FPR " + "; ".join(f"{k}: {v}" for k, v in runs.items()) + f"; targets met {met}/{len(targets)}"


def label_noise() -> str:
    d = _load("label_noise")
    t = d["targets"]
    f1 = {m: [] for m in ("activemine", "cleanlab")}
    for row in d["summary"]:
        if row["method"] in f1:
            f1[row["method"]].append(row["f1"])
    mean = {m: sum(v) / len(v) for m, v in f1.items() if v}
    return (
        f"mean F1 of detection activemine {mean['activemine']:.3f}, cleanlab {mean['cleanlab']:.3f}; F1 within "
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
    "diversity": diversity,
    "diversity_index": diversity_index,
    "diversity_library": diversity_library,
    "diversity_scale": diversity_scale,
    "fast_start": fast_start,
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
