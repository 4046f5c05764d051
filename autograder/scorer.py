"""The scorer of a batch (PROTOCOL §8): one process imports Keras once and scores each submission in a forked child.

    python -m autograder.scorer SOCKET        # autograder/course.py starts one per batch

Every nbgrader process would otherwise import TensorFlow again (about 5 CPU-s a submission). The nbgrader step
(``autograder.preprocessors.TrustedChecks``) asks it with ``score_remote`` and scores in its own process when it
cannot answer.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from autograder import trusted

SCORE_SECONDS = 600                # a scoring child that runs longer is killed (SIGALRM); see score_remote


def serve(path: str, cache: str | None = None) -> None:
    """The scorer of a batch: import Keras once, then score each request in a forked child (PROTOCOL §8).

    ``autograder/course.py autograde`` starts one per batch, on a socket in a folder that the kernels' sandbox hides.
    Every nbgrader process would otherwise import TensorFlow again (about 5 CPU-s a submission). Each request is
    scored by a child of its own, forked after the import and before any TensorFlow operation has run (a fork after
    one deadlocks the child), so submissions share nothing: a model that crashes or corrupts the process it is loaded
    in affects only its own child, as it did when each nbgrader process scored its own. Runs until killed."""
    import socket

    import keras  # noqa: F401  (the import every child inherits; nothing here may run an operation)
    import nbformat

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    while True:
        conn, _ = server.accept()
        while True:   # reap finished children (the default SIGCHLD: the children's own subprocesses need it)
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        if os.fork() == 0:
            server.close()
            signal.alarm(SCORE_SECONDS)
            code = 1
            try:
                request = json.loads(_receive(conn))
                notebook = nbformat.from_dict(request["notebook"]) if request.get("notebook") else None
                verdicts = trusted.score(request["assignment"], request["folder"], request["gids"], notebook,
                                         request.get("profile", "sample"), request.get("heldout"),
                                         cache or os.path.join(os.path.dirname(os.path.abspath(path)), "cache"))
                conn.sendall(json.dumps(verdicts).encode())
                code = 0
            finally:
                conn.close()
                os._exit(code)
        conn.close()


def _receive(conn) -> bytes:
    chunks = []
    while chunk := conn.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def scorer_alive(path: str) -> bool:
    """Is the scorer of socket ``path`` still running? Read from the ``pid`` file that ``course.py`` writes beside the
    socket and from /proc (an exited scorer not yet reaped is a zombie, state Z); True when there is no pid file."""
    try:
        pid = int(open(os.path.join(os.path.dirname(path), "pid")).read())
    except (OSError, ValueError):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True   # it exists (someone else's): not ours to judge
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True   # no readable /proc: it exists, so keep waiting as before
    return state not in ("Z", "X")


def score_remote(path: str, assignment: str, folder, gids, notebook=None, wait: float = 60, profile: str = "sample",
                 heldout: str | None = None) -> dict | None:
    """Ask the batch's scorer for ``score``'s verdicts; None when it cannot answer (not running, or its child died or
    was killed after SCORE_SECONDS): the nbgrader process then scores in its own process, within the notebook's time
    limit, as it did before there was a scorer. Waits up to ``wait`` seconds for the socket, which the scorer binds
    once Keras is imported, and not at all once the scorer has exited (``scorer_alive``)."""
    import socket
    import time

    request = {"assignment": assignment, "folder": str(folder), "gids": list(gids), "notebook": notebook,
               "profile": profile, "heldout": heldout}
    deadline = time.monotonic() + wait
    while not os.path.exists(path) and time.monotonic() < deadline:
        if not scorer_alive(path):
            return None   # it exited before binding its socket (its log: scorer.log in the batch's folder)
        time.sleep(0.2)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(SCORE_SECONDS + 30)
            conn.connect(path)
            conn.sendall(json.dumps(request).encode())
            conn.shutdown(socket.SHUT_WR)
            answer = _receive(conn)
    except OSError:
        return None
    if not answer:
        return None
    return {gid: tuple(verdict) for gid, verdict in json.loads(answer).items()}


def main(argv: list[str] | None = None) -> None:
    """``python -m autograder.scorer SOCKET``: serve until killed."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (1, 2):
        sys.exit("usage: python -m autograder.scorer SOCKET [CACHE] (autograder/course.py starts it per batch)")
    sys.modules.setdefault("rfc3987_syntax", None)   # as autograder/course.py's NBGRADER: no IRI checker to build
    serve(*argv)


if __name__ == "__main__":
    main()
