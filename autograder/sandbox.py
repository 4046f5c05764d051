"""Kernel launcher that bounds what a student's notebook can do while the autograder runs it (book/instructors.md).

    python autograder/sandbox.py [--memory-mb M] [--cpu-s S] [--file-mb F] [--max-procs N] [--pidfile P]
                                 [--pids-cgroup NAME] [--writable DIR]... [--readable PATH]... [--hide DIR]...
                                 [--hide-file FILE]... [--no-namespaces] -- KERNEL COMMAND...
    python autograder/sandbox.py --describe          # the one line saying what isolation this machine gives

It is the first word of the grading kernelspec that `autograder/course.py autograde` writes for each submission, so
nbgrader starts every student kernel through it. It

- sets resource limits that the kernel and its children inherit: address space (memory), CPU seconds, largest file
  written, no core dumps, and at most --max-procs processes and threads (RLIMIT_NPROC, which binds any account but
  root; where the grader may write a pids cgroup, as root can, the kernel also joins its own cgroup
  `autograder-NAME` with `pids.max` = --max-procs, which binds root too);
- where the platform allows unprivileged user namespaces, runs the kernel (`unshare`) in new user, mount, PID,
  network, IPC and UTS namespaces and, as root of the user namespace, prepares its view of the file system
  (`_setup`, this file run again with `--setup`): the folders given with --hide (held-out data, the course folder,
  the solutions, the batch's other submissions) become empty folders; /tmp and /run become empty private folders
  (other graders' sockets and files are out of sight), /dev a private one with only null, zero, full, random,
  urandom, tty, a private devpts and a private /dev/shm; the folders given with --writable and --readable are put
  back where they were; then every mount, /proc and /sys included, is made read-only, recursively, and only the
  --writable folders and the private /dev/shm writable again; creating more user namespaces is switched off
  (user.max_user_namespaces = 0 in the kernel's namespace, as bubblewrap's --disable-userns does);
- then runs the kernel with no capabilities at all (bounding, inheritable, ambient, permitted and effective sets
  empty) and no_new_privs (`setpriv`, or the same system calls made here where util-linux has no setpriv). Root of
  its namespace without capabilities, the kernel can neither undo a mount nor make a new one, nor start a namespace
  in which it could. It is process 1 of its own PID namespace, so every process it starts, daemonised or not, is
  killed when it ends, and /proc shows no process outside it. There is no network (a loopback that is down).
- `unshare` forks the kernel and kills it if it is itself killed (`--kill-child`); its process id goes to
  --pidfile so the grader can stop it.

Without namespaces (--no-namespaces, or no `unshare`) only the resource limits apply; `describe()` says so, and the
grader prints it.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile

CGROUP_ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup")   # cgroup v1 pids hierarchy, cgroup v2 unified
HERE = os.path.dirname(os.path.abspath(__file__))
PRIVATE = ("/tmp", "/run")   # replaced by empty folders (what the kernel needs there is put back)
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
UNSHARE = ["--user", "--map-root-user", "--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--mount-proc",
           "--kill-child", "--propagation", "private"]


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


# --- inside the namespaces: the kernel's view of the file system, then no capabilities ------------------------------

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC = 1, 2, 4, 8, 32, 4096, 16384
MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_STRICTATIME = 1024, 2048, 1 << 21, 1 << 24
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 1, 2, 4
AT_FDCWD, AT_EMPTY_PATH, AT_RECURSIVE = -100, 0x1000, 0x8000
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC, MOVE_MOUNT_F_EMPTY_PATH = 1, os.O_CLOEXEC, 4
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442   # the same number on every architecture since 5.1
CLONE_NEWUSER = 0x10000000
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 38, 47, 4
PR_SET_SECUREBITS = 28
SECURE_ALL = 0x3f   # noroot, no_setuid_fixup, keep_caps, each locked: uid 0 gets no capabilities back on exec

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _check(result: int, what: str) -> int:
    if result < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return result


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = (lambda s: None if s is None else s.encode())
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _clone_tree(path: str) -> int:
    """A detached copy of the mount tree at path (a folder or a file), to be attached again later."""
    return _check(_libc.syscall(SYS_OPEN_TREE, AT_FDCWD, path.encode(),
                                OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE), f"open_tree {path}")


def _attach(fd: int, target: str) -> None:
    _check(_libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, target.encode(), MOVE_MOUNT_F_EMPTY_PATH),
           f"move_mount {target}")
    os.close(fd)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64),
                ("userns_fd", ctypes.c_uint64)]


def _mount_flags(path: str) -> int:
    """The per-mount flags of the mount at path (a remount must repeat the locked ones: nosuid, nodev, atime)."""
    opts = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
            "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME, "strictatime": MS_STRICTATIME, "ro": MS_RDONLY}
    flags = None
    for point, options in _mountinfo():
        if point == path:   # the last one listed is the one on top
            flags = sum(opts.get(o, 0) for o in options.split(","))
    return flags or 0


def _mountinfo() -> list[tuple[str, str]]:
    """(mount point, per-mount options) of every mount of this mount namespace, parents first."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")   # \040 for a space, ...
            out.append((point, fields[5]))
    return out


