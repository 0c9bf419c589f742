//! Coil combination of reconstructed (zero-filled) coil images into one magnitude image:
//! root-sum-of-squares, the sensitivity-weighted (Roemer) combination, and SENSE unfolding of
//! regularly undersampled data. All take magnitudes of complex data, so background noise is
//! Rayleigh / χ-distributed, never Gaussian.

use rustfft::num_complex::Complex;

use super::protocol::{Combine, MriProtocol, SamplingPattern};

/// The SENSE acceleration R when `combine: sense` unfolds the image: regular undersampling
/// by an integer R > 1 (`MriProtocol::validate` holds R to the coils and the phase lines).
pub fn sense_unfold_factor(p: &MriProtocol) -> Option<usize> {
    let u = p.undersampling.as_ref()?;
    (p.combine == Combine::Sense
        && u.pattern == SamplingPattern::Regular
        && u.factor > 1.0
        && u.factor.fract() == 0.0)
        .then_some(u.factor as usize)
}

/// Cartesian SENSE (Pruessmann et al., Magn Reson Med 42, 952 (1999)): every R-th phase line
/// acquired, each coil's zero-filled image is (1/R) Σ_k c(y + k·N/R)·ρ(y + k·N/R), so at each
/// of the N/R aliased positions the R pixels solve ρ = R (CᴴΨ⁻¹C)⁻¹ CᴴΨ⁻¹ a with the coil
/// maps C and the coils' noise covariance Ψ = LLᵀ (applied by prewhitening: a′ = L⁻¹a,
/// C′ = L⁻¹C). The g-factor g_k = √([(C′ᴴC′)⁻¹]_kk [C′ᴴC′]_kk) is the noise amplification
/// beyond the √R of the shorter scan. With R = 1 it is the noise-optimal (Roemer) combination.
pub struct Unfold {
    r: usize,
    np: usize,
    nr: usize,
    /// Per coil (by coil index): image and map.
    imgs: Vec<(Vec<f32>, Vec<f32>)>,
    maps: Vec<(Vec<f32>, Vec<f32>)>,
    /// Lower Cholesky factor of the noise covariance (row-major), when not the identity.
    whiten: Option<Vec<f64>>,
    current: usize,
}

impl Unfold {
    fn add_at(&mut self, at: usize, re: &[f32], im: &[f32], c_re: &[f32], c_im: &[f32]) {
        let n = self.np * self.nr;
        while self.imgs.len() <= self.current {
            self.imgs.push((Vec::new(), Vec::new()));
            self.maps.push((Vec::new(), Vec::new()));
        }
        if at == 0 {
            self.imgs[self.current] = (vec![0.0; n], vec![0.0; n]);
            self.maps[self.current] = (vec![0.0; n], vec![0.0; n]);
        }
        let (img, map) = (&mut self.imgs[self.current], &mut self.maps[self.current]);
        let k = re.len();
        img.0[at..at + k].copy_from_slice(re);
        img.1[at..at + k].copy_from_slice(im);
        map.0[at..at + k].copy_from_slice(&c_re[..k]);
        map.1[at..at + k].copy_from_slice(&c_im[..k]);
    }

    /// The unfolded magnitude image and the g-factor map.
    fn finish(self) -> (Vec<f32>, Vec<f32>) {
        let (r, np, nr) = (self.r, self.np, self.nr);
        let n = np * nr;
        let step = np / r;
        let nc = self.imgs.len();
        let (mut out, mut g) = (vec![0f32; n], vec![0f32; n]);
        let c64 = |v: &(Vec<f32>, Vec<f32>), i: usize| Complex::new(v.0[i] as f64, v.1[i] as f64);
        let mut cm = vec![Complex::new(0.0, 0.0); nc * r];
        let mut av = vec![Complex::new(0.0, 0.0); nc];
        for l0 in 0..step {
            for x in 0..nr {
                let idx = |k: usize| (l0 + k * step) * nr + x;
                for c in 0..nc {
                    av[c] = c64(&self.imgs[c], idx(0));
                    for k in 0..r {
                        cm[c * r + k] = c64(&self.maps[c], idx(k));
                    }
                }
                if let Some(l) = &self.whiten {
                    // Forward substitution L y = v for the data and each column of C.
                    for c in 0..nc {
                        let d = l[c * nc + c];
                        let mut s = av[c];
                        for e in 0..c {
                            s -= av[e] * l[c * nc + e];
                        }
                        av[c] = s / d;
                        for k in 0..r {
                            let mut s = cm[c * r + k];
                            for e in 0..c {
                                s -= cm[e * r + k] * l[c * nc + e];
                            }
                            cm[c * r + k] = s / d;
                        }
                    }
                }
                // A = CᴴC, b = Cᴴa.
                let mut a = vec![Complex::new(0.0, 0.0); r * r];
                let mut b = vec![Complex::new(0.0, 0.0); r];
                for c in 0..nc {
                    let ac = av[c];
                    for i in 0..r {
                        let ci = cm[c * r + i].conj();
                        b[i] += ci * ac;
                        for j in 0..r {
                            a[i * r + j] += ci * cm[c * r + j];
                        }
                    }
                }
                let diag: Vec<f64> = (0..r).map(|i| a[i * r + i].re).collect();
                let Some(inv) = invert(&a, r) else {
                    continue;
                };
                for k in 0..r {
                    let rho: Complex<f64> = (0..r).map(|j| inv[k * r + j] * b[j]).sum();
                    out[idx(k)] = (r as f64 * rho.norm()) as f32;
                    g[idx(k)] = (inv[k * r + k].re * diag[k]).max(0.0).sqrt() as f32;
                }
            }
        }
        (out, g)
    }
}

