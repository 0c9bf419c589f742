//! CT Image Storage and MR Image Storage series: one file per axial slice.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::*;
use crate::volume::Volume;

/// What DICOM's CT Image module records about a CT acquisition.
#[derive(Clone, Debug, PartialEq)]
pub struct CtAttributes {
    pub kvp: f64,
    /// Tube current–time product per rotation, mAs (Exposure).
    pub exposure_mas: f64,
    /// Gantry revolution time, s.
    pub revolution_time_s: f64,
    /// Reconstruction kernel as the pipeline names it.
    pub kernel: String,
    /// Bowtie and added filtration, e.g. `BOWTIE MEDIUM, 0.1 MM CU`.
    pub filter_type: String,
    /// Diameter of the scan field (the circle every view covers), mm.
    pub data_collection_diameter_mm: f64,
    /// Side of the square reconstructed field, mm.
    pub reconstruction_diameter_mm: f64,
    pub source_to_isocentre_mm: f64,
    pub source_to_detector_mm: f64,
    /// Helical pitch factor; `None` for axial and circular cone-beam scans.
    pub spiral_pitch: Option<f64>,
    /// Width of one detector row at isocentre and of all rows together, mm.
    pub single_collimation_mm: f64,
    pub total_collimation_mm: f64,
    pub ctdi_vol_mgy: f64,
    pub focal_spot_mm: f64,
    /// Contrast phase (`native`, `arterial`, …): Contrast/Bolus Agent when not native.
    pub contrast_phase: String,
}

