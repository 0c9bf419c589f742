#!/usr/bin/env python3
"""An external reader for synthcohort virtual trials (observer: {external: {command: ...}}).

synthcohort calls `COMMAND ROI_DIR OUT_CSV`: ROI_DIR holds one NIfTI per ROI (2D patches
stored as X×Y×1, the candidate location at the centre), or with `format: dicom` one DICOM
CT/MR image per ROI (`roi_00000.dcm`, …); write one `file,score` row per ROI to OUT_CSV,
higher = more likely signal-present. Any AI detector can stand here; this one scores by the
mean intensity in a central disk (a simple non-prewhitening reader).
Needs numpy and nibabel (NIfTI ROIs) or pydicom (DICOM ROIs).
"""
import csv
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

RADIUS_PX = 3.0

roi_dir, out_csv = Path(sys.argv[1]), Path(sys.argv[2])


def load(path):
    if path.suffix == ".dcm":
        import pydicom

        ds = pydicom.dcmread(path)
        slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
        return ds.pixel_array.astype(np.float64) * slope + intercept
    return np.asarray(nib.load(path).dataobj, dtype=np.float64)[:, :, 0]


rows = []
for path in sorted(p for p in roi_dir.iterdir() if p.name.endswith((".nii", ".nii.gz", ".dcm"))):
    roi = load(path)
    # The ROI centre is pixel (size/2, size/2), as synthcohort writes it.
    cx, cy = roi.shape[0] // 2, roi.shape[1] // 2
    x, y = np.ogrid[: roi.shape[0], : roi.shape[1]]
    disk = (x - cx) ** 2 + (y - cy) ** 2 <= RADIUS_PX**2
    rows.append((path.name, float(roi[disk].mean())))
with out_csv.open("w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["file", "score"])
    w.writerows(rows)
