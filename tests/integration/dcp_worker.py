"""One rank of a PyTorch distributed checkpoint (torch 1.13's
torch.distributed._shard.checkpoint) written to or read from a ckptfs mount, for
test_pytorch.py. gloo on 127.0.0.1; MASTER_PORT, RANK and WORLD_SIZE from the environment.

  dcp_worker.py save MOUNT STEP [--touch]   a ShardedTensor (rows split over the ranks)
                                            and a step tensor into MOUNT/save/ckpt; then,
                                            with --touch, Path(MOUNT/.save).touch();
                                            prints "saved" or "save failed: ..."
  dcp_worker.py load MOUNT STEP             loads MOUNT/prev/ckpt into this world's
                                            sharding and checks every value; prints "loaded"
"""
import importlib.abc
import importlib.machinery
import importlib.util
import os
import pathlib
import sys

ROWS, COLS = 64, 48


class _DataclassFix(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """torch 1.13's sharded_tensor/metadata.py has a dataclass default that Python 3.11
    refuses (a mutable default): load it with default_factory instead."""
    name = "torch.distributed._shard.sharded_tensor.metadata"

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        self.origin = spec.origin
        return importlib.util.spec_from_file_location(fullname, spec.origin, loader=self)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        with open(self.origin) as f:
            src = f.read().replace("field(default=TensorProperties())",
                                   "field(default_factory=TensorProperties)")
        exec(compile(src, self.origin, "exec"), module.__dict__)


sys.meta_path.insert(0, _DataclassFix())

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.distributed._shard.checkpoint as dcp  # noqa: E402
from torch.distributed._shard import sharded_tensor  # noqa: E402
from torch.distributed._shard.sharding_spec import ChunkShardingSpec  # noqa: E402


def value(step):
    return torch.arange(ROWS * COLS, dtype=torch.float32).reshape(ROWS, COLS) * 0.5 + step


def state(world, step):
    spec = ChunkShardingSpec(dim=0, placements=[f"rank:{r}/cpu" for r in range(world)])
    st = sharded_tensor.zeros(spec, ROWS, COLS)
    for shard in st.local_shards():
        r0 = shard.metadata.shard_offsets[0]
        shard.tensor.copy_(value(step)[r0:r0 + shard.tensor.shape[0]])
    return {"weights": st, "step": torch.tensor(step)}


def main():
    what, mnt, step = sys.argv[1], pathlib.Path(sys.argv[2]), int(sys.argv[3])
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    dist.init_process_group("gloo", rank=rank, world_size=world)
    if what == "save":
        ckpt = mnt / "save" / "ckpt"
        ckpt.mkdir(parents=True, exist_ok=True)  # FileSystemWriter makes it on rank 0 only
        dcp.save_state_dict(state(world, step), dcp.FileSystemWriter(str(ckpt)))
        dist.barrier()
        if "--touch" in sys.argv:
            try:
                (mnt / ".save").touch()
                print("saved", flush=True)
            except OSError as e:
                print("save failed:", e, flush=True)
    else:
        sd = state(world, 0)
        sd["step"] = torch.tensor(0)
        dcp.load_state_dict(sd, dcp.FileSystemReader(str(mnt / "prev" / "ckpt")))
        want = value(step)
        for shard in sd["weights"].local_shards():
            r0 = shard.metadata.shard_offsets[0]
            assert torch.equal(shard.tensor, want[r0:r0 + shard.tensor.shape[0]]), "values"
        assert int(sd["step"]) == step, int(sd["step"])
        print("loaded", flush=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
