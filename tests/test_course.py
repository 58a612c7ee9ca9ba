"""segkit_course.build: exercises built from solutions, deterministic builds, leak and staleness checks, learner copies.

Most tests work on a tiny course in a temporary folder, built once for real (solution and
exercise run in a kernel: a few seconds) and copied for each test. The command is
`segkit-course` (console script `segkit_course.build:main`, also `python -m segkit_course`).
The last tests look at the course in this repository.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import json
import runpy
import shutil
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from segkit_course import checks
from segkit_course.build import (CODE_STUB, MARKDOWN_STUB, RAISES_TAG, CourseError, build, check, main, make_exercise,
                                 start, strip_solutions)

REPO = Path(__file__).resolve().parent.parent

STUB_CALL, STUB_RAISE = CODE_STUB
DOUBLE = """def double(x):
    \"\"\"2 * x.\"\"\"
    ### BEGIN SOLUTION
    result = x + x
    return result
    ### END SOLUTION"""
TOP_LEVEL = """### BEGIN SOLUTION
answer = 6 * 7
### END SOLUTION
print("after the region")"""


def tiny_solution() -> nbformat.NotebookNode:
    notebook = new_notebook(cells=[
        new_markdown_cell("# A tiny course"),
        new_code_cell("import os\nprint('strict checks:', os.environ.get('SEGKIT_STRICT_CHECKS'))"),
        new_code_cell(DOUBLE),
        new_code_cell("try:\n    print(double(21))\nexcept NotImplementedError:\n    print('not implemented yet')"),
        new_code_cell(TOP_LEVEL),
        new_markdown_cell("Why 42?\n\n### BEGIN SOLUTION\nBecause 6 * 7.\n### END SOLUTION"),
        new_code_cell("print('done')"),
    ])
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return notebook


def write(notebook, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def read(path: Path):
    return nbformat.read(path, as_version=4)


def outputs_text(cell) -> str:
    return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in cell.outputs)


