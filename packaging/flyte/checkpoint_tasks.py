"""Flyte 2 (flyte-sdk, the `flyte` package) tasks that checkpoint through a ckptfs mount.

Flyte gives every attempt of a task two checkpoint URIs: where this attempt saves
(`flyte.ctx().checkpoint.remote_destination`, rendered from {{.checkpointOutputPrefix}})
and the previous attempt's checkpoint (`remote_source`, {{.prevCheckpointPrefix}}; None on
a first attempt). `train` mounts ckptfs with them (`--dest`, `--src`): the previous
attempt's checkpoint is under /ckpt/prev (fetched lazily), what the task writes under
/ckpt/save is saved by `touch /ckpt/.save` (it returns once the object is durable) and
once more when the task ends. Retries make the next attempt resume.

`train_container` does the same for any image: its command wraps the program in
`ckptfs run` with the prefixes Flyte renders into the arguments ({{.checkpointOutputPrefix}},
{{.prevCheckpointPrefix}}).

The object is the one flyte.Checkpoint writes (a gzip tar of the folder's entries), so a
task can mix the two: `train_py` below saves with `checkpoint.save_sync(folder)` and
resumes with `checkpoint.load_sync()`, and either task resumes from the other's
checkpoint.

Privileges: the mount needs /dev/fuse and mount(2), so the pod template makes the primary
container privileged (a hostPath of /dev/fuse with only CAP_SYS_ADMIN fails on containerd;
see ../kubernetes/pod-run.yaml for a device-plugin variant). Without them, add --no-fuse to
CKPTFS_ARGS: prev/ is restored eagerly and save/ is a plain folder.

For flyte-sdk 2.x (flyte.TaskEnvironment, flyte.PodTemplate, flyte.extras.ContainerTask,
flyte.ctx().checkpoint). tests/integration/test_examples.py runs `ckptfs_mount` and
CONTAINER_COMMAND below, unchanged (the templates rendered as Flyte renders them), against
moto.
"""
import contextlib
import os
import pathlib
import subprocess

CKPT = "/ckpt"    # the mountpoint (made by ckptfs)
CACHE = "/cache"  # an emptyDir volume: save/ and the restored prev/ live there
CKPTFS_ARGS = []  # more options for the mount, e.g. "--no-fuse", "--memory-limit", "512M"

# A container task's command: any image with ckptfs and the training program. Flyte
# renders the two checkpoint prefixes into the arguments of every attempt (the previous
# one is "" on a first attempt: no previous checkpoint), and `ckptfs run` mounts, runs the
# program with CKPTFS_MOUNT=/ckpt, saves what it left in /ckpt/save when it exits (or
# within --grace after SIGTERM) and unmounts.
CONTAINER_COMMAND = [
    "ckptfs", "run", "--grace", "25", "--cache-dir", CACHE,
    "--dest", "{{.checkpointOutputPrefix}}",
    "--src", "{{.prevCheckpointPrefix}}",
    CKPT, "--",
    "python", "train.py", "--steps", "{{.inputs.steps}}", "--ckpt-dir", CKPT,
]


@contextlib.contextmanager
def ckptfs_mount(dest, src, mnt=CKPT, cache=CACHE, extra=CKPTFS_ARGS):
    """Mounts ckptfs at mnt (the daemon returns once the mount serves), yields its path;
    at the end saves what changed (an error if the save failed) and unmounts."""
    args = ["ckptfs", "--cache-dir", cache, "--dest", dest, *extra]
    if src:  # None or "" on a first attempt: no previous checkpoint
        args += ["--src", src]
    subprocess.run(args + [mnt], check=True)
    try:
        yield pathlib.Path(mnt)
        subprocess.run(["ckptfs", "save", mnt], check=True)  # durable when it returns
    finally:
        subprocess.run(["fusermount3", "-u", mnt], check=False)


def flyte_env():
    """The task environment: an image with ckptfs and FUSE, a privileged primary container
    with a cache volume. Built lazily so that this file imports without flyte-sdk."""
    import flyte
    from kubernetes.client import (V1Container, V1EmptyDirVolumeSource, V1PodSpec,
                                   V1SecurityContext, V1Volume, V1VolumeMount)

    pod = V1PodSpec(
        containers=[V1Container(
            name="primary",
            security_context=V1SecurityContext(privileged=True),
            volume_mounts=[V1VolumeMount(name="cache", mount_path=CACHE)])],
        volumes=[V1Volume(name="cache", empty_dir=V1EmptyDirVolumeSource(size_limit="20Gi"))],
        termination_grace_period_seconds=30)
    image = (flyte.Image.from_debian_base()
             .with_apt_packages("fuse3", "ca-certificates")
             .with_commands(["apt-get install -y /tmp/ckptfs_0.1.0-1_amd64.deb"]))
    return flyte.TaskEnvironment(
        name="ckptfs-train", image=image,
        pod_template=flyte.PodTemplate(primary_container_name="primary", pod_spec=pod))


try:
    import flyte

    env = flyte_env()
except ImportError:  # flyte-sdk not installed: ckptfs_mount stays usable on its own
    env = None

if env is not None:
    from flyte.extras import ContainerTask

    train_container = ContainerTask(
        name="train-container",
        image="registry.example.org/train-ckptfs:latest",  # ckptfs + train.py
        inputs={"steps": int},
        command=CONTAINER_COMMAND,
        pod_template=env.pod_template,
        retries=3,
    )
    env.add_task(train_container)

    @env.task(retries=3)
    def train(steps: int) -> int:
        cp = flyte.ctx().checkpoint
        with ckptfs_mount(cp.remote_destination, cp.remote_source) as mnt:
            prev = mnt / "prev" / "step"
            start = int(prev.read_text()) if prev.exists() else 0
            for step in range(start, steps):
                # ... one unit of work ...
                if step % 100 == 0:
                    (mnt / "save" / "step").write_text(str(step))
                    (mnt / ".save").touch()  # returns once the checkpoint is durable
        return steps

    @env.task(retries=3)
    def train_py(steps: int) -> int:
        """The same with flyte.Checkpoint alone: resumes from train's checkpoints too."""
        cp = flyte.ctx().checkpoint
        prev = cp.load_sync()  # extracts the previous object into cp.path
        start = 0
        if prev is not None and (cp.path / "step").exists():
            start = int((cp.path / "step").read_text())
        work = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / "ckpt-work"
        work.mkdir(exist_ok=True)
        for step in range(start, steps):
            if step % 100 == 0:
                (work / "step").write_text(str(step))
                cp.save_sync(work)  # the same object format as ckptfs's
        return steps
