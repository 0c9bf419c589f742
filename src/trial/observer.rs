//! Linear model observers: the non-prewhitening matched filter (NPWMF) and the channelized
//! Hotelling observer (CHO) with Laguerre–Gauss channels.
//!
//! Both reduce an ROI g to a scalar t = wᵀg; they differ in how the template w is learned
//! from training ROIs (Barrett & Myers, *Foundations of Image Science*, 2004, ch. 13–14).

use nalgebra::{Cholesky, DMatrix, DVector};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::roi::Roi;

/// Which model observer reads the ROIs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observer {
    /// Non-prewhitening matched filter: template = mean(present) − mean(absent). Ideal for a
    /// signal known exactly in white noise; ignores noise correlations otherwise.
    Npwmf,
    /// Channelized Hotelling observer on `channels` Laguerre–Gauss channels of width
    /// parameter `width_px` (the a of [`laguerre_gauss_channels`]). Match a to the signal:
    /// a Gaussian blob of SD σ is exactly channel 0 when a = σ√(2π).
    Cho { channels: usize, width_px: f64 },
}

/// Laguerre–Gauss channels on a size × size grid centred at pixel (size/2, size/2), each
/// row-major like [`Roi::pixels`]:
/// uₚ(r) = (√2/a) exp(−π r²/a²) Lₚ(2π r²/a²), orthonormal over the plane
/// (Barrett & Myers 2004, §14.2; Gallas & Barrett, JOSA A 20:1725, 2003). Being rotationally
/// symmetric they capture round lesions with few channels, which keeps the Hotelling
/// covariance small enough to estimate from a few hundred ROIs.
pub fn laguerre_gauss_channels(size: usize, channels: usize, width_px: f64) -> Vec<Vec<f64>> {
    let c = (size / 2) as f64;
    let a2 = width_px * width_px;
    let norm = std::f64::consts::SQRT_2 / width_px;
    let mut out = vec![vec![0.0; size * size]; channels];
    for y in 0..size {
        for x in 0..size {
            let r2 = (x as f64 - c).powi(2) + (y as f64 - c).powi(2);
            let g = norm * (-std::f64::consts::PI * r2 / a2).exp();
            let arg = 2.0 * std::f64::consts::PI * r2 / a2;
            // Laguerre recurrence: (p+1)L_{p+1} = (2p+1−x)L_p − p L_{p−1}.
            let (mut l0, mut l1) = (1.0, 1.0 - arg);
            for (p, ch) in out.iter_mut().enumerate() {
                let l = match p {
                    0 => 1.0,
                    1 => l1,
                    _ => {
                        let l2 = ((2.0 * (p - 1) as f64 + 1.0 - arg) * l1 - (p - 1) as f64 * l0)
                            / p as f64;
                        l0 = l1;
                        l1 = l2;
                        l2
                    }
                };
                ch[y * size + x] = g * l;
            }
        }
    }
    out
}

/// NPWMF template, mean(present) − mean(absent) of `train`. A class missing from `train`
/// contributes a zero mean.
pub fn npwmf_template(train: &[&Roi]) -> Vec<f64> {
    let n = train.first().map_or(0, |r| r.pixels.len());
    let (mut mp, mut ma) = (vec![0.0; n], vec![0.0; n]);
    let (mut kp, mut ka) = (0usize, 0usize);
    for r in train {
        assert_eq!(r.pixels.len(), n, "training ROIs must share one size");
        let (m, k) = if r.truth {
            (&mut mp, &mut kp)
        } else {
            (&mut ma, &mut ka)
        };
        *k += 1;
        for (s, &v) in m.iter_mut().zip(&r.pixels) {
            *s += v as f64;
        }
    }
    let (kp, ka) = (kp.max(1) as f64, ka.max(1) as f64);
    mp.iter().zip(&ma).map(|(p, a)| p / kp - a / ka).collect()
}

/// t = wᵀg for each ROI. With w the noise-free signal this is the ideal observer of a
/// signal-known-exactly task in white noise.
pub fn score_with_template(template: &[f64], rois: &[&Roi]) -> Vec<f64> {
    rois.iter()
        .map(|r| {
            assert_eq!(
                r.pixels.len(),
                template.len(),
                "ROI and template sizes differ"
            );
            template
                .iter()
                .zip(&r.pixels)
                .map(|(w, &g)| w * g as f64)
                .sum()
        })
        .collect()
}

/// Channel outputs v = U g.
fn channel_outputs(u: &[Vec<f64>], roi: &Roi) -> Vec<f64> {
    u.iter()
        .map(|ch| ch.iter().zip(&roi.pixels).map(|(c, &g)| c * g as f64).sum())
        .collect()
}

