//! The virtual trial over a run folder, the engine's side: the run's records and files turned
//! into the trial's cases and arms, the analysis (`trial::analysis`) run with the run folder
//! as its image reader, and its files written under `trial/`. Reads only files, so
//! `synthcohort trial OUTDIR` redoes it without regenerating anything.

use super::*;
use crate::trial::analysis::{self, ArmInput, Reading};
use crate::trial::design::{self, Case};
use crate::trial::{output, TrialError};

/// Where the lesion-free twin of `subject` under `arm` is written.
pub(super) fn twin_path(subject: &str, arm: &str, ext: &str) -> String {
    format!("trial/twins/{subject}_{arm}{ext}")
}

/// Signal-absent ROI centres for a lesion-free subject, from its trial stream.
pub(super) fn absent_sites(p: &Resolved, labels: &Volume<u16>, seed: u64) -> Vec<[f64; 3]> {
    let conditions: Vec<(String, f64)> = p
        .spec
        .cohort
        .conditions
        .iter()
        .filter_map(|c| c.lesion.as_ref())
        .map(|l| {
            (
                l.organ.clone(),
                crate::pipeline::validate::dist_upper(&l.diameter_mm),
            )
        })
        .collect();
    design::absent_sites(&conditions, labels, &mut rng::stream(seed, Stage::Trial, 0))
}

/// The figures a trial produced.
#[derive(Clone, Debug)]
pub struct TrialSummary {
    pub arms: Vec<crate::trial::ArmRow>,
    pub pairs: Vec<crate::trial::PairRow>,
    /// Log–log slope of d′ against dose (mAs-proportional CTDIvol) over the CT arms, with SE.
    pub dprime_dose_slope: Option<(f64, f64)>,
    pub report_path: PathBuf,
}

