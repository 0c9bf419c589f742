"""Interop check of a run's DICOM output with real DICOM clients.

- pydicom reads every file under dicom/;
- dciodvfy (Debian dicom3tools) reports no error on the first CT, MR and SEG object
  (its warnings are printed);
- dcm2niix converts each series back to NIfTI: the array equals the run's NIfTI image within
  the int16 rounding (half the rescale slope) and the affine equals it within 0.01 mm;
- highdicom reads each SEG and its masks, placed by the series' own DICOM geometry
  (Image Position/Orientation), equal the run's NIfTI label map exactly.

dciodvfy and dcm2niix are optional: where one is not installed its check is reported as
skipped, not passed. Usage: python check_dicom.py RUN_DIR
"""
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom

run = Path(sys.argv[1])
failures = []
skipped = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


files = sorted((run / "dicom").rglob("*.dcm"))
check(files, "no DICOM files under dicom/")
datasets = {}
for f in files:
    try:
        datasets[f] = pydicom.dcmread(f)
    except Exception as e:  # noqa: BLE001 - any failure to read is the finding
        failures.append(f"pydicom cannot read {f}: {e}")
print(f"pydicom read {len(datasets)} of {len(files)} files")

# Every DICOM file is covered by files.sha256 (verify and merge rely on it).
listed = {line.split(maxsplit=1)[1].strip() for line in (run / "files.sha256").read_text().splitlines() if line.strip()}
for f in files:
    check(str(f.relative_to(run)) in listed, f"{f} is missing from files.sha256")

# dciodvfy on one object of each kind.
by_modality = {}
for f, ds in datasets.items():
    by_modality.setdefault(ds.Modality, f)
if shutil.which("dciodvfy"):
    for modality in ("CT", "MR", "SEG"):
        f = by_modality.get(modality)
        if f is None:
            continue
        out = subprocess.run(["dciodvfy", str(f)], capture_output=True, text=True)
        lines = [l for l in (out.stdout + out.stderr).splitlines() if l.strip()]
        errors = [l for l in lines if l.startswith("Error")]
        warnings = [l for l in lines if l.startswith("Warning")]
        print(f"dciodvfy {modality} {f.relative_to(run)}: {len(errors)} errors, {len(warnings)} warnings")
        for w in warnings:
            print(f"    {w}")
        for e in errors:
            failures.append(f"dciodvfy {f}: {e}")
else:
    skipped.append("dciodvfy (dicom3tools) not installed")

manifest_rows = []
try:
    import pyarrow.parquet as pq

    manifest_rows = pq.read_table(run / "manifest.parquet").to_pylist()
except Exception as e:  # noqa: BLE001
    failures.append(f"cannot read manifest: {e}")


def canonical(img):
    img = nib.as_closest_canonical(img)
    return np.asarray(img.dataobj, dtype=np.float64), img.affine