def _set_attr(path: str, set_: int, clear: int, recursive: bool) -> None:
    """mount_setattr(2) on the mount at path; where the kernel predates it (5.12), remount each mount one by one."""
    attr = _MountAttr(set_, clear, 0, 0)
    r = _libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), AT_RECURSIVE if recursive else 0,
                      ctypes.byref(attr), ctypes.sizeof(attr))
    if r == 0:
        return
    if ctypes.get_errno() != errno.ENOSYS:
        _check(r, f"mount_setattr {path}")
    as_ms = {MOUNT_ATTR_RDONLY: MS_RDONLY, MOUNT_ATTR_NOSUID: MS_NOSUID, MOUNT_ATTR_NODEV: MS_NODEV}
    ms_set = sum(v for k, v in as_ms.items() if set_ & k)
    ms_clear = sum(v for k, v in as_ms.items() if clear & k)
    points = [p for p, _ in _mountinfo() if p == path or (recursive and p.startswith(path.rstrip("/") + "/"))]
    for point in dict.fromkeys(points):
        try:
            _mount(None, point, None, MS_REMOUNT | MS_BIND | ((_mount_flags(point) | ms_set) & ~ms_clear))
        except OSError:
            if os.path.exists(point):   # a mount point under a hidden folder is out of sight anyway
                raise


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _private_dev(clones: dict, shm_mb: int) -> list[str]:
    """An empty /dev with the harmless devices put back, a devpts and a /dev/shm of its own; returns the mounts that
    must stay writable or keep their devices."""
    _mount("tmpfs", "/dev", "tmpfs", MS_NOSUID, "mode=755,size=64k")
    keep = []
    for name, fd in clones.items():
        open(f"/dev/{name}", "w").close()
        _attach(fd, f"/dev/{name}")
        keep.append(f"/dev/{name}")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx")):
        os.symlink(target, f"/dev/{name}")
    os.mkdir("/dev/shm")
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={shm_mb}m")
    os.mkdir("/dev/pts")
    try:   # IPython's `!command` runs it on a pseudo-terminal
        _mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620")
        keep.append("/dev/pts")
    except OSError:
        pass
    return keep


