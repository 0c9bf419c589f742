//! Sample size for comparing two correlated AUCs (two arms reading the same cases).
//!
//! Normal approximation as reviewed by Obuchowski, "Sample size calculations in studies of
//! test accuracy", Stat. Methods Med. Res. 7:371 (1998): the per-class variance of each AUC
//! from Hanley & McNeil, Radiology 143:29 (1982), eq. 2, and the variance of the difference
//! of two AUCs from the same cases from Hanley & McNeil, Radiology 148:839 (1983):
//! Var(Â_a − Â_b) = V_a + V_b − 2 r √(V_a V_b).

use super::normal::{normal_cdf, normal_quantile};

/// Hanley & McNeil (1982) variance of an empirical AUC `a` from `n_present` signal-present
/// and `n_absent` signal-absent cases, with Q₁ = A/(2 − A), Q₂ = 2A²/(1 + A) (exact for
/// exponential score distributions, close to the binormal for AUC 0.6–0.95):
/// Var = [A(1 − A) + (n₁ − 1)(Q₁ − A²) + (n₀ − 1)(Q₂ − A²)] / (n₁ n₀).
pub fn auc_variance_hanley_mcneil(a: f64, n_present: usize, n_absent: usize) -> f64 {
    let q1 = a / (2.0 - a);
    let q2 = 2.0 * a * a / (1.0 + a);
    let (n1, n0) = (n_present as f64, n_absent as f64);
    (a * (1.0 - a) + (n1 - 1.0) * (q1 - a * a) + (n0 - 1.0) * (q2 - a * a)) / (n1 * n0)
}

/// Power of the two-sided paired test (DeLong's, at level `alpha`) to detect AUC_a ≠ AUC_b
/// with `n` cases per class, when the two AUC estimates correlate by `correlation`
/// (the r of Hanley & McNeil 1983; 0 for independent case sets). The variance is taken at the
/// alternative, as the Wald-type DeLong test estimates it from the data it is given.
pub fn power_for_delta_auc(auc_a: f64, auc_b: f64, correlation: f64, alpha: f64, n: usize) -> f64 {
    let va = auc_variance_hanley_mcneil(auc_a, n, n);
    let vb = auc_variance_hanley_mcneil(auc_b, n, n);
    let se = (va + vb - 2.0 * correlation * (va * vb).sqrt())
        .max(0.0)
        .sqrt();
    let delta = (auc_a - auc_b).abs();
    if se == 0.0 {
        return if delta > 0.0 { 1.0 } else { alpha };
    }
    let z = normal_quantile(1.0 - 0.5 * alpha);
    normal_cdf(delta / se - z) + normal_cdf(-delta / se - z)
}

/// Smallest number of cases per class (present = absent = n) that gives the paired two-sided
/// test at level `alpha` at least `power` to detect the difference between `auc_a` and
/// `auc_b`; `usize::MAX` when the AUCs are equal or the inputs are out of range.
pub fn sample_size_for_delta_auc(
    auc_a: f64,
    auc_b: f64,
    correlation: f64,
    alpha: f64,
    power: f64,
) -> usize {
    let valid = (0.0..1.0).contains(&auc_a)
        && (0.0..1.0).contains(&auc_b)
        && (-1.0..=1.0).contains(&correlation)
        && alpha > 0.0
        && alpha < 1.0
        && power > 0.0
        && power < 1.0;
    if !valid || auc_a == auc_b {
        return usize::MAX;
    }
    let enough = |n: usize| power_for_delta_auc(auc_a, auc_b, correlation, alpha, n) >= power;
    // Power grows with n; double to bracket, then bisect.
    let mut hi = 2usize;
    while !enough(hi) {
        if hi > 1 << 40 {
            return usize::MAX;
        }
        hi *= 2;
    }
    let mut lo = hi / 2;
    if enough(lo) {
        return lo;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if enough(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trial::roc::{delong_covariance, delong_paired};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    /// Binormal paired readings: per case a bivariate normal (corr `rho`) shifted by
    /// (d_a, d_b) when the signal is present, so AUC_k = Φ(d_k/√2).
    fn paired(
        n: usize,
        da: f64,
        db: f64,
        rho: f64,
        rng: &mut ChaCha8Rng,
    ) -> (Vec<f64>, Vec<f64>, Vec<bool>) {
        let (mut a, mut b, mut t) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..2 * n {
            let present = i < n;
            let z1: f64 = StandardNormal.sample(rng);
            let z2: f64 = StandardNormal.sample(rng);
            let x = z1;
            let y = rho * z1 + (1.0 - rho * rho).sqrt() * z2;
            a.push(x + if present { da } else { 0.0 });
            b.push(y + if present { db } else { 0.0 });
            t.push(present);
        }
        (a, b, t)
    }

    #[test]
    fn hanley_mcneil_variance_limits() {
        // A = 1/2, equal classes: Q₁ = 1/3, Q₂ = 1/3; Var = (1/4 + 2(n−1)/12)/n² → 1/(6n).
        let n = 10_000;
        let v = auc_variance_hanley_mcneil(0.5, n, n);
        assert!((v * 6.0 * n as f64 - 1.0).abs() < 1e-3);
        // Perfect separation has no variance.
        assert!(auc_variance_hanley_mcneil(1.0, 30, 30).abs() < 1e-15);
    }

    #[test]
    fn sample_size_is_minimal_and_monotone() {
        let n = sample_size_for_delta_auc(0.80, 0.88, 0.5, 0.05, 0.8);
        assert!(power_for_delta_auc(0.80, 0.88, 0.5, 0.05, n) >= 0.8);
        assert!(power_for_delta_auc(0.80, 0.88, 0.5, 0.05, n - 1) < 0.8);
        // Correlated readings need fewer cases; bigger differences need fewer cases.
        assert!(sample_size_for_delta_auc(0.80, 0.88, 0.0, 0.05, 0.8) > n);
        assert!(sample_size_for_delta_auc(0.80, 0.92, 0.5, 0.05, 0.8) < n);
        assert_eq!(
            sample_size_for_delta_auc(0.8, 0.8, 0.5, 0.05, 0.8),
            usize::MAX
        );
    }

    /// Must-show 4 (sample size): the n it returns gives the requested power when the paired
    /// DeLong test is run on simulated binormal trials.
    #[test]
    fn sample_size_achieves_the_target_power_in_simulation() {
        let (auc_a, auc_b, rho) = (0.80, 0.88, 0.5);
        let da = std::f64::consts::SQRT_2 * normal_quantile(auc_a);
        let db = std::f64::consts::SQRT_2 * normal_quantile(auc_b);
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        // The AUC correlation r induced by score correlation ρ, from a large pilot.
        let (a, b, t) = paired(20_000, da, db, rho, &mut rng);
        let s = delong_covariance(&a, &b, &t);
        let r = s[0][1] / (s[0][0] * s[1][1]).sqrt();
        let n = sample_size_for_delta_auc(auc_a, auc_b, r, 0.05, 0.8);
        let trials = 500;
        let hits = (0..trials)
            .filter(|_| {
                let (a, b, t) = paired(n, da, db, rho, &mut rng);
                delong_paired(&a, &b, &t, 0.05).p_value < 0.05
            })
            .count();
        let power = hits as f64 / trials as f64;
        eprintln!("r = {r:.3}, n = {n} per class, simulated power {power:.3} (target 0.80)");
        // Binomial SE of the estimate at 0.8 with 500 trials is 0.018.
        assert!((power - 0.8).abs() < 0.06, "power {power}");
    }
}
