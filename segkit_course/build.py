"""Exercise notebooks made from solution notebooks: one source, one command, checked by CI.

Instructors write only the solution notebooks, in ``solutions/``. The part of a code cell a
learner should write is marked as nbgrader marks it::

    def dice_loss(logits, target, smooth=1.0):
        \"\"\"... what to write: inputs, outputs, shapes ...\"\"\"
        ### BEGIN SOLUTION
        probs = torch.sigmoid(logits)
        ...
        ### END SOLUTION

(a whole cell may be tagged ``solution`` instead). Then:

``segkit-course build`` (``make exercises``)
    1. runs each solution notebook top to bottom in a fresh kernel, in ``solutions/``, with
       SEGKIT_STRICT_CHECKS=1 so that a check cell that fails fails the build, and saves it with
       its outputs;
    2. writes ``exercises/<same name>.ipynb``: every region replaced by ::

           # YOUR CODE HERE
           raise NotImplementedError(...)

       at the region's indentation, the rest of the cell untouched; runs it too (the check cells
       then say "not implemented yet") and saves it with its outputs.

    The files are deterministic, so a second build changes nothing: cell ids are kept (an
    exercise cell has its solution cell's id), execution timestamps and the kernel's Python
    version are dropped, consecutive stream outputs are merged, and the kernelspec is the one
    JupyterLab writes (so opening a notebook does not mark it modified). Widgets are frozen
    (``segkit_course.notebooks.freeze_widgets``): a progress bar is saved as the text of its final
    state, any other widget as its static fallback, and the widget state is dropped.

``segkit-course check``
    fails, naming the notebook and the cell, when ``exercises/`` is out of date with
    ``solutions/``, when a solution leaked into an exercise, or when a notebook was not run
    top to bottom by the build.

``segkit-course start``
    copies ``exercises/`` into ``work/`` (git-ignored) for a learner. It never replaces a file
    that is already there unless asked with ``overwrite=True`` (``--overwrite``), so updating the
    course never touches a learner's answers.

Why the regions sit inside functions: a stub that raises at the top level of a cell stops
JupyterLab's "Run All" there. Inside a function it raises only when the function is called,
and the check cells catch that (see ``segkit_course.checks``), so an exercise notebook runs top to
bottom. Top-level regions and whole ``solution`` cells still work: their exercise cell is
tagged ``raises-exception``, which nbval and nbclient accept.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from segkit.files import atomic_write

__all__ = [
    "SOLUTIONS_DIR", "EXERCISES_DIR", "WORK_DIR", "BEGIN_SOLUTION", "END_SOLUTION", "SOLUTION_TAG",
    "RAISES_TAG", "CODE_STUB", "MARKDOWN_STUB", "CourseError", "Problem", "strip_solutions",
    "make_exercise", "build", "check", "start", "add_arguments", "command",
]

SOLUTIONS_DIR = "solutions"
EXERCISES_DIR = "exercises"
WORK_DIR = "work"

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
SOLUTION_TAG = "solution"            # a whole cell is the solution
RAISES_TAG = "raises-exception"      # nbval / nbclient: this cell is expected to raise
CODE_STUB = ("# YOUR CODE HERE", 'raise NotImplementedError("write your code here, then delete this line")')
MARKDOWN_STUB = "YOUR ANSWER HERE"

# Cell metadata that changes on every run (timings) and means nothing to a reader.
_VOLATILE_CELL_METADATA = ("execution", "ExecuteTime")
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # nbformat 4.5
_LEAK_MIN_CHARS = 12  # shorter regions ("return x") are too common to call a copy a leak


class CourseError(ValueError):
    """A solution notebook cannot be turned into an exercise, or does not run; the message says where."""


@dataclass(frozen=True)
class Problem:
    """One thing `check` found: the notebook (path relative to the course root), the cell
    (1-based, counting every cell top to bottom, markdown included; None for the whole file)."""

    notebook: str
    cell: int | None
    message: str

    def __str__(self) -> str:
        where = self.notebook if self.cell is None else f"{self.notebook}, cell {self.cell}"
        return f"{where}: {self.message}"


# ----------------------------------------------------------------------------- solution regions


@dataclass(frozen=True)
class _Region:
    begin: int       # 0-based line of the BEGIN marker
    end: int         # 0-based line of the END marker
    indent: str      # the BEGIN marker's indentation, which the stub takes

    def body(self, lines: list[str]) -> list[str]:
        return lines[self.begin + 1:self.end]


def _is_marker(line: str, marker: str) -> bool:
    return line.strip().startswith(marker)


def _find_regions(source: str) -> list[_Region]:
    """The BEGIN/END SOLUTION regions of a cell. Raises ValueError naming the line for unbalanced markers."""
    regions, begin = [], None
    for number, line in enumerate(source.splitlines()):
        if _is_marker(line, BEGIN_SOLUTION):
            if begin is not None:
                raise ValueError(f"line {number + 1}: {BEGIN_SOLUTION} inside the region opened on line "
                                 f"{begin + 1}; close that one first with {END_SOLUTION}")
            begin = number
        elif _is_marker(line, END_SOLUTION):
            if begin is None:
                raise ValueError(f"line {number + 1}: {END_SOLUTION} without a {BEGIN_SOLUTION} before it")
            marker = source.splitlines()[begin]
            regions.append(_Region(begin, number, marker[: len(marker) - len(marker.lstrip())]))
            begin = None
    if begin is not None:
        raise ValueError(f"line {begin + 1}: {BEGIN_SOLUTION} without a matching {END_SOLUTION}")
    return regions


def strip_solutions(source: str, cell_type: str = "code") -> tuple[str, int, bool]:
    """Replace every solution region of one cell's source by the stub.

    Returns (new source, number of regions, whether the stub raises when the cell runs, i.e. a
    code region at the top level). Code regions become CODE_STUB at the marker's indentation;
    markdown regions become MARKDOWN_STUB. Lines outside the regions are kept as they are.
    """
    regions = _find_regions(source)
    if not regions:
        return source, 0, False
    lines = source.splitlines()
    out, position = [], 0
    for region in regions:
        out.extend(lines[position:region.begin])
        stub = CODE_STUB if cell_type == "code" else (MARKDOWN_STUB,)
        out.extend(region.indent + line for line in stub)
        position = region.end + 1
    out.extend(lines[position:])
    raises = cell_type == "code" and any(region.indent == "" for region in regions)
    return "\n".join(out), len(regions), raises


def _set_tags(cell, tags: list[str]) -> None:
    if tags:
        cell.metadata["tags"] = tags
    else:
        cell.metadata.pop("tags", None)


def make_exercise(solution, where: str = "the notebook"):
    """The exercise version of a solution notebook (a new NotebookNode; outputs cleared).

    Regions are stubbed, cells tagged ``solution`` replaced whole, and a code cell whose stub
    raises when run gets the ``raises-exception`` tag. Raises CourseError naming `where` and
    the cell for unbalanced markers.
    """
    exercise = copy.deepcopy(solution)
    for number, cell in enumerate(exercise.cells, start=1):
        tags = list(cell.metadata.get("tags", []))
        if SOLUTION_TAG in tags:
            tags.remove(SOLUTION_TAG)
            cell.source = "\n".join(CODE_STUB) if cell.cell_type == "code" else MARKDOWN_STUB
            raises = cell.cell_type == "code"
        else:
            try:
                cell.source, _, raises = strip_solutions(cell.source, cell.cell_type)
            except ValueError as error:
                raise CourseError(f"{where}, cell {number}: {error}.") from None
        if raises and RAISES_TAG not in tags:
            tags.append(RAISES_TAG)
        _set_tags(cell, tags)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return exercise


# ----------------------------------------------------------------------------- notebook files


_NEEDS_EXTRA = "segkit-course build/check need nbformat and nbclient: pip install -e '.[course]'"


def _nbformat():
    try:
        import nbformat
    except ImportError:  # a learner's install without the dev extra
        raise CourseError(_NEEDS_EXTRA) from None
    return nbformat


def _notebooks():
    """segkit_course.notebooks (freeze_widgets, KERNELSPEC); it imports nbformat and nbclient."""
    try:
        from segkit_course import notebooks
    except ImportError:
        raise CourseError(_NEEDS_EXTRA) from None
    return notebooks


def _read(path: Path):
    try:
        return _nbformat().read(path, as_version=4)
    except (OSError, ValueError) as error:  # ValueError: not JSON / not a notebook
        raise CourseError(f"{path}: cannot be read as a notebook ({error}).") from None


def _serialize(notebook) -> str:
    text = _nbformat().writes(notebook)
    return text if text.endswith("\n") else text + "\n"


def _write_if_changed(notebook, path: Path) -> bool:
    """Write the notebook unless the file already holds exactly that text (keeps mtimes calm)."""
    text = _serialize(notebook)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.encode("utf-8"))  # an interrupted build never leaves half a notebook
    return True


def _stable_id(name: str, index: int, taken: set[str]) -> str:
    for attempt in range(100):
        candidate = hashlib.sha1(f"{name}:{index}:{attempt}".encode()).hexdigest()[:8]
        if candidate not in taken:
            return candidate
    raise CourseError(f"{name}: could not find a free cell id")  # 100 sha1 collisions: never


def _clean_outputs(outputs: list) -> list:
    """Outputs without run-to-run noise: streams merged, widget views and traceback paths dropped."""
    cleaned: list = []
    for output in outputs:
        if output.output_type == "stream" and cleaned and cleaned[-1].output_type == "stream" \
                and cleaned[-1].name == output.name:
            cleaned[-1].text += output.text
            continue
        if output.output_type in ("display_data", "execute_result"):
            # A widget's model id is random and its state is not saved: keep the text fallback.
            output.data.pop(_WIDGET_VIEW, None)
            if not output.data:
                continue
        if output.output_type == "error":
            # The traceback names the kernel's temporary files (/tmp/ipykernel_1234/...): keep its last line.
            output.traceback = output.traceback[-1:]
        cleaned.append(output)
    return cleaned


def _normalize(notebook, name: str) -> None:
    """Make a notebook's JSON depend only on its cells' sources and outputs (see the module docstring)."""
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    notebooks = _notebooks()
    notebooks.freeze_widgets(notebook)  # progress bars -> their last text; drops the widget state
    notebook.metadata["kernelspec"] = dict(notebooks.KERNELSPEC)  # what JupyterLab writes on opening
    language = notebook.metadata.get("language_info")
    if language is not None:
        language.pop("version", None)  # the instructor's and CI's Python differ
    taken: set[str] = set()
    for index, cell in enumerate(notebook.cells):
        cell_id = cell.get("id")
        if not isinstance(cell_id, str) or not _CELL_ID.match(cell_id) or cell_id in taken:
            cell["id"] = _stable_id(name, index, taken)
        taken.add(cell["id"])
        for key in _VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = _clean_outputs(cell.outputs)


# ----------------------------------------------------------------------------- running notebooks


def _kernel_environment() -> dict[str, str]:
    """The environment of a kernel started by the build: strict checks, figures drawn inline."""
    env = dict(os.environ)
    env["SEGKIT_STRICT_CHECKS"] = "1"  # a wrong solution fails the build; stubs never raise
    env.pop("MPLBACKEND", None)        # Agg (e.g. from a test run) would drop every figure
    return env


def _failed_cell(notebook) -> tuple[int, str]:
    """(1-based number, 'Error: message') of the first cell with an unexpected error output."""
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code" or RAISES_TAG in cell.metadata.get("tags", []):
            continue
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                return number, f"{output.ename}: {output.evalue}"
    return 0, ""


def _execute(notebook, folder: Path, where: str, timeout: int, advice: str) -> None:
    """Run every cell in a fresh kernel with `folder` as the working directory; `advice` follows an error."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    # The widget state is stored so that _normalize can freeze each progress bar at its last text.
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                            store_widget_state=True, coalesce_streams=True,
                            resources={"metadata": {"path": str(folder)}})
    try:
        # The kernel's own stderr only carries start-up chatter; cell output arrives over ZMQ.
        client.execute(env=_kernel_environment(), stderr=subprocess.DEVNULL)
    except CellExecutionError:
        number, error = _failed_cell(notebook)
        raise CourseError(f"{where}, cell {number}: raised {error}. {advice}") from None
    except CellTimeoutError:
        raise CourseError(f"{where}: a cell ran longer than {timeout} s; course notebooks should run in "
                          "seconds.") from None
    except DeadKernelError as error:
        raise CourseError(f"{where}: the kernel died ({error}); out of memory?") from None


