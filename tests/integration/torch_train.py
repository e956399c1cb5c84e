"""A small PyTorch training program that checkpoints through a ckptfs mount, as a user's
would: resume from prev/ckpt.pt if it is there, torch.save to a temporary file and rename
it over save/ckpt.pt every --save-every steps, then Path(".save").touch() (durable when it
returns). --crash-at S kills the process with SIGKILL after step S; with --tear it first
starts overwriting save/ckpt.pt in place and stops half-way (a torn file). At the end the
final weights go to --out (outside the mount). Run by test_pytorch.py with Debian's
python3-torch."""
import argparse
import os
import pathlib
import signal

import torch


def batch(step):
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(32, 16, generator=g)
    return x, x @ torch.arange(16 * 4, dtype=torch.float32).reshape(16, 4) / 100


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--save-every", type=int, default=5)
    ap.add_argument("--crash-at", type=int, default=0)
    ap.add_argument("--tear", action="store_true")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    mnt = pathlib.Path(os.environ["CKPTFS_MOUNT"])
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    start = 0
    prev = mnt / "prev" / "ckpt.pt"
    if prev.exists():
        state = torch.load(prev)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["step"]
        print("resumed at step", start, flush=True)
    save = mnt / "save"
    for step in range(start, a.steps):
        x, y = batch(step)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        done = step + 1
        if done % a.save_every == 0:
            state = {"model": model.state_dict(), "opt": opt.state_dict(), "step": done}
            torch.save(state, save / "ckpt.pt.tmp")
            os.replace(save / "ckpt.pt.tmp", save / "ckpt.pt")
            (mnt / ".save").touch()
        if done == a.crash_at:
            if a.tear:
                blob = (save / "ckpt.pt").read_bytes()
                with open(save / "ckpt.pt", "r+b") as f:
                    f.truncate(0)
                    f.write(blob[: len(blob) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
    torch.save(model.state_dict(), a.out)


if __name__ == "__main__":
    main()
