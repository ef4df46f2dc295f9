"""Puzzle data: the pinned P3 files (found locally or downloaded and verified), its named sets,
users' held-out files and the project's seed puzzles.

P3 is located in this order: a path the caller gives; ``$PUZZLELOOP_P3_DIR``; ``../shared/p3`` beside the
checkout; else the pinned files are downloaded into ``$PUZZLELOOP_CACHE`` (default ``~/.cache/puzzleloop``)
and checked against their sha256. Every problem is a :class:`DataError` naming the file, entry and field.
"""

from __future__ import annotations

import ast
import hashlib
import http.client
import json
import os
import tempfile
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from puzzleloop.puzzles import PuzzleError, canonical_hash, parse_function, parse_puzzle, solution_header

P3_COMMIT = "017f488b8f6320b8220cda38e78f2f72a36eab20"
P3_BASE_URL = f"https://raw.githubusercontent.com/microsoft/PythonProgrammingPuzzles/{P3_COMMIT}/puzzles"
P3_FILES: Mapping[str, str] = {
    "puzzles.json": "d3b61141ea0d935c389d602867ba2c154db1854df9ff4402daaa947ad880d8bb",
    "split.json": "1f3d55c30dcb23036a0008763a21fe3da1765879523a33585593f9daa5f2e824",
}
MAX_DOWNLOAD_BYTES = 64 << 20
"""A download larger than this is refused (puzzles.json is 1.9 MB) so a bad server cannot fill the disk."""

REPO_ROOT = Path(__file__).resolve().parents[2]
BESIDE_CHECKOUT = REPO_ROOT.parent / "shared" / "p3"
DEFAULT_SEEDS = REPO_ROOT / "seed_puzzles" / "puzzles.yaml"

NAMED_SETS: tuple[str, ...] = ("p3-test228", "p3-test-all", "p3-train155", "p3-dev", "p3-train-rest", "p3-tutorial")
TUTORIAL_NAMES = tuple(f"Tutorial{k}:0" for k in range(1, 6))


class DataError(ValueError):
    """Missing, corrupt or malformed puzzle data; the message names the file, entry and field."""


@dataclass(frozen=True)
class P3Instance:
    """One puzzle instance in P3's format (``name`` like ``"Study_1:0"``)."""

    name: str
    sat: str
    ans_type: str
    sol_header: str
    sol_bodies: tuple[str, ...]
    module: str

    @property
    def reference_solution(self) -> str | None:
        """The first reference solution as a whole ``def sol(...)``, or None when P3 gives none."""
        return f"{self.sol_header}\n{self.sol_bodies[0]}" if self.sol_bodies else None


@dataclass(frozen=True)
class SeedPuzzle:
    """A puzzle written by this project, with a reference solution."""

    name: str
    sat: str
    sol: str
    answer_type: str


