"""The course's nbgrader steps (autograder/nbgrader_config.py lists them in order; PROTOCOL §1, §8).

- ``TrustedInputs``: before the kernel starts, write the grader's inputs for function tests and start importing Keras;
- ``ExecuteKeepingPoints``: nbgrader's Execute, except that a kernel that dies costs only the cells that did not run;
- ``ClipOutput``: nbgrader's LimitOutput, plus at most ``MAX_CHARS`` characters per output;
- ``SanitizeOutputs``: student HTML loses scripts, event handlers, iframes and JavaScript outputs before anyone sees it;
- ``TrustedChecks``: after the kernel is gone, score every cell that has a trusted check from that check's verdict.

Settings are traitlets (``c.TrustedChecks.profile = "full"`` …), written by ``autograder/course.py`` into each
submission's nbgrader configuration.
"""

from __future__ import annotations

import atexit
import importlib
import json
import re
import sys
import threading
import time
from pathlib import Path

from nbclient.exceptions import DeadKernelError
from nbconvert.preprocessors.sanitize import SanitizeHTML
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute, LimitOutput
from nbgrader.preprocessors.base import NbGraderPreprocessor
from traitlets import Bool, Float, Integer, Unicode

from autograder import trusted

# ------------------------------------------------------------------------------------------ before the kernel

WARM_THREAD = "trusted-warm-keras"


def needs_keras(module) -> bool:
    """Does a check module have checks that load a model (its ``KERAS`` flag, default True; PROTOCOL §2)?"""
    return module is not None and bool(getattr(module, "CHECKS", None)) and getattr(module, "KERAS", True)


def warm_keras(module, scorer: str = "") -> threading.Thread | None:
    """Import Keras in a background thread while the kernel runs, for a check module that has checks.

    TensorFlow takes seconds to import; the trusted step needs it only after the kernel has finished, and meanwhile
    the grader's process only waits on the kernel. The checks call ``wait_for_keras`` first, and so does exit. A
    check module that sets ``KERAS = False`` (its checks load no model: chapter 1) is not warmed: its grading then
    costs no TensorFlow import at all. Nor is an nbgrader process of a batch that has a scorer (``scorer``, the
    socket of ``autograder.scorer``), which imported Keras once for the whole batch."""
    if not needs_keras(module) or "keras" in sys.modules or scorer:
        return None
    thread = threading.Thread(target=importlib.import_module, args=("keras",), name=WARM_THREAD, daemon=True)
    thread.start()
    atexit.register(wait_for_keras)   # a process that ends while TensorFlow is half imported aborts (C++ terminate)
    return thread


def wait_for_keras() -> None:
    """Let ``warm_keras``'s import finish before a check runs or the process ends: a process that ended while that
    thread was still importing TensorFlow aborted ("terminate called without an active exception"), and a check
    importing TensorFlow at the same time would contend with it for the same modules."""
    for thread in threading.enumerate():
        if thread.name == WARM_THREAD and thread is not threading.current_thread():
            thread.join()


class TrustedInputs(NbGraderPreprocessor):
    """Before the kernel starts: write the grader's inputs for function tests into ``inputs_dir`` (PROTOCOL §5),
    and start importing Keras for the trusted step (``warm_keras``)."""

    inputs_dir = Unicode("", help="folder the kernel reads the grader's inputs from ($CNNBOOK_INPUTS in the kernel)"
                         ).tag(config=True)
    scorer = Unicode("", help="socket of the batch's scorer (autograder.scorer), if there is one").tag(config=True)
    cache_dir = Unicode("", help="the course's trusted cache: a check module's before_kernel(nb, cache, profile) "
                        "may start work there while the kernel runs").tag(config=True)
    profile = Unicode("sample", help="the grading profile").tag(config=True)

    def preprocess(self, nb, resources):
        module = trusted.load_checks(resources.get("nbgrader", {}).get("assignment", ""))
        if module is not None and getattr(module, "INPUTS", None) and self.inputs_dir:
            trusted.write_inputs(module, Path(self.inputs_dir))
        if module is not None and hasattr(module, "before_kernel") and self.cache_dir:
            module.before_kernel(nb, Path(self.cache_dir), self.profile)   # chapter 7: its re-run, on the other core
        warm_keras(module, self.scorer)
        return nb, resources


