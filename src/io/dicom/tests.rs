use super::*;
use crate::volume::{Grid, Volume};

fn study() -> StudyInfo {
    StudyInfo {
        uid_root: DEFAULT_UID_ROOT.into(),
        pipeline_sha256: "ab".repeat(32),
        subject_id: "sub-00007".into(),
        sex: 'F',
        age_years: 61.4,
        study_description: "test".into(),
        software_version: "0.2.0".into(),
    }
}

fn ct() -> SeriesAcquisition {
    SeriesAcquisition::Ct(CtAttributes {
        kvp: 120.0,
        exposure_mas: 200.0,
        revolution_time_s: 0.5,
        kernel: "standard".into(),
        filter_type: "BOWTIE MEDIUM".into(),
        data_collection_diameter_mm: 500.0,
        reconstruction_diameter_mm: 400.0,
        source_to_isocentre_mm: 595.0,
        source_to_detector_mm: 1085.6,
        spiral_pitch: None,
        single_collimation_mm: 0.625,
        total_collimation_mm: 40.0,
        ctdi_vol_mgy: 12.3,
        focal_spot_mm: 1.0,
        contrast_phase: "native".into(),
    })
}

/// An anisotropic, off-centre grid with a distinct value in each octant-ish region, so any
/// flip or transpose of an axis changes the map.
fn labels() -> Volume<u16> {
    let grid = Grid {
        dims: [7, 5, 4],
        spacing_mm: [0.8, 1.1, 2.5],
        origin_mm: [-12.0, 30.5, 101.25],
    };
    let mut v = Volume::filled(grid, 0u16);
    for k in 0..4 {
        for j in 0..5 {
            for i in 0..7 {
                let val = match (i < 2, j < 2, k) {
                    (true, _, 0) => 5,
                    (false, true, 1) => 12,
                    (_, false, 3) => 201,
                    (true, true, _) => 5,
                    _ => 0,
                };
                v.set(i, j, k, val);
            }
        }
    }
    v
}

fn segments() -> Vec<Segment> {
    [
        (5u16, "liver"),
        (12, "lung_upper_lobe_right"),
        (201, "lesion_1"),
    ]
    .iter()
    .map(|&(value, label)| Segment {
        value,
        label: label.into(),
        category: Coded::new("123037004", "SCT", "Anatomical Structure"),
        kind: Coded::new("10200004", "SCT", "Liver"),
        modifier: None,
        rgb: [200, 100, 50],
    })
    .collect()
}

/// Writes the CT series and the SEG of `labels()` into a temporary folder.
fn write_case(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let lab = labels();
    let img = lab.map(|v| v as f32 * 3.5 - 1000.0);
    let st = study();
    let series = encode_series(&img, &st, "ct", 1, "test", &ct()).unwrap();
    let sdir = dir.join("series");
    std::fs::create_dir_all(&sdir).unwrap();
    for s in &series {
        std::fs::write(sdir.join(&s.file_name), &s.bytes).unwrap();
    }
    let uids: Vec<String> = series.iter().map(|s| s.sop_instance_uid.clone()).collect();
    let seg = encode_seg(
        &lab,
        &segments(),
        &st,
        "ct",
        100,
        &seg::SourceSeries {
            series_uid: &image::series_uid(&st, "ct"),
            sop_class_uid: CT_IMAGE_STORAGE,
            instance_uids: &uids,
        },
    )
    .unwrap();
    let seg_path = dir.join("seg.dcm");
    std::fs::write(&seg_path, seg).unwrap();
    (seg_path, sdir)
}

#[test]
fn uids_are_deterministic_valid_and_distinct() {
    let a = derive_uid(DEFAULT_UID_ROOT, "x");
    assert_eq!(a, derive_uid(DEFAULT_UID_ROOT, "x"));
    assert_ne!(a, derive_uid(DEFAULT_UID_ROOT, "y"));
    let long_root = "1.2.826.0.1.3680043.10.1234.5678.9";
    for uid in [a, derive_uid(long_root, "x")] {
        assert!(uid.len() <= 64, "{uid}");
        for comp in uid.split('.') {
            assert!(!comp.is_empty() && comp.bytes().all(|b| b.is_ascii_digit()));
            assert!(comp == "0" || !comp.starts_with('0'), "{uid}");
        }
    }
    // Under 2.25 the suffix is a version-8 UUID: bits 76..79 of the integer are 0b1000.
    let n: u128 = derive_uid(DEFAULT_UID_ROOT, "x")[5..].parse().unwrap();
    assert_eq!((n >> 76) & 0xF, 8);
}

#[test]
fn bad_uid_roots_are_refused() {
    assert!(uid_root_problem("1.2.840.10008").is_none());
    assert!(uid_root_problem("1.02.3").unwrap().contains("leading zero"));
    assert!(uid_root_problem("1.2.a").is_some());
    assert!(uid_root_problem("1..2").is_some());
    assert!(uid_root_problem(&"1.2".repeat(15))
        .unwrap()
        .contains("digits"));
}

