//! Thermal noise: the protocol's noise level, a fast seeded Gaussian source, and the
//! statistics of magnitude images (Rician for one coil, noncentral χ for root-sum-of-squares).
//!
//! A full 256² × 128-slice, 8-coil acquisition draws ~10⁸ normals, so the source is a
//! SplitMix64 generator keyed from the crate's ChaCha stream (one per slice and coil, hence
//! independent of thread count) feeding a 2048-layer ziggurat (Marsaglia & Tsang, J Stat
//! Softw 2000). Bulk draws ([`FastRng::add_normals`]) run eight xoshiro128++ streams
//! (Blackman & Vigna 2018) keyed from that generator side by side, so the generator and the
//! ziggurat's fast path are a handful of vector instructions per eight normals; an AVX2 copy
//! and a portable copy compute the same numbers.
//!
//! Kept by hand rather than rand_distr's `StandardNormal` because it measured 8.6× faster
//! (`cargo bench --bench mri -- normals_1m`: 0.82 ms per 2²⁰ normals vs 7.0 ms on SmallRng and
//! 8.0 ms on ChaCha8; the scalar ziggurat 3.7 ms), about 0.8 s saved per 8-coil 256² × 128
//! acquisition.

use std::sync::OnceLock;

use puruspe::ln_gamma;
use rand::RngExt;

use super::protocol::MriProtocol;
use crate::rng::{self, Stage};

/// The reference acquisition at which the protocol's `snr` holds: a 1 × 1 × 5 mm voxel, 256
/// phase-encode lines, one excitation, 200 Hz per pixel, 3 T (and one coil, PD 1 at full
/// magnetisation).
pub const REF_VOXEL_MM3: f64 = 5.0;
pub const REF_PHASE_LINES: f64 = 256.0;
pub const REF_BANDWIDTH_HZ_PER_PX: f64 = 200.0;
pub const REF_FIELD_T: f64 = 3.0;

/// Image-domain noise SD per coil (per real and imaginary channel), in the units of the
/// image (M0 of a PD = 1 tissue = 1): SD = 1 / SNR with
///
///   SNR = snr · (ΔV / 5 mm³) · √(N_phase/256 · NEX · 200 Hz / BW_px) · (B0 / 3 T).
///
/// SNR ∝ ΔV·√T_s, T_s the total time the receiver samples a slice's echoes: N_phase · NEX
/// readouts of N_read samples at a total bandwidth BW_px · N_read, so T_s = N_phase · NEX /
/// BW_px and the readout matrix cancels (Edelstein et al., Magn Reson Med 3, 604 (1986);
/// Haacke et al., Magnetic Resonance Imaging, ch. 15). Linear in B0 over clinical fields
/// (sample-dominated noise; Hoult & Lauterbur 1979 give B0^1–1.5). The sequence enters through
/// its signal (`signal`), the coils through their sensitivities and combination. Lines a mask
/// leaves out (partial Fourier, undersampling) lower the image noise power in proportion,
/// because each acquired sample keeps the noise this SD implies for full sampling.
pub fn noise_sigma(p: &MriProtocol) -> f64 {
    let voxel = p.fov_mm[0] / p.matrix[0] as f64 * p.fov_mm[1] / p.matrix[1] as f64 * p.slice_mm;
    let n_phase = p.matrix[1 - p.readout.index()] as f64;
    let sampling = n_phase / REF_PHASE_LINES
        * p.nex as f64
        * (REF_BANDWIDTH_HZ_PER_PX / p.bandwidth_hz_per_px);
    let snr = p.snr * (voxel / REF_VOXEL_MM3) * sampling.sqrt() * (p.field_t / REF_FIELD_T);
    1.0 / snr
}

/// The coils' receive-noise covariance Ψ (unit diagonal, row-major `coils` × `coils`): coils
/// k places apart on their ring of eight correlate by ρ^k (k the shorter way round, plus one
/// per ring between them).
pub fn coil_noise_covariance(p: &MriProtocol) -> Vec<f64> {
    let n = p.coils;
    let rho = p.coil_noise_correlation;
    let ring_len = |ring: usize| (n - 8 * ring).min(8);
    (0..n * n)
        .map(|i| {
            let (a, b) = (i / n, i % n);
            let (ra, rb) = (a / 8, b / 8);
            let k = if ra == rb {
                let m = ring_len(ra);
                let d = (a % 8).abs_diff(b % 8);
                d.min(m - d)
            } else {
                ra.abs_diff(rb) + (a % 8).abs_diff(b % 8)
            };
            rho.powi(k as i32)
        })
        .collect()
}