# ------------------------------------------------------------------------------------------ running the kernel

#: The error name given to a cell the kernel died in, and to each cell after it, which never ran.
DIED, NOT_RUN = "KernelDied", "CellNotRun"
#: How a kernel's end reads in its exit status (negative: the signal that ended it; autograder/sandbox.py's limits).
ENDINGS = {-9: "it was killed (SIGKILL: most often the memory limit of the machine or of its control group)",
           -6: "it aborted (SIGABRT: most often a native library that could not allocate memory under the limit)",
           -11: "it crashed (SIGSEGV)", -24: "it used up its CPU-time limit (SIGXCPU)",
           -25: "it wrote a file larger than the file-size limit (SIGXFSZ)"}   # (Python itself ignores SIGXFSZ)


class ExecuteKeepingPoints(Execute):
    """nbgrader's Execute, except that a kernel that dies costs only what did not run (issue 32).

    nbgrader stops grading the whole notebook on a dead kernel, so cells that had passed lost their points. Here the
    cell the kernel died in gets an error that names it and the limit it most likely hit, and each later code cell
    an error saying it never ran; grading goes on, so the cells that passed before keep their points."""

    memory_mb = Integer(0, help="the kernel's memory limit, named in the message of a kernel that died").tag(config=True)
    died_grace = Float(2.0, help="seconds to wait for a dead kernel's exit status").tag(config=True)

    def preprocess(self, nb, resources, km=None):
        self._died_in = None
        return super().preprocess(nb, resources, km)

    def _ending(self) -> str:
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        code = None
        deadline = time.monotonic() + self.died_grace
        while process is not None and code is None and time.monotonic() < deadline:
            code = process.poll()
            time.sleep(0.05)
        if code in ENDINGS:
            return ENDINGS[code]
        if code is not None:
            return f"it exited with status {code} (a call to os._exit or sys.exit in a thread, or a crash)"
        limit = f" of {self.memory_mb} MB" if self.memory_mb else ""
        return f"its exit status could not be read (the memory limit{limit} is the usual cause)"

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._died_in is not None:
            cell.outputs = [new_output("error", ename=NOT_RUN, evalue=(
                f"this cell never ran: the kernel had died in cell {self._died_in + 1}"),
                traceback=[f"{NOT_RUN}: the kernel had died in cell {self._died_in + 1}, before this cell"])]
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._died_in = index
            why = self._ending()
            self.log.warning("ExecuteKeepingPoints: the kernel died in cell %d: %s", index + 1, why)
            cell.outputs = list(cell.get("outputs", [])) + [new_output("error", ename=DIED, evalue=(
                f"the kernel died while this cell (cell {index + 1}) ran: {why}"),
                traceback=[f"{DIED}: the kernel died in cell {index + 1}: {why}"])]
            return cell, resources


MAX_CHARS = 100_000


class ClipOutput(LimitOutput):
    """LimitOutput, plus at most MAX_CHARS characters per stream or text output (autograder/README.md).

    A cell that prints 50 MB on one line passes nbgrader's LimitOutput (it counts lines), and would be copied into
    the gradebook's notebook and the feedback HTML."""

    def preprocess_cell(self, cell, resources, cell_index):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and len(output.get("text", "")) > MAX_CHARS:
                output.text = output.text[:MAX_CHARS] + f"\n... output cut at {MAX_CHARS:,} characters ...\n"
            for mime in ("text/plain", "text/html"):
                data = output.get("data", {})
                if len(data.get(mime, "")) > MAX_CHARS:
                    data[mime] = data[mime][:MAX_CHARS] + f"\n... output cut at {MAX_CHARS:,} characters ..."
        return cell, resources


