//! Batched complex FFTs on split (re, im) f32 buffers.
//!
//! The simulator transforms whole images along one axis at a time. Storing an image as
//! `n` rows of `width` samples and transforming *down the columns* lets every butterfly act
//! on two full rows with one twiddle, a contiguous loop the compiler vectorises; the other
//! axis is reached by transposing.
//!
//! Powers of two (every shipped matrix) use that batched iterative radix-2 decimation in time
//! (Cooley–Tukey 1965), kept by hand because it measured 6.4× faster than gathering the
//! columns for rustfft (256 columns of 256: 60 µs vs 385 µs, `cargo bench --bench fft`).
//! Other lengths go to rustfft (its mixed-radix and Rader/Bluestein plans), which measured
//! 1.8× faster than the hand-written Bluestein it replaced (192×192: 178 µs vs 322 µs).
//! Both directions are unnormalised; callers apply the 1/n they need.

use std::f64::consts::PI;
use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

/// A plan for transforms of length `n` along the columns of an `n × width` row-major block.
#[derive(Clone)]
pub struct Fft {
    n: usize,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Radix2 {
        /// Forward twiddles e^{-2πik/n}, k < n/2.
        tw_re: Vec<f32>,
        tw_im: Vec<f32>,
        rev: Vec<usize>,
    },
    RustFft {
        forward: Arc<dyn rustfft::Fft<f32>>,
        inverse: Arc<dyn rustfft::Fft<f32>>,
    },
}

impl std::fmt::Debug for Fft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::Radix2 { .. } => "radix-2",
            Kind::RustFft { .. } => "rustfft",
        };
        write!(f, "Fft({}, {kind})", self.n)
    }
}

impl Fft {
    pub fn new(n: usize) -> Fft {
        assert!(n >= 1, "FFT length must be positive");
        if !n.is_power_of_two() {
            return Fft::with_rustfft(n);
        }
        let h = n / 2;
        let (tw_re, tw_im) = (0..h)
            .map(|k| {
                let a = -2.0 * PI * k as f64 / n as f64;
                (a.cos() as f32, a.sin() as f32)
            })
            .unzip();
        let bits = n.trailing_zeros();
        let rev = (0..n)
            .map(|i| {
                if bits == 0 {
                    0
                } else {
                    i.reverse_bits() >> (usize::BITS - bits)
                }
            })
            .collect();
        Fft {
            n,
            kind: Kind::Radix2 { tw_re, tw_im, rev },
        }
    }

