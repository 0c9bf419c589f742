//! NIfTI-1 single-file images (`.nii` / `.nii.gz`).
//!
//! Writing is done by hand: the 348-byte header is simple, and encoding into memory lets the
//! caller hash the exact bytes and write them atomically. Reading goes through the `nifti` crate
//! so that we accept what a standard reader accepts. Files read back are reoriented to the
//! crate's convention (RAS+, identity direction) by flipping and permuting axes.

use std::io::Write;
use std::path::Path;

use ::nifti::{IntoNdArray, NiftiHeader, NiftiObject, NiftiType, ReaderOptions};
use flate2::{Compression, GzBuilder};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::IoError;
use crate::volume::{Grid, Volume};

/// On-disk voxel type of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImageDtype {
    /// 4 bytes a voxel, exact.
    Float32,
    /// 2 bytes a voxel with `scl_slope`/`scl_inter`; exact for integral HU within i16.
    Int16,
}

const DT_UINT8: i16 = 2;
const DT_INT16: i16 = 4;
const DT_FLOAT32: i16 = 16;
const DT_UINT16: i16 = 512;
const NIFTI_UNITS_MM: u8 = 2;
const HEADER_LEN: usize = 348;
/// Header plus the 4-byte extension flag (all zero: no extensions).
const VOX_OFFSET: usize = 352;
const GZIP_LEVEL: u32 = 6;
/// Largest relative off-axis component of a voxel axis still treated as axis-aligned: covers
/// float32 rounding of srow and tiny scanner obliquities (< 0.06°), and nothing a user would
/// notice being dropped.
const AXIS_ALIGNED_TOL: f64 = 1e-3;