@pytest.fixture(scope="module")
def built_once(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("course")
    write(tiny_solution(), root / "solutions" / "01_tiny.ipynb")
    build(root, log=None)
    return root


@pytest.fixture
def course(built_once, tmp_path) -> Path:
    """A freshly built tiny course of one's own to modify."""
    root = tmp_path / "course"
    shutil.copytree(built_once, root)
    return root


# ----------------------------------------------------------------------------- regions -> stubs


def test_region_becomes_a_stub_at_its_indentation_and_the_rest_stays():
    source, regions, raises = strip_solutions(DOUBLE)
    assert source == f'def double(x):\n    """2 * x."""\n    {STUB_CALL}\n    {STUB_RAISE}'
    assert (regions, raises) == (1, False)  # inside a function: raises only when called


def test_several_regions_and_code_around_them_are_kept():
    text = ("a = 1\n  ### BEGIN SOLUTION\n  b = 2\n  ### END SOLUTION\n"
            "c = 3\n### BEGIN SOLUTION\nd = 4\n### END SOLUTION")
    source, regions, raises = strip_solutions(text)
    assert source.splitlines() == ["a = 1", f"  {STUB_CALL}", f"  {STUB_RAISE}", "c = 3", STUB_CALL, STUB_RAISE]
    assert (regions, raises) == (2, True)  # the second one is at the top level


def test_a_cell_without_regions_is_returned_as_it_is():
    assert strip_solutions("x = 1\n# ### not a marker in the middle") == ("x = 1\n# ### not a marker in the middle", 0,
                                                                         False)


def test_markdown_region_becomes_your_answer_here():
    source, regions, raises = strip_solutions("Q?\n### BEGIN SOLUTION\nA.\n### END SOLUTION", "markdown")
    assert source == f"Q?\n{MARKDOWN_STUB}" and regions == 1 and not raises


@pytest.mark.parametrize("text, line, problem", [
    ("x\n### BEGIN SOLUTION\ny", 2, "without a matching ### END SOLUTION"),
    ("### END SOLUTION", 1, "without a ### BEGIN SOLUTION"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", 2, "inside the region opened on line 1"),
])
def test_unbalanced_markers_name_the_line(text, line, problem):
    with pytest.raises(ValueError, match=f"line {line}: .*{problem}"):
        strip_solutions(text)


def test_make_exercise_keeps_ids_clears_outputs_and_tags_cells_that_raise_when_run():
    solution = tiny_solution()
    solution.cells[1].outputs = [new_output("stream", name="stdout", text="old\n")]
    solution.cells[1].execution_count = 1
    whole = new_code_cell("secret = 42")
    whole.metadata["tags"] = ["solution", "keep-me"]
    solution.cells.append(whole)
    prose = new_markdown_cell("The answer is 42.")
    prose.metadata["tags"] = ["solution"]
    solution.cells.append(prose)
    exercise = make_exercise(solution)
    assert [c.id for c in exercise.cells] == [c.id for c in solution.cells]
    assert exercise.cells[1].outputs == [] and exercise.cells[1].execution_count is None
    assert "result = x + x" not in exercise.cells[2].source and STUB_RAISE in exercise.cells[2].source
    assert RAISES_TAG not in exercise.cells[2].metadata.get("tags", [])  # stub inside a function
    assert exercise.cells[4].metadata["tags"] == [RAISES_TAG]  # top-level stub raises when run
    assert exercise.cells[5].source == f"Why 42?\n\n{MARKDOWN_STUB}"
    assert exercise.cells[-2].source == "\n".join(CODE_STUB)
    assert exercise.cells[-2].metadata["tags"] == ["keep-me", RAISES_TAG]
    assert exercise.cells[-1].source == MARKDOWN_STUB and "tags" not in exercise.cells[-1].metadata
    assert solution.cells[2].source == DOUBLE and solution.cells[1].outputs  # the solution itself is untouched


def test_make_exercise_names_notebook_and_cell_of_bad_markers():
    solution = tiny_solution()
    solution.cells[2].source = "### BEGIN SOLUTION\nx = 1"
    with pytest.raises(CourseError, match=r"solutions/x.ipynb, cell 3: line 1: "):
        make_exercise(solution, "solutions/x.ipynb")


# ----------------------------------------------------------------------------- build


def test_build_runs_solution_and_exercise_and_saves_their_outputs(built_once):
    solution = read(built_once / "solutions" / "01_tiny.ipynb")
    exercise = read(built_once / "exercises" / "01_tiny.ipynb")
    assert outputs_text(solution.cells[1]) == "strict checks: 1\n"  # the build's kernels run strict
    assert outputs_text(solution.cells[3]) == "42\n"
    assert outputs_text(exercise.cells[3]) == "not implemented yet\n"
    error = exercise.cells[4].outputs[0]
    assert error.ename == "NotImplementedError" and len(error.traceback) == 1  # no kernel temp paths
    assert outputs_text(exercise.cells[6]) == "done\n"  # the build went on past the raising cell
    assert [c.execution_count for c in exercise.cells if c.cell_type == "code"] == [1, 2, 3, 4, 5]
    assert [c.id for c in exercise.cells] == [c.id for c in solution.cells]


def test_build_output_has_no_volatile_metadata(built_once):
    for path in (built_once / "solutions" / "01_tiny.ipynb", built_once / "exercises" / "01_tiny.ipynb"):
        raw = json.loads(path.read_text())
        assert raw["nbformat"] == 4 and raw["nbformat_minor"] == 5
        assert raw["metadata"]["language_info"]["name"] == "python"  # the kernel ran and said so ...
        assert "version" not in raw["metadata"]["language_info"]      # ... without its Python version
        assert "widgets" not in raw["metadata"]
        assert all("execution" not in cell["metadata"] for cell in raw["cells"])
        # The solution said "Python 3"; JupyterLab would rewrite that on opening and mark the file modified.
        assert raw["metadata"]["kernelspec"] == {"display_name": "Python 3 (ipykernel)", "language": "python",
                                                 "name": "python3"}


def test_build_normalizes_what_changes_from_run_to_run(tmp_path):
    """Without running anything: widget state, timings, widget views and split streams are made stable."""
    notebook = tiny_solution()
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    cell = notebook.cells[1]
    cell.metadata["ExecuteTime"] = {"end_time": "2024-01-01T00:00:00"}
    cell.metadata["execution"] = {"iopub.status.busy": "2024-01-01T00:00:00"}
    cell.metadata["keep"] = True
    cell.outputs = [
        new_output("stream", name="stdout", text="a\n"), new_output("stream", name="stdout", text="b\n"),
        new_output("stream", name="stderr", text="warning\n"),
        new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "f00"},
                                         "text/plain": "IntSlider(value=5)"}),
        new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "ba5"}}),
    ]
    cell.execution_count = 1
    write(notebook, tmp_path / "solutions" / "01_tiny.ipynb")
    build(tmp_path, execute=False, log=None)
    solution = read(tmp_path / "solutions" / "01_tiny.ipynb")
    assert "widgets" not in solution.metadata
    assert dict(solution.cells[1].metadata) == {"keep": True}
    outputs = solution.cells[1].outputs
    assert [(o.output_type, o.get("name")) for o in outputs] == [("stream", "stdout"), ("stream", "stderr"),
                                                                  ("display_data", None)]
    assert outputs[0].text == "a\nb\n" and dict(outputs[2].data) == {"text/plain": "IntSlider(value=5)"}
    exercise = read(tmp_path / "exercises" / "01_tiny.ipynb")
    assert dict(exercise.cells[1].metadata) == {"keep": True} and exercise.cells[1].outputs == []