# ----------------------------------------------------------------------------- build


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _select(folder: Path, names: Sequence[str] | None) -> list[Path]:
    """The notebooks of `folder`, sorted; `names` (stems, file names or paths) picks some of them."""
    available = sorted(folder.glob("*.ipynb"))
    if not names:
        return available
    by_stem = {path.stem: path for path in available}
    chosen = []
    for name in names:
        stem = Path(name).stem
        if stem not in by_stem:
            raise CourseError(f"no notebook {stem!r} in {folder}; there are: "
                              f"{', '.join(by_stem) or 'none'}.")
        chosen.append(by_stem[stem])
    return chosen


def build(root: str | Path = ".", names: Sequence[str] | None = None, *, execute: bool = True,
          timeout: int = 600, log: Callable[[str], None] | None = print) -> list[Path]:
    """Regenerate exercises/ from solutions/ (and re-run both); returns the files written.

    root: the course folder holding solutions/ (exercises/ is created beside it).
    names: only these solution notebooks (stems or file names); None = all of them.
    execute: False writes the exercises without running anything (quick, but `check` then
        reports them as not run, and nbval needs their outputs).
    log: called with one line per notebook (None: silent).

    Raises CourseError naming the notebook and cell for unbalanced markers or a cell that fails.
    """
    root = Path(root)
    solutions_dir, exercises_dir = root / SOLUTIONS_DIR, root / EXERCISES_DIR
    if not solutions_dir.is_dir():
        raise CourseError(f"{solutions_dir} does not exist: run this in the course folder (the one holding "
                          "solutions/), or pass its path.")
    written = []
    for path in _select(solutions_dir, names):
        started = time.perf_counter()
        where = _relative(path, root)
        solution = _read(path)
        _normalize(solution, path.stem)  # ids first: the exercise inherits them
        exercise = make_exercise(solution, where)  # checks the markers before the slow part
        exercise_path = exercises_dir / path.name
        exercises_dir.mkdir(exist_ok=True)
        if execute:
            _execute(solution, solutions_dir, where, timeout, "Run it in JupyterLab to see the whole traceback: "
                     "a solution must run top to bottom with every check passing.")
            _normalize(solution, path.stem)
            _execute(exercise, exercises_dir, _relative(exercise_path, root), timeout,
                     "The solution ran, so a stub raised where no check catches it: put that solution region "
                     "inside a function, or let the check cell be the only caller.")
        _normalize(exercise, path.stem)
        for notebook, target in ((solution, path), (exercise, exercise_path)):
            if _write_if_changed(notebook, target):
                written.append(target)
        if log is not None:
            ran = "ran solution and exercise" if execute else "not run"
            log(f"{time.perf_counter() - started:6.1f} s  {path.name}  ({ran})")
    if log is not None and not names:
        solution_names = {p.name for p in solutions_dir.glob("*.ipynb")}
        orphans = sorted(p.name for p in exercises_dir.glob("*.ipynb") if p.name not in solution_names)
        for name in orphans:
            log(f"note: {EXERCISES_DIR}/{name} has no solution in {SOLUTIONS_DIR}/: delete it if it is gone for good.")
    return written


