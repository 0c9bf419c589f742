//! Must-show 1: model observers against the analytic detectability of a Gaussian signal
//! known exactly in white Gaussian noise.
//!
//! For a signal s in white noise of SD σ the ideal (likelihood-ratio) observer is linear with
//! template s, and d′ = ‖s‖/σ (Barrett & Myers, *Foundations of Image Science*, 2004,
//! §13.2.8); its scores are normal with equal variances, so AUC = Φ(d′/√2). A CHO whose
//! channels U span s reaches the same d′, since d′²_CHO = (Us)ᵀ(σ²UUᵀ)⁻¹(Us) = ‖P_U s‖²/σ².

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::*;

const SIZE: usize = 32;
const SIGMA_SIGNAL_PX: f64 = 2.0;
const SIGMA_NOISE: f64 = 10.0;
const N_PER_CLASS: usize = 200;

/// Unit-amplitude Gaussian blob centred on the ROI centre pixel (SIZE/2, SIZE/2).
fn blob() -> Vec<f64> {
    let c = (SIZE / 2) as f64;
    (0..SIZE * SIZE)
        .map(|i| {
            let (x, y) = ((i % SIZE) as f64 - c, (i / SIZE) as f64 - c);
            (-(x * x + y * y) / (2.0 * SIGMA_SIGNAL_PX * SIGMA_SIGNAL_PX)).exp()
        })
        .collect()
}

fn norm2(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum()
}

/// The signal scaled so the ideal observer's AUC is 0.8, and the ROIs.
fn cohort(seed: u64) -> (Vec<f64>, Vec<Roi>) {
    let d_ideal = dprime_from_auc(0.8);
    let g = blob();
    let amp = d_ideal * SIGMA_NOISE / norm2(&g).sqrt();
    let s: Vec<f64> = g.iter().map(|v| amp * v).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noise = Normal::new(0.0, SIGMA_NOISE).unwrap();
    let rois = (0..2 * N_PER_CLASS)
        .map(|k| {
            let truth = k < N_PER_CLASS;
            let pixels = s
                .iter()
                .map(|&sv| (if truth { sv } else { 0.0 } + noise.sample(&mut rng)) as f32)
                .collect();
            Roi {
                pixels,
                size: SIZE,
                truth,
                subject: format!("case{k}"),
                arm: "white".into(),
            }
        })
        .collect();
    (s, rois)
}

fn analyse(scores: &[f64], rois: &[Roi]) -> AucResult {
    let truth: Vec<bool> = rois.iter().map(|r| r.truth).collect();
    auc_analysis(scores, &truth, 0, 0.05, 0)
}

fn contains(ci: (f64, f64), v: f64) -> bool {
    ci.0 <= v && v <= ci.1
}

#[test]
fn npwmf_with_the_known_signal_reaches_the_ideal_auc() {
    let (s, rois) = cohort(1);
    let d_ideal = norm2(&s).sqrt() / SIGMA_NOISE;
    let auc_ideal = normal_cdf(d_ideal / std::f64::consts::SQRT_2);
    assert!((auc_ideal - 0.8).abs() < 1e-12);
    // Trained on the noise-free mean images, the NPWMF template is s itself.
    let mean_present = Roi {
        pixels: s.iter().map(|&v| v as f32).collect(),
        size: SIZE,
        truth: true,
        subject: "mean+".into(),
        arm: "white".into(),
    };
    let mean_absent = Roi {
        pixels: vec![0.0; SIZE * SIZE],
        truth: false,
        subject: "mean-".into(),
        ..mean_present.clone()
    };
    let test: Vec<&Roi> = rois.iter().collect();
    let scores = score(&Observer::Npwmf, &[&mean_present, &mean_absent], &test);
    let r = analyse(&scores, &rois);
    eprintln!(
        "ideal NPWMF: AUC {:.4} (CI {:.4}–{:.4}), analytic {auc_ideal:.4}; d′ {:.3}/{:.3}, analytic {d_ideal:.3}",
        r.auc, r.ci_delong.0, r.ci_delong.1, r.dprime_from_auc, r.dprime_from_scores
    );
    assert!(contains(r.ci_delong, auc_ideal), "{r:?}");
}