#: Tags of ordinary HTML outputs (pandas tables, formatted text) kept by SanitizeOutputs; everything else is dropped.
SAFE_TAGS = ["a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "details",
             "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p",
             "pre", "s", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
             "thead", "tr", "tt", "u", "ul"]
SAFE_ATTRIBUTES = {"*": ["class", "title", "style", "align"], "a": ["href", "title"],
                   "img": ["src", "alt", "width", "height"], "td": ["colspan", "rowspan"],
                   "th": ["colspan", "rowspan", "scope"], "table": ["border"]}
HTML_TAG = re.compile(r"<[A-Za-z!/]")


class SanitizeOutputs(SanitizeHTML):
    """nbconvert's sanitiser (bleach) on every student output and on markdown that holds HTML (issue 32).

    Outputs keep text, images and ordinary HTML (tables); they lose scripts, event handlers, iframes, forms, SVG and
    JavaScript outputs (every mime type outside ``safe_output_keys`` and ``sanitized_output_types`` is removed), so
    nothing a student's notebook displays runs in the instructor's browser: not in formgrader, which shows the
    autograded notebook, nor in the feedback pages made from it. Links keep http(s) and mailto only; images keep
    inline data only."""

    enabled = Bool(True, help="nbconvert's preprocessors are off by default; this one is always on").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.tags, self.attributes, self.strip = SAFE_TAGS, SAFE_ATTRIBUTES, True

    def sanitize_html_tags(self, html_str):
        from bleach import Cleaner
        from bleach.css_sanitizer import CSSSanitizer

        cleaner = Cleaner(tags=self.tags, attributes=self.attributes, protocols=["http", "https", "mailto", "data"],
                          strip=True, strip_comments=True, css_sanitizer=CSSSanitizer())
        text = html_str if isinstance(html_str, str) else "".join(html_str)
        cleaned = cleaner.clean(text)
        # only images may use data: URLs (a data:text/html link would open a page of the student's)
        return re.sub(r'(<a\b[^>]*\bhref=")data:[^"]*"', r'\1#"', cleaned)

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type in ("markdown", "raw") and not HTML_TAG.search(cell.source):
            return cell, resources   # plain markdown: nothing to clean, and bleach would escape its `>` quotes
        return super().preprocess_cell(cell, resources, cell_index)


# ------------------------------------------------------------------------------------------ after the kernel


def _kernel_verdict(cell) -> tuple[bool, str]:
    """Did the cell pass in the kernel (nbgrader's rule: no error, nothing on stderr), and its error line."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return False, f"{out.get('ename', '')}: {str(out.get('evalue', '')).strip().splitlines()[0][:200]}" \
                if str(out.get("evalue", "")).strip() else str(out.get("ename", ""))
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            return False, "it wrote to stderr"
    return True, ""


def _never_ran(cell) -> str:
    """The message of a cell that never ran because the kernel died before it, else ''."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error" and out.get("ename") == NOT_RUN:
            return str(out.get("evalue", ""))
    return ""


