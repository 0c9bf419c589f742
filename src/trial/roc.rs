//! Empirical ROC analysis: the Mann–Whitney AUC, DeLong's variance and paired test, and
//! stratified bootstrap intervals.
//!
//! Scores are "higher = more likely signal-present". Ties between a present and an absent
//! case count one half, as in the Mann–Whitney U statistic. Scores must be finite.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::dprime::{dprime_from_auc, dprime_from_scores};
use super::normal::{normal_cdf, normal_quantile};

/// One arm's AUC with its uncertainty and the two d′ estimates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AucResult {
    /// Mann–Whitney (trapezoidal) area under the empirical ROC curve.
    pub auc: f64,
    /// DeLong et al. (1988) standard error of `auc`.
    pub se_delong: f64,
    /// `auc ± z₁₋α/₂ · se_delong`, clipped to [0, 1].
    pub ci_delong: (f64, f64),
    /// Percentile interval of the stratified bootstrap; NaN when no resamples were asked for.
    pub ci_bootstrap: (f64, f64),
    /// √2 Φ⁻¹(AUC).
    pub dprime_from_auc: f64,
    /// (μ₁ − μ₀)/√(½(σ₁² + σ₀²)) of the scores.
    pub dprime_from_scores: f64,
}

/// Two correlated AUCs on the same cases compared by DeLong's test: ΔAUC = AUC_a − AUC_b.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedResult {
    pub delta_auc: f64,
    pub se: f64,
    pub z: f64,
    /// Two-sided.
    pub p_value: f64,
    /// `delta_auc ± z₁₋α/₂ · se`.
    pub ci: (f64, f64),
}

/// 1-based ranks with ties given the mean of the ranks they span.
fn midranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut ranks = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean.
        let r = 0.5 * ((i + 1) + (j + 1)) as f64;
        for &k in &order[i..=j] {
            ranks[k] = r;
        }
        i = j + 1;
    }
    ranks
}

fn split(scores: &[f64], truth: &[bool]) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(scores.len(), truth.len(), "one truth flag per score");
    let pos = scores
        .iter()
        .zip(truth)
        .filter(|(_, &t)| t)
        .map(|(&s, _)| s)
        .collect();
    let neg = scores
        .iter()
        .zip(truth)
        .filter(|(_, &t)| !t)
        .map(|(&s, _)| s)
        .collect();
    (pos, neg)
}

/// DeLong's structural components: V10ᵢ = P̂(Xᵢ > Y) over absent cases Y for each present
/// case Xᵢ, V01ⱼ = P̂(X > Yⱼ) over present cases for each absent Yⱼ. Computed from midranks
/// in O(N log N) (Sun & Xu, IEEE Signal Process. Lett. 21:1389, 2014) rather than by the
/// O(m·n) double sum of DeLong et al. (1988).
struct Components {
    auc: f64,
    v10: Vec<f64>,
    v01: Vec<f64>,
}

fn components(pos: &[f64], neg: &[f64]) -> Components {
    let (m, n) = (pos.len(), neg.len());
    let all: Vec<f64> = pos.iter().chain(neg).copied().collect();
    let tz = midranks(&all);
    let tx = midranks(pos);
    let ty = midranks(neg);
    // Rank among all minus rank among its own class = number of the other class below it.
    let v10: Vec<f64> = (0..m).map(|i| (tz[i] - tx[i]) / n as f64).collect();
    let v01: Vec<f64> = (0..n)
        .map(|j| 1.0 - (tz[m + j] - ty[j]) / m as f64)
        .collect();
    let auc = v10.iter().sum::<f64>() / m as f64;
    Components { auc, v10, v01 }
}

/// Unbiased covariance of two equally long samples.
fn cov(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let ma = a.iter().sum::<f64>() / n;
    let mb = b.iter().sum::<f64>() / n;
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - ma) * (y - mb))
        .sum::<f64>()
        / (n - 1.0)
}

/// Mann–Whitney AUC = P(X > Y) + ½P(X = Y), X present, Y absent (Hanley & McNeil,
/// Radiology 143:29, 1982). NaN when a class is empty.
pub fn auc(scores: &[f64], truth: &[bool]) -> f64 {
    let (pos, neg) = split(scores, truth);
    if pos.is_empty() || neg.is_empty() {
        return f64::NAN;
    }
    components(&pos, &neg).auc
}