def _setup(spec: dict) -> None:
    """Run as root of the new user namespace, before the kernel: lay out the kernel's file system (module docstring).
    Any step that fails stops the kernel from starting (`_inner`), except the two a kernel can do without: the
    devpts and the switch-off of user namespaces, which `describe` then reports missing."""
    cwd = os.getcwd()
    overlays = [(os.path.realpath(d), "hide") for d in spec["hide"] if os.path.isdir(d)]
    overlays += [(d, "private") for d in PRIVATE if os.path.isdir(d) and not os.path.islink(d)]
    # what the kernel needs from under those folders: its writable folders and what it reads (--readable); and, where
    # they lie under a private folder (/tmp, not a hidden one), the interpreter, the repository and the files that the
    # command names
    anchors = {os.path.realpath(d): True for d in spec["writable"] if os.path.exists(d)}
    for d in spec["readable"]:
        if os.path.exists(d):
            anchors.setdefault(os.path.realpath(d), False)
    for d in spec["auto_readable"]:
        d = os.path.realpath(d)
        if os.path.exists(d) and any(_under(d, o) and d != o for o, kind in overlays if kind == "private") \
                and not any(_under(d, o) for o, kind in overlays if kind == "hide"):
            anchors.setdefault(d, False)
    is_dir = {d: os.path.isdir(d) for d in anchors}
    clones = {d: _clone_tree(d) for d in anchors}
    devices = {n: _clone_tree(f"/dev/{n}") for n in DEVICES if os.path.exists(f"/dev/{n}")}
    steps = sorted([(d.count("/"), 0, d) for d, _ in overlays] + [(d.count("/"), 1, d) for d in anchors])
    for _, kind, path in steps:   # parents first; at one place, the folder is emptied before its content comes back
        if kind == 0:
            if os.path.isdir(path):   # not under a folder hidden before it
                mode = "755" if path in PRIVATE else "555"
                _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode},size=64k")
        else:
            if not os.path.exists(path):   # under an emptied folder: make its mount point there
                os.makedirs(os.path.dirname(path), exist_ok=True)
                if is_dir[path]:
                    os.mkdir(path)
                else:
                    open(path, "w").close()
            _attach(clones[path], path)
    keep_dev = _private_dev(devices, spec["shm_mb"])
    for f in spec["hide_files"]:
        if os.path.isfile(f):
            _mount("/dev/null", f, None, MS_BIND)
    try:   # no more user namespaces from here (the count is this namespace's own; bubblewrap's --disable-userns)
        with open("/proc/sys/user/max_user_namespaces", "w") as f:
            f.write("0")
    except OSError:
        pass
    if spec.get("no_mount_setattr"):   # the path of kernels older than 5.12, for the tests
        global SYS_MOUNT_SETATTR
        SYS_MOUNT_SETATTR = -1   # ENOSYS
    _set_attr("/", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, recursive=True)
    for d in [d for d, rw in anchors.items() if rw] + ["/dev/shm"]:
        _set_attr(d, 0, MOUNT_ATTR_RDONLY, recursive=False)
    for d in keep_dev:
        _set_attr(d, 0, MOUNT_ATTR_NODEV, recursive=False)
    try:
        os.chdir(cwd)   # re-enter the working folder through the new mounts
    except OSError:
        os.chdir("/")


