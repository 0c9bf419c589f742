//! MRI simulator timings for the peer comparison (`benches/peers/mri_peers.py`).
//!
//!   mri_sim --out DIR   writes the inputs the peers use: `vol128.f32` (a 128³ head-like
//!                       magnitude image, x fastest) and `pd.f32`, `t1.f32`, `t2.f32`
//!                       (256×256×128 maps at 3 T), and prints their shapes as JSON
//!   mri_sim             times our equivalents of TorchIO's RandomMotion, RandomGhosting,
//!                       RandomSpike, RandomBiasField, RandomNoise on the 128³ image, and the
//!                       full 256×256×128 spin-echo simulation with 8 coils, noise and motion;
//!                       prints seconds as JSON (one warm-up run of each first)
use std::time::Instant;

use synthcohort::acquire::mri::{self, artifacts, Motion, MriProtocol, Sequence};
use synthcohort::tissue::object::MriMaps;
use synthcohort::volume::Volume;

fn maps(dims: [usize; 3], spacing: [f64; 3]) -> MriMaps {
    mri::phantom::head_maps(dims, spacing)
}

fn write_f32(path: &std::path::Path, data: &[f32]) {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("writes input file");
}

fn image128() -> Volume<f32> {
    // A T2-weighted-looking magnitude image of the phantom at 2 mm.
    let m = maps([128, 128, 128], [2.0; 3]);
    let mut data = vec![0f32; m.pd.data.len()];
    for (i, d) in data.iter_mut().enumerate() {
        *d = mri::signal::spin_echo(
            m.pd.data[i] as f64,
            m.t1_ms.data[i] as f64,
            m.t2_ms.data[i] as f64,
            4000.0,
            90.0,
        ) as f32;
    }
    Volume::from_vec(m.pd.grid.clone(), data)
}

fn full_protocol() -> MriProtocol {
    let mut p = MriProtocol::default_for(Sequence::SpinEcho, 3.0);
    p.matrix = [256, 256];
    p.fov_mm = [256.0, 256.0];
    p.slice_mm = 1.0;
    p.coils = 8;
    p.artifacts.motion = Some(Motion {
        translation_mm: [3.0, -2.0, 1.0],
        rotation_deg: [0.0, 0.0, 4.0],
        fraction_of_lines: 0.4,
    });
    p
}

fn time(f: &dyn Fn()) -> f64 {
    f();
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--out") {
        let dir = std::path::PathBuf::from(&args[i + 1]);
        std::fs::create_dir_all(&dir).expect("creates output dir");
        write_f32(&dir.join("vol128.f32"), &image128().data);
        let m = maps([256, 256, 128], [1.0; 3]);
        write_f32(&dir.join("pd.f32"), &m.pd.data);
        write_f32(&dir.join("t1.f32"), &m.t1_ms.data);
        write_f32(&dir.join("t2.f32"), &m.t2_ms.data);
        println!("{{\"vol\": [128, 128, 128], \"maps\": [256, 256, 128], \"tr_ms\": 500, \"te_ms\": 15}}");
        return;
    }
    let vol = image128();
    let motion = Motion {
        translation_mm: [5.0, -4.0, 3.0],
        rotation_deg: [4.0, -3.0, 6.0],
        fraction_of_lines: 0.5,
    };
    // `--only a,b` times just those (for profiling one of them).
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').map(|s| format!("{s}_s")).collect());
    let wanted = |k: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == k));
    // The 256×256×128 maps take longer to build than most timings; only when needed.
    let m = wanted("full_s").then(|| maps([256, 256, 128], [1.0; 3]));
    let p = full_protocol();
    let runs: [(&str, &dyn Fn()); 6] = [
        ("motion_s", &|| drop(artifacts::apply_motion(&vol, &motion))),
        ("ghosting_s", &|| {
            drop(artifacts::apply_ghosting(&vol, 0.15))
        }),
        ("spike_s", &|| drop(artifacts::apply_spike(&vol, 0.5, 1))),
        ("bias_s", &|| {
            drop(artifacts::apply_bias_field(&vol, 0.4, 1))
        }),
        ("noise_s", &|| {
            drop(artifacts::apply_rician_noise(&vol, 0.05, 1))
        }),
        ("full_s", &|| {
            let m = m.as_ref().expect("built when full is wanted");
            drop(mri::acquire(m, &p, 1).expect("acquires"))
        }),
    ];
    let body: Vec<String> = runs
        .iter()
        .filter(|(k, _)| wanted(k))
        .map(|(k, f)| format!("\"{k}\": {:.6}", time(f)))
        .collect();
    println!("{{{}}}", body.join(", "));
}
