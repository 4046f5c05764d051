"""Collecting LMS exports and sending grades back (autograder/lms.py, autograder/lms_plugins.py; issue 38).

Fixtures: a zip in each system's own layout (autograder/lms.py describes them), built here from chapter 1's released
notebook, with spaces, accents, LATE, browser and LMS copy suffixes, renamed notebooks, two files of one student
(each file carries a marker, so the test sees which one was kept), a file that fits nothing and the LMS's own side
files. Oracles: the layout each fixture was written in (who the students are, which file is the newest), and for the
grades the points written in the exercise source, read the way each LMS's importer reads its CSV (by column name).
No kernel runs here: the gradebook is filled through nbgrader's Gradebook API.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from autograder import course, lms
from autograder.lms_plugins import CanvasCollector, student_id

REPO = Path(__file__).resolve().parent.parent
# nbgrader's own add_submission warns so (sqlalchemy autoflush inside nbgrader/api.py); the rows are written
pytestmark = pytest.mark.filterwarnings("ignore:Object of type <Submitted:Warning")
ASSIGNMENT = "ch01_convolution"
NOTEBOOK = "ch01_convolution_exercises.ipynb"


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """A course folder with chapter 1 released (its one assignment only, to keep nbgrader's run short)."""
    tmp = tmp_path_factory.mktemp("lms")
    shutil.copytree(REPO / "solutions" / ASSIGNMENT, tmp / "solutions" / ASSIGNMENT)
    root = tmp / "course"
    course.init(root, solutions=tmp / "solutions")
    assert course.release(root) == [ASSIGNMENT]
    return root


@pytest.fixture
def root(released, tmp_path) -> Path:
    """A fresh copy of the released course for one test (collect and export write into it)."""
    dest = tmp_path / "course"
    shutil.copytree(released, dest)
    return dest


def notebook(released: Path, marker: str) -> bytes:
    """The released notebook as a student hands it in, marked so the test can tell the files apart."""
    nb = json.loads((released / "release" / ASSIGNMENT / NOTEBOOK).read_text())
    nb["metadata"]["fixture"] = marker
    return json.dumps(nb).encode()


def make_zip(path: Path, entries: dict[str, bytes | str], times: dict[str, tuple] | None = None) -> Path:
    """A zip as an LMS writes it: UTF-8 names, each entry with its modification time."""
    times = times or {}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=times.get(name, (2026, 12, 1, 12, 0, 0)))
            archive.writestr(info, data)
    return path


def marker(root: Path, student: str) -> str:
    return json.loads((root / "submitted" / student / ASSIGNMENT / NOTEBOOK).read_text())["metadata"]["fixture"]


def report(root: Path) -> str:
    return (root / "reports" / f"collect_{ASSIGNMENT}.txt").read_text(encoding="utf-8")


def canvas_zip(released: Path, folder: Path) -> Path:
    nb = lambda m: notebook(released, m)  # noqa: E731
    return make_zip(folder / "submissions.zip", {
        f"doejane_1001_50001_{NOTEBOOK}": nb("jane"),
        "müllerjürgen_LATE_1002_50002_ch01_convolution_exercises (1).ipynb": nb("jürgen"),
        "lefèvreandré_1003_50003_ch01_convolution_exercises-1.ipynb": nb("andré"),
        "smithbob_1004_50004_Untitled.ipynb": nb("bob"),
        "o'briankate_1006_50006_ch01 convolution exercises.ipynb": nb("kate"),
        # two uploads of one student: the later upload has the larger id, whatever the zip's times say
        f"leeann_1005_50005_{NOTEBOOK}": nb("ann-old"),
        "leeann_1005_50010_ch01_convolution_exercises-1.ipynb": nb("ann-new"),
        "doejane_1001_50007_notes.pdf": b"%PDF-1.4",
        "random notes.ipynb": nb("stray"),
    }, times={f"leeann_1005_50005_{NOTEBOOK}": (2026, 12, 5, 0, 0, 0)})


