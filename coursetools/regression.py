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


def _comparable(nb):
    """Return a copy of a notebook as the regression test compares it: no papermill cell, streams merged, no stderr."""
    from pytest_notebook.post_processors import coalesce_streams

    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    nb, _ = coalesce_streams(nb, {})
    nb, _ = drop_stderr(nb, {})
    return nb


def compare(committed, executed) -> str:
    """Return the diff (pytest-notebook's) of a lesson's committed outputs and an executed copy, masks applied; '' if none.

    Masked: ``DIFF_IGNORE`` and every cell's own ``nbreg.diff_ignore`` (CONTRIBUTING.md), read from the committed copy.
    """
    from pytest_notebook.diffing import diff_notebooks, diff_to_string, filter_diff
    from pytest_notebook.notebook import config_from_metadata

    initial, final = _comparable(committed), _comparable(executed)
    ignore = set(DIFF_IGNORE) | {"/cells/*/id", "/cells/*/metadata"} | set(config_from_metadata(initial).diff_ignore)
    diff = filter_diff(diff_notebooks(initial, final), list(ignore))
    return diff_to_string(initial, diff, use_color=False, color_words=False) if diff else ""


def regenerate(committed, executed) -> bool:
    """Copy an executed lesson's outputs into its committed copy (``make regen-lessons``); return True if any changed."""
    ran = _comparable(executed).cells
    if len(ran) != len(committed.cells):
        raise ValueError(f"the executed lesson has {len(ran)} cells, the committed one {len(committed.cells)}")
    changed = False
    for mine, theirs in zip(committed.cells, ran):
        if mine.cell_type == "code" and (mine.outputs != theirs.outputs or mine.execution_count != theirs.execution_count):
            mine.outputs, mine.execution_count, changed = theirs.outputs, theirs.execution_count, True
    return changed