/// Mean vector and unbiased covariance (zero with fewer than two samples).
fn mean_cov(v: &[Vec<f64>], dim: usize) -> (Vec<f64>, Vec<f64>) {
    let n = v.len();
    let mut mean = vec![0.0; dim];
    for x in v {
        for (m, xi) in mean.iter_mut().zip(x) {
            *m += xi / n as f64;
        }
    }
    let mut cov = vec![0.0; dim * dim];
    if n >= 2 {
        for x in v {
            for i in 0..dim {
                for j in 0..dim {
                    cov[i * dim + j] += (x[i] - mean[i]) * (x[j] - mean[j]) / (n - 1) as f64;
                }
            }
        }
    }
    (mean, cov)
}

/// Solves S w = b for symmetric positive semi-definite S by Cholesky (nalgebra), adding a
/// ridge λI (growing from 1e-10 of the mean diagonal) when S is singular — as it is when
/// channels outnumber training ROIs or two channels coincide.
fn solve_spd(s: &[f64], b: &[f64]) -> Vec<f64> {
    let n = b.len();
    let mean_diag = (0..n).map(|i| s[i * n + i]).sum::<f64>() / n.max(1) as f64;
    let scale = if mean_diag > 0.0 { mean_diag } else { 1.0 };
    let rhs = DVector::from_column_slice(b);
    let mut ridge = 0.0;
    loop {
        let m = DMatrix::from_row_slice(n, n, s) + DMatrix::identity(n, n) * ridge;
        if let Some(c) = Cholesky::new(m).filter(well_conditioned) {
            return c.solve(&rhs).as_slice().to_vec();
        }
        ridge = if ridge == 0.0 {
            1e-10 * scale
        } else {
            ridge * 10.0
        };
    }
}

/// Rejects near-singular factors: a pivot 1e-7 below the largest loses most digits.
fn well_conditioned(c: &Cholesky<f64, nalgebra::Dyn>) -> bool {
    let d = c.l_dirty().diagonal();
    let max = d.iter().fold(0.0f64, |m, &v| m.max(v));
    d.iter().all(|&v| v.is_finite() && v >= 1e-7 * max)
}

/// CHO template in channel space: w = S⁻¹ Δv̄ with S = ½(S_present + S_absent) the average
/// channel covariance (Barrett & Myers 2004, §14.2).
fn cho_channel_template(u: &[Vec<f64>], train: &[&Roi]) -> Vec<f64> {
    let c = u.len();
    let (mut vp, mut va) = (Vec::new(), Vec::new());
    for r in train {
        let v = channel_outputs(u, r);
        if r.truth {
            vp.push(v)
        } else {
            va.push(v)
        }
    }
    if vp.is_empty() || va.is_empty() {
        return vec![0.0; c];
    }
    let (mp, sp) = mean_cov(&vp, c);
    let (ma, sa) = mean_cov(&va, c);
    let s: Vec<f64> = sp.iter().zip(&sa).map(|(p, a)| 0.5 * (p + a)).collect();
    let dv: Vec<f64> = mp.iter().zip(&ma).map(|(p, a)| p - a).collect();
    solve_spd(&s, &dv)
}

/// Trains `observer` on `train` and returns one score per ROI of `test` (higher = signal
/// more likely). A training set missing a class yields all-zero scores (AUC ½).
///
/// Panics if the ROIs do not all have the same size (a programming error: the trial extracts
/// every ROI of a run at one size).
pub fn score(observer: &Observer, train: &[&Roi], test: &[&Roi]) -> Vec<f64> {
    match observer {
        Observer::Npwmf => score_with_template(&npwmf_template(train), test),
        Observer::Cho { channels, width_px } => {
            let size = train.first().or(test.first()).map_or(0, |r| r.size);
            for r in train.iter().chain(test) {
                assert_eq!(r.size, size, "all ROIs must share one size");
                assert_eq!(r.pixels.len(), size * size, "ROI pixels must be size²");
            }
            let u = laguerre_gauss_channels(size, *channels, *width_px);
            let w = cho_channel_template(&u, train);
            test.iter()
                .map(|r| {
                    w.iter()
                        .zip(channel_outputs(&u, r))
                        .map(|(a, b)| a * b)
                        .sum()
                })
                .collect()
        }
    }
}

/// Assigns each ROI a fold in 0..folds. The unit of assignment is the subject (ROIs with an
/// empty subject are their own unit), so a lesion and its lesion-free twin never sit on both
/// sides of a split; units with a signal-present ROI and those without are shuffled
/// separately and dealt round-robin, so every fold sees both classes.
pub fn fold_assignment(rois: &[Roi], folds: usize, seed: u64) -> Vec<usize> {
    let mut units: Vec<Vec<usize>> = Vec::new();
    let mut by_subject = std::collections::HashMap::new();
    for (i, r) in rois.iter().enumerate() {
        if r.subject.is_empty() {
            units.push(vec![i]);
        } else {
            let u = *by_subject.entry(r.subject.as_str()).or_insert_with(|| {
                units.push(Vec::new());
                units.len() - 1
            });
            units[u].push(i);
        }
    }
    let folds = folds.clamp(1, units.len().max(1));
    let (mut with, mut without): (Vec<usize>, Vec<usize>) =
        (0..units.len()).partition(|&u| units[u].iter().any(|&i| rois[i].truth));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    with.shuffle(&mut rng);
    without.shuffle(&mut rng);
    let mut fold = vec![0; rois.len()];
    for (k, &u) in with.iter().chain(&without).enumerate() {
        for &i in &units[u] {
            fold[i] = k % folds;
        }
    }
    fold
}

