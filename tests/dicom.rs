//! DICOM: deterministic series and SEGs across jobs and shards, SEG import as anatomy equal to
//! the NIfTI import, and broken SEGs refused before anything is written. (Conformance with
//! real clients — pydicom, dciodvfy, dcm2niix, highdicom — is `tests/interop/check_dicom.py`,
//! run by `.ci/run`.)

mod common;

use std::path::Path;

use dicom_dictionary_std::tags;
use synthcohort::anatomy::{ontology, snomed};
use synthcohort::io::{self, dicom};
use synthcohort::volume::Volume;

fn run_dicom_tiny(out: &Path, extra: &[&str]) {
    let pipeline = common::repo("tests/pipelines/dicom_tiny.yaml");
    let mut args = vec![
        "run",
        pipeline.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    common::run_ok(&args);
}

fn dicom_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    common::files(dir)
        .into_iter()
        .filter(|(k, _)| k.starts_with("dicom/"))
        .collect()
}

#[test]
fn dicom_output_is_byte_identical_across_jobs_and_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    run_dicom_tiny(&a, &["--jobs", "1"]);
    run_dicom_tiny(&b, &["--jobs", "2"]);
    let fa = dicom_files(&a);
    // 3 subjects × (CT + MR series of 20 slices + one SEG each); the `none` arm has none.
    assert_eq!(
        fa.len(),
        3 * 2 * (20 + 1),
        "{:?}",
        fa.keys().take(5).collect::<Vec<_>>()
    );
    assert!(!fa
        .keys()
        .any(|k| k.contains("/hu/") || k.contains("labels_hu")));
    assert_eq!(fa, dicom_files(&b));
    // Every DICOM file is listed in files.sha256, so verify covers it.
    let listed = std::fs::read_to_string(a.join("files.sha256")).unwrap();
    for k in fa.keys() {
        assert!(listed.contains(k.as_str()), "{k} not in files.sha256");
    }

    let mut shards = Vec::new();
    for k in 0..2 {
        let d = tmp.path().join(format!("shard{k}"));
        run_dicom_tiny(&d, &["--shard", &format!("{k}/2")]);
        shards.push(d.to_string_lossy().to_string());
    }
    let merged = tmp.path().join("merged");
    let mut args = vec!["merge".to_string(), merged.to_string_lossy().to_string()];
    args.extend(shards);
    common::run_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(fa, dicom_files(&merged));
    common::run_ok(&["verify", merged.to_str().unwrap()]);

    // The configured UID root is used, and the study is shared by a subject's arms.
    let ct = dicom_object::open_file(a.join("dicom/sub-0001/ct/IM000001.dcm")).unwrap();
    let mr = dicom_object::open_file(a.join("dicom/sub-0001/t2w/IM000001.dcm")).unwrap();
    let s = |o: &dicom_object::DefaultDicomObject, t| {
        o.element(t).unwrap().to_str().unwrap().to_string()
    };
    assert!(s(&ct, tags::SOP_INSTANCE_UID).starts_with("1.2.826.0.1.3680043.10.99."));
    assert_eq!(
        s(&ct, tags::STUDY_INSTANCE_UID),
        s(&mr, tags::STUDY_INSTANCE_UID)
    );
    assert_ne!(
        s(&ct, tags::SERIES_INSTANCE_UID),
        s(&mr, tags::SERIES_INSTANCE_UID)
    );
    assert_eq!(s(&ct, tags::MODALITY), "CT");
    assert_eq!(s(&ct, tags::KVP), "120");
    assert_eq!(s(&mr, tags::MAGNETIC_FIELD_STRENGTH), "1.5");
    assert_eq!(s(&mr, tags::REPETITION_TIME), "4000");
}