/// DeLong covariance matrix of the AUCs of two readings (a, b) of the same cases:
/// S = S10/m + S01/n (DeLong, DeLong & Clarke-Pearson, Biometrics 44:837, 1988, eq. 5).
/// `[[var_a, cov_ab], [cov_ab, var_b]]`; NaN when a class has fewer than two cases.
pub fn delong_covariance(scores_a: &[f64], scores_b: &[f64], truth: &[bool]) -> [[f64; 2]; 2] {
    assert_eq!(scores_a.len(), scores_b.len(), "paired scores");
    let (pa, na) = split(scores_a, truth);
    let (pb, nb) = split(scores_b, truth);
    if pa.len() < 2 || na.len() < 2 {
        return [[f64::NAN; 2]; 2];
    }
    let (ca, cb) = (components(&pa, &na), components(&pb, &nb));
    let (m, n) = (pa.len() as f64, na.len() as f64);
    let s = |x: &Components, y: &Components| cov(&x.v10, &y.v10) / m + cov(&x.v01, &y.v01) / n;
    let ab = s(&ca, &cb);
    [[s(&ca, &ca), ab], [ab, s(&cb, &cb)]]
}

/// DeLong variance of one AUC.
pub fn delong_variance(scores: &[f64], truth: &[bool]) -> f64 {
    delong_covariance(scores, scores, truth)[0][0]
}

