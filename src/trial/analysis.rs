//! The analysis of a trial: ROIs of every case under every arm, the observer's scores,
//! per-arm AUC / d′ / CNR / noise, paired DeLong tests between arms and the d′-versus-dose
//! slope. Images come through a reader, so this runs the same on a fresh run and on
//! `synthcohort trial OUTDIR`.

use std::collections::BTreeMap;
use std::path::Path;

use super::design::Case;
use super::spec::{ObserverSpec, TrialSpec};
use super::{
    auc_analysis, cross_validated_scores, delong_paired, extract_roi, loglog_slope, roc_curve,
    ArmRow, Observer, PairRow, RocCurve, Roi, TrialError,
};
use crate::volume::Volume;

/// What an arm contributes besides its images.
#[derive(Clone, Debug)]
pub struct ArmInput {
    pub name: String,
    /// Voxel spacing of the arm's images.
    pub spacing_mm: [f64; 3],
    /// Dose (0 for arms without one).
    pub ctdi_vol_mgy: f64,
}

/// Everything the files and the report are made from.
#[derive(Clone, Debug)]
pub struct TrialResults {
    pub arms: Vec<ArmRow>,
    pub pairs: Vec<PairRow>,
    /// Log–log slope of d′ against dose over the arms with a dose, with its SE.
    pub dprime_dose_slope: Option<(f64, f64)>,
    pub dose_points: Vec<(f64, f64)>,
    pub curves: Vec<RocCurve>,
    /// (subject, arm, truth, score), one per ROI.
    pub scores: Vec<(String, String, bool, f64)>,
    /// Scores per arm, in case order, and the cases' truth.
    pub scores_by_arm: BTreeMap<String, Vec<f64>>,
    pub truth: Vec<bool>,
    pub n_present: usize,
    pub n_absent: usize,
}

/// ROI edge in pixels: `roi_mm` (default 4× the largest lesion), at least 9 pixels so the
/// observer's channels have support, odd so the lesion sits on the centre pixel.
pub fn roi_pixels(t: &TrialSpec, max_lesion_mm: f64, spacing_mm: f64) -> usize {
    let mm = t.roi_mm.unwrap_or(4.0 * max_lesion_mm);
    ((mm / spacing_mm).round() as usize).max(9) | 1
}

/// How the ROIs of one arm are read and scored.
pub struct Reading<'a> {
    pub trial: &'a TrialSpec,
    /// Largest and mean lesion diameter (mm) over the cohort.
    pub max_lesion_mm: f64,
    pub mean_lesion_mm: f64,
    pub seed: u64,
    /// Where an external reader works (one sub-folder per arm).
    pub external_dir: &'a Path,
    /// NIfTI description of the ROIs handed to an external reader.
    pub descrip: &'a str,
    /// Per arm, what a DICOM ROI of it carries (`external.format: dicom`).
    pub dicom: &'a BTreeMap<String, super::external::DicomRois>,
}

/// Runs the analysis. `image` reads an image by its path in the run folder.
pub fn analyze(
    r: &Reading,
    arms: &[ArmInput],
    cases: &[Case],
    mut image: impl FnMut(&str) -> Result<Volume<f32>, TrialError>,
) -> Result<TrialResults, TrialError> {
    let n_present = cases.iter().filter(|c| c.present).count();
    let n_absent = cases.len() - n_present;
    if n_present < 2 || n_absent < 2 {
        return Err(TrialError::TooFewCases {
            n_present,
            n_absent,
        });
    }
    let truth: Vec<bool> = cases.iter().map(|c| c.present).collect();
    let mut res = TrialResults {
        arms: Vec::new(),
        pairs: Vec::new(),
        dprime_dose_slope: None,
        dose_points: Vec::new(),
        curves: Vec::new(),
        scores: Vec::new(),
        scores_by_arm: BTreeMap::new(),
        truth,
        n_present,
        n_absent,
    };
    let mut cache = ImageCache {
        files: BTreeMap::new(),
    };
    for arm in arms {
        let rois = read_rois(r, arm, cases, &mut cache, &mut image)?;
        score_arm(r, arm, cases, &rois, &mut res)?;
    }
    let names: Vec<&String> = arms.iter().map(|a| &a.name).collect();
    for i in 0..names.len() {
        for j in i + 1..names.len() {
            let result = delong_paired(
                &res.scores_by_arm[names[i]],
                &res.scores_by_arm[names[j]],
                &res.truth,
                r.trial.alpha,
            );
            res.pairs.push(PairRow {
                arm_a: names[i].clone(),
                arm_b: names[j].clone(),
                result,
            });
        }
    }
    res.dprime_dose_slope = (res.dose_points.len() >= 2).then(|| {
        let (x, y): (Vec<f64>, Vec<f64>) = res.dose_points.iter().copied().unzip();
        loglog_slope(&x, &y)
    });
    Ok(res)
}