def _tqdm_bar_state(model_id: str, value: float, total: float, left: str, right: str) -> dict:
    """The widget state tqdm.notebook leaves behind: an HBox of HTML, FloatProgress, HTML."""
    parts = {f"{model_id}-left": ("HTMLModel", {"value": left}),
             f"{model_id}-bar": ("FloatProgressModel", {"value": value, "max": total}),
             f"{model_id}-right": ("HTMLModel", {"value": right})}
    state = {key: {"model_name": name, "state": values} for key, (name, values) in parts.items()}
    state[model_id] = {"model_name": "HBoxModel", "state": {"children": [f"IPY_MODEL_{key}" for key in parts]}}
    return state


def test_build_freezes_progress_bars_at_their_last_text(tmp_path):
    """A saved progress bar reads as its final state, not "0%"; other widgets keep their text fallback."""
    notebook = tiny_solution()
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": _tqdm_bar_state("b4r", 160, 160, "export: 100%", "160/160 [00:01&lt;00:00, 95.1file/s]"),
        "version_major": 2, "version_minor": 0}}
    cell = notebook.cells[1]
    cell.outputs = [
        new_output("stream", name="stdout", text="exporting\n"),
        new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "b4r"},
                                         "text/plain": "  0%|          | 0/160 [00:00<?, ?file/s]"}),
        new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "s1d"},
                                         "text/plain": "IntSlider(value=5)"}),
    ]
    cell.execution_count = 1
    write(notebook, tmp_path / "solutions" / "01_tiny.ipynb")
    build(tmp_path, execute=False, log=None)
    solution = read(tmp_path / "solutions" / "01_tiny.ipynb")
    assert "widgets" not in solution.metadata
    outputs = [(o.output_type, o.get("name"), o.get("text") or dict(o.data)) for o in solution.cells[1].outputs]
    assert outputs == [("stream", "stdout", "exporting\n"),
                       ("stream", "stderr", "export: 100%|██████████|160/160 [00:01<00:00, 95.1file/s]\n"),
                       ("display_data", None, {"text/plain": "IntSlider(value=5)"})]


