//! Reading a DICOM Segmentation (binary or fractional) as a label map, optionally checked
//! against the image series it references.

use std::path::{Path, PathBuf};

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};

use super::*;
use crate::io::nifti::{grid_from_affine, Reorient};
use crate::volume::{Grid, Volume};

/// Where a SEG comes from: the file, and optionally the folder of the image series it
/// references (its slices then define the grid, and the SEG must lie on them).
#[derive(Clone, Debug)]
pub struct SegInput<'a> {
    pub seg: &'a Path,
    pub series: Option<&'a Path>,
}

/// One segment as the file describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct SegSegment {
    pub number: u16,
    pub label: String,
    /// Segmented Property Type (value, scheme, meaning).
    pub kind: Option<Coded>,
    /// Its laterality modifier, if any.
    pub modifier: Option<Coded>,
}

/// Largest SEG read (bytes): a 512² × 600-slice map with 120 segments, bit-packed, is ~2.4 GB
/// of frames only if every segment touched every slice; real ones are far smaller.
const MAX_SEG_BYTES: u64 = 4 << 30;

/// Largest label map made from a SEG: as for NIfTI, 2³¹ voxels.
const MAX_VOXELS: u128 = 1 << 31;

fn bad(path: &Path, reason: impl Into<String>) -> IoError {
    IoError::BadText {
        what: "DICOM SEG".into(),
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn text(o: &InMemDicomObject, tag: Tag) -> Option<String> {
    o.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).trim().to_string())
}

fn floats(o: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    o.get(tag).and_then(|e| e.to_multi_float64().ok())
}

fn items(o: &InMemDicomObject, tag: Tag) -> &[InMemDicomObject] {
    o.get(tag).and_then(|e| e.items()).unwrap_or(&[])
}

fn uint(o: &InMemDicomObject, tag: Tag) -> Option<u32> {
    o.get(tag).and_then(|e| e.to_int::<u32>().ok())
}

/// An attribute of a frame: its per-frame functional group, else the shared one.
fn functional<'a>(
    frame: Option<&'a InMemDicomObject>,
    shared: Option<&'a InMemDicomObject>,
    seq: Tag,
) -> Option<&'a InMemDicomObject> {
    [frame, shared]
        .into_iter()
        .flatten()
        .find_map(|g| items(g, seq).first())
}

fn coded(item: &InMemDicomObject) -> Option<Coded> {
    Some(Coded {
        value: text(item, tags::CODE_VALUE)?,
        scheme: text(item, tags::CODING_SCHEME_DESIGNATOR).unwrap_or_default(),
        meaning: text(item, tags::CODE_MEANING).unwrap_or_default(),
    })
}

fn open(path: &Path, what: &str) -> Result<DefaultDicomObject, IoError> {
    let meta = std::fs::metadata(path).map_err(|e| IoError::io("reading", path, e))?;
    if meta.len() > MAX_SEG_BYTES {
        return Err(IoError::TooLarge {
            what: what.into(),
            path: path.to_path_buf(),
            max_bytes: MAX_SEG_BYTES,
        });
    }
    OpenFileOptions::new()
        .open_file(path)
        .map_err(|e| bad(path, format!("not a readable DICOM file ({e})")))
}

