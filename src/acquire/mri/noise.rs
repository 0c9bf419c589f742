//! Thermal noise: the protocol's noise level, a fast seeded Gaussian source, and the
//! statistics of magnitude images (Rician for one coil, noncentral χ for root-sum-of-squares).
//!
//! A full 256² × 128-slice, 8-coil acquisition draws ~10⁸ normals, so the source is a
//! SplitMix64 generator keyed from the crate's ChaCha stream (one per slice and coil, hence
//! independent of thread count) feeding a 128-layer ziggurat (Marsaglia & Tsang, J Stat
//! Softw 2000), with the layer index and the value taken from disjoint bits (Doornik 2005).

use std::sync::OnceLock;

use rand::RngExt;

use super::protocol::MriProtocol;
use crate::rng::{self, Stage};

/// Image-domain noise SD per coil (per real and imaginary channel), in the units of the
/// image (M0 of a PD = 1 tissue = 1): SD = 1 / SNR with
/// SNR = snr_reference · (voxel / 5 mm³) · √NEX · (B0 / 3 T).
pub fn noise_sigma(p: &MriProtocol) -> f64 {
    let voxel = p.fov_mm[0] / p.matrix[0] as f64 * p.fov_mm[1] / p.matrix[1] as f64 * p.slice_mm;
    let snr = p.snr_reference * (voxel / 5.0) * (p.nex as f64).sqrt() * (p.field_t / 3.0);
    1.0 / snr
}

/// SplitMix64 (Steele, Lea & Flood 2014): one add and two multiplies per 64 bits.
#[derive(Clone, Debug)]
pub struct FastRng(u64);

impl FastRng {
    /// Keyed from the crate's per-subject stream, so results do not depend on scheduling.
    pub fn from_stream(seed: u64, sub: u64) -> FastRng {
        FastRng(rng::stream(seed, Stage::Acquire, sub).random::<u64>())
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal by the ziggurat.
    #[inline]
    pub fn normal(&mut self) -> f32 {
        let t = tables();
        let u = self.next_u64();
        let iz = (u & 127) as usize;
        let hz = (u >> 32) as u32 as i32;
        if (hz.unsigned_abs()) < t.kn[iz] {
            return (hz as f64 * t.wn[iz]) as f32;
        }
        self.normal_tail(hz, iz) as f32
    }

    /// Adds `sd`·N(0, 1) to every element of `re` and `im` (one independent draw each).
    /// Each 64-bit word feeds two ziggurat draws (index in the low 7 bits of each half, value
    /// from the whole half, as in Marsaglia & Tsang's 32-bit original): half the generator
    /// calls of [`FastRng::normal`] for the ~10⁸ draws of a multi-coil volume.
    pub fn add_normals(&mut self, sd: f32, re: &mut [f32], im: &mut [f32]) {
        let t = tables();
        let draw = |h: u32, rng: &mut FastRng| -> f32 {
            let iz = (h & 127) as usize;
            let hz = h as i32;
            if hz.unsigned_abs() < t.kn[iz] {
                (hz as f64 * t.wn[iz]) as f32
            } else {
                rng.normal_tail(hz, iz) as f32
            }
        };
        for (r, i) in re.iter_mut().zip(im.iter_mut()) {
            let u = self.next_u64();
            *r += sd * draw(u as u32, self);
            *i += sd * draw((u >> 32) as u32, self);
        }
    }

    #[cold]
    fn normal_tail(&mut self, mut hz: i32, mut iz: usize) -> f64 {
        let t = tables();
        const R: f64 = 3.442_619_855_899;
        loop {
            let x = hz as f64 * t.wn[iz];
            if iz == 0 {
                // Base strip: sample the tail beyond R (Marsaglia 1964).
                loop {
                    let x = -self.uniform().ln() / R;
                    let y = -self.uniform().ln();
                    if y + y >= x * x {
                        return if hz > 0 { R + x } else { -R - x };
                    }
                }
            }
            if t.fn_[iz] + self.uniform() * (t.fn_[iz - 1] - t.fn_[iz]) < (-0.5 * x * x).exp() {
                return x;
            }
            let u = self.next_u64();
            iz = (u & 127) as usize;
            hz = (u >> 32) as u32 as i32;
            if hz.unsigned_abs() < t.kn[iz] {
                return hz as f64 * t.wn[iz];
            }
        }
    }
}

struct Zig {
    kn: [u32; 128],
    wn: [f64; 128],
    fn_: [f64; 128],
}

fn tables() -> &'static Zig {
    static T: OnceLock<Zig> = OnceLock::new();
    T.get_or_init(|| {
        // Marsaglia & Tsang (2000), `zigset` for 128 layers.
        let m1 = 2147483648.0f64;
        let mut dn = 3.442619855899f64;
        let mut tn = dn;
        let vn = 9.91256303526217e-3f64;
        let mut z = Zig {
            kn: [0; 128],
            wn: [0.0; 128],
            fn_: [0.0; 128],
        };
        let q = vn / (-0.5 * dn * dn).exp();
        z.kn[0] = ((dn / q) * m1) as u32;
        z.kn[1] = 0;
        z.wn[0] = q / m1;
        z.wn[127] = dn / m1;
        z.fn_[0] = 1.0;
        z.fn_[127] = (-0.5 * dn * dn).exp();
        for i in (1..=126).rev() {
            dn = (-2.0 * (vn / dn + (-0.5 * dn * dn).exp()).ln()).sqrt();
            z.kn[i + 1] = ((dn / tn) * m1) as u32;
            tn = dn;
            z.fn_[i] = (-0.5 * dn * dn).exp();
            z.wn[i] = dn / m1;
        }
        z
    })
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9).
pub fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Mean and SD of the root-sum-of-squares of `n_coils` pure-noise complex channels of SD σ
/// per real component: a scaled central χ with 2N degrees of freedom,
/// mean = σ √2 Γ(N + ½) / Γ(N), variance = 2Nσ² − mean². N = 1 is Rayleigh (σ√(π/2)).
pub fn central_chi_mean_sd(sigma: f64, n_coils: usize) -> (f64, f64) {
    let n = n_coils as f64;
    let mean = sigma * 2f64.sqrt() * (ln_gamma(n + 0.5) - ln_gamma(n)).exp();
    (
        mean,
        (2.0 * n * sigma * sigma - mean * mean).max(0.0).sqrt(),
    )
}