/// What DICOM's MR Image module records about an MR acquisition.
#[derive(Clone, Debug, PartialEq)]
pub struct MrAttributes {
    /// Scanning Sequence (0018,0020) values: `SE`, `GR`, `IR`, `EP`.
    pub scanning_sequence: Vec<&'static str>,
    /// Sequence Variant (0018,0021) values: `SK`, `SP`, `MP`, `SS`, `NONE`, ….
    pub sequence_variant: Vec<&'static str>,
    /// Scan Options (0018,0022) values, possibly empty (`PFP`, `FS`, …).
    pub scan_options: Vec<&'static str>,
    /// `2D` or `3D`.
    pub acquisition_type: &'static str,
    pub sequence_name: String,
    pub tr_ms: f64,
    pub te_ms: f64,
    pub ti_ms: Option<f64>,
    pub flip_deg: f64,
    pub field_t: f64,
    /// ¹H resonance at the field, MHz.
    pub imaging_frequency_mhz: f64,
    pub echo_train_length: u32,
    pub averages: f64,
    pub pixel_bandwidth_hz: f64,
    pub receive_coil: String,
    /// Acquisition Matrix (0018,1310): frequency rows, frequency columns, phase rows, phase
    /// columns (two of the four are zero).
    pub acquisition_matrix: [u16; 4],
    /// In-plane phase encoding direction, `ROW` or `COL`.
    pub phase_direction: &'static str,
    pub phase_encoding_steps: u32,
    /// Fraction of phase lines acquired, %.
    pub percent_sampling: f64,
    pub percent_phase_fov: f64,
    /// Diffusion b-value, s/mm² (DWI arms).
    pub b_value: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SeriesAcquisition {
    Ct(CtAttributes),
    Mr(MrAttributes),
}

/// One encoded slice of a series.
#[derive(Clone, Debug)]
pub struct SeriesSlice {
    /// File name within the series folder (`IM000001.dcm`, in slice order).
    pub file_name: String,
    pub sop_instance_uid: String,
    pub bytes: Vec<u8>,
}

/// Series Instance UID of a subject's arm.
pub fn series_uid(st: &StudyInfo, arm: &str) -> String {
    st.uid(&["series", arm])
}

/// SOP Instance UID of slice `k` of an arm's series.
pub fn slice_uid(st: &StudyInfo, arm: &str, k: usize) -> String {
    st.uid(&["series", arm, "slice", &k.to_string()])
}

/// Stored value = round(value / slope) in int16; CT keeps HU (slope 1), MR spreads the
/// series' largest magnitude over ±32000. The slope is what the DS string says, so a reader
/// multiplying by it gets back exactly what was quantised.
fn rescale_slope(vol: &Volume<f32>, acq: &SeriesAcquisition) -> f64 {
    match acq {
        SeriesAcquisition::Ct(_) => 1.0,
        SeriesAcquisition::Mr(_) => {
            let max = vol
                .data
                .iter()
                .filter(|v| v.is_finite())
                .fold(0.0f64, |m, &v| m.max((v as f64).abs()));
            let slope: f64 = ds(max / 32000.0).parse().unwrap_or(1.0);
            if max > 0.0 && slope.is_finite() && slope > 0.0 {
                slope
            } else {
                1.0
            }
        }
    }
}

/// Encodes `vol` as one DICOM file per axial slice, inferior to superior.
pub fn encode_series(
    vol: &Volume<f32>,
    st: &StudyInfo,
    arm: &str,
    series_number: u32,
    series_description: &str,
    acq: &SeriesAcquisition,
) -> Result<Vec<SeriesSlice>, IoError> {
    let g = &vol.grid;
    let [nx, ny, nz] = g.dims;
    if nx > u16::MAX as usize || ny > u16::MAX as usize {
        return Err(IoError::encode(
            "DICOM series",
            format!("{nx} × {ny} pixels exceed DICOM's 65535 rows or columns"),
        ));
    }
    let slope = rescale_slope(vol, acq);
    let (sop_class, modality) = match acq {
        SeriesAcquisition::Ct(_) => (CT_IMAGE_STORAGE, "CT"),
        SeriesAcquisition::Mr(_) => (MR_IMAGE_STORAGE, "MR"),
    };
    let series = series_uid(st, arm);
    let mut base = InMemDicomObject::new_empty();
    put_common(&mut base, st);
    put_str(&mut base, tags::SOP_CLASS_UID, VR::UI, sop_class);
    put_str(&mut base, tags::MODALITY, VR::CS, modality);
    put_str(&mut base, tags::SERIES_INSTANCE_UID, VR::UI, series);
    put_str(
        &mut base,
        tags::SERIES_NUMBER,
        VR::IS,
        is(series_number as i64),
    );
    put_str(
        &mut base,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        truncate(&format!("SYNTHETIC {series_description}"), 64),
    );
    put_str(&mut base, tags::PATIENT_POSITION, VR::CS, "HFS");
    // Laterality (type 2C) stays empty: the series images the trunk or head, not one side.
    put_str(&mut base, tags::LATERALITY, VR::CS, "");
    // Value 3 has defined terms per IOD: AXIAL for CT; none of MR's (maps, subtractions,
    // projections) fits a plain image, so OTHER.
    let image_type = match acq {
        SeriesAcquisition::Ct(_) => "DERIVED\\PRIMARY\\AXIAL",
        SeriesAcquisition::Mr(_) => "DERIVED\\PRIMARY\\OTHER",
    };
    put_str(&mut base, tags::IMAGE_TYPE, VR::CS, image_type);
    put_str(
        &mut base,
        tags::IMAGE_COMMENTS,
        VR::LT,
        format!(
            "SYNTHETIC image made by synthcohort {} (arm {arm}); not a patient",
            st.software_version
        ),
    );
    put_str(&mut base, tags::ACQUISITION_NUMBER, VR::IS, "1");
    put_pixel_measures(&mut base, g);
    put_str(
        &mut base,
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        ds_multi(&IMAGE_ORIENTATION),
    );
    put_pixel_module(&mut base, g, 16, true);
    put_str(&mut base, tags::RESCALE_INTERCEPT, VR::DS, "0");
    put_str(&mut base, tags::RESCALE_SLOPE, VR::DS, ds(slope));
    match acq {
        SeriesAcquisition::Ct(ct) => {
            put_str(&mut base, tags::RESCALE_TYPE, VR::LO, "HU");
            put_ct(&mut base, ct);
            put_str(&mut base, tags::WINDOW_CENTER, VR::DS, "40");
            put_str(&mut base, tags::WINDOW_WIDTH, VR::DS, "400");
        }
        SeriesAcquisition::Mr(mr) => {
            // No window: MR signal is in arbitrary units (often < 1 here, and a window width
            // below 1 is not allowed); viewers window MR from the pixel range.
            put_mr(&mut base, mr);
        }
    }
    let mut out = Vec::with_capacity(nz);
    for k in 0..nz {
        let mut o = base.clone();
        let uid = slice_uid(st, arm, k);
        put_str(&mut o, tags::SOP_INSTANCE_UID, VR::UI, uid.clone());
        put_str(&mut o, tags::INSTANCE_NUMBER, VR::IS, is(k as i64 + 1));
        let ipp = image_position(g, k);
        put_str(&mut o, tags::IMAGE_POSITION_PATIENT, VR::DS, ds_multi(&ipp));
        put_str(&mut o, tags::SLICE_LOCATION, VR::DS, ds(ipp[2]));
        let mut px: Vec<u16> = Vec::with_capacity(nx * ny);
        for r in 0..ny {
            for c in 0..nx {
                let v = vol.data[voxel_of_pixel(g, r, c, k)] as f64 / slope;
                let q = if v.is_finite() {
                    v.round().clamp(-32768.0, 32767.0)
                } else {
                    0.0
                };
                px.push(q as i16 as u16);
            }
        }
        o.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(px.into()),
        ));
        out.push(SeriesSlice {
            file_name: format!("IM{:06}.dcm", k + 1),
            bytes: file_bytes(o, st, sop_class, &uid)?,
            sop_instance_uid: uid,
        });
    }
    Ok(out)
}