class TrustedChecks(NbGraderPreprocessor):
    """Score every graded cell with a registered trusted check from that check's verdict (PROTOCOL §1, §8)."""

    profile = Unicode("sample", help="the profile whose bands and held-out splits grade (sample or full)"
                      ).tag(config=True)
    heldout_dir = Unicode("", help="the instructor's private held-out folder; empty: $AUTOGRADER_HELDOUT_DIR, else "
                          "autograder/data").tag(config=True)
    artifacts_dir = Unicode("artifacts", help="the folder the kernel saved its artifacts in").tag(config=True)
    report = Unicode("", help="where to write the verdicts (trusted.json); empty: nowhere").tag(config=True)
    scorer = Unicode("", help="socket of the batch's scorer (autograder.scorer); empty: score in this process"
                     ).tag(config=True)
    cache_dir = Unicode("", help="the course's cache of what checks prepare once (autograder/course.py release)"
                        ).tag(config=True)

    def preprocess(self, nb, resources):
        assignment = resources.get("nbgrader", {}).get("assignment", "")
        module = trusted.load_checks(assignment)
        checks = getattr(module, "CHECKS", {}) if module else {}
        if not checks:
            return nb, resources
        started = time.perf_counter()
        folder = Path(self.artifacts_dir)
        heldout = self.heldout_dir or None
        graded = [cell for cell in nb.cells if cell.get("cell_type") == "code"
                  and cell.get("metadata", {}).get("nbgrader", {}).get("grade")
                  and cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") in checks]
        gids = [cell.metadata.nbgrader.grade_id for cell in graded]
        # the submitted answer cells go along, for the answer rules (autograder/answer_rules)
        verdicts, where = None, "by the scorer"
        if self.scorer:
            from autograder.scorer import score_remote

            verdicts = score_remote(self.scorer, assignment, folder, gids, nb, profile=self.profile, heldout=heldout)
            if verdicts is None:
                self.log.warning("TrustedChecks: the batch's scorer did not answer; scoring in this process")
        if verdicts is None:
            wait_for_keras()
            verdicts = trusted.score(assignment, folder, gids, nb, self.profile, heldout, self.cache_dir or None)
            where = "in this process"
        records = {}
        for cell, gid in zip(graded, gids):
            meta = cell.metadata.nbgrader
            kernel_ok, kernel_why = _kernel_verdict(cell)
            status, fraction, message = verdicts[gid][:3]
            notes = list(verdicts[gid][3]) if len(verdicts[gid]) > 3 else []
            if never := _never_ran(cell):   # a cell the kernel never ran earns nothing, whatever it would have
                status, fraction, message = "fail", 0.0, never
            trusted_ok = status in ("pass", "partial")
            # a quality under its threshold is not the kernel's to foresee: only the other failures disagree
            disagree = status == "error" or (kernel_ok != trusted_ok and not (kernel_ok and status == "below"))
            outputs = [o for o in cell.outputs if o.get("output_type") == "stream" and o.get("name") == "stdout"]
            if not kernel_ok:
                outputs.append(new_output("stream", name="stdout", text=f"inside your notebook: {kernel_why}\n"))
            if disagree and status != "error" and not never:
                outputs.append(new_output("stream", name="stdout", text=(
                    "note: inside your notebook this cell " + ("passed" if kernel_ok else "failed")
                    + ", but the grader's own check " + ("passed" if trusted_ok else "failed")
                    + "; the grader's check gives the score, and the instructor is told\n")))
            if status == "pass":
                outputs.append(new_output("stream", name="stdout", text="trusted check passed\n"))
            elif status == "partial":
                points = float(meta.get("points", 0)) * fraction
                outputs.append(new_output("execute_result", data={"text/plain": f"{points:g}"}, execution_count=None))
            else:
                outputs.append(new_output("error", ename="AssertionError", evalue=message, traceback=[
                    f"AssertionError (the grader's trusted check): {message}"]))
            cell.outputs = outputs
            records[gid] = {"kernel": "pass" if kernel_ok else "fail", "trusted": status, "fraction": fraction,
                            "message": message, "disagree": disagree and not never, "scored": where,
                            "notes": notes}
        self.log.info("TrustedChecks: %d cells scored %s in %.1f s", len(records), where, time.perf_counter() - started)
        if self.report:
            path = Path(self.report)
            old = json.loads(path.read_text()) if path.exists() else {}
            old[resources.get("nbgrader", {}).get("notebook", "notebook")] = records
            path.write_text(json.dumps(old, indent=1))
        return nb, resources

