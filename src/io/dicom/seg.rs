//! DICOM Segmentation (binary) of a label map, referencing the image series it segments.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::*;
use crate::volume::Volume;

/// A coded concept as DICOM writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coded {
    pub value: String,
    pub scheme: String,
    pub meaning: String,
}

impl Coded {
    pub fn new(value: &str, scheme: &str, meaning: &str) -> Self {
        Coded {
            value: value.into(),
            scheme: scheme.into(),
            meaning: meaning.into(),
        }
    }
    fn item(&self) -> InMemDicomObject {
        code_item(&self.value, &self.scheme, &self.meaning)
    }
}

/// One segment: which label value of the map it is, and how DICOM names it.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// The label map value this segment covers.
    pub value: u16,
    /// Segment Label (the ontology or lesion name).
    pub label: String,
    pub category: Coded,
    pub kind: Coded,
    /// Laterality (left / right) of a paired structure.
    pub modifier: Option<Coded>,
    /// Display colour (sRGB), written as Recommended Display CIELab Value.
    pub rgb: [u8; 3],
}

/// The image series a SEG refers to, slice by slice.
#[derive(Clone, Debug)]
pub struct SourceSeries<'a> {
    pub series_uid: &'a str,
    pub sop_class_uid: &'a str,
    /// SOP Instance UID of each axial slice, index = slice k of the label grid.
    pub instance_uids: &'a [String],
}

/// A fixed Content Date/Time: the SEG's Multi-frame module needs a value (type 1), and a real
/// clock would make reruns differ.
const CONTENT_DATE: &str = "19700101";
const CONTENT_TIME: &str = "000000";

/// Encodes the segments of `labels` (on the grid of `source`'s slices) as a binary SEG.
/// Frames are segment-major, inferior to superior, and only where the segment has voxels.
pub fn encode_seg(
    labels: &Volume<u16>,
    segments: &[Segment],
    st: &StudyInfo,
    seg_key: &str,
    series_number: u32,
    source: &SourceSeries,
) -> Result<Vec<u8>, IoError> {
    let g = &labels.grid;
    let nz = g.dims[2];
    if source.instance_uids.len() != nz {
        return Err(IoError::encode(
            "DICOM SEG",
            format!(
                "the label map has {nz} slices but the referenced series {}",
                source.instance_uids.len()
            ),
        ));
    }
    if segments.is_empty() {
        return Err(IoError::encode("DICOM SEG", "no segments to write"));
    }
    let frames = segment_frames(labels, segments);
    if frames.is_empty() {
        return Err(IoError::encode("DICOM SEG", "no segment has a voxel"));
    }
    let sop_uid = st.uid(&["seg", seg_key, "instance"]);
    let mut o = InMemDicomObject::new_empty();
    put_common(&mut o, st);
    put_seg_header(
        &mut o,
        st,
        seg_key,
        series_number,
        &sop_uid,
        g,
        frames.len(),
    );
    let segs: Vec<InMemDicomObject> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| segment_item(i as u16 + 1, s, &st.software_version))
        .collect();
    put_seq(&mut o, tags::SEGMENT_SEQUENCE, segs);
    put_references(&mut o, source);
    put_dimensions(&mut o, &st.uid(&["seg", seg_key, "dimension-organization"]));
    put_seq(
        &mut o,
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        vec![shared_groups(g)],
    );
    let per_frame = frames
        .iter()
        .map(|&(si, k)| frame_item(source, si, k, g))
        .collect();
    put_seq(
        &mut o,
        tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
        per_frame,
    );
    o.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::U8(pack_frames(labels, segments, &frames).into()),
    ));
    file_bytes(o, st, SEGMENTATION_STORAGE, &sop_uid)
}

