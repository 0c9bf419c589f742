"""The lesion-families figure in the README (docs/lesion_families.png).

Run `synthcohort run pipelines/lesion_families.yaml --out /tmp/lf`, then
`python3 tools/figure_lesion_families.py /tmp/lf docs/lesion_families.png`.
For each lesion of the first subject: a zoomed axial HU slice through its centre (window
-1000..400 HU for lung lesions, -150..250 HU otherwise) beside the same slice with each label
id outlined — the lesion's own id in yellow, its second part (fluid, necrotic core, ground
glass) in cyan.
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pyarrow.parquet as pq

run, out = sys.argv[1], sys.argv[2]
row = pq.read_table(f"{run}/manifest.parquet").to_pylist()[0]
img_nii = nib.load(f"{run}/{row['image_path']}")
img = np.asarray(img_nii.dataobj, dtype=np.float32)
lab = np.asarray(nib.load(f"{run}/{row['label_path']}").dataobj)
inv = np.linalg.inv(img_nii.affine)
lesions = row["lesions"]
fig, axes = plt.subplots(2, len(lesions), figsize=(3.2 * len(lesions), 6.6))
for c, l in enumerate(lesions):
    ijk = np.rint(inv @ np.array([*l["center_mm"], 1.0]))[:3].astype(int)
    parts = [int(p.split(":")[1]) for p in l["parts"].split(",") if p]
    half = int(max(8, 0.8 * l["diameter_mm"] / 3.0 + 5))
    i0, j0, k = ijk
    sl = (slice(max(i0 - half, 0), i0 + half), slice(max(j0 - half, 0), j0 + half), k)
    im, lb = img[sl].T[::-1, ::-1], lab[sl].T[::-1, ::-1]  # radiological view
    lung = l["organ"].startswith("lung")
    lo, hi = (-1000, 400) if lung else (-150, 250)
    for r in range(2):
        ax = axes[r, c]
        ax.imshow(im, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        if r == 1:
            ax.contour(lb == l["label_id"], levels=[0.5], colors="yellow", linewidths=1.2)
            for p in parts:
                ax.contour(lb == p, levels=[0.5], colors="cyan", linewidths=1.2)
        ax.set_xticks([])
        ax.set_yticks([])
    title = f"{l['shape']}, {l['placement']}" + (", displace" if l["growth"] == "displace" else "")
    axes[0, c].set_title(f"{l['condition']}\n{title}", fontsize=8)
fig.suptitle(
    f"{row['subject_id']}: lesion families on the abdomen atlas (HU object, 3 mm); "
    "yellow: lesion id, cyan: second part",
    fontsize=9,
)
fig.tight_layout()
fig.savefig(out, dpi=90)