def cache_dir() -> Path:
    """Where downloads go: ``$PUZZLELOOP_CACHE`` or ``~/.cache/puzzleloop``."""
    return Path(os.environ.get("PUZZLELOOP_CACHE") or Path.home() / ".cache" / "puzzleloop")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _download_verified(url: str, target: Path, expected_sha256: str) -> None:
    """Fetch url into a temp file beside target, check size and sha256, then rename it into place."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(1 << 16):
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise DataError(f"{url}: larger than {MAX_DOWNLOAD_BYTES:,} bytes; refused")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != expected_sha256:
            raise DataError(
                f"{url}: sha256 {digest.hexdigest()} does not match the pinned {expected_sha256} "
                f"(corrupt or changed file; nothing was saved to {target.parent})"
            )
        os.replace(tmp, target)
    except DataError:
        raise
    except (OSError, ValueError, http.client.HTTPException) as e:
        raise DataError(
            f"could not download {url}: {e}. Point $PUZZLELOOP_P3_DIR (or the p3 path option) "
            "at a folder holding puzzles.json and split.json"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


def download_p3(dest: Path, base_url: str | None = None, files: Mapping[str, str] = P3_FILES) -> Path:
    """Make dest hold the pinned files (name -> sha256), downloading those missing or not matching.

    base_url defaults to ``$PUZZLELOOP_P3_URL`` or the pinned GitHub commit; any urllib URL works
    (``file://`` or a local server in tests).
    """
    base = (base_url or os.environ.get("PUZZLELOOP_P3_URL") or P3_BASE_URL).rstrip("/")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the download folder {dest}: {e}") from None
    for filename, expected in files.items():
        target = dest / filename
        if not (target.is_file() and _sha256(target) == expected):
            _download_verified(f"{base}/{filename}", target, expected)
    return dest


def _checked_dir(path: Path, origin: str) -> Path:
    if not path.is_dir():
        raise DataError(f"P3 folder {path} ({origin}) does not exist or is not a folder")
    for filename in P3_FILES:
        if not (path / filename).is_file():
            raise DataError(f"P3 folder {path} ({origin}) has no {filename}")
    return path


def find_p3_dir(path: str | Path | None = None) -> Path:
    """The folder holding P3's puzzles.json and split.json, by the resolution order in the module doc."""
    if path is not None:
        return _checked_dir(Path(path), "given path")
    if env := os.environ.get("PUZZLELOOP_P3_DIR"):
        return _checked_dir(Path(env), "$PUZZLELOOP_P3_DIR")
    if all((BESIDE_CHECKOUT / f).is_file() for f in P3_FILES):
        return BESIDE_CHECKOUT
    return download_p3(cache_dir() / "p3" / P3_COMMIT[:12])


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path}: {e}") from None


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise DataError(f"{where}: malformed JSON: nested too deeply") from None


def _field(entry: dict, field: str, kind: type, where: str) -> Any:
    if field not in entry:
        raise DataError(f"{where}: missing field {field!r}")
    value = entry[field]
    if not isinstance(value, kind) or (kind is str and not value.strip()):
        qualifier = "non-empty " if kind is str else ""
        raise DataError(
            f"{where}: field {field!r} must be a {qualifier}{kind.__name__}, "
            f"got {type(value).__name__} {str(value)[:40]!r}"
        )
    return value


def _string_tuple(entry: dict, field: str, where: str) -> tuple[str, ...]:
    values = _field(entry, field, list, where) if field in entry else []
    for k, value in enumerate(values):
        if not isinstance(value, str):
            raise DataError(f"{where}: field {field!r}[{k}] must be a str, got {type(value).__name__}")
    return tuple(values)


def _entries(data: Any, where: str) -> list[dict]:
    if not isinstance(data, list) or not data:
        raise DataError(f"{where}: expected a non-empty list of puzzle objects, got {type(data).__name__}")
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise DataError(f"{where}: entry {i} must be an object, got {type(entry).__name__}")
    return data


def _unique(instances: list[P3Instance], where: str) -> list[P3Instance]:
    seen: set[str] = set()
    for instance in instances:
        if instance.name in seen:
            raise DataError(f"{where}: puzzle name {instance.name!r} occurs twice")
        seen.add(instance.name)
    return instances


def load_p3(path: str | Path | None = None) -> list[P3Instance]:
    """All 1,715 instances of P3's puzzles.json, in file order."""
    file = find_p3_dir(path) / "puzzles.json"
    instances = []
    for i, entry in enumerate(_entries(_parse_json(_read_text(file), str(file)), str(file))):
        where = f"{file}: entry {i}"
        name = _field(entry, "name", str, where)
        where = f"{file}: entry {i} ({name})"
        instances.append(
            P3Instance(
                name=name,
                sat=_field(entry, "sat", str, where),
                ans_type=_field(entry, "ans_type", str, where),
                sol_header=_field(entry, "sol_header", str, where),
                sol_bodies=_string_tuple(entry, "sol_bodies", where),
                module=_field(entry, "module", str, where),
            )
        )
    return _unique(instances, str(file))


def load_split(path: str | Path | None = None) -> dict[str, list[str]]:
    """P3's split.json: {"train": 155 class names, "test": 228 class names}."""
    file = find_p3_dir(path) / "split.json"
    data = _parse_json(_read_text(file), str(file))
    if not isinstance(data, dict):
        raise DataError(f"{file}: expected an object with 'train' and 'test', got {type(data).__name__}")
    for key in ("train", "test"):
        names = data.get(key)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DataError(f"{file}: field {key!r} must be a list of class names")
    return {key: list(names) for key, names in data.items()}