# ----------------------------------------------------------------------------- check


def _significant(text: str) -> str:
    """Code lines without indentation, blank lines or comments: the text to look for in a leak."""
    lines = (line.strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("#"))


def _solution_snippets(solution) -> list[tuple[int, str]]:
    """(cell number, significant text) of every solution region and solution cell."""
    snippets = []
    for number, cell in enumerate(solution.cells, start=1):
        if SOLUTION_TAG in cell.metadata.get("tags", []):
            texts = [cell.source]
        else:
            try:
                lines = cell.source.splitlines()
                texts = ["\n".join(region.body(lines)) for region in _find_regions(cell.source)]
            except ValueError:
                continue  # reported by make_exercise
        snippets += [(number, _significant(t)) for t in texts if len(_significant(t)) >= _LEAK_MIN_CHARS]
    return snippets


def _leaks(solution, actual, expected, where: str, solution_where: str) -> list[Problem]:
    problems = []
    snippets = _solution_snippets(solution)
    for number, cell in enumerate(actual.cells, start=1):
        if any(_is_marker(line, marker) for line in cell.source.splitlines()
               for marker in (BEGIN_SOLUTION, END_SOLUTION)):
            problems.append(Problem(where, number, f"holds a solution region ({BEGIN_SOLUTION} ... {END_SOLUTION}): "
                                    "the solution leaked into the exercise. Run `segkit-course build`."))
            continue
        if SOLUTION_TAG in cell.metadata.get("tags", []):
            problems.append(Problem(where, number, f"is tagged {SOLUTION_TAG!r}: the solution cell leaked into the "
                                    "exercise. Run `segkit-course build`."))
            continue
        text = _significant(cell.source)
        should_be = _significant(expected.cells[number - 1].source) if number <= len(expected.cells) else ""
        for solution_cell, snippet in snippets:
            if text.count(snippet) > should_be.count(snippet):
                first = snippet.splitlines()[0]
                problems.append(Problem(where, number, f"holds the solution of {solution_where} cell {solution_cell} "
                                        f"(from {first!r}): it leaked into the exercise. Run `segkit-course build`."))
                break
    return problems