def test_build_saves_a_progress_bar_that_ran_in_the_kernel_as_its_final_text(tmp_path):
    notebook = new_notebook(cells=[
        new_code_cell("from tqdm.notebook import tqdm\nfor _ in tqdm(range(7), desc='steps'):\n    pass"),
        new_code_cell("def seven():\n    ### BEGIN SOLUTION\n    return 7\n    ### END SOLUTION"),
    ])
    write(notebook, tmp_path / "solutions" / "01_bar.ipynb")
    build(tmp_path, log=None)
    for folder in ("solutions", "exercises"):
        saved = read(tmp_path / folder / "01_bar.ipynb")
        assert "widgets" not in saved.metadata
        [output] = saved.cells[0].outputs
        assert (output.output_type, output.name) == ("stream", "stderr")
        text = output.text.replace("\u2007", " ")  # tqdm.notebook pads its labels with figure spaces
        assert text.startswith("steps: 100%|██████████| 7/7 [")  # not the "0%" of the bar's first view


def test_second_build_changes_nothing(course):
    before = {p: p.read_bytes() for p in course.rglob("*.ipynb")}
    assert build(course, log=None) == []
    assert {p: p.read_bytes() for p in course.rglob("*.ipynb")} == before


def test_build_gives_stable_ids_to_cells_without_one(tmp_path):
    notebook = tiny_solution()
    for cell in notebook.cells:
        del cell["id"]
    notebook.nbformat_minor = 4  # an older notebook: cells had no ids yet
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "01_tiny.ipynb").write_text(nbformat.writes(notebook, version=4))
    assert build(tmp_path, execute=False, log=None) == [tmp_path / "solutions" / "01_tiny.ipynb",
                                                        tmp_path / "exercises" / "01_tiny.ipynb"]
    ids = [c.id for c in read(tmp_path / "solutions" / "01_tiny.ipynb").cells]
    assert len(set(ids)) == len(ids)
    assert [c.id for c in read(tmp_path / "exercises" / "01_tiny.ipynb").cells] == ids
    assert build(tmp_path, execute=False, log=None) == []  # and they stay

    again = tmp_path / "again"  # the same notebook elsewhere gets the same ids: they come from its name
    (again / "solutions").mkdir(parents=True)
    (again / "solutions" / "01_tiny.ipynb").write_text(nbformat.writes(notebook, version=4))
    build(again, execute=False, log=None)
    assert [c.id for c in read(again / "solutions" / "01_tiny.ipynb").cells] == ids


def test_build_stops_at_a_failing_solution_cell_naming_notebook_and_cell(tmp_path):
    notebook = tiny_solution()
    notebook.cells[6].source = "raise ValueError('this solution is broken')"
    write(notebook, tmp_path / "solutions" / "02_broken.ipynb")
    with pytest.raises(CourseError,
                       match=r"solutions/02_broken.ipynb, cell 7: raised ValueError: this solution is broken"):
        build(tmp_path, log=None)
    assert not (tmp_path / "exercises" / "02_broken.ipynb").exists()


def test_build_fails_when_an_exercise_calls_its_stub_outside_a_check(tmp_path):
    notebook = tiny_solution()
    notebook.cells[6].source = "print(double(2))"  # fine in the solution, NotImplementedError in the exercise
    write(notebook, tmp_path / "solutions" / "01_tiny.ipynb")
    with pytest.raises(CourseError, match=r"exercises/01_tiny.ipynb, cell 7: raised NotImplementedError: .*"
                                          r"let the check cell be the only caller"):
        build(tmp_path, log=None)


def test_build_reports_bad_markers_before_running_anything(tmp_path):
    notebook = tiny_solution()
    notebook.cells[2].source = "### BEGIN SOLUTION\nx = 1"
    notebook.cells[1].source = "raise SystemExit('the build ran the notebook')"
    write(notebook, tmp_path / "solutions" / "01_tiny.ipynb")
    with pytest.raises(CourseError, match=r"solutions/01_tiny.ipynb, cell 3: line 1: "):
        build(tmp_path, log=None)


