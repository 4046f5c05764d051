"""The kernel sandbox (autograder/sandbox.py) against a program that is root of its user namespace and tries to get out.

Each test starts the sandbox directly on a small probe (`sandbox.py ... -- python -c PROBE`; no nbgrader, a fraction
of a second each) and checks from outside what the probe could do. Oracles: the file system and /dev/shm as seen
from outside after the probe ran; the errno of each refused system call; /proc/self/status inside.
Against the sandbox before issue 32 (`git show d6567e4:autograder/sandbox.py`, given a `--readable` option it
ignores, run with `SANDBOX_UNDER_TEST=old_sandbox.py`) 9 of these 14 tests fail; the user-namespace one fails when the
switch-off of user namespaces is taken out (that old sandbox refused them by accident: its `mount --rbind / /` left
the kernel's root unlike its mount namespace's, which the kernel treats as a chroot).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SANDBOX = Path(os.environ.get("SANDBOX_UNDER_TEST", REPO / "autograder" / "sandbox.py")).resolve()
HELDOUT = REPO / "autograder" / "data"
HEADER = textwrap.dedent("""
    import ctypes, errno, json, os, subprocess, sys
    libc = ctypes.CDLL(None, use_errno=True)
    def err(ret):
        return "ok" if ret == 0 else errno.errorcode.get(ctypes.get_errno(), "?")
    def write(path, text="planted"):
        try:
            with open(path, "w") as f:
                f.write(text)
            return "ok"
        except OSError as exc:
            return errno.errorcode.get(exc.errno, "?")
    def sh(*cmd):
        return subprocess.run(list(cmd), capture_output=True).returncode