def test_a_canvas_export_collects_completely_and_reports_every_file(released, root, tmp_path, capsys):
    assert course.main(["collect", str(root), ASSIGNMENT, str(canvas_zip(released, tmp_path))]) == 0
    students = [f"canvas-{i}" for i in range(1001, 1007)]
    assert sorted(p.name for p in (root / "submitted").iterdir()) == students
    assert [marker(root, s) for s in students] == ["jane", "jürgen", "andré", "bob", "ann-new", "kate"]
    text = report(root)
    assert capsys.readouterr().out.startswith(f"collect {ASSIGNMENT} from ")   # printed, and the same in the file
    assert "duplicate canvas-1005" in text and "kept 'leeann_1005_50010_ch01_convolution_exercises-1.ipynb'" in text
    assert f"skipped 'leeann_1005_50005_{NOTEBOOK}'" in text
    assert "skipped random notes.ipynb: its name does not fit the layout (Canvas" in text
    assert "skipped doejane_1001_50007_notes.pdf: not a notebook" in text
    assert "renamed from 'Untitled.ipynb' (the assignment's only notebook)" in text
    assert "canvas-1002 (canvas 1002, müllerjürgen)" in text and "marked LATE" in text
    assert "layout: canvas (detected: 8 of 8 notebooks fit it)" not in text   # the stray one does not fit
    assert "layout: canvas (detected: 7 of 8 notebooks fit it)" in text
    assert "summary: 6 student(s), 6 notebook(s) collected, 2 file(s) skipped, 1 duplicate(s)" in text
    with open(root / lms.MAPPING, newline="", encoding="utf-8") as f:
        mapping = {r["nbgrader_id"]: r for r in csv.DictReader(f)}
    assert {s: (m["lms"], m["lms_id"]) for s, m in mapping.items()} == {s: ("canvas", s[7:]) for s in students}
    assert mapping["canvas-1003"]["name"] == "lefèvreandré"


def moodle_zip(released: Path, folder: Path) -> Path:
    nb = lambda m: notebook(released, m)  # noqa: E731
    sub = "assignsubmission_file_"
    return make_zip(folder / "moodle.zip", {
        f"Jane Doe_201_{sub}/{NOTEBOOK}": nb("jane"),
        f"Jane Doe_201_{sub}/scratch.ipynb": nb("jane-scratch"),   # newer, but not named as the notebook
        f"Jürgen Müller_202_{sub}/ch01_convolution_exercises (1).ipynb": nb("jürgen"),
        f"André Lefèvre_203_{sub}/Untitled.ipynb": nb("andré"),
        "André Lefèvre_203_assignsubmission_onlinetext_/onlinetext.html": "<p>see my notebook</p>",
        f"Ann Lee_204_{sub}/{NOTEBOOK}": nb("ann-old"),
        f"Ann Lee_204_{sub}/ch01_convolution_exercises-1.ipynb": nb("ann-new"),
        f"Bob Smith_205_{sub}/report.pdf": b"%PDF-1.4",
        f"Kate O Brian_206_{sub}{NOTEBOOK}": nb("kate"),   # "download submissions in folders" off
        "stray.ipynb": nb("stray"),
    }, times={f"Ann Lee_204_{sub}/{NOTEBOOK}": (2026, 12, 1, 9, 0, 0),
              f"Jane Doe_201_{sub}/scratch.ipynb": (2026, 12, 9, 9, 0, 0),
              f"Ann Lee_204_{sub}/ch01_convolution_exercises-1.ipynb": (2026, 12, 2, 9, 0, 0)})


def test_a_moodle_export_collects_completely_and_ignores_online_text(released, root, tmp_path):
    students = course.collect(root, ASSIGNMENT, moodle_zip(released, tmp_path))   # detected, not named
    assert students == ["moodle-201", "moodle-202", "moodle-203", "moodle-204", "moodle-206"]
    assert [marker(root, s) for s in students] == ["jane", "jürgen", "andré", "ann-new", "kate"]
    text, sub = report(root), "assignsubmission_file_"
    assert "layout: moodle (detected" in text
    assert "duplicate moodle-204 ch01_convolution_exercises.ipynb: kept 'Ann Lee_204_assignsubmission_file_/" \
           "ch01_convolution_exercises-1.ipynb' (the newest)" in text
    assert f"duplicate moodle-201 {NOTEBOOK}: kept 'Jane Doe_201_{sub}/{NOTEBOOK}' (the one named as the notebook), " \
           f"skipped 'Jane Doe_201_{sub}/scratch.ipynb'" in text
    assert "skipped Bob Smith_205_assignsubmission_file_/report.pdf: not a notebook" in text
    assert "skipped stray.ipynb" in text and "onlinetext" not in text
    assert "ignored 1 file(s) the LMS adds" in text
    names = {r["nbgrader_id"]: r["name"] for r in lms.read_mapping(root)}
    assert names["moodle-202"] == "Jürgen Müller" and names["moodle-203"] == "André Lefèvre"