/// Mean of a Rician magnitude |A + σ(n₁ + i n₂)| (Rice 1944):
/// σ √(π/2) L_{1/2}(−A²/2σ²), with L_{1/2}(x) = e^{x/2}[(1 − x) I₀(−x/2) − x I₁(−x/2)].
pub fn rician_mean(a: f64, sigma: f64) -> f64 {
    let x = -a * a / (2.0 * sigma * sigma);
    if -x > 300.0 {
        // Large SNR: √(A² + σ²) to O(σ⁴/A³).
        return (a * a + sigma * sigma).sqrt();
    }
    let (i0, i1) = (bessel_i(0, -x / 2.0), bessel_i(1, -x / 2.0));
    sigma * (std::f64::consts::PI / 2.0).sqrt() * (x / 2.0).exp() * ((1.0 - x) * i0 - x * i1)
}

/// Modified Bessel function I_ν(x), ν ∈ {0, 1}, by its power series (x ≤ 150 here).
fn bessel_i(nu: u32, x: f64) -> f64 {
    let h = x / 2.0;
    let mut term = if nu == 0 { 1.0 } else { h };
    let mut sum = term;
    for k in 1..500 {
        term *= h * h / (k as f64 * (k + nu as usize) as f64);
        sum += term;
        if term < 1e-17 * sum {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ziggurat_gives_standard_normal_moments() {
        let mut r = FastRng(12345);
        let n = 2_000_000;
        let (mut s1, mut s2, mut s4, mut tail) = (0.0f64, 0.0f64, 0.0f64, 0usize);
        for _ in 0..n {
            let x = r.normal() as f64;
            s1 += x;
            s2 += x * x;
            s4 += x * x * x * x;
            if x.abs() > 3.0 {
                tail += 1;
            }
        }
        let (m, v, k) = (s1 / n as f64, s2 / n as f64, s4 / n as f64);
        let p3 = tail as f64 / n as f64;
        eprintln!("ziggurat: mean {m:.4} var {v:.4} E[x⁴] {k:.3} P(|x|>3) {p3:.5} (0.00270)");
        assert!(m.abs() < 0.003 && (v - 1.0).abs() < 0.005 && (k - 3.0).abs() < 0.05);
        assert!((p3 - 0.0026998).abs() < 0.0003);
    }

    #[test]
    fn paired_draws_are_standard_normal_and_uncorrelated() {
        let mut r = FastRng(99);
        let n = 1_000_000;
        let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
        r.add_normals(1.0, &mut a, &mut b);
        let m = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        let var = |v: &[f32]| v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / n as f64;
        let cov = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| x as f64 * y as f64)
            .sum::<f64>()
            / n as f64;
        eprintln!(
            "paired ziggurat: means {:.4} {:.4} vars {:.4} {:.4} cov {cov:.4}",
            m(&a),
            m(&b),
            var(&a),
            var(&b)
        );
        assert!(m(&a).abs() < 0.004 && m(&b).abs() < 0.004 && cov.abs() < 0.004);
        assert!((var(&a) - 1.0).abs() < 0.006 && (var(&b) - 1.0).abs() < 0.006);
    }

    #[test]
    fn chi_and_rice_formulas() {
        let (m, _) = central_chi_mean_sd(1.0, 1);
        assert!((m - (std::f64::consts::PI / 2.0).sqrt()).abs() < 1e-10);
        assert!((rician_mean(0.0, 1.0) - m).abs() < 1e-10);
        assert!((rician_mean(50.0, 1.0) - (2501.0f64).sqrt()).abs() < 1e-3);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-10);
    }
}
