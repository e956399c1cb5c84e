"""ckfs - helpers for the integration tests: mount ckptfs for real, drive it, compare trees.

Every test mounts the real binary (CKPTFS_BIN) on a real FUSE mount in a private temp
folder and talks to it with ordinary programs. Servers (nginx, the fault proxy) are the
real tools in tests/tools, started on 127.0.0.1 by the tests themselves.
"""
import atexit
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import warnings

# Tests read small files with open(...).read(); the unclosed-file warnings are noise.
warnings.simplefilter("ignore", ResourceWarning)

BIN = os.environ.get("CKPTFS_BIN") or os.path.join(
    os.environ.get("CK_BUILD_DIR", "../../build"), "ckptfs")
TOOLS = os.environ.get("CK_TEST_TOOLS") or os.path.join(os.path.dirname(__file__), "..", "tools")

# ThreadSanitizer reports of every ckptfs process a test starts (daemons, the CLI tools,
# `ckptfs run`) go to files in one folder (TSAN_OPTIONS log_path; the variable is inherited
# by every environment the tests build, all of which start from os.environ). A daemon
# killed by the test, or one whose exit status (exitcode=66) the test does not check,
# would otherwise leave its report unseen in its log; MountTest fails any test after
# which a new report file shows up. Other builds ignore TSAN_OPTIONS.
SAN_DIR = tempfile.mkdtemp(prefix="ck-tsan-")
os.environ["TSAN_OPTIONS"] = " ".join(
    filter(None, [os.environ.get("TSAN_OPTIONS"), f"log_path={SAN_DIR}/tsan"]))

atexit.register(shutil.rmtree, SAN_DIR, ignore_errors=True)


def sanitizer_reports():
    """{file name: text} of the report files in SAN_DIR."""
    out = {}
    for name in sorted(os.listdir(SAN_DIR)):
        with open(os.path.join(SAN_DIR, name), errors="replace") as f:
            out[name] = f.read()
    return out


def wait_for(pred, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == path for line in f)