def _drop_capabilities() -> None:
    """No capabilities in any set, no_new_privs, and securebits so that uid 0 regains none on exec (setpriv's job,
    for a util-linux without setpriv)."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == errno.EINVAL:
            break
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "ambient capabilities")
    _check(_libc.prctl(PR_SET_SECUREBITS, SECURE_ALL, 0, 0, 0), "securebits")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)   # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()                   # effective, permitted, inheritable: all empty
    _check(_libc.capset(header, data), "capset")


def _inner(argv: list[str]) -> None:
    """`sandbox.py --setup SPEC -- COMMAND`: lay out the file system, drop every capability, exec the kernel."""
    spec, command = json.loads(argv[1]), argv[3:]
    try:
        _setup(spec)
    except OSError as exc:
        sys.exit(f"sandbox: could not isolate the kernel ({exc}); run with --no-namespaces to grade with resource "
                 "limits only")
    setpriv = shutil.which("setpriv")
    if setpriv and not spec.get("no_setpriv"):
        os.execv(setpriv, [setpriv, "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all",
                           "--securebits=+noroot,+noroot_locked,+no_setuid_fixup,+no_setuid_fixup_locked,"
                           "+keep_caps_locked", "--no-new-privs", "--", *command])
    _drop_capabilities()
    os.execvp(command[0], command)


# --- what this machine gives ------------------------------------------------------------------------------------------

PROBE = r"""
import ctypes, json, os, socket, sys
out = {}
status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
out["caps"] = all(int(status[k], 16) == 0 for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"))
out["nnp"] = status["NoNewPrivs"].strip() == "1"
libc = ctypes.CDLL(None, use_errno=True)
out["userns"] = libc.unshare(0x10000000) != 0
ro = lambda p: bool(os.statvfs(p).f_flag & os.ST_RDONLY)
out["ro"] = ro("/") and ro("/proc") and ro("/sys") and not ro(sys.argv[1])
outside = json.loads(sys.argv[2])
out["ns"] = [n for n in ("user", "mnt", "pid", "net", "ipc", "uts") if os.readlink(f"/proc/self/ns/{n}") != outside[n]]
out["net"] = [n for _, n in socket.if_nameindex()] == ["lo"]
out["private"] = not os.path.exists(outside["marker"]) and os.listdir("/dev/shm") == []
print(json.dumps(out))
"""


def _probe() -> tuple[bool, str]:
    if not shutil.which("unshare"):
        return False, "resource limits only (no `unshare` here, so no namespaces)"
    with tempfile.TemporaryDirectory(prefix="sandbox-probe-") as tmp:
        rw, marker = os.path.join(tmp, "rw"), os.path.join(tmp, "marker")
        os.mkdir(rw)
        open(marker, "w").close()
        outside = {n: os.readlink(f"/proc/self/ns/{n}") for n in ("user", "mnt", "pid", "net", "ipc", "uts")}
        outside["marker"] = marker   # a file of the grader's /tmp (not an argument: those stay visible)
        try:
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--writable", rw, "--max-procs", "64",
                                   "--", sys.executable, "-I", "-S", "-c", PROBE, rw, json.dumps(outside)],
                                  capture_output=True, text=True, timeout=60, cwd=rw)
            got = json.loads(proc.stdout.strip().splitlines()[-1])
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
            why = (proc.stderr.strip().splitlines() or ["no answer"])[-1][:200] if "proc" in locals() else "no answer"
            return False, f"resource limits only (no isolating namespaces here: {why})"
    parts = ["+".join(got["ns"]) + " namespaces"]
    parts.append("no capabilities" if got["caps"] else "CAPABILITIES LEFT")
    parts.append("no_new_privs" if got["nnp"] else "no no_new_privs")
    parts.append("no new user namespaces" if got["userns"] else "NEW USER NAMESPACES ALLOWED")
    parts.append("read-only file system (/proc and /sys too) but the kernel's folders" if got["ro"]
                 else "FILE SYSTEM NOT READ-ONLY")
    parts.append("private /tmp, /run, /dev and /dev/shm" if got["private"] else "SHARED /tmp OR /dev/shm")
    parts.append("no network" if got["net"] else "NETWORK")
    whole = got["caps"] and got["nnp"] and got["ro"] and got["private"] and got["net"] and len(got["ns"]) == 6
    return whole, ", ".join(parts)


_PROBED: tuple[bool, str] | None = None


def probe() -> tuple[bool, str]:
    """(whether the kernel is isolated here, a one-line description of the isolation), found by running the
    sandbox once on a probe that checks each property from inside; cached for this process."""
    global _PROBED
    if _PROBED is None:
        _PROBED = _probe()
    return _PROBED


def describe() -> str:
    """One line: what isolation a student kernel gets on this machine (the grader prints it)."""
    return probe()[1]


def namespaces_available() -> bool:
    """True when the kernel can be isolated here: namespaces, no capabilities, read-only file system."""
    return probe()[0]


def main(argv: list[str] | None = None) -> None:
    """Parse the options, apply the limits and isolation, and exec the kernel command."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--setup"]:
        return _inner(argv)
    if argv[:1] == ["--describe"]:
        print(describe())
        return
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
    parser.add_argument("--readable", action="append", default=[], help="kept visible (read-only) under a hidden "
                        "or private folder such as /tmp")
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
    exe = shutil.which(command[0]) or command[0]
    spec = {"writable": args.writable, "readable": args.readable, "hide": args.hide, "hide_files": args.hide_file,
            "shm_mb": args.file_mb, "no_setpriv": bool(os.environ.get("AUTOGRADER_SANDBOX_NO_SETPRIV")),
            "no_mount_setattr": bool(os.environ.get("AUTOGRADER_SANDBOX_NO_MOUNT_SETATTR")),
            "auto_readable": [os.path.dirname(HERE), sys.prefix, sys.base_prefix,
                              os.path.dirname(os.path.realpath(exe)), os.path.dirname(os.path.abspath(exe))]
            + [a for a in command[1:] if os.path.isfile(a)]}   # e.g. the kernel's connection file, in the grader's /tmp
    os.execvp("unshare", ["unshare", *UNSHARE, sys.executable, "-I", "-S", os.path.abspath(__file__), "--setup",
                          json.dumps(spec), "--", *command])


if __name__ == "__main__":
    main()
