//! Partial-Fourier reconstruction by the homodyne method (Noll, Nishimura & Macovski, IEEE
//! Trans Med Imaging 10, 154 (1991)). With only the lines ky ≥ −b acquired, the band |ky| ≤ b
//! is sampled on both sides. A real object's spectrum is conjugate-symmetric, so weighting the
//! lines by H(ky) = 0 below the band, rising linearly 0 → 2 across it and 2 above it (H(ky) +
//! H(−ky) = 2), and keeping the real part after removing the phase of a low-resolution image
//! from the band, restores the missing half. Zero filling instead halves the amplitude of
//! every frequency beyond the band (blur along phase-encode) and adds ringing.

use super::kspace::{self, Geometry, Plans};

/// Per-line weights (DFT order) for one partial-Fourier geometry.
pub struct Homodyne {
    /// Hann window over the symmetric band: the low-resolution phase estimate.
    lowpass: Vec<f32>,
    /// The homodyne ramp H(ky).
    weight: Vec<f32>,
}

impl Homodyne {
    /// Weights for `n` phase lines of which the top ⌈`partial_fourier`·n⌉ are acquired (as
    /// `kspace::sampling_mask` keeps them); `None` at full sampling or with no symmetric band.
    pub fn new(n: usize, partial_fourier: f64) -> Option<Homodyne> {
        let top = n.div_ceil(2) as i64;
        let n_acq = ((partial_fourier * n as f64).ceil() as i64).clamp(1, n as i64);
        // Acquired ky run from top − n_acq up: b lines below zero are mirrored above it.
        let b = n_acq - top;
        if n_acq >= n as i64 || b < 1 {
            return None;
        }
        let bf = b as f64;
        let (mut lowpass, mut weight) = (vec![0f32; n], vec![0f32; n]);
        for l in 0..n {
            let ky = kspace::ky_of(l, n) as f64;
            weight[l] = if ky < -bf {
                0.0
            } else if ky > bf {
                2.0
            } else {
                (1.0 + ky / bf) as f32
            };
            if ky.abs() <= bf {
                let c = (std::f64::consts::PI * ky / (2.0 * (bf + 1.0))).cos();
                lowpass[l] = (c * c) as f32;
            }
        }
        Some(Homodyne { lowpass, weight })
    }

    /// Reconstructs one coil's masked k-space (`re`, `im`: phase lines × read, the read axis in
    /// k-space when `kx_domain`) into its image in place: Re(I_H e^{−iφ}) e^{iφ}, with I_H the
    /// image of the weighted lines and φ the phase of the low-resolution image (so the coil
    /// combinations downstream see the coil's phase).
    pub fn reconstruct(
        &self,
        g: &Geometry,
        plans: &Plans,
        re: &mut [f32],
        im: &mut [f32],
        kx_domain: bool,
    ) {
        let nr = g.n_read;
        let weigh = |w: &[f32], r: &mut [f32], i: &mut [f32]| {
            for (l, &wl) in w.iter().enumerate() {
                r[l * nr..(l + 1) * nr].iter_mut().for_each(|v| *v *= wl);
                i[l * nr..(l + 1) * nr].iter_mut().for_each(|v| *v *= wl);
            }
        };
        let (mut lr, mut li) = (re.to_vec(), im.to_vec());
        weigh(&self.lowpass, &mut lr, &mut li);
        kspace::inverse(g, plans, &mut lr, &mut li, kx_domain);
        weigh(&self.weight, re, im);
        kspace::inverse(g, plans, re, im, kx_domain);
        for k in 0..re.len() {
            let m = lr[k].hypot(li[k]);
            if m > 0.0 {
                let (c, s) = (lr[k] / m, li[k] / m);
                let real = re[k] * c + im[k] * s;
                re[k] = real * c;
                im[k] = real * s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn weights_are_conjugate_complementary_and_vanish_where_nothing_was_acquired() {
        let n = 64;
        let h = Homodyne::new(n, 5.0 / 8.0).unwrap();
        let mask = kspace::sampling_mask(n, 5.0 / 8.0, None, 0);
        for l in 0..n {
            let ky = kspace::ky_of(l, n);
            if !mask[l] {
                assert_eq!(h.weight[l], 0.0, "ky {ky} not acquired");
            }
            // H(ky) + H(−ky) = 2 wherever both are in range.
            if ky.abs() < (n / 2) as i64 {
                let m = (-ky).rem_euclid(n as i64) as usize;
                assert!((h.weight[l] + h.weight[m] - 2.0).abs() < 1e-6, "ky {ky}");
            }
            if h.lowpass[l] > 0.0 {
                assert!(mask[l], "low-pass uses an unacquired line {ky}");
            }
        }
        assert!(Homodyne::new(n, 1.0).is_none());
    }
}
