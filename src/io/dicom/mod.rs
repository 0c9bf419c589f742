//! DICOM out (CT and MR image series, Segmentation objects) and DICOM SEG in, through dicom-rs
//! (`dicom-object`): the crate encodes, this module only decides which attributes to write.
//!
//! Geometry: the engine's grids are RAS+ with identity direction ([`crate::volume`]); DICOM's
//! patient coordinates are LPS. Slices are written in the radiological display orientation —
//! Image Orientation (Patient) `1\0\0\0\1\0` (rows toward the patient's left, columns toward
//! posterior) — so pixel (row r, column c) of slice k is voxel (nx−1−c, ny−1−r, k), and Image
//! Position (Patient) is voxel (nx−1, ny−1, k) in LPS. Every object is Explicit VR Little
//! Endian, uncompressed, so same input → same bytes.

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use sha2::{Digest, Sha256};

use super::IoError;
use crate::volume::Grid;

pub mod image;
pub mod read_seg;
pub mod seg;

pub use image::{encode_series, CtAttributes, MrAttributes, SeriesAcquisition, SeriesSlice};
pub use read_seg::{read_seg, SegInput, SegSegment};
pub use seg::{encode_seg, Coded, Segment, SourceSeries};

/// The UID root used when a pipeline gives none: `2.25` is the ISO/ITU arc for UUID-derived
/// UIDs (ITU-T X.667), under which anyone may mint UIDs without registering a root.
pub const DEFAULT_UID_ROOT: &str = "2.25";

/// Transfer syntax of every object written: Explicit VR Little Endian.
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
pub const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
pub const MR_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.4";
pub const SEGMENTATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.4";

/// Longest UID DICOM allows (PS3.5 §9.1).
const UID_MAX_LEN: usize = 64;

/// A UID derived from `key` under `root`, the same for the same (root, key).
///
/// Under `2.25` the suffix is the decimal value of a UUID (version 8, RFC 9562: a custom,
/// here SHA-256 name-based, UUID), as X.667 requires. Under a user's root the suffix is the
/// hash's decimal digits cut to fit 64 characters; a root too long to leave 20 digits of
/// uniqueness is refused when the pipeline is validated ([`uid_root_problem`]).
pub fn derive_uid(root: &str, key: &str) -> String {
    let h = Sha256::digest(key.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0F) | 0x80; // version 8
    b[8] = (b[8] & 0x3F) | 0x80; // RFC 9562 variant
    let n = u128::from_be_bytes(b);
    let digits = n.to_string();
    let room = UID_MAX_LEN.saturating_sub(root.len() + 1);
    format!("{root}.{}", &digits[..digits.len().min(room)])
}

/// Fewest digits a UID suffix must keep under a user's root for derived UIDs not to collide.
pub const MIN_UID_SUFFIX_DIGITS: usize = 20;

/// Why a configured UID root cannot be used, if it cannot.
pub fn uid_root_problem(root: &str) -> Option<String> {
    if root.is_empty() {
        return Some("is empty".into());
    }
    for comp in root.split('.') {
        if comp.is_empty() || !comp.bytes().all(|b| b.is_ascii_digit()) {
            return Some(format!(
                "`{root}` is not a UID root: components are dot-separated decimal numbers"
            ));
        }
        if comp.len() > 1 && comp.starts_with('0') {
            return Some(format!(
                "`{root}`: component `{comp}` has a leading zero, which DICOM UIDs forbid"
            ));
        }
    }
    let room = UID_MAX_LEN as i64 - root.len() as i64 - 1;
    if room < MIN_UID_SUFFIX_DIGITS as i64 {
        return Some(format!(
            "`{root}` is {} characters long; UIDs are at most {UID_MAX_LEN}, which leaves {room} digits for the derived part, fewer than the {MIN_UID_SUFFIX_DIGITS} needed to keep them unique",
            root.len()
        ));
    }
    None
}

/// Who a series belongs to: the synthetic patient and study, and the keys its UIDs derive from.
#[derive(Clone, Debug)]
pub struct StudyInfo {
    pub uid_root: String,
    /// The pipeline's SHA-256: UIDs of two different pipelines never coincide.
    pub pipeline_sha256: String,
    pub subject_id: String,
    /// `M`, `F` or `O` (other: e.g. trial ROIs pooled over subjects).
    pub sex: char,
    /// Patient's Age is left out when not finite.
    pub age_years: f64,
    pub study_description: String,
    /// Software Versions and the file meta's implementation version (the engine's version).
    pub software_version: String,
}