def test_build_of_selected_notebooks_and_helpful_errors(course, tmp_path):
    with pytest.raises(CourseError, match="no notebook 'nope'.*01_tiny"):
        build(course, ["nope"], execute=False, log=None)
    with pytest.raises(CourseError, match="solutions does not exist"):
        build(tmp_path / "empty", log=None)
    # only the chosen notebook is rebuilt (not run: its exercise loses its outputs)
    rebuilt = build(course, ["solutions/01_tiny.ipynb"], execute=False, log=None)
    assert rebuilt == [course / "exercises" / "01_tiny.ipynb"]
    (course / "solutions" / "02_broken.ipynb").write_text("{not json")
    with pytest.raises(CourseError, match="02_broken.ipynb: cannot be read as a notebook"):
        build(course, execute=False, log=None)


def test_build_logs_one_line_per_notebook_and_notes_orphan_exercises(course):
    shutil.copy(course / "exercises" / "01_tiny.ipynb", course / "exercises" / "09_gone.ipynb")
    lines = []
    build(course, execute=False, log=lines.append)
    assert len(lines) == 2 and "01_tiny.ipynb  (not run)" in lines[0]
    assert "exercises/09_gone.ipynb has no solution in solutions/" in lines[1]


# ----------------------------------------------------------------------------- check


def test_check_passes_on_a_fresh_build(course):
    assert check(course) == []


def test_check_names_notebook_and_cell_when_exercises_are_out_of_date(course):
    solution_path = course / "solutions" / "01_tiny.ipynb"
    solution = read(solution_path)
    solution.cells[3].source = "print(double(4))"
    write(solution, solution_path)
    problems = check(course)
    assert [(p.notebook, p.cell) for p in problems] == [("exercises/01_tiny.ipynb", 4)]
    assert "out of date" in problems[0].message and "its source differs from" in problems[0].message
    assert "Run `segkit-course build 01_tiny`." in problems[0].message


def test_check_notices_changed_tags_in_the_solution(course):
    solution_path = course / "solutions" / "01_tiny.ipynb"
    solution = read(solution_path)
    solution.cells[6].metadata["tags"] = ["hide-input"]
    write(solution, solution_path)
    problems = check(course)
    assert [(p.notebook, p.cell) for p in problems] == [("exercises/01_tiny.ipynb", 7)]
    assert "its metadata differs" in problems[0].message


def test_check_notices_a_new_cell_in_the_solution(course):
    solution_path = course / "solutions" / "01_tiny.ipynb"
    solution = read(solution_path)
    solution.cells.append(new_markdown_cell("One more thing."))
    write(solution, solution_path)
    problems = check(course)
    assert problems[0].notebook == "exercises/01_tiny.ipynb" and problems[0].cell == 8
    assert "it has 7 cells" in problems[0].message


def test_check_finds_a_solution_pasted_into_an_exercise(course):
    exercise_path = course / "exercises" / "01_tiny.ipynb"
    exercise = read(exercise_path)
    exercise.cells[2].source = "def double(x):\n    result = x + x\n    return result"
    write(exercise, exercise_path)
    problems = check(course)
    assert [(p.notebook, p.cell) for p in problems] == [("exercises/01_tiny.ipynb", 3)]
    assert "holds the solution of solutions/01_tiny.ipynb cell 3" in problems[0].message
    assert "leaked into the exercise. Run `segkit-course build`." in problems[0].message


def test_check_finds_a_solution_pasted_into_another_cell(course):
    exercise_path = course / "exercises" / "01_tiny.ipynb"
    exercise = read(exercise_path)
    exercise.cells[6].source = "# answer\nanswer = 6 * 7\nprint('done')"  # the top-level region of cell 5
    write(exercise, exercise_path)
    problems = check(course)
    assert [(p.notebook, p.cell) for p in problems] == [("exercises/01_tiny.ipynb", 7)]
    assert "holds the solution of solutions/01_tiny.ipynb cell 5" in problems[0].message


def test_check_finds_leaked_markers_and_solution_tags(course):
    exercise_path = course / "exercises" / "01_tiny.ipynb"
    exercise = read(exercise_path)
    exercise.cells[2].source = DOUBLE
    exercise.cells[6].metadata["tags"] = ["solution"]
    write(exercise, exercise_path)
    problems = check(course)
    assert [(p.notebook, p.cell) for p in problems] == [("exercises/01_tiny.ipynb", 3), ("exercises/01_tiny.ipynb", 7)]
    assert "### BEGIN SOLUTION" in problems[0].message and "leaked" in problems[1].message