/// Lower Cholesky factor L of [`coil_noise_covariance`] (Ψ = L Lᵀ), row-major; `None` when
/// the coils' noise is independent (ρ = 0 or one coil) or Ψ is not positive definite.
pub fn coil_noise_cholesky(p: &MriProtocol) -> Option<Vec<f64>> {
    if p.coil_noise_correlation == 0.0 || p.coils < 2 {
        return None;
    }
    let n = p.coils;
    let psi = coil_noise_covariance(p);
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = psi[i * n + i] - s;
                if d <= 0.0 {
                    return None;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (psi[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    Some(l)
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
        let iz = (u & LAYER_MASK as u64) as usize;
        let hz = (u >> 32) as u32 as i32;
        if (hz.unsigned_abs()) < t.kn[iz] {
            return (hz as f64 * t.wn[iz]) as f32;
        }
        self.normal_tail(hz, iz) as f32
    }

    /// Adds `sd`·N(0, 1) to every element of `re` and `im` (one independent draw each), in
    /// blocks of eight: eight draws for `re`, then eight for `im`. The draws come from eight
    /// xoshiro128++ streams keyed from this generator, one 32-bit word per normal (layer in
    /// the low 11 bits, value from the whole word, as in Marsaglia & Tsang's original, which
    /// leaves 20 free bits per value within a layer, steps of ~10⁻⁶ of its width); the
    /// rare draws outside the ziggurat's rectangles are finished by [`FastRng::normal`]'s
    /// slow path on this generator. The result does not depend on the CPU.
    pub fn add_normals(&mut self, sd: f32, re: &mut [f32], im: &mut [f32]) {
        Normals::new(self).add(sd, re, im);
    }

    #[cold]
    #[inline(never)]
    fn normal_tail(&mut self, mut hz: i32, mut iz: usize) -> f64 {
        let t = tables();
        const R: f64 = ZIG_R;
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
            iz = (u & LAYER_MASK as u64) as usize;
            hz = (u >> 32) as u32 as i32;
            if hz.unsigned_abs() < t.kn[iz] {
                return hz as f64 * t.wn[iz];
            }
        }
    }
}

/// [`FastRng::add_normals`] in pieces: successive [`Normals::add`] calls continue one draw
/// sequence, so a buffer filled piece by piece (while its pieces are in cache) gets the numbers
/// one call over all of it would give, as long as the pieces are multiples of eight long.
pub struct Normals<'a> {
    rng: &'a mut FastRng,
    lanes: Lanes,
}

impl<'a> Normals<'a> {
    pub fn new(rng: &'a mut FastRng) -> Normals<'a> {
        let lanes = Lanes::new(rng);
        Normals { rng, lanes }
    }

    /// Adds `sd`·N(0, 1) to every element of `re` and `im`, as [`FastRng::add_normals`].
    pub fn add(&mut self, sd: f32, re: &mut [f32], im: &mut [f32]) {
        self.draw::<true>(sd, re, im);
    }

    /// Sets every element of `re` and `im` to `sd`·N(0, 1): the numbers [`Normals::add`]
    /// would add, without reading (or first zeroing) the buffers.
    pub fn set(&mut self, sd: f32, re: &mut [f32], im: &mut [f32]) {
        self.draw::<false>(sd, re, im);
    }

    fn draw<const ADD: bool>(&mut self, sd: f32, re: &mut [f32], im: &mut [f32]) {
        let n = re.len().min(im.len());
        let (re, im) = (&mut re[..n], &mut im[..n]);
        let (rng, lanes) = (&mut *self.rng, &mut self.lanes);
        let full = n - n % LANES;
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 was just detected.
                unsafe { normals_avx2::<ADD>(rng, lanes, sd, &mut re[..full], &mut im[..full]) };
            } else {
                normals_portable::<ADD>(rng, lanes, sd, &mut re[..full], &mut im[..full]);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        normals_portable::<ADD>(rng, lanes, sd, &mut re[..full], &mut im[..full]);
        if full < n {
            let mut r = [0.0f32; LANES];
            let mut i = [0.0f32; LANES];
            r[..n - full].copy_from_slice(&re[full..]);
            i[..n - full].copy_from_slice(&im[full..]);
            normals_portable::<ADD>(rng, lanes, sd, &mut r, &mut i);
            re[full..].copy_from_slice(&r[..n - full]);
            im[full..].copy_from_slice(&i[..n - full]);
        }
    }
}

/// Streams drawn side by side in [`FastRng::add_normals`].
const LANES: usize = 8;

/// Eight xoshiro128++ states, word-major (`s[w][lane]`).
struct Lanes {
    s: [[u32; LANES]; 4],
}

impl Lanes {
    /// Keys the eight streams from `rng` (xoshiro needs a nonzero state; SplitMix output words
    /// are never all zero for a lane in practice, and a zero lane is nudged).
    fn new(rng: &mut FastRng) -> Lanes {
        let words: [[u32; 4]; LANES] = std::array::from_fn(|_| {
            let (a, b) = (rng.next_u64(), rng.next_u64());
            [
                a as u32,
                (a >> 32) as u32,
                b as u32,
                ((b >> 32) as u32) | u32::from(a == 0 && b == 0),
            ]
        });
        Lanes {
            s: std::array::from_fn(|w| std::array::from_fn(|l| words[l][w])),
        }
    }