/// (segment index, slice) of every frame: segment-major, only slices the segment touches.
fn segment_frames(labels: &Volume<u16>, segments: &[Segment]) -> Vec<(usize, usize)> {
    let [nx, ny, _] = labels.grid.dims;
    let slabs: Vec<&[u16]> = labels.data.chunks(nx * ny).collect();
    segments
        .iter()
        .enumerate()
        .flat_map(|(si, s)| {
            slabs
                .iter()
                .enumerate()
                .filter(|(_, slab)| slab.contains(&s.value))
                .map(move |(k, _)| (si, k))
        })
        .collect()
}

/// SOP, series, content and image-pixel attributes of a binary SEG.
fn put_seg_header(
    o: &mut InMemDicomObject,
    st: &StudyInfo,
    seg_key: &str,
    series_number: u32,
    sop_uid: &str,
    g: &crate::volume::Grid,
    frames: usize,
) {
    put_str(o, tags::SOP_CLASS_UID, VR::UI, SEGMENTATION_STORAGE);
    put_str(o, tags::SOP_INSTANCE_UID, VR::UI, sop_uid);
    put_str(o, tags::MODALITY, VR::CS, "SEG");
    put_str(
        o,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        st.uid(&["seg", seg_key]),
    );
    put_str(o, tags::SERIES_NUMBER, VR::IS, is(series_number as i64));
    put_str(
        o,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        truncate(&format!("SYNTHETIC labels {seg_key}"), 64),
    );
    put_str(o, tags::INSTANCE_NUMBER, VR::IS, "1");
    put_str(o, tags::IMAGE_TYPE, VR::CS, "DERIVED\\PRIMARY");
    put_str(o, tags::CONTENT_DATE, VR::DA, CONTENT_DATE);
    put_str(o, tags::CONTENT_TIME, VR::TM, CONTENT_TIME);
    put_str(o, tags::CONTENT_LABEL, VR::CS, "LABELS");
    put_str(
        o,
        tags::CONTENT_DESCRIPTION,
        VR::LO,
        "SYNTHETIC ground-truth label map of a synthcohort subject",
    );
    put_str(o, tags::CONTENT_CREATOR_NAME, VR::PN, "");
    put_str(
        o,
        tags::IMAGE_COMMENTS,
        VR::LT,
        "SYNTHETIC: the labels this subject's images were generated from",
    );
    put_str(o, tags::SEGMENTATION_TYPE, VR::CS, "BINARY");
    put_str(o, tags::SEGMENTS_OVERLAP, VR::CS, "NO");
    put_pixel_module(o, g, 1, false);
    put_str(o, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
    put_str(o, tags::PRESENTATION_LUT_SHAPE, VR::CS, "IDENTITY");
    put_str(o, tags::NUMBER_OF_FRAMES, VR::IS, is(frames as i64));
}

/// Referenced Series Sequence: every instance of the segmented series.
fn put_references(o: &mut InMemDicomObject, source: &SourceSeries) {
    let refs: Vec<InMemDicomObject> = source
        .instance_uids
        .iter()
        .map(|u| sop_ref(source.sop_class_uid, u))
        .collect();
    let mut series_ref = InMemDicomObject::new_empty();
    put_seq(&mut series_ref, tags::REFERENCED_INSTANCE_SEQUENCE, refs);
    put_str(
        &mut series_ref,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        source.series_uid,
    );
    put_seq(o, tags::REFERENCED_SERIES_SEQUENCE, vec![series_ref]);
}

/// Two dimensions: the referenced segment, then the plane position.
fn put_dimensions(o: &mut InMemDicomObject, org_uid: &str) {
    let mut org = InMemDicomObject::new_empty();
    put_str(&mut org, tags::DIMENSION_ORGANIZATION_UID, VR::UI, org_uid);
    put_seq(o, tags::DIMENSION_ORGANIZATION_SEQUENCE, vec![org]);
    let dim = |index: dicom_core::Tag, group: dicom_core::Tag, label: &str| {
        let mut d = InMemDicomObject::new_empty();
        put_str(&mut d, tags::DIMENSION_ORGANIZATION_UID, VR::UI, org_uid);
        d.put(DataElement::new(
            tags::DIMENSION_INDEX_POINTER,
            VR::AT,
            PrimitiveValue::Tags(vec![index].into()),
        ));
        d.put(DataElement::new(
            tags::FUNCTIONAL_GROUP_POINTER,
            VR::AT,
            PrimitiveValue::Tags(vec![group].into()),
        ));
        put_str(&mut d, tags::DIMENSION_DESCRIPTION_LABEL, VR::LO, label);
        d
    };
    put_seq(
        o,
        tags::DIMENSION_INDEX_SEQUENCE,
        vec![
            dim(
                tags::REFERENCED_SEGMENT_NUMBER,
                tags::SEGMENT_IDENTIFICATION_SEQUENCE,
                "Referenced Segment Number",
            ),
            dim(
                tags::IMAGE_POSITION_PATIENT,
                tags::PLANE_POSITION_SEQUENCE,
                "Image Position Patient",
            ),
        ],
    );
}

/// Orientation and pixel measures every frame shares.
fn shared_groups(g: &crate::volume::Grid) -> InMemDicomObject {
    let mut shared = InMemDicomObject::new_empty();
    let mut orient = InMemDicomObject::new_empty();
    put_str(
        &mut orient,
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        ds_multi(&IMAGE_ORIENTATION),
    );
    put_seq(&mut shared, tags::PLANE_ORIENTATION_SEQUENCE, vec![orient]);
    let mut measures = InMemDicomObject::new_empty();
    put_pixel_measures(&mut measures, g);
    put_seq(&mut shared, tags::PIXEL_MEASURES_SEQUENCE, vec![measures]);
    shared
}

/// One frame's functional groups: its source slice, dimension indices, position, segment.
fn frame_item(
    source: &SourceSeries,
    si: usize,
    k: usize,
    g: &crate::volume::Grid,
) -> InMemDicomObject {
    let mut f = InMemDicomObject::new_empty();
    let mut src = sop_ref(source.sop_class_uid, &source.instance_uids[k]);
    put_str(&mut src, tags::SPATIAL_LOCATIONS_PRESERVED, VR::CS, "YES");
    put_seq(
        &mut src,
        tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
        vec![code_item(
            "121322",
            "DCM",
            "Source image for image processing operation",
        )],
    );
    let mut deriv = InMemDicomObject::new_empty();
    put_seq(&mut deriv, tags::SOURCE_IMAGE_SEQUENCE, vec![src]);
    put_seq(
        &mut deriv,
        tags::DERIVATION_CODE_SEQUENCE,
        vec![code_item("113076", "DCM", "Segmentation")],
    );
    put_seq(&mut f, tags::DERIVATION_IMAGE_SEQUENCE, vec![deriv]);
    let mut content = InMemDicomObject::new_empty();
    content.put(DataElement::new(
        tags::DIMENSION_INDEX_VALUES,
        VR::UL,
        PrimitiveValue::U32(vec![si as u32 + 1, k as u32 + 1].into()),
    ));
    put_seq(&mut f, tags::FRAME_CONTENT_SEQUENCE, vec![content]);
    let mut pos = InMemDicomObject::new_empty();
    put_str(
        &mut pos,
        tags::IMAGE_POSITION_PATIENT,
        VR::DS,
        ds_multi(&image_position(g, k)),
    );
    put_seq(&mut f, tags::PLANE_POSITION_SEQUENCE, vec![pos]);
    let mut ident = InMemDicomObject::new_empty();
    put_u16(&mut ident, tags::REFERENCED_SEGMENT_NUMBER, si as u16 + 1);
    put_seq(&mut f, tags::SEGMENT_IDENTIFICATION_SEQUENCE, vec![ident]);
    f
}

/// Binary frames bit-packed back to back (first pixel in the lowest bit), with no padding
/// between frames, the whole padded to an even length (PS3.5 §8.1.1).
fn pack_frames(labels: &Volume<u16>, segments: &[Segment], frames: &[(usize, usize)]) -> Vec<u8> {
    let g = &labels.grid;
    let [nx, ny, _] = g.dims;
    let mut px = vec![0u8; (frames.len() * nx * ny).div_ceil(8).next_multiple_of(2)];
    let mut bit = 0usize;
    for &(si, k) in frames {
        let v = segments[si].value;
        for r in 0..ny {
            for c in 0..nx {
                if labels.data[voxel_of_pixel(g, r, c, k)] == v {
                    px[bit / 8] |= 1 << (bit % 8);
                }
                bit += 1;
            }
        }
    }
    px
}

fn sop_ref(class: &str, instance: &str) -> InMemDicomObject {
    let mut r = InMemDicomObject::new_empty();
    put_str(&mut r, tags::REFERENCED_SOP_CLASS_UID, VR::UI, class);
    put_str(&mut r, tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, instance);
    r
}

fn segment_item(number: u16, s: &Segment, version: &str) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    put_seq(
        &mut o,
        tags::SEGMENTED_PROPERTY_CATEGORY_CODE_SEQUENCE,
        vec![s.category.item()],
    );
    put_u16(&mut o, tags::SEGMENT_NUMBER, number);
    put_str(&mut o, tags::SEGMENT_LABEL, VR::LO, truncate(&s.label, 64));
    let mut alg = InMemDicomObject::new_empty();
    // The labels are the ground truth the images were simulated from: a deformed atlas or
    // phantom, not a segmentation of an image.
    put_seq(
        &mut alg,
        tags::ALGORITHM_FAMILY_CODE_SEQUENCE,
        vec![code_item("123111", "DCM", "Deformable Models")],
    );
    put_str(&mut alg, tags::ALGORITHM_VERSION, VR::LO, version);
    put_str(&mut alg, tags::ALGORITHM_NAME, VR::LO, "synthcohort");
    put_seq(
        &mut o,
        tags::SEGMENTATION_ALGORITHM_IDENTIFICATION_SEQUENCE,
        vec![alg],
    );
    put_str(&mut o, tags::SEGMENT_ALGORITHM_TYPE, VR::CS, "AUTOMATIC");
    put_str(&mut o, tags::SEGMENT_ALGORITHM_NAME, VR::LO, "synthcohort");
    let mut kind = s.kind.item();
    if let Some(m) = &s.modifier {
        put_seq(
            &mut kind,
            tags::SEGMENTED_PROPERTY_TYPE_MODIFIER_CODE_SEQUENCE,
            vec![m.item()],
        );
    }
    put_seq(
        &mut o,
        tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE,
        vec![kind],
    );
    o.put(DataElement::new(
        tags::RECOMMENDED_DISPLAY_CIE_LAB_VALUE,
        VR::US,
        PrimitiveValue::U16(cielab(s.rgb).to_vec().into()),
    ));
    o
}

