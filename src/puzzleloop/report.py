"""`puzzleloop report RUN`: one self-contained HTML page about a run (plots, numbers, the verified puzzles).

The page needs no network: plots are base64 PNGs drawn with matplotlib's Agg backend, the code highlighting is
Pygments' CSS, and the table filter is a few lines of inline JavaScript. The filter state can be given in the
URL (`?q=text&type=int&round=2&min_rate=0.5`); with `&selftest=1` the page writes into its title the number of
rows it shows and of plots the browser decoded, which is how the headless-browser test checks it.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from puzzleloop.arguments import positive_int
from puzzleloop.corpus import PuzzleRow, SolutionRow
from puzzleloop.files import write_text_atomic
from puzzleloop.inspection import (
    RunFolder,
    corpus_stats,
    heldout_index,
    measured_on,
    open_run,
    pass_keys,
    puzzle_summary,
    round_label,
    rounds_table,
)

REPORT_FILE = "report.html"
SOLUTIONS_SHOWN = 3
"""Shortest distinct verified solutions shown per puzzle (the count of all is shown too)."""


# -- plots ---------------------------------------------------------------------------------------------


def _png(draw: Callable[[Figure], None], size: tuple[float, float] = (5.8, 3.4)) -> str:
    """Draw on a fresh figure and return it as a base64 PNG (Figure, not pyplot: no global state, no GUI)."""
    figure = Figure(figsize=size, layout="constrained")
    draw(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plot_pass_at_k(metrics: list[dict[str, Any]]) -> str | None:
    """Held-out pass@k per round with its 95% interval; None before the first evaluation."""
    if not metrics:
        return None

    def draw(figure: Figure) -> None:
        axes = figure.subplots()
        keys = sorted({k for line in metrics for k in pass_keys(line)}, key=lambda k: int(k[5:]))
        for offset, key in enumerate(keys):
            lines = [line for line in metrics if key in line]
            x = [line["round"] + (offset - (len(keys) - 1) / 2) * 0.06 for line in lines]
            y = [100 * line[key] for line in lines]
            low = [100 * (line[key] - line[f"{key}_ci95"][0]) for line in lines]
            high = [100 * (line[f"{key}_ci95"][1] - line[key]) for line in lines]
            axes.errorbar(x, y, yerr=[low, high], marker="o", capsize=4, label=key)
        rounds = sorted({line["round"] for line in metrics})
        axes.set_xticks(rounds, [round_label(r) for r in rounds])
        sets, dates = measured_on(metrics)
        sets = sets or "held-out"
        when = f", evaluated {dates[-1]}" if dates else ""
        axes.set(xlabel="round", ylabel="held-out %", title=f"pass@k per round on {sets} (95% interval{when})")
        axes.set_ylim(bottom=0)
        axes.legend()

    return _png(draw)


def plot_growth(stats: dict[str, Any]) -> str | None:
    """New and cumulative puzzles, and cumulative solved puzzles, per round."""
    rounds = stats["rounds"]
    if not rounds:
        return None

    def draw(figure: Figure) -> None:
        axes = figure.subplots()
        x = list(rounds)
        new = [r["puzzles"] for r in rounds.values()]
        solved = [r["solved"] for r in rounds.values()]
        axes.bar(x, new, color="#c6dbef", label="new puzzles")
        axes.plot(x, _cumulative(new), marker="o", label="puzzles (total)")
        axes.plot(x, _cumulative(solved), marker="s", label="solved puzzles (total)")
        axes.set_xticks(x, [str(r) for r in x])
        axes.set(xlabel="round", ylabel="puzzles", title="Corpus growth")
        axes.legend()

    return _png(draw)


def _cumulative(values: list[int]) -> list[int]:
    total, out = 0, []
    for value in values:
        total += value
        out.append(total)
    return out


def plot_solve_rates(stats: dict[str, Any]) -> str | None:
    histogram = stats["solve_rate_histogram"]
    if not stats["puzzles"]:
        return None

    def draw(figure: Figure) -> None:
        axes = figure.subplots()
        labels = list(histogram)
        colors = ["#bbbbbb" if label == "unattempted" else "#4292c6" for label in labels]
        axes.bar(range(len(labels)), list(histogram.values()), color=colors)
        axes.set_xticks(range(len(labels)), labels, rotation=20)
        axes.set(xlabel="solve rate (verified / attempts)", ylabel="puzzles", title="Solve-rate distribution")

    return _png(draw)


def plot_answer_types(stats: dict[str, Any]) -> str | None:
    types = stats["answer_types"]
    if not types:
        return None

    def draw(figure: Figure) -> None:
        axes = figure.subplots()
        names = list(types)[::-1]
        axes.barh(names, [types[n]["puzzles"] for n in names], color="#c6dbef", label="puzzles")
        axes.barh(names, [types[n]["solved"] for n in names], color="#2171b5", label="solved")
        axes.set(xlabel="puzzles", title="Answer types")
        axes.legend()

    return _png(draw, (5.8, 0.9 + 0.32 * len(types)))


def plot_funnel(filters: dict[int, dict[str, Any]]) -> str | None:
    """Proposals left after each filter step, one line per round."""
    if not filters:
        return None

    def draw(figure: Figure) -> None:
        axes = figure.subplots()
        steps = list(next(iter(filters.values()))["funnel"])
        for round_, report in filters.items():
            axes.plot(
                range(len(steps)), [report["funnel"].get(s, 0) for s in steps], marker="o", label=f"round {round_}"
            )
        axes.set_xticks(range(len(steps)), [s.removeprefix("after_") for s in steps], rotation=30)
        axes.set(ylabel="proposals left", title="Filter funnel")
        axes.set_ylim(bottom=0)
        axes.legend()

    return _png(draw)


# -- page parts ----------------------------------------------------------------------------------------


def _figure(plot_id: str, caption: str, png: str | None) -> str:
    body = (
        f'<img alt="{html.escape(caption)}" src="data:image/png;base64,{png}">'
        if png
        else '<p class="empty">no data yet</p>'
    )
    return f'<figure class="plot" id="plot-{plot_id}">{body}<figcaption>{html.escape(caption)}</figcaption></figure>'


def _table(header: list[str] | None, rows: list[list[Any]], table_id: str) -> str:
    head = "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}">{head}<tbody>{body}</tbody></table>'


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _rounds_table(metrics: list[dict[str, Any]]) -> str:
    if not metrics:
        return '<p class="empty">no held-out evaluation has finished yet</p>'
    header, rows = rounds_table(metrics)
    return _table(header, rows, "rounds-table")


def _summary(stats: dict[str, Any]) -> str:
    d, removed = stats["diversity"], stats["filter"]["removed"]
    heldout = (
        f"not measured: {d['heldout_note']}"
        if d["heldout_note"]
        else f"{d['near_heldout']} ({_percent(d['near_heldout_share'])}); highest similarity "
        + ("-" if d["max_heldout_similarity"] is None else f"{d['max_heldout_similarity']:.3f}")
    )
    rows = [
        ["puzzles", stats["puzzles"]],
        ["solved puzzles", stats["solved_puzzles"]],
        ["attempts", stats["attempts"]],
        ["verified solutions", stats["verified_solutions"]],
        ["distinct canonical skeletons", d["distinct_skeletons"]],
        [
            f"near-copies of earlier rounds (similarity >= {d['threshold']})",
            f"{d['near_copies_of_earlier_rounds']} of {d['compared_with_earlier_rounds']} "
            f"({_percent(d['near_copy_share'])})",
        ],
        [f"near held-out puzzles (similarity >= {d['threshold']})", heldout],
        ["proposals removed by the filters", ", ".join(f"{k} {v}" for k, v in removed.items()) or "-"],
    ]
    return _table(None, rows, "summary-table")


class _Highlighter:
    """Pygments with one shared formatter, so the page carries its CSS once."""

    def __init__(self) -> None:
        self.formatter = HtmlFormatter(cssclass="hl")
        self.lexer = PythonLexer()

    def __call__(self, source: str) -> str:
        return highlight(source, self.lexer, self.formatter)

    def css(self) -> str:
        return self.formatter.get_style_defs(".hl")


def _puzzle_rows(
    pairs: list[tuple[PuzzleRow, SolutionRow]], limit: int, code: _Highlighter
) -> tuple[str, list[PuzzleRow]]:
    """Table rows of the verified puzzles (id order, at most `limit`), each with its shortest distinct solutions."""
    solutions: dict[int, list[str]] = {}
    puzzles: dict[int, PuzzleRow] = {}
    for puzzle, solution in pairs:  # shortest first within a puzzle
        puzzles.setdefault(puzzle.id, puzzle)
        found = solutions.setdefault(puzzle.id, [])
        if solution.source not in found:
            found.append(solution.source)
    shown = list(puzzles.values())[:limit]
    rows = []
    for p in shown:
        sols = solutions[p.id]
        rate = 0.0 if p.solve_rate is None else p.solve_rate
        listed = "".join(code(s) for s in sols[:SOLUTIONS_SHOWN])
        rows.append(
            f'<tr class="puzzle-row" data-round="{p.round}" data-type="{html.escape(p.answer_type)}" '
            f'data-rate="{rate:.6f}"><td>{p.id}</td><td>{p.round}</td><td>{html.escape(p.answer_type)}</td>'
            f"<td>{rate:.2f}<br><small>{p.successes}/{p.attempts}</small></td>"
            f'<td><p class="about">{html.escape(puzzle_summary(p.source))}</p>{code(p.source)}'
            f"<details><summary>{min(len(sols), SOLUTIONS_SHOWN)} of {len(sols)} distinct verified solution(s), "
            f"shortest first</summary>{listed}</details></td></tr>"
        )
    return "".join(rows), shown


def _options(values: list[str], everything: str) -> str:
    options = [f'<option value="">{everything}</option>']
    options += [f'<option value="{html.escape(v)}">{html.escape(v)}</option>' for v in values]
    return "".join(options)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ddd; padding: .25em .5em;
  text-align: left; vertical-align: top; } th { background: #f3f3f3; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; } figure.plot { margin: 0; } figure.plot img { max-width: 100%; }
figcaption { font-size: .85em; color: #555; } .empty { color: #888; font-style: italic; }
.controls { display: flex; gap: 1em; flex-wrap: wrap; align-items: center; margin: .5em 0; position: sticky; top: 0;
  background: #fff; padding: .4em 0; } .about { margin: 0 0 .3em; color: #444; }
.hl pre { margin: .2em 0; padding: .4em; background: #f8f8f8; overflow-x: auto; font-size: .85em; }
details summary { cursor: pointer; font-size: .85em; color: #2171b5; }
"""

