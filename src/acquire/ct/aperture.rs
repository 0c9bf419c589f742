//! Finite focal spot and detector aperture. The projector samples line integrals at points; a
//! real detector cell integrates over its width and a real focal spot is an extended source,
//! so each projection is blurred by two boxes: the cell aperture (its pitch) and the focal
//! spot's penumbra, which referred to the isocentre is f·(SDD − SID)/SDD wide (Hsieh,
//! Computed Tomography, 2nd ed., §3.4). Their transfer function sinc(a·u)·sinc(b·u) is
//! matched (within 0.02 up to 0.8 of the detector's Nyquist frequency, 0.06 at it) by a
//! symmetric 7-tap filter applied to the noise-free line integrals of each detector row (and,
//! in cone mode, column) before the detector's noise, so it shapes
//! the MTF but not the noise of a reading. (Content the point samples alias from above Nyquist
//! is not removed; that needs sub-sampled rays.)

/// Free taps of the symmetric filter h[−K..=K] (h0 follows from unit DC gain).
const K: usize = 3;

/// Symmetric (2K+1)-tap filter h[−K..=K] along a detector row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Blur {
    pub taps: [f32; 2 * K + 1],
}

/// sin(πx)/(πx).
pub(super) fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
    }
}

/// The filter for samples at `pitch_mm` whose aperture is `aperture_mm` wide and whose focal
/// spot blurs `focal_mm` (both at the isocentre); `None` when both are zero.
pub fn design(pitch_mm: f64, aperture_mm: f64, focal_mm: f64) -> Option<Blur> {
    if aperture_mm <= 0.0 && focal_mm <= 0.0 {
        return None;
    }
    // H(u) = 1 − Σ_k 2·h_k·(1 − cos kω), ω = 2π·u·pitch (so H(0) = 1), fitted by least squares
    // to sinc(a·u)·sinc(b·u) on 0 ≤ u ≤ Nyquist: normal equations A·h = r.
    let n = 128;
    let mut a = [[0.0f64; K + 1]; K];
    for i in 0..=n {
        let u = 0.5 / pitch_mm * i as f64 / n as f64;
        let w = 2.0 * std::f64::consts::PI * u * pitch_mm;
        let x: [f64; K] = std::array::from_fn(|k| 2.0 * (1.0 - ((k + 1) as f64 * w).cos()));
        let y = 1.0 - sinc(aperture_mm * u) * sinc(focal_mm * u);
        for r in 0..K {
            for c in 0..K {
                a[r][c] += x[r] * x[c];
            }
            a[r][K] += x[r] * y;
        }
    }
    let h = super::linsolve::solve_augmented(&mut a);
    let h0 = 1.0 - 2.0 * h.iter().sum::<f64>();
    let taps: [f64; 2 * K + 1] = std::array::from_fn(|i| match i.abs_diff(K) {
        0 => h0,
        d => h[d - 1],
    });
    Some(Blur {
        taps: taps.map(|v| v as f32),
    })
}

impl Blur {
    /// Transfer function at `u` cycles/mm for samples at `pitch_mm`.
    pub fn response(&self, u: f64, pitch_mm: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * u * pitch_mm;
        let h = self.taps.map(f64::from);
        h[K] + (1..=K)
            .map(|k| 2.0 * h[K + k] * (k as f64 * w).cos())
            .sum::<f64>()
    }

    /// Filters `data` in place along lines of `len` samples `stride` apart; a line starts at
    /// every index in `starts`. Edges repeat the end sample (the air reading).
    pub fn apply<const C: usize>(
        &self,
        data: &mut [[f32; C]],
        starts: impl Iterator<Item = usize>,
        len: usize,
        stride: usize,
    ) {
        let mut line = vec![[0.0f32; C]; len + 2 * K];
        for s in starts {
            for (i, v) in line.iter_mut().enumerate() {
                let k = i.saturating_sub(K).min(len - 1);
                *v = data[s + k * stride];
            }
            for k in 0..len {
                let mut acc = [0.0f32; C];
                for (t, h) in self.taps.iter().enumerate() {
                    for c in 0..C {
                        acc[c] += h * line[k + t][c];
                    }
                }
                data[s + k * stride] = acc;
            }
        }
    }
}

/// Detector crosstalk: each cell passes a fraction `c` of its signal to each of its two
/// neighbours along the row (light spreading through the scintillator's reflector septa;
/// a few per cent in solid-state CT detectors: Hsieh, Computed Tomography, 2nd ed., §5.3).
/// It acts on the detected signal, noise included, so unlike the aperture blur it also
/// correlates neighbouring readings and lowers their variance by (1 − 2c)² + 2c². End cells
/// keep what would have left the row. Its transfer function is 1 − 2c + 2c·cos(2πuτ).
pub fn crosstalk(row: &mut [f64], c: f64) {
    let n = row.len();
    if c <= 0.0 || n < 2 {
        return;
    }
    let mut prev = row[0];
    for k in 0..n {
        let cur = row[k];
        let next = if k + 1 < n { row[k + 1] } else { cur };
        row[k] = (1.0 - 2.0 * c) * cur + c * (prev + next);
        prev = cur;
    }
}