/// Scores every ROI with an observer trained on the other folds (k-fold cross-validation,
/// folds from [`fold_assignment`]); `folds` ≤ 1 trains and tests on all ROIs
/// (resubstitution, optimistically biased for trained observers).
///
/// The pooled out-of-fold scores come from k slightly different templates; with folds of a
/// few hundred ROIs their scales agree closely, which is what pooling into one AUC assumes.
pub fn cross_validated_scores(
    observer: &Observer,
    rois: &[Roi],
    folds: usize,
    seed: u64,
) -> Vec<f64> {
    let all: Vec<&Roi> = rois.iter().collect();
    if folds <= 1 {
        return score(observer, &all, &all);
    }
    let fold = fold_assignment(rois, folds, seed);
    let k = fold.iter().max().map_or(0, |m| m + 1);
    let per_fold: Vec<(Vec<usize>, Vec<f64>)> = (0..k)
        .into_par_iter()
        .map(|f| {
            let test_idx: Vec<usize> = (0..rois.len()).filter(|&i| fold[i] == f).collect();
            let train: Vec<&Roi> = (0..rois.len())
                .filter(|&i| fold[i] != f)
                .map(|i| &rois[i])
                .collect();
            let test: Vec<&Roi> = test_idx.iter().map(|&i| &rois[i]).collect();
            let s = score(observer, &train, &test);
            (test_idx, s)
        })
        .collect();
    let mut out = vec![0.0; rois.len()];
    for (idx, s) in per_fold {
        for (i, v) in idx.into_iter().zip(s) {
            out[i] = v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roi(pixels: Vec<f32>, truth: bool, subject: &str) -> Roi {
        let size = (pixels.len() as f64).sqrt() as usize;
        Roi {
            pixels,
            size,
            truth,
            subject: subject.into(),
            arm: "a".into(),
        }
    }

    /// The channels are orthonormal in the continuum; sampled at 1 px they stay so while the
    /// Gaussian is several pixels wide and fits in the ROI.
    #[test]
    fn laguerre_gauss_channels_are_orthonormal_on_the_grid() {
        let u = laguerre_gauss_channels(64, 6, 8.0);
        for p in 0..6 {
            for q in 0..6 {
                let d: f64 = u[p].iter().zip(&u[q]).map(|(a, b)| a * b).sum();
                let want = if p == q { 1.0 } else { 0.0 };
                assert!((d - want).abs() < 1e-6, "<u{p}, u{q}> = {d}");
            }
        }
        // Channel 0 peaks at the ROI centre pixel (size/2, size/2).
        let c0 = &u[0];
        let imax = (0..c0.len())
            .max_by(|&a, &b| c0[a].total_cmp(&c0[b]))
            .unwrap();
        assert_eq!(imax, 32 * 64 + 32);
    }

    #[test]
    fn solve_spd_inverts_and_regularises() {
        let s = [4.0, 2.0, 2.0, 3.0];
        let x = solve_spd(&s, &[2.0, 1.0]);
        // [4 2; 2 3]⁻¹ [2 1]ᵀ = [0.5, 0]ᵀ.
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12);
        // Singular: still a finite answer along the null-free direction.
        let x = solve_spd(&[1.0, 1.0, 1.0, 1.0], &[1.0, 1.0]);
        assert!(x.iter().all(|v| v.is_finite()));
        assert!((x[0] + x[1] - 1.0).abs() < 1e-3);
    }

    #[test]
    fn folds_keep_subjects_together_and_classes_spread() {
        let mut rois = Vec::new();
        for s in 0..20 {
            rois.push(roi(vec![0.0; 4], true, &format!("s{s}")));
            rois.push(roi(vec![0.0; 4], false, &format!("s{s}")));
        }
        for _ in 0..10 {
            rois.push(roi(vec![0.0; 4], false, ""));
        }
        let f = fold_assignment(&rois, 5, 7);
        for s in 0..20 {
            assert_eq!(f[2 * s], f[2 * s + 1]);
        }
        for k in 0..5 {
            assert_eq!(
                (0..40).filter(|&i| f[i] == k && rois[i].truth).count(),
                4,
                "fold {k}"
            );
        }
        assert_eq!(f, fold_assignment(&rois, 5, 7));
    }

    #[test]
    fn missing_class_gives_chance_scores() {
        let a = roi(vec![1.0; 4], true, "x");
        let b = roi(vec![2.0; 4], true, "y");
        let obs = Observer::Cho {
            channels: 2,
            width_px: 1.0,
        };
        assert_eq!(score(&obs, &[&a, &b], &[&a]), vec![0.0]);
    }
}