def class_of(instance_name: str) -> str:
    """A P3 puzzle class from an instance name (`Class:index`), the unit P3's splits are made of."""
    return instance_name.rsplit(":", 1)[0]


def named_set(name: str, path: str | Path | None = None) -> list[P3Instance]:
    """One of NAMED_SETS: p3-test228 (":0" of each test class, split order), p3-test-all (every instance
    of the test classes), p3-train155 (first instance of each train class), p3-tutorial (Tutorial1..5), and
    p3-dev, the development set for choosing methods: every instance of the classes in neither split (tutorials
    aside), then each train class's first later instance no longer than test228's longest puzzle; it holds no
    test class and no seed (first train instance); p3-train-rest, the train classes' other instances in the same
    size range, which belong to none of those sets (more training pairs)."""
    if name not in NAMED_SETS:
        raise DataError(f"unknown puzzle set {name!r}; known sets: {', '.join(NAMED_SETS)}")
    folder = find_p3_dir(path)
    instances = load_p3(folder)
    if name == "p3-tutorial":
        wanted: list[str] = list(TUTORIAL_NAMES)
    else:
        by_class: dict[str, list[str]] = {}
        for instance in instances:
            by_class.setdefault(class_of(instance.name), []).append(instance.name)
        split = load_split(folder)
        classes = split["train" if name in ("p3-train155", "p3-dev", "p3-train-rest") else "test"]
        missing = [c for c in classes if c not in by_class]
        if missing:
            raise DataError(f"{folder / 'puzzles.json'}: no instance of split class {missing[0]!r}")
        if name in ("p3-dev", "p3-train-rest"):
            sats = {instance.name: instance.sat for instance in instances}
            longest_test = max((len(sats[f"{c}:0"]) for c in split["test"] if f"{c}:0" in sats), default=0)
            # test228's size range: a few later instances carry inputs of thousands of lines
            later = {c: [n for n in by_class[c][1:] if len(sats[n]) <= longest_test] for c in classes}
            if name == "p3-dev":
                in_split = set(split["train"]) | set(split["test"]) | {class_of(n) for n in TUTORIAL_NAMES}
                wanted = [n for c, names in by_class.items() if c not in in_split for n in names]
                wanted += [n for c in classes for n in later[c][:1]]
            else:
                wanted = [n for c in classes for n in later[c][1:]]
        elif name == "p3-test228":
            wanted = [f"{c}:0" for c in classes]
        elif name == "p3-train155":
            wanted = [by_class[c][0] for c in classes]
        else:
            wanted = [n for c in classes for n in by_class[c]]
    by_name = {instance.name: instance for instance in instances}
    for instance_name in wanted:
        if instance_name not in by_name:
            raise DataError(f"{folder / 'puzzles.json'}: set {name} needs {instance_name!r}, which is missing")
    return [by_name[n] for n in wanted]


def _instance_from_record(record: dict, where: str, module: str) -> P3Instance:
    name = _field(record, "name", str, where)
    where = f"{where} ({name})"
    sat = _field(record, "sat", str, where)
    try:
        puzzle = parse_puzzle(sat, name)
    except PuzzleError as e:
        raise DataError(f"{where}: field 'sat': {e}") from None
    ans_type = _field(record, "ans_type", str, where) if "ans_type" in record else puzzle.answer_type
    if ans_type != puzzle.answer_type:
        raise DataError(f"{where}: field 'ans_type' is {ans_type!r} but the sat annotates {puzzle.answer_type!r}")
    return P3Instance(
        name=name,
        sat=sat,
        ans_type=ans_type,
        sol_header=_field(record, "sol_header", str, where) if "sol_header" in record else solution_header(puzzle),
        sol_bodies=_string_tuple(record, "sol_bodies", where),
        module=_field(record, "module", str, where) if "module" in record else module,
    )