/// Axis-aligned direction cosines (row, column) → the voxel-to-RAS affine columns.
fn ras(v: [f64; 3]) -> [f64; 3] {
    [-v[0], -v[1], v[2]]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// In-plane geometry shared by all slices of a series or all frames of a SEG.
#[derive(Clone, Debug, PartialEq)]
struct Plane {
    rows: usize,
    cols: usize,
    row_dir: [f64; 3],
    col_dir: [f64; 3],
    /// (between rows, between columns), mm.
    spacing: [f64; 2],
}

impl Plane {
    fn normal(&self) -> [f64; 3] {
        cross(self.row_dir, self.col_dir)
    }
    fn close_to(&self, o: &Plane) -> bool {
        self.rows == o.rows
            && self.cols == o.cols
            && (0..3).all(|i| {
                (self.row_dir[i] - o.row_dir[i]).abs() < 1e-4
                    && (self.col_dir[i] - o.col_dir[i]).abs() < 1e-4
            })
            && (0..2).all(|i| (self.spacing[i] - o.spacing[i]).abs() < 1e-3)
    }
}

fn plane_from(iop: &[f64], ps: &[f64], rows: usize, cols: usize) -> Option<Plane> {
    if iop.len() != 6
        || ps.len() != 2
        || ps
            .iter()
            .any(|&s| s.is_nan() || s <= 0.0 || s.is_infinite())
    {
        return None;
    }
    Some(Plane {
        rows,
        cols,
        row_dir: [iop[0], iop[1], iop[2]],
        col_dir: [iop[3], iop[4], iop[5]],
        spacing: [ps[0], ps[1]],
    })
}

/// Slices along the normal: their sorted positions must be evenly spaced.
struct Stack {
    plane: Plane,
    /// Image Position (Patient) of the first slice (smallest along the normal), LPS.
    first: [f64; 3],
    /// Position along the normal of slice 0 and the spacing between slices.
    start: f64,
    step: f64,
    count: usize,
}

impl Stack {
    fn from_positions(plane: Plane, mut pos: Vec<[f64; 3]>, path: &Path) -> Result<Self, IoError> {
        let n = plane.normal();
        pos.sort_by(|a, b| dot(*a, n).total_cmp(&dot(*b, n)));
        pos.dedup_by(|a, b| (dot(*a, n) - dot(*b, n)).abs() < 1e-3);
        let proj: Vec<f64> = pos.iter().map(|p| dot(*p, n)).collect();
        let step = if proj.len() > 1 {
            let mut d: Vec<f64> = proj.windows(2).map(|w| w[1] - w[0]).collect();
            d.sort_by(f64::total_cmp);
            d[0]
        } else {
            1.0
        };
        let start = proj[0];
        for &p in &proj {
            let s = (p - start) / step;
            if (s - s.round()).abs() > 0.01 {
                return Err(bad(
                    path,
                    format!(
                        "slice positions are not evenly spaced: {p:.3} mm along the normal is {:.3} steps of {step:.3} mm from the first",
                        s
                    ),
                ));
            }
        }
        let count = ((proj[proj.len() - 1] - start) / step).round() as usize + 1;
        Ok(Stack {
            first: pos[0],
            plane,
            start,
            step,
            count,
        })
    }

    fn slice_of(&self, ipp: [f64; 3]) -> Option<usize> {
        let n = self.plane.normal();
        let s = (dot(ipp, n) - self.start) / self.step;
        // In-plane offset from the first slice's corner must be zero too.
        let d = [0, 1, 2].map(|i| ipp[i] - self.first[i] - n[i] * (dot(ipp, n) - self.start));
        let inplane = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        (s > -0.01
            && (s - s.round()).abs() <= 0.01
            && inplane < 0.01
            && s.round() < self.count as f64)
            .then_some(s.round() as usize)
    }

    /// The RAS+ grid of the stack and how the (column, row, slice)-ordered data maps onto it.
    fn grid(&self, path: &Path) -> Result<(Grid, Reorient), IoError> {
        let p = &self.plane;
        let n = p.normal();
        let (u, v) = (ras(p.row_dir), ras(p.col_dir));
        let w = ras(n);
        let o = ras(self.first);
        let m = [0, 1, 2].map(|r| {
            [
                u[r] * p.spacing[1],
                v[r] * p.spacing[0],
                w[r] * self.step,
                o[r],
            ]
        });
        grid_from_affine(m, [p.cols, p.rows, self.count])
            .map_err(|e| bad(path, format!("geometry: {e}")))
    }
}

/// The referenced series: its UID and slice stack.
fn read_series(dir: &Path) -> Result<(String, Stack), IoError> {
    let rd = dir.read_dir().map_err(|e| IoError::io("listing", dir, e))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut uid: Option<String> = None;
    let mut plane: Option<Plane> = None;
    let mut positions = Vec::new();
    for f in &files {
        let Ok(obj) = OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(f)
        else {
            continue; // not DICOM (a DICOMDIR-less folder may hold other files)
        };
        if text(&obj, tags::SOP_CLASS_UID).as_deref() == Some(SEGMENTATION_STORAGE) {
            continue; // the SEG itself (or another) kept beside its series
        }
        let s = text(&obj, tags::SERIES_INSTANCE_UID)
            .ok_or_else(|| bad(f, "no Series Instance UID"))?;
        match &uid {
            None => uid = Some(s),
            Some(u) if *u != s => {
                return Err(bad(
                    f,
                    format!("belongs to series {s}, but the folder's first file to {u}"),
                ))
            }
            _ => {}
        }
        let rows = uint(&obj, tags::ROWS).unwrap_or(0) as usize;
        let cols = uint(&obj, tags::COLUMNS).unwrap_or(0) as usize;
        let pl = plane_from(
            &floats(&obj, tags::IMAGE_ORIENTATION_PATIENT).unwrap_or_default(),
            &floats(&obj, tags::PIXEL_SPACING).unwrap_or_default(),
            rows,
            cols,
        )
        .ok_or_else(|| bad(f, "no usable Image Orientation (Patient) / Pixel Spacing"))?;
        if let Some(p0) = &plane {
            if !p0.close_to(&pl) {
                return Err(bad(
                    f,
                    "its orientation, spacing or size differs from the series' first slice",
                ));
            }
        } else {
            plane = Some(pl);
        }
        let ipp = floats(&obj, tags::IMAGE_POSITION_PATIENT)
            .filter(|v| v.len() == 3)
            .ok_or_else(|| bad(f, "no Image Position (Patient)"))?;
        positions.push([ipp[0], ipp[1], ipp[2]]);
    }
    let (Some(uid), Some(plane)) = (uid, plane) else {
        return Err(bad(dir, "the series folder holds no DICOM image"));
    };
    Ok((uid, Stack::from_positions(plane, positions, dir)?))
}

/// The label map of a SEG: voxel value = segment number, on a RAS+ grid; and its segments.
pub fn read_seg(input: &SegInput) -> Result<(Volume<u16>, Vec<SegSegment>), IoError> {
    let path = input.seg;
    let obj = open(path, "DICOM SEG")?;
    let class = text(&obj, tags::SOP_CLASS_UID).unwrap_or_default();
    if class != SEGMENTATION_STORAGE {
        return Err(bad(
            path,
            format!("SOP Class UID is {class}, not Segmentation Storage ({SEGMENTATION_STORAGE})"),
        ));
    }
    let ref_series = items(&obj, tags::REFERENCED_SERIES_SEQUENCE)
        .first()
        .and_then(|s| text(s, tags::SERIES_INSTANCE_UID))
        .ok_or_else(|| {
            bad(path, "no Referenced Series Sequence: the SEG does not say which image series it segments")
        })?;
    let rows = uint(&obj, tags::ROWS).unwrap_or(0) as usize;
    let cols = uint(&obj, tags::COLUMNS).unwrap_or(0) as usize;
    let nframes = uint(&obj, tags::NUMBER_OF_FRAMES).unwrap_or(0) as usize;
    if rows == 0 || cols == 0 || nframes == 0 {
        return Err(bad(
            path,
            format!("{rows} rows × {cols} columns × {nframes} frames: nothing to read"),
        ));
    }
    let format = pixel_format(&obj, path)?;
    let px = pixel_data(&obj, path, nframes * rows * cols, format.bits)?;
    let segments = segments_of(&obj, path)?;
    let (frames, plane) = frames_of(&obj, path, &segments, rows, cols, nframes)?;
    let stack = target_stack(input, &ref_series, plane, &frames)?;
    let data = paint(input, &stack, &frames, &px, format)?;
    let (grid, reorient) = stack.grid(path)?;
    Ok((Volume::from_vec(grid, reorient.apply(&data)), segments))
}

/// How a frame's pixels say "in the segment".
#[derive(Clone, Copy)]
struct PixelFormat {
    bits: usize,
    /// Smallest stored value inside (fractional: half the maximum).
    threshold: u32,
}

fn pixel_format(obj: &InMemDicomObject, path: &Path) -> Result<PixelFormat, IoError> {
    let seg_type = text(obj, tags::SEGMENTATION_TYPE).unwrap_or_default();
    match (seg_type.as_str(), uint(obj, tags::BITS_ALLOCATED).unwrap_or(0)) {
        ("BINARY", 1) => Ok(PixelFormat { bits: 1, threshold: 1 }),
        ("FRACTIONAL", 8) => {
            let max = uint(obj, tags::MAXIMUM_FRACTIONAL_VALUE).unwrap_or(255).max(1);
            // A voxel belongs to the segment when at least half of it does.
            Ok(PixelFormat { bits: 8, threshold: max.div_ceil(2) })
        }
        (t, b) => Err(bad(
            path,
            format!("Segmentation Type {t:?} with Bits Allocated {b} is not a binary (1-bit) or fractional (8-bit) SEG"),
        )),
    }
}

/// Pixel Data, checked to hold every frame's pixels.
fn pixel_data(
    obj: &InMemDicomObject,
    path: &Path,
    pixels: usize,
    bits: usize,
) -> Result<Vec<u8>, IoError> {
    let px = obj
        .get(tags::PIXEL_DATA)
        .ok_or_else(|| bad(path, "no Pixel Data"))?
        .to_bytes()
        .map_err(|e| bad(path, format!("Pixel Data: {e}")))?;
    let need = (pixels * bits).div_ceil(8);
    if px.len() < need {
        return Err(bad(
            path,
            format!("Pixel Data has {} bytes; the frames' {pixels} pixels need {need} (truncated file?)", px.len()),
        ));
    }
    Ok(px.into_owned())
}

fn segments_of(obj: &InMemDicomObject, path: &Path) -> Result<Vec<SegSegment>, IoError> {
    let mut segments = Vec::new();
    for s in items(obj, tags::SEGMENT_SEQUENCE) {
        let number = uint(s, tags::SEGMENT_NUMBER)
            .ok_or_else(|| bad(path, "a Segment Sequence item has no Segment Number"))?
            as u16;
        let kind_item = items(s, tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE).first();
        segments.push(SegSegment {
            number,
            label: text(s, tags::SEGMENT_LABEL).unwrap_or_default(),
            kind: kind_item.and_then(coded),
            modifier: kind_item
                .and_then(|k| {
                    items(k, tags::SEGMENTED_PROPERTY_TYPE_MODIFIER_CODE_SEQUENCE).first()
                })
                .and_then(coded),
        });
    }
    if segments.is_empty() {
        return Err(bad(path, "no Segment Sequence"));
    }
    Ok(segments)
}

/// (segment number, Image Position) of each frame, and the plane all frames share.
type Frames = Vec<(u16, [f64; 3])>;

fn frames_of(
    obj: &InMemDicomObject,
    path: &Path,
    segments: &[SegSegment],
    rows: usize,
    cols: usize,
    nframes: usize,
) -> Result<(Frames, Plane), IoError> {
    let shared = items(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE).first();
    let per_frame = items(obj, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE);
    if per_frame.len() != nframes {
        return Err(bad(
            path,
            format!(
                "{} per-frame functional groups for {nframes} frames",
                per_frame.len()
            ),
        ));
    }
    let mut frames = Vec::with_capacity(nframes);
    let mut plane: Option<Plane> = None;
    for (i, f) in per_frame.iter().enumerate() {
        let fail = |what: &str| bad(path, format!("frame {}: {what}", i + 1));
        let seg = functional(Some(f), shared, tags::SEGMENT_IDENTIFICATION_SEQUENCE)
            .and_then(|g| uint(g, tags::REFERENCED_SEGMENT_NUMBER))
            .ok_or_else(|| fail("no Referenced Segment Number"))? as u16;
        if !segments.iter().any(|s| s.number == seg) {
            return Err(fail(&format!(
                "refers to segment {seg}, which the Segment Sequence does not define"
            )));
        }
        let ipp = functional(Some(f), shared, tags::PLANE_POSITION_SEQUENCE)
            .and_then(|g| floats(g, tags::IMAGE_POSITION_PATIENT))
            .filter(|v| v.len() == 3)
            .ok_or_else(|| fail("no Image Position (Patient)"))?;
        let iop = functional(Some(f), shared, tags::PLANE_ORIENTATION_SEQUENCE)
            .and_then(|g| floats(g, tags::IMAGE_ORIENTATION_PATIENT))
            .unwrap_or_default();
        let ps = functional(Some(f), shared, tags::PIXEL_MEASURES_SEQUENCE)
            .and_then(|g| floats(g, tags::PIXEL_SPACING))
            .unwrap_or_default();
        let pl = plane_from(&iop, &ps, rows, cols)
            .ok_or_else(|| fail("no usable Image Orientation (Patient) / Pixel Spacing"))?;
        match &plane {
            Some(p) if !p.close_to(&pl) => {
                return Err(fail("its orientation or spacing differs from frame 1's"))
            }
            None => plane = Some(pl),
            _ => {}
        }
        frames.push((seg, [ipp[0], ipp[1], ipp[2]]));
    }
    let plane = plane.ok_or_else(|| bad(path, "no frames"))?;
    Ok((frames, plane))
}

/// The slices the map is painted on: the referenced series' (checked to be the one the SEG
/// names, with the SEG's plane), else the SEG's own frames.
fn target_stack(
    input: &SegInput,
    ref_series: &str,
    plane: Plane,
    frames: &Frames,
) -> Result<Stack, IoError> {
    let path = input.seg;
    let Some(dir) = input.series else {
        return Stack::from_positions(plane, frames.iter().map(|f| f.1).collect(), path);
    };
    let (uid, stack) = read_series(dir)?;
    if uid != ref_series {
        return Err(bad(
            path,
            format!(
                "references series {ref_series}, but {} holds series {uid}",
                dir.display()
            ),
        ));
    }
    if !stack.plane.close_to(&plane) {
        return Err(bad(
            path,
            format!(
                "geometry differs from the series in {}: SEG {}×{} pixels of {:?} mm along {:?}/{:?}, series {}×{} of {:?} mm along {:?}/{:?}",
                dir.display(), plane.rows, plane.cols, plane.spacing, plane.row_dir, plane.col_dir,
                stack.plane.rows, stack.plane.cols, stack.plane.spacing, stack.plane.row_dir, stack.plane.col_dir
            ),
        ));
    }
    Ok(stack)
}

/// Segment numbers painted on the stack, in stored (column, row, slice) order, column
/// fastest, as the reorientation expects.
fn paint(
    input: &SegInput,
    stack: &Stack,
    frames: &Frames,
    px: &[u8],
    format: PixelFormat,
) -> Result<Vec<u16>, IoError> {
    let path = input.seg;
    let (rows, cols) = (stack.plane.rows, stack.plane.cols);
    let slab = rows * cols;
    if (slab as u128) * (stack.count as u128) > MAX_VOXELS {
        return Err(bad(
            path,
            format!(
                "{cols} × {rows} × {} slices (at {:.3} mm over {:.1} mm) is more than the {MAX_VOXELS} voxels a label map may have",
                stack.count,
                stack.step,
                stack.step * (stack.count as f64 - 1.0)
            ),
        ));
    }
    let mut data = vec![0u16; slab * stack.count];
    let mut overlap = 0usize;
    for (fi, (seg, ipp)) in frames.iter().enumerate() {
        let k = stack.slice_of(*ipp).ok_or_else(|| {
            bad(
                path,
                format!(
                    "frame {} at {:?} mm lies on no slice of the {}",
                    fi + 1,
                    ipp,
                    if input.series.is_some() {
                        "referenced series"
                    } else {
                        "SEG's own stack"
                    }
                ),
            )
        })?;
        let out = &mut data[k * slab..(k + 1) * slab];
        for (p, o) in out.iter_mut().enumerate() {
            let on = if format.bits == 1 {
                let b = fi * slab + p;
                px[b / 8] >> (b % 8) & 1 == 1
            } else {
                px[fi * slab + p] as u32 >= format.threshold
            };
            if on {
                if *o != 0 && *o != *seg {
                    overlap += 1;
                }
                *o = *seg;
            }
        }
    }
    if overlap > 0 {
        tracing::warn!(
            "{}: segments overlap in {overlap} voxels; the later segment wins there",
            path.display()
        );
    }
    Ok(data)
}