/// Encodes `labels` (TotalSegmentator ids) as a CT series of zeros plus a SEG into `dir`;
/// segments are coded by their SNOMED CT codes and labelled by their names.
fn write_seg(
    labels: &Volume<u16>,
    names: &std::collections::BTreeMap<u16, String>,
    dir: &Path,
    code_override: Option<&str>,
) {
    let st = dicom::StudyInfo {
        uid_root: dicom::DEFAULT_UID_ROOT.into(),
        pipeline_sha256: "test".into(),
        subject_id: "real".into(),
        sex: 'M',
        age_years: 50.0,
        study_description: "round trip".into(),
        software_version: synthcohort::VERSION.to_string(),
    };
    let image = labels.map(|_| 0.0f32);
    let acq = dicom::SeriesAcquisition::Ct(dicom::CtAttributes {
        kvp: 120.0,
        exposure_mas: 100.0,
        revolution_time_s: 0.5,
        kernel: "STANDARD".into(),
        filter_type: "FLAT".into(),
        data_collection_diameter_mm: 500.0,
        reconstruction_diameter_mm: 500.0,
        source_to_isocentre_mm: 600.0,
        source_to_detector_mm: 1100.0,
        spiral_pitch: None,
        single_collimation_mm: 0.6,
        total_collimation_mm: 38.4,
        ctdi_vol_mgy: 10.0,
        focal_spot_mm: 1.0,
        contrast_phase: "native".into(),
    });
    let series = dicom::encode_series(&image, &st, "ct", 1, "ct", &acq).unwrap();
    let sdir = dir.join("series");
    std::fs::create_dir_all(&sdir).unwrap();
    for s in &series {
        std::fs::write(sdir.join(&s.file_name), &s.bytes).unwrap();
    }
    let present: std::collections::BTreeSet<u16> = labels.data.iter().copied().collect();
    let segments: Vec<dicom::Segment> = present
        .iter()
        .filter(|&&v| v != 0)
        .map(|&v| {
            let name = &names[&v];
            let c = snomed::codes_for_label(name).unwrap_or_else(|| panic!("{name} has no codes"));
            let kind = match code_override {
                Some(code) => dicom::Coded::new(code, "SCT", "Something else"),
                None => dicom::Coded::new(c.kind.value, c.kind.scheme, c.kind.meaning),
            };
            dicom::Segment {
                value: v,
                // Other tools' spelling: the codes, not the text, must carry the meaning.
                label: if code_override.is_some() {
                    format!("structure {v}")
                } else {
                    name.to_uppercase()
                },
                category: dicom::Coded::new(
                    c.category.value,
                    c.category.scheme,
                    c.category.meaning,
                ),
                kind,
                modifier: c
                    .modifier
                    .map(|m| dicom::Coded::new(m.value, m.scheme, m.meaning)),
                rgb: [255, 0, 0],
            }
        })
        .collect();
    let uids: Vec<String> = series.iter().map(|s| s.sop_instance_uid.clone()).collect();
    let seg = dicom::encode_seg(
        labels,
        &segments,
        &st,
        "ct",
        2,
        &dicom::SourceSeries {
            series_uid: &dicom::image::series_uid(&st, "ct"),
            sop_class_uid: dicom::CT_IMAGE_STORAGE,
            instance_uids: &uids,
        },
    )
    .unwrap();
    std::fs::write(dir.join("seg.dcm"), seg).unwrap();
}