/// Cases alternate between a subject's image and its twin: a few files are kept.
struct ImageCache {
    files: BTreeMap<String, Volume<f32>>,
}

impl ImageCache {
    fn get(
        &mut self,
        file: &str,
        image: &mut impl FnMut(&str) -> Result<Volume<f32>, TrialError>,
    ) -> Result<&Volume<f32>, TrialError> {
        if !self.files.contains_key(file) {
            if self.files.len() >= 4 {
                self.files.clear();
            }
            self.files.insert(file.to_string(), image(file)?);
        }
        Ok(&self.files[file])
    }
}

/// The axial ROIs of every case under one arm, ring mean removed.
fn read_rois(
    r: &Reading,
    arm: &ArmInput,
    cases: &[Case],
    cache: &mut ImageCache,
    image: &mut impl FnMut(&str) -> Result<Volume<f32>, TrialError>,
) -> Result<Vec<Roi>, TrialError> {
    let roi_px = roi_pixels(r.trial, r.max_lesion_mm, arm.spacing_mm[0]);
    let mut rois = Vec::with_capacity(cases.len());
    for c in cases {
        let file = c
            .files
            .get(&arm.name)
            .ok_or_else(|| TrialError::MissingImage {
                subject: c.subject.clone(),
                arm: arm.name.clone(),
            })?;
        let img = cache.get(file, image)?;
        let pixels =
            extract_roi(img, c.center_mm, roi_px).ok_or_else(|| TrialError::RoiOutside {
                roi_px,
                center_mm: c.center_mm,
                subject: c.subject.clone(),
                arm: arm.name.clone(),
            })?;
        rois.push(Roi {
            pixels: subtract_border_mean(pixels, roi_px),
            size: roi_px,
            truth: c.present,
            subject: c.subject.clone(),
            arm: arm.name.clone(),
        });
    }
    Ok(rois)
}

fn observer(spec: &ObserverSpec, roi_px: usize, lesion_px: f64) -> Option<Observer> {
    match spec {
        ObserverSpec::Npwmf => Some(Observer::Npwmf),
        ObserverSpec::Cho { n, width_mm, .. } => Some(Observer::Cho {
            channels: *n as usize,
            // A Gaussian-like lesion of diameter d is matched by a ≈ d (Gallas & Barrett 2003).
            width_px: width_mm
                .map_or(lesion_px.max(2.0), |w| w)
                .min(roi_px as f64),
        }),
        ObserverSpec::External { .. } => None,
    }
}

