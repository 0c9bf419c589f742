//! The arms of the comparison for each modality, the cohorts they are drawn from, and the
//! real scan each modality is scored on by default: one table, so the binary, the report
//! and the tests agree on what an arm is.

use crate::slices::Modality;

/// A cohort the benchmark generates: folder name and pipeline file.
pub const COHORTS: [(&str, &str); 5] = [
    ("procedural", "procedural_atlas.yaml"),
    ("phantom", "phantom.yaml"),
    ("diffusion", "diffusion.yaml"),
    ("procedural_mr", "procedural_atlas_mr.yaml"),
    ("phantom_mr", "phantom_mr.yaml"),
];

/// Where an arm's training slices come from.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum From {
    /// An acquisition arm (nnU-Net channel) of a generated cohort: (cohort, arm).
    Cohort(&'static str, &'static str),
    /// The label-mean painter over that cohort arm's images.
    Painted(&'static str, &'static str),
    /// The real scan's training blocks.
    RealTrain,
}

/// An arm of the comparison: name, what it trains on, its sources (equal shares of draws).
pub struct ArmDef {
    pub name: &'static str,
    pub trained_on: &'static str,
    pub from: &'static [From],
}

const fn arm(name: &'static str, trained_on: &'static str, from: &'static [From]) -> ArmDef {
    ArmDef {
        name,
        trained_on,
        from,
    }
}

/// The real scan's own training blocks: the same row in every table.
const REAL: ArmDef = arm(
    "real",
    "the real scan's training blocks",
    &[From::RealTrain],
);

pub const CT_ARMS: &[ArmDef] = &[
    arm(
        "painter",
        "atlas labels, each label painted with its mean HU (no texture, no noise)",
        &[From::Painted("procedural", "object")],
    ),
    arm(
        "procedural_hu",
        "atlas subjects, procedural renderer, noise-free HU map",
        &[From::Cohort("procedural", "object")],
    ),
    arm(
        "procedural_ct",
        "the same subjects imaged by the CT simulator (120 kVp, FBP)",
        &[From::Cohort("procedural", "ct")],
    ),
    arm(
        "phantom_hu",
        "procedural abdomen phantom (no real anatomy), noise-free HU map",
        &[From::Cohort("phantom", "object")],
    ),
    arm(
        "diffusion_hu",
        "shipped diffusion model ct-thorax on the thorax phantom",
        &[From::Cohort("diffusion", "object")],
    ),
    REAL,
    arm(
        "real_plus_procedural",
        "real training blocks + procedural_hu, half the draws each",
        &[From::RealTrain, From::Cohort("procedural", "object")],
    ),
];

/// No shipped diffusion model generates abdominal MR (`mri-head` is brain), so the MR table
/// has no diffusion row; every synthetic MR row is imaged by the MR simulator.
pub const MR_ARMS: &[ArmDef] = &[
    arm(
        "painter",
        "atlas labels, each label painted with its mean MR signal (no texture, no noise)",
        &[From::Painted("procedural_mr", "t1w")],
    ),
    arm(
        "procedural_mr",
        "atlas subjects, procedural renderer, MR simulator (1.5 T T1w spoiled GRE)",
        &[From::Cohort("procedural_mr", "t1w")],
    ),
    arm(
        "phantom_mr",
        "procedural abdomen phantom (no real anatomy), the same MR protocol",
        &[From::Cohort("phantom_mr", "t1w")],
    ),
    REAL,
    arm(
        "real_plus_procedural",
        "real training blocks + procedural_mr, half the draws each",
        &[From::RealTrain, From::Cohort("procedural_mr", "t1w")],
    ),
];

/// The real scan a modality is scored on by default (image, labels, names under
/// tests/data) and its split block.
pub fn real_defaults(m: Modality) -> ([&'static str; 3], usize) {
    match m {
        Modality::Ct => (
            [
                "ts_ct_torso_3mm.nii.gz",
                "ts_ct_torso_3mm_seg_total.nii.gz",
                "ts_total_classes.txt",
            ],
            8,
        ),
        Modality::Mr => (
            [
                "ts_mr_abdomen_3mm.nii.gz",
                "ts_mr_abdomen_3mm_seg_total_mr.nii.gz",
                "ts_total_mr_classes.txt",
            ],
            5,
        ),
    }
}

/// The arms of a modality's table.
pub fn arms(m: Modality) -> &'static [ArmDef] {
    match m {
        Modality::Ct => CT_ARMS,
        Modality::Mr => MR_ARMS,
    }
}

/// The pipeline file of a cohort (under `benches/utility/pipelines/`).
pub fn pipeline_file(cohort: &str) -> Option<&'static str> {
    COHORTS.iter().find(|c| c.0 == cohort).map(|c| c.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every synthetic source names a cohort whose pipeline exists, validates, and has the
    /// acquisition arm the source reads (a renamed arm would otherwise fail only after the
    /// cohort was generated); every real scan default lies in tests/data.
    #[test]
    fn every_source_is_a_valid_cohort_arm() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        for m in [Modality::Ct, Modality::Mr] {
            for d in arms(m) {
                for f in d.from {
                    let (From::Cohort(c, arm) | From::Painted(c, arm)) = *f else {
                        continue;
                    };
                    let file = pipeline_file(c).unwrap_or_else(|| panic!("{}: cohort {c}", d.name));
                    let path = here.join("pipelines").join(file);
                    let p = synthcohort::pipeline::load(&path)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    assert!(
                        p.arms.iter().any(|a| a.name == arm),
                        "{}: {} has no arm `{arm}`",
                        d.name,
                        path.display()
                    );
                }
            }
            let (files, block) = real_defaults(m);
            assert!(block >= 3);
            for f in files {
                assert!(here.join("../../tests/data").join(f).exists(), "{f}");
            }
        }
    }
}