fn pipeline_with_source(dir: &Path, source: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(common::repo("tests/pipelines/import_ts.yaml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("source:"))
        .unwrap();
    let out = text.replace(line, &format!("  source: {source}"));
    let path = dir.join(format!("p{}.yaml", out.len()));
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn a_dicom_seg_imports_as_the_same_anatomy_as_its_nifti() {
    let tmp = tempfile::tempdir().unwrap();
    let nii = common::repo("tests/data/ts_ct_torso_3mm_seg_total.nii.gz");
    let names_path = common::repo("tests/data/ts_total_classes.txt");
    let labels = io::read_labels(&nii).unwrap();
    let names = synthcohort::anatomy::import::parse_names_file(
        &std::fs::read_to_string(&names_path).unwrap(),
    )
    .unwrap();
    write_seg(&labels, &names, tmp.path(), None);

    let from_nifti = pipeline_with_source(
        tmp.path(),
        &format!(
            "{{file: {}, names: {}}}",
            nii.display(),
            names_path.display()
        ),
    );
    let seg = tmp.path().join("seg.dcm");
    let series = tmp.path().join("series");
    let from_seg = pipeline_with_source(
        tmp.path(),
        &format!("{{file: {}, series: {}}}", seg.display(), series.display()),
    );
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for (p, out) in [(&from_nifti, &a), (&from_seg, &b)] {
        common::run_ok(&[
            "run",
            p.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
    }
    let rows = io::read_manifest(&a.join("manifest.parquet")).unwrap();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        let la = io::read_labels(&a.join(&r.label_path)).unwrap();
        let lb = io::read_labels(&b.join(&r.label_path)).unwrap();
        assert_eq!(la.grid, lb.grid);
        let differ = la.data.iter().zip(&lb.data).filter(|(x, y)| x != y).count();
        assert_eq!(differ, 0, "{}: {differ} voxels differ", r.subject_id);
        assert!(la
            .data
            .contains(&ontology::label_by_name("liver").unwrap().id));
    }
}

#[test]
fn broken_dicom_sources_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    // A small real crop keeps this quick.
    let full =
        io::read_labels(&common::repo("tests/data/ts_ct_torso_3mm_seg_total.nii.gz")).unwrap();
    let names = synthcohort::anatomy::import::parse_names_file(
        &std::fs::read_to_string(common::repo("tests/data/ts_total_classes.txt")).unwrap(),
    )
    .unwrap();
    let good = tmp.path().join("good");
    std::fs::create_dir_all(&good).unwrap();
    write_seg(&full, &names, &good, None);
    let unknown = tmp.path().join("unknown");
    std::fs::create_dir_all(&unknown).unwrap();
    write_seg(&full, &names, &unknown, Some("999999999"));

    // No Referenced Series Sequence.
    let mut obj = dicom_object::open_file(good.join("seg.dcm")).unwrap();
    obj.remove_element(tags::REFERENCED_SERIES_SEQUENCE);
    let no_ref = tmp.path().join("no_ref.dcm");
    obj.write_to_file(&no_ref).unwrap();
    // Truncated.
    let bytes = std::fs::read(good.join("seg.dcm")).unwrap();
    let cut = tmp.path().join("cut.dcm");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    // Mismatched geometry: the series' slices moved 1.5 mm.
    let moved = tmp.path().join("moved");
    std::fs::create_dir_all(&moved).unwrap();
    for e in std::fs::read_dir(good.join("series")).unwrap().flatten() {
        let mut o = dicom_object::open_file(e.path()).unwrap();
        let ipp: Vec<f64> = o
            .element(tags::IMAGE_POSITION_PATIENT)
            .unwrap()
            .to_multi_float64()
            .unwrap();
        o.put(dicom_core::DataElement::new(
            tags::IMAGE_POSITION_PATIENT,
            dicom_core::VR::DS,
            dicom_core::PrimitiveValue::from(format!("{}\\{}\\{}", ipp[0] + 1.5, ipp[1], ipp[2])),
        ));
        o.write_to_file(moved.join(e.file_name())).unwrap();
    }
    let cases = [
        (
            format!("{{file: {}}}", no_ref.display()),
            "Referenced Series",
        ),
        (format!("{{file: {}}}", cut.display()), "cut.dcm"),
        (
            format!(
                "{{file: {}, series: {}}}",
                good.join("seg.dcm").display(),
                moved.display()
            ),
            "lies on no slice",
        ),
        (
            format!("{{file: {}}}", unknown.join("seg.dcm").display()),
            "999999999",
        ),
    ];
    for (i, (source, expect)) in cases.iter().enumerate() {
        let p = pipeline_with_source(tmp.path(), source);
        let out = tmp.path().join(format!("out{i}"));
        let o = common::run(&["run", p.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{source}: {err}");
        assert!(err.contains("anatomy.source.file"), "{source}: {err}");
        assert!(
            err.contains(expect),
            "{source}: expected `{expect}` in {err}"
        );
        assert!(!out.exists(), "{source}: wrote {}", out.display());
    }
}