def test_blackboard_keeps_the_newest_attempt_and_reads_names_from_the_receipts(released, root, tmp_path):
    nb = lambda m: notebook(released, m)  # noqa: E731
    first, second = "2026-12-01-10-00-00", "2026-12-02-09-30-00"
    receipt = "Name: {} ({})\nAssignment: ch01 Convolution\n\nFiles:\n\tOriginal filename: x.ipynb\n"
    entries = {
        f"ch01 Convolution_jdoe_attempt_{first}_{NOTEBOOK}": nb("jane-1"),
        f"ch01 Convolution_jdoe_attempt_{first}.txt": receipt.format("Jane Doe", "jdoe"),
        f"ch01 Convolution_jdoe_attempt_{second}_ch01_convolution_exercises(1).ipynb": nb("jane-2"),
        f"ch01 Convolution_jdoe_attempt_{second}.txt": receipt.format("Jane Doe", "jdoe"),
        f"ch01 Convolution_ann_lee_attempt_{first}_Untitled.ipynb": nb("ann"),
        f"ch01 Convolution_ann_lee_attempt_{first}.txt": receipt.format("Ann Lee", "ann_lee"),
        f"ch01 Convolution_jmuller_attempt_{first}_{NOTEBOOK}": nb("jürgen"),
        f"ch01 Convolution_jmuller_attempt_{first}.txt": receipt.format("Jürgen Müller", "jmuller"),
    }
    students = course.collect(root, ASSIGNMENT, make_zip(tmp_path / "bb.zip", entries), lms="blackboard")
    assert students == ["blackboard-ann_lee", "blackboard-jdoe", "blackboard-jmuller"]
    assert [marker(root, s) for s in students] == ["ann", "jane-2", "jürgen"]
    stamp = (root / "submitted" / "blackboard-jdoe" / ASSIGNMENT / "timestamp.txt").read_text()
    assert stamp == "2026-12-02 09:30:00"   # the attempt's time, for nbgrader's lateness
    text = report(root)
    assert "duplicate blackboard-jdoe" in text and "ignored 4 file(s)" in text
    assert "blackboard-jmuller (blackboard jmuller, Jürgen Müller)" in text


def test_brightspace_files_and_folders_are_collected_with_the_newest_submission(released, root, tmp_path):
    nb = lambda m: notebook(released, m)  # noqa: E731
    entries = {
        f"101-5001 - Doe, Jane - Dec 1, 2026 1005 AM_{NOTEBOOK}": nb("jane"),
        "102-5002 - Müller, Jürgen - Dec 2, 2026 945 PM/ch01_convolution_exercises (1).ipynb": nb("jürgen"),
        f"103-5003 - Lee, Ann - Dec 1, 2026 1000 AM_{NOTEBOOK}": nb("ann-old"),
        f"104-5003 - Lee, Ann - Dec 3, 2026 0800 AM_{NOTEBOOK}": nb("ann-new"),
        "index.html": "<html>submissions</html>",
    }
    students = course.collect(root, ASSIGNMENT, make_zip(tmp_path / "d2l.zip", entries))
    assert students == ["brightspace-5001", "brightspace-5002", "brightspace-5003"]
    assert [marker(root, s) for s in students] == ["jane", "jürgen", "ann-new"]
    assert (root / "submitted" / "brightspace-5002" / ASSIGNMENT / "timestamp.txt").read_text() == "2026-12-02 21:45:00"
    assert "layout: brightspace (detected" in report(root) and "ignored 1 file(s)" in report(root)