/// True when `path` ends in `.gz`, i.e. the file should be gzip-compressed.
pub fn is_gz_path(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// Encodes an image volume as a NIfTI-1 file in memory.
///
/// The header carries the grid both as sform and qform (code 1, scanner), `pixdim` = spacing,
/// units mm and `descrip` truncated to 79 bytes. Same input → same bytes (gzip mtime is 0).
/// `Int16` quantises with a slope/intercept covering the data range (slope 1, intercept 0 when
/// all values are integers within i16, e.g. HU); non-finite values cannot be stored as i16 and
/// are an error.
pub fn encode_image(
    vol: &Volume<f32>,
    dtype: ImageDtype,
    gzip: bool,
    descrip: &str,
) -> Result<Vec<u8>, IoError> {
    check_volume(&vol.grid, vol.data.len(), "image")?;
    let (datatype, bitpix, slope, inter) = match dtype {
        ImageDtype::Float32 => (DT_FLOAT32, 32, 1.0, 0.0),
        ImageDtype::Int16 => {
            let (slope, inter) = int16_scaling(&vol.data)?;
            (DT_INT16, 16, slope, inter)
        }
    };
    let header = Header {
        dims: vol.grid.dims,
        datatype,
        bitpix,
        pixdim: vol.grid.spacing_mm,
        slope,
        inter,
        srow: affine_rows(&vol.grid),
        qform: true,
        qoffset: vol.grid.origin_mm,
        descrip,
    };
    match dtype {
        ImageDtype::Float32 => finish(
            header.to_bytes(),
            &vol.data,
            4,
            |v, out| out.extend_from_slice(&v.to_le_bytes()),
            gzip,
        ),
        ImageDtype::Int16 => {
            let (s, b) = (slope as f64, inter as f64);
            let put = |v: f32, out: &mut Vec<u8>| {
                let q = ((v as f64 - b) / s)
                    .round()
                    .clamp(i16::MIN as f64, i16::MAX as f64);
                out.extend_from_slice(&(q as i16).to_le_bytes());
            };
            finish(header.to_bytes(), &vol.data, 2, put, gzip)
        }
    }
}

/// Encodes a label map: `uint8` when every label is ≤ 255 (the common case, half the size),
/// else `uint16`. Header as in [`encode_image`], with slope 1 and intercept 0.
pub fn encode_labels(vol: &Volume<u16>, gzip: bool, descrip: &str) -> Result<Vec<u8>, IoError> {
    check_volume(&vol.grid, vol.data.len(), "label map")?;
    let max = vol.data.iter().copied().max().unwrap_or(0);
    let (datatype, bitpix) = if max <= u8::MAX as u16 {
        (DT_UINT8, 8)
    } else {
        (DT_UINT16, 16)
    };
    let header = Header {
        dims: vol.grid.dims,
        datatype,
        bitpix,
        pixdim: vol.grid.spacing_mm,
        slope: 1.0,
        inter: 0.0,
        srow: affine_rows(&vol.grid),
        qform: true,
        qoffset: vol.grid.origin_mm,
        descrip,
    };
    if datatype == DT_UINT8 {
        finish(
            header.to_bytes(),
            &vol.data,
            1,
            |v, o| o.push(v as u8),
            gzip,
        )
    } else {
        let put = |v: u16, o: &mut Vec<u8>| o.extend_from_slice(&v.to_le_bytes());
        finish(header.to_bytes(), &vol.data, 2, put, gzip)
    }
}

/// Reads a 3D NIfTI-1 image of any real numeric datatype as f32, with scl_slope/scl_inter
/// applied, reoriented to RAS+ with identity direction.
pub fn read_image(path: &Path) -> Result<Volume<f32>, IoError> {
    let (header, dims, data) = read_values::<f32>(path)?;
    let (grid, r) = grid_from_header(&header, dims, path)?;
    Ok(Volume {
        data: r.apply(&data),
        grid,
    })
}

/// Reads a 3D label map. Any integer datatype is accepted, and float datatypes holding whole
/// numbers; negative, fractional or > 65535 values are an error naming the voxel.
pub fn read_labels(path: &Path) -> Result<Volume<u16>, IoError> {
    // f64 holds every i32/u32 label exactly, so the range checks below are exact.
    let (header, dims, values) = read_values::<f64>(path)?;
    let mut data = Vec::with_capacity(values.len());
    for (idx, &v) in values.iter().enumerate() {
        let problem = if !v.is_finite() || v.fract() != 0.0 {
            Some("is not an integer")
        } else if v < 0.0 {
            Some("is negative")
        } else if v > u16::MAX as f64 {
            Some("exceeds 65535")
        } else {
            None
        };
        if let Some(p) = problem {
            let nx = dims[0];
            let ny = dims[1];
            let ijk = [idx % nx, (idx / nx) % ny, idx / (nx * ny)];
            return Err(bad(
                path,
                format!("label value {v} at voxel {ijk:?} (as stored) {p}"),
            ));
        }
        data.push(v as u16);
    }
    let (grid, r) = grid_from_header(&header, dims, path)?;
    Ok(Volume {
        data: r.apply(&data),
        grid,
    })
}

// ---------------------------------------------------------------------------------------------
// Encoding

struct Header<'a> {
    dims: [usize; 3],
    datatype: i16,
    bitpix: i16,
    pixdim: [f64; 3],
    slope: f32,
    inter: f32,
    srow: [[f64; 4]; 3],
    /// Write a qform (code 1, identity quaternion, offset `qoffset`); only valid when the srow
    /// rotation part is diagonal with positive entries.
    qform: bool,
    qoffset: [f64; 3],
    descrip: &'a str,
}

impl Header<'_> {
    fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; VOX_OFFSET];
        let put_i16 =
            |b: &mut [u8], off: usize, v: i16| b[off..off + 2].copy_from_slice(&v.to_le_bytes());
        let put_f32 =
            |b: &mut [u8], off: usize, v: f32| b[off..off + 4].copy_from_slice(&v.to_le_bytes());
        b[0..4].copy_from_slice(&(HEADER_LEN as i32).to_le_bytes());
        b[38] = b'r'; // "regular", as ANALYZE-era readers expect
        let dim = [
            3,
            self.dims[0] as i16,
            self.dims[1] as i16,
            self.dims[2] as i16,
            1,
            1,
            1,
            1,
        ];
        for (n, d) in dim.iter().enumerate() {
            put_i16(&mut b, 40 + 2 * n, *d);
        }
        put_i16(&mut b, 70, self.datatype);
        put_i16(&mut b, 72, self.bitpix);
        // pixdim[0] is qfac: +1, a right-handed voxel-to-world qform.
        let pixdim = [
            1.0,
            self.pixdim[0] as f32,
            self.pixdim[1] as f32,
            self.pixdim[2] as f32,
            0.0,
            0.0,
            0.0,
            0.0,
        ];
        for (n, p) in pixdim.iter().enumerate() {
            put_f32(&mut b, 76 + 4 * n, *p);
        }
        put_f32(&mut b, 108, VOX_OFFSET as f32);
        put_f32(&mut b, 112, self.slope);
        put_f32(&mut b, 116, self.inter);
        b[123] = NIFTI_UNITS_MM;
        let d = self.descrip.as_bytes();
        let n = truncate_utf8(self.descrip, 79);
        b[148..148 + n].copy_from_slice(&d[..n]);
        put_i16(&mut b, 252, if self.qform { 1 } else { 0 });
        put_i16(&mut b, 254, 1);
        if self.qform {
            // quatern_b/c/d stay 0: identity rotation.
            for a in 0..3 {
                put_f32(&mut b, 268 + 4 * a, self.qoffset[a] as f32);
            }
        }
        for (r, row) in self.srow.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                put_f32(&mut b, 280 + 16 * r + 4 * c, *v as f32);
            }
        }
        b[344..348].copy_from_slice(b"n+1\0");
        b
    }
}

