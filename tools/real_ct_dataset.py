#!/usr/bin/env python3
"""Split the real torso CT in tests/data into training boxes and two held-out regions.

The shipped `ct-abdomen` model learns from one real patient (the CT the `abdomen` atlas was
derived from), so "data it did not train on" has to be a region of that scan. The label map is
the atlas derivation on the CT's own grid (TotalSegmentator organs + fat, muscle and gas from
HU windows), i.e. exactly the classes an `abdomen` cohort carries.

Regions (voxel indices on the 122 x 101 x 112 CT grid, z = 0 inferior; x grows to the
patient's right; the spine's midline is at x = 58):

    train   z 0-59 (pelvis), z 76-91 (upper abdomen), z 92-111 with x >= 58 (right half)
    val     z 60-75, whole plane           (kidneys, liver tip, L3/L4; guidance is tuned here)
    test    z 92-111 with x < 58            (left lung base, spleen, stomach, left kidney,
                                             half of T12/L1; the fidelity report is made here)

Every training box is at least 16 slices deep so the denoiser's 4-slice latent crops never
reach past a case (a crop larger than its case would be padded with background at 0 HU).

Writes OUT/ as an nnU-Net raw dataset (imagesTr, labelsTr, dataset.json, prompts.jsonl) and,
into HELDOUT/ (shipped as models/ct-abdomen/heldout/), {val,test}.nii.gz (uint8 masks on the CT
grid for `fidelity --region`), labels.nii.gz + names.txt (the whole label map on the CT grid:
the cohort's `anatomy.source` and the real side's labels in `fidelity`).

    .venv/bin/python tools/real_ct_dataset.py --out out/real_ct_abdomen
"""
import argparse
import hashlib
import json
import pathlib
import subprocess

import nibabel as nib
import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
MID_X = 58
TRAIN = [
    (slice(None), slice(None), slice(0, 60)),
    (slice(None), slice(None), slice(76, 92)),
    (slice(MID_X, None), slice(None), slice(92, 112)),
]
VAL = (slice(None), slice(None), slice(60, 76))
TEST = (slice(0, MID_X), slice(None), slice(92, 112))
PROMPT = "abdomen ct"


def save(data, affine, path):
    """NIfTI with qform and sform both set (code 1), as synthcohort writes them."""
    im = nib.Nifti1Image(data, affine)
    im.set_qform(affine, 1)
    im.set_sform(affine, 1)
    nib.save(im, path)


def sha256(p):
    return hashlib.sha256(pathlib.Path(p).read_bytes()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--ct", default=str(REPO / "tests/data/ts_ct_torso_3mm.nii.gz"))
    ap.add_argument("--atlas", default=str(REPO / "models/atlas-abdomen/labels.nii.gz"))
    ap.add_argument("--heldout", default=str(REPO / "models/ct-abdomen/heldout"))
    ap.add_argument("--bin", default=str(REPO / "target/release/synthcohort"))
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    held = pathlib.Path(a.heldout)
    held.mkdir(parents=True, exist_ok=True)
    for d in ("imagesTr", "labelsTr"):
        (out / d).mkdir(parents=True, exist_ok=True)

    ct = nib.load(a.ct)
    atlas = nib.load(a.atlas)
    hu = np.asarray(ct.dataobj).astype(np.float32)
    # The atlas grid is the CT grid padded in-plane (outline completion); take the CT's part
    # by world position.
    off = np.linalg.solve(atlas.affine, ct.affine @ np.array([0, 0, 0, 1.0]))[:3]
    o = [int(round(v)) for v in off]
    lab = np.asarray(atlas.dataobj)[
        o[0] : o[0] + hu.shape[0], o[1] : o[1] + hu.shape[1], o[2] : o[2] + hu.shape[2]
    ].astype(np.uint8)
    assert lab.shape == hu.shape, (lab.shape, hu.shape)

    names = {}
    listing = subprocess.run([a.bin, "labels", "abdomen"], check=True, capture_output=True, text=True)
    for line in listing.stdout.splitlines()[1:]:
        f = line.split("\t")
        if len(f) == 3 and f[0].isdigit():
            names[f[1]] = int(f[0])
    present = set(np.unique(lab).tolist())
    labels = {"background": 0}
    labels.update({n: i for n, i in sorted(names.items(), key=lambda t: t[1]) if i in present and i})

    aff = ct.affine
    prompts = []
    for k, box in enumerate(TRAIN):
        case = f"ctabd-{k:03d}_object"
        start = [s.start or 0 for s in box]
        a2 = aff.copy()
        a2[:3, 3] = (aff @ np.array(start + [1.0]))[:3]
        save(hu[box], a2, out / "imagesTr" / f"{case}_0000.nii.gz")
        save(lab[box], a2, out / "labelsTr" / f"{case}.nii.gz")
        prompts.append({"case": case, "prompt": PROMPT})
        print(case, hu[box].shape)

    with open(out / "prompts.jsonl", "w") as f:
        for p in prompts:
            f.write(json.dumps(p) + "\n")
    dataset = {
        "name": "ct-abdomen-real",
        "description": "Training boxes of one real contrast-enhanced torso CT (3 mm) with its "
        "atlas-derived labels; regions val/test held out (tools/real_ct_dataset.py)",
        "reference": "TotalSegmentator 2.18.0 source distribution, tests/reference_files/example_ct.nii.gz "
        "and example_seg_fast_force_split.nii.gz",
        "licence": "Apache-2.0",
        "source_sha256": {"ct": sha256(a.ct), "atlas": sha256(a.atlas)},
        "channel_names": {"0": "CT"},
        "labels": labels,
        "numTraining": len(TRAIN),
        "file_ending": ".nii.gz",
    }
    (out / "dataset.json").write_text(json.dumps(dataset, indent=1))

    for box, name in ((VAL, "val.nii.gz"), (TEST, "test.nii.gz")):
        m = np.zeros(hu.shape, np.uint8)
        m[box] = 1
        save(m, aff, held / name)
    save(lab, aff, held / "labels.nii.gz")
    with open(held / "names.txt", "w") as f:
        for n, i in labels.items():
            if i:
                f.write(f"{i}\t{n}\n")


if __name__ == "__main__":
    main()
