"""Tests of data loading: the verified download (file:// and a local HTTP server, no network), the P3
folder resolution order, malformed and missing files, named sets, held-out files and seed puzzles."""

import functools
import hashlib
import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.helpers import needs_p3

from puzzleloop import data
from puzzleloop.data import (
    NAMED_SETS,
    DataError,
    P3Instance,
    download_p3,
    find_p3_dir,
    load_heldout,
    load_p3,
    load_puzzle_file,
    load_seed_puzzles,
    load_split,
    named_set,
)

SHARED_P3 = data.BESIDE_CHECKOUT

ENTRY = {
    "name": "Tiny:0",
    "sat": "def sat(x: int, n=3):\n    return x == n",
    "ans_type": "int",
    "sol_header": "def sol(n=3):",
    "sol_bodies": ["    return n"],
    "module": "tiny.py",
}


def write_p3(folder: Path, puzzles: object, split: object = None) -> Path:
    """A small P3-shaped folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "puzzles.json").write_text(puzzles if isinstance(puzzles, str) else json.dumps(puzzles))
    (folder / "split.json").write_text(json.dumps(split if split is not None else {"train": [], "test": ["Tiny"]}))
    return folder


def pins(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in data.P3_FILES}


@pytest.fixture
def served(tmp_path):
    """A temp folder served over HTTP on 127.0.0.1; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No P3 folder beside the checkout, no env overrides, a temp cache."""
    monkeypatch.setattr(data, "BESIDE_CHECKOUT", tmp_path / "nothing-here")
    for var in ("PUZZLELOOP_P3_DIR", "PUZZLELOOP_P3_URL", "PUZZLELOOP_SEEDS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PUZZLELOOP_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_download_over_http_verifies_and_leaves_no_temp_files(tmp_path, served):
    folder, url = served
    write_p3(folder, [ENTRY])
    dest = download_p3(tmp_path / "dest", url, pins(folder))
    assert sorted(p.name for p in dest.iterdir()) == ["puzzles.json", "split.json"]
    assert load_p3(dest)[0].name == "Tiny:0"


def test_sha256_mismatch_is_an_error_and_saves_nothing(tmp_path, served):
    folder, url = served
    write_p3(folder, [ENTRY])
    wrong = dict(pins(folder), **{"puzzles.json": "0" * 64})
    with pytest.raises(DataError, match=r"/puzzles.json: sha256 [0-9a-f]{64} does not match the pinned 0{64}"):
        download_p3(tmp_path / "dest", url, wrong)
    assert not (tmp_path / "dest" / "puzzles.json").exists()
    assert [p.name for p in (tmp_path / "dest").iterdir()] == []  # puzzles.json comes first: nothing kept


def test_corrupt_cached_file_is_fetched_again(tmp_path):
    source = write_p3(tmp_path / "source", [ENTRY])
    dest = download_p3(tmp_path / "dest", source.as_uri(), pins(source))
    (dest / "puzzles.json").write_text("[]")
    download_p3(dest, source.as_uri(), pins(source))
    assert pins(dest) == pins(source)


def test_missing_remote_file_is_a_clear_error(tmp_path, served):
    _, url = served
    with pytest.raises(DataError, match=r"could not download http://127\.0\.0\.1:\d+/puzzles.json: .*404"):
        download_p3(tmp_path / "dest", url, {"puzzles.json": "0" * 64})
    assert list((tmp_path / "dest").iterdir()) == []


def test_oversized_download_is_refused(tmp_path, monkeypatch):
    source = write_p3(tmp_path / "source", [ENTRY] * 50)
    monkeypatch.setattr(data, "MAX_DOWNLOAD_BYTES", 1000)
    with pytest.raises(DataError, match="larger than 1,000 bytes"):
        download_p3(tmp_path / "dest", source.as_uri(), pins(source))
    assert list((tmp_path / "dest").iterdir()) == []


@needs_p3
def test_find_p3_dir_falls_back_to_the_pinned_download_then_uses_the_cache(isolated, monkeypatch):
    monkeypatch.setenv("PUZZLELOOP_P3_URL", SHARED_P3.as_uri())
    found = find_p3_dir()
    assert found == isolated / "cache" / "p3" / data.P3_COMMIT[:12]
    assert pins(found) == dict(data.P3_FILES)
    monkeypatch.setenv("PUZZLELOOP_P3_URL", (isolated / "gone").as_uri())  # cached: no fetch needed
    assert find_p3_dir() == found


def test_resolution_order_given_path_then_env(isolated, monkeypatch):
    given = write_p3(isolated / "given", [ENTRY])
    from_env = write_p3(isolated / "env", [dict(ENTRY, name="Tiny:1")])
    monkeypatch.setenv("PUZZLELOOP_P3_DIR", str(from_env))
    assert find_p3_dir(given) == given
    assert find_p3_dir() == from_env
    assert load_p3()[0].name == "Tiny:1"
    monkeypatch.delenv("PUZZLELOOP_P3_DIR")
    beside = write_p3(isolated / "beside", [ENTRY])
    monkeypatch.setattr(data, "BESIDE_CHECKOUT", beside)
    assert find_p3_dir() == beside


def test_missing_files_and_folders_are_named(isolated, monkeypatch):
    with pytest.raises(DataError, match=r"P3 folder .*/nope \(given path\) does not exist"):
        find_p3_dir(isolated / "nope")
    half = isolated / "half"
    half.mkdir()
    (half / "puzzles.json").write_text("[]")
    monkeypatch.setenv("PUZZLELOOP_P3_DIR", str(half))
    with pytest.raises(DataError, match=r"P3 folder .*/half \(\$PUZZLELOOP_P3_DIR\) has no split.json"):
        load_p3()


@pytest.mark.parametrize(
    ("puzzles", "problem"),
    [
        ('[{"name": "A:0",', r"puzzles.json: malformed JSON at line 1 column 17"),
        ("{}", r"puzzles.json: expected a non-empty list of puzzle objects, got dict"),
        ("[]", r"expected a non-empty list"),
        ([ENTRY, 7], r"puzzles.json: entry 1 must be an object, got int"),
        ([{k: v for k, v in ENTRY.items() if k != "sat"}], r"entry 0 \(Tiny:0\): missing field 'sat'"),
        ([dict(ENTRY, sat=5)], r"entry 0 \(Tiny:0\): field 'sat' must be a non-empty str, got int"),
        ([dict(ENTRY, name="")], r"entry 0: field 'name' must be a non-empty str"),
        ([dict(ENTRY, sol_bodies=["ok", 3])], r"field 'sol_bodies'\[1\] must be a str, got int"),
        ([ENTRY, ENTRY], r"puzzle name 'Tiny:0' occurs twice"),
        ("[" * 100_000, r"malformed JSON"),
    ],
)
def test_malformed_puzzles_json_names_file_entry_and_field(tmp_path, puzzles, problem):
    folder = write_p3(tmp_path / "p3", puzzles)
    with pytest.raises(DataError, match=problem):
        load_p3(folder)


def test_malformed_split_is_named(tmp_path):
    folder = write_p3(tmp_path / "p3", [ENTRY], {"train": [], "test": "Tiny"})
    with pytest.raises(DataError, match=r"split.json: field 'test' must be a list of class names"):
        load_split(folder)
    folder = write_p3(tmp_path / "p3", [ENTRY], {"train": [], "test": ["Tiny", "Other"]})
    with pytest.raises(DataError, match=r"no instance of split class 'Other'"):
        named_set("p3-test228", folder)


def test_named_set_on_small_data_and_unknown_name(tmp_path):
    names = ("Tiny:0", "Tiny:1", "Solo:3", "Solo:4", "Solo:5", "Free:0", "Free:1", "One:0")
    entries = [dict(ENTRY, name=n) for n in names]
    folder = write_p3(tmp_path / "p3", entries, {"train": ["Solo", "One"], "test": ["Tiny"]})
    assert [i.name for i in named_set("p3-test-all", folder)] == ["Tiny:0", "Tiny:1"]
    assert [i.name for i in named_set("p3-train155", folder)] == ["Solo:3", "One:0"]
    assert [i.name for i in named_set("p3-dev", folder)] == ["Free:0", "Free:1", "Solo:4"]  # never a seed or test
    assert [i.name for i in named_set("p3-train-rest", folder)] == ["Solo:5"]  # neither a seed nor dev
    with pytest.raises(DataError, match=r"set p3-tutorial needs 'Tutorial1:0', which is missing"):
        named_set("p3-tutorial", folder)
    with pytest.raises(DataError, match="unknown puzzle set 'p3-test'; known sets: p3-test228"):
        named_set("p3-test", folder)


@needs_p3
def test_named_sets_on_the_real_data():
    sizes = {name: len(named_set(name)) for name in NAMED_SETS}
    assert sizes == {
        "p3-test228": 228,
        "p3-test-all": 1009,
        "p3-train155": 155,
        "p3-dev": 188,
        "p3-train-rest": 326,
        "p3-tutorial": 5,
    }
    dev_classes = {i.name.split(":")[0] for i in named_set("p3-dev")}
    assert dev_classes and not dev_classes & set(load_split()["test"])
    dev, seeds, rest = ({i.name for i in named_set(name)} for name in ("p3-dev", "p3-train155", "p3-train-rest"))
    assert not dev & seeds and not rest & (dev | seeds)
    assert {n.split(":")[0] for n in rest} <= set(load_split()["train"])
    split = load_split()
    test228 = named_set("p3-test228")
    assert [i.name for i in test228] == [f"{c}:0" for c in split["test"]]
    assert {i.name.split(":")[0] for i in named_set("p3-test-all")} == set(split["test"])
    assert all(i.reference_solution for i in named_set("p3-tutorial"))
    study = load_p3()[0]
    assert study == P3Instance(
        "Study_1:0", study.sat, "str", "def sol():", ("    return ('h' + 'o') * 1000",), "study.py"
    )
    assert study.reference_solution == "def sol():\n    return ('h' + 'o') * 1000"


def test_puzzle_file_json_list_and_jsonl(tmp_path):
    listed = tmp_path / "heldout.json"
    listed.write_text(json.dumps([{"name": "mine/1", "sat": "def f(s: str, n=2):\n    return len(s) == n"}]))
    [instance] = load_puzzle_file(listed)
    assert instance == P3Instance(
        "mine/1", "def f(s: str, n=2):\n    return len(s) == n", "str", "def sol(n=2):", (), "heldout.json"
    )
    assert instance.reference_solution is None
    lines = tmp_path / "heldout.jsonl"
    lines.write_text(json.dumps(ENTRY) + "\n\n" + json.dumps(dict(ENTRY, name="Tiny:1")) + "\n")
    assert [i.name for i in load_heldout(str(lines))] == ["Tiny:0", "Tiny:1"]
    assert load_heldout(str(lines))[0].reference_solution == "def sol(n=3):\n    return n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", r"heldout.jsonl: the file is empty"),
        ('{"name": "a", "sat": "def f(x: int): return x"}\n{"name": ', r"heldout.jsonl:2: malformed JSON at line 1"),
        ("7\n", r"heldout.jsonl:1: expected a JSON object, got int"),
        ("[1, 2]\n", r"heldout.jsonl: entry 0 must be an object, got int"),
        ('{"sat": "def f(x: int): return x"}', r"heldout.jsonl:1: missing field 'name'"),
        (
            '{"name": "a", "sat": "def f(x): return x"}',
            r"heldout.jsonl:1 \(a\): field 'sat': a: function 'f': answer parameter 'x' has no type",
        ),
        (
            '{"name": "a", "sat": "def f(x: int): return x", "ans_type": "str"}',
            r"field 'ans_type' is 'str' but the sat annotates 'int'",
        ),
        ('{"name": "a", "sat": "def f(x: int): return x"}\n' * 2, r"puzzle name 'a' occurs twice"),
    ],
)
def test_puzzle_file_errors(tmp_path, text, problem):
    path = tmp_path / "heldout.jsonl"
    path.write_text(text)
    with pytest.raises(DataError, match=problem):
        load_puzzle_file(path)


def test_heldout_spec_that_is_neither_set_nor_file(tmp_path):
    with pytest.raises(DataError, match=r"'p3-test999' is neither a named set \(p3-test228, .*\) nor a file"):
        load_heldout("p3-test999")


SEEDS = """
- name: square
  sat: |
    def sat(x: int, n=49):
        return x * x == n
  sol: |
    def sol(n=49):
        return 7