/// `synthcohort trial OUTDIR`: recomputes the analysis of an existing run folder.
pub fn trial(dir: &Path) -> Result<TrialSummary, EngineError> {
    let not_a_run = |reason: String| EngineError::NotARun {
        dir: dir.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(dir.join(STATE_DIR).join("run.json"))
        .map_err(|e| not_a_run(e.to_string()))?;
    let state: RunState = serde_json::from_slice(&bytes).map_err(|e| not_a_run(e.to_string()))?;
    let yaml = dir.join(STATE_DIR).join("pipeline.yaml");
    let bytes = std::fs::read(&yaml).map_err(|e| not_a_run(format!("{}: {e}", yaml.display())))?;
    let p = crate::pipeline::parse(&bytes, &yaml.display().to_string(), &state.base_dir)
        .map_err(|e| EngineError::RecordedPipeline(Box::new(e)))?;
    analyze(&p, dir)
}

/// Runs the trial analysis of `dir` and writes `trial/`.
pub(super) fn analyze(p: &Resolved, dir: &Path) -> Result<TrialSummary, EngineError> {
    let Some(t) = p.spec.trial.as_ref() else {
        return Err(EngineError::NoTrial(dir.to_path_buf()));
    };
    let arm_names: Vec<String> = t
        .arms
        .clone()
        .unwrap_or_else(|| p.arms.iter().map(|a| a.name.clone()).collect());
    let records = read_records(dir)?;
    let rows = || records.iter().flat_map(|r| r.rows.iter());
    let arms: Vec<ArmInput> = arm_names
        .iter()
        .map(|a| {
            let row = rows().find(|r| &r.arm == a);
            ArmInput {
                name: a.clone(),
                spacing_mm: row.map_or([1.0; 3], |r| r.spacing_mm),
                ctdi_vol_mgy: row.map_or(0.0, |r| r.ctdi_vol_mgy),
            }
        })
        .collect();
    let max_lesion_mm = rows()
        .flat_map(|row| row.lesions.iter().map(|l| l.diameter_mm))
        .fold(0.0, f64::max);
    let mean_lesion_mm = {
        let d: Vec<f64> = records
            .iter()
            .flat_map(|r| r.rows.first().into_iter())
            .flat_map(|row| row.lesions.iter().map(|l| l.diameter_mm))
            .collect();
        analysis::mean_sd(&d).0
    };
    let mut cases = cases(p, &records, &arm_names);
    if t.roi_within_organ {
        // The ROI is checked at its largest size over the arms' pixel spacings.
        let roi_mm = arms
            .iter()
            .filter(|a| rows().any(|r| r.arm == a.name))
            .map(|a| {
                analysis::roi_pixels(t, max_lesion_mm, a.spacing_mm[0]) as f64 * a.spacing_mm[0]
            })
            .fold(0.0, f64::max);
        design::keep_within_organ(&mut cases, roi_mm, |f| io::nifti::read_labels(&dir.join(f)))?;
    }
    let out = dir.join("trial");
    let dicom = dicom_rois(p, &arms, &records);
    let reading = Reading {
        trial: t,
        max_lesion_mm,
        mean_lesion_mm,
        seed: p.spec.seed,
        external_dir: &out.join("external"),
        descrip: &descrip(),
        dicom: &dicom,
    };
    let res = analysis::analyze(&reading, &arms, &cases, |f| {
        io::nifti::read_image(&dir.join(f)).map_err(TrialError::from)
    })?;
    let report_path = output::write(
        &out,
        t,
        &res,
        &output::Provenance {
            pipeline: &p.spec.name,
            sha: &p.sha256[..12],
            subjects: records.len(),
        },
    )?;
    Ok(TrialSummary {
        arms: res.arms,
        pairs: res.pairs,
        dprime_dose_slope: res.dprime_dose_slope,
        report_path,
    })
}

/// The ROI cases, identical across arms so arms can be compared case by case.
fn cases(p: &Resolved, records: &[SubjectRecord], arms: &[String]) -> Vec<Case> {
    let ext = extension(p);
    let mut out = Vec::new();
    for rec in records {
        let Some(first) = rec.rows.first() else {
            continue;
        };
        let image_of = |arm: &str| {
            rec.rows
                .iter()
                .find(|r| r.arm == arm)
                .map(|r| r.image_path.clone())
        };
        for les in &first.lesions {
            let labels = first.label_path.clone();
            let organ = les.organ.clone();
            let mut present = BTreeMap::new();
            let mut absent = BTreeMap::new();
            for a in arms {
                if let Some(path) = image_of(a) {
                    present.insert(a.clone(), path);
                }
                absent.insert(a.clone(), twin_path(&first.subject_id, a, ext));
            }
            let (subject, center_mm) = (first.subject_id.clone(), les.center_mm);
            out.push(Case {
                subject: subject.clone(),
                present: true,
                center_mm,
                labels: labels.clone(),
                organ: organ.clone(),
                files: present,
            });
            out.push(Case {
                subject,
                present: false,
                center_mm,
                labels,
                organ,
                files: absent,
            });
        }
        let organs: Vec<String> = p
            .spec
            .cohort
            .conditions
            .iter()
            .filter_map(|c| c.lesion.as_ref().map(|l| l.organ.clone()))
            .collect();
        for (site, organ) in rec.absent_sites.iter().zip(organs.iter().cycle()) {
            let files = arms
                .iter()
                .filter_map(|a| image_of(a).map(|f| (a.clone(), f)))
                .collect();
            out.push(Case {
                subject: first.subject_id.clone(),
                present: false,
                center_mm: *site,
                labels: first.label_path.clone(),
                organ: organ.clone(),
                files,
            });
        }
    }
    out
}

/// The DICOM description of each CT or MR arm's ROIs, for `external.format: dicom`: one
/// synthetic patient per arm (the ROIs pool every subject), each ROI a series of one image.
fn dicom_rois(
    p: &Resolved,
    arms: &[ArmInput],
    records: &[SubjectRecord],
) -> BTreeMap<String, crate::trial::external::DicomRois> {
    arms.iter()
        .filter_map(|a| {
            let arm = p.arms.iter().find(|x| x.name == a.name)?;
            // The arm's reconstructed grid (only its extent is recorded: Reconstruction
            // Diameter), without reading an image.
            let row = records
                .iter()
                .flat_map(|r| r.rows.iter())
                .find(|r| r.arm == a.name)?;
            let dims = row.image_dims.map(|d| d as usize);
            let probe = Volume {
                grid: Grid::centered(dims, a.spacing_mm),
                data: Vec::new(),
            };
            let acquisition = super::dicom::acquisition(&arm.protocol, &probe, a.ctdi_vol_mgy)?;
            let study = io::dicom::StudyInfo {
                uid_root: p
                    .spec
                    .outputs
                    .dicom_uid_root
                    .clone()
                    .unwrap_or_else(|| io::dicom::DEFAULT_UID_ROOT.to_string()),
                pipeline_sha256: p.sha256.clone(),
                subject_id: format!("trial-rois-{}", a.name),
                sex: 'O',
                age_years: f64::NAN,
                study_description: format!("SYNTHETIC trial ROIs {} {}", p.spec.name, a.name),
                software_version: crate::VERSION.to_string(),
            };
            Some((
                a.name.clone(),
                crate::trial::external::DicomRois { study, acquisition },
            ))
        })
        .collect()
}
