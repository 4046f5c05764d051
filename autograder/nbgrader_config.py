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

# The course's steps (autograder/preprocessors.py), in nbgrader 0.9's autograde order: TrustedInputs writes the
# grader's inputs before the kernel starts; ExecuteKeepingPoints is Execute, except that a kernel that dies costs only
# the cells that did not run; ClipOutput replaces LimitOutput (every output cut to 100,000 characters too);
# SanitizeOutputs removes scripts, event handlers and JavaScript from student outputs; TrustedChecks, after the kernel
# is gone, scores every cell that has a trusted check from that check's verdict (autograder/PROTOCOL.md).
from nbconvert.preprocessors import ClearMetadataPreprocessor  # noqa: E402
from nbgrader.preprocessors import AssignLatePenalties, CheckCellMetadata, IgnorePattern, SaveAutoGrades  # noqa: E402

from autograder.preprocessors import (  # noqa: E402  (the checkout is on sys.path: make setup's coursetools.pth)
    ClipOutput, ExecuteKeepingPoints, SanitizeOutputs, TrustedChecks, TrustedInputs)

c.Autograde.autograde_preprocessors = [TrustedInputs, ExecuteKeepingPoints, IgnorePattern, ClearMetadataPreprocessor,
                                       ClipOutput, SanitizeOutputs, TrustedChecks, SaveAutoGrades,
                                       AssignLatePenalties, CheckCellMetadata]
# The feedback pages sanitise what they render too (a second line of defence after SanitizeOutputs).
c.HTMLExporter.sanitize_html = True