def load_puzzle_file(path: Path) -> list[P3Instance]:
    """A user's held-out puzzles: a JSON list, or JSON lines, of objects with at least "name" and "sat"
    (P3's other fields optional; ans_type and sol_header are derived from the sat when absent)."""
    path = Path(path)
    text = _read_text(path)
    if not text.strip():
        raise DataError(f"{path}: the file is empty")
    if text.lstrip().startswith("["):
        located = [
            (f"{path}: entry {i}", entry) for i, entry in enumerate(_entries(_parse_json(text, str(path)), str(path)))
        ]
    else:
        located = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                where = f"{path}:{lineno}"
                entry = _parse_json(line, where)
                if not isinstance(entry, dict):
                    raise DataError(f"{where}: expected a JSON object, got {type(entry).__name__}")
                located.append((where, entry))
    return _unique([_instance_from_record(entry, where, path.name) for where, entry in located], str(path))


def load_heldout(spec: str, p3_path: str | Path | None = None) -> list[P3Instance]:
    """A held-out set given as one of NAMED_SETS or as the path of a puzzle file."""
    if spec in NAMED_SETS:
        return named_set(spec, p3_path)
    if not Path(spec).is_file():
        raise DataError(f"held-out set {spec!r} is neither a named set ({', '.join(NAMED_SETS)}) nor a file")
    return load_puzzle_file(Path(spec))


_SEED_FIELDS = ("name", "sat", "sol")


def _seed_from_entry(entry: dict, where: str) -> SeedPuzzle:
    unknown = sorted(set(entry) - set(_SEED_FIELDS), key=str)
    if unknown:
        raise DataError(f"{where}: unknown field {unknown[0]!r} (allowed: {', '.join(_SEED_FIELDS)})")
    name = _field(entry, "name", str, where)
    where = f"{where} ({name})"
    sat, sol = _field(entry, "sat", str, where), _field(entry, "sol", str, where)
    try:
        puzzle = parse_puzzle(sat, f"{where}, field 'sat'")
        sat_args = parse_function(sat).args
        sol_func = parse_function(sol, f"{where}, field 'sol'")
    except PuzzleError as e:
        raise DataError(str(e)) from None
    if puzzle.func_name != "sat" or sol_func.name != "sol":
        raise DataError(
            f"{where}: the functions must be named 'sat' and 'sol', not {puzzle.func_name!r} and {sol_func.name!r}"
        )
    sol_args = sol_func.args
    wanted = {a.arg: ast.dump(d) for a, d in zip(sat_args.args[1:], sat_args.defaults, strict=True)}
    given = {a.arg: ast.dump(d) for a, d in zip(reversed(sol_args.args), reversed(sol_args.defaults), strict=False)}
    plain = not (sol_args.posonlyargs or sol_args.vararg or sol_args.kwonlyargs or sol_args.kwarg)
    if not plain or len(sol_args.args) != len(given) or given != wanted:
        raise DataError(
            f"{where}, field 'sol': its parameters must repeat the sat's extra parameters "
            f"with the same defaults: {solution_header(puzzle)}"
        )
    return SeedPuzzle(name, sat, sol, puzzle.answer_type)


def load_seed_puzzles(path: Path | None = None) -> list[SeedPuzzle]:
    """The project's seed puzzles: a YAML list of {name, sat, sol}; default ``seed_puzzles/puzzles.yaml``
    in the checkout, or ``$PUZZLELOOP_SEEDS``. Names and canonical sats must be unique."""
    path = Path(path or os.environ.get("PUZZLELOOP_SEEDS") or DEFAULT_SEEDS)
    try:
        data = yaml.safe_load(_read_text(path))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise DataError(f"{path}: malformed YAML{where}: {problem}") from None
    seeds = [_seed_from_entry(entry, f"{path}: entry {i}") for i, entry in enumerate(_entries(data, str(path)))]
    names: set[str] = set()
    hashes: dict[str, str] = {}
    for seed in seeds:
        if seed.name in names:
            raise DataError(f"{path}: seed name {seed.name!r} occurs twice")
        names.add(seed.name)
        digest = canonical_hash(seed.sat, seed.name)
        if digest in hashes:
            raise DataError(
                f"{path}: seed {seed.name!r} is the same puzzle as {hashes[digest]!r} up to names and layout"
            )
        hashes[digest] = seed.name
    return seeds
