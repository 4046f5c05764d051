"""nbgrader collector plugins, one per learning-management system (LMS): how each names the files it exports.

Each class is an nbgrader ``FileNameCollectorPlugin``: its ``named_regexp`` gives the ``student_id``, ``file_id`` and,
where the LMS writes one, ``timestamp`` of a submitted file, and ``collect(path)`` returns them as nbgrader expects
(``student_id`` already a valid nbgrader id, ``timestamp`` a string nbgrader's ``parse_utc`` reads). So the same class
works in ``autograder/course.py collect`` (through autograder/lms.py) and in nbgrader's own command::

    nbgrader zip_collect ch01_convolution --collector=autograder.lms_plugins.CanvasCollector

``collect`` adds what the course needs beyond nbgrader's keys: ``lms``, ``lms_id`` (the LMS's own user id),
``name`` (as the LMS wrote it), ``upload`` (the file name the student uploaded), ``late`` and ``order`` (a key that
grows with newer uploads, for two files of one student). The layouts themselves are described in autograder/lms.py.
The patterns accept a relative path (``autograder/lms.py`` passes one) or an absolute one (``zip_collect`` does).
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from datetime import datetime

from nbgrader.plugins import FileNameCollectorPlugin
from traitlets import List, Unicode

NBGRADER_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")   # what autograder/course.py accepts as a student id
_QUIET = logging.getLogger("autograder.lms_plugins")   # nbgrader's plugin warns on every file a pattern misses
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def student_id(lms: str, lms_id: str) -> str:
    """The nbgrader student id of an LMS user: ``LMS-ID`` (``canvas-12345``), or, where the LMS id has characters
    nbgrader refuses (``é``, ``@``, spaces) or is too long, an ASCII form of it plus 8 hex digits of its hash, so that
    two LMS ids never share an nbgrader id. The same LMS id always gives the same nbgrader id."""
    plain = f"{lms}-{lms_id}"
    if NBGRADER_ID.match(plain):
        return plain
    ascii_id = unicodedata.normalize("NFKD", lms_id).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", ascii_id).strip("-.")[:40] or "id"
    return f"{lms}-{slug}-{hashlib.sha1(lms_id.encode()).hexdigest()[:8]}"


class LMSCollector(FileNameCollectorPlugin):
    """What the four LMS collectors share: nbgrader's matching, then the LMS id mapped to an nbgrader id."""

    lms = "lms"
    layout = ""          # the layout in words, for messages
    sidecars: re.Pattern | None = None   # files of the LMS's own (receipts, index pages, online text): not submissions

    def __init__(self, **kwargs):
        kwargs.setdefault("log", _QUIET)
        super().__init__(**kwargs)

    def collect(self, submitted_file: str) -> dict | None:
        found = super().collect(unicodedata.normalize("NFC", str(submitted_file)))
        if not found:
            return None
        info = {k: v for k, v in found.items() if v is not None}
        lms_id = info["student_id"]
        upload = info["file_id"].rsplit("/", 1)[-1]
        info.update(lms=self.lms, lms_id=lms_id, student_id=student_id(self.lms, lms_id), file_id=upload,
                    upload=upload, name=info.get("name", lms_id).strip(), late=bool(info.get("late")),
                    order=self.order(info))
        stamp = self.timestamp(info)
        info["timestamp"] = stamp.isoformat(" ") if stamp else None
        return info

    def timestamp(self, info: dict) -> datetime | None:
        """The submission time the LMS wrote in the name (the LMS server's local time), or None."""
        return None

    def order(self, info: dict) -> tuple:
        """A key that grows with newer uploads of one student, from the name alone; () when the name has none."""
        return ()

    def is_sidecar(self, path: str) -> bool:
        return bool(self.sidecars and self.sidecars.search(unicodedata.normalize("NFC", path)))


class CanvasCollector(LMSCollector):
    """Canvas: ``lastfirst[_LATE]_USERID_ATTACHMENTID_ORIGINAL`` (the attachment id grows with each upload)."""

    lms = "canvas"
    layout = "Canvas: lastfirst[_LATE]_USERID_FILEID_NOTEBOOK.ipynb"
    named_regexp = Unicode(
        r"^(?:.*/)?(?P<name>[^/]+?)_(?:(?P<late>LATE)_)?(?P<student_id>\d+)_(?P<attachment_id>\d+)_"
        r"(?P<file_id>[^/]+)$").tag(config=True)
    sidecars = re.compile(r"(?:^|/)[^/]+?_(?:LATE_)?\d+_text\.html?$")   # an online text entry (unverified name)

    def order(self, info: dict) -> tuple:
        return (int(info["attachment_id"]),)