    /// One 32-bit output per lane.
    #[inline(always)]
    fn next(&mut self) -> [u32; LANES] {
        let [s0, s1, s2, s3] = &mut self.s;
        let mut out = [0u32; LANES];
        for l in 0..LANES {
            out[l] = s0[l].wrapping_add(s3[l]).rotate_left(7).wrapping_add(s0[l]);
            let t = s1[l] << 9;
            s2[l] ^= s0[l];
            s3[l] ^= s1[l];
            s1[l] ^= s2[l];
            s0[l] ^= s3[l];
            s2[l] ^= t;
            s3[l] = s3[l].rotate_left(11);
        }
        out
    }
}

/// Ziggurat on eight 32-bit words: the fast path in f32, the rest by [`FastRng::normal_tail`].
#[inline(always)]
fn zig8(rng: &mut FastRng, t: &Zig, u: [u32; LANES]) -> [f32; LANES] {
    let mut z = [0.0f32; LANES];
    for l in 0..LANES {
        let iz = (u[l] & LAYER_MASK) as usize;
        let hz = u[l] as i32;
        z[l] = if hz.unsigned_abs() < t.kn[iz] {
            hz as f32 * t.wn32[iz]
        } else {
            rng.normal_tail(hz, iz) as f32
        };
    }
    z
}

/// The lanes of `z` whose bit in `mask` is clear, by the ziggurat's slow path (kept out of
/// line so the vector loop keeps its registers).
#[cfg(target_arch = "x86_64")]
#[cold]
#[inline(never)]
fn finish_slow_lanes(rng: &mut FastRng, z: &mut [f32; LANES], u: &[u32; LANES], mask: i32) {
    for l in 0..LANES {
        if mask & (1 << l) == 0 {
            z[l] = rng.normal_tail(u[l] as i32, (u[l] & LAYER_MASK) as usize) as f32;
        }
    }
}

/// The portable [`Normals::add`] (`ADD`) or [`Normals::set`] on whole blocks of eight.
fn normals_portable<const ADD: bool>(
    rng: &mut FastRng,
    lanes: &mut Lanes,
    sd: f32,
    re: &mut [f32],
    im: &mut [f32],
) {
    let t = tables();
    for (r, i) in re.chunks_exact_mut(LANES).zip(im.chunks_exact_mut(LANES)) {
        for out in [r, i] {
            let z = zig8(rng, t, lanes.next());
            for (o, z) in out.iter_mut().zip(z) {
                *o = if ADD { *o + sd * z } else { sd * z };
            }
        }
    }
}

/// [`normals_portable`] in AVX2, number for number (the same f32 operations, no fused
/// multiply–add).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn normals_avx2<const ADD: bool>(
    rng: &mut FastRng,
    lanes: &mut Lanes,
    sd: f32,
    re: &mut [f32],
    im: &mut [f32],
) {
    use std::arch::x86_64::*;
    let t = tables();
    // SAFETY (all loads and stores below): `Lanes` rows and every chunk hold eight values.
    let [mut s0, mut s1, mut s2, mut s3] = lanes
        .s
        .map(|w| unsafe { _mm256_loadu_si256(w.as_ptr() as *const __m256i) });
    macro_rules! rotl {
        ($x:expr, $k:literal) => {
            _mm256_or_si256(
                _mm256_slli_epi32::<$k>($x),
                _mm256_srli_epi32::<{ 32 - $k }>($x),
            )
        };
    }
    let (mask_iz, vsd) = (_mm256_set1_epi32(LAYER_MASK as i32), _mm256_set1_ps(sd));
    let neg1 = _mm256_set1_epi32(-1);
    for (r, i) in re.chunks_exact_mut(LANES).zip(im.chunks_exact_mut(LANES)) {
        for out in [r, i] {
            let u = _mm256_add_epi32(rotl!(_mm256_add_epi32(s0, s3), 7), s0);
            let tt = _mm256_slli_epi32::<9>(s1);
            s2 = _mm256_xor_si256(s2, s0);
            s3 = _mm256_xor_si256(s3, s1);
            s1 = _mm256_xor_si256(s1, s2);
            s0 = _mm256_xor_si256(s0, s3);
            s2 = _mm256_xor_si256(s2, tt);
            s3 = rotl!(s3, 11);
            let iz = _mm256_and_si256(u, mask_iz);
            // SAFETY: iz < LAYERS, the tables' length.
            let (kn, wn) = unsafe {
                (
                    _mm256_i32gather_epi32::<4>(t.kn.as_ptr() as *const i32, iz),
                    _mm256_i32gather_ps::<4>(t.wn32.as_ptr(), iz),
                )
            };
            // |hz| < kn as unsigned: kn < 2³¹, and |i32::MIN| (negative as i32) never passes.
            let a = _mm256_abs_epi32(u);
            let fast = _mm256_and_si256(_mm256_cmpgt_epi32(kn, a), _mm256_cmpgt_epi32(a, neg1));
            let mut z = _mm256_mul_ps(_mm256_cvtepi32_ps(u), wn);
            let mask = _mm256_movemask_ps(_mm256_castsi256_ps(fast));
            if mask != 0xff {
                let mut zs = [0.0f32; LANES];
                let mut us = [0u32; LANES];
                unsafe {
                    _mm256_storeu_ps(zs.as_mut_ptr(), z);
                    _mm256_storeu_si256(us.as_mut_ptr() as *mut __m256i, u);
                }
                finish_slow_lanes(rng, &mut zs, &us, mask);
                z = unsafe { _mm256_loadu_ps(zs.as_ptr()) };
            }
            unsafe {
                let p = out.as_mut_ptr();
                let v = _mm256_mul_ps(vsd, z);
                _mm256_storeu_ps(
                    p,
                    if ADD {
                        _mm256_add_ps(_mm256_loadu_ps(p), v)
                    } else {
                        v
                    },
                );
            }
        }
    }
    for (dst, v) in lanes.s.iter_mut().zip([s0, s1, s2, s3]) {
        unsafe { _mm256_storeu_si256(dst.as_mut_ptr() as *mut __m256i, v) };
    }
}