/// sRGB (D65) → CIELab scaled to DICOM's 0..65535 (PS3.3 C.10.7.1.1).
fn cielab(rgb: [u8; 3]) -> [u16; 3] {
    let lin = |c: u8| {
        let c = c as f64 / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let [r, g, b] = rgb.map(lin);
    let x = 0.4124 * r + 0.3576 * g + 0.1805 * b;
    let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    let z = 0.0193 * r + 0.1192 * g + 0.9505 * b;
    let f = |t: f64| {
        if t > (6.0f64 / 29.0).powi(3) {
            t.cbrt()
        } else {
            t / (3.0 * (6.0f64 / 29.0).powi(2)) + 4.0 / 29.0
        }
    };
    let (fx, fy, fz) = (f(x / 0.95047), f(y), f(z / 1.08883));
    let l = 116.0 * fy - 16.0;
    let a = 500.0 * (fx - fy);
    let bb = 200.0 * (fy - fz);
    [
        (l / 100.0 * 65535.0).round().clamp(0.0, 65535.0) as u16,
        ((a + 128.0) / 255.0 * 65535.0).round().clamp(0.0, 65535.0) as u16,
        ((bb + 128.0) / 255.0 * 65535.0).round().clamp(0.0, 65535.0) as u16,
    ]
}
