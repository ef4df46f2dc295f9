"""The HTML report: one self-contained page, checked as text and in headless Chromium (Debian's `chromium`).

The browser tests load the page from disk with networking features off, read console messages from Chromium's
log, use the page's `?selftest=1` hook (it writes the rows shown and plots decoded into the title) to check the
filters, and keep a screenshot in pytest's tmp folder. scripts/install_browser.sh installs Chromium.
"""

from __future__ import annotations

import argparse
import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.helpers import build_run_folder

from puzzleloop.corpus import Corpus
from puzzleloop.files import write_jsonl_atomic
from puzzleloop.inspection import RunFolderError
from puzzleloop.report import REPORT_FILE, add_report_arguments, build_report, run_report

CHROMIUM = Path("/usr/bin/chromium")
PLOTS = ("pass-at-k", "growth", "solve-rates", "answer-types", "funnel")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (run scripts/install_browser.sh)"
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run_folder(tmp_path_factory.mktemp("report") / "run")


@pytest.fixture(scope="module")
def report(run_dir: Path) -> Path:
    return build_report(run_dir)


def _chromium(tmp_path: Path, url: str, *flags: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *flags, url,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def _console(result: subprocess.CompletedProcess[str]) -> list[str]:
    """Console messages (Chromium logs every level, errors and uncaught exceptions included, as CONSOLE)."""
    return [line for line in result.stderr.splitlines() if ":CONSOLE" in line]


def _selftest_title(tmp_path: Path, page: Path, query: str = "") -> str:
    result = _chromium(tmp_path, f"{page.as_uri()}?selftest=1{query}", "--dump-dom")
    assert _console(result) == []
    match = re.search(r"<title>(.*?)</title>", result.stdout)
    assert match, result.stdout[:500]
    return match.group(1)


def _verified_puzzles(run_dir: Path) -> list:
    with Corpus(run_dir / "corpus.sqlite", create=False) as corpus:
        return [p for p in corpus.puzzles() if p.successes]


# -- the page as text ----------------------------------------------------------------------------------


def test_report_is_one_self_contained_file(report: Path, run_dir: Path) -> None:
    page = report.read_text()
    assert report == run_dir / REPORT_FILE
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import""", page)
    for plot in PLOTS:
        match = re.search(rf'id="plot-{plot}"><img alt="[^"]*" src="data:image/png;base64,([^"]+)"', page)
        assert match, f"plot {plot} missing"
        assert base64.b64decode(match.group(1)).startswith(b"\x89PNG\r\n\x1a\n")
    assert page.count('class="puzzle-row"') == len(_verified_puzzles(run_dir))
    assert "near-copies of earlier rounds" in page and 'class="hl"' in page


def test_code_is_escaped(report: Path) -> None:
    page = report.read_text()
    assert "0 &lt;= x &lt; m" in re.sub(r"<[^>]+>", "", page)  # `0 <= x < m` of a seed puzzle, as text
    assert "<= x <" not in page


def test_report_without_evaluations_says_so(run_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(run_dir, tmp_path / "run"))
    (copy / "metrics.jsonl").unlink()
    page = build_report(copy).read_text()
    assert "no held-out evaluation has finished yet" in page
    assert re.search(r'id="plot-pass-at-k"><p class="empty">no data yet', page)


def _baseline_only_run(folder: Path) -> Path:
    """A run stopped after its baseline evaluation: an empty corpus, one metrics line, no config.yaml."""
    Corpus(folder / "corpus.sqlite").close()
    write_jsonl_atomic(folder / "metrics.jsonl", [{"round": 0, "pass@1": 0.0, "pass@1_ci95": [0.0, 0.0]}])
    return folder


def test_report_of_a_run_with_only_its_baseline(tmp_path: Path) -> None:
    page = build_report(_baseline_only_run(tmp_path / "run")).read_text()
    assert 'id="plot-pass-at-k"><img' in page and page.count('<p class="empty">no data yet') == len(PLOTS) - 1
    assert 'class="puzzle-row"' not in page


def test_report_cli_and_errors(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="puzzleloop report")
    add_report_arguments(parser)
    copy = Path(shutil.copytree(run_dir, tmp_path / "run"))
    assert run_report(parser.parse_args([str(copy), "--max-puzzles", "2"])) == 0
    assert f"wrote {copy / REPORT_FILE}" in capsys.readouterr().out
    page = (copy / REPORT_FILE).read_text()
    assert page.count('class="puzzle-row"') == 2 and "raise --max-puzzles for more" in page
    with pytest.raises(RunFolderError, match="no such run folder"):
        run_report(parser.parse_args([str(tmp_path / "missing")]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError, match="is empty"):
        build_report(tmp_path / "empty")


# -- in the browser ------------------------------------------------------------------------------------


@needs_chromium
def test_console_check_catches_errors(tmp_path: Path) -> None:
    """The console check itself: a page with an uncaught error must be caught, or the tests below prove nothing."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
                    "<script>missingFunction();</script></body></html>")  # fmt: skip
    messages = _console(_chromium(tmp_path, page.as_uri(), "--dump-dom"))
    assert any("missingFunction is not defined" in m for m in messages)


@needs_chromium
def test_page_loads_without_console_messages_and_draws_every_plot(report: Path, run_dir: Path, tmp_path: Path) -> None:
    count = len(_verified_puzzles(run_dir))
    assert _selftest_title(tmp_path, report) == f"selftest shown={count} of {count} plots={len(PLOTS)}/{len(PLOTS)}"


@needs_chromium
def test_page_of_an_empty_corpus_loads(tmp_path: Path) -> None:
    report = build_report(_baseline_only_run(tmp_path / "run"))
    assert _selftest_title(tmp_path, report) == "selftest shown=0 of 0 plots=1/1"


@needs_chromium
def test_filters_work_in_the_browser(report: Path, run_dir: Path, tmp_path: Path) -> None:
    puzzles = _verified_puzzles(run_dir)
    total = len(puzzles)
    ints = sum(1 for p in puzzles if p.answer_type == "int")
    late_and_easy = sum(1 for p in puzzles if p.round == 2 and p.solve_rate >= 0.9)
    cases = {
        "&type=int": ints,
        "&q=KNIGHT": 1,  # case-insensitive, over the puzzle text
        "&round=2&min_rate=0.9": late_and_easy,
        "&q=no+such+text+anywhere": 0,
    }
    for query, expected in cases.items():
        assert _selftest_title(tmp_path, report, query).startswith(f"selftest shown={expected} of {total} "), query
    assert 0 < late_and_easy < total and 1 < ints < total


@needs_chromium
def test_screenshot(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    result = _chromium(tmp_path, f"{report.as_uri()}?type=int", "--hide-scrollbars", "--window-size=1280,2400",
                       f"--screenshot={shot}")  # fmt: skip
    assert _console(result) == []
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 50_000
    print(f"report screenshot: {shot}")
