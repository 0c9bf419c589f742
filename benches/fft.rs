//! The FFT swap measured on its own: the hand-written transforms the simulators used before
//! (radix-2 CT ramp filter in f64, kept in `hand_radix2.rs` as the peer; the batched
//! split-format radix-2 kernel still used for MRI powers of two) against rustfft, in one run on
//! the same data.
//!
//! `cargo bench --bench fft`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;
use synthcohort::acquire::mri;

#[path = "hand_radix2.rs"]
mod hand_radix2;

fn ct_ramp_rows(c: &mut Criterion) {
    // A 736-detector row pads to 2048; one CT slice filters ~1000 such rows.
    let np = 2048;
    let x: Vec<(f64, f64)> = (0..np)
        .map(|i| ((i as f64 * 0.37).sin(), (i as f64 * 0.11).cos()))
        .collect();
    let hand = hand_radix2::Fft::new(np);
    let mut planner = FftPlanner::<f64>::new();
    let (fwd, inv) = (planner.plan_fft_forward(np), planner.plan_fft_inverse(np));
    let mut g = c.benchmark_group("ct_fft_f64_forward_inverse");
    g.bench_function(BenchmarkId::new("hand", np), |b| {
        let mut buf = x.clone();
        b.iter(|| {
            hand.run(&mut buf, false);
            hand.run(&mut buf, true);
        })
    });
    g.bench_function(BenchmarkId::new("rustfft", np), |b| {
        let mut buf: Vec<Complex<f64>> = x.iter().map(|&(r, i)| Complex::new(r, i)).collect();
        let mut scratch = vec![Complex::default(); fwd.get_inplace_scratch_len()];
        b.iter(|| {
            fwd.process_with_scratch(&mut buf, &mut scratch);
            inv.process_with_scratch(&mut buf, &mut scratch);
            let s = 1.0 / np as f64;
            buf.iter_mut().for_each(|v| *v *= s);
        })
    });
    g.finish();
}

fn mri_columns(c: &mut Criterion) {
    // 128² and 256² images along one axis: the batched radix-2 kernel kept by hand against
    // rustfft.
    // (192², where the hand code used Bluestein, measured 322 µs hand vs 178 µs rustfft
    // before the hand Bluestein was removed.)
    for n in [128usize, 256] {
        let width = n;
        let re: Vec<f32> = (0..n * width)
            .map(|i| ((i * 37 % 17) as f32 - 8.0) / 7.0)
            .collect();
        let im: Vec<f32> = (0..n * width)
            .map(|i| ((i * 11 % 13) as f32 - 6.0) / 5.0)
            .collect();
        let hand = mri::fft::Fft::new(n);
        let swap = mri::fft::Fft::with_rustfft(n);
        let mut g = c.benchmark_group(format!("mri_fft_f32_columns_{n}x{width}"));
        g.bench_function("hand", |b| {
            let (mut r, mut i) = (re.clone(), im.clone());
            b.iter(|| hand.process(&mut r, &mut i, width, false))
        });
        g.bench_function("rustfft", |b| {
            let (mut r, mut i) = (re.clone(), im.clone());
            b.iter(|| swap.process(&mut r, &mut i, width, false))
        });
        g.finish();
    }
}

criterion_group!(benches, ct_ramp_rows, mri_columns);
criterion_main!(benches);
