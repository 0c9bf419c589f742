#!/usr/bin/env python3
"""Peer comparison for the CT projector and FBP: skimage radon/iradon (and astra-toolbox's
CPU path when it imports) against our `ct_phantom` example on the same 256² Shepp–Logan
raster with 360 views over 180°, interleaved, medians of clean runs.

A run is clean when other processes used < 10 % of the machine's CPU during it (from
/proc/stat busy jiffies minus our own or our child's CPU time), per DESIGN.md.

  python3 -m venv /tmp/ct_venv && /tmp/ct_venv/bin/pip install numpy scikit-image astra-toolbox
  cargo build --release --example ct_phantom   # honours CARGO_TARGET_DIR, as does this script
  /tmp/ct_venv/bin/python benches/peers/ct_peers.py [--reps 7]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time
import numpy as np
from skimage.transform import radon, iradon

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# CARGO_TARGET_DIR, as cargo itself reads it, when the build went elsewhere.
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
BIN = os.path.join(os.path.abspath(TARGET), "release", "examples", "ct_phantom")
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
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--max-other", type=float, default=0.10)
    a = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"build first: cargo build --release --example ct_phantom ({BIN} missing)")
    tmp = tempfile.mkdtemp()
    out = json.loads(subprocess.check_output([BIN, "--out", tmp]))
    n, views = out["n"], out["views"]
    phantom = np.fromfile(os.path.join(tmp, "phantom.f32"), dtype="<f4").reshape(n, n).astype(np.float64)
    theta = np.linspace(0.0, 180.0, views, endpoint=False)
    try:
        import astra
        vg = astra.create_vol_geom(n, n)
        pg = astra.create_proj_geom("parallel", 1.0, n, np.deg2rad(theta))
        pid = astra.create_projector("linear", pg, vg)
    except Exception as e:  # noqa: BLE001
        astra = None
        print(f"astra-toolbox unavailable: {e}")

    def sk_project():
        return radon(phantom, theta=theta, circle=True)

    sk_sino = sk_project()

    def sk_fbp():
        return iradon(sk_sino, theta=theta, filter_name="ramp", interpolation="linear", circle=True)

    sk_rec = sk_fbp()
    rmse = lambda r: float(np.sqrt(np.mean((r - phantom) ** 2)))
    print(f"RMSE vs phantom (range 0–1): skimage iradon {rmse(sk_rec):.4f}, ours {out['rmse']:.4f}")

    if astra is not None:
        def as_project():
            sid, s = astra.create_sino(phantom, pid)
            astra.data2d.delete(sid)
            return s

        as_sino = as_project()

        def as_fbp():
            rid = astra.data2d.create("-vol", vg)
            sid = astra.data2d.create("-sino", pg, as_sino)
            cfg = astra.astra_dict("FBP")
            cfg.update(ReconstructionDataId=rid, ProjectionDataId=sid, ProjectorId=pid)
            cfg["option"] = {"FilterType": "ram-lak"}
            alg = astra.algorithm.create(cfg)
            astra.algorithm.run(alg)
            r = astra.data2d.get(rid)
            astra.algorithm.delete(alg)
            astra.data2d.delete([rid, sid])
            return r

        print(f"RMSE astra FBP (CPU, linear): {rmse(as_fbp()):.4f}")

    t = {k: [] for k in ["sk_proj", "sk_fbp", "our_proj", "our_fbp", "as_proj", "as_fbp"]}
    dropped = 0
    for rep in range(a.reps):
        runs = [("sk_proj", sk_project, False), ("sk_fbp", sk_fbp, False)]
        if astra is not None:
            runs += [("as_proj", as_project, False), ("as_fbp", as_fbp, False)]
        for name, fn, _ in runs:
            _, wall, other = timed(fn)
            if other <= a.max_other:
                t[name].append(wall)
            else:
                dropped += 1
        r, _, other = timed(lambda: subprocess.check_output([BIN]), child=True)
        if other <= a.max_other:
            j = json.loads(r)
            t["our_proj"].append(j["project_s"])
            t["our_fbp"].append(j["fbp_s"])
        else:
            dropped += 1
    med = {k: statistics.median(v) for k, v in t.items() if v}
    print(f"clean runs kept per tool: { {k: len(v) for k, v in t.items()} }, dropped {dropped} (others > {a.max_other:.0%} CPU)")
    for k, v in med.items():
        print(f"  {k:9s} median {v * 1000:9.2f} ms")
    if "our_proj" in med and "sk_proj" in med:
        print(f"projection: skimage/ours = {med['sk_proj'] / med['our_proj']:.1f}x")
        print(f"FBP:        skimage/ours = {med['sk_fbp'] / med['our_fbp']:.1f}x")
    if "as_proj" in med and "our_proj" in med:
        print(f"projection: astra CPU/ours = {med['as_proj'] / med['our_proj']:.2f}x")
        print(f"FBP:        astra CPU/ours = {med['as_fbp'] / med['our_fbp']:.2f}x")


if __name__ == "__main__":
    main()
