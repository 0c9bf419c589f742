//! Sampling subjects: demographics, conditions (by prevalence or exact count), lesion
//! parameters, seeds and prompts. Subject k depends only on (pipeline, k).

pub mod dist;

use std::collections::BTreeSet;

use rand::seq::SliceRandom;
use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::anatomy::{BodySize, LesionShape, Sex};
use crate::pipeline::spec::{DiffuseKind, LesionKind, Pipeline};
use crate::rng::{self, Stage};
use crate::tissue::contrast::LesionEnhancement;

/// One focal lesion to insert, with its tissue properties.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LesionDraw {
    pub condition: String,
    pub kind: LesionKind,
    pub organ: String,
    pub shape: LesionShape,
    pub placement: crate::anatomy::LesionPlacement,
    #[serde(default)]
    pub growth: crate::anatomy::LesionGrowth,
    pub diameter_mm: f64,
    /// CT attenuation (HU), unenhanced.
    pub hu: f64,
    /// CT material (attenuation-table name).
    pub material: String,
    /// Contrast uptake.
    pub enhancement: LesionEnhancement,
    /// MRI proton density (relative to CSF), T1 and T2 in ms.
    pub pd: f64,
    pub t1_ms: f64,
    pub t2_ms: f64,
    /// Apparent diffusion coefficient, µm²/ms.
    pub adc_um2_ms: f64,
}

/// One diffuse disease with its sampled severity (units per [`DiffuseKind`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiffuseDraw {
    pub condition: String,
    pub kind: DiffuseKind,
    pub severity: f64,
}

/// A sampled subject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    pub index: u64,
    /// `sub-0007`: zero-padded so that names sort in index order.
    pub id: String,
    pub seed: u64,
    pub age: f64,
    pub sex: Sex,
    pub height_cm: f64,
    pub weight_kg: f64,
    pub bmi: f64,
    pub conditions: Vec<String>,
    pub lesions: Vec<LesionDraw>,
    pub diffuse: Vec<DiffuseDraw>,
    pub prompt: String,
}

impl Subject {
    /// The body the anatomy is scaled to: the subject's own with `body_scaling`, else the
    /// templates' reference adult (170 cm, 72 kg) of the subject's sex.
    pub fn body_size(&self, body_scaling: bool) -> BodySize {
        if body_scaling {
            BodySize {
                height_cm: self.height_cm,
                weight_kg: self.weight_kg,
                sex: self.sex,
                age_years: self.age,
            }
        } else {
            BodySize {
                sex: self.sex,
                ..BodySize::median()
            }
        }
    }
}

/// Cohort-wide draws that cannot be made per subject: which subjects carry each exact-count
/// condition (a seeded shuffle of all indices, so the chosen set does not depend on which
/// subjects a run produces).
pub struct CohortPlan {
    counted: Vec<Option<BTreeSet<u64>>>,
}

impl CohortPlan {
    pub fn new(p: &Pipeline) -> Self {
        let counted = p
            .cohort
            .conditions
            .iter()
            .enumerate()
            .map(|(ci, c)| {
                c.count.map(|n| {
                    let mut idx: Vec<u64> = (0..p.cohort.size as u64).collect();
                    let mut r = rng::stream(
                        rng::subject_seed(p.seed, u64::MAX - ci as u64),
                        Stage::Cohort,
                        ci as u64,
                    );
                    idx.shuffle(&mut r);
                    idx.into_iter().take(n as usize).collect()
                })
            })
            .collect();
        CohortPlan { counted }
    }
}

pub fn subject_id(index: u64, cohort_size: u32) -> String {
    let width = (cohort_size.max(1) as f64).log10().floor() as usize + 1;
    format!("sub-{:0w$}", index + 1, w = width.max(4))
}