/// Length of the longest prefix of `s` that is ≤ `max` bytes and ends on a char boundary, so a
/// truncated description stays valid UTF-8 and leaves room for the terminating NUL.
fn truncate_utf8(s: &str, max: usize) -> usize {
    let mut n = s.len().min(max);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    n
}

/// Voxels converted to bytes at a time while encoding, so that a volume's bytes are never
/// held uncompressed as a whole (a 512 × 512 × 224 float image is 235 MB; it used to be
/// copied twice before compression).
const ENCODE_CHUNK_VOXELS: usize = 1 << 16;

/// The file: `header`, then each of `values` as `bytes_per` bytes written by `put`,
/// gzip-compressed or not.
fn finish<T: Copy>(
    header: Vec<u8>,
    values: &[T],
    bytes_per: usize,
    put: impl Fn(T, &mut Vec<u8>),
    gzip: bool,
) -> Result<Vec<u8>, IoError> {
    let raw = header.len() + values.len() * bytes_per;
    if !gzip {
        let mut bytes = header;
        bytes.reserve_exact(raw - bytes.len());
        values.iter().for_each(|&v| put(v, &mut bytes));
        return Ok(bytes);
    }
    let gz = |e: std::io::Error| IoError::encode("NIfTI", format!("gzip: {e}"));
    // mtime 0 and a fixed OS byte keep the output byte-identical across runs and machines.
    let mut enc = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::with_capacity(raw / 3), Compression::new(GZIP_LEVEL));
    enc.write_all(&header).map_err(gz)?;
    let mut buf = Vec::with_capacity(ENCODE_CHUNK_VOXELS * bytes_per);
    for chunk in values.chunks(ENCODE_CHUNK_VOXELS) {
        buf.clear();
        chunk.iter().for_each(|&v| put(v, &mut buf));
        enc.write_all(&buf).map_err(gz)?;
    }
    enc.finish().map_err(gz)
}

fn affine_rows(g: &Grid) -> [[f64; 4]; 3] {
    let a = g.affine();
    [a[0], a[1], a[2]]
}

fn check_volume(grid: &Grid, len: usize, what: &'static str) -> Result<(), IoError> {
    if grid.dims.iter().any(|&d| d == 0 || d > i16::MAX as usize) {
        return Err(IoError::encode(
            what,
            format!(
                "dims {:?} must each be in 1..=32767 (NIfTI-1 limit)",
                grid.dims
            ),
        ));
    }
    if len != grid.len() {
        return Err(IoError::encode(
            what,
            format!("{len} voxels for a grid of {:?}", grid.dims),
        ));
    }
    if grid.spacing_mm.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(IoError::encode(
            what,
            format!(
                "spacing {:?} mm must be finite and positive",
                grid.spacing_mm
            ),
        ));
    }
    if grid.origin_mm.iter().any(|o| !o.is_finite()) {
        return Err(IoError::encode(
            what,
            format!("origin {:?} mm must be finite", grid.origin_mm),
        ));
    }
    Ok(())
}