    /// The rustfft path for any length (what [`Fft::new`] uses for non-powers of two); public
    /// so the benchmark and tests can set it against the radix-2 kernel.
    pub fn with_rustfft(n: usize) -> Fft {
        assert!(n >= 1, "FFT length must be positive");
        let mut planner = FftPlanner::<f32>::new();
        Fft {
            n,
            kind: Kind::RustFft {
                forward: planner.plan_fft_forward(n),
                inverse: planner.plan_fft_inverse(n),
            },
        }
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Transforms each of the `width` columns of the `n × width` block (re, im) in place.
    pub fn process(&self, re: &mut [f32], im: &mut [f32], width: usize, inverse: bool) {
        let n = self.n;
        assert!(
            re.len() == n * width && im.len() == n * width,
            "FFT block size mismatch"
        );
        match &self.kind {
            Kind::Radix2 { tw_re, tw_im, rev } => {
                radix2(re, im, n, width, tw_re, tw_im, rev, inverse)
            }
            Kind::RustFft {
                forward,
                inverse: inv,
            } => {
                let plan = if inverse { inv } else { forward };
                // Columns gathered into contiguous complex rows, transformed in one batched
                // call, scattered back.
                let mut buf = vec![Complex::<f32>::default(); n * width];
                for r in 0..n {
                    let (rr, ri) = (
                        &re[r * width..(r + 1) * width],
                        &im[r * width..(r + 1) * width],
                    );
                    for c in 0..width {
                        buf[c * n + r] = Complex::new(rr[c], ri[c]);
                    }
                }
                plan.process(&mut buf);
                for r in 0..n {
                    let (rr, ri) = (
                        &mut re[r * width..(r + 1) * width],
                        &mut im[r * width..(r + 1) * width],
                    );
                    for c in 0..width {
                        let v = buf[c * n + r];
                        rr[c] = v.re;
                        ri[c] = v.im;
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn radix2(
    re: &mut [f32],
    im: &mut [f32],
    n: usize,
    w: usize,
    tw_re: &[f32],
    tw_im: &[f32],
    rev: &[usize],
    inverse: bool,
) {
    // The butterflies are the hot loop of the whole simulator: compile them a second time
    // with AVX2 + FMA and pick that copy at run time where the CPU has it.
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the features the function is compiled for were just detected.
            unsafe { radix2_avx2(re, im, n, w, tw_re, tw_im, rev, inverse) };
            return;
        }
    }
    radix2_kernel::<false>(re, im, n, w, tw_re, tw_im, rev, inverse)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn radix2_avx2(
    re: &mut [f32],
    im: &mut [f32],
    n: usize,
    w: usize,
    tw_re: &[f32],
    tw_im: &[f32],
    rev: &[usize],
    inverse: bool,
) {
    radix2_kernel::<true>(re, im, n, w, tw_re, tw_im, rev, inverse)
}

/// Iterative decimation in time: bit reversal, then the log2(n) stages taken two at a time as
/// radix-4 butterflies (half the passes over memory), with one radix-2 stage first when
/// log2(n) is odd. `FMA`: fuse the twiddle products (only where the CPU has FMA; in software
/// it would be slow).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn radix2_kernel<const FMA: bool>(
    re: &mut [f32],
    im: &mut [f32],
    n: usize,
    w: usize,
    tw_re: &[f32],
    tw_im: &[f32],
    rev: &[usize],
    inverse: bool,
) {
    // 1. Bit-reversal permutation of whole rows.
    for (i, &j) in rev.iter().enumerate().take(n) {
        if j > i {
            swap_rows(re, i, j, w);
            swap_rows(im, i, j, w);
        }
    }
    let sign = if inverse { -1.0f32 } else { 1.0 };
    let mut h = 1;
    // 2. A radix-2 stage when log2(n) is odd: pairs rows (a, a + 1), twiddle 1.
    if n.trailing_zeros() % 2 == 1 {
        for start in (0..n).step_by(2) {
            let (lo_r, hi_r) = re[start * w..(start + 2) * w].split_at_mut(w);
            let (lo_i, hi_i) = im[start * w..(start + 2) * w].split_at_mut(w);
            for (((ar, ai), br), bi) in lo_r
                .iter_mut()
                .zip(lo_i.iter_mut())
                .zip(hi_r.iter_mut())
                .zip(hi_i.iter_mut())
            {
                let (tr, ti) = (*br, *bi);
                *br = *ar - tr;
                *bi = *ai - ti;
                *ar += tr;
                *ai += ti;
            }
        }
        h = 2;
    }
    // 3. Radix-4 passes: stages h and 2h fused over rows (a, a+h, a+2h, a+3h):
    //    y0,1 = x0 ± w1 x1, y2,3 = x2 ± w1 x3 (w1 = W_2h^j); z0,2 = y0 ± w2 y2,
    //    z1,3 = y1 ∓ i·w2 y3 (w2 = W_4h^j; ± i for the inverse).
    while h < n {
        let (s1, s2) = (n / (2 * h), n / (4 * h));
        for start in (0..n).step_by(4 * h) {
            for j in 0..h {
                let (w1r, w1i) = (tw_re[j * s1], sign * tw_im[j * s1]);
                let (w2r, w2i) = (tw_re[j * s2], sign * tw_im[j * s2]);
                let base = (start + j) * w;
                let blk_r = &mut re[base..base + 3 * h * w + w];
                let blk_i = &mut im[base..base + 3 * h * w + w];
                let (r0, rest) = blk_r.split_at_mut(h * w);
                let (r1, rest) = rest.split_at_mut(h * w);
                let (r2, r3) = rest.split_at_mut(h * w);
                let (i0, rest) = blk_i.split_at_mut(h * w);
                let (i1, rest) = rest.split_at_mut(h * w);
                let (i2, i3) = rest.split_at_mut(h * w);
                let (r0, r1, r2, r3) = (&mut r0[..w], &mut r1[..w], &mut r2[..w], &mut r3[..w]);
                let (i0, i1, i2, i3) = (&mut i0[..w], &mut i1[..w], &mut i2[..w], &mut i3[..w]);
                for x in 0..w {
                    let (a1r, a1i) = (
                        dot_sub::<FMA>(w1r, r1[x], w1i, i1[x]),
                        dot_add::<FMA>(w1r, i1[x], w1i, r1[x]),
                    );
                    let (a3r, a3i) = (
                        dot_sub::<FMA>(w1r, r3[x], w1i, i3[x]),
                        dot_add::<FMA>(w1r, i3[x], w1i, r3[x]),
                    );
                    let (y0r, y0i, y1r, y1i) = (r0[x] + a1r, i0[x] + a1i, r0[x] - a1r, i0[x] - a1i);
                    let (y2r, y2i, y3r, y3i) = (r2[x] + a3r, i2[x] + a3i, r2[x] - a3r, i2[x] - a3i);
                    let (b2r, b2i) = (
                        dot_sub::<FMA>(w2r, y2r, w2i, y2i),
                        dot_add::<FMA>(w2r, y2i, w2i, y2r),
                    );
                    let (b3r, b3i) = (
                        dot_sub::<FMA>(w2r, y3r, w2i, y3i),
                        dot_add::<FMA>(w2r, y3i, w2i, y3r),
                    );
                    // −i·b3 forward (W_4h^h = −i), +i·b3 inverse.
                    let (c3r, c3i) = (sign * b3i, -sign * b3r);
                    r0[x] = y0r + b2r;
                    i0[x] = y0i + b2i;
                    r2[x] = y0r - b2r;
                    i2[x] = y0i - b2i;
                    r1[x] = y1r + c3r;
                    i1[x] = y1i + c3i;
                    r3[x] = y1r - c3r;
                    i3[x] = y1i - c3i;
                }
            }
        }
        h *= 4;
    }
}

/// a·b − c·d, one rounding fewer with FMA.
#[inline(always)]
fn dot_sub<const FMA: bool>(a: f32, b: f32, c: f32, d: f32) -> f32 {
    if FMA {
        a.mul_add(b, -(c * d))
    } else {
        a * b - c * d
    }
}

/// a·b + c·d, one rounding fewer with FMA.
#[inline(always)]
fn dot_add<const FMA: bool>(a: f32, b: f32, c: f32, d: f32) -> f32 {
    if FMA {
        a.mul_add(b, c * d)
    } else {
        a * b + c * d
    }
}

/// Swaps rows i < j, eight samples per step: `swap_with_slice` and a plain element loop both
/// compiled to scalar moves here, a fifth of the whole transform.
#[inline(always)]
fn swap_rows(v: &mut [f32], i: usize, j: usize, w: usize) {
    let (lo, hi) = v.split_at_mut(j * w);
    let (a, b) = (&mut lo[i * w..(i + 1) * w], &mut hi[..w]);
    let mut ca = a.chunks_exact_mut(8);
    let mut cb = b.chunks_exact_mut(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        let t: [f32; 8] = (&*x).try_into().expect("chunks of eight");
        x.copy_from_slice(y);
        y.copy_from_slice(&t);
    }
    ca.into_remainder().swap_with_slice(cb.into_remainder());
}

/// Transposes a `rows × cols` row-major block into `out` (`cols × rows`), in cache tiles.
pub fn transpose(src: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    const T: usize = 32;
    for r0 in (0..rows).step_by(T) {
        for c0 in (0..cols).step_by(T) {
            for r in r0..(r0 + T).min(rows) {
                for c in c0..(c0 + T).min(cols) {
                    out[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(re: &[f64], im: &[f64], inverse: bool) -> (Vec<f64>, Vec<f64>) {
        let n = re.len();
        let s = if inverse { 1.0 } else { -1.0 };
        (0..n)
            .map(|k| {
                (0..n).fold((0.0, 0.0), |(a, b), j| {
                    let ang = s * 2.0 * PI * (j * k % n) as f64 / n as f64;
                    (
                        a + re[j] * ang.cos() - im[j] * ang.sin(),
                        b + re[j] * ang.sin() + im[j] * ang.cos(),
                    )
                })
            })
            .unzip()
    }

    #[test]
    fn matches_naive_dft_for_pow2_and_other_lengths() {
        for &n in &[1usize, 2, 8, 64, 3, 5, 12, 100, 192] {
            for &inverse in &[false, true] {
                let width = 3;
                let re: Vec<f32> = (0..n * width)
                    .map(|i| ((i * 37 % 17) as f32 - 8.0) / 7.0)
                    .collect();
                let im: Vec<f32> = (0..n * width)
                    .map(|i| ((i * 11 % 13) as f32 - 6.0) / 5.0)
                    .collect();
                let (mut r2, mut i2) = (re.clone(), im.clone());
                Fft::new(n).process(&mut r2, &mut i2, width, inverse);
                // Both paths on every length: the radix-2 kernel and rustfft agree.
                let (mut r3, mut i3) = (re.clone(), im.clone());
                Fft::with_rustfft(n).process(&mut r3, &mut i3, width, inverse);
                for c in 0..width {
                    let col_r: Vec<f64> = (0..n).map(|j| re[j * width + c] as f64).collect();
                    let col_i: Vec<f64> = (0..n).map(|j| im[j * width + c] as f64).collect();
                    let (er, ei) = naive(&col_r, &col_i, inverse);
                    let scale = er.iter().chain(&ei).fold(1.0f64, |a, v| a.max(v.abs()));
                    for k in 0..n {
                        let d = (er[k] - r2[k * width + c] as f64)
                            .abs()
                            .max((ei[k] - i2[k * width + c] as f64).abs())
                            .max((er[k] - r3[k * width + c] as f64).abs())
                            .max((ei[k] - i3[k * width + c] as f64).abs());
                        assert!(
                            d < 2e-5 * scale * (n as f64).log2().max(1.0),
                            "n {n} k {k}: {d}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn transpose_round_trips() {
        let src: Vec<f32> = (0..35 * 70).map(|i| i as f32).collect();
        let mut t = vec![0.0; src.len()];
        let mut back = vec![0.0; src.len()];
        transpose(&src, 35, 70, &mut t);
        transpose(&t, 70, 35, &mut back);
        assert_eq!(src, back);
        assert_eq!(t[3 * 35 + 2], src[2 * 70 + 3]);
    }
}