/// Samples subject `index`. Draws come from the subject's own cohort stream in a fixed order.
pub fn sample(p: &Pipeline, plan: &CohortPlan, index: u64) -> Subject {
    let seed = rng::subject_seed(p.seed, index);
    let mut r = rng::stream(seed, Stage::Cohort, 0);
    let d = &p.cohort.demographics;

    let sex = if r.random::<f64>() < d.sex.female {
        Sex::Female
    } else {
        Sex::Male
    };
    let age = dist::sample(&d.age, &mut r, 0.0, 120.0);
    // Adult heights by sex (e.g. NCD-RisC 2016 global means of about 162 cm and 176 cm in
    // high-income countries); an explicit height distribution overrides.
    let height_cm = match &d.height_cm {
        Some(h) => dist::sample(h, &mut r, 40.0, 250.0),
        None => {
            let mean = if sex == Sex::Female { 162.0 } else { 176.0 };
            (mean + 7.0 * standard_normal(&mut r)).clamp(140.0, 210.0)
        }
    };
    let h_m = height_cm / 100.0;
    let (weight_kg, bmi) = match (&d.weight_kg, &d.bmi) {
        (Some(w), _) => {
            let w = dist::sample(w, &mut r, 2.0, 400.0);
            (w, w / (h_m * h_m))
        }
        (None, Some(b)) => {
            let b = dist::sample(b, &mut r, 10.0, 80.0);
            (b * h_m * h_m, b)
        }
        (None, None) => {
            let b = (26.0f64.ln() + 0.15 * standard_normal(&mut r))
                .exp()
                .clamp(15.0, 50.0);
            (b * h_m * h_m, b)
        }
    };

    let mut conditions = Vec::new();
    let mut lesions = Vec::new();
    let mut diffuse = Vec::new();
    for (ci, c) in p.cohort.conditions.iter().enumerate() {
        // Always draw, so one condition's kind (count vs prevalence) never shifts the stream.
        let u: f64 = r.random();
        let has = match (&plan.counted[ci], c.prevalence) {
            (Some(set), _) => set.contains(&index),
            (None, Some(prev)) => u < prev,
            (None, None) => false,
        };
        if !has {
            continue;
        }
        conditions.push(c.name.clone());
        if let Some(d) = &c.diffuse {
            let ((lo, hi), (min, max)) = d.kind.severity_range();
            let severity = match &d.severity {
                Some(s) => dist::sample(s, &mut r, min, max),
                None => lo + (hi - lo) * r.random::<f64>(),
            };
            diffuse.push(DiffuseDraw {
                condition: c.name.clone(),
                kind: d.kind,
                severity,
            });
        }
        if let Some(l) = &c.lesion {
            let n = dist::sample(&l.count, &mut r, 0.0, 50.0).round().max(1.0) as usize;
            for _ in 0..n {
                let (hu, pd, t1, t2) = default_lesion_properties(l.kind);
                let hu =
                    l.hu.as_ref()
                        .map_or(hu, |h| dist::sample(h, &mut r, -1100.0, 3000.0));
                let (pd, t1_ms, t2_ms) = match &l.relaxation {
                    Some(rx) => (
                        dist::sample(&rx.pd, &mut r, 0.0, 1.5),
                        dist::sample(&rx.t1_ms, &mut r, 1.0, 10000.0),
                        dist::sample(&rx.t2_ms, &mut r, 0.1, 5000.0),
                    ),
                    None => (pd, t1, t2),
                };
                lesions.push(LesionDraw {
                    condition: c.name.clone(),
                    kind: l.kind,
                    organ: l.organ.clone(),
                    shape: l.shape,
                    placement: l.placement,
                    growth: l.growth,
                    diameter_mm: dist::sample(&l.diameter_mm, &mut r, 0.1, 300.0),
                    hu,
                    material: l.material.clone().unwrap_or_else(|| "water".into()),
                    enhancement: l.enhancement.unwrap_or(default_enhancement(l.kind)),
                    pd,
                    t1_ms,
                    t2_ms,
                    adc_um2_ms: l.adc_um2_ms.as_ref().map_or_else(
                        || crate::tissue::diffusion::lesion_adc_um2_ms(l.kind.name()),
                        |d| dist::sample(d, &mut r, 0.0, 4.0),
                    ),
                });
            }
        }
    }

    let mut s = Subject {
        index,
        id: subject_id(index, p.cohort.size),
        seed,
        age,
        sex,
        height_cm,
        weight_kg,
        bmi,
        conditions,
        lesions,
        diffuse,
        prompt: String::new(),
    };
    s.prompt = prompt(p, &s);
    s
}