def test_check_wants_notebooks_run_top_to_bottom(course):
    build(course, execute=False, log=None)  # sources right, but the exercise's outputs are gone
    problems = check(course)
    assert [(p.notebook, p.cell) for p in problems] == [("exercises/01_tiny.ipynb", 2)]
    assert "was not run" in problems[0].message and "segkit-course build" in problems[0].message
    solution_path = course / "solutions" / "01_tiny.ipynb"
    solution = read(solution_path)
    solution.cells[3].execution_count = 7  # run by hand, out of order
    write(solution, solution_path)
    assert any(p.notebook == "solutions/01_tiny.ipynb" and p.cell == 4 and "not run top to bottom" in p.message
               for p in check(course))


def test_check_reports_missing_and_orphan_exercises_and_bad_markers(course):
    shutil.copy(course / "exercises" / "01_tiny.ipynb", course / "exercises" / "09_gone.ipynb")
    broken = tiny_solution()
    broken.cells[2].source = "### BEGIN SOLUTION"
    write(broken, course / "solutions" / "03_broken.ipynb")
    text = [str(p) for p in check(course)]
    assert "exercises/09_gone.ipynb: has no solutions/09_gone.ipynb: delete it, or add its solution notebook." in text
    assert any(t.startswith("solutions/03_broken.ipynb: solutions/03_broken.ipynb, cell 3: line 1:") for t in text)
    (course / "exercises" / "01_tiny.ipynb").unlink()
    assert "exercises/01_tiny.ipynb: missing: run `segkit-course build 01_tiny`." in [str(p) for p in check(course)]


def test_check_on_a_folder_without_solutions(tmp_path):
    problems = check(tmp_path)
    assert len(problems) == 1 and "no solution notebooks" in problems[0].message and problems[0].cell is None


# ----------------------------------------------------------------------------- the segkit-course command


def test_command_check_exit_status_and_report(course, capsys):
    assert main(["check", "--root", str(course)]) == 0
    assert "segkit-course check: 1 solution notebook(s) and their exercises are up to date" in capsys.readouterr().out
    (course / "exercises" / "01_tiny.ipynb").unlink()
    assert main(["check", "--root", str(course)]) == 1
    out = capsys.readouterr().out
    assert "exercises/01_tiny.ipynb: missing" in out and "segkit-course check: 1 problem(s)" in out


def test_command_build_reports_errors_on_stderr_without_a_traceback(tmp_path, capsys):
    assert main(["build", "--root", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("segkit-course: error:") and "solutions does not exist" in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_command_build_without_execution_says_what_changed(course, capsys):
    assert main(["build", "--root", str(course), "--no-execute", "01_tiny"]) == 0
    assert "1 notebook file(s) changed." in capsys.readouterr().out  # the exercise lost its outputs
    assert main(["build", "--root", str(course), "--no-execute"]) == 0
    assert "Nothing changed." in capsys.readouterr().out


def test_command_needs_an_action(capsys):
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2 and "segkit-course" in capsys.readouterr().err


def test_python_dash_m_segkit_course_is_the_command(course, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["segkit-course", "check", "--root", str(course)])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("segkit_course", run_name="__main__", alter_sys=True)
    assert exited.value.code == 0 and "up to date" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["segkit-course", "start", "--root", str(course / "nowhere")])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("segkit_course", run_name="__main__", alter_sys=True)
    assert exited.value.code == 2 and "segkit-course: error:" in capsys.readouterr().err


def test_console_script_is_the_command():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["segkit-course"].partition(":")
    assert getattr(importlib.import_module(module), name) is main
    installed = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "segkit-course"]
    if installed:  # an install made before the move would still point at segkit.cli
        assert installed[0].value == scripts["segkit-course"], "reinstall: pip install -e '.[dev]'"


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def test_segkit_never_imports_the_course_tooling():
    files = sorted((REPO / "segkit").rglob("*.py"))
    assert len(files) > 10
    offending = {path.name: sorted(m for m in _imported_modules(path) if m.split(".")[0] == "segkit_course")
                 for path in files}
    assert {name: found for name, found in offending.items() if found} == {}
    assert "segkit.files" in _imported_modules(REPO / "segkit_course" / "build.py")  # the scan sees imports