fn put_ct(o: &mut InMemDicomObject, ct: &CtAttributes) {
    put_str(o, tags::KVP, VR::DS, ds(ct.kvp));
    put_str(
        o,
        tags::SCAN_OPTIONS,
        VR::CS,
        if ct.spiral_pitch.is_some() {
            "HELICAL"
        } else {
            "AXIAL"
        },
    );
    put_str(
        o,
        tags::DATA_COLLECTION_DIAMETER,
        VR::DS,
        ds(ct.data_collection_diameter_mm),
    );
    put_str(
        o,
        tags::RECONSTRUCTION_DIAMETER,
        VR::DS,
        ds(ct.reconstruction_diameter_mm),
    );
    put_str(
        o,
        tags::DISTANCE_SOURCE_TO_DETECTOR,
        VR::DS,
        ds(ct.source_to_detector_mm),
    );
    put_str(
        o,
        tags::DISTANCE_SOURCE_TO_PATIENT,
        VR::DS,
        ds(ct.source_to_isocentre_mm),
    );
    put_str(o, tags::GANTRY_DETECTOR_TILT, VR::DS, "0");
    put_str(o, tags::ROTATION_DIRECTION, VR::CS, "CW");
    let time_ms = ct.revolution_time_s * 1000.0;
    put_str(o, tags::EXPOSURE_TIME, VR::IS, is(time_ms.round() as i64));
    put_str(
        o,
        tags::X_RAY_TUBE_CURRENT,
        VR::IS,
        is((ct.exposure_mas / ct.revolution_time_s).round() as i64),
    );
    put_str(
        o,
        tags::EXPOSURE,
        VR::IS,
        is(ct.exposure_mas.round() as i64),
    );
    put_str(o, tags::FILTER_TYPE, VR::SH, truncate(&ct.filter_type, 16));
    put_str(o, tags::FOCAL_SPOTS, VR::DS, ds(ct.focal_spot_mm));
    put_str(
        o,
        tags::CONVOLUTION_KERNEL,
        VR::SH,
        truncate(&ct.kernel, 16),
    );
    o.put(DataElement::new(
        tags::REVOLUTION_TIME,
        VR::FD,
        PrimitiveValue::from(ct.revolution_time_s),
    ));
    o.put(DataElement::new(
        tags::SINGLE_COLLIMATION_WIDTH,
        VR::FD,
        PrimitiveValue::from(ct.single_collimation_mm),
    ));
    o.put(DataElement::new(
        tags::TOTAL_COLLIMATION_WIDTH,
        VR::FD,
        PrimitiveValue::from(ct.total_collimation_mm),
    ));
    if let Some(p) = ct.spiral_pitch {
        o.put(DataElement::new(
            tags::SPIRAL_PITCH_FACTOR,
            VR::FD,
            PrimitiveValue::from(p),
        ));
        o.put(DataElement::new(
            tags::TABLE_FEED_PER_ROTATION,
            VR::FD,
            PrimitiveValue::from(p * ct.total_collimation_mm),
        ));
    }
    o.put(DataElement::new(
        tags::CTD_IVOL,
        VR::FD,
        PrimitiveValue::from(ct.ctdi_vol_mgy),
    ));
    // The engine's CTDIvol is that of the 32 cm body phantom (acquire::ct::ctdi).
    put_seq(
        o,
        tags::CTDI_PHANTOM_TYPE_CODE_SEQUENCE,
        vec![code_item("113691", "DCM", "IEC Body Dosimetry Phantom")],
    );
    if ct.contrast_phase != "native" {
        put_str(
            o,
            tags::CONTRAST_BOLUS_AGENT,
            VR::LO,
            "iodinated contrast (simulated)",
        );
        put_str(o, tags::CONTRAST_BOLUS_ROUTE, VR::LO, "IV");
        put_str(o, tags::ACQUISITION_CONTRAST, VR::CS, "UNKNOWN");
    }
}