/// Ziggurat layers: 2048 rather than the original 128 cuts the draws that miss the
/// rectangles, each of which costs an `exp` and a function call, from 2.8 % to 0.23 % (with a
/// 32-bit value); the fast path's tables (16 kB) stay in L1.
const LAYERS: usize = 2048;
/// Index bits of a draw.
const LAYER_MASK: u32 = LAYERS as u32 - 1;
/// Start of the tail beyond the base strip, and the common layer area, for 2048 layers: the
/// R that makes the layer recursion end exactly at the top, f(0) = 1, and V = R f(R) +
/// ∫_R^∞ f, with f(x) = exp(−x²/2) (solved by bisection in double precision).
const ZIG_R: f64 = 4.216_370_409_511_896;
const ZIG_V: f64 = 6.126_065_176_240_485e-4;

struct Zig {
    kn: [u32; LAYERS],
    wn: [f64; LAYERS],
    fn_: [f64; LAYERS],
    /// `wn` in f32 for the vector fast path.
    wn32: [f32; LAYERS],
}

fn tables() -> &'static Zig {
    static T: OnceLock<Zig> = OnceLock::new();
    T.get_or_init(|| {
        // Marsaglia & Tsang (2000), `zigset`, with LAYERS layers.
        let m1 = 2147483648.0f64;
        let mut dn = ZIG_R;
        let mut tn = dn;
        let vn = ZIG_V;
        let mut z = Zig {
            kn: [0; LAYERS],
            wn: [0.0; LAYERS],
            fn_: [0.0; LAYERS],
            wn32: [0.0; LAYERS],
        };
        let q = vn / (-0.5 * dn * dn).exp();
        z.kn[0] = ((dn / q) * m1) as u32;
        z.kn[1] = 0;
        z.wn[0] = q / m1;
        z.wn[LAYERS - 1] = dn / m1;
        z.fn_[0] = 1.0;
        z.fn_[LAYERS - 1] = (-0.5 * dn * dn).exp();
        for i in (1..=LAYERS - 2).rev() {
            dn = (-2.0 * (vn / dn + (-0.5 * dn * dn).exp()).ln()).sqrt();
            z.kn[i + 1] = ((dn / tn) * m1) as u32;
            tn = dn;
            z.fn_[i] = (-0.5 * dn * dn).exp();
            z.wn[i] = dn / m1;
        }
        z.wn32 = z.wn.map(|w| w as f32);
        z
    })
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
    let (i0, i1) = (puruspe::In(0, -x / 2.0), puruspe::In(1, -x / 2.0));
    sigma * (std::f64::consts::PI / 2.0).sqrt() * (x / 2.0).exp() * ((1.0 - x) * i0 - x * i1)
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
    }
}