def _comparable(cell) -> dict:
    metadata = {k: v for k, v in cell.metadata.items() if k not in _VOLATILE_CELL_METADATA}
    return {"cell type": cell.cell_type, "id": cell.get("id"), "source": cell.source, "metadata": metadata}


def _out_of_date(expected, actual, where: str, solution_where: str) -> list[Problem]:
    """The first cell where the exercise file differs from what the solution gives (one is enough)."""
    rebuild = f"Run `segkit-course build {Path(where).stem}`."
    for number, (want, have) in enumerate(zip(expected.cells, actual.cells), start=1):
        want, have = _comparable(want), _comparable(have)
        differing = [key for key in want if want[key] != have[key]]
        if differing:
            verb = "differs" if len(differing) == 1 else "differ"
            return [Problem(where, number, f"out of date: its {' and '.join(differing)} {verb} from what "
                                           f"{solution_where} cell {number} gives. {rebuild}")]
    if len(expected.cells) != len(actual.cells):
        number = min(len(expected.cells), len(actual.cells)) + 1
        return [Problem(where, number, f"out of date: it has {len(actual.cells)} cells, {solution_where} gives "
                                       f"{len(expected.cells)}. {rebuild}")]
    return []


def _not_run(notebook, where: str) -> list[Problem]:
    """A problem when the code cells were not run top to bottom (execution counts 1, 2, 3, ...)."""
    count = 0
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        count += 1
        if cell.execution_count is None:
            return [Problem(where, number, "was not run (no execution count): run `segkit-course build` so that "
                                           "the committed outputs are fresh.")]
        if cell.execution_count != count:
            return [Problem(where, number, f"was not run top to bottom (execution count {cell.execution_count}, "
                                           f"expected {count}): run `segkit-course build`.")]
    return []