_SCRIPT = """
(function () {
  "use strict";
  const rows = Array.from(document.querySelectorAll("#puzzle-table tbody tr"));
  const text = document.getElementById("filter-text");
  const type = document.getElementById("filter-type");
  const round = document.getElementById("filter-round");
  const minRate = document.getElementById("filter-min-rate");
  const count = document.getElementById("shown-count");
  const haystacks = rows.map(function (row) { return row.textContent.toLowerCase(); });
  function apply() {
    const query = text.value.trim().toLowerCase();
    const least = parseFloat(minRate.value);
    let shown = 0;
    rows.forEach(function (row, i) {
      const keep = (!query || haystacks[i].includes(query)) && (!type.value || row.dataset.type === type.value)
        && (!round.value || row.dataset.round === round.value)
        && (isNaN(least) || parseFloat(row.dataset.rate) >= least);
      row.hidden = !keep;
      if (keep) { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length + " puzzles shown";
    return shown;
  }
  [text, type, round, minRate].forEach(function (control) {
    control.addEventListener("input", apply);
    control.addEventListener("change", apply);
  });
  const params = new URLSearchParams(window.location.search);
  if (params.has("q")) { text.value = params.get("q"); }
  if (params.has("type")) { type.value = params.get("type"); }
  if (params.has("round")) { round.value = params.get("round"); }
  if (params.has("min_rate")) { minRate.value = params.get("min_rate"); }
  const shown = apply();
  if (params.has("selftest")) {
    window.addEventListener("load", function () {
      const images = Array.from(document.querySelectorAll("figure.plot img"));
      const drawn = images.filter(function (image) { return image.complete && image.naturalWidth > 0; });
      const plots = " plots=" + drawn.length + "/" + images.length;
      document.title = "selftest shown=" + shown + " of " + rows.length + plots;
    });
  }
})();
"""