/// Transfer function of [`crosstalk`] at `u` cycles/mm for cells at `pitch_mm`.
pub fn crosstalk_response(c: f64, u: f64, pitch_mm: f64) -> f64 {
    1.0 - 2.0 * c + 2.0 * c * (2.0 * std::f64::consts::PI * u * pitch_mm).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crosstalk_keeps_the_mean_and_correlates_white_noise_as_its_taps_predict() {
        use rand::RngExt;
        let c = 0.08;
        let mut rng = crate::rng::stream(3, crate::rng::Stage::Acquire, 0);
        let n = 200_000;
        let white: Vec<f64> = (0..n)
            .map(|_| rng.sample::<f64, _>(rand_distr::StandardNormal))
            .collect();
        let mut mixed: Vec<f64> = white.iter().map(|w| 5.0 + w).collect();
        crosstalk(&mut mixed, c);
        let mean = mixed.iter().sum::<f64>() / n as f64;
        let var = mixed.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let cov1 = mixed
            .windows(2)
            .map(|w| (w[0] - mean) * (w[1] - mean))
            .sum::<f64>()
            / (n - 1) as f64;
        let (a, b) = (1.0 - 2.0 * c, c);
        let var_want = a * a + 2.0 * b * b;
        let cov_want = 2.0 * a * b;
        assert!((mean - 5.0).abs() < 0.01, "mean {mean}");
        assert!(
            (var / var_want - 1.0).abs() < 0.02,
            "variance {var} vs {var_want}"
        );
        assert!(
            (cov1 - cov_want).abs() < 0.01,
            "lag-1 covariance {cov1} vs {cov_want}"
        );
        // A cosine at 0.3 cycles per cell comes out scaled by the transfer function.
        let u = 0.3;
        let mut cosine: Vec<f64> = (0..400)
            .map(|k| (2.0 * std::f64::consts::PI * u * k as f64).cos())
            .collect();
        let orig = cosine.clone();
        crosstalk(&mut cosine, c);
        let gain = cosine[100..300]
            .iter()
            .zip(&orig[100..300])
            .map(|(a, b)| a * b)
            .sum::<f64>()
            / orig[100..300].iter().map(|b| b * b).sum::<f64>();
        assert!(
            (gain - crosstalk_response(c, u, 1.0)).abs() < 1e-3,
            "gain {gain}"
        );
    }

    #[test]
    fn filter_matches_the_box_apertures_up_to_nyquist() {
        // generic64: 0.57 mm pitch at isocentre, aperture = pitch, 1.0 mm focal spot → 0.43 mm.
        let p = 0.57;
        let b = design(p, p, 1.0 * (949.0 - 541.0) / 949.0).unwrap();
        let sum: f32 = b.taps.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6, "DC gain {sum}");
        // A cosine series has zero slope at Nyquist, the boxes' sincs do not: the fit is close
        // up to 0.8 Nyquist and within a few hundredths at Nyquist.
        let err = |frac: f64| {
            let u = 0.5 / p * frac;
            (b.response(u, p) - sinc(p * u) * sinc(0.43 * u)).abs()
        };
        let worst = (0..=16).map(|i| err(0.05 * i as f64)).fold(0.0, f64::max);
        assert!(worst < 0.02, "worst response error to 0.8 Nyquist {worst}");
        assert!(err(1.0) < 0.06, "response error at Nyquist {}", err(1.0));
        // The cell aperture alone: 2/π at Nyquist (within the fit's end error), 1 at DC.
        let d = design(p, p, 0.0).unwrap();
        assert!((d.response(0.0, p) - 1.0).abs() < 1e-6);
        assert!((d.response(0.5 / p, p) - 2.0 / std::f64::consts::PI).abs() < 0.06);
        assert!(design(p, 0.0, 0.0).is_none());
    }

    #[test]
    fn applying_keeps_flat_lines_flat_and_spreads_a_point() {
        let b = design(1.0, 1.0, 0.5).unwrap();
        let mut flat = vec![[2.0f32]; 10];
        b.apply(&mut flat, std::iter::once(0), 10, 1);
        assert!(flat.iter().all(|v| (v[0] - 2.0).abs() < 1e-5));
        // A point in the middle of one line of a 2-line block strided by 2.
        let mut d = vec![[0.0f32]; 20];
        d[10] = [1.0];
        b.apply(&mut d, 0..2, 10, 2);
        let total: f32 = d.iter().map(|v| v[0]).sum();
        assert!((total - 1.0).abs() < 1e-5 && d[10][0] < 1.0 && d[12][0] > 0.0);
        assert_eq!(d[11][0], 0.0, "the other line is untouched");
    }
}