#[test]
fn decimal_strings_fit_sixteen_characters() {
    for v in [
        0.0,
        -0.0,
        1.0 / 3.0,
        -123456.789012,
        1e-7,
        595.0,
        0.5700737618545838,
    ] {
        let s = ds(v);
        assert!(s.len() <= 16, "{s}");
        let back: f64 = s.parse().unwrap();
        assert!((back - v).abs() <= 1e-6 * v.abs().max(1.0), "{v} → {s}");
    }
    // Tiny and huge values (an MR rescale slope of a faint series) keep their significant
    // digits instead of rounding to 0.
    for v in [2.1234567e-7, -3.3e-12, 6.02214076e23] {
        let s = ds(v);
        assert!(s.len() <= 16, "{s}");
        let back: f64 = s.parse().unwrap();
        assert!(((back - v) / v).abs() < 1e-6, "{v} → {s}");
    }
    assert_eq!(ds(-0.0), "0");
}

#[test]
fn ct_slice_carries_geometry_and_hu() {
    let lab = labels();
    let img = lab.map(|v| v as f32 * 3.5 - 1000.4);
    let st = study();
    let series = encode_series(&img, &st, "ct", 1, "test", &ct()).unwrap();
    assert_eq!(series.len(), 4);
    let k = 2;
    let obj = dicom_object::from_reader(&series[k].bytes[128..]).unwrap();
    let f = |t| obj.element(t).unwrap().to_multi_float64().unwrap();
    let ipp = f(tags::IMAGE_POSITION_PATIENT);
    let w = lab.grid.world(6, 4, k);
    for (a, b) in ipp.iter().zip([-w[0], -w[1], w[2]]) {
        assert!((a - b).abs() < 1e-9, "{ipp:?} vs {w:?}");
    }
    assert_eq!(f(tags::PIXEL_SPACING), vec![1.1, 0.8]);
    let px: Vec<u16> = obj
        .element(tags::PIXEL_DATA)
        .unwrap()
        .to_multi_int()
        .unwrap();
    // Row 0, column 0 is voxel (nx−1, ny−1); row 4, column 6 is voxel (0, 0).
    let hu = |p: u16| p as i16 as f32;
    assert_eq!(hu(px[0]), img.get(6, 4, k).round());
    assert_eq!(hu(px[4 * 7 + 6]), img.get(0, 0, k).round());
    assert_eq!(obj.element(tags::MODALITY).unwrap().to_str().unwrap(), "CT");
}

#[test]
fn seg_round_trips_with_and_without_its_series() {
    let tmp = tempfile::tempdir().unwrap();
    let (seg_path, sdir) = write_case(tmp.path());
    let lab = labels();
    let numbers: std::collections::BTreeMap<u16, u16> = segments()
        .iter()
        .enumerate()
        .map(|(i, s)| (i as u16 + 1, s.value))
        .collect();
    for series in [Some(sdir.as_path()), None] {
        let (map, segs) = read_seg(&SegInput {
            seg: &seg_path,
            series,
        })
        .unwrap();
        assert_eq!(segs.len(), 3);
        assert_eq!(segs[1].label, "lung_upper_lobe_right");
        assert_eq!(map.grid.dims, lab.grid.dims);
        for a in 0..3 {
            assert!((map.grid.spacing_mm[a] - lab.grid.spacing_mm[a]).abs() < 1e-9);
            assert!((map.grid.origin_mm[a] - lab.grid.origin_mm[a]).abs() < 1e-9);
        }
        let back = map.map(|n| numbers.get(&n).copied().unwrap_or(0));
        assert_eq!(back.data, lab.data);
    }
}

#[test]
fn broken_segs_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let (seg_path, sdir) = write_case(tmp.path());
    let bytes = std::fs::read(&seg_path).unwrap();
    let cut = tmp.path().join("cut.dcm");
    std::fs::write(&cut, &bytes[..bytes.len() - 4]).unwrap();
    let err = read_seg(&SegInput {
        seg: &cut,
        series: None,
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("cut.dcm"), "{err}");

    // A series that is not the referenced one.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let mut st = study();
    st.subject_id = "sub-00008".into();
    let img = labels().map(|v| v as f32);
    for s in encode_series(&img, &st, "ct", 1, "x", &ct()).unwrap() {
        std::fs::write(other.join(&s.file_name), &s.bytes).unwrap();
    }
    let err = read_seg(&SegInput {
        seg: &seg_path,
        series: Some(&other),
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("references series"), "{err}");

    // The referenced series, resampled: same UIDs, other geometry.
    let moved = tmp.path().join("moved");
    std::fs::create_dir_all(&moved).unwrap();
    let mut img = labels().map(|v| v as f32);
    img.grid.spacing_mm[0] = 0.9;
    for s in encode_series(&img, &study(), "ct", 1, "x", &ct()).unwrap() {
        std::fs::write(moved.join(&s.file_name), &s.bytes).unwrap();
    }
    let err = read_seg(&SegInput {
        seg: &seg_path,
        series: Some(&moved),
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("geometry differs"), "{err}");
    let _ = sdir;
}