# ----------------------------------------------------------------------------- start


def test_start_copies_and_never_overwrites_without_the_flag(course, capsys):
    mine = course / "work" / "01_tiny.ipynb"
    assert start(course) == [(mine, "copied")]
    mine.write_text("my answers")
    assert start(course) == [(mine, "kept")]
    assert mine.read_text() == "my answers"

    assert main(["start", "--root", str(course)]) == 0
    out = capsys.readouterr().out
    assert "kept" in out and "--overwrite replaces it" in out and mine.read_text() == "my answers"

    assert start(course, overwrite=True) == [(mine, "replaced")]
    assert mine.read_bytes() == (course / "exercises" / "01_tiny.ipynb").read_bytes()

    mine.write_text("my answers")
    assert main(["start", "--root", str(course), "--overwrite"]) == 0
    assert "replaced" in capsys.readouterr().out and mine.read_text() != "my answers"


def test_start_after_a_course_update_adds_new_exercises_only(course):
    start(course)
    (course / "work" / "01_tiny.ipynb").write_text("my answers")
    shutil.copy(course / "exercises" / "01_tiny.ipynb", course / "exercises" / "02_new.ipynb")
    assert [status for _, status in start(course)] == ["kept", "copied"]
    assert (course / "work" / "01_tiny.ipynb").read_text() == "my answers"


def test_start_into_another_folder_and_errors(course, tmp_path):
    assert start(course, tmp_path / "elsewhere", ["01_tiny"]) == [(tmp_path / "elsewhere" / "01_tiny.ipynb", "copied")]
    assert main(["start", "--root", str(course), "--to", "mine", "01_tiny.ipynb"]) == 0
    assert (course / "mine" / "01_tiny.ipynb").is_file() and not (course / "work").exists()
    with pytest.raises(CourseError, match="exercises does not exist"):
        start(tmp_path / "nowhere")
    with pytest.raises(CourseError, match="no notebook '02_missing'"):
        start(course, names=["02_missing"])
    (tmp_path / "empty" / "exercises").mkdir(parents=True)
    with pytest.raises(CourseError, match="holds no exercise notebooks"):
        start(tmp_path / "empty")


# ----------------------------------------------------------------------------- this repository's course


def test_repository_course_is_built_and_consistent():
    assert [str(p) for p in check(REPO)] == []


def test_repository_course_has_enough_exercises_each_followed_by_a_check():
    exercises = 0
    for path in sorted((REPO / "solutions").glob("*.ipynb")):
        cells = read(path).cells
        for number, cell in enumerate(cells):
            if cell.cell_type != "code" or "### BEGIN SOLUTION" not in cell.source:
                continue
            exercises += 1
            assert not strip_solutions(cell.source)[2], f"{path.name} cell {number + 1}: a top-level stub stops Run All"
            following = next((c for c in cells[number + 1:] if c.cell_type == "code"), None)
            assert following is not None and "check_" in following.source, f"{path.name} cell {number + 1}: no check"
    assert exercises >= 8


def test_repository_course_uses_every_check_from_segkit_course():
    sources = "\n".join(cell.source for path in sorted((REPO / "solutions").glob("*.ipynb"))
                        for cell in read(path).cells if cell.cell_type == "code")
    assert "segkit.checks" not in sources  # the checks moved to segkit_course.checks
    unused = [name for name in checks.__all__ if name.startswith("check_") and f"{name}(" not in sources]
    assert unused == []


def test_learners_work_folder_is_git_ignored():
    assert "/work/" in (REPO / ".gitignore").read_text().splitlines()
