"""Kernel launcher that bounds what a student's notebook can do while the autograder runs it (book/instructors.md).

    python autograder/sandbox.py [--memory-mb M] [--cpu-s S] [--file-mb F] [--pidfile P]
                                 [--writable DIR]... [--hide DIR]... [--hide-file FILE]... [--no-namespaces]
                                 -- KERNEL COMMAND...

It is the first word of the grading kernelspec that `autograder/course.py autograde` writes for each submission, so
nbgrader starts every student kernel through it. It

- sets resource limits that the kernel and its children inherit: address space (memory), CPU seconds, largest file
  written, no core dumps;
- where the platform allows unprivileged user namespaces (`unshare -rmn`), runs the kernel in new user, mount and
  network namespaces: no network at all (only a loopback that is down), the whole file system read-only except the
  folders given with --writable, and the folders given with --hide (held-out data, the instructor's course folder,
  the solutions) replaced by empty read-only folders;
- then replaces itself with the kernel (same process id, which it writes to --pidfile so the grader can stop it).

Without namespaces (--no-namespaces, or no `unshare`) only the resource limits apply; the grader says so.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import shutil
import sys


def set_limits(memory_mb: int, cpu_s: int, file_mb: int) -> None:
    """Apply the resource limits to this process (inherited by the kernel it becomes)."""
    mib = 1024 * 1024
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

    probe = subprocess.run([unshare, "-rmn", "--propagation", "private", "sh", "-c", "mount --rbind / / && true"],
                           capture_output=True)
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
    set_limits(args.memory_mb, args.cpu_s, args.file_mb)
    if args.no_namespaces:
        os.execvp(command[0], command)
    script = mount_script(args.writable, args.hide, args.hide_file, command)
    os.execvp("unshare", ["unshare", "-rmn", "--propagation", "private", "sh", "-c", script])


if __name__ == "__main__":
    main()
