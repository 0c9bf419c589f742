# Draws docs/ct_truncation_subject.png: an abdomen-atlas subject at BMI 46 whose body reaches
# past generic64's 500 mm scan field, as the object (truth), scanned with truncation, and with
# extended_fov: true; prints the body area beyond the field, the outermost body radius and the
# mean HU just inside the field edge for each. Runs the release binary on a temporary
# pipeline; needs numpy, nibabel and matplotlib.
#
#   cargo build --release && .venv/bin/python tools/figure_ct_truncation_subject.py
import os
import subprocess
import tempfile

import matplotlib
import nibabel as nib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIELD_MM = 250.2  # generic64's scan field radius
PIPELINE = """version: 1
name: truncation-figure
seed: 5
cohort:
  size: 1
  demographics:
    bmi: {lognormal: {median: 46, sigma: 0.01}}
    sex: {female: 0.0, male: 1.0}
anatomy: {template: abdomen, size: [320, 280, 6], spacing_mm: [2, 2, 5], deformation_mm: 0}
generator: {kind: procedural}
acquisition:
  arms:
    - {name: object, modality: none, property: hu}
    - {name: truncated, modality: ct, kvp: 120, mas: 2000, views: 720, slice_mm: 5, kernel: standard, matrix: 256}
    - {name: extended, modality: ct, kvp: 120, mas: 2000, views: 720, slice_mm: 5, kernel: standard, extended_fov: true, fov_mm: 640, matrix: 320}
outputs: {preview: false}
"""


def main():
    with tempfile.TemporaryDirectory() as tmp:
        pipe = os.path.join(tmp, "truncation.yaml")
        with open(pipe, "w") as f:
            f.write(PIPELINE)
        out = os.path.join(tmp, "out")
        subprocess.run([os.path.join(ROOT, "target/release/synthcohort"), "run", pipe, "--out", out], check=True)
        fig, axes = plt.subplots(1, 3, figsize=(15, 5.4))
        titles = {"object": "object (truth)", "truncated": "truncated: 500 mm scan field", "extended": "extended_fov: true"}
        for ax, (arm, title) in zip(axes, titles.items()):
            vol = nib.load(os.path.join(out, "images", f"sub-0001_{arm}.nii.gz"))
            img = vol.get_fdata()[:, :, vol.shape[2] // 2]
            a = vol.affine
            nx, ny = img.shape
            xs = a[0, 3] + a[0, 0] * np.arange(nx)
            ys = a[1, 3] + a[1, 1] * np.arange(ny)
            ext = [xs[0] - a[0, 0] / 2, xs[-1] + a[0, 0] / 2, ys[0] - a[1, 1] / 2, ys[-1] + a[1, 1] / 2]
            ax.imshow(img.T, origin="lower", cmap="gray", vmin=-300, vmax=300, extent=ext)
            ax.add_patch(plt.Circle((0, 0), FIELD_MM, fill=False, color="y", ls="--", lw=0.8))
            ax.set_xlim(320, -320)  # radiological: the patient's right on the left
            ax.set_ylim(-290, 290)
            ax.set_title(title)
            ax.set_xlabel("x (mm; patient right on the left)")
            x, y = np.meshgrid(xs, ys, indexing="ij")
            r = np.hypot(x, y)
            body = img > -300
            print(
                f"{arm}: body beyond the field {(body & (r > FIELD_MM)).sum() * a[0, 0] * a[1, 1] / 100:.1f} cm², "
                f"outermost body r {r[body].max():.1f} mm, "
                f"mean HU inside the body at 225–250 mm {img[body & (r > 225) & (r < FIELD_MM)].mean():.1f}"
            )
        fig.suptitle("Abdomen-atlas subject, BMI 46 (body past the 500 mm scan field, dashed), 120 kVp, W600/L0")
        fig.tight_layout()
        fig.savefig(os.path.join(ROOT, "docs", "ct_truncation_subject.png"), dpi=70)


if __name__ == "__main__":
    main()