fn standard_normal(r: &mut rand_chacha::ChaCha8Rng) -> f64 {
    use rand_distr::{Distribution, StandardNormal};
    StandardNormal.sample(r)
}

/// Typical lesion properties by kind: (HU, PD, T1 ms, T2 ms). CT values are portal-venous
/// soft-tissue lesions (solid ~20–40 HU) and water-like cysts; MRI values are generic solid
/// tumour (long T1/T2 relative to parenchyma) and fluid.
fn default_lesion_properties(kind: LesionKind) -> (f64, f64, f64, f64) {
    match kind {
        LesionKind::Nodule => (30.0, 0.85, 1300.0, 110.0),
        LesionKind::Tumour => (40.0, 0.85, 1400.0, 120.0),
        LesionKind::Metastasis => (35.0, 0.85, 1450.0, 130.0),
        LesionKind::Cyst => crate::tissue::CYST_FLUID,
    }
}

/// Contrast uptake by lesion kind when the pipeline does not say: cysts take none; "tumour"
/// stands for the primary liver tumour of the shipped pipelines (HCC: hypervascular);
/// metastases and (lung) nodules enhance less than their organ.
fn default_enhancement(kind: LesionKind) -> LesionEnhancement {
    match kind {
        LesionKind::Cyst => LesionEnhancement::None,
        LesionKind::Tumour => LesionEnhancement::Hypervascular,
        LesionKind::Metastasis | LesionKind::Nodule => LesionEnhancement::Hypovascular,
    }
}

/// Fills the prompt template with the subject's attributes.
pub fn prompt(p: &Pipeline, s: &Subject) -> String {
    let conditions = if s.conditions.is_empty() {
        crate::pipeline::prompt::NO_FINDINGS.to_string()
    } else {
        p.cohort
            .conditions
            .iter()
            .filter(|c| s.conditions.contains(&c.name))
            .map(crate::pipeline::prompt::condition_text)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let template = crate::pipeline::prompt::template_word(p.anatomy.template);
    p.generator
        .prompt
        .replace("{age}", &format!("{:.0}", s.age))
        .replace(
            "{sex}",
            if s.sex == Sex::Female {
                "female"
            } else {
                "male"
            },
        )
        .replace("{bmi}", &format!("BMI {:.0}", s.bmi))
        .replace("{template}", template)
        .replace("{conditions}", &conditions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(yaml: &str) -> Pipeline {
        crate::pipeline::parse(yaml.as_bytes(), "test.yaml", std::path::Path::new("."))
            .unwrap()
            .spec
    }

    const BASE: &str = "version: 1\nname: t\nseed: 7\ncohort:\n  size: 200\n  conditions:\n    - {name: rare, count: 13}\n    - {name: common, prevalence: 0.3}\nanatomy: {template: water_cylinder, size: [16, 16, 16], spacing_mm: [20, 20, 20]}\nacquisition: {arms: [{name: obj, modality: none}]}\n";

    #[test]
    fn exact_counts_are_exact_and_prevalence_is_close() {
        let p = pipeline(BASE);
        let plan = CohortPlan::new(&p);
        let subjects: Vec<Subject> = (0..200).map(|i| sample(&p, &plan, i)).collect();
        let rare = subjects
            .iter()
            .filter(|s| s.conditions.contains(&"rare".to_string()))
            .count();
        let common = subjects
            .iter()
            .filter(|s| s.conditions.contains(&"common".to_string()))
            .count();
        assert_eq!(rare, 13);
        // Binomial(200, 0.3): mean 60, sd 6.5.
        assert!((40..=80).contains(&common), "{common}");
    }

    #[test]
    fn subjects_depend_only_on_their_index() {
        let p = pipeline(BASE);
        let plan = CohortPlan::new(&p);
        let a = sample(&p, &plan, 17);
        let b = sample(&p, &CohortPlan::new(&p), 17);
        assert_eq!(a, b);
        assert_ne!(a, sample(&p, &plan, 18));
        assert_eq!(a.id, "sub-0018");
    }
}
