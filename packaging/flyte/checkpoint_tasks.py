"""Flyte examples: a container task and a Python task that checkpoint through ckptfs.

Flyte renders {{.checkpointOutputPrefix}} and {{.prevCheckpointPrefix}} per attempt
(the latter is "" on a first attempt, which ckptfs reads as "no previous checkpoint"), so
a retried task resumes from the previous attempt's checkpoint. The objects are the same
format flyte.Checkpoint writes, so tasks can mix the Python helper and the mount.

Privileges: with FUSE the pod needs /dev/fuse and CAP_SYS_ADMIN (see
../kubernetes/pod-run.yaml for a pod template); add --no-fuse to run without them.
"""
import os
import pathlib

import flytekit
from flytekit import ContainerTask, kwtypes, task

# 1. A container task: any image with ckptfs installed; the command is wrapped.
train_container = ContainerTask(
    name="train-container",
    image="registry.example.org/train-ckptfs:latest",
    inputs=kwtypes(steps=int),
    command=[
        "ckptfs", "run",
        "--dest", "{{.checkpointOutputPrefix}}",
        "--src", "{{.prevCheckpointPrefix}}",
        "/ckpt", "--",
        "python", "train.py", "--steps", "{{.inputs.steps}}", "--ckpt-dir", "/ckpt",
    ],
)


# 2. A Python task: the image's entrypoint is wrapped in ckptfs run (in the pod template
#    or the Dockerfile: ENTRYPOINT ["ckptfs", "run", "/ckpt", "--"]) with CKPTFS_DEST and
#    CKPTFS_SRC set from the checkpoint prefixes; the task only uses files.
@task(retries=3)
def train(steps: int) -> int:
    mnt = pathlib.Path(os.environ.get("CKPTFS_MOUNT", "/ckpt"))
    prev = mnt / "prev" / "step"
    start = int(prev.read_text()) if prev.exists() else 0
    for step in range(start, steps):
        # ... one unit of work ...
        if step % 100 == 0:
            (mnt / "save" / "step").write_text(str(step))
            (mnt / ".save").touch()  # returns once the checkpoint is durable
    flytekit.current_context().logging.info("trained %d steps from %d", steps, start)
    return steps