impl StudyInfo {
    pub fn uid(&self, parts: &[&str]) -> String {
        let key = format!(
            "synthcohort/{}/{}/{}",
            self.pipeline_sha256,
            self.subject_id,
            parts.join("/")
        );
        derive_uid(&self.uid_root, &key)
    }
    pub fn study_uid(&self) -> String {
        self.uid(&["study"])
    }
    /// One frame of reference per subject: every arm images the same patient coordinates.
    pub fn frame_of_reference_uid(&self) -> String {
        self.uid(&["frame-of-reference"])
    }
}

/// DICOM decimal string (at most 16 characters) of a finite number.
pub(crate) fn ds(v: f64) -> String {
    let v = if v == 0.0 { 0.0 } else { v }; // no "-0"
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e15).contains(&a) {
        // Small and huge values keep their significant digits as DS's exponent form.
        for digits in (0..=8).rev() {
            let s = format!("{v:.digits$E}");
            let (mantissa, exp) = s.split_once('E').unwrap_or((&s, "0"));
            let mantissa = if mantissa.contains('.') {
                mantissa.trim_end_matches('0').trim_end_matches('.')
            } else {
                mantissa
            };
            let s = format!("{mantissa}E{exp}");
            if s.len() <= 16 {
                return s;
            }
        }
    }
    for decimals in (0..=6).rev() {
        let s = format!("{v:.decimals$}");
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        };
        if s.len() <= 16 {
            return s;
        }
    }
    format!("{v:.6e}")
}

pub(crate) fn ds_multi(vs: &[f64]) -> String {
    vs.iter().map(|&v| ds(v)).collect::<Vec<_>>().join("\\")
}

/// An integer string (IS).
pub(crate) fn is(v: i64) -> String {
    v.to_string()
}

pub(crate) fn put_str(o: &mut InMemDicomObject, tag: Tag, vr: VR, s: impl Into<String>) {
    o.put(DataElement::new(tag, vr, PrimitiveValue::from(s.into())));
}

pub(crate) fn put_u16(o: &mut InMemDicomObject, tag: Tag, v: u16) {
    o.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
}

pub(crate) fn put_seq(o: &mut InMemDicomObject, tag: Tag, items: Vec<InMemDicomObject>) {
    o.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
}

/// A code sequence item (Code Value, Coding Scheme Designator, Code Meaning).
pub(crate) fn code_item(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    put_str(&mut o, tags::CODE_VALUE, VR::SH, value);
    put_str(&mut o, tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme);
    put_str(&mut o, tags::CODE_MEANING, VR::LO, meaning);
    o
}

