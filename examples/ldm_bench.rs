//! Times one denoiser forward pass and one training step (forward, backward, Adam) of the
//! default-architecture denoiser on a 1×4×16³ latent, on the CPU backend, and prints JSON
//! (medians of `--reps`, after one warm-up). Used by `benches/peers/ldm_peers.py`.
//!
//!   cargo run --release --example ldm_bench -- --reps 5

use std::time::Instant;

use synthcohort_ldm::cpu::bench::DenoiserBench;
use synthcohort_ldm::{ChannelSpec, LdmConfig, Modality, Tokenizer};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reps = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(5usize);
    let ch = vec![ChannelSpec {
        name: "hu".into(),
        unit: "HU".into(),
        offset: 0.0,
        scale: 1000.0,
    }];
    // 8 label classes → 8 label-embedding channels, as the peer's extra input channels.
    let classes = (0..8).map(|i| format!("c{i}")).collect();
    let tok = Tokenizer::build(["chest ct male 60 years hepatic steatosis"], 32);
    let cfg = LdmConfig::new("bench", Modality::Ct, ch, classes, tok);
    let mut b = DenoiserBench::new(&cfg, 16).expect("valid config");
    b.forward();
    b.train_step();
    let fwd: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(b.forward());
            t.elapsed().as_secs_f64()
        })
        .collect();
    let step: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(b.train_step());
            t.elapsed().as_secs_f64()
        })
        .collect();
    println!(
        "{{\"forward_s\": {:.5}, \"train_step_s\": {:.5}, \"channels\": {:?}, \"latent\": [1, 4, 16, 16, 16]}}",
        median(fwd),
        median(step),
        cfg.unet.channels
    );
}
