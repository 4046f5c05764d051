"""Submissions in from a learning-management system's export, grades back out in its import format (issue 38).

Layouts ``collect`` reads (one nbgrader collector plugin each, autograder/lms_plugins.py):

- **Canvas** ("Download submissions"): one flat zip, each file ``lastfirst[_LATE]_USERID_ATTACHMENTID_ORIGINAL``:
  ``lastfirst`` the sortable name lower-cased without spaces, ``LATE`` when Canvas marked the submission late,
  ``USERID`` the Canvas user id (the ``ID`` column of its gradebook), ``ATTACHMENTID`` the uploaded file's id (it
  grows with each upload, so it orders a student's files), ``ORIGINAL`` the name as uploaded, which Canvas keeps
  (``… (1).ipynb`` from a browser download, ``…-1.ipynb`` when Canvas renamed a resubmitted file). Not verified here:
  the name of an online-text entry (taken to be ``lastfirst_USERID_text.html``) and anonymous-grading exports.
- **Moodle** (assignment, "Download all submissions"): one folder a student and plugin,
  ``Full Name_PARTICIPANTID_assignsubmission_file_/ORIGINAL`` (Moodle turns ``_`` in names into spaces), or the same
  prefix on each file when "download submissions in folders" is off; ``…_assignsubmission_onlinetext_/`` folders hold
  online text and are ignored. ``PARTICIPANTID`` is Moodle's participant number for this assignment, the one its
  offline grading worksheet names ``Participant NNN`` (with blind marking the name is ``Participant``).
- **Blackboard Learn** (Grade Center, "Assignment File Download"): one flat zip,
  ``ASSIGNMENT_USERNAME_attempt_YYYY-MM-DD-HH-MM-SS_ORIGINAL`` and a receipt ``…_attempt_YYYY-MM-DD-HH-MM-SS.txt``
  per attempt (``Name: First Last (username)``; read for the name, and for usernames that contain ``_``).
- **Brightspace (D2L)** (Assignments, "Download"): ``SUBMISSIONID-USERID - Last, First - Mon DD, YYYY HHMM AM``
  followed by ``_``, `` - `` or ``/`` (a folder) and the file as uploaded, plus ``index.html``. Not verified here:
  which of the two numbers is the user's (taken: the second), and the name order, which depends on the site.
- **No LMS**: nbgrader's exchange layout ``STUDENT/ASSIGNMENT/NOTEBOOK`` (or ``STUDENT/NOTEBOOK``) or one file a
  student, ``STUDENT_NOTEBOOK``; the student id is used as given.

Why the plugins and not nbgrader's ``ZipCollectApp`` (``nbgrader zip_collect``): the app stops the whole batch on two
files of one student without timestamps (Canvas and Moodle write none) and on a timestamp it cannot parse; it keeps
the student's file name (``Untitled.ipynb`` would not be graded); its report is log lines; and it needs the
``downloaded/ASSIGNMENT/archive`` folders in the course. So ``gather`` calls the plugins' ``collect`` itself, the
matching nbgrader defines, and does the rest: newest file wins, any file name fits a one-notebook assignment, and
every file ends up in a report line. The plugins still work with ``nbgrader zip_collect --collector=…``.

Each LMS user gets the nbgrader id ``LMS-ID`` (``canvas-12345``; ``lms_plugins.student_id``), recorded in the course
folder's ``lms_students.csv`` (``nbgrader_id, lms, lms_id, name``), which ``export_grades`` reads to write the grades
back under the LMS's ids: Canvas's gradebook import CSV and Moodle's offline grading worksheet.
"""

from __future__ import annotations

import csv
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from autograder.lms_plugins import COLLECTORS, NBGRADER_ID, NbgraderCollector

LAYOUTS = (*COLLECTORS, "nbgrader")   # what `collect --lms` accepts, besides "auto"
EXPORTS = ("canvas", "moodle")        # what `export --lms` writes
MAPPING = "lms_students.csv"
MAPPING_FIELDS = ("nbgrader_id", "lms", "lms_id", "name")
JUNK = re.compile(r"(?:^|/)(?:__MACOSX|\.ipynb_checkpoints)/|(?:^|/)(?:\.DS_Store|Thumbs\.db)$")


class LMSError(Exception):
    """A problem with the instructor's input, reported as one line."""


@dataclass
class Pick:
    """One notebook of one student, as collected."""

    student: str        # the nbgrader id
    lms: str
    lms_id: str
    name: str
    notebook: str       # the assignment's notebook it is graded as
    path: Path          # the file in the unpacked export
    upload: str         # its path in the export
    timestamp: datetime | None = None
    key: tuple = ()     # grows with newer uploads
    late: bool = False
    renamed: str = ""   # the name the student gave it, when not the notebook's


