//! Latent diffusion denoiser on the CPU backend: one forward pass and one training step
//! (forward, backward, Adam) on a 1×4×16³ latent with the default architecture.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

use synthcohort_ldm::cpu::bench::DenoiserBench;
use synthcohort_ldm::{ChannelSpec, LdmConfig, Modality, Tokenizer};

fn config() -> LdmConfig {
    let ch = vec![ChannelSpec {
        name: "hu".into(),
        unit: "HU".into(),
        offset: 0.0,
        scale: 1000.0,
    }];
    let classes = (0..8).map(|i| format!("c{i}")).collect();
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

criterion_group!(benches, denoiser);
criterion_main!(benches);
