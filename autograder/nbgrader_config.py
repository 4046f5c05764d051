"""nbgrader configuration of the course (autograder/README.md).

Used as is from this folder by `make release` (source `solutions/` -> release `notebooks/` of the repository), and
loaded as a sub-config by the grading harness (`autograder/course.py`), which then points nbgrader at a course
directory outside the repository.
"""

import os

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)

_repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
c.CourseDirectory.root = _repo
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.course_id = "deep-cv-keras"

# What a student gets in place of a solution region.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Training cells take more than nbgrader's 30 s default; a runaway cell is still stopped.
c.Execute.timeout = 600
c.Execute.interrupt_on_timeout = True

# TensorFlow logs to stderr on first use (CUDA and oneDNN notes on a CPU machine); nbgrader would give 0 to a
# test cell that writes to stderr. Drop stderr outputs made only of such log lines, nothing else. nbgrader ships
# IgnorePattern switched off (enabled=False): without the next line the pattern is never applied
# (tests/test_autograder_harness.py checks both).
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = (
    r"\A(?:(?:[IWEF]\d{4} [\d:. ]+\d+ [\w.]+:\d+\] [^\n]*"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|To enable the following instructions: [^\n]*rebuild TensorFlow with the appropriate compiler flags\."
    r"|[^\n]*oneDNN custom operations are on[^\n]*)\n?)+\Z"
)

# A cell that prints 50 MB on one line passes nbgrader's LimitOutput (it counts lines), and would be copied into the
# gradebook's notebook and the feedback HTML. ClipOutput also cuts every stream and text output to MAX_CHARS.
from nbgrader.preprocessors import LimitOutput  # noqa: E402

MAX_CHARS = 100_000


class ClipOutput(LimitOutput):
    """LimitOutput, plus at most MAX_CHARS characters per stream or text output (autograder/README.md)."""

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


# nbgrader 0.9's autograde steps, in its order, with LimitOutput replaced by ClipOutput.
from nbconvert.preprocessors import ClearMetadataPreprocessor  # noqa: E402
from nbgrader.preprocessors import (  # noqa: E402
    AssignLatePenalties, CheckCellMetadata, Execute, IgnorePattern, SaveAutoGrades)

# The trusted step (autograder/PROTOCOL.md): TrustedInputs writes the grader's inputs before the kernel starts;
# TrustedChecks, after the kernel is gone, scores every cell that has a trusted check from that check's verdict.
import sys  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trusted import TrustedChecks, TrustedInputs  # noqa: E402  (autograder/trusted.py)

c.Autograde.autograde_preprocessors = [TrustedInputs, Execute, IgnorePattern, ClearMetadataPreprocessor, ClipOutput,
                                       TrustedChecks, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