@dataclass
class Batch:
    """What ``gather`` found: the layout, the notebooks it keeps, and the report."""

    layout: str
    picks: list[Pick] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def unpack(submissions: Path, into: Path) -> tuple[Path, dict[str, float]]:
    """The folder of submissions (a .zip extracted into `into`) and each file's modification time by relative path
    (from the zip's entries: extraction would give every file the current time)."""
    if submissions.is_dir():
        return submissions, {unicodedata.normalize("NFC", p.relative_to(submissions).as_posix()): p.stat().st_mtime
                             for p in submissions.rglob("*") if p.is_file()}
    if submissions.suffix.lower() != ".zip" or not submissions.is_file():
        raise LMSError(f"{submissions}: not a folder or a .zip of submissions")
    mtimes = {}
    try:
        with zipfile.ZipFile(submissions) as archive:
            for info in archive.infolist():
                if not info.flag_bits & 0x800:   # no UTF-8 flag: zipfile read the name as cp437; most LMSs write UTF-8
                    try:
                        info.filename = info.filename.encode("cp437").decode("utf-8")
                    except (UnicodeEncodeError, UnicodeDecodeError):
                        pass
                if info.is_dir():
                    continue
                path = Path(archive.extract(info, into))   # zipfile drops '..' and absolute parts
                mtimes[unicodedata.normalize("NFC", path.relative_to(into).as_posix())] = \
                    datetime(*info.date_time).timestamp()
    except zipfile.BadZipFile as exc:
        raise LMSError(f"{submissions}: not a readable zip ({exc})") from exc
    return into, mtimes


def _stem_key(name: str, strip_copy: bool) -> str:
    """A file name reduced for comparison: NFKC, case-folded, without .ipynb, runs of other characters as '_', and
    (strip_copy) without the copy suffixes browsers and LMSs add: ' (1)', '-1'."""
    stem = unicodedata.normalize("NFKC", name).casefold()
    stem = re.sub(r"\.ipynb$", "", stem)
    if strip_copy:
        stem = re.sub(r"(?:\s*\(\d+\)|-\d+)+$", "", stem.strip())
    return re.sub(r"[^0-9a-z]+", "_", stem).strip("_")


ONLY_NOTEBOOK = " (the assignment's only notebook)"


def match_notebook(upload: str, notebooks: list[str]) -> tuple[str | None, str]:
    """(the assignment's notebook an uploaded file is, '' or why it fits) or (None, why it fits none)."""
    if upload in notebooks:
        return upload, ""
    for strip in (False, True):
        found = [nb for nb in notebooks if _stem_key(nb, strip) == _stem_key(upload, strip)]
        if len(found) == 1:
            return found[0], f"renamed from {upload!r}"
    if len(notebooks) == 1:
        return notebooks[0], f"renamed from {upload!r}{ONLY_NOTEBOOK}"
    return None, f"its name fits none of the assignment's notebooks ({', '.join(notebooks)})"


def _collectors(assignment: str, usernames: list[str]) -> dict:
    found = {name: cls(usernames=usernames) if name == "blackboard" else cls() for name, cls in COLLECTORS.items()}
    found["nbgrader"] = NbgraderCollector(assignment=assignment)
    return found


BLACKBOARD_RECEIPT = re.compile(r"_attempt_\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d\.txt$")


def _receipts(folder: Path, files: list[str]) -> dict[str, str]:
    """Blackboard receipts: {username: name} from their ``Name: First Last (username)`` line."""
    people = {}
    for rel in files:
        if BLACKBOARD_RECEIPT.search(rel):
            text = (folder / rel).read_text(errors="replace")
            if m := re.search(r"^Name:\s*(.*?)\s*\(([^()\s]+)\)\s*$", text, re.M):
                people[m.group(2)] = m.group(1)
    return people


def expected_layouts() -> str:
    return "; ".join(c.layout for c in _collectors("ASSIGNMENT", []).values())