/// (scl_slope, scl_inter) for storing `data` as i16: identity for integral data within i16;
/// otherwise the range is mapped onto ±32767 so quantisation error is at most slope/2.
fn int16_scaling(data: &[f32]) -> Result<(f32, f32), IoError> {
    let mut min = f32::INFINITY;
    let mut max = f32::NEG_INFINITY;
    let mut integral = true;
    for (idx, &v) in data.iter().enumerate() {
        if !v.is_finite() {
            return Err(IoError::encode(
                "int16 image",
                format!("value {v} at index {idx} cannot be stored as int16"),
            ));
        }
        min = min.min(v);
        max = max.max(v);
        integral &= v.fract() == 0.0;
    }
    if integral && min >= i16::MIN as f32 && max <= i16::MAX as f32 {
        return Ok((1.0, 0.0));
    }
    let slope = ((max as f64 - min as f64) / 65534.0) as f32;
    if !(slope > 0.0 && slope.is_finite()) {
        // Constant (or numerically constant) data: every voxel is stored as 0 → inter.
        return Ok((1.0, min));
    }
    let inter = ((max as f64 + min as f64) / 2.0) as f32;
    Ok((slope, inter))
}

// ---------------------------------------------------------------------------------------------
// Reading

fn bad(path: &Path, reason: impl Into<String>) -> IoError {
    IoError::BadNifti {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Header, spatial dims and voxel values (x fastest, as stored, scaling applied).
fn read_values<T: ::nifti::DataElement + Copy>(
    path: &Path,
) -> Result<(NiftiHeader, [usize; 3], Vec<T>), IoError> {
    let nifti_err = |source| IoError::NiftiRead {
        path: path.to_path_buf(),
        source,
    };
    // Check the header before the crate allocates and decodes the volume, so that a 4D series
    // or an inconsistent header fails fast with a clear message.
    let header = NiftiHeader::from_file(path).map_err(nifti_err)?;
    let dims = spatial_dims(&header, path)?;
    check_read_memory::<T>(&header, dims, path)?;
    let obj = ReaderOptions::new().read_file(path).map_err(nifti_err)?;
    let header = obj.header().clone();
    let arr = obj.into_volume().into_ndarray::<T>().map_err(nifti_err)?;
    // The array is indexed [x, y, z, (1…)]; reversing the axes makes logical iteration order
    // x-fastest whatever the memory layout.
    let data: Vec<T> = arr.reversed_axes().iter().copied().collect();
    if data.len() != dims[0] * dims[1] * dims[2] {
        return Err(bad(
            path,
            format!("{} voxels decoded for dims {dims:?}", data.len()),
        ));
    }
    Ok((header, dims, data))
}

/// Voxels one volume may have: 2^31, past any clinical scan (a 1024² × 2048 volume) and the
/// point where index arithmetic in other tools starts to overflow.
pub const MAX_VOXELS: u64 = 1 << 31;

/// Refuses a header whose volume cannot be held: more than [`MAX_VOXELS`], or more memory to
/// read (the raw bytes, the decoded values and the result) than the machine has available.
/// Checked from the header alone, before anything is allocated, so a 348-byte file claiming
/// 10⁹ voxels is refused at once.
fn check_read_memory<T>(h: &NiftiHeader, dims: [usize; 3], path: &Path) -> Result<(), IoError> {
    let voxels = dims.iter().map(|&d| d as u64).product::<u64>();
    if voxels > MAX_VOXELS {
        return Err(bad(
            path,
            format!(
                "dims {dims:?} hold {voxels} voxels, more than the {MAX_VOXELS} a volume may have"
            ),
        ));
    }
    // An uncompressed file must hold what its header claims; checked before anything is read.
    if !is_gz_path(path) {
        let need = h.vox_offset.max(0.0) as u64 + voxels * (h.bitpix as u64).div_ceil(8);
        if let Ok(m) = std::fs::metadata(path) {
            if m.len() < need {
                return Err(bad(
                    path,
                    format!(
                        "the file has {} bytes but its header (dims {dims:?}, {} bits a voxel) needs {need}",
                        m.len(),
                        h.bitpix
                    ),
                ));
            }
        }
    }
    let per_voxel = (h.bitpix as u64).div_ceil(8) + 2 * std::mem::size_of::<T>() as u64;
    let need = voxels * per_voxel;
    if let Some(avail) = crate::sys::available_memory() {
        if need > avail {
            let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
            return Err(bad(
                path,
                format!(
                    "dims {dims:?} ({voxels} voxels) need about {:.1} GiB to read, more than the {:.1} GiB available",
                    gib(need),
                    gib(avail)
                ),
            ));
        }
    }
    Ok(())
}

fn spatial_dims(h: &NiftiHeader, path: &Path) -> Result<[usize; 3], IoError> {
    let rank = h.dim[0] as usize;
    if !(3..=7).contains(&rank) {
        return Err(bad(
            path,
            format!("dim[0] = {rank}: only 3D volumes are supported"),
        ));
    }
    if let Some(n) = (4..=rank).find(|&n| h.dim[n] != 1) {
        return Err(bad(
            path,
            format!(
                "dim = {:?}: only 3D volumes are supported (dim[{n}] = {} > 1)",
                &h.dim[..=rank],
                h.dim[n]
            ),
        ));
    }
    let dims = [h.dim[1] as usize, h.dim[2] as usize, h.dim[3] as usize];
    // dim is i16 on disk; the crate reads it as u16, so a negative value shows up as > 32767.
    if dims.iter().any(|&d| d == 0 || d > i16::MAX as usize) {
        return Err(bad(path, format!("invalid dims {dims:?}")));
    }
    let dt = h.data_type().map_err(|source| IoError::NiftiRead {
        path: path.to_path_buf(),
        source,
    })?;
    if matches!(
        dt,
        NiftiType::Rgb24
            | NiftiType::Rgba32
            | NiftiType::Complex64
            | NiftiType::Complex128
            | NiftiType::Complex256
            | NiftiType::Float128
    ) {
        return Err(bad(
            path,
            format!("datatype {dt:?} is not a real scalar type"),
        ));
    }
    if h.bitpix as usize != dt.size_of() * 8 {
        return Err(bad(
            path,
            format!("bitpix {} does not match datatype {dt:?}", h.bitpix),
        ));
    }
    Ok(dims)
}

/// Voxel-to-world affine (rows of a 3×4, mm) by the NIfTI-1 precedence: sform, then qform,
/// then pixdim alone (ANALYZE method 1).
fn header_affine(h: &NiftiHeader) -> [[f64; 4]; 3] {
    let mut m = if h.sform_code > 0 {
        [h.srow_x, h.srow_y, h.srow_z].map(|r| r.map(|v| v as f64))
    } else if h.qform_code > 0 {
        qform_affine(h)
    } else {
        let p = |n: usize| h.pixdim[n].abs() as f64;
        [
            [p(1), 0.0, 0.0, 0.0],
            [0.0, p(2), 0.0, 0.0],
            [0.0, 0.0, p(3), 0.0],
        ]
    };
    let to_mm = match h.xyzt_units & 0o7 {
        1 => 1000.0, // metres
        3 => 1e-3,   // microns
        _ => 1.0,    // mm, or unknown (treated as mm, as most tools do)
    };
    for row in &mut m {
        for v in row.iter_mut() {
            *v *= to_mm;
        }
    }
    m
}

/// The qform as in nifti1_io.c `quatern_to_mat44`.
fn qform_affine(h: &NiftiHeader) -> [[f64; 4]; 3] {
    let (mut b, mut c, mut d) = (h.quatern_b as f64, h.quatern_c as f64, h.quatern_d as f64);
    let mut a = 1.0 - (b * b + c * c + d * d);
    if a < 1e-7 {
        // Rotation by 180°: a = 0, renormalise (b, c, d).
        let n = (b * b + c * c + d * d).sqrt();
        if n > 0.0 {
            b /= n;
            c /= n;
            d /= n;
        }
        a = 0.0;
    } else {
        a = a.sqrt();
    }
    let px = |n: usize| {
        let v = h.pixdim[n] as f64;
        if v > 0.0 {
            v
        } else {
            1.0
        }
    };
    let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
    let (dx, dy, dz) = (px(1), px(2), qfac * px(3));
    let r = [
        [
            a * a + b * b - c * c - d * d,
            2.0 * (b * c - a * d),
            2.0 * (b * d + a * c),
        ],
        [
            2.0 * (b * c + a * d),
            a * a + c * c - b * b - d * d,
            2.0 * (c * d - a * b),
        ],
        [
            2.0 * (b * d - a * c),
            2.0 * (c * d + a * b),
            a * a + d * d - c * c - b * b,
        ],
    ];
    let off = [h.quatern_x as f64, h.quatern_y as f64, h.quatern_z as f64];
    [0, 1, 2].map(|i| [r[i][0] * dx, r[i][1] * dy, r[i][2] * dz, off[i]])
}

/// How stored voxels map onto the RAS+ grid: output axis `w` walks stored axis `src[w]`,
/// backwards when `flip[w]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reorient {
    dims_in: [usize; 3],
    src: [usize; 3],
    flip: [bool; 3],
}

impl Reorient {
    fn is_identity(&self) -> bool {
        self.src == [0, 1, 2] && self.flip == [false; 3]
    }

    pub(crate) fn apply<T: Copy>(&self, data: &[T]) -> Vec<T> {
        if self.is_identity() {
            return data.to_vec();
        }
        let d = self.dims_in;
        let stride_in = [1isize, d[0] as isize, (d[0] * d[1]) as isize];
        let mut start = 0isize;
        let mut step = [0isize; 3];
        let mut n = [0usize; 3];
        for w in 0..3 {
            let a = self.src[w];
            n[w] = d[a];
            if self.flip[w] {
                start += (d[a] as isize - 1) * stride_in[a];
                step[w] = -stride_in[a];
            } else {
                step[w] = stride_in[a];
            }
        }
        let mut out = Vec::with_capacity(data.len());
        for k in 0..n[2] {
            let pk = start + k as isize * step[2];
            for j in 0..n[1] {
                let mut p = pk + j as isize * step[1];
                for _ in 0..n[0] {
                    out.push(data[p as usize]);
                    p += step[0];
                }
            }
        }
        out
    }
}

fn grid_from_header(
    h: &NiftiHeader,
    dims: [usize; 3],
    path: &Path,
) -> Result<(Grid, Reorient), IoError> {
    grid_from_affine(header_affine(h), dims).map_err(|e| bad(path, e.to_string()))
}

/// Why an affine has no axis-aligned RAS+ equivalent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AffineError {
    #[error("affine has non-finite entries: {0:?}")]
    NonFinite([[f64; 4]; 3]),
    #[error("voxel axis {axis} has zero length in the affine {m:?}")]
    ZeroAxis { axis: usize, m: [[f64; 4]; 3] },
    #[error("affine is oblique (voxel axis {axis} = {col:?}); only axis-aligned grids (flips and permutations of RAS) are supported")]
    Oblique { axis: usize, col: [f64; 3] },
    #[error("voxel axes {a} and {b} both point along world axis {w}: {m:?}")]
    SharedAxis {
        a: usize,
        b: usize,
        w: usize,
        m: [[f64; 4]; 3],
    },
}

