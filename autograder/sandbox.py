"""Kernel launcher that bounds what a student's notebook can do while the autograder runs it (book/instructors.md).

    python autograder/sandbox.py [--memory-mb M] [--cpu-s S] [--file-mb F] [--max-procs N] [--pidfile P]
                                 [--pids-cgroup NAME] [--writable DIR]... [--hide DIR]... [--hide-file FILE]...
                                 [--no-namespaces] -- KERNEL COMMAND...

It is the first word of the grading kernelspec that `autograder/course.py autograde` writes for each submission, so
nbgrader starts every student kernel through it. It

- sets resource limits that the kernel and its children inherit: address space (memory), CPU seconds, largest file
  written, no core dumps, and at most --max-procs processes and threads (RLIMIT_NPROC, which binds any account but
  root; where the grader may write a pids cgroup, as root can, the kernel also joins its own cgroup
  `autograder-NAME` with `pids.max` = --max-procs, which binds root too);
- where the platform allows unprivileged user namespaces (`unshare -rmn`), runs the kernel in new user, mount,
  network and PID namespaces: no network at all (only a loopback that is down); the whole file system read-only
  except the folders given with --writable; the folders given with --hide (held-out data, the instructor's course
  folder, the solutions) replaced by empty read-only folders; the kernel is process 1 of its own PID namespace, so
  every process it starts, daemonised or not, is killed when it ends, and /proc shows no process outside it (no
  way round the hidden folders through /proc/PID/root);
- then replaces itself with `unshare`, which forks the kernel and kills it if it is itself killed (`--kill-child`).
  Its process id goes to --pidfile so the grader can stop it.

Without namespaces (--no-namespaces, or no `unshare`) only the resource limits apply; the grader says so.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import shutil
import sys


CGROUP_ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup")   # cgroup v1 pids hierarchy, cgroup v2 unified


def pids_cgroup(name: str) -> str | None:
    """The folder of the pids cgroup `autograder-NAME` this machine lets the grader create, or None."""
    for root in CGROUP_ROOTS:
        controllers = os.path.join(root, "cgroup.controllers")
        if not os.path.isfile(os.path.join(root, "cgroup.procs")) or not os.access(root, os.W_OK):
            continue
        if root.endswith("/pids") or (os.path.isfile(controllers) and "pids" in open(controllers).read().split()):
            return os.path.join(root, f"autograder-{name}")
    return None


def user_tasks(uid: int) -> int:
    """Processes and threads of this account now (RLIMIT_NPROC counts them all, not only the kernel's)."""
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    n += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                pass
    return n


def join_pids_cgroup(name: str, max_procs: int) -> str | None:
    """Create the pids cgroup `autograder-NAME`, cap it at max_procs and move this process into it."""
    folder = pids_cgroup(name)
    if folder is None:
        return None
    try:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "pids.max"), "w") as f:
            f.write(str(max_procs))
        with open(os.path.join(folder, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    except OSError:
        return None
    return folder


def remove_pids_cgroup(name: str) -> None:
    """Remove the cgroup of a finished kernel (the grader calls this once the kernel is gone)."""
    folder = pids_cgroup(name)
    if folder and os.path.isdir(folder):
        try:
            os.rmdir(folder)
        except OSError:
            pass


def set_limits(memory_mb: int, cpu_s: int, file_mb: int, max_procs: int = 512) -> None:
    """Apply the resource limits to this process (inherited by the kernel it becomes)."""
    mib = 1024 * 1024
    if os.getuid() != 0:   # root is exempt from RLIMIT_NPROC; the pids cgroup bounds it instead
        cap = user_tasks(os.getuid()) + max_procs
        resource.setrlimit(resource.RLIMIT_NPROC, (cap, cap))
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * mib, memory_mb * mib))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb * mib, file_mb * mib))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def mount_script(writable: list[str], hide: list[str], hide_files: list[str], command: list[str]) -> str:
    """Shell commands run as namespace root: read-only root, writable and hidden paths, then exec the kernel."""
    q = shlex.quote
    lines = ["set -e", "mount --rbind / /"]
    lines += [f"mount --bind {q(d)} {q(d)}" for d in writable]
    lines += [f"mount -t tmpfs -o ro,size=4k,mode=555 none {q(d)}" for d in hide if os.path.isdir(d)]
    lines += [f"mount --bind /dev/null {q(f)}" for f in hide_files if os.path.isfile(f)]
    lines += ["mount -o remount,bind,ro /",
              'cd -- "$PWD"',                      # re-enter the working folder through the new mounts
              "exec " + " ".join(q(c) for c in command)]
    return "\n".join(lines)


def namespaces_available() -> bool:
    """True when unprivileged user, mount and network namespaces can be created here."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    import subprocess

    probe = subprocess.run([unshare, "-rmn", "--pid", "--fork", "--mount-proc", "--kill-child", "--propagation",
                            "private", "sh", "-c", "mount --rbind / / && true"], capture_output=True)
    return probe.returncode == 0


def main(argv: list[str] | None = None) -> None:
    """Parse the options, apply the limits and isolation, and exec the kernel command."""
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        sys.exit("sandbox: give the kernel command after `--`")
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="sandbox.py")
    parser.add_argument("--memory-mb", type=int, default=4096)
    parser.add_argument("--cpu-s", type=int, default=600)
    parser.add_argument("--file-mb", type=int, default=64)
    parser.add_argument("--max-procs", type=int, default=512, help="processes and threads (TensorFlow starts ~100)")
    parser.add_argument("--pids-cgroup", help="name of a pids cgroup to create and join (where allowed)")
    parser.add_argument("--pidfile")
    parser.add_argument("--writable", action="append", default=[])
    parser.add_argument("--hide", action="append", default=[])
    parser.add_argument("--hide-file", action="append", default=[])
    parser.add_argument("--no-namespaces", action="store_true")
    args = parser.parse_args(argv[:split])
    command = argv[split + 1:]
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write(str(os.getpid()))
    if args.pids_cgroup:
        join_pids_cgroup(args.pids_cgroup, args.max_procs)
    set_limits(args.memory_mb, args.cpu_s, args.file_mb, args.max_procs)
    if args.no_namespaces:
        os.execvp(command[0], command)
    script = mount_script(args.writable, args.hide, args.hide_file, command)
    os.execvp("unshare", ["unshare", "-rmn", "--pid", "--fork", "--mount-proc", "--kill-child",
                          "--propagation", "private", "sh", "-c", script])


if __name__ == "__main__":
    main()