/// Scores one arm's ROIs and adds its row, curve, dose point and scores to `res`.
fn score_arm(
    r: &Reading,
    arm: &ArmInput,
    cases: &[Case],
    rois: &[Roi],
    res: &mut TrialResults,
) -> Result<(), TrialError> {
    let t = r.trial;
    let roi_px = rois.first().map_or(9, |x| x.size);
    let lesion_px = r.mean_lesion_mm / arm.spacing_mm[0];
    let scores = match (&t.observer, observer(&t.observer, roi_px, lesion_px)) {
        (_, Some(obs)) => cross_validated_scores(&obs, rois, t.folds as usize, r.seed),
        (ObserverSpec::External { command, format }, None) => super::external::external_scores(
            command,
            &r.external_dir.join(&arm.name),
            rois,
            arm.spacing_mm,
            &match format {
                super::spec::RoiFormat::Nifti => super::external::RoiFiles::Nifti(r.descrip),
                super::spec::RoiFormat::Dicom => super::external::RoiFiles::Dicom(
                    r.dicom.get(&arm.name).ok_or_else(|| TrialError::External {
                        command: command.clone(),
                        reason: format!(
                            "arm `{}` makes no CT or MR image, so its ROIs cannot be DICOM (external.format: dicom)",
                            arm.name
                        ),
                    })?,
                ),
            },
        )?,
        _ => unreachable!("every observer kind is handled"),
    };
    let auc = auc_analysis(&scores, &res.truth, t.bootstrap as usize, t.alpha, r.seed);
    // Lesion contrast and noise from the ROIs themselves: CNR = (present − absent centre
    // mean) / SD of the absent ROIs' pixels.
    let r_px = (0.5 * lesion_px).max(1.0);
    let centre = |present: bool| -> Vec<f64> {
        rois.iter()
            .filter(|x| x.truth == present)
            .map(|x| disk_mean(x, r_px))
            .collect()
    };
    let (mp, _) = mean_sd(&centre(true));
    let (ma, _) = mean_sd(&centre(false));
    let noise = paired_noise(cases, rois, roi_px, lesion_px);
    let cnr = (mp - ma) / noise.max(1e-12);
    // The observer's own SNR (from its score distributions) keeps measuring where the AUC
    // saturates at 1, so the dose law is fitted on it.
    let dose = arm.ctdi_vol_mgy;
    if dose > 0.0 && auc.dprime_from_scores.is_finite() && auc.dprime_from_scores > 0.0 {
        res.dose_points.push((dose, auc.dprime_from_scores));
    }
    res.curves
        .push((arm.name.clone(), roc_curve(&scores, &res.truth), auc.auc));
    for (x, s) in rois.iter().zip(&scores) {
        res.scores
            .push((x.subject.clone(), arm.name.clone(), x.truth, *s));
    }
    res.scores_by_arm.insert(arm.name.clone(), scores);
    res.arms.push(ArmRow {
        arm: arm.name.clone(),
        n_present: res.n_present,
        n_absent: res.n_absent,
        auc,
        extra: vec![
            ("CTDIvol (mGy)".into(), dose),
            ("CNR".into(), cnr),
            ("noise".into(), noise),
            ("absent centre − ring".into(), ma),
        ],
    });
    Ok(())
}

/// Pixel noise from the paired design: a lesion ROI and its twin's ROI share the anatomy, so
/// their difference outside the lesion is noise alone (variance 2σ²).
fn paired_noise(cases: &[Case], rois: &[Roi], roi_px: usize, lesion_px: f64) -> f64 {
    let mut sds = Vec::new();
    for w in (0..cases.len()).collect::<Vec<_>>().windows(2) {
        let (a, b) = (&cases[w[0]], &cases[w[1]]);
        if a.present && !b.present && a.center_mm == b.center_mm {
            let c = (roi_px / 2) as f64;
            let diff: Vec<f64> = (0..roi_px * roi_px)
                .filter(|&q| ((q % roi_px) as f64 - c).hypot((q / roi_px) as f64 - c) > lesion_px)
                .map(|q| (rois[w[0]].pixels[q] - rois[w[1]].pixels[q]) as f64)
                .collect();
            sds.push(mean_sd(&diff).1 / std::f64::consts::SQRT_2);
        }
    }
    mean_sd(&sds).0
}

/// Removes the mean of the ROI's outer ring (beyond 3/4 of its half-width): slow background
/// drifts (residual cupping, organ-scale intensity changes) then do not pass for signal,
/// the usual preparation of CT detectability ROIs. Signals sit well inside the ring.
fn subtract_border_mean(mut px: Vec<f32>, size: usize) -> Vec<f32> {
    let c = (size / 2) as f64;
    let r = 0.75 * c;
    let (mut s, mut n) = (0.0f64, 0.0f64);
    for j in 0..size {
        for i in 0..size {
            if (i as f64 - c).hypot(j as f64 - c) > r {
                s += px[j * size + i] as f64;
                n += 1.0;
            }
        }
    }
    if n > 0.0 {
        let m = (s / n) as f32;
        px.iter_mut().for_each(|v| *v -= m);
    }
    px
}

/// Mean and sample SD.
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt(),
    )
}

/// Mean of the central disk (radius `r_px`) of a ROI.
fn disk_mean(r: &Roi, r_px: f64) -> f64 {
    let c = (r.size / 2) as f64;
    let (mut s, mut n) = (0.0f64, 0.0f64);
    for j in 0..r.size {
        for i in 0..r.size {
            if (i as f64 - c).powi(2) + (j as f64 - c).powi(2) <= r_px * r_px {
                s += r.pixels[j * r.size + i] as f64;
                n += 1.0;
            }
        }
    }
    s / n.max(1.0)
}
