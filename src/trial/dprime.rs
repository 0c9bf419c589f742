//! Detectability index d′ and the log–log slope of d′ against dose.

use super::normal::normal_quantile;

/// d′ = √2 Φ⁻¹(AUC): the separation, in units of the common SD, of two equal-variance normal
/// score distributions with this AUC (Barrett & Myers, *Foundations of Image Science*, 2004,
/// §13.2). Infinite at AUC = 1, negative below chance.
pub fn dprime_from_auc(auc: f64) -> f64 {
    std::f64::consts::SQRT_2 * normal_quantile(auc)
}

/// d′ = (μ₁ − μ₀) / √(½(σ₁² + σ₀²)) from the observer's scores (present vs absent), the
/// SNR definition of Barrett & Myers §13.2. NaN when a class has fewer than two scores.
pub fn dprime_from_scores(scores: &[f64], truth: &[bool]) -> f64 {
    assert_eq!(scores.len(), truth.len(), "one truth flag per score");
    let class = |t: bool| -> Vec<f64> {
        scores
            .iter()
            .zip(truth)
            .filter(|(_, &tr)| tr == t)
            .map(|(&s, _)| s)
            .collect()
    };
    let (p, a) = (class(true), class(false));
    if p.len() < 2 || a.len() < 2 {
        return f64::NAN;
    }
    let (mp, vp) = mean_var(&p);
    let (ma, va) = mean_var(&a);
    (mp - ma) / (0.5 * (vp + va)).sqrt()
}

/// Sample mean and unbiased variance.
pub(crate) fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
    (m, var)
}

/// Least-squares slope of ln y on ln x and its standard error.
///
/// Quantum-limited detection has d′ ∝ √dose, so a slope near 0.5 says noise dominates and a
/// flatter one says anatomical background does. Pairs with x ≤ 0, y ≤ 0 or non-finite values
/// are skipped (they have no logarithm). With fewer than two usable pairs both results are
/// NaN; with exactly two the SE is NaN (no residual degrees of freedom).
pub fn loglog_slope(x: &[f64], y: &[f64]) -> (f64, f64) {
    assert_eq!(x.len(), y.len(), "one y per x");
    let pts: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .filter(|(&a, &b)| a > 0.0 && b > 0.0 && a.is_finite() && b.is_finite())
        .map(|(&a, &b)| (a.ln(), b.ln()))
        .collect();
    let n = pts.len();
    if n < 2 {
        return (f64::NAN, f64::NAN);
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n as f64;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx == 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let slope = sxy / sxx;
    if n == 2 {
        return (slope, f64::NAN);
    }
    let ssr: f64 = pts
        .iter()
        .map(|p| (p.1 - my - slope * (p.0 - mx)).powi(2))
        .sum();
    (slope, (ssr / (n - 2) as f64 / sxx).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dprime_from_auc_inverts_the_binormal_auc() {
        // AUC = Φ(d′/√2) for equal-variance binormal scores; Φ(1/√2) = 0.760249938...
        assert!((dprime_from_auc(0.760_249_938_906_523_4) - 1.0).abs() < 1e-9);
        assert_eq!(dprime_from_auc(0.5), 0.0);
        assert!(dprime_from_auc(0.3) < 0.0);
    }

    #[test]
    fn dprime_from_scores_of_two_shifted_symmetric_sets() {
        // Absent {0, 2}: mean 1, unbiased variance 2. Present {3, 5}: mean 4, variance 2.
        // d′ = (4 − 1)/√2.
        let s = [0.0, 2.0, 3.0, 5.0];
        let t = [false, false, true, true];
        assert!((dprime_from_scores(&s, &t) - 3.0 / 2f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn loglog_slope_recovers_exact_power_laws() {
        let x = [25.0, 50.0, 100.0, 200.0];
        for k in [0.5, 1.0, -0.25] {
            let y: Vec<f64> = x.iter().map(|v: &f64| 3.7 * v.powf(k)).collect();
            let (s, se) = loglog_slope(&x, &y);
            assert!((s - k).abs() < 1e-12, "slope {s} want {k}");
            assert!(se < 1e-10);
        }
        // A non-positive point is skipped rather than poisoning the fit.
        let (s, _) = loglog_slope(&[0.0, 1.0, 4.0, 16.0], &[5.0, 1.0, 2.0, 4.0]);
        assert!((s - 0.5).abs() < 1e-12);
        assert!(loglog_slope(&[1.0], &[1.0]).0.is_nan());
    }

    #[test]
    fn loglog_slope_se_matches_hand_computed_regression() {
        // ln-space points (0,0), (1,1), (2,1): slope 0.5, residuals (−1, 2, −1)/6.
        let e = std::f64::consts::E;
        let (s, se) = loglog_slope(&[1.0, e, e * e], &[1.0, e, e]);
        assert!((s - 0.5).abs() < 1e-12);
        // SSR = 1/6, n − 2 = 1, Sxx = 2 → SE = √(1/12).
        assert!((se - (1.0f64 / 12.0).sqrt()).abs() < 1e-12);
    }
}