def check(root: str | Path = ".") -> list[Problem]:
    """Everything wrong with the course's notebooks; an empty list means all is well.

    Reports: an exercise missing, or left over without a solution; a solution region leaked into
    an exercise; an exercise cell that differs from what its solution gives (out of date); a
    notebook whose code cells were not run top to bottom; unbalanced solution markers.
    """
    root = Path(root)
    solutions_dir, exercises_dir = root / SOLUTIONS_DIR, root / EXERCISES_DIR
    solution_paths = sorted(solutions_dir.glob("*.ipynb"))
    if not solution_paths:
        return [Problem(SOLUTIONS_DIR, None, f"no solution notebooks in {solutions_dir}: is this the course folder?")]
    problems: list[Problem] = []
    for path in solution_paths:
        solution_where = _relative(path, root)
        where = _relative(exercises_dir / path.name, root)
        solution = _read(path)
        problems += _not_run(solution, solution_where)
        try:
            expected = make_exercise(solution, solution_where)
        except CourseError as error:
            problems.append(Problem(solution_where, None, str(error)))
            continue
        _normalize(expected, path.stem)
        if not (exercises_dir / path.name).is_file():
            problems.append(Problem(where, None, f"missing: run `segkit-course build {path.stem}`."))
            continue
        actual = _read(exercises_dir / path.name)
        leaks = _leaks(solution, actual, expected, where, solution_where)
        problems += leaks or _out_of_date(expected, actual, where, solution_where)
        problems += _not_run(actual, where)
    solution_names = {path.name for path in solution_paths}
    for path in sorted(exercises_dir.glob("*.ipynb")):
        if path.name not in solution_names:
            problems.append(Problem(_relative(path, root), None, f"has no {SOLUTIONS_DIR}/{path.name}: delete it, or "
                                                                 "add its solution notebook."))
    return problems