series_checked = 0
seg_checked = 0
for row in manifest_rows:
    subject, arm = row["subject_id"], row["arm"]
    sdir = run / "dicom" / subject / arm
    if not sdir.is_dir():
        continue
    nifti = nib.load(run / row["image_path"])
    ref, ref_aff = canonical(nifti)
    slices = sorted((datasets[f] for f in sorted(sdir.glob("*.dcm"))), key=lambda d: int(d.InstanceNumber))
    slope = float(slices[0].get("RescaleSlope", 1))

    # dcm2niix round trip.
    if shutil.which("dcm2niix"):
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(
                ["dcm2niix", "-z", "n", "-b", "n", "-f", "back", "-o", tmp, str(sdir)],
                capture_output=True, text=True,
            )
            got = sorted(Path(tmp).glob("back*.nii"))
            check(out.returncode == 0 and len(got) == 1, f"dcm2niix on {sdir}: rc {out.returncode}, {len(got)} files\n{out.stdout[-500:]}")
            if len(got) == 1:
                back, back_aff = canonical(nib.load(got[0]))
                check(back.shape == ref.shape, f"{sdir}: dcm2niix shape {back.shape} vs NIfTI {ref.shape}")
                if back.shape == ref.shape:
                    # Both files may be int16: each rounds to half its own slope.
                    nifti_slope = 0.0 if nifti.get_data_dtype().kind == "f" else abs(float(nifti.dataobj.slope))
                    allowed = 0.5 * slope + 0.5 * nifti_slope + 1e-6 * max(1.0, np.abs(ref).max())
                    err = np.abs(back - ref).max()
                    check(err <= allowed, f"{sdir}: dcm2niix array differs from the NIfTI by {err} (allowed {allowed})")
                    print(f"dcm2niix {sdir.relative_to(run)}: max |DICOM - NIfTI| {err:.3g} (allowed {allowed:.3g}), affine {np.abs(back_aff - ref_aff).max():.2g} mm")
                    daff = np.abs(back_aff - ref_aff).max()
                    check(daff <= 0.01, f"{sdir}: dcm2niix affine differs by {daff} mm:\n{back_aff}\n{ref_aff}")
                series_checked += 1
    # highdicom: the SEG's masks against the label map, through DICOM geometry.
    seg_path = run / "dicom" / subject / f"labels_{arm}.dcm"
    if seg_path.exists():
        seg = hd.seg.segread(seg_path)
        labels_img = nib.load(run / row["label_path"])
        lab = np.asarray(labels_img.dataobj).astype(np.int64)
        inv = np.linalg.inv(labels_img.affine)
        uids = [d.SOPInstanceUID for d in slices]
        numbers = list(seg.segment_numbers)
        masks = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=uids, segment_numbers=numbers, assert_missing_frames_are_empty=True
        )  # (slices, rows, cols, segments)
        # Segment → label value: labels.json names organs; lesions are lesion_<n>… in order.
        names = {e["name"]: e["id"] for e in json.loads((run / "labels.json").read_text())}
        lesion_ids = [l["label_id"] for l in row["lesions"]]
        parts = {}
        for n, l in enumerate(row["lesions"]):
            for p in filter(None, l["parts"].split(",")):
                name, pid = p.split(":")
                parts[f"lesion_{n + 1}_{name}"] = int(pid)
        values = []
        for num in numbers:
            label = seg.get_segment_description(num).SegmentLabel
            if label in names:
                values.append(names[label])
            elif label in parts:
                values.append(parts[label])
            elif label.startswith("lesion_"):
                values.append(lesion_ids[int(label.split("_")[1].split(" ")[0]) - 1])
            else:
                failures.append(f"{seg_path}: segment {num} `{label}` names no label")
                values.append(-1)
        # Voxel index of every pixel of every slice, from the image series' own geometry.
        ds0 = slices[0]
        rows_, cols_ = int(ds0.Rows), int(ds0.Columns)
        iop = np.array(ds0.ImageOrientationPatient, float)
        ps = np.array(ds0.PixelSpacing, float)
        rr, cc = np.meshgrid(np.arange(rows_), np.arange(cols_), indexing="ij")
        expect = np.zeros(masks.shape[:3], dtype=np.int64)
        for k, d in enumerate(slices):
            ipp = np.array(d.ImagePositionPatient, float)
            lps = ipp[None, None, :] + cc[..., None] * ps[1] * iop[:3] + rr[..., None] * ps[0] * iop[3:]
            ras = lps * np.array([-1, -1, 1])
            ijk = np.rint(np.einsum("ij,rcj->rci", inv[:3, :3], ras) + inv[:3, 3]).astype(int)
            expect[k] = lab[ijk[..., 0], ijk[..., 1], ijk[..., 2]]
        got = np.zeros_like(expect)
        for s, v in enumerate(values):
            got[masks[..., s] > 0] = v
        present = set(np.unique(lab)) - {0}
        check(set(values) == present, f"{seg_path}: segments {sorted(values)} vs label values {sorted(present)}")
        mismatch = int((got != expect).sum())
        check(mismatch == 0, f"{seg_path}: {mismatch} voxels differ between the SEG and {row['label_path']}")
        seg_checked += 1

print(f"dcm2niix round trips: {series_checked}; SEGs checked with highdicom: {seg_checked}")
check(seg_checked > 0, "no SEG was checked")
for s in skipped:
    print(f"SKIPPED: {s}")
if failures:
    print("FAILED:")
    for f in failures:
        print(f"  - {f}")
    sys.exit(1)
print("DICOM interop: OK")