#[test]
fn cross_validated_npwmf_matches_the_noisy_template_theory() {
    // A template estimated from K present and K absent ROIs is t = s + e, e white with
    // variance 2σ²/K per pixel, so d′ = E[tᵀs]/(σ√E‖t‖²) = ‖s‖²/(σ√(‖s‖² + 2Nσ²/K)).
    // In 32×32 ROIs with K = 160 the template noise outweighs the signal: the trained NPWMF
    // falls well below the ideal, which this checks quantitatively.
    let (s, rois) = cohort(2);
    let folds = 5;
    let k = (N_PER_CLASS * (folds - 1) / folds) as f64;
    let n = (SIZE * SIZE) as f64;
    let s2 = norm2(&s);
    let sig2 = SIGMA_NOISE * SIGMA_NOISE;
    let d_theory = s2 / (sig2 * (s2 + 2.0 * n * sig2 / k)).sqrt();
    let auc_theory = normal_cdf(d_theory / std::f64::consts::SQRT_2);
    let scores = cross_validated_scores(&Observer::Npwmf, &rois, folds, 3);
    let r = analyse(&scores, &rois);
    eprintln!(
        "CV NPWMF: AUC {:.4} (CI {:.4}–{:.4}), noisy-template theory {auc_theory:.4}",
        r.auc, r.ci_delong.0, r.ci_delong.1
    );
    assert!(contains(r.ci_delong, auc_theory), "{r:?}");
}

#[test]
fn cross_validated_cho_reaches_the_ideal_auc() {
    let (s, rois) = cohort(4);
    let auc_ideal = 0.8;
    // Width a = σ√(2π) would make channel 0 the blob exactly; a slightly different a shows
    // that the higher channels absorb the mismatch.
    let (channels, width_px) = (5, 5.5);
    let u = laguerre_gauss_channels(SIZE, channels, width_px);
    // Channelised (population) d′: (Us)ᵀ (σ² UUᵀ)⁻¹ (Us), by Gaussian elimination.
    let us: Vec<f64> = u
        .iter()
        .map(|c| c.iter().zip(&s).map(|(a, b)| a * b).sum())
        .collect();
    let mut m: Vec<Vec<f64>> = u
        .iter()
        .zip(&us)
        .map(|(ci, &b)| {
            let mut row: Vec<f64> = u
                .iter()
                .map(|cj| {
                    SIGMA_NOISE * SIGMA_NOISE * ci.iter().zip(cj).map(|(a, b)| a * b).sum::<f64>()
                })
                .collect();
            row.push(b);
            row
        })
        .collect();
    for i in 0..channels {
        let pivot = m[i].clone();
        for row in m.iter_mut().skip(i + 1) {
            let f = row[i] / pivot[i];
            for (v, p) in row.iter_mut().zip(&pivot).skip(i) {
                *v -= f * p;
            }
        }
    }
    let mut x = vec![0.0; channels];
    for i in (0..channels).rev() {
        let acc: f64 = (i + 1..channels).map(|c| m[i][c] * x[c]).sum();
        x[i] = (m[i][channels] - acc) / m[i][i];
    }
    let d_cho = us.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>().sqrt();
    let d_ideal = norm2(&s).sqrt() / SIGMA_NOISE;
    assert!(
        d_cho / d_ideal > 0.99,
        "channels capture the blob: {d_cho} vs {d_ideal}"
    );
    let auc_cho = normal_cdf(d_cho / std::f64::consts::SQRT_2);

    let obs = Observer::Cho { channels, width_px };
    let scores = cross_validated_scores(&obs, &rois, 5, 5);
    let r = analyse(&scores, &rois);
    let half = 0.5 * (r.ci_delong.1 - r.ci_delong.0);
    eprintln!(
        "CV CHO ({channels} LG channels, a = {width_px} px): AUC {:.4} (CI {:.4}–{:.4}), channelised theory {auc_cho:.4}, ideal {auc_ideal}",
        r.auc, r.ci_delong.0, r.ci_delong.1
    );
    assert!(contains(r.ci_delong, auc_cho), "{r:?}");
    assert!(
        r.auc <= auc_ideal + half,
        "CHO above the ideal observer: {r:?}"
    );
}

/// CHO with channels far too narrow for the blob loses detectability, as channelisation
/// theory says it must.
#[test]
fn cho_with_mismatched_channels_is_suboptimal() {
    let (_, rois) = cohort(6);
    let narrow = Observer::Cho {
        channels: 1,
        width_px: 1.0,
    };
    let matched = Observer::Cho {
        channels: 3,
        width_px: 5.0,
    };
    let a_n = analyse(&cross_validated_scores(&narrow, &rois, 5, 7), &rois).auc;
    let a_m = analyse(&cross_validated_scores(&matched, &rois, 5, 7), &rois).auc;
    assert!(a_n < a_m, "narrow {a_n} matched {a_m}");
}