class MoodleCollector(LMSCollector):
    """Moodle: ``Full Name_PARTICIPANTID_assignsubmission_file_/ORIGINAL`` (one folder a student), or the same
    prefix on each file when "download submissions in folders" is off."""

    lms = "moodle"
    layout = "Moodle: Full Name_ID_assignsubmission_file_/NOTEBOOK.ipynb (or …_assignsubmission_file_NOTEBOOK.ipynb)"
    named_regexp = Unicode(
        r"^(?:.*/)?(?P<name>[^/]+?)_(?P<student_id>\d+)_assignsubmission_file_(?:/(?:[^/]+/)*)?"
        r"(?P<file_id>[^/]+)$").tag(config=True)
    sidecars = re.compile(r"_\d+_assignsubmission_(?!file_)[a-z]+_")   # online text, comments…: other plugins


class BlackboardCollector(LMSCollector):
    """Blackboard Learn: ``ASSIGNMENT_USERNAME_attempt_YYYY-MM-DD-HH-MM-SS_ORIGINAL`` plus a ``….txt`` receipt per
    attempt. A username is taken as the last part without ``_`` before ``_attempt_``, unless ``usernames`` (read from
    the receipts by autograder/lms.py) names a longer one that fits."""

    lms = "blackboard"
    layout = "Blackboard: ASSIGNMENT_USERNAME_attempt_YYYY-MM-DD-HH-MM-SS_NOTEBOOK.ipynb"
    named_regexp = Unicode(
        r"^(?:.*/)?(?P<assignment>[^/]+)_(?P<student_id>[^/_]+)_attempt_"
        r"(?P<stamp>\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d)_(?P<file_id>[^/]+)$").tag(config=True)
    usernames = List(Unicode(), help="usernames known from the receipts (they may contain '_')").tag(config=True)
    sidecars = re.compile(r"_attempt_\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d\.txt$")   # the receipt of an attempt

    def collect(self, submitted_file: str) -> dict | None:
        info = super().collect(submitted_file)
        if info:
            base = unicodedata.normalize("NFC", str(submitted_file)).rsplit("/", 1)[-1]
            for user in sorted(self.usernames, key=len, reverse=True):
                if "_" in user and f"_{user}_attempt_{info['stamp']}_" in base:
                    info.update(lms_id=user, name=user, student_id=student_id(self.lms, user))
                    break
        return info

    def timestamp(self, info: dict) -> datetime:
        return datetime.strptime(info["stamp"], "%Y-%m-%d-%H-%M-%S")

    def order(self, info: dict) -> tuple:
        return (self.timestamp(info),)


class BrightspaceCollector(LMSCollector):
    """Brightspace (D2L): ``SUBMISSIONID-USERID - Last, First - Mon DD, YYYY HHMM AM`` then ``_``, `` - `` or ``/``
    and the file as uploaded, with an ``index.html`` beside them."""

    lms = "brightspace"
    layout = "Brightspace: NNNNN-NNNNN - Last, First - Mon DD, YYYY HHMM AM_NOTEBOOK.ipynb (or … AM/NOTEBOOK.ipynb)"
    named_regexp = Unicode(
        r"^(?:.*/)?(?P<submission_id>\d+)-(?P<student_id>\d+) - (?P<name>[^/]+?) ?- "
        r"(?P<stamp>[A-Z][a-z]{2} \d{1,2}, \d{4} \d{3,4} [AP]M)(?: - |_|/)(?P<file_id>[^/]+)$").tag(config=True)
    sidecars = re.compile(r"(?:^|/)index\.html?$")

    def timestamp(self, info: dict) -> datetime:
        month_day_year, hhmm, half = info["stamp"].rsplit(" ", 2)
        return datetime.strptime(f"{month_day_year} {hhmm.zfill(4)} {half}", "%b %d, %Y %I%M %p")

    def order(self, info: dict) -> tuple:
        return (self.timestamp(info), int(info["submission_id"]))


class NbgraderCollector(LMSCollector):
    """No LMS: nbgrader's exchange layout ``STUDENT/ASSIGNMENT/NOTEBOOK.ipynb``, ``STUDENT/NOTEBOOK.ipynb``, or one
    file a student, ``STUDENT_NOTEBOOK.ipynb``. The student id is used as it is (it must be a valid nbgrader id).
    Paths must be relative to the folder of submissions."""

    lms = "nbgrader"
    layout = "no LMS: STUDENT_NOTEBOOK.ipynb, STUDENT/NOTEBOOK.ipynb or STUDENT/ASSIGNMENT/NOTEBOOK.ipynb"
    assignment = Unicode("", help="the assignment, the middle folder of the exchange layout").tag(config=True)

    def collect(self, submitted_file: str) -> dict | None:
        path = unicodedata.normalize("NFC", str(submitted_file))
        if not path.endswith(tuple(self.valid_ext)):
            return None
        parts = path.split("/")
        if len(parts) == 3 and parts[1] == self.assignment or len(parts) == 2:
            student, upload = parts[0], parts[-1]
        elif len(parts) == 1 and "_" in path:
            student, upload = path.split("_", 1)
        else:
            return None
        return {"student_id": student, "file_id": upload, "upload": upload, "lms": self.lms, "lms_id": student,
                "name": student, "late": False, "order": (), "timestamp": None}


COLLECTORS = {c.lms: c for c in (CanvasCollector, MoodleCollector, BlackboardCollector, BrightspaceCollector)}
