//! Times one denoiser forward pass and one training step (forward, backward, Adam) of the
//! default-architecture denoiser on a 1×4×16³ latent and prints JSON (medians of `--reps`,
//! after one warm-up). Used by `benches/peers/ldm_peers.py`.
//!
//!   cargo run --release --example ldm_bench -- --reps 5
//!   cargo run --release --example ldm_bench -- --sample 128     # one 128³ sample, shipped ct-thorax
//!   cargo run --release --features cuda --example ldm_bench -- --device cuda [--sample 128]
//!
//! `--sample N` times one N³ object (2 mm, a sphere of "liver" in "lung" labels) sampled by the
//! shipped `models/ct-thorax` with its default 30 Euler steps and guidance; run it under
//! `/usr/bin/time -v` for the peak memory.

use std::time::Instant;

use synthcohort_ldm::cpu::bench::DenoiserBench;
use synthcohort_ldm::cpu::{Device, Sampler};
use synthcohort_ldm::{ChannelSpec, LdmConfig, Modality, SampleRequest, Solver, Tokenizer};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// One n³ sample from the shipped thorax model; prints its time as JSON.
fn sample(n: usize, device: Device) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ct-thorax");
    let s = Sampler::load_on(&dir, device.clone()).expect("shipped model loads");
    let find = |name: &str| s.config.classes.iter().position(|c| c == name).unwrap_or(0) as u8;
    let (lung, liver) = (find("lung"), find("liver"));
    let c = (n as f32 - 1.0) / 2.0;
    let classes: Vec<u8> = (0..n * n * n)
        .map(|i| {
            let [x, y, z] = [i % n, (i / n) % n, i / (n * n)].map(|v| v as f32 - c);
            let r = (x * x + y * y + z * z).sqrt() / n as f32;
            if r < 0.25 {
                liver
            } else if r < 0.45 {
                lung
            } else {
                0
            }
        })
        .collect();
    let req = SampleRequest {
        classes: &classes,
        dims: [n; 3],
        spacing_mm: [2.0; 3],
        prompt: "chest CT, hepatic steatosis",
        seed: 1,
        steps: 30,
        solver: Solver::Euler,
        guidance: synthcohort_ldm::Guidance {
            text: 3.0,
            labels: 1.0,
        },
    };
    let t = Instant::now();
    let out = s.sample(&req, &mut |_, _| {}).expect("samples");
    std::hint::black_box(out);
    println!(
        "{{\"sample_s\": {:.3}, \"dims\": [{n}, {n}, {n}], \"steps\": 30, \"device\": \"{device:?}\"}}",
        t.elapsed().as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reps = arg(&args, "--reps")
        .and_then(|v| v.parse().ok())
        .unwrap_or(5usize);
    let device = Device::parse(&arg(&args, "--device").unwrap_or_default()).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    if let Some(n) = arg(&args, "--sample").and_then(|v| v.parse().ok()) {
        return sample(n, device);
    }
    let ch = vec![ChannelSpec {
        name: "hu".into(),
        unit: "HU".into(),
        offset: 0.0,
        scale: 1000.0,
    }];
    // 8 label classes → 8 label-embedding channels, as the peer's extra input channels.
    let classes = (0..8).map(|i| format!("c{i}")).collect();
    let tok = Tokenizer::build(["chest ct male 60 years hepatic steatosis"], 32);
    let cfg = LdmConfig::for_data("bench", Modality::Ct, ch, classes, tok);
    let (fwd, step) = match device {
        Device::Cpu => DenoiserBench::new(&cfg, 16)
            .expect("valid config")
            .timings(reps),
        #[cfg(feature = "cuda")]
        Device::Cuda(n) => synthcohort_ldm::cpu::bench::on_cuda(&cfg, 16, n)
            .expect("valid config")
            .timings(reps),
    };
    println!(
        "{{\"forward_s\": {:.5}, \"train_step_s\": {:.5}, \"channels\": {:?}, \"latent\": [1, 4, 16, 16, 16], \"device\": \"{device:?}\"}}",
        median(fwd),
        median(step),
        cfg.unet.channels
    );
}
