//! DICOM encoding against the NIfTI encoding it rides beside: one abdomen-atlas subject at
//! 128³ (3 × 3 × 2.5 mm), its HU image as a CT series (one file per slice) plus the SEG of its
//! labels, versus the gzip NIfTI image and label map the engine always writes.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::path::Path;

use synthcohort::engine;
use synthcohort::io::{self, dicom};
use synthcohort::pipeline;

const PIPELINE: &str = "version: 1
name: bench-dicom
seed: 1
cohort:
  size: 1
  conditions:
    - {name: metastasis, prevalence: 1.0, lesion: {organ: liver, count: 2, diameter_mm: 15, shape: necrotic}}
anatomy: {template: abdomen, size: [128, 128, 128], spacing_mm: [3, 3, 2.5], deformation_mm: 4}
acquisition: {arms: [{name: hu, modality: none}]}
";

fn dicom_vs_nifti(c: &mut Criterion) {
    let p = pipeline::parse(PIPELINE.as_bytes(), "bench.yaml", Path::new("."))
        .expect("bench pipeline is valid");
    let s = engine::build_subject(&p, 0).expect("subject builds");
    let hu = &s.object.ct.as_ref().expect("CT maps").hu;
    let labels = &s.anatomy.labels;
    let st = dicom::StudyInfo {
        uid_root: dicom::DEFAULT_UID_ROOT.into(),
        pipeline_sha256: p.sha256.clone(),
        subject_id: "sub-0001".into(),
        sex: 'F',
        age_years: 60.0,
        study_description: "bench".into(),
        software_version: synthcohort::VERSION.to_string(),
    };
    let acq = dicom::SeriesAcquisition::Ct(dicom::CtAttributes {
        kvp: 120.0,
        exposure_mas: 200.0,
        revolution_time_s: 0.5,
        kernel: "STANDARD".into(),
        filter_type: "BOWTIE M".into(),
        data_collection_diameter_mm: 500.0,
        reconstruction_diameter_mm: 384.0,
        source_to_isocentre_mm: 595.0,
        source_to_detector_mm: 1085.6,
        spiral_pitch: None,
        single_collimation_mm: 0.625,
        total_collimation_mm: 40.0,
        ctdi_vol_mgy: 12.0,
        focal_spot_mm: 1.0,
        contrast_phase: "native".into(),
    });
    let segments: Vec<dicom::Segment> = {
        let present: std::collections::BTreeSet<u16> = labels.data.iter().copied().collect();
        present
            .into_iter()
            .filter(|&v| v != 0)
            .map(|v| dicom::Segment {
                value: v,
                label: format!("label {v}"),
                category: dicom::Coded::new("91723000", "SCT", "Anatomical Structure"),
                kind: dicom::Coded::new("10200004", "SCT", "Liver"),
                modifier: None,
                rgb: [200, 100, 50],
            })
            .collect()
    };
    let mut g = c.benchmark_group("write_128cubed");
    g.sample_size(10);
    g.bench_function("nifti_gz_image_and_labels", |b| {
        b.iter(|| {
            let img =
                io::encode_image(hu, io::ImageDtype::Float32, true, "bench").expect("encodes");
            let lab = io::encode_labels(labels, true, "bench").expect("encodes");
            black_box((img.len(), lab.len()))
        })
    });
    g.bench_function("dicom_ct_series_and_seg", |b| {
        b.iter(|| {
            let series = dicom::encode_series(hu, &st, "hu", 1, "bench", &acq).expect("encodes");
            let uids: Vec<String> = series.iter().map(|s| s.sop_instance_uid.clone()).collect();
            let seg = dicom::encode_seg(
                labels,
                &segments,
                &st,
                "hu",
                101,
                &dicom::SourceSeries {
                    series_uid: &dicom::image::series_uid(&st, "hu"),
                    sop_class_uid: dicom::CT_IMAGE_STORAGE,
                    instance_uids: &uids,
                },
            )
            .expect("encodes");
            black_box((series.len(), seg.len()))
        })
    });
    g.finish();
}

criterion_group!(benches, dicom_vs_nifti);
criterion_main!(benches);
