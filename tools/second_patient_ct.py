#!/usr/bin/env python3
"""A second real patient for the fidelity report: the chest CT behind the `chest` atlas at 3 mm.

The shipped `ct-abdomen` model learned from one patient (tests/data/ts_ct_torso_3mm.nii.gz). The
reference data hold a second one: `ts_ct_torso_1p5mm.nii.gz`, an arterial-phase chest CT at
1.5 mm with no organ segmentation, from which `models/atlas-chest/labels.nii.gz` was derived by
Hounsfield rules (lungs, pulmonary vessels, heart, great vessels, bone, fat, muscle, gas). This
script puts both on the model's 3 mm grid so a cohort can be drawn on that patient's anatomy and
compared with its real CT (pipelines/fidelity/ct_chest_*.yaml, tests/fidelity.rs):

- CT: each 2 x 2 x 2 block of the 1.5 mm scan averaged (the last odd row, column and slice
  dropped: 232 x 166 x 190 -> 116 x 83 x 95), rounded to int16 HU.
- labels: the atlas (the scan's field padded by 50 voxels a side in x and y, axes flipped
  against the CT's) cropped to the CT's field, then each 2 x 2 x 2 block's most frequent label
  (ties: the lower id).

    .venv/bin/python tools/second_patient_ct.py --ct ../shared/data/ts_ct_torso_1p5mm.nii.gz \
        --out tests/data
"""
import argparse
import pathlib

import nibabel as nib
import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
NAMES = {
    16: "trachea",
    51: "heart",
    120: "body",
    121: "subcutaneous_fat",
    122: "skeletal_muscle",
    128: "torso_fat",
    129: "intestinal_gas",
    136: "lung_left",
    137: "lung_right",
    138: "pulmonary_vessels",
    139: "great_vessels",
    140: "bone",
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ct", type=pathlib.Path, required=True)
    ap.add_argument("--atlas", type=pathlib.Path, default=REPO / "models/atlas-chest/labels.nii.gz")
    ap.add_argument("--out", type=pathlib.Path, required=True)
    a = ap.parse_args()
    ct_img, atlas_img = nib.load(a.ct), nib.load(a.atlas)
    ct = np.asarray(ct_img.dataobj).astype(np.float32)
    atlas = np.asarray(atlas_img.dataobj).astype(np.int16)

    # Each CT voxel's atlas voxel, through the two affines (a flip and a shift, checked).
    to_atlas = np.linalg.inv(atlas_img.affine) @ ct_img.affine
    lin, off = to_atlas[:3, :3], to_atlas[:3, 3]
    assert np.allclose(np.abs(lin), np.eye(3)), f"grids are not axis-aligned at one spacing: {lin}"
    idx = [np.round(off[d] + lin[d, d] * np.arange(ct.shape[d])).astype(int) for d in range(3)]
    labels = atlas[np.ix_(*idx)]

    n = [s // 2 for s in ct.shape]
    blocks = lambda v: v[: 2 * n[0], : 2 * n[1], : 2 * n[2]].reshape(n[0], 2, n[1], 2, n[2], 2)
    ct3 = np.round(blocks(ct).mean(axis=(1, 3, 5))).astype(np.int16)
    lb = blocks(labels).transpose(0, 2, 4, 1, 3, 5).reshape(*n, 8)
    ids = np.unique(lb)
    counts = np.stack([(lb == i).sum(-1) for i in ids], -1)
    lab3 = ids[counts.argmax(-1)].astype(np.uint8)

    aff = ct_img.affine.copy()
    aff[:3, :3] *= 2
    aff[:3, 3] += ct_img.affine[:3, :3] @ np.array([0.5, 0.5, 0.5])
    a.out.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(ct3, aff), a.out / "ts_ct_chest_3mm.nii.gz")
    nib.save(nib.Nifti1Image(lab3, aff), a.out / "ts_ct_chest_3mm_labels.nii.gz")
    unknown = sorted(set(int(i) for i in ids) - set(NAMES) - {0})
    assert not unknown, f"atlas labels without a name here: {unknown}"
    with open(a.out / "ts_ct_chest_3mm_names.txt", "w") as f:
        for i in ids:
            if int(i) in NAMES:
                f.write(f"{int(i)}\t{NAMES[int(i)]}\n")
    for i in ids:
        m = lab3 == i
        if i:
            print(f"{int(i):4d} {NAMES[int(i)]:18s} {m.sum():7d} voxels  {ct3[m].mean():7.1f} HU")


if __name__ == "__main__":
    main()