# ----------------------------------------------------------------------------- start


def start(root: str | Path = ".", work_dir: str | Path = WORK_DIR, names: Sequence[str] | None = None, *,
          overwrite: bool = False) -> list[tuple[Path, str]]:
    """Copy the exercise notebooks into the learner's own folder; returns (path, what happened).

    work_dir: relative to root (default work/, which git ignores) or absolute. A notebook already
    there is "kept" as it is, unless overwrite=True ("replaced": the answers in it are lost).
    New notebooks are "copied", so running this again after a course update adds new exercises
    and leaves the learner's answers alone.
    """
    root = Path(root)
    source = root / EXERCISES_DIR
    if not source.is_dir():
        raise CourseError(f"{source} does not exist: run this in the course folder (the one holding exercises/), "
                          "or pass its path with --root.")
    target = Path(work_dir) if Path(work_dir).is_absolute() else root / work_dir
    notebooks = _select(source, names)
    if not notebooks:
        raise CourseError(f"{source} holds no exercise notebooks.")
    target.mkdir(parents=True, exist_ok=True)
    results = []
    for notebook in notebooks:
        destination = target / notebook.name
        if destination.exists() and not overwrite:
            results.append((destination, "kept"))
            continue
        status = "replaced" if destination.exists() else "copied"
        shutil.copyfile(notebook, destination)
        results.append((destination, status))
    return results


# ----------------------------------------------------------------------------- the `segkit-course` command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `segkit-course build | check | start` sub-commands."""
    sub = parser.add_subparsers(dest="course_command", required=True, metavar="ACTION")
    p = sub.add_parser("build", help="regenerate exercises/ from solutions/ and re-run both (saved with outputs)")
    p.add_argument("notebooks", nargs="*", help="only these solution notebooks (e.g. 03_dice_and_iou); default all")
    p.add_argument("--root", default=".", help="the course folder holding solutions/ (default: here)")
    p.add_argument("--no-execute", action="store_true",
                   help="write the exercises without running anything (quick; `check` will ask for a full build)")
    p.add_argument("--timeout", type=int, default=600, help="seconds one cell may run (default 600)")
    p = sub.add_parser("check", help="fail when exercises/ is out of date with solutions/ or a solution leaked")
    p.add_argument("--root", default=".", help="the course folder (default: here)")
    p = sub.add_parser("start", help="copy the exercises into work/ for you to fill in (never overwrites)")
    p.add_argument("notebooks", nargs="*", help="only these exercises; default all")
    p.add_argument("--root", default=".", help="the course folder holding exercises/ (default: here)")
    p.add_argument("--to", default=WORK_DIR, help="your folder, relative to --root (default: work)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace your copies with fresh ones (the answers in them are lost)")


def command(args: argparse.Namespace) -> int:
    """Run one `segkit-course` action; returns the exit status."""
    if args.course_command == "build":
        written = build(args.root, args.notebooks, execute=not args.no_execute, timeout=args.timeout)
        print(f"{len(written)} notebook file(s) changed." if written else "Nothing changed.")
        return 0
    if args.course_command == "check":
        problems = check(args.root)
        for problem in problems:
            print(problem)
        if problems:
            print(f"segkit-course check: {len(problems)} problem(s). Fix them with `segkit-course build`.")
            return 1
        count = len(list((Path(args.root) / SOLUTIONS_DIR).glob("*.ipynb")))
        print(f"segkit-course check: {count} solution notebook(s) and their exercises are up to date; "
              "no solution leaked.")
        return 0
    results = start(args.root, args.to, args.notebooks, overwrite=args.overwrite)
    for path, status in results:
        note = " (yours, left as it is; --overwrite replaces it)" if status == "kept" else ""
        print(f"{status:>8}  {path}{note}")
    folder = results[0][0].parent
    print(f"Open them with:  jupyter lab {folder}\nYour answers live in {folder}/ only: updating the course never "
          "touches them, and running `segkit-course start` again adds only new exercises.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The `segkit-course` command (instructors: build, check; learners: start)."""
    parser = argparse.ArgumentParser(prog="segkit-course", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return command(args)
    except CourseError as error:
        print(f"segkit-course: error: {error}", file=sys.stderr)  # as `segkit`: errors on stderr, no traceback
        return 2