/// The Patient, General Study, Frame of Reference and General Equipment attributes every
/// object of a subject shares, and the marks that say it is synthetic.
pub(crate) fn put_common(o: &mut InMemDicomObject, st: &StudyInfo) {
    put_str(
        o,
        tags::PATIENT_NAME,
        VR::PN,
        format!("SYNTHETIC^{}", st.subject_id),
    );
    put_str(o, tags::PATIENT_ID, VR::LO, st.subject_id.clone());
    put_str(o, tags::PATIENT_BIRTH_DATE, VR::DA, "");
    put_str(o, tags::PATIENT_SEX, VR::CS, st.sex.to_string());
    if st.age_years.is_finite() {
        let age = st.age_years.round().clamp(0.0, 999.0) as u32;
        put_str(o, tags::PATIENT_AGE, VR::AS, format!("{age:03}Y"));
    }
    put_str(o, tags::PATIENT_IDENTITY_REMOVED, VR::CS, "YES");
    put_str(
        o,
        tags::DEIDENTIFICATION_METHOD,
        VR::LO,
        "synthetic subject, no patient",
    );
    put_str(o, tags::STUDY_INSTANCE_UID, VR::UI, st.study_uid());
    // No acquisition ever happened: date and time stay empty (type 2).
    put_str(o, tags::STUDY_DATE, VR::DA, "");
    put_str(o, tags::STUDY_TIME, VR::TM, "");
    put_str(o, tags::REFERRING_PHYSICIAN_NAME, VR::PN, "");
    put_str(o, tags::STUDY_ID, VR::SH, "1");
    put_str(o, tags::ACCESSION_NUMBER, VR::SH, "");
    put_str(
        o,
        tags::STUDY_DESCRIPTION,
        VR::LO,
        truncate(&st.study_description, 64),
    );
    put_str(
        o,
        tags::FRAME_OF_REFERENCE_UID,
        VR::UI,
        st.frame_of_reference_uid(),
    );
    put_str(o, tags::POSITION_REFERENCE_INDICATOR, VR::LO, "");
    put_str(o, tags::MANUFACTURER, VR::LO, "synthcohort");
    put_str(o, tags::MANUFACTURER_MODEL_NAME, VR::LO, "synthcohort");
    put_str(
        o,
        tags::SOFTWARE_VERSIONS,
        VR::LO,
        st.software_version.clone(),
    );
    put_str(o, tags::DEVICE_SERIAL_NUMBER, VR::LO, "0");
    put_str(o, tags::BURNED_IN_ANNOTATION, VR::CS, "NO");
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The whole file (preamble, meta group, data set) in memory.
pub(crate) fn file_bytes(
    obj: InMemDicomObject,
    st: &StudyInfo,
    sop_class: &str,
    sop_instance: &str,
) -> Result<Vec<u8>, IoError> {
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(EXPLICIT_VR_LE)
        .media_storage_sop_class_uid(sop_class)
        .media_storage_sop_instance_uid(sop_instance)
        .implementation_class_uid(derive_uid(DEFAULT_UID_ROOT, "synthcohort implementation"))
        .implementation_version_name(truncate(
            &format!("SYNTHCOHORT{}", st.software_version.replace('.', "")),
            16,
        ))
        .build()
        .map_err(|e| IoError::encode("DICOM file meta", e.to_string()))?;
    let file = obj.with_exact_meta(meta);
    let mut out = Vec::new();
    file.write_all(&mut out)
        .map_err(|e| IoError::encode("DICOM object", e.to_string()))?;
    Ok(out)
}

/// Slice geometry in DICOM terms: Image Position (Patient) of slice `k` (LPS, mm).
pub(crate) fn image_position(grid: &Grid, k: usize) -> [f64; 3] {
    let w = grid.world(grid.dims[0] - 1, grid.dims[1] - 1, k);
    [-w[0], -w[1], w[2]]
}

/// Image Orientation (Patient) of every slice written: rows toward L, columns toward P.
pub(crate) const IMAGE_ORIENTATION: [f64; 6] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];

/// Pixel Spacing (between rows = y, between columns = x, as the display orientation lays the
/// grid out), Slice Thickness and Spacing Between Slices of `grid`.
pub(crate) fn put_pixel_measures(o: &mut InMemDicomObject, grid: &Grid) {
    let s = grid.spacing_mm;
    put_str(o, tags::PIXEL_SPACING, VR::DS, ds_multi(&[s[1], s[0]]));
    put_str(o, tags::SLICE_THICKNESS, VR::DS, ds(s[2]));
    put_str(o, tags::SPACING_BETWEEN_SLICES, VR::DS, ds(s[2]));
}

/// The Image Pixel module of a single-sample grey image of `grid`'s slices: `bits` per pixel,
/// all of them stored, signed or not.
pub(crate) fn put_pixel_module(o: &mut InMemDicomObject, grid: &Grid, bits: u16, signed: bool) {
    put_u16(o, tags::SAMPLES_PER_PIXEL, 1);
    put_str(o, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    put_u16(o, tags::ROWS, grid.dims[1] as u16);
    put_u16(o, tags::COLUMNS, grid.dims[0] as u16);
    put_u16(o, tags::BITS_ALLOCATED, bits);
    put_u16(o, tags::BITS_STORED, bits);
    put_u16(o, tags::HIGH_BIT, bits - 1);
    put_u16(o, tags::PIXEL_REPRESENTATION, signed as u16);
}

/// Index into a volume's data of pixel (row r, column c) of slice k.
#[inline]
pub(crate) fn voxel_of_pixel(grid: &Grid, r: usize, c: usize, k: usize) -> usize {
    grid.index(grid.dims[0] - 1 - c, grid.dims[1] - 1 - r, k)
}

#[cfg(test)]
mod tests;
