# Draws docs/ct_bone_correction.png: one head subject scanned noise-free at 120 kVp with the
# water correction only and with the bone correction, brain window (W 80 / L 40), and their
# difference (±20 HU). Runs the release binary on a temporary pipeline; needs numpy and
# nibabel (the CI venv).
#
#   cargo build --release && .venv/bin/python tools/figure_bone_correction.py
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import nibabel as nib
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIPELINE = """version: 1
name: bone-correction-figure
seed: 3
cohort: {size: 1}
anatomy: {template: head, size: [160, 160, 24], spacing_mm: [1.25, 1.25, 4], deformation_mm: 0}
generator: {kind: procedural, texture_strength: 0}
acquisition:
  defaults: {modality: ct, scanner: generic64, kvp: 120, noise: false, fov_mm: 200, matrix: 160, slice_mm: 4}
  arms:
    - {name: water_only, bone_correction: false}
    - {name: bone_corrected}
outputs: {dir: out, preview: false}
"""


def png(path, img):
    h, w = img.shape
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    binary = os.path.join(ROOT, "target", "release", "synthcohort")
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "p.yaml"), "w") as f:
            f.write(PIPELINE)
        subprocess.run([binary, "run", "p.yaml", "--quiet"], cwd=tmp, check=True)
        imgs = [nib.load(os.path.join(tmp, "out", "images", f"sub-0001_{a}.nii.gz")).get_fdata()
                for a in ("water_only", "bone_corrected")]
    k = imgs[0].shape[2] // 2
    # Anterior (+y) up, patient's right on the image left (radiological view).
    sl = [im[:, :, k].T[::-1, ::-1] for im in imgs]
    brain = [np.clip((s - 0.0) / 80.0, 0, 1) for s in sl]
    diff = np.clip((sl[1] - sl[0] + 20.0) / 40.0, 0, 1)
    gap = np.ones((sl[0].shape[0], 4))
    row = np.concatenate([brain[0], gap, brain[1], gap, diff], axis=1)
    out = os.path.join(ROOT, "docs", "ct_bone_correction.png")
    row = np.kron(row, np.ones((2, 2)))  # 2× for the README
    png(out, (row * 255).astype(np.uint8))
    print(f"wrote {out}: slice {k}, GM/WM window; difference on − off in [−20, 20] HU")


if __name__ == "__main__":
    sys.exit(main())
