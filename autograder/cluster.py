"""Grading on more than one machine with Dask distributed (issue 38; book/instructors.md, "Grading a class").

    python -m autograder.course autograde COURSE ASSIGNMENT --cluster local:4             # 4 worker processes here
    python -m autograder.course autograde COURSE ASSIGNMENT --cluster tcp://head:8786     # a running scheduler

Why Dask and not Ray: a submission is one independent task of a few tens of seconds that returns a few hundred
kilobytes, which is exactly Dask's ``Client.submit``/``as_completed``; Dask is pure Python (wheels for every platform,
nothing to compile), and ``dask-jobqueue`` starts its workers as Slurm, PBS or SGE jobs while ``dask-kubernetes``
starts them as pods, the two places a university's cluster usually is. Ray would bring its own object store and a
much larger install for no feature this needs.

Each task runs the same sandboxed grading as one machine does (``course._grade_one``) in a scratch folder of the
worker, and sends back the outcome, the scratch gradebook and the autograded notebooks as bytes. Only the head writes
the course gradebook, one submission at a time, as on one machine. The workers read the course folder
(``source/``, ``release/``, ``submitted/``, ``gradebook.db``) at the same path as the head: a shared file system (NFS
on a Slurm cluster, a volume in Kubernetes). Each worker needs this repository at the same commit, ``make setup``'s
environment, and what the sandbox needs (util-linux's ``unshare`` and ``setpriv``, unprivileged user namespaces).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


def grade_remote(course: str, assignment: str, student: str, limits: dict, profile: str) -> dict:
    """One task on a worker: grade one submission in a scratch folder there; return what the head needs to merge."""
    from autograder import course as workflow
    from autograder import sandbox

    scratch = Path(tempfile.mkdtemp(prefix="ag-remote-"))
    try:
        outcome = workflow._grade_one(Path(course), assignment, student, scratch / "0", limits,
                                      sandbox.namespaces_available(), None, profile)
        folder = scratch / "0"
        autograded = folder / "autograded" / student / assignment
        return {"outcome": outcome,
                "gradebook": (folder / "gradebook.db").read_bytes() if outcome["graded"] else b"",
                "autograded": {p.name: p.read_bytes() for p in autograded.iterdir() if p.is_file()}
                if outcome["graded"] and autograded.is_dir() else {}}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def unpack(result: dict, folder: Path, assignment: str, student: str) -> dict:
    """Lay a worker's answer out as ``_grade_one`` leaves a scratch folder on the head; return the outcome."""
    folder.mkdir(parents=True, exist_ok=True)
    if result["gradebook"]:
        (folder / "gradebook.db").write_bytes(result["gradebook"])
    dest = folder / "autograded" / student / assignment
    for name, data in result["autograded"].items():
        dest.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes(data)
    return result["outcome"]


class Cluster:
    """A Dask client for ``--cluster``: ``local:N`` starts N single-threaded worker processes on this machine (and
    stops them at the end); anything else is the address of a running scheduler."""

    def __init__(self, address: str):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise RuntimeError("--cluster needs Dask distributed: `pip install distributed` (make setup installs it)")
        self.local = None
        if address.startswith("local:"):
            workers = int(address.split(":", 1)[1])
            if workers < 1:
                raise ValueError("--cluster local:N needs N >= 1 worker processes")
            self.local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      dashboard_address=None, silence_logs=40)
            self.client = Client(self.local)
        else:
            self.client = Client(address)

    def submit(self, *args):
        # pure=False: a submission graded twice (a regrade) is a new task, never a cached result
        return self.client.submit(grade_remote, *args, pure=False, retries=0)

    def as_completed(self, futures):
        from distributed import as_completed

        return as_completed(futures)

    def close(self):
        self.client.close()
        if self.local is not None:
            self.local.close()
