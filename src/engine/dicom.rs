//! `outputs.dicom`: a subject's arms as DICOM series plus a SEG of their labels, in
//! `dicom/<subject>/<arm>/IM*.dcm` and `dicom/<subject>/labels_<arm>.dcm`.

use super::*;
use crate::acquire::ct::protocol::{Bowtie, CtProtocol, Kernel, ScanMode};
use crate::acquire::mri::protocol::{MriProtocol, ReadoutAxis, Sequence};
use crate::anatomy::snomed;
use crate::io::dicom::{self, Coded, CtAttributes, MrAttributes, SeriesAcquisition, StudyInfo};

/// The simulator has no time axis, so DICOM's X-Ray Tube Current and Exposure Time are
/// written for this revolution time (a typical body CT rotation), with Exposure (mAs) the
/// protocol's own.
const NOMINAL_REVOLUTION_S: f64 = 0.5;

/// Series Number of an arm's image series (arm order from 1) and of its SEG.
fn series_numbers(arm_index: usize) -> (u32, u32) {
    (arm_index as u32 + 1, 100 + arm_index as u32 + 1)
}

pub(super) fn study_info(p: &Resolved, subj: &Subject) -> StudyInfo {
    StudyInfo {
        uid_root: p
            .spec
            .outputs
            .dicom_uid_root
            .clone()
            .unwrap_or_else(|| dicom::DEFAULT_UID_ROOT.to_string()),
        pipeline_sha256: p.sha256.clone(),
        subject_id: subj.id.clone(),
        sex: if subj.sex == anatomy::Sex::Female {
            'F'
        } else {
            'M'
        },
        age_years: subj.age,
        study_description: format!("SYNTHETIC {}", p.spec.name),
        software_version: crate::VERSION.to_string(),
    }
}

/// The DICOM description of an arm, or None for `modality: none` (property maps are not
/// images a scanner makes: NIfTI only).
pub(super) fn acquisition(
    arm: &Protocol,
    image: &Volume<f32>,
    ctdi_vol_mgy: f64,
) -> Option<SeriesAcquisition> {
    match arm {
        Protocol::None { .. } => None,
        Protocol::Ct(ct) => Some(SeriesAcquisition::Ct(ct_attributes(
            ct,
            image,
            ctdi_vol_mgy,
        ))),
        Protocol::Mri(m) => Some(SeriesAcquisition::Mr(mr_attributes(m))),
    }
}

fn ct_attributes(ct: &CtProtocol, image: &Volume<f32>, ctdi_vol_mgy: f64) -> CtAttributes {
    let kernel = match ct.kernel {
        Kernel::Ramp => "RAMP".to_string(),
        Kernel::SheppLogan => "SHEPP-LOGAN".to_string(),
        Kernel::Smooth => "SMOOTH".to_string(),
        Kernel::Standard => "STANDARD".to_string(),
        Kernel::Sharp => "SHARP".to_string(),
        Kernel::Mtf50LpCm(v) => format!("MTF50 {v:.1}LP/CM"),
    };
    let bowtie = match ct.bowtie {
        Bowtie::None => "FLAT",
        Bowtie::Small => "BOWTIE S",
        Bowtie::Medium => "BOWTIE M",
        Bowtie::Large => "BOWTIE L",
    };
    let filter_type = if ct.filtration_mm_cu > 0.0 {
        format!("{bowtie} {}CU", dicom_mm(ct.filtration_mm_cu))
    } else {
        bowtie.to_string()
    };
    CtAttributes {
        kvp: ct.kvp,
        exposure_mas: ct.mas,
        revolution_time_s: NOMINAL_REVOLUTION_S,
        kernel,
        filter_type,
        data_collection_diameter_mm: 2.0 * ct.scan_field_radius_mm(),
        reconstruction_diameter_mm: image.grid.extent_mm()[0],
        source_to_isocentre_mm: ct.sid_mm,
        source_to_detector_mm: ct.sdd_mm,
        spiral_pitch: (ct.scan_mode == ScanMode::Helical).then_some(ct.pitch),
        single_collimation_mm: ct.pixel_mm,
        total_collimation_mm: ct.pixel_mm * ct.detector_rows as f64,
        ctdi_vol_mgy,
        focal_spot_mm: ct.focal_spot_mm,
        contrast_phase: format!("{:?}", ct.contrast.phase).to_lowercase(),
    }
}

fn dicom_mm(v: f64) -> String {
    format!("{v:.1}")
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}

