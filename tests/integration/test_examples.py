"""The deployment examples in packaging/ run as written (issue 28): every Kubernetes YAML
and the Flyte example parse; each Pod's ckptfs command line runs here with the same
arguments, in fresh empty folders standing for the container's filesystem and volumes,
against moto holding the bucket the example names:

- a `ckptfs run` container: the mount appears, the command (standing in for train.py)
  writes into save/ and keeps running; SIGTERM (what the kubelet sends) makes ckptfs save
  and exit 0 within the pod's terminationGracePeriodSeconds; the object holds the file;
- a sidecar (an initContainer with restartPolicy Always): the daemon makes the missing
  mountpoint folder, the startup probe's command passes, a save as the main container
  would make it (write into save/, touch .save) is durable in the bucket, SIGTERM
  unmounts within the grace period.

What cannot run without a cluster: the kubelet itself, mount propagation between
containers, the device plugin's resource, AppArmor, the service accounts' cloud roles."""
import ast
import contextlib
import glob
import os
import pathlib
import signal
import subprocess
import tarfile
import time
import unittest

import yaml

from ckfs import BIN, MountTest, is_mounted, wait_for
from test_s3 import Moto

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
K8S = os.path.join(ROOT, "packaging", "kubernetes")
BUCKET = "my-bucket"  # the examples' bucket

# Stands in for `python train.py --ckpt-dir /ckpt`: writes a step into save/, then trains
# until it is stopped.
TRAIN = 'echo "step 7" > "$CKPTFS_MOUNT/save/step" && touch "$READY" && exec sleep 600'


def pods():
    """(file, pod) for every Pod in the Kubernetes examples."""
    out = []
    for path in sorted(glob.glob(os.path.join(K8S, "*.yaml"))):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc and doc.get("kind") == "Pod":
                    out.append((os.path.basename(path), doc))
    return out


def ckptfs_containers(pod):
    """(container, argv, is_sidecar) for the containers that run ckptfs."""
    spec = pod["spec"]
    out = []
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        cmd = c.get("command", []) + c.get("args", [])
        if cmd[:1] == ["ckptfs"]:
            out.append((c, cmd[1:], False))
        elif "ckptfs" in c.get("image", "") and not c.get("command"):
            out.append((c, cmd, c.get("restartPolicy") == "Always"))
    return out


def flyte_parts(*functions):
    """packaging/flyte/checkpoint_tasks.py's upper-case constants and the named functions, as
    written (taken from the file's syntax tree, so neither flyte-sdk nor the kubernetes
    client is needed): a namespace."""
    path = os.path.join(ROOT, "packaging", "flyte", "checkpoint_tasks.py")
    tree_ = ast.parse(open(path).read(), path)
    body = [n for n in tree_.body
            if (isinstance(n, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper()
                                                  for t in n.targets))
            or (isinstance(n, ast.FunctionDef) and n.name in functions)]
    ns = {"contextlib": contextlib, "os": os, "pathlib": pathlib, "subprocess": subprocess}
    exec(compile(ast.Module(body=body, type_ignores=[]), path, "exec"), ns)
    return ns


class Paths:
    """Maps the container's absolute paths to fresh folders: a volume's mountPath to that
    volume's folder (shared by the pod's containers, as an emptyDir is), anything else to
    the container's own root folder."""

    def __init__(self, base, pod, container):
        self.volumes = {}
        for v in pod["spec"].get("volumes", []):
            self.volumes[v["name"]] = os.path.join(base, "volumes", v["name"])
            os.makedirs(self.volumes[v["name"]], exist_ok=True)
        self.mounts = sorted(((m["mountPath"], self.volumes[m["name"]])
                              for m in container.get("volumeMounts", [])),
                             key=lambda m: -len(m[0]))
        self.root = os.path.join(base, "root-" + container["name"])
        os.makedirs(self.root, exist_ok=True)

    def map(self, p):
        if not p.startswith("/"):
            return p
        for mp, local in self.mounts:
            if p == mp or p.startswith(mp + "/"):
                return local + p[len(mp):]
        return self.root + p

    def argv(self, args):
        """args with its paths mapped (the values after --cache-dir and the mountpoint, any
        absolute path); URIs stay as they are."""
        return [self.map(a) if a.startswith("/") else a for a in args]