""")

sys.path.insert(0, str(REPO))
from autograder import sandbox  # noqa: E402

isolated = pytest.mark.skipif(not sandbox.namespaces_available(),
                              reason=f"this machine gives the sandbox no namespaces: {sandbox.describe()}")


@pytest.fixture
def box(tmp_path):
    """(writable folder, hidden folder inside it holding a secret, a visible read-only folder)."""
    work = tmp_path / "work"
    (work / "hidden").mkdir(parents=True)
    (work / "hidden" / "secret.txt").write_text("the answers")
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    return work, work / "hidden", readonly


def run(box, probe: str, *args: str, prefix: list[str] = ()) -> dict:
    """Run PROBE (which prints one JSON object last) in the sandbox; return that object."""
    work, hidden, readonly = box
    cmd = [*prefix, sys.executable, str(SANDBOX), "--writable", str(work), "--hide", str(hidden),
           "--hide", str(HELDOUT), "--readable", str(readonly), "--max-procs", "64", *args,
           "--", sys.executable, "-c", HEADER + textwrap.dedent(probe)]
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@isolated
def test_the_kernel_has_no_capabilities_and_no_new_privileges(box):
    got = run(box, """
        status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
        print(json.dumps({k: status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
                                                           "NoNewPrivs")}))
    """)
    assert got == {"CapInh": "0" * 16, "CapPrm": "0" * 16, "CapEff": "0" * 16, "CapBnd": "0" * 16,
                   "CapAmb": "0" * 16, "NoNewPrivs": "1"}


@isolated
def test_the_writable_folder_is_writable_and_the_hidden_folders_are_empty(box):
    work, hidden, _ = box
    got = run(box, f"""
        print(json.dumps({{"write": write({str(work / "out.txt")!r}, "result"),
                          "hidden": os.listdir({str(hidden)!r}), "heldout": os.listdir({str(HELDOUT)!r})}}))
    """)
    assert got == {"write": "ok", "hidden": [], "heldout": []}
    assert (work / "out.txt").read_text() == "result"


@isolated
def test_a_hidden_folder_cannot_be_unmounted(box):
    work, hidden, _ = box
    got = run(box, f"""
        out = {{}}
        for d in ({str(hidden)!r}, {str(HELDOUT)!r}):
            out[d] = [err(libc.umount2(d.encode(), 0)), err(libc.umount2(d.encode(), 2)), sh("umount", "-l", d)]
        out["listing"] = os.listdir({str(hidden)!r}) + os.listdir({str(HELDOUT)!r})
        print(json.dumps(out))
    """)
    assert got[str(hidden)][:2] == got[str(HELDOUT)][:2] == ["EPERM", "EPERM"], got
    assert got[str(hidden)][2] != 0 and got[str(HELDOUT)][2] != 0
    assert got["listing"] == []


@isolated
def test_the_root_cannot_be_made_writable_again(box):
    marker = REPO / f"planted-{uuid.uuid4().hex}"
    got = run(box, f"""
        rc = [sh("mount", "-o", "remount,bind,rw", "/"), sh("mount", "-o", "remount,rw", "/"),
              err(libc.mount(None, b"/", None, 32 | 4096, None))]   # MS_REMOUNT | MS_BIND, without MS_RDONLY
        print(json.dumps({{"rc": rc, "write": write({str(marker)!r})}}))
    """)
    planted = marker.exists()
    marker.unlink(missing_ok=True)
    assert got["rc"][0] != 0 and got["rc"][1] != 0 and got["rc"][2] == "EPERM", got
    assert got["write"] == "EROFS" and not planted


@isolated
def test_no_path_outside_the_writable_folder_can_be_written(box):
    work, _, readonly = box
    name = f"planted-{uuid.uuid4().hex}"
    targets = [readonly / name, work.parent / name, REPO / name, REPO / "autograder" / name, Path.home() / name]
    got = run(box, f"print(json.dumps([write(p) for p in {[str(t) for t in targets]!r}]))")
    planted = [t for t in targets if t.exists()]
    for t in planted:
        t.unlink()
    assert got[0] == got[2] == got[3] == "EROFS", got   # visible, read-only
    assert "ok" not in got and planted == []


@isolated
def test_no_new_user_namespace_can_be_made(box):
    got = run(box, """
        print(json.dumps({"unshare -r": sh("unshare", "-r", "true"), "unshare -rm": sh("unshare", "-rm", "true"),
                          "CLONE_NEWUSER": err(libc.unshare(0x10000000))}))
    """)
    assert got["unshare -r"] != 0 and got["unshare -rm"] != 0
    assert got["CLONE_NEWUSER"] in ("ENOSPC", "EPERM"), got


@isolated
def test_no_file_system_can_be_mounted(box):
    work, _, _ = box
    (work / "mnt").mkdir()
    got = run(box, f"""
        mnt = {str(work / "mnt")!r}
        print(json.dumps({{"proc": err(libc.mount(b"proc", mnt.encode(), b"proc", 0, None)),
                          "tmpfs": err(libc.mount(b"tmpfs", mnt.encode(), b"tmpfs", 0, None)),
                          "bind": err(libc.mount(b"/", mnt.encode(), None, 4096, None)),
                          "mount proc /proc": sh("mount", "-t", "proc", "proc", "/proc")}}))
    """)
    assert (got["proc"], got["tmpfs"], got["bind"]) == ("EPERM", "EPERM", "EPERM"), got
    assert got["mount proc /proc"] != 0


@isolated
def test_proc_and_sys_are_read_only(box):
    cgroup = f"planted-{uuid.uuid4().hex}"
    cgroup_dirs = [Path(root) / cgroup for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified")]
    try:
        got = run(box, f"""
            out = {{"max_user_namespaces": write("/proc/sys/user/max_user_namespaces", "100"),
                   "hostname": write("/proc/sys/kernel/hostname", open("/proc/sys/kernel/hostname").read()),
                   "oom": write("/proc/self/oom_score_adj", "500")}}
            for d in {[str(d) for d in cgroup_dirs]!r}:
                try:
                    os.mkdir(d)
                    out[d] = "ok"
                except OSError as exc:
                    out[d] = errno.errorcode[exc.errno]
            out["ro"] = [bool(os.statvfs(p).f_flag & os.ST_RDONLY) for p in ("/proc", "/sys", "/sys/fs/cgroup")]
            print(json.dumps(out))
        """)
        assert got["max_user_namespaces"] in ("EROFS", "EACCES", "EPERM"), got
        assert got["hostname"] in ("EROFS", "EACCES", "EPERM") and got["oom"] in ("EROFS", "EACCES", "EPERM")
        assert "ok" not in got.values()
        assert got["ro"] == [True, True, True]
    finally:
        planted = [d for d in cgroup_dirs if d.exists()]
        for d in planted:
            d.rmdir()
    assert planted == []


@isolated
def test_dev_shm_and_tmp_are_private_and_dev_has_no_disks(box):
    name = f"planted-{uuid.uuid4().hex}"
    outside = Path(tempfile.gettempdir()) / f"outside-{uuid.uuid4().hex}"
    outside.write_text("another grader's file")
    try:
        got = run(box, f"""
            print(json.dumps({{"shm": write("/dev/shm/{name}"), "tmp": write("/tmp/{name}"),
                              "outside": os.path.exists({str(outside)!r}), "dev": sorted(os.listdir("/dev"))}}))
        """)
    finally:
        outside.unlink()
        planted = [p for p in (Path("/dev/shm") / name, Path(tempfile.gettempdir()) / name) if p.exists()]
        for p in planted:
            p.unlink()
    assert got["shm"] == "ok" and planted == []     # the kernel's own /dev/shm, thrown away with it
    assert got["tmp"] != "ok" and got["outside"] is False
    assert set(got["dev"]) <= {"null", "zero", "full", "random", "urandom", "tty", "fd", "stdin", "stdout", "stderr",
                               "ptmx", "pts", "shm"}, got["dev"]


@isolated
def test_processes_outside_cannot_be_seen_or_signalled(box):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        got = run(box, f"""
            import signal
            out = {{"pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()), "ppid": os.getppid()}}
            try:
                os.kill({sleeper.pid}, signal.SIGKILL)
                out["kill"] = "ok"
            except OSError as exc:
                out["kill"] = errno.errorcode[exc.errno]
            print(json.dumps(out))
        """)
        assert sleeper.poll() is None and got["kill"] == "ESRCH", got
        assert got["ppid"] == 0 and max(got["pids"]) < 10, got
    finally:
        sleeper.kill()
        sleeper.wait()


@isolated
def test_the_kernel_has_its_own_ipc_and_uts_namespaces(box):
    got = run(box, 'print(json.dumps({n: os.readlink(f"/proc/self/ns/{n}") for n in ("ipc", "uts", "net", "user")}))')
    assert all(got[n] != os.readlink(f"/proc/self/ns/{n}") for n in got), got


@isolated
def test_without_setpriv_the_same_calls_drop_every_capability(box, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_SANDBOX_NO_SETPRIV", "1")
    got = run(box, """
        status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
        print(json.dumps([status[k].strip() for k in ("CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs")]))
    """)
    assert got == ["0" * 16] * 4 + ["1"]


def test_describe_says_what_isolation_this_machine_gives():
    line = sandbox.describe()
    assert "\n" not in line
    if sandbox.namespaces_available():
        for part in ("no capabilities", "no_new_privs", "no new user namespaces", "read-only", "no network"):
            assert part in line, line
    else:
        assert line.startswith("resource limits only")


@pytest.mark.skipif(os.getuid() != 0 or not shutil.which("setpriv"), reason="needs root to become an ordinary user")
def test_graded_by_an_ordinary_user_the_same_escapes_fail():
    """As `nobody`: the same probes as above in one run, in folders it owns (the interpreter may live under /root,
    mode 700: the prefix shows it .pyenv alone, in a mount namespace of its own)."""
    check = subprocess.run(ordinary_user_prefix() + [sys.executable, str(SANDBOX), "--describe"],
                           capture_output=True, text=True, timeout=60)
    if "resource limits only" in check.stdout or check.returncode != 0:
        pytest.skip(f"an ordinary user gets no sandbox here: {check.stdout.strip()} {check.stderr.strip()[-200:]}")
    tmp = Path(tempfile.mkdtemp(prefix="sandbox-user-"))
    try:
        work, hidden, readonly = tmp / "work", tmp / "work" / "hidden", tmp / "readonly"
        for d in (work, hidden, readonly):
            d.mkdir(parents=True, exist_ok=True)
        (hidden / "secret.txt").write_text("the answers")
        for p in [tmp, *tmp.rglob("*")]:
            os.chown(p, 65534, 65534)
        got = run((work, hidden, readonly), f"""
            status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
            print(json.dumps({{"caps": status["CapEff"].strip() + status["CapBnd"].strip(),
                              "umount": err(libc.umount2({str(hidden)!r}.encode(), 2)),
                              "remount": err(libc.mount(None, b"/", None, 32 | 4096, None)),
                              "userns": err(libc.unshare(0x10000000)), "root": write("/planted"),
                              "own": write({str(work / "own.txt")!r}), "hidden": os.listdir({str(hidden)!r})}}))
        """, prefix=ordinary_user_prefix())
        planted = Path("/planted").exists()
        if planted:
            Path("/planted").unlink()
        assert got == {"caps": "0" * 32, "umount": "EPERM", "remount": "EPERM", "userns": "ENOSPC",
                       "root": "EROFS", "own": "ok", "hidden": []}, got
        assert (work / "own.txt").stat().st_uid == 65534 and not planted
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ordinary_user_prefix(uid: int = 65534) -> list[str]:
    """A command prefix that runs the rest as an ordinary user, with /root shown as only its .pyenv (read-only)."""
    script = ("set -e; if [ -d /root/.pyenv ]; then stage=$(mktemp -d); mount --bind /root/.pyenv $stage; "
              "mount -t tmpfs -o mode=755 tmpfs /root; mkdir /root/.pyenv; mount --move $stage /root/.pyenv; "
              f'rmdir $stage; fi; exec setpriv --reuid={uid} --regid={uid} --clear-groups --inh-caps=-all "$@"')
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh"]
