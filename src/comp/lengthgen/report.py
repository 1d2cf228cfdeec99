"""The study's report directory: ``results.json``, ``report.md``, ``lengthgen.html`` and ``lengthgen.png``.

Statistics are over seeds, per encoding and length: mean, sample standard deviation
(0 with one seed), min and max. The chart draws the mean of each encoding as a line and
its min-max range over seeds as a band, with the training lengths shaded.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import plotly.graph_objects as go
from plotly.colors import hex_to_rgb, qualitative

from comp.errors import CompError
from comp.io import write_json, write_text
from comp.tasks import LengthRange, parse_lengths
from comp.views.plots import write_html, write_png

MULTIPLES = (1, 2, 4, 8)
LABELS = {"acc_generate": "acc_generate, whole CoT", "acc_cot": "teacher-forced, whole CoT",
          "acc_answer": "teacher-forced final answer"}


def label(metric: str, study: dict) -> str:
    """What ``metric`` measured in this study: acc_generate is greedy decoding only with ``decode``."""
    if metric != "acc_generate":
        return LABELS[metric]
    how = "greedy decoding" if study.get("decode") else "teacher-forced identity, equal to greedy decoding in exact arithmetic"
    return f"acc_generate ({how}), whole CoT"


def summarize(rows: list[dict], metric: str) -> dict[tuple[str, int], dict]:
    """``{(pe, length): {"mean", "sd", "min", "max", "seeds"}}`` of ``metric`` over seeds."""
    groups: dict[tuple[str, int], list[float]] = {}
    for r in rows:
        groups.setdefault((r["pe"], r["length"]), []).append(r[metric])
    return {
        key: {"mean": statistics.fmean(v), "sd": statistics.stdev(v) if len(v) > 1 else 0.0,
              "min": min(v), "max": max(v), "seeds": len(v)}
        for key, v in groups.items()
    }


def multiples(study: dict) -> list[tuple[int, int]]:
    """``(multiple, length)`` for 1x, 2x, 4x, 8x the longest training length, where tested."""
    hi = LengthRange.parse(study["train_lengths"]).hi
    tested = set(parse_lengths(study["test_lengths"]))
    return [(m, m * hi) for m in MULTIPLES if m * hi in tested]


def cell(s: "dict | None", with_min: bool = True) -> str:
    if s is None:
        return "-"
    text = f"{s['mean']:.3f}" + (f" ± {s['sd']:.3f}" if s["seeds"] > 1 else "")
    return text + (f" [{s['min']:.3f}]" if with_min and s["seeds"] > 1 else "")


def multiples_rows(results: dict, metric: str = "acc_generate") -> list[dict]:
    """One row per encoding: ``{"pe", "1x": cell, ...}`` (the headline table)."""
    stats = summarize(results["rows"], metric)
    points = multiples(results["study"])
    return [{"pe": pe, **{f"{m}x (L={n})": cell(stats.get((pe, n))) for m, n in points}}
            for pe in results["study"]["pes"]]


def _md_table(rows: list[dict]) -> str:
    cols = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def command(study: dict) -> str:
    """The command line that reproduces the study."""
    parts = [f"comp lengthgen --task {study['task']}", f"--pe {','.join(study['pes'])}",
             f"--seeds {','.join(map(str, study['seeds']))}", f"--train-lengths {study['train_lengths']}",
             f"--test-lengths {study['test_lengths']}", f"--n {study['n']}"]
    if study["steps"] is not None:
        parts.append(f"--steps {study['steps']}")
    parts += [f"--set {s}" for s in study["sets"]] + (["--decode"] if study["decode"] else [])
    if study.get("val_lengths"):
        parts += [f"--val-lengths {study['val_lengths']}", f"--select {study['select']}"]
    if study.get("extend"):
        parts.append(f"--extend {study['extend']}")
    if study.get("restarts"):
        parts.append(f"--restarts {study['restarts']}")
    if study.get("calibrate"):
        parts.append(f"--calibrate {study['calibrate']}")
    if study.get("device", "auto") != "auto":
        parts.append(f"--device {study['device']}")
    return " ".join(parts)


def selection_markdown(sel: dict) -> list[str]:
    """The validation choice: rule, every candidate's numbers, the reason."""
    rows = [{"candidate": c, "min": f"{sel['scores'][c]['min']:.4f}", "mean": f"{sel['scores'][c]['mean']:.4f}",
             "worst (seed, length)": tuple(sel["scores"][c]["worst"]), "chosen": "yes" if c == sel["chosen"] else ""}
            for c in sel["ranking"]]
    return [f"## Chosen on validation lengths {sel['val_lengths'][0]}-{sel['val_lengths'][-1]} before testing",
            "", f"Rule {sel['rule']} on {sel['metric']}: {sel['why']}. Only {sel['chosen']} was evaluated at the "
            "test lengths.", "", _md_table(rows), ""]


def calibration_markdown(calibration: dict) -> list[str]:
    """Each run's inference-time factor, chosen on its own validation rows before testing."""
    rows = [{"run": name, "factor": f"{c['factor']:g}", "why": c["why"]} for name, c in calibration.items()]
    return ["## Calibrated on validation lengths before testing (--calibrate)", "",
            "Each run keeps factor 1 unless one of its validation rows is below 1.0; then the factor on its "
            "learned log(n) scales with the highest worst validation row (ties: lowest validation loss) is used "
            "for its test rows (comp.lengthgen.calibrate).", "", _md_table(rows), ""]


