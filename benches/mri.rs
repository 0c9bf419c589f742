//! MRI simulator: our equivalents of TorchIO's RandomMotion, RandomGhosting, RandomSpike,
//! RandomBiasField and RandomNoise on a 1×128³ image, and the full 256×256×128 spin-echo
//! acquisition with 8 coils, noise and motion. Peers: `benches/peers/mri_peers.py`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

use synthcohort::acquire::mri::{self, artifacts, Motion, MriProtocol, Sequence};
use synthcohort::tissue::object::MriMaps;
use synthcohort::volume::Volume;

fn maps(dims: [usize; 3], spacing: [f64; 3]) -> MriMaps {
    mri::phantom::head_maps(dims, spacing)
}

fn transforms_128(c: &mut Criterion) {
    let m = maps([128, 128, 128], [2.0; 3]);
    let vol = Volume::from_vec(
        m.pd.grid.clone(),
        (0..m.pd.data.len())
            .map(|i| {
                mri::signal::spin_echo(
                    m.pd.data[i] as f64,
                    m.t1_ms.data[i] as f64,
                    m.t2_ms.data[i] as f64,
                    4000.0,
                    90.0,
                ) as f32
            })
            .collect(),
    );
    let motion = Motion {
        translation_mm: [5.0, -4.0, 3.0],
        rotation_deg: [4.0, -3.0, 6.0],
        fraction_of_lines: 0.5,
    };
    let mut g = c.benchmark_group("mri_transforms_128cubed");
    g.sample_size(10);
    g.bench_function("motion", |b| {
        b.iter(|| black_box(artifacts::apply_motion(&vol, &motion)))
    });
    g.bench_function("ghosting", |b| {
        b.iter(|| black_box(artifacts::apply_ghosting(&vol, 0.15)))
    });
    g.bench_function("spike", |b| {
        b.iter(|| black_box(artifacts::apply_spike(&vol, 0.5, 1)))
    });
    g.bench_function("bias_field", |b| {
        b.iter(|| black_box(artifacts::apply_bias_field(&vol, 0.4, 1)))
    });
    g.bench_function("rician_noise", |b| {
        b.iter(|| black_box(artifacts::apply_rician_noise(&vol, 0.05, 1)))
    });
    g.finish();
}

fn full_256(c: &mut Criterion) {
    let m = maps([256, 256, 128], [1.0; 3]);
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
    let mut g = c.benchmark_group("mri_acquire");
    g.sample_size(10);
    g.bench_function("se_256x256x128_8coils_noise_motion", |b| {
        b.iter(|| black_box(mri::acquire(&m, &p, 1).expect("acquires")))
    });
    // SENSE R = 2: every second phase line, unfolded with the coil maps (no motion).
    let mut sense = p.clone();
    sense.artifacts.motion = None;
    sense.combine = mri::Combine::Sense;
    sense.undersampling = Some(mri::Undersampling {
        factor: 2.0,
        pattern: mri::SamplingPattern::Regular,
        center_lines: 0,
    });
    g.bench_function("se_256x256x128_8coils_noise_sense_r2", |b| {
        b.iter(|| black_box(mri::acquire(&m, &sense, 1).expect("acquires")))
    });
    // GRAPPA R = 2 with 24 calibration lines.
    let mut grappa = sense.clone();
    grappa.combine = mri::Combine::Grappa;
    if let Some(u) = grappa.undersampling.as_mut() {
        u.center_lines = 24;
    }
    g.bench_function("se_256x256x128_8coils_noise_grappa_r2", |b| {
        b.iter(|| black_box(mri::acquire(&m, &grappa, 1).expect("acquires")))
    });
    g.finish();
}

/// The hand ziggurat (`acquire::mri::noise`, eight lanes, AVX2 where present) against the
/// crates' standard normal (rand_distr's ziggurat) on two generators: what complex Gaussian
/// noise for one 256² × 128 × 8-coil acquisition costs per million values.
fn normals_1m(c: &mut Criterion) {
    use rand::{RngExt, SeedableRng};
    use rand_distr::StandardNormal;
    use synthcohort::acquire::mri::noise::{FastRng, Normals};
    let n = 1 << 19; // re + im = 2^20 values
    let (mut re, mut im) = (vec![0f32; n], vec![0f32; n]);
    let mut g = c.benchmark_group("normals_1m");
    g.bench_function("hand_ziggurat_lanes", |b| {
        let mut r = FastRng::from_stream(1, 2);
        b.iter(|| Normals::new(&mut r).set(1.0, &mut re, &mut im))
    });
    g.bench_function("hand_ziggurat_scalar", |b| {
        let mut r = FastRng::from_stream(1, 2);
        b.iter(|| {
            for (a, b) in re.iter_mut().zip(im.iter_mut()) {
                *a = r.normal();
                *b = r.normal();
            }
        })
    });
    g.bench_function("rand_distr_chacha8", |b| {
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        b.iter(|| {
            for (a, b) in re.iter_mut().zip(im.iter_mut()) {
                *a = r.sample(StandardNormal);
                *b = r.sample(StandardNormal);
            }
        })
    });
    g.bench_function("rand_distr_smallrng", |b| {
        let mut r = rand::rngs::SmallRng::seed_from_u64(1);
        b.iter(|| {
            for (a, b) in re.iter_mut().zip(im.iter_mut()) {
                *a = r.sample(StandardNormal);
                *b = r.sample(StandardNormal);
            }
        })
    });
    g.finish();
    black_box((&re, &im));
}

criterion_group!(benches, transforms_128, full_256, normals_1m);
criterion_main!(benches);