fn mr_attributes(m: &MriProtocol) -> MrAttributes {
    let fse = m.etl > 1;
    let (scanning, variant): (Vec<&'static str>, Vec<&'static str>) = match m.sequence {
        Sequence::SpinEcho if m.epi => (vec!["SE", "EP"], vec!["SK"]),
        Sequence::SpinEcho => (vec!["SE"], vec![if fse { "SK" } else { "NONE" }]),
        Sequence::SpoiledGre if m.epi => (vec!["GR", "EP"], vec!["SK", "SP"]),
        Sequence::SpoiledGre => (vec!["GR"], vec!["SP"]),
        Sequence::InversionRecovery | Sequence::Flair | Sequence::Stir => {
            (vec!["IR", "SE"], vec![if fse { "SK" } else { "NONE" }])
        }
        Sequence::Mprage => (vec!["GR", "IR"], vec!["SK", "SP", "MP"]),
        Sequence::Bssfp => (vec!["GR"], vec!["SS"]),
        Sequence::Dwi => (vec!["SE", "EP"], vec!["SK"]),
    };
    let ir = matches!(
        m.sequence,
        Sequence::InversionRecovery | Sequence::Flair | Sequence::Stir | Sequence::Mprage
    );
    let (freq, phase, dir, fov_freq, fov_phase) = match m.readout {
        ReadoutAxis::X => (m.matrix[0], m.matrix[1], "COL", m.fov_mm[0], m.fov_mm[1]),
        ReadoutAxis::Y => (m.matrix[1], m.matrix[0], "ROW", m.fov_mm[1], m.fov_mm[0]),
    };
    let acquisition_matrix = if dir == "COL" {
        [freq as u16, 0, 0, phase as u16]
    } else {
        [0, freq as u16, phase as u16, 0]
    };
    let r = m.undersampling.as_ref().map_or(1.0, |u| u.factor);
    let sampled = m.partial_fourier / r;
    let mut scan_options = Vec::new();
    if m.partial_fourier < 1.0 {
        scan_options.push("PFP");
    }
    MrAttributes {
        scanning_sequence: scanning,
        sequence_variant: variant,
        scan_options,
        acquisition_type: if m.sequence == Sequence::Mprage {
            "3D"
        } else {
            "2D"
        },
        sequence_name: format!("{:?}", m.sequence).to_lowercase(),
        tr_ms: m.tr_ms,
        te_ms: m.te_ms,
        ti_ms: if ir { m.ti_ms } else { None },
        flip_deg: m.flip_deg,
        field_t: m.field_t,
        imaging_frequency_mhz: m.field_t * crate::acquire::mri::protocol::GAMMA_MHZ_PER_T,
        echo_train_length: m.etl as u32,
        averages: m.nex as f64,
        pixel_bandwidth_hz: m.bandwidth_hz_per_px,
        receive_coil: format!("{}CH ARRAY", m.coils),
        acquisition_matrix,
        phase_direction: dir,
        phase_encoding_steps: (phase as f64 * sampled).round() as u32,
        percent_sampling: 100.0 * sampled,
        percent_phase_fov: 100.0 * fov_phase / fov_freq,
        b_value: (m.sequence == Sequence::Dwi).then_some(m.b_value_s_mm2),
    }
}

fn coded(c: snomed::Code) -> Coded {
    Coded::new(c.value, c.scheme, c.meaning)
}

fn segment_from(
    value: u16,
    label: String,
    c: snomed::SegmentCodes,
    rgb: [u8; 3],
) -> dicom::Segment {
    dicom::Segment {
        value,
        label,
        category: coded(c.category),
        kind: coded(c.kind),
        modifier: c.modifier.map(coded),
        rgb,
    }
}

/// One segment per label value present in `labels`: organs by their ontology codes, lesions
/// (`lesion_<n>`, parts `lesion_<n>_<part>`) by their kind's.
pub(super) fn segments(
    labels: &Volume<u16>,
    lesions: &[anatomy::LesionRecord],
) -> Vec<dicom::Segment> {
    let mut present = vec![false; u16::MAX as usize + 1];
    for &v in &labels.data {
        present[v as usize] = true;
    }
    let mut out = Vec::new();
    for l in ontology::ontology() {
        if !present[l.id as usize] {
            continue;
        }
        if let Some(c) = snomed::codes_for_label(l.name) {
            out.push(segment_from(l.id, l.name.to_string(), c, l.color));
        }
    }
    for (n, l) in lesions.iter().enumerate() {
        if present[l.label_id as usize] {
            out.push(segment_from(
                l.label_id,
                format!("lesion_{} ({})", n + 1, l.condition),
                snomed::codes_for_lesion(&l.kind),
                lesion_colour(n as u16 + 1),
            ));
        }
        for part in &l.parts {
            if present[part.label_id as usize] {
                out.push(segment_from(
                    part.label_id,
                    format!("lesion_{}_{}", n + 1, part.part.name()),
                    snomed::codes_for_lesion_part(part.part.name()),
                    lesion_colour(n as u16 + 1),
                ));
            }
        }
    }
    out
}

/// Encodes an arm's series and the SEG of its labels; (relative path, bytes) of each file.
pub(super) fn encode_arm(
    st: &StudyInfo,
    arm_index: usize,
    arm_name: &str,
    acq: &SeriesAcquisition,
    image: &Volume<f32>,
    labels: &Volume<u16>,
    lesions: &[anatomy::LesionRecord],
) -> Result<Vec<(String, Vec<u8>)>, io::IoError> {
    let (image_series, seg_series) = series_numbers(arm_index);
    let slices = dicom::encode_series(image, st, arm_name, image_series, arm_name, acq)?;
    let uids: Vec<String> = slices.iter().map(|s| s.sop_instance_uid.clone()).collect();
    let sop_class = match acq {
        SeriesAcquisition::Ct(_) => dicom::CT_IMAGE_STORAGE,
        SeriesAcquisition::Mr(_) => dicom::MR_IMAGE_STORAGE,
    };
    let mut files: Vec<(String, Vec<u8>)> = Vec::with_capacity(slices.len() + 1);
    let segs = segments(labels, lesions);
    if !segs.is_empty() {
        let seg = dicom::encode_seg(
            labels,
            &segs,
            st,
            arm_name,
            seg_series,
            &dicom::SourceSeries {
                series_uid: &dicom::image::series_uid(st, arm_name),
                sop_class_uid: sop_class,
                instance_uids: &uids,
            },
        )?;
        files.push((
            format!("dicom/{}/labels_{arm_name}.dcm", st.subject_id),
            seg,
        ));
    }
    for s in slices {
        files.push((
            format!("dicom/{}/{arm_name}/{}", st.subject_id, s.file_name),
            s.bytes,
        ));
    }
    Ok(files)
}