- name: hello
  sat: |
    def sat(s: List[str]):
        return s == ["hello"]
  sol: |
    def sol():
        return ["hello"]
"""


def test_seed_puzzles_load_with_answer_types(tmp_path, monkeypatch):
    path = tmp_path / "seeds.yaml"
    path.write_text(SEEDS)
    seeds = load_seed_puzzles(path)
    assert [(s.name, s.answer_type) for s in seeds] == [("square", "int"), ("hello", "List[str]")]
    assert seeds[0].sol == "def sol(n=49):\n    return 7\n"
    monkeypatch.setenv("PUZZLELOOP_SEEDS", str(path))
    assert load_seed_puzzles() == seeds


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("- name: square", "- name: hello"), r"seed name 'hello' occurs twice"),
        (("    def sol(n=49):", "    def sol(n=48):"), r"entry 0 \(square\), field 'sol': its parameters must repeat"),
        (("    def sol(n=49):", "    def sol(m=49):"), r"must repeat the sat's extra parameters .*def sol\(n=49\):"),
        (("    def sol(n=49):", "    def g(n=49):"), r"must be named 'sat' and 'sol', not 'sat' and 'g'"),
        (("def sat(x: int, n=49)", "def sat(x, n=49)"), r"entry 0 \(square\), field 'sat': .*has no type annot"),
        (("  sol: |\n    def sol():", "  sol: |\n    x = 1\n    def sol():"), r"entry 1 \(hello\), field 'sol': top"),
        (
            ("- name: hello", "- name: hello\n  notes: hi"),
            r"entry 1: unknown field 'notes' \(allowed: name, sat, sol\)",
        ),
        (("- name: hello", "- name: 5"), r"entry 1: field 'name' must be a non-empty str, got int"),
        (
            ("- name: square", "- name: square\n    bad: [indent"),
            r"seeds.yaml: malformed YAML at line 3 column 8: mapping values are not allowed here$",
        ),
    ],
)
def test_seed_puzzle_errors_name_file_entry_and_field(tmp_path, change, problem):
    path = tmp_path / "seeds.yaml"
    path.write_text(SEEDS.replace(*change))
    with pytest.raises(DataError, match=problem):
        load_seed_puzzles(path)


def test_duplicate_seed_puzzle_up_to_names_is_refused(tmp_path):
    path = tmp_path / "seeds.yaml"
    path.write_text(
        SEEDS
        + SEEDS.split("- name: hello")[0]
        .replace("square", "square2")
        .replace("x *", "y *")
        .replace("x ==", "y ==")
        .replace("(x:", "(y:")
    )
    with pytest.raises(DataError, match=r"seed 'square2' is the same puzzle as 'square'"):
        load_seed_puzzles(path)


def test_seed_file_missing_or_not_a_list(tmp_path):
    with pytest.raises(DataError, match=r"cannot read .*/absent.yaml"):
        load_seed_puzzles(tmp_path / "absent.yaml")
    path = tmp_path / "seeds.yaml"
    path.write_text("name: x\n")
    with pytest.raises(DataError, match=r"seeds.yaml: expected a non-empty list of puzzle objects, got dict"):
        load_seed_puzzles(path)