def extension_markdown(extension: dict) -> list[str]:
    """Which runs trained more steps because of their validation rows, and which run was kept."""
    rows = [{"run": name, "kept": e["kept"], "why": e["why"]} for name, e in extension.items()]
    return ["## Continued on validation errors before testing (--extend, --restarts)", "",
            "A run with a validation row below 1.0 trained more steps from its final weights; the continued run "
            "replaces it when its worst validation row is no lower. With --restarts, a run still below 1.0 was "
            "trained again from new initializations, and the first attempt at 1.0 (else the best) is kept "
            "(comp.lengthgen.extend).", "", _md_table(rows), ""]


def markdown(results: dict) -> str:
    study, rows = results["study"], results["rows"]
    meta = study.get("meta", {})
    out = [
        f"# Length generalization: {study['task']}, trained on lengths {study['train_lengths']}",
        "",
        f"Seeds {', '.join(map(str, study['seeds']))}; {study['n']} sequences per length (evaluation seed "
        f"{study['eval_seed']}); comp {meta.get('comp', '?')} at {meta.get('git_commit', '?')}.",
        "Cells: mean ± standard deviation over seeds [worst seed]; accuracy is per-sequence exact match.",
        "",
        "```", command(study), "```", "",
    ]
    if results.get("pending"):
        out += [f"**Pending runs (not in the tables):** {', '.join(results['pending'])}", ""]
    if results.get("selection"):
        out += selection_markdown(results["selection"])
    if results.get("extension"):
        out += extension_markdown(results["extension"])
    if results.get("calibration"):
        out += calibration_markdown(results["calibration"])
    if rows:
        for metric in ("acc_generate", "acc_answer"):
            out += [f"## At 1x, 2x, 4x, 8x the training length: {label(metric, study)}", "",
                    _md_table(multiples_rows(results, metric)), ""]
        stats = summarize(rows, "acc_generate")
        every = [{"length": n, **{pe: cell(stats.get((pe, n)), with_min=False) for pe in study["pes"]}}
                 for n in parse_lengths(study["test_lengths"])]
        out += [f"## Every length: {label('acc_generate', study)}", "", _md_table(every), ""]
    return "\n".join(out)


def figure(results: dict, metric: str = "acc_generate") -> go.Figure:
    """Accuracy against length: one line per encoding (mean), a min-max band over seeds, training range shaded."""
    study = results["study"]
    stats = summarize(results["rows"], metric)
    lengths = parse_lengths(study["test_lengths"])
    fig = go.Figure()
    palette = qualitative.Plotly if len(study["pes"]) <= len(qualitative.Plotly) else qualitative.Dark24  # distinct lines
    for i, pe in enumerate(study["pes"]):
        pts = [(n, stats[(pe, n)]) for n in lengths if (pe, n) in stats]
        if not pts:
            continue
        x = [n for n, _ in pts]
        color = palette[i % len(palette)]
        band = "rgba({}, {}, {}, 0.18)".format(*hex_to_rgb(color))
        fig.add_trace(go.Scatter(x=x, y=[s["max"] for _, s in pts], mode="lines", line=dict(width=0), legendgroup=pe,
                                 showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=[s["min"] for _, s in pts], mode="lines", line=dict(width=0), fill="tonexty",
                                 fillcolor=band, legendgroup=pe, showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(
            x=x, y=[s["mean"] for _, s in pts], name=pe, legendgroup=pe, mode="lines", line=dict(color=color, width=2),
            customdata=[[s["min"], s["max"], s["seeds"]] for _, s in pts],
            hovertemplate=f"{pe}<br>L=%{{x}}: mean %{{y:.3f}}, min %{{customdata[0]:.3f}}, max %{{customdata[1]:.3f}}"
                          " over %{customdata[2]} seeds<extra></extra>",
        ))
    train = LengthRange.parse(study["train_lengths"])
    fig.add_vrect(x0=train.lo - 0.5, x1=train.hi + 0.5, fillcolor="gray", opacity=0.15, line_width=0,
                  annotation_text="training lengths", annotation_position="top")
    fig.update_layout(
        title=f"{study['task']}: {label(metric, study)}, trained on {study['train_lengths']} "
              f"(line: mean, band: min-max over {len(study['seeds'])} seed{'s' * (len(study['seeds']) > 1)})",
        xaxis_title="input length L", yaxis_title="accuracy", yaxis_range=[-0.02, 1.02], template="plotly_white",
    )
    return fig


def write_report(out: Path, results: dict) -> list[Path]:
    """Write the report files into ``out``; returns the paths written (the PNG only if export works)."""
    written = [out / "results.json", out / "report.md", out / "lengthgen.html"]
    write_json(written[0], results)
    write_text(written[1], markdown(results))
    fig = figure(results)
    write_html(fig, written[2])
    try:
        write_png(fig, out / "lengthgen.png")
        written.append(out / "lengthgen.png")
    except CompError as e:  # no kaleido or no Chromium: the HTML still holds the chart
        print(f"warning: {e}; the chart is in {written[2]}", file=sys.stderr)
    return written
