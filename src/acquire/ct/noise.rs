//! Detector noise for an energy-integrating detector.
//!
//! A reading S = Σ_E E·n_E with Poisson n_E has mean Σ E·N_E and variance Σ E²·N_E
//! (compound Poisson; Whiting, Proc. SPIE 4682, 53 (2002)). It is drawn as a scaled Poisson
//! variable with the same mean and variance: k ~ Poisson(S²/V), S′ = k·V/S, so starved rays
//! stay discrete and non-negative. Electronic noise is Gaussian with an SD given in photon
//! units (× the quantum's mean signal V/S). Readings are floored before the log so photon
//! starvation gives a large but finite line integral, never NaN or ∞.

use rand::RngExt;
use rand_distr::{Distribution, Poisson, StandardNormal};

/// Floor on a reading, in quanta (V/S units), before −ln.
pub const FLOOR_QUANTA: f64 = 0.5;

/// One noisy reading from mean signal `s` and variance `v` (keV·photons, keV²·photons).
pub fn noisy_reading<R: rand::Rng + ?Sized>(
    rng: &mut R,
    s: f64,
    v: f64,
    electronic_sd_photons: f64,
) -> f64 {
    let q = v / s; // signal per equivalent quantum
    let lambda = s / q;
    // Stage 1: quantum noise. Poisson below 1000 quanta, its normal limit above (the
    // skewness 1/√λ < 3 % there, and the normal draw is ~10× cheaper).
    let k = if lambda < 1000.0 {
        Poisson::new(lambda.max(1e-12))
            .map(|p| p.sample(rng))
            .unwrap_or(0.0)
    } else {
        let z: f64 = rng.sample(StandardNormal);
        lambda + lambda.sqrt() * z
    };
    // Stage 2: electronic noise.
    let e: f64 = if electronic_sd_photons > 0.0 {
        let z: f64 = rng.sample(StandardNormal);
        z * electronic_sd_photons
    } else {
        0.0
    };
    // Stage 3: floor (photon starvation).
    ((k + e).max(FLOOR_QUANTA)) * q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Stage};

    #[test]
    fn mean_and_variance_follow_compound_poisson() {
        let mut rng = stream(1, Stage::Acquire, 0);
        for (s, v) in [(5e4, 3e6), (300.0, 2e4)] {
            let n = 20000;
            let xs: Vec<f64> = (0..n).map(|_| noisy_reading(&mut rng, s, v, 0.0)).collect();
            let m = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
            assert!((m / s - 1.0).abs() < 0.01, "mean {m} vs {s}");
            assert!((var / v - 1.0).abs() < 0.05, "variance {var} vs {v}");
        }
    }

    #[test]
    fn starvation_stays_finite() {
        let mut rng = stream(2, Stage::Acquire, 0);
        for _ in 0..1000 {
            let r = noisy_reading(&mut rng, 1e-6, 1e-4, 5.0);
            assert!(r.is_finite() && r > 0.0 && (-r.ln()).is_finite());
        }
    }
}
