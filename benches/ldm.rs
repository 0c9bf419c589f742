//! Latent diffusion model on the CPU backend: one denoiser forward pass and one training
//! step (forward, backward, Adam) on a 1×4×16³ latent with the default architecture; and
//! the autoencoder's decoder at 128×128×64 with 62 classes (`ct-abdomen`'s), whole against
//! in z-slabs (bounded memory, `synthcohort_ldm::tiled`).

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

use synthcohort_ldm::cpu::bench::DenoiserBench;
use synthcohort_ldm::tiled::bench::DecodeBench;
use synthcohort_ldm::{ChannelSpec, LdmConfig, Modality, Tokenizer};

fn config() -> LdmConfig {
    config_with(8)
}

fn config_with(classes: usize) -> LdmConfig {
    let ch = vec![ChannelSpec {
        name: "hu".into(),
        unit: "HU".into(),
        offset: 0.0,
        scale: 1000.0,
    }];
    let classes = (0..classes).map(|i| format!("c{i}")).collect();
    let tok = Tokenizer::build(["chest ct male 60 years hepatic steatosis"], 32);
    LdmConfig::for_data("bench", Modality::Ct, ch, classes, tok)
}

fn denoiser(c: &mut Criterion) {
    let mut b = DenoiserBench::new(&config(), 16).expect("valid config");
    let mut g = c.benchmark_group("ldm_denoiser_16cubed");
    g.sample_size(10);
    g.bench_function("forward", |x| x.iter(|| black_box(b.forward())));
    g.bench_function("train_step", |x| x.iter(|| black_box(b.train_step())));
    g.finish();
}

fn decoder(c: &mut Criterion) {
    let b = DecodeBench::new(&config_with(62), [128, 128, 64]).expect("valid config");
    let mut g = c.benchmark_group("ldm_decode_128x128x64_62_classes");
    g.sample_size(10);
    g.bench_function("whole", |x| x.iter(|| black_box(b.whole())));
    g.bench_function("slabs", |x| x.iter(|| black_box(b.slabs())));
    g.finish();
}

criterion_group!(benches, denoiser, decoder);
criterion_main!(benches);