/// AUCs of `resamples` stratified bootstrap resamples: present and absent cases are resampled
/// separately so every resample keeps the study's class sizes (the design is fixed by
/// enrichment, not sampled). Deterministic for a seed.
pub fn bootstrap_aucs(scores: &[f64], truth: &[bool], resamples: usize, seed: u64) -> Vec<f64> {
    let (pos, neg) = split(scores, truth);
    if pos.is_empty() || neg.is_empty() {
        return vec![f64::NAN; resamples];
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut bp = vec![0.0; pos.len()];
    let mut bn = vec![0.0; neg.len()];
    (0..resamples)
        .map(|_| {
            for v in bp.iter_mut() {
                *v = pos[rng.random_range(0..pos.len())];
            }
            for v in bn.iter_mut() {
                *v = neg[rng.random_range(0..neg.len())];
            }
            components(&bp, &bn).auc
        })
        .collect()
}

/// Linear-interpolation quantile (Hyndman & Fan type 7) of sorted data.
fn quantile_sorted(s: &[f64], q: f64) -> f64 {
    if s.is_empty() {
        return f64::NAN;
    }
    let h = q * (s.len() - 1) as f64;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(s.len() - 1);
    s[lo] + (h - lo as f64) * (s[hi] - s[lo])
}

/// AUC, DeLong SE and (1 − α) CI, stratified-bootstrap percentile CI from `bootstrap`
/// resamples, and d′ both ways.
pub fn auc_analysis(
    scores: &[f64],
    truth: &[bool],
    bootstrap: usize,
    alpha: f64,
    seed: u64,
) -> AucResult {
    let a = auc(scores, truth);
    let se = delong_variance(scores, truth).max(0.0).sqrt();
    let z = normal_quantile(1.0 - 0.5 * alpha);
    let ci_delong = ((a - z * se).max(0.0), (a + z * se).min(1.0));
    let ci_bootstrap = if bootstrap == 0 {
        (f64::NAN, f64::NAN)
    } else {
        let mut b = bootstrap_aucs(scores, truth, bootstrap, seed);
        b.sort_by(f64::total_cmp);
        (
            quantile_sorted(&b, 0.5 * alpha),
            quantile_sorted(&b, 1.0 - 0.5 * alpha),
        )
    };
    AucResult {
        auc: a,
        se_delong: se,
        ci_delong,
        ci_bootstrap,
        dprime_from_auc: dprime_from_auc(a),
        dprime_from_scores: dprime_from_scores(scores, truth),
    }
}

/// DeLong, DeLong & Clarke-Pearson (1988) test of AUC_a = AUC_b for two readers (arms) that
/// scored the same cases: z = ΔAUC / √(Var_a + Var_b − 2 Cov_ab), with the covariance
/// carried by the shared cases. `scores_a[i]` and `scores_b[i]` must be the same case.
pub fn delong_paired(
    scores_a: &[f64],
    scores_b: &[f64],
    truth: &[bool],
    alpha: f64,
) -> PairedResult {
    let s = delong_covariance(scores_a, scores_b, truth);
    let delta = auc(scores_a, truth) - auc(scores_b, truth);
    let se = (s[0][0] + s[1][1] - 2.0 * s[0][1]).max(0.0).sqrt();
    let z = if se > 0.0 {
        delta / se
    } else if delta == 0.0 {
        // Identical readings: no evidence of a difference, not an undefined one.
        0.0
    } else {
        delta.signum() * f64::INFINITY
    };
    let p_value = 2.0 * normal_cdf(-z.abs());
    let zc = normal_quantile(1.0 - 0.5 * alpha);
    PairedResult {
        delta_auc: delta,
        se,
        z,
        p_value,
        ci: (delta - zc * se, delta + zc * se),
    }
}

/// Empirical ROC operating points (FPR, TPR) from (0, 0) to (1, 1), one per distinct score
/// threshold (tied scores move diagonally, which is what the trapezoidal AUC integrates).
pub fn roc_curve(scores: &[f64], truth: &[bool]) -> Vec<(f64, f64)> {
    assert_eq!(scores.len(), truth.len(), "one truth flag per score");
    let m = truth.iter().filter(|&&t| t).count() as f64;
    let n = truth.len() as f64 - m;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut pts = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0.0, 0.0);
    for (k, &i) in order.iter().enumerate() {
        if truth[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_tie = order
            .get(k + 1)
            .is_none_or(|&next| scores[next] != scores[i]);
        if last_of_tie {
            pts.push((
                if n > 0.0 { fp / n } else { 0.0 },
                if m > 0.0 { tp / m } else { 0.0 },
            ));
        }
    }
    pts
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, StandardNormal};

    fn binormal(m: usize, n: usize, d: f64, seed: u64) -> (Vec<f64>, Vec<bool>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut s = Vec::new();
        let mut t = Vec::new();
        for i in 0..m + n {
            let z: f64 = StandardNormal.sample(&mut rng);
            let present = i < m;
            s.push(z + if present { d } else { 0.0 });
            t.push(present);
        }
        (s, t)
    }

    /// The midrank AUC and components equal the definitional double sums.
    #[test]
    fn fast_delong_matches_the_double_sum() {
        let (mut s, t) = binormal(23, 31, 0.8, 5);
        s[3] = s[30]; // a present–absent tie
        s[4] = s[5]; // a within-class tie
        let (pos, neg) = split(&s, &t);
        let psi = |x: f64, y: f64| {
            if x > y {
                1.0
            } else if x == y {
                0.5
            } else {
                0.0
            }
        };
        let c = components(&pos, &neg);
        for (i, &x) in pos.iter().enumerate() {
            let v = neg.iter().map(|&y| psi(x, y)).sum::<f64>() / neg.len() as f64;
            assert!((c.v10[i] - v).abs() < 1e-12);
        }
        for (j, &y) in neg.iter().enumerate() {
            let v = pos.iter().map(|&x| psi(x, y)).sum::<f64>() / pos.len() as f64;
            assert!((c.v01[j] - v).abs() < 1e-12);
        }
        let direct: f64 = pos
            .iter()
            .flat_map(|&x| neg.iter().map(move |&y| psi(x, y)))
            .sum::<f64>()
            / (pos.len() * neg.len()) as f64;
        assert!((c.auc - direct).abs() < 1e-12);
    }

    #[test]
    fn perfect_and_chance_separation() {
        let t = [true, true, false, false];
        assert_eq!(auc(&[3.0, 4.0, 1.0, 2.0], &t), 1.0);
        assert_eq!(auc(&[1.0, 1.0, 1.0, 1.0], &t), 0.5);
        assert_eq!(
            roc_curve(&[3.0, 4.0, 1.0, 2.0], &t),
            vec![(0.0, 0.0), (0.0, 0.5), (0.0, 1.0), (0.5, 1.0), (1.0, 1.0)]
        );
        // All tied: one diagonal step.
        assert_eq!(roc_curve(&[1.0; 4], &t), vec![(0.0, 0.0), (1.0, 1.0)]);
    }

    /// Must-show 2: DeLong's variance is the (asymptotic) variance the bootstrap estimates.
    #[test]
    fn delong_variance_agrees_with_bootstrap_variance() {
        // 200 cases, AUC ≈ Φ(1.19/√2) ≈ 0.8.
        let (s, t) = binormal(100, 100, 1.19, 11);
        let v_delong = delong_variance(&s, &t);
        let b = bootstrap_aucs(&s, &t, 4000, 12);
        let (_, v_boot) = crate::trial::dprime::mean_var(&b);
        let ratio = v_delong / v_boot;
        eprintln!("DeLong var {v_delong:.3e}, bootstrap var {v_boot:.3e}, ratio {ratio:.3}");
        assert!((ratio - 1.0).abs() < 0.10, "ratio {ratio}");
    }

    /// Two arms that are independent noise realisations of the same process: scores share a
    /// case effect (the lesion and its background) and add independent arm noise.
    fn null_trial(seed: u64) -> (Vec<f64>, Vec<f64>, Vec<bool>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (m, n) = (100, 100);
        let mut a = Vec::new();
        let mut b = Vec::new();
        let mut t = Vec::new();
        for i in 0..m + n {
            let present = i < m;
            let case: f64 = StandardNormal.sample(&mut rng);
            let mean = if present { 1.0 } else { 0.0 };
            let ea: f64 = StandardNormal.sample(&mut rng);
            let eb: f64 = StandardNormal.sample(&mut rng);
            a.push(mean + case + ea);
            b.push(mean + case + eb);
            t.push(present);
        }
        (a, b, t)
    }

    /// Must-show 3.
    #[test]
    fn null_comparison_is_not_significant_and_has_nominal_type_one_error() {
        let (a, b, t) = null_trial(2024);
        let r = delong_paired(&a, &b, &t, 0.05);
        eprintln!("null trial: {r:?}");
        assert!(r.p_value > 0.05);
        assert!(r.ci.0 < 0.0 && 0.0 < r.ci.1);
        // The paired SE is smaller than the unpaired one: the shared case effect cancels.
        let unpaired = (delong_variance(&a, &t) + delong_variance(&b, &t)).sqrt();
        assert!(r.se < unpaired);

        let trials = 400;
        let rejections = (0..trials)
            .filter(|&k| {
                let (a, b, t) = null_trial(1000 + k);
                delong_paired(&a, &b, &t, 0.05).p_value < 0.05
            })
            .count();
        let rate = rejections as f64 / trials as f64;
        eprintln!("type-I error over {trials} null trials: {rate:.3}");
        assert!((0.02..=0.09).contains(&rate), "type-I error {rate}");
    }

    #[test]
    fn identical_arms_give_p_one() {
        let (s, t) = binormal(20, 20, 1.0, 3);
        let r = delong_paired(&s, &s, &t, 0.05);
        assert_eq!(r.delta_auc, 0.0);
        assert_eq!(r.p_value, 1.0);
    }

    #[test]
    fn auc_analysis_intervals_bracket_the_estimate() {
        let (s, t) = binormal(100, 100, 1.19, 21);
        let r = auc_analysis(&s, &t, 2000, 0.05, 22);
        assert!(r.ci_delong.0 < r.auc && r.auc < r.ci_delong.1);
        assert!(r.ci_bootstrap.0 < r.auc && r.auc < r.ci_bootstrap.1);
        // Both intervals estimate the same width: ±1.96 SE.
        let wd = r.ci_delong.1 - r.ci_delong.0;
        let wb = r.ci_bootstrap.1 - r.ci_bootstrap.0;
        assert!((wb / wd - 1.0).abs() < 0.15, "widths {wd} {wb}");
        assert!((r.dprime_from_auc - r.dprime_from_scores).abs() < 0.3);
    }
}