def test_the_nbgrader_layouts_still_collect_and_a_bad_id_is_skipped_not_fatal(released, root, tmp_path):
    inbox = tmp_path / "in"
    (inbox / "carol" / ASSIGNMENT).mkdir(parents=True)
    (inbox / f"alice_{NOTEBOOK}").write_bytes(notebook(released, "alice"))
    (inbox / "carol" / ASSIGNMENT / NOTEBOOK).write_bytes(notebook(released, "carol"))
    (inbox / "bad id!").mkdir()
    (inbox / "bad id!" / NOTEBOOK).write_bytes(notebook(released, "bad"))
    assert course.collect(root, ASSIGNMENT, inbox) == ["alice", "carol"]
    assert "skipped bad id!/ch01_convolution_exercises.ipynb: student id 'bad id!' must be" in report(root)
    assert not (root / lms.MAPPING).exists()   # no LMS ids to remember


def test_nothing_collectable_names_every_layout_expected(root, tmp_path):
    zipped = make_zip(tmp_path / "odd.zip", {"random.ipynb": "{}", "readme.txt": "hi"})
    with pytest.raises(course.CourseError) as info:
        course.collect(root, ASSIGNMENT, zipped)
    for layout in ("Canvas: lastfirst[_LATE]_USERID", "Moodle:", "Blackboard:", "Brightspace:", "STUDENT_NOTEBOOK"):
        assert layout in str(info.value)
    with pytest.raises(course.CourseError, match="no notebook .* Canvas"):
        course.collect(root, ASSIGNMENT, zipped, lms="canvas")


def test_notebook_names_are_matched_by_their_normalised_name():
    two = ["part_a.ipynb", "part_b.ipynb"]
    assert lms.match_notebook("Part A (2).ipynb", two) == ("part_a.ipynb", "renamed from 'Part A (2).ipynb'")
    assert lms.match_notebook("part_b-1.ipynb", two)[0] == "part_b.ipynb"
    assert lms.match_notebook("Untitled.ipynb", two)[0] is None   # two notebooks: a guess would be wrong
    assert lms.match_notebook("Untitled.ipynb", ["only.ipynb"])[0] == "only.ipynb"


def test_lms_ids_map_to_valid_distinct_nbgrader_ids():
    ids = ["12345", "jürgen.m@uni.example", "jurgen.m-uni.example", "a b", "x" * 80]
    mapped = [student_id("moodle", i) for i in ids]
    assert mapped[0] == "moodle-12345" and len(set(mapped)) == len(ids)
    assert all(course.STUDENT_ID.match(m) for m in mapped)
    assert mapped == [student_id("moodle", i) for i in ids]   # stable from one collect to the next
    # the same plugin is nbgrader's: it runs as `nbgrader zip_collect --collector=…` on an absolute path too
    info = CanvasCollector().collect(f"/downloaded/{ASSIGNMENT}/extracted/doejane_LATE_1001_5_{NOTEBOOK}")
    assert (info["student_id"], info["file_id"], info["late"]) == ("canvas-1001", NOTEBOOK, True)


def grade(root: Path, scores: dict[str, list[str] | None]) -> dict:
    """Fill the gradebook as autograde would: each student gets full points on the named cells (None: all), 0 on
    the rest. Returns the source's points per graded cell (the oracle)."""
    source = json.loads((root / "source" / ASSIGNMENT / NOTEBOOK).read_text())
    points = {c["metadata"]["nbgrader"]["grade_id"]: float(c["metadata"]["nbgrader"]["points"])
              for c in source["cells"] if c["metadata"].get("nbgrader", {}).get("points")}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for student, cells in scores.items():
            gb.update_or_create_student(student)
            sub = gb.add_submission(ASSIGNMENT, student)
            for nb in sub.notebooks:
                for g in nb.grades:
                    g.manual_score = g.max_score if cells is None or g.name in cells else 0.0
            gb.db.commit()
    return points


