//! One subject end to end at 128³: anatomy (thorax phantom, or the abdomen or chest atlas
//! with its per-subject pull-back; deformation, lesions) + procedural object + NIfTI encoding of image
//! and labels (what the engine writes).

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::path::Path;

use synthcohort::engine;
use synthcohort::io;
use synthcohort::pipeline;

/// Pipeline `name`: 4 subjects on `template`, each with two 10 mm lesions (`condition`) in
/// `organ`.
fn bench_pipeline(name: &str, template: &str, condition: &str, organ: &str, shape: &str) -> String {
    format!(
        "version: 1
name: {name}
seed: 1
cohort:
  size: 4
  conditions:
    - {{name: {condition}, prevalence: 1.0, lesion: {{organ: {organ}, count: 2, diameter_mm: 10, shape: {shape}}}}}
anatomy: {{template: {template}, size: [128, 128, 128], spacing_mm: [3, 3, 2.5], deformation_mm: 4}}
acquisition: {{arms: [{{name: hu, modality: none}}]}}
"
    )
}

fn subject_128(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut g = c.benchmark_group("subject");
    g.sample_size(10);
    for (name, text) in [
        (
            "thorax_128cubed_anatomy_object_write",
            bench_pipeline("bench", "thorax", "nodule", "lung", "lobulated"),
        ),
        (
            "abdomen_atlas_128cubed_anatomy_object_write",
            bench_pipeline("bench-atlas", "abdomen", "metastasis", "liver", "lobulated"),
        ),
        (
            "chest_atlas_128cubed_anatomy_object_write",
            bench_pipeline("bench-chest", "chest", "nodule", "lung", "part_solid"),
        ),
    ] {
        let p = pipeline::parse(text.as_bytes(), "bench.yaml", Path::new("."))
            .expect("bench pipeline is valid");
        g.bench_function(name, |b| {
            b.iter(|| {
                let s = engine::build_subject(&p, 0).expect("subject builds");
                let hu = &s.object.ct.as_ref().expect("CT maps").hu;
                let img =
                    io::encode_image(hu, io::ImageDtype::Float32, true, "bench").expect("encodes");
                let lab = io::encode_labels(&s.anatomy.labels, true, "bench").expect("encodes");
                io::write_atomic(&dir.path().join("img.nii.gz"), &img).expect("writes");
                io::write_atomic(&dir.path().join("lab.nii.gz"), &lab).expect("writes");
                black_box((img.len(), lab.len()))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, subject_128);
criterion_main!(benches);