def render_report(run: RunFolder, stats: dict[str, Any], max_puzzles: int) -> str:
    """The whole page as one string."""
    code = _Highlighter()
    rows, shown = _puzzle_rows(run.corpus.verified_solutions(), max_puzzles, code)
    solved = stats["solved_puzzles"]
    cut = f" (the first {len(shown)} of {solved}; raise --max-puzzles for more)" if len(shown) < solved else ""
    plots = [
        _figure("pass-at-k", "Held-out pass@k per round, with 95% intervals", plot_pass_at_k(run.metrics)),
        _figure("growth", "Corpus growth per round", plot_growth(stats)),
        _figure("solve-rates", "How often the model solved its own puzzles", plot_solve_rates(stats)),
        _figure("answer-types", "Answer types of the puzzles", plot_answer_types(stats)),
        _figure("funnel", "Proposals left after each filter step", plot_funnel(run.filters)),
    ]
    types = sorted({p.answer_type for p in shown})
    rounds = sorted({str(p.round) for p in shown}, key=int)
    title = f"puzzleloop report: {run.path.resolve().name}"
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><link rel="icon" href="data:,">
<style>{_STYLE}{code.css()}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>Run folder <code>{html.escape(str(run.path))}</code>, report written {made}.</p>
<h2>Summary</h2>{_summary(stats)}
<h2>Plots</h2><div class="plots">{"".join(plots)}</div>
<h2>Rounds</h2>{_rounds_table(run.metrics)}
<h2>Verified puzzles</h2>
<p>Puzzles the model proposed and then solved at least once{html.escape(cut)}.</p>
<div class="controls">
<label>Search <input id="filter-text" type="search" placeholder="text in the puzzle or a solution"></label>
<label>Answer type <select id="filter-type">{_options(types, "all")}</select></label>
<label>Round <select id="filter-round">{_options(rounds, "all")}</select></label>
<label>Solve rate at least <input id="filter-min-rate" type="number" min="0" max="1" step="0.05"></label>
<span id="shown-count"></span>
</div>
<table id="puzzle-table"><thead><tr><th>id</th><th>round</th><th>answer type</th><th>solve rate</th>
<th>puzzle and solutions</th></tr></thead><tbody>{rows}</tbody></table>
<script>{_SCRIPT}</script>
</body></html>
"""


def build_report(run_dir: Path | str, max_puzzles: int = 1000) -> Path:
    """Write RUN/report.html (atomically) and return its path."""
    with open_run(run_dir) as run:
        index, note = heldout_index(run)
        page = render_report(run, corpus_stats(run, index, note), max_puzzles)
        target = run.path / REPORT_FILE
    write_text_atomic(target, page)
    return target


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder")
    parser.add_argument(
        "--max-puzzles",
        type=positive_int,
        default=1000,
        help="verified puzzles listed in the table (default: %(default)s)",
    )


def run_report(args: argparse.Namespace) -> int:
    target = build_report(args.run, args.max_puzzles)
    print(f"wrote {target}")
    return 0