class ExamplesParseTest(unittest.TestCase):
    def test_every_example_parses(self):
        files = glob.glob(os.path.join(K8S, "*.yaml"))
        self.assertGreaterEqual(len(files), 3)
        for path in files:
            with open(path) as f:
                docs = [d for d in yaml.safe_load_all(f) if d]
            self.assertTrue(docs, path)
            for d in docs:
                self.assertIn(d["kind"], ("Pod", "ServiceAccount"), path)
        for path in glob.glob(os.path.join(ROOT, "packaging", "flyte", "*.py")):
            with open(path) as f:
                ast.parse(f.read(), path)
        self.assertGreaterEqual(len([p for p in pods() if ckptfs_containers(p[1])]), 4)


class ExamplesRunTest(MountTest):
    def setUp(self):
        super().setUp()
        self.moto = Moto(self.base)
        self.addCleanup(self.moto.stop)
        self.s3 = self.moto.client()
        self.s3.create_bucket(Bucket=BUCKET)

    def env(self, container):
        env = self.moto.env()
        for e in container.get("env", []):
            env[e["name"]] = e["value"]
        return env

    def saved_step(self, key):
        obj = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        path = self.path("obj.tgz")
        with open(path, "wb") as f:
            f.write(obj)
        with tarfile.open(path, "r:*") as t:
            return t.extractfile("step").read()

    def dest_key(self, argv):
        uri = argv[argv.index("--dest") + 1]
        self.assertTrue(uri.startswith(f"s3://{BUCKET}/"), uri)
        return uri[len(f"s3://{BUCKET}/"):]

    def stop_within_grace(self, p, pod, what, codes=(0,)):
        grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(grace)
        except subprocess.TimeoutExpired:
            self.fail(f"{what}: still running {grace} s after SIGTERM")
        self.assertIn(rc, codes, f"{what}: {p.stderr.read()}")
        return time.monotonic() - t0

    def run_wrapped(self, name, pod, container, argv, train=TRAIN):
        """`ckptfs run ... -- python train.py ...` with train (a shell script) in place of
        train.py."""
        base = self.path(f"{pod['metadata']['name']}-{name}")
        os.makedirs(base, exist_ok=True)
        paths = Paths(base, pod, container)
        cut = argv.index("--")
        args = paths.argv(argv[:cut]) + ["--", "sh", "-c", train]
        mnt = args[cut - 1]
        ready = os.path.join(base, "ready")
        env = dict(self.env(container), READY=ready)
        p = subprocess.Popen([BIN] + args, env=env, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        wait_for(lambda: os.path.exists(ready) or p.poll() is not None, 30,
                 f"{name}: the command")
        self.assertIsNone(p.poll(), f"{name}: {p.stderr.read() if p.poll() is not None else ''}")
        # ckptfs run exits with the command's status: sh killed by the forwarded SIGTERM
        took = self.stop_within_grace(p, pod, name, codes=(128 + signal.SIGTERM,))
        self.assertEqual(self.saved_step(self.dest_key(argv)), b"step 7\n", name)
        self.assertFalse(is_mounted(mnt), name)
        print(f"\n{name}: saved and unmounted {took:.1f} s after SIGTERM")

    def run_sidecar(self, name, pod, container, argv):
        base = self.path(f"{pod['metadata']['name']}-{name}")
        os.makedirs(base, exist_ok=True)
        paths = Paths(base, pod, container)
        args = paths.argv(argv)
        mnt = args[-1]
        self.assertFalse(os.path.exists(mnt), "the mountpoint exists before the daemon")
        p = subprocess.Popen([BIN] + args, env=self.env(container), stderr=subprocess.PIPE,
                             text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        probe = container["startupProbe"]
        cmd = paths.argv(probe["exec"]["command"])
        limit = probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)

        def probe_ok():
            self.assertIsNone(p.poll(), f"{name}: {p.stderr.read() if p.poll() else ''}")
            return subprocess.run(cmd, capture_output=True).returncode == 0
        wait_for(probe_ok, limit, f"{name}: the startup probe")
        # the main container's part: write into save/, touch .save (durable on close)
        with open(os.path.join(mnt, "save", "step"), "w") as f:
            f.write("step 7\n")
        subprocess.run(["touch", os.path.join(mnt, ".save")], check=True)
        self.assertEqual(self.saved_step(self.dest_key(argv)), b"step 7\n", name)
        took = self.stop_within_grace(p, pod, name)
        self.assertFalse(is_mounted(mnt), name)
        print(f"\n{name}: probe passed, saved, unmounted {took:.1f} s after SIGTERM")

    def flyte_mount(self):
        """packaging/flyte's ckptfs_mount, as written, with `ckptfs` on PATH."""
        ns = flyte_parts("ckptfs_mount")
        bindir = os.path.dirname(self.path("bin", "x"))
        os.symlink(os.path.abspath(BIN), os.path.join(bindir, "ckptfs"))
        os.environ["PATH"] = bindir + os.pathsep + os.environ["PATH"]
        return ns["ckptfs_mount"]

    def test_flyte_task_mount_resumes_across_attempts(self):
        mount = self.flyte_mount()
        env_before = dict(os.environ)
        self.addCleanup(lambda: (os.environ.clear(), os.environ.update(env_before)))
        os.environ.update(self.moto.env())  # what the task's service account gives
        dest0, dest1 = f"s3://{BUCKET}/flyte/a0/_flytecheckpoints", f"s3://{BUCKET}/flyte/a1/_flytecheckpoints"
        mnt, cache = os.path.join(self.base, "ckpt"), self.path("cache0")
        with mount(dest0, None, mnt=mnt, cache=cache) as m:  # a first attempt: src is None
            self.assertEqual(os.listdir(m / "prev"), [])
            (m / "save" / "step").write_text("100")
            (m / ".save").touch()
        wait_for(lambda: not is_mounted(mnt), 30, "the unmount")
        # flyte.Checkpoint's load reads it: a gzip tar of the folder's entries
        self.assertEqual(self.saved_step("flyte/a0/_flytecheckpoints"), b"100")
        with mount(dest1, dest0, mnt=mnt, cache=self.path("cache1")) as m:  # the retry
            self.assertEqual((m / "prev" / "step").read_text(), "100")
            (m / "save" / "step").write_text("200")
        wait_for(lambda: not is_mounted(mnt), 30, "the unmount")
        self.assertEqual(self.saved_step("flyte/a1/_flytecheckpoints"), b"200")

    def test_flyte_container_task_command_resumes_across_attempts(self):
        """CONTAINER_COMMAND rendered as Flyte renders it per attempt ("" for the previous
        prefix of a first attempt), the program after `--` replaced by a stand-in."""
        ns = flyte_parts()
        cmd = ns["CONTAINER_COMMAND"]
        self.assertEqual(cmd[:2], ["ckptfs", "run"])
        pod = {"metadata": {"name": "flyte"}, "spec": {
            "terminationGracePeriodSeconds": 30,
            "volumes": [{"name": "cache", "emptyDir": {}}]}}
        container = {"name": "primary", "volumeMounts": [{"name": "cache",
                                                           "mountPath": ns["CACHE"]}]}
        dests = [f"s3://{BUCKET}/flyte-ct/a{n}/_flytecheckpoints" for n in range(2)]
        prevs = ['""', dests[0]]  # Flyte's rendering of a first attempt's prefix is ""
        for n in range(2):
            argv = [a.replace("{{.checkpointOutputPrefix}}", dests[n])
                    .replace("{{.prevCheckpointPrefix}}", prevs[n])
                    .replace("{{.inputs.steps}}", "1000") for a in cmd[1:]]
            self.run_wrapped(f"attempt{n}", pod, container, argv,
                             train=f'cat "$CKPTFS_MOUNT/prev/step" > "$READY.prev" 2>/dev/null; '
                                   f'echo "step 7" > "$CKPTFS_MOUNT/save/step" && '
                                   f'touch "$READY" && exec sleep 600')
        prev_seen = os.path.join(self.base, "flyte-attempt1", "ready.prev")
        self.assertEqual(open(prev_seen).read(), "step 7\n")  # the retry saw attempt 0's

    def test_every_pod_runs_its_ckptfs_command_line(self):
        ran = []
        for fname, pod in pods():
            for c, argv, sidecar in ckptfs_containers(pod):
                if "--dest" not in argv or not argv[argv.index("--dest") + 1].startswith("s3://"):
                    continue  # another cloud's bucket (credentials.yaml's AKS pod)
                name = f"{fname}:{pod['metadata']['name']}/{c['name']}"
                if sidecar:
                    self.run_sidecar(c["name"], pod, c, argv)
                else:
                    self.assertEqual(argv[0], "run", name)
                    self.run_wrapped(c["name"], pod, c, argv)
                ran.append(name)
        self.assertGreaterEqual(len(ran), 4, ran)
