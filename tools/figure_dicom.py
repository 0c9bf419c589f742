"""docs/dicom_series_seg.png: a run's DICOM output as a viewer shows it, read back with
pydicom and highdicom only (no NIfTI): a CT slice (W 400 / L 40) and the T2 slice at the
same position, each with the SEG's segments outlined in their Recommended Display colours.

Usage: python tools/figure_dicom.py RUN_DIR SUBJECT OUT.png
(RUN_DIR from `synthcohort run pipelines/dicom_ct_mr.yaml`)
"""
import sys
from pathlib import Path

import highdicom as hd
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pydicom  # noqa: E402

run, subject, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])


def lab_to_rgb(dicom_lab):
    """DICOM-scaled CIELab (0..65535) → sRGB in 0..1 (D65)."""
    L, a, b = np.array(dicom_lab, float) / 65535 * [100, 255, 255] - [0, 128, 128]
    fy = (L + 16) / 116
    f = np.array([fy + a / 500, fy, fy - b / 200])
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * [0.95047, 1.0, 1.08883]
    m = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]])
    lin = m @ xyz
    rgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.abs(lin) ** (1 / 2.4) - 0.055)
    return np.clip(rgb, 0, 1)


def series(arm):
    ds = [pydicom.dcmread(f) for f in sorted((run / "dicom" / subject / arm).glob("*.dcm"))]
    return sorted(ds, key=lambda d: int(d.InstanceNumber))


def overlay(ax, arm, slices, k):
    seg = hd.seg.segread(run / "dicom" / subject / f"labels_{arm}.dcm")
    nums = list(seg.segment_numbers)
    masks = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[slices[k].SOPInstanceUID], segment_numbers=nums,
        assert_missing_frames_are_empty=True,
    )[0]
    for i, n in enumerate(nums):
        m = masks[..., i]
        if not m.any():
            continue
        d = seg.get_segment_description(n)
        ax.contour(m, levels=[0.5], colors=[lab_to_rgb(d.RecommendedDisplayCIELabValue)], linewidths=0.8)


ct, mr = series("ct"), series("t2w")
# The slice through the middle of the first lesion, if the subject has one.
k = len(ct) // 2
seg_ct = hd.seg.segread(run / "dicom" / subject / "labels_ct.dcm")
lesion = [n for n in seg_ct.segment_numbers if seg_ct.get_segment_description(n).SegmentLabel.startswith("lesion_")]
if lesion:
    m = seg_ct.get_pixels_by_source_instance(
        source_sop_instance_uids=[d.SOPInstanceUID for d in ct], segment_numbers=lesion[:1],
        assert_missing_frames_are_empty=True,
    )[..., 0]
    k = int(np.argmax(m.sum(axis=(1, 2))))
fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), facecolor="black")
for ax, arm, sl, (lo, hi) in [
    (axes[0], "ct", ct, (40 - 200, 40 + 200)),
    (axes[1], "t2w", mr, (None, None)),
]:
    d = sl[k]
    img = d.pixel_array * float(d.get("RescaleSlope", 1)) + float(d.get("RescaleIntercept", 0))
    ax.imshow(img, cmap="gray", vmin=lo, vmax=hi if hi is not None else np.percentile(img, 99.5))
    overlay(ax, arm, sl, k)
    ax.set_title(f"{d.Modality} {d.SeriesDescription} — slice {k + 1}/{len(sl)}, z {float(d.ImagePositionPatient[2]):.0f} mm",
                 color="white", fontsize=9)
    ax.text(3, 8, "R", color="yellow", fontsize=10, va="top")
    ax.text(img.shape[1] - 4, 8, "L", color="yellow", fontsize=10, va="top", ha="right")
    ax.axis("off")
fig.suptitle(f"{subject}: DICOM series + SEG read back with pydicom/highdicom (run {run.name})", color="white", fontsize=10)
fig.tight_layout()
fig.savefig(out, dpi=110, facecolor="black")
print(f"wrote {out}")