fn put_mr(o: &mut InMemDicomObject, mr: &MrAttributes) {
    put_str(
        o,
        tags::SCANNING_SEQUENCE,
        VR::CS,
        mr.scanning_sequence.join("\\"),
    );
    put_str(
        o,
        tags::SEQUENCE_VARIANT,
        VR::CS,
        mr.sequence_variant.join("\\"),
    );
    put_str(o, tags::SCAN_OPTIONS, VR::CS, mr.scan_options.join("\\"));
    put_str(o, tags::MR_ACQUISITION_TYPE, VR::CS, mr.acquisition_type);
    put_str(
        o,
        tags::SEQUENCE_NAME,
        VR::SH,
        truncate(&mr.sequence_name, 16),
    );
    put_str(o, tags::ANGIO_FLAG, VR::CS, "N");
    put_str(o, tags::REPETITION_TIME, VR::DS, ds(mr.tr_ms));
    put_str(o, tags::ECHO_TIME, VR::DS, ds(mr.te_ms));
    if let Some(ti) = mr.ti_ms {
        put_str(o, tags::INVERSION_TIME, VR::DS, ds(ti));
    }
    put_str(o, tags::NUMBER_OF_AVERAGES, VR::DS, ds(mr.averages));
    put_str(
        o,
        tags::IMAGING_FREQUENCY,
        VR::DS,
        ds(mr.imaging_frequency_mhz),
    );
    put_str(o, tags::IMAGED_NUCLEUS, VR::SH, "1H");
    put_str(o, tags::ECHO_NUMBERS, VR::IS, "1");
    put_str(o, tags::MAGNETIC_FIELD_STRENGTH, VR::DS, ds(mr.field_t));
    put_str(
        o,
        tags::NUMBER_OF_PHASE_ENCODING_STEPS,
        VR::IS,
        is(mr.phase_encoding_steps as i64),
    );
    put_str(
        o,
        tags::ECHO_TRAIN_LENGTH,
        VR::IS,
        is(mr.echo_train_length as i64),
    );
    put_str(o, tags::PERCENT_SAMPLING, VR::DS, ds(mr.percent_sampling));
    put_str(
        o,
        tags::PERCENT_PHASE_FIELD_OF_VIEW,
        VR::DS,
        ds(mr.percent_phase_fov),
    );
    put_str(o, tags::PIXEL_BANDWIDTH, VR::DS, ds(mr.pixel_bandwidth_hz));
    put_str(
        o,
        tags::RECEIVE_COIL_NAME,
        VR::SH,
        truncate(&mr.receive_coil, 16),
    );
    put_str(o, tags::TRANSMIT_COIL_NAME, VR::SH, "BODY");
    o.put(DataElement::new(
        tags::ACQUISITION_MATRIX,
        VR::US,
        PrimitiveValue::U16(mr.acquisition_matrix.to_vec().into()),
    ));
    put_str(
        o,
        tags::IN_PLANE_PHASE_ENCODING_DIRECTION,
        VR::CS,
        mr.phase_direction,
    );
    put_str(o, tags::FLIP_ANGLE, VR::DS, ds(mr.flip_deg));
    put_str(o, tags::VARIABLE_FLIP_ANGLE_FLAG, VR::CS, "N");
    if let Some(b) = mr.b_value {
        o.put(DataElement::new(
            tags::DIFFUSION_B_VALUE,
            VR::FD,
            PrimitiveValue::from(b),
        ));
    }
}
