//! Sampling the pipeline's distributions.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal, Poisson};

use crate::pipeline::spec::Dist;

/// Draws one value, truncated to the distribution's `min`/`max` and to the quantity's
/// meaningful range `[lo, hi]` by redrawing (a truncated distribution, not a clamp); after
/// 1000 rejected draws the value is clamped, which only happens for ranges validation
/// already flags as nearly empty.
pub fn sample(d: &Dist, rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    let s = match d {
        Dist::Fixed(v) => return *v,
        Dist::Spec(s) => s,
    };
    let a = s.min.unwrap_or(f64::NEG_INFINITY).max(lo);
    let b = s.max.unwrap_or(f64::INFINITY).min(hi);
    let mut v = f64::NAN;
    for _ in 0..1000 {
        v = draw(s, rng);
        if v >= a && v <= b {
            return v;
        }
    }
    v.clamp(a, b)
}

fn draw(s: &crate::pipeline::spec::DistSpec, rng: &mut ChaCha8Rng) -> f64 {
    if let Some(v) = s.fixed {
        return v;
    }
    if let Some([a, b]) = s.uniform {
        return if b > a { rng.random_range(a..=b) } else { a };
    }
    if let Some(n) = &s.normal {
        return match Normal::new(n.mean, n.sd) {
            Ok(d) => d.sample(rng),
            Err(_) => n.mean,
        };
    }
    if let Some(l) = &s.lognormal {
        return match LogNormal::new(l.median.ln(), l.sigma) {
            Ok(d) => d.sample(rng),
            Err(_) => l.median,
        };
    }
    if let Some(m) = s.poisson {
        if m <= 0.0 {
            return 0.0;
        }
        return match Poisson::new(m) {
            Ok(d) => d.sample(rng),
            Err(_) => m,
        };
    }
    if let Some(c) = &s.categorical {
        let n = c.values.len();
        let weights = c.weights.clone().unwrap_or_else(|| vec![1.0; n]);
        let total: f64 = weights.iter().sum();
        let mut u = rng.random::<f64>() * total;
        for (v, w) in c.values.iter().zip(&weights) {
            if u < *w {
                return *v;
            }
            u -= w;
        }
        return c.values[n - 1];
    }
    f64::NAN
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::spec::{DistSpec, NormalSpec};
    use rand::SeedableRng;

    #[test]
    fn truncated_normal_respects_bounds_and_mean() {
        let d = Dist::Spec(DistSpec {
            normal: Some(NormalSpec { mean: 0.0, sd: 1.0 }),
            min: Some(0.0),
            ..Default::default()
        });
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let n = 20000;
        let xs: Vec<f64> = (0..n).map(|_| sample(&d, &mut rng, -10.0, 10.0)).collect();
        assert!(xs.iter().all(|x| *x >= 0.0));
        // Half-normal mean = sqrt(2/pi) ≈ 0.7979.
        let mean = xs.iter().sum::<f64>() / n as f64;
        assert!((mean - 0.7979).abs() < 0.02, "{mean}");
    }

    #[test]
    fn lognormal_median_matches() {
        let d = Dist::Spec(DistSpec {
            lognormal: Some(crate::pipeline::spec::LogNormalSpec {
                median: 26.0,
                sigma: 0.15,
            }),
            ..Default::default()
        });
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut xs: Vec<f64> = (0..10001).map(|_| sample(&d, &mut rng, 0.0, 1e9)).collect();
        xs.sort_by(f64::total_cmp);
        assert!((xs[5000] - 26.0).abs() < 0.3, "{}", xs[5000]);
    }
}