class Mount:
    """One ckptfs daemon in the foreground (-f), mounted on a fresh folder."""

    def __init__(self, base, dest, srcs=(), cache=None, extra=(), name="mnt", env=None):
        self.base = base
        self.mnt = os.path.join(base, name)
        os.makedirs(self.mnt, exist_ok=True)
        self.cache = cache or os.path.join(base, name + "-cache")
        self.log_path = os.path.join(base, name + ".log")
        args = [BIN, "-f", "--cache-dir", self.cache, "--save-wait", "5"]
        if dest is not None:
            args += ["--dest", dest]
        for s in srcs:
            args += ["--src", s]
        args += list(extra) + [self.mnt]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     env=env if env is not None else os.environ.copy())
        try:
            wait_for(lambda: is_mounted(self.mnt) or self.proc.poll() is not None, 10,
                     "the mount")
        except AssertionError:
            self.kill()
            raise
        if self.proc.poll() is not None:
            raise AssertionError(f"ckptfs exited with {self.proc.returncode}:\n{self.logtext()}")

    @property
    def save(self):
        return os.path.join(self.mnt, "save")

    @property
    def prev(self):
        return os.path.join(self.mnt, "prev")

    def status(self):
        with open(os.path.join(self.mnt, ".status")) as f:
            return json.load(f)

    def touch_save(self):
        """touch MOUNT/.save, returning touch's exit status (0 = durable)."""
        return subprocess.run(["touch", os.path.join(self.mnt, ".save")],
                              capture_output=True).returncode

    def logtext(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def unmount(self, timeout=60):
        """fusermount3 -u, then wait for the daemon (which saves on unmount) to exit."""
        if self.proc.poll() is None and is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-u", self.mnt], check=True)
        try:
            rc = self.proc.wait(timeout)
        finally:
            self.log.close()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-uz", self.mnt])
        if not self.log.closed:
            self.log.close()


class MountTest(unittest.TestCase):
    """Base class: a temp folder per test, every mount cleaned up even on failure."""

    def setUp(self):
        if not os.path.exists(BIN):
            self.fail(f"ckptfs binary not found at {BIN}: build first")
        self.base = tempfile.mkdtemp(prefix="ckit-")
        # Registered first, so it runs last: after every mount is killed and every server
        # a test registered is stopped.
        seen = set(sanitizer_reports())
        self.addCleanup(self._check_sanitizer_reports, seen)
        # Cleanups run last-in first-out after tearDown: the folder goes after every
        # server a test registered (nginx finds its pid file in it).
        self.addCleanup(shutil.rmtree, self.base, ignore_errors=True)
        self.mounts = []

    def _check_sanitizer_reports(self, seen):
        new = {k: v for k, v in sanitizer_reports().items() if k not in seen}
        if new:
            text = "\n".join(f"--- {SAN_DIR}/{k} ---\n{v[:20000]}" for k, v in new.items())
            self.fail(f"ThreadSanitizer reported in a ckptfs process:\n{text}")

    def _failed(self):
        result = getattr(self._outcome, "result", None)
        return result is not None and any(
            t is self for t, _ in list(result.errors) + list(result.failures))

    def tearDown(self):
        for m in self.mounts:
            if self._failed() or os.environ.get("CK_TEST_VERBOSE"):
                sys.stderr.write(f"--- ckptfs log ({m.mnt}) ---\n{m.logtext()}\n")
            m.kill()

    def mount(self, dest, srcs=(), **kw):
        m = Mount(self.base, dest, srcs, **kw)
        self.mounts.append(m)
        return m

    def path(self, *parts):
        p = os.path.join(self.base, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p


def tree(root):
    """{relative path: (kind, mode bits, mtime seconds, content or link target)}"""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", None, None, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), None, None)
            else:
                with open(p, "rb") as f:
                    data = f.read()
                out[rel] = ("file", stat.S_IMODE(st.st_mode), int(st.st_mtime), data)
    return out


def make_sample_tree(root, big=256 * 1024):
    """A small checkpoint: nested dirs, modes, mtimes, a symlink, an empty file."""
    os.makedirs(os.path.join(root, "sub", "deeper"), exist_ok=True)
    files = {
        "model.pt": os.urandom(big),
        "config.json": b'{"lr": 0.001, "step": 1200}\n',
        "sub/state.bin": bytes(range(256)) * 64,
        "sub/deeper/empty": b"",
        "name with spaces.txt": b"spaces\n",
        "\u00fcnicode-\u00e9.txt": "caf\u00e9\n".encode(),
        "x" * 120 + ".long": b"long name\n",
    }
    for rel, data in files.items():
        with open(os.path.join(root, rel), "wb") as f:
            f.write(data)
    os.chmod(os.path.join(root, "sub", "state.bin"), 0o600)
    os.chmod(os.path.join(root, "model.pt"), 0o640)
    os.symlink("model.pt", os.path.join(root, "latest"))
    os.symlink("../config.json", os.path.join(root, "sub", "cfg"))
    t = 1_700_000_000
    for i, rel in enumerate(sorted(files)):
        os.utime(os.path.join(root, rel), (t + i, t + i))
    return files


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Nginx:
    """Debian's nginx with WebDAV PUT on 127.0.0.1 (tests/tools/nginx-dav)."""

    def __init__(self, base):
        self.dir = os.path.join(base, "nginx")
        os.makedirs(self.dir, exist_ok=True)
        out = subprocess.run([os.path.join(TOOLS, "nginx-dav"), "start", self.dir],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise AssertionError(f"nginx-dav start failed: {out.stderr}")
        self.port = int(out.stdout.strip().splitlines()[-1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = os.path.join(self.dir, "data")

    def access_log(self):
        p = os.path.join(self.dir, "logs", "access.log")
        return open(p).read() if os.path.exists(p) else ""

    def stop(self):
        subprocess.run([os.path.join(TOOLS, "nginx-dav"), "stop", self.dir])


class FaultProxy:
    """tests/tools/faultproxy.py in front of an upstream port on 127.0.0.1."""

    def __init__(self, base, upstream_port, plan=""):
        self.log_path = os.path.join(base, f"faultproxy-{upstream_port}.log")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(TOOLS, "faultproxy.py"), "--upstream",
             str(upstream_port), "--plan", plan, "--log", self.log_path],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.proc.kill()
            raise AssertionError(f"faultproxy did not start: {line!r}")
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"

    def _control(self, method, path, body=b""):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request(method, path, body=body)
        r = c.getresponse()
        data = r.read()
        c.close()
        if r.status != 200:
            raise AssertionError(f"faultproxy {path}: {r.status} {data!r}")
        return data

    def set_plan(self, plan, match=""):
        """The plan, taken only by requests whose "METHOD TARGET[ Range: VALUE]" the regex
        match finds ("": every request)."""
        self._control("PUT", "/__fault/match", match.encode())
        self._control("PUT", "/__fault/plan", plan.encode())

    def release(self):
        """Ends the stalls in progress (stall=SECS steps) now."""
        self._control("PUT", "/__fault/release")

    def records(self):
        out = self._control("GET", "/__fault/log").decode()
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def stop(self):
        self.proc.kill()
        self.proc.wait()