def canvas_import(path: Path) -> tuple[tuple[str, str], float, dict[int, str]]:
    """Read a gradebook CSV the way Canvas's GradebookImporter does (app/models/gradebook_importer.rb): the header's
    first columns are Student, ID, SIS User ID, SIS Login ID, and the last student column matches Section; a row
    whose first cell says Points Possible gives the points; every other row is a student, found by ID (the user id
    as an integer); an assignment heading is "Title (id)". Returns ((title, id), points, {user id: grade})."""
    with open(path, newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    assert re.search("Student", header[0]) and re.search("ID", header[1])
    assert re.search(r"SIS\s+User\s+ID", header[2]) and re.search(r"SIS\s+Login\s+ID", header[3])
    assert re.search("Section", header[4]) and len(header) == 6   # five student columns, one assignment
    title, assignment_id = re.fullmatch(r"(.*) \((\d+)\)", header[5]).groups()
    pp = [r for r in rows if re.search("Points Possible", r[0])]
    assert len(pp) == 1
    return (title, assignment_id), float(pp[0][5]), {int(r[1]): r[5] for r in rows if r not in pp}


def test_grades_go_back_to_canvas_as_its_gradebook_import_reads_them(released, root, tmp_path, capsys):
    course.collect(root, ASSIGNMENT, canvas_zip(released, tmp_path))
    points = grade(root, {"canvas-1001": None, "canvas-1002": ["test_same_padding"], "canvas-1003": []})
    total, same = sum(points.values()), points["test_same_padding"]
    assert total == 8   # chapter 1's points, as written in its source
    out = tmp_path / "canvas.csv"
    assert course.main(["export", str(root), str(out), "--lms", "canvas", "--assignment", ASSIGNMENT,
                        "--column", "Ch. 1 convolution (4242)"]) == 0
    printed = capsys.readouterr().out
    assert "canvas: 3 of 6 student(s) exported, out of 8 points" in printed
    assert "not exported: canvas-1004 (smithbob) has no graded submission" in printed
    assignment, possible, grades = canvas_import(out)
    assert assignment == ("Ch. 1 convolution", "4242") and possible == total
    # the students not graded have no row: an empty cell would clear a grade entered in Canvas
    assert {k: float(v) for k, v in grades.items()} == {1001: total, 1002: same, 1003: 0.0}


def moodle_import(path: Path) -> dict[str, dict]:
    """Read a grading worksheet the way Moodle's assignfeedback_offline importer does (importgradeslib.php): columns
    found by their exact English headings, Identifier, Grade and Last modified (grade) required; the participant
    number is what follows "Participant "; a row with an empty grade is skipped. Returns {participant: row}."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {"Identifier", "Grade", "Last modified (grade)"} <= set(rows[0])
    found = {}
    for row in rows:
        assert row["Identifier"].startswith("Participant ")
        assert datetime.fromisoformat(row["Last modified (grade)"]).tzinfo is not None   # strtotime reads it
        if row["Grade"] != "":
            found[row["Identifier"][len("Participant "):]] = row
    return found


def test_grades_go_back_to_moodle_as_its_grading_worksheet_upload_reads_them(released, root, tmp_path):
    course.collect(root, ASSIGNMENT, moodle_zip(released, tmp_path))
    points = grade(root, {"moodle-201": None, "moodle-202": ["test_same_padding"], "moodle-204": []})
    (root / "reports" / f"{ASSIGNMENT}.csv").write_text(
        "student_id,score,max_score,feedback,flags\nmoodle-202,2,8,conv2d (2 of 8) | pad the input,\n")
    out = course.export(root, tmp_path / "moodle.csv", lms="moodle", assignment=ASSIGNMENT, points=100)
    rows = moodle_import(out)
    assert set(rows) == {"201", "202", "204"}   # 203 and 206 were collected but not graded
    assert rows["201"]["Full name"] == "Jane Doe"
    assert float(rows["201"]["Grade"]) == 100.0 and float(rows["204"]["Grade"]) == 0.0
    assert float(rows["202"]["Grade"]) == pytest.approx(100 * points["test_same_padding"] / sum(points.values()))
    assert {r["Maximum Grade"] for r in rows.values()} == {"100"}
    assert rows["202"]["Feedback comments"] == "conv2d (2 of 8)\npad the input"
    with pytest.raises(course.CourseError, match="collect the canvas export first"):
        course.export(root, tmp_path / "c.csv", lms="canvas", assignment=ASSIGNMENT)
