#!/usr/bin/env python3
"""Peer comparison for the MRI simulator: TorchIO's RandomMotion, RandomGhosting,
RandomSpike, RandomBiasField and RandomNoise on the same 1×128³ image, and a NumPy FFT-based
noise-free single-coil spin-echo simulation of 256×256×128, against our `mri_sim` example
(our equivalents of the five transforms, and the full simulation with 8 coils, complex noise
and motion), interleaved, medians of clean runs.

A run is clean when other processes used < 10 % of the machine's CPU during it (from
/proc/stat busy jiffies minus our own or our child's CPU time), per DESIGN.md. Our times are
measured inside the example (after one warm-up of each); the cleanliness window covers the
whole child process.

  python3 -m venv /tmp/mri_venv && /tmp/mri_venv/bin/pip install numpy torchio
  cargo build --release --example mri_sim   # honours CARGO_TARGET_DIR, as does this script
  /tmp/mri_venv/bin/python benches/peers/mri_peers.py [--reps 5]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# CARGO_TARGET_DIR, as cargo itself reads it, when the build went elsewhere.
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
BIN = os.path.join(os.path.abspath(TARGET), "release", "examples", "mri_sim")
HZ = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count()


def busy_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4]  # minus idle, iowait


def timed(fn, child=False):
    """Runs fn(); returns (result, seconds, fraction of the machine used by others)."""
    t, b = os.times(), busy_jiffies()
    w0 = time.perf_counter()
    r = fn()
    wall = time.perf_counter() - w0
    t2, b2 = os.times(), busy_jiffies()
    own = (t2.children_user + t2.children_system - t.children_user - t.children_system) if child \
        else (t2.user + t2.system - t.user - t.system)
    other = max(0.0, (b2 - b) / HZ - own) / max(wall * NCPU, 1e-9)
    return r, wall, other


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--max-other", type=float, default=0.10)
    a = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"build first: cargo build --release --example mri_sim ({BIN} missing)")
    try:
        import torch
        import torchio as tio
        torch.set_num_threads(NCPU)
    except ImportError:
        # TorchIO needs torch, whose CPU wheels need an index this machine may not reach:
        # the NumPy comparison still runs.
        print("torch/torchio not installed: TorchIO comparisons skipped, NumPy only")
        tio = None
    tmp = tempfile.mkdtemp()
    shapes = json.loads(subprocess.check_output([BIN, "--out", tmp]))
    vol = np.fromfile(os.path.join(tmp, "vol128.f32"), dtype="<f4").reshape(128, 128, 128, order="F")
    nx, ny, nz = shapes["maps"]
    rd = lambda n: np.fromfile(os.path.join(tmp, n), dtype="<f4").reshape(nx, ny, nz, order="F")
    pd, t1, t2 = rd("pd.f32"), rd("t1.f32"), rd("t2.f32")
    tr, te = float(shapes["tr_ms"]), float(shapes["te_ms"])
    t1s = np.maximum(t1, 1e-3)
    t2s = np.maximum(t2, 1e-3)

    tio_tf = {} if tio is None else {
        "motion": tio.RandomMotion(degrees=6, translation=5, num_transforms=2),
        "ghosting": tio.RandomGhosting(num_ghosts=(2, 2), intensity=(0.3, 0.3)),
        # num_spikes=1 would mean "0 or 1" (TorchIO parses it as the range (0, 1)), and with
        # 0 drawn the transform returns at once: half the runs would time a no-op. Ours always
        # adds one spike.
        "spike": tio.RandomSpike(num_spikes=(1, 1), intensity=(0.5, 0.5)),
        "bias": tio.RandomBiasField(coefficients=0.4, order=3),
        "noise": tio.RandomNoise(std=(0.05, 0.05)),
    }
    if tio is not None:
        image = tio.ScalarImage(tensor=torch.from_numpy(np.ascontiguousarray(vol))[None], affine=np.diag([2.0, 2.0, 2.0, 1.0]))
        subject = tio.Subject(img=image)

    def numpy_se():
        # Noise-free single-coil spin echo: signal equation, 2D FFT per slice, inverse, magnitude.
        s = pd * (1.0 - 2.0 * np.exp(-(tr - te / 2.0) / t1s) + np.exp(-tr / t1s)) * np.exp(-te / t2s)
        k = np.fft.fft2(s, axes=(0, 1))
        return np.abs(np.fft.ifft2(k, axes=(0, 1)))

    for f in tio_tf.values():  # warm-up
        f(subject)
    numpy_se()
    keys = ["motion", "ghosting", "spike", "bias", "noise"]
    t = {f"tio_{k}": [] for k in keys} | {f"our_{k}": [] for k in keys} | {"np_full": [], "our_full": []}
    dropped = 0
    for _ in range(a.reps):
        for k in keys if tio_tf else []:
            _, wall, other = timed(lambda: tio_tf[k](subject))
            if other <= a.max_other:
                t[f"tio_{k}"].append(wall)
            else:
                dropped += 1
        _, wall, other = timed(numpy_se)
        if other <= a.max_other:
            t["np_full"].append(wall)
        else:
            dropped += 1
        r, _, other = timed(lambda: subprocess.check_output([BIN]), child=True)
        if other <= a.max_other:
            j = json.loads(r)
            for k in keys:
                t[f"our_{k}"].append(j[f"{k}_s"])
            t["our_full"].append(j["full_s"])
        else:
            dropped += 1
    med = {k: statistics.median(v) for k, v in t.items() if v}
    print(f"clean runs kept: { {k: len(v) for k, v in t.items()} }, dropped {dropped} (others > {a.max_other:.0%} CPU)")
    for k, v in med.items():
        print(f"  {k:14s} median {v * 1000:10.2f} ms")
    for k in keys:
        if f"tio_{k}" in med and f"our_{k}" in med:
            print(f"{k:9s}: TorchIO/ours = {med[f'tio_{k}'] / med[f'our_{k}']:.1f}x  (target >= 5x)")
    if "np_full" in med and "our_full" in med:
        print(f"full 256x256x128: NumPy 1-coil noise-free / ours 8-coil+noise+motion = "
              f"{med['np_full'] / med['our_full']:.2f}x  (target > 1x)")


if __name__ == "__main__":
    main()