/// Inverse of the r × r matrix `a` (row-major) by Gauss–Jordan with partial pivoting; `None`
/// when singular.
pub(super) fn invert(a: &[Complex<f64>], r: usize) -> Option<Vec<Complex<f64>>> {
    let mut m = a.to_vec();
    let mut inv = vec![Complex::new(0.0, 0.0); r * r];
    for i in 0..r {
        inv[i * r + i] = Complex::new(1.0, 0.0);
    }
    let scale = (0..r).map(|i| m[i * r + i].norm()).fold(0.0, f64::max);
    for col in 0..r {
        let piv =
            (col..r).max_by(|&p, &q| m[p * r + col].norm().total_cmp(&m[q * r + col].norm()))?;
        if m[piv * r + col].norm() <= 1e-12 * scale.max(1e-300) {
            return None;
        }
        for j in 0..r {
            m.swap(col * r + j, piv * r + j);
            inv.swap(col * r + j, piv * r + j);
        }
        let d = m[col * r + col].inv();
        for j in 0..r {
            m[col * r + j] *= d;
            inv[col * r + j] *= d;
        }
        for row in 0..r {
            if row != col {
                let f = m[row * r + col];
                if f.norm() > 0.0 {
                    for j in 0..r {
                        let (mc, ic) = (m[col * r + j], inv[col * r + j]);
                        m[row * r + j] -= f * mc;
                        inv[row * r + j] -= f * ic;
                    }
                }
            }
        }
    }
    Some(inv)
}

/// Running combination over coils for one slice.
pub enum Combiner {
    /// Σ|ρ_i|², square-rooted at the end (Larsson et al., MRM 2003).
    Rss(Vec<f32>),
    /// Σ c_i* ρ_i and Σ|c_i|²: |Σ c* ρ| / Σ|c|² (Roemer et al., MRM 1990, with the true maps).
    Sense {
        re: Vec<f32>,
        im: Vec<f32>,
        w: Vec<f32>,
    },
    /// SENSE unfolding of regularly undersampled coil images.
    Unfold(Unfold),
}

impl Combiner {
    /// The combination a protocol asks for on an `np` × `nr` slice (rows: phase lines);
    /// `noise_chol`: the Cholesky factor of the coils' noise covariance when correlated.
    pub fn for_protocol(
        p: &MriProtocol,
        np: usize,
        nr: usize,
        noise_chol: Option<&[f64]>,
    ) -> Combiner {
        let unfold = |r: usize| {
            Combiner::Unfold(Unfold {
                r,
                np,
                nr,
                imgs: Vec::new(),
                maps: Vec::new(),
                whiten: noise_chol.map(<[f64]>::to_vec),
                current: 0,
            })
        };
        match sense_unfold_factor(p) {
            Some(r) => unfold(r),
            // Correlated coil noise: the prewhitened (noise-optimal) sensitivity combination.
            None if p.combine == Combine::Sense && noise_chol.is_some() => unfold(1),
            // GRAPPA fills k-space before the coils are combined, by RSS.
            None => Combiner::new(p.combine == Combine::Sense, np * nr),
        }
    }

    /// The coil whose pieces follow (used by SENSE unfolding, which keeps coils apart).
    pub fn start_coil(&mut self, c: usize) {
        if let Combiner::Unfold(u) = self {
            u.current = c;
        }
    }

    pub fn new(sense: bool, n: usize) -> Combiner {
        if sense {
            Combiner::Sense {
                re: vec![0.0; n],
                im: vec![0.0; n],
                w: vec![0.0; n],
            }
        } else {
            Combiner::Rss(vec![0.0; n])
        }
    }

    /// Adds one coil image (re, im) with its sensitivity (c_re, c_im) on the output grid
    /// (ignored by RSS). Coils are added one after the other.
    pub fn add(&mut self, re: &[f32], im: &[f32], c_re: &[f32], c_im: &[f32]) {
        self.add_at(0, re, im, c_re, c_im);
    }

    /// [`Combiner::add`] for the pixels from `at` on (a piece of a coil image, e.g. a row;
    /// a coil's pieces in order, starting at 0).
    #[inline]
    pub fn add_at(&mut self, at: usize, re: &[f32], im: &[f32], c_re: &[f32], c_im: &[f32]) {
        let n = re.len();
        match self {
            Combiner::Unfold(u) => u.add_at(at, re, im, c_re, c_im),
            Combiner::Rss(acc) => {
                for ((a, r), i) in acc[at..at + n].iter_mut().zip(re).zip(im) {
                    *a += r * r + i * i;
                }
            }
            Combiner::Sense { re: ar, im: ai, w } => {
                let (ar, ai, w) = (&mut ar[at..at + n], &mut ai[at..at + n], &mut w[at..at + n]);
                let (c_re, c_im, im) = (&c_re[..n], &c_im[..n], &im[..n]);
                for k in 0..n {
                    let (cr, ci) = (c_re[k], c_im[k]);
                    ar[k] += cr * re[k] + ci * im[k];
                    ai[k] += cr * im[k] - ci * re[k];
                    w[k] += cr * cr + ci * ci;
                }
            }
        }
    }

    /// The combined magnitude, and the g-factor map where SENSE unfolded it.
    pub fn finish(self) -> (Vec<f32>, Option<Vec<f32>>) {
        match self {
            Combiner::Unfold(u) => {
                let (img, g) = u.finish();
                (img, Some(g))
            }
            Combiner::Rss(acc) => (acc.into_iter().map(f32::sqrt).collect(), None),
            Combiner::Sense { re, im, w } => (
                re.iter()
                    .zip(&im)
                    .zip(&w)
                    .map(|((r, i), w)| {
                        if *w > 0.0 {
                            (r * r + i * i).sqrt() / w
                        } else {
                            0.0
                        }
                    })
                    .collect(),
                None,
            ),
        }
    }
}