def gather(folder: Path, assignment: str, notebooks: list[str], lms: str = "auto",
           mtimes: dict[str, float] | None = None) -> Batch:
    """Match every file of an unpacked export to a student and a notebook of the assignment.

    `lms` is one of LAYOUTS or "auto" (the LMS layout most notebooks fit; nbgrader's layouts if none fits any).
    A file that fits nothing is skipped with a report line; of two files of one student and notebook, one named as
    the notebook beats one that fits only as the assignment's single notebook, then the newest is kept (by the time
    or upload id in its name, else the file's time). Raises LMSError only when no notebook at all
    can be collected, naming the layouts expected."""
    mtimes = mtimes or {}
    files = sorted(unicodedata.normalize("NFC", p.relative_to(folder).as_posix())
                   for p in folder.rglob("*") if p.is_file())
    on_disk = {unicodedata.normalize("NFC", p.relative_to(folder).as_posix()): p for p in folder.rglob("*")}
    files = [f for f in files if not JUNK.search(f)]
    people = _receipts(folder, files)
    collectors = _collectors(assignment, sorted(people))
    if lms not in ("auto", *LAYOUTS):
        raise LMSError(f"unknown LMS {lms!r}: use auto, {', '.join(LAYOUTS)}")
    notebook_files = [f for f in files if f.lower().endswith(".ipynb")]
    fits = {name: sum(bool(c.collect(f)) for f in notebook_files) for name, c in collectors.items()}
    detected = lms == "auto"
    if detected:
        lms = max(COLLECTORS, key=lambda n: fits[n]) if max(fits[n] for n in COLLECTORS) else "nbgrader"
    collector = collectors[lms]
    batch = Batch(lms)
    batch.lines.append(f"layout: {lms}" + (f" (detected: {fits[lms]} of {len(notebook_files)} notebooks fit it)"
                                            if detected else f" ({fits[lms]} of {len(notebook_files)} notebooks fit)"))

    candidates: dict[tuple[str, str], list[Pick]] = {}
    ignored = 0
    for rel in files:
        if not rel.lower().endswith(".ipynb"):
            if collector.is_sidecar(rel):
                ignored += 1
            else:
                batch.lines.append(f"skipped {rel}: not a notebook (.ipynb)")
            continue
        info = collector.collect(rel)
        if not info:
            batch.lines.append(f"skipped {rel}: its name does not fit the layout ({collector.layout})")
            continue
        if not NBGRADER_ID.match(info["student_id"]):
            batch.lines.append(f"skipped {rel}: student id {info['student_id']!r} must be letters, digits, "
                               "'.', '_' or '-'")
            continue
        notebook, why = match_notebook(info["upload"], notebooks)
        if notebook is None:
            batch.lines.append(f"skipped {rel}: {why}")
            continue
        stamp = datetime.fromisoformat(info["timestamp"]) if info.get("timestamp") else None
        name = people.get(info["lms_id"], info["name"]) if lms == "blackboard" else info["name"]
        pick = Pick(info["student_id"], info["lms"], info["lms_id"], name, notebook, on_disk[rel], rel, stamp,
                    (stamp or datetime.min, info["order"], mtimes.get(rel, 0.0)), info["late"], why)
        candidates.setdefault((pick.student, notebook), []).append(pick)

    for (student, notebook), picks in sorted(candidates.items()):
        # a file named as the notebook beats one taken only because the assignment has one notebook; then the newest
        picks.sort(key=lambda p: (not p.renamed.endswith(ONLY_NOTEBOOK), p.key, p.upload))
        kept = picks[-1]
        for older in picks[:-1]:
            if older.renamed.endswith(ONLY_NOTEBOOK) and not kept.renamed.endswith(ONLY_NOTEBOOK):
                why = "the one named as the notebook"
            elif older.key == kept.key:
                why = "the last by name: the two look the same age"
            else:
                why = "the newest"
            batch.lines.append(f"duplicate {student} {notebook}: kept {kept.upload!r} ({why}), "
                               f"skipped {older.upload!r}")
        batch.picks.append(kept)
        who = "" if kept.lms == "nbgrader" else f" ({kept.lms} {kept.lms_id}, {kept.name})"
        batch.lines.append(f"collected {student}{who}: {notebook} <- {kept.upload}"
                           + (f", {kept.renamed}" if kept.renamed else "") + (", marked LATE" if kept.late else ""))
    if ignored:
        batch.lines.append(f"ignored {ignored} file(s) the LMS adds (receipts, index pages, online text)")
    students = {p.student for p in batch.picks}
    skipped = sum(line.startswith("skipped") for line in batch.lines)
    dupes = sum(line.startswith("duplicate") for line in batch.lines)
    batch.lines.append(f"summary: {len(students)} student(s), {len(batch.picks)} notebook(s) collected, "
                       f"{skipped} file(s) skipped, {dupes} duplicate(s) resolved to the newest")
    if not batch.picks:
        others = [f"{n} ({k})" for n, k in fits.items() if k and n != lms]
        raise LMSError(f"no notebook of {assignment} could be collected from {len(files)} file(s) in the {lms} layout"
                       + (f"; notebooks fit {', '.join(others)}: use --lms {others[0].split()[0]}" if others else "")
                       + f" (first: {batch.lines[1] if len(batch.lines) > 2 else 'no file'}). "
                       f"Expected one of these layouts: {expected_layouts()}")
    return batch


