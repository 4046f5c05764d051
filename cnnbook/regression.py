"""What the lesson regression test compares and what it masks (CONTRIBUTING.md, "Lessons: regression outputs")."""

import copy

#: JSON paths (pytest-notebook syntax) whose changes are not regressions: pictures, counters, timings, versions.
DIFF_IGNORE = (
    "/cells/*/outputs/*/traceback",
    "/cells/*/outputs/*/data/image/png",
    "/cells/*/outputs/*/data/text/html",       # animations (base64 frames)
    "/cells/*/outputs/*/data/application/vnd.jupyter.widget-view+json",
    "/cells/*/outputs/*/metadata",
    "/cells/*/outputs/*/execution_count",
    "/cells/*/execution_count",
    "/cells/*/metadata/execution",
    "/cells/*/metadata/papermill",
    "/metadata",
)


def drop_stderr(nb, resources):
    """pytest-notebook post-processor: remove stderr stream outputs (TensorFlow's start-up notes vary by machine)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
    return nb, resources
