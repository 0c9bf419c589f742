#!/usr/bin/env python3
"""Peer comparison for the latent diffusion denoiser: MONAI's DiffusionModelUNet built with
the same widths (32, 48, 64), three levels, one residual block per level, attention at the
two lower levels, cross-attention to 64-wide text tokens and 4 + 8 input channels (latent +
label embedding), on a 1×·×16³ latent, PyTorch on CPU with as many threads as we use (2),
against our `ldm_bench` example. One forward pass and one training step (forward, backward,
Adam). Interleaved, medians of clean runs (other processes < 10 % of the CPU, from
/proc/stat), as DESIGN.md asks. Prints our time over theirs (goal ≤ 1.5).

  python3 -m venv /tmp/ldm_venv && /tmp/ldm_venv/bin/pip install torch monai
  cargo build --release --example ldm_bench
  /tmp/ldm_venv/bin/python benches/peers/ldm_peers.py [--reps 5]
"""
import argparse, json, os, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
BIN = os.path.join(os.path.abspath(TARGET), "release", "examples", "ldm_bench")
HZ = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count()


def busy_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4]


def timed(fn, child=False):
    t, b = os.times(), busy_jiffies()
    w0 = time.perf_counter()
    r = fn()
    wall = time.perf_counter() - w0
    t2, b2 = os.times(), busy_jiffies()
    own = (t2.children_user + t2.children_system - t.children_user - t.children_system) if child \
        else (t2.user + t2.system - t.user - t.system)
    other = max(0.0, (b2 - b) / HZ - own) / max(wall * NCPU, 1e-9)
    return r, wall, other


def build_monai():
    import torch
    from monai.networks.nets import DiffusionModelUNet
    kw = dict(spatial_dims=3, in_channels=12, out_channels=4, num_res_blocks=1,
              attention_levels=(False, True, True), norm_num_groups=8,
              num_head_channels=(8, 12, 16), with_conditioning=True, cross_attention_dim=64)
    try:
        net = DiffusionModelUNet(channels=(32, 48, 64), **kw)
    except TypeError:  # MONAI < 1.4 / generative package naming
        net = DiffusionModelUNet(num_channels=(32, 48, 64), **kw)
    return net


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--max-other", type=float, default=0.10)
    a = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"build first: cargo build --release --example ldm_bench ({BIN} missing)")
    import torch
    torch.set_num_threads(NCPU)
    torch.manual_seed(0)
    net = build_monai()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.randn(1, 12, 16, 16, 16)
    ctx = torch.randn(1, 8, 64)
    t = torch.full((1,), 500, dtype=torch.long)

    def fwd():
        with torch.no_grad():
            return net(x, timesteps=t, context=ctx)

    def step():
        opt.zero_grad()
        y = net(x, timesteps=t, context=ctx)
        loss = ((y - x[:, :4]) ** 2).mean()
        loss.backward()
        opt.step()
        return float(loss)

    fwd(); step()
    ours_f, ours_s, theirs_f, theirs_s, dropped = [], [], [], [], 0
    for _ in range(a.reps):
        r, _, other = timed(lambda: subprocess.check_output([BIN, "--reps", "3"]), child=True)
        if other < a.max_other:
            j = json.loads(r)
            ours_f.append(j["forward_s"]); ours_s.append(j["train_step_s"])
        else:
            dropped += 1
        for fn, acc in ((fwd, theirs_f), (step, theirs_s)):
            samples = []
            for _ in range(3):
                _, w, other = timed(fn)
                if other < a.max_other:
                    samples.append(w)
                else:
                    dropped += 1
            if samples:
                acc.append(statistics.median(samples))
    if not (ours_f and theirs_f and ours_s and theirs_s):
        sys.exit(f"no clean runs ({dropped} dropped): the machine is busy; rerun later")
    m = statistics.median
    print(json.dumps({
        "threads": NCPU, "dropped_runs": dropped,
        "ours_forward_s": m(ours_f), "monai_forward_s": m(theirs_f), "forward_ratio_ours_over_monai": m(ours_f) / m(theirs_f),
        "ours_train_step_s": m(ours_s), "monai_train_step_s": m(theirs_s), "train_step_ratio_ours_over_monai": m(ours_s) / m(theirs_s),
        "monai_parameters": sum(p.numel() for p in net.parameters()),
    }, indent=1))


if __name__ == "__main__":
    main()