def read_mapping(course: Path) -> list[dict]:
    path = course / MAPPING
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def record(course: Path, assignment: str, batch: Batch, source: str) -> Path:
    """Add the batch's LMS students to lms_students.csv and write reports/collect_ASSIGNMENT.txt; return the report."""
    rows = {r["nbgrader_id"]: r for r in read_mapping(course)}
    for p in batch.picks:
        if p.lms != "nbgrader":
            rows[p.student] = {"nbgrader_id": p.student, "lms": p.lms, "lms_id": p.lms_id, "name": p.name}
    if rows:
        with open(course / MAPPING, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=MAPPING_FIELDS)
            writer.writeheader()
            writer.writerows(rows[k] for k in sorted(rows))
    report = course / "reports" / f"collect_{assignment}.txt"
    report.parent.mkdir(exist_ok=True)
    report.write_text(f"collect {assignment} from {source}\n" + "".join(line + "\n" for line in batch.lines),
                      encoding="utf-8")
    return report


def export_grades(course: Path, assignment: str, lms: str, dest: Path, column: str | None = None,
                  points: float | None = None) -> list[str]:
    """Write one assignment's scores, from the gradebook, as the LMS imports them; return report lines.

    canvas: the gradebook import CSV (``Student, ID, SIS User ID, SIS Login ID, Section, <column>``, then the
    ``Points Possible`` row; Canvas finds the student by ``ID``, the Canvas user id). `column` should be the
    assignment's heading in a Canvas gradebook export, ``Name (assignment id)``; with a name alone Canvas looks the
    assignment up by title, or adds a new one. moodle: the assignment's offline grading worksheet, as Moodle's
    assignfeedback_offline importer reads it (``Identifier`` = ``Participant NNN``, ``Full name``, ``Grade``,
    ``Maximum Grade``, ``Last modified (grade)`` = now, ``Feedback comments``: the grader's feedback lines of
    reports/ASSIGNMENT.csv; Moodle's English headings). `points` rescales the scores to the LMS's maximum (Moodle
    skips a grade above the assignment's). A collected student without a graded submission gets no row: an empty
    Canvas cell would clear a grade entered there, and the report lines name them."""
    from nbgrader.api import Gradebook, MissingEntry

    if lms not in EXPORTS:
        raise LMSError(f"grades go back to {', '.join(EXPORTS)} only (not {lms!r}); use the nbgrader CSV otherwise")
    students = [r for r in read_mapping(course) if r["lms"] == lms]
    if not students:
        raise LMSError(f"no {lms} student in {course / MAPPING}: collect the {lms} export first")
    feedback = {}
    report = course / "reports" / f"{assignment}.csv"
    if report.exists():
        with open(report, newline="", encoding="utf-8") as f:
            feedback = {row["student_id"]: row.get("feedback", "") for row in csv.DictReader(f)}
    lines, graded = [], []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        try:
            max_score = float(gb.find_assignment(assignment).max_score)
        except MissingEntry:
            raise LMSError(f"the gradebook has no assignment {assignment!r}") from None
        for r in students:
            try:
                score = float(gb.find_submission(assignment, r["nbgrader_id"]).score)
            except MissingEntry:
                lines.append(f"not exported: {r['nbgrader_id']} ({r['name']}) has no graded submission of {assignment}")
                continue
            graded.append((r, score * points / max_score if points and max_score else score))
    top = points or max_score

    def fmt(v: float) -> str:
        return f"{v:.2f}".rstrip("0").rstrip(".")

    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if lms == "canvas":
            writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column or assignment])
            writer.writerow(["    Points Possible", "", "", "", "", fmt(top)])
            for r, score in graded:
                writer.writerow([r["name"], r["lms_id"], "", "", "", fmt(score)])
        else:   # Moodle skips a grade changed in Moodle more than a minute after "Last modified (grade)"
            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            writer.writerow(["Identifier", "Full name", "Grade", "Maximum Grade", "Last modified (grade)",
                             "Feedback comments"])
            for r, score in graded:
                writer.writerow([f"Participant {r['lms_id']}", r["name"], fmt(score), fmt(top), now,
                                 feedback.get(r["nbgrader_id"], "").replace(" | ", "\n")])
    lines.append(f"{lms}: {len(graded)} of {len(students)} student(s) exported, out of {fmt(top)} points, to {dest}")
    return lines