/// The RAS+ identity-direction grid equivalent to a stored grid whose affine is a signed
/// permutation of the axes times spacing (flips and transposes, as LPS or sagittal files have).
pub(crate) fn grid_from_affine(
    m: [[f64; 4]; 3],
    dims_in: [usize; 3],
) -> Result<(Grid, Reorient), AffineError> {
    if m.iter().flatten().any(|v| !v.is_finite()) {
        return Err(AffineError::NonFinite(m));
    }
    let mut src = [usize::MAX; 3];
    let mut flip = [false; 3];
    let mut spacing = [0.0; 3];
    for a in 0..3 {
        let col = [m[0][a], m[1][a], m[2][a]];
        let norm = col.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm == 0.0 {
            return Err(AffineError::ZeroAxis { axis: a, m });
        }
        let w = (0..3)
            .max_by(|&p, &q| col[p].abs().total_cmp(&col[q].abs()))
            .unwrap_or(0);
        let off_axis = (0..3)
            .filter(|&v| v != w)
            .map(|v| col[v].abs())
            .fold(0.0, f64::max);
        if off_axis > AXIS_ALIGNED_TOL * norm {
            return Err(AffineError::Oblique { axis: a, col });
        }
        if src[w] != usize::MAX {
            return Err(AffineError::SharedAxis {
                a: src[w],
                b: a,
                w,
                m,
            });
        }
        src[w] = a;
        flip[w] = col[w] < 0.0;
        spacing[w] = norm;
    }
    // World position of the stored voxel that becomes output voxel (0, 0, 0).
    let mut first = [0.0; 3];
    for w in 0..3 {
        if flip[w] {
            first[src[w]] = (dims_in[src[w]] - 1) as f64;
        }
    }
    let origin = [0, 1, 2].map(|r| m[r][3] + (0..3).map(|c| m[r][c] * first[c]).sum::<f64>());
    let dims = [0, 1, 2].map(|w| dims_in[src[w]]);
    let grid = Grid {
        dims,
        spacing_mm: spacing,
        origin_mm: origin,
    };
    Ok((grid, Reorient { dims_in, src, flip }))
}

#[cfg(test)]
mod tests;
