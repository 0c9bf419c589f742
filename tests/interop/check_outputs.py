"""Interop check: load a synthcohort run folder with nibabel and pyarrow, as a user would.

Checks shapes, affine vs spacing, integer labels, manifest columns and row count, sha256 of
every file, labels.json ids, laterality (right-sided organs at greater world x), and the
nnU-Net dataset.json when present.
Usage: python check_outputs.py RUN_DIR EXPECTED_ROWS
"""
import hashlib
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pyarrow.parquet as pq

run = Path(sys.argv[1])
expected_rows = int(sys.argv[2])
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


table = pq.read_table(run / "manifest.parquet")
rows = table.to_pylist()
required = {
    "subject_id", "arm", "seed", "age", "sex", "height_cm", "weight_kg", "bmi", "conditions", "lesions",
    "image_path", "label_path", "image_sha256", "label_sha256", "generator", "pipeline_sha256",
    "synthcohort_version",
}
check(required <= set(table.column_names), f"manifest lacks columns {required - set(table.column_names)}")
check(len(rows) == expected_rows, f"manifest has {len(rows)} rows, expected {expected_rows}")

labels_json = json.loads((run / "labels.json").read_text())
known_ids = {e["id"] for e in labels_json}
check(all(set(e) >= {"id", "name", "color"} for e in labels_json), "labels.json entries lack id/name/color")

for r in rows:
    img_path, lab_path = run / r["image_path"], run / r["label_path"]
    check(sha256(img_path) == r["image_sha256"], f"{img_path}: sha256 differs from the manifest")
    check(sha256(lab_path) == r["label_sha256"], f"{lab_path}: sha256 differs from the manifest")
    img, lab = nib.load(img_path), nib.load(lab_path)
    dims = tuple(r["image_dims"])
    check(img.shape == dims, f"{img_path}: shape {img.shape} != manifest {dims}")
    check(lab.shape == img.shape, f"{lab_path}: shape {lab.shape} != image {img.shape}")
    spacing = np.array(r["spacing_mm"])
    check(np.allclose(np.abs(np.diag(img.affine)[:3]), spacing), f"{img_path}: affine diagonal != spacing")
    check(np.allclose(img.header.get_zooms()[:3], spacing), f"{img_path}: zooms != spacing")
    check(nib.aff2axcodes(img.affine) == ("R", "A", "S"), f"{img_path}: not RAS+ ({nib.aff2axcodes(img.affine)})")
    check(np.allclose(img.affine, lab.affine), f"{lab_path}: affine differs from the image")
    check(int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 1, f"{img_path}: sform/qform code")
    check(np.allclose(img.get_qform(), img.get_sform()), f"{img_path}: qform != sform")
    data = np.asarray(lab.dataobj)
    check(np.issubdtype(data.dtype, np.integer), f"{lab_path}: labels are {data.dtype}, not integers")
    present = set(np.unique(data).tolist()) - {0}
    check(present <= known_ids, f"{lab_path}: ids {sorted(present - known_ids)} missing from labels.json")
    for les in r["lesions"]:
        check(les["label_id"] in present, f"{lab_path}: lesion {les['label_id']} not in the label map")
    check(np.isfinite(img.get_fdata()).all(), f"{img_path}: non-finite voxels")

# Laterality in world coordinates (RAS+: +x is the patient's right), as a user's reader sees it.
names = {e["name"]: e["id"] for e in labels_json}
RIGHT = ["liver", "gallbladder", "kidney_right", "lung_upper_lobe_right", "lung_middle_lobe_right", "lung_lower_lobe_right"]
LEFT = ["spleen", "stomach", "kidney_left", "lung_upper_lobe_left", "lung_lower_lobe_left"]
side_checks = 0
for lab_path in sorted({run / r["label_path"] for r in rows}):
    lab = nib.load(lab_path)
    data = np.asarray(lab.dataobj)
    xs = {}
    for name, lid in names.items():
        idx = np.argwhere(data == lid)
        if len(idx) >= 20:
            xs[name] = nib.affines.apply_affine(lab.affine, idx)[:, 0].mean()
    pairs = [(r, l) for r in RIGHT for l in LEFT if r in xs and l in xs]
    pairs += [(n.replace("left", "right", 1), n) for n in xs if "left" in n and n.replace("left", "right", 1) in xs]
    for r, l in pairs:
        side_checks += 1
        check(xs[r] > xs[l], f"{lab_path}: {r} at x = {xs[r]:.1f} mm is not right of {l} at x = {xs[l]:.1f} mm")
check(side_checks > 0, "no left/right structure pairs to check laterality")

ds_path = run / "dataset.json"
if ds_path.exists():
    ds = json.loads(ds_path.read_text())
    ids = sorted(ds["labels"].values())
    check(ids == list(range(len(ids))), "dataset.json labels are not consecutive from 0")
    check(ds["numTraining"] == len(list((run / "imagesTr").glob("*_0000" + ds["file_ending"]))), "numTraining != imagesTr cases")
    for img in (run / "imagesTr").glob("*_0000" + ds["file_ending"]):
        case = img.name[: -len("_0000" + ds["file_ending"])]
        lab = nib.load(run / "labelsTr" / (case + ds["file_ending"]))
        vals = np.unique(np.asarray(lab.dataobj))
        check(vals.max() < len(ids), f"{case}: nnU-Net label {vals.max()} beyond the class list")

if failures:
    print("interop check FAILED:")
    for f in failures:
        print("  -", f)
    sys.exit(1)
print(f"interop check: {len(rows)} rows, all files load with nibabel/pyarrow and match their sha256; {side_checks} left/right checks hold")
