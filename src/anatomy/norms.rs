//! Literature organ volumes for a subject's demographics: what an atlas organ is scaled to,
//! and what a cohort's organ volumes are checked against.
//!
//! - Body surface area: Mosteller, N Engl J Med 1987;317:1098 — BSA (m²) = √(height cm ·
//!   weight kg / 3600).
//! - Liver: Vauthey et al., Liver Transpl 2002;8:233 (Western adults, CT volumetry) — standard
//!   liver volume (mL) = 1267.28 · BSA − 794.41. SD 18 % of the mean: the residual of BSA
//!   regressions in CT series (Feng et al., World J Gastroenterol 2017;23:4968: total SD 258 mL
//!   around 1205 mL with R² 0.30, so √0.70 · 258 ≈ 216 mL).
//! - Spleen: Caglar et al., Folia Morphol 2014;73:331 (CT, 212 adults) — 198 ± 88 mL; no
//!   dependence on age, sex, height, weight or BMI (Prassopoulos et al., Eur Radiol
//!   1997;7:246, 140 adults, mean 215 mL).
//! - Kidney (each): renal volume grows in proportion to BSA and is about 7 % larger in men
//!   (Johnson et al., Clin J Am Soc Nephrol 2011;6:70, CT of 224 donors); 140 mL at BSA 1.9 m²
//!   (mean of the left and right 146 and 134 mL of Emamian et al., AJR 1993;160:83), SD 20 % of
//!   the mean (the spread of that series).
//! - Lungs: total lung capacity (L) = 7.99·H − 7.08 in men and 6.60·H − 5.79 in women (H in m),
//!   residual SD 0.70 and 0.60 L (Stocks & Quanjer, Eur Respir J 1995;8:492, the ERS/ECSC
//!   reference); the right lung holds 53 % of it (three lobes against two; CT volumetry puts
//!   the right share at 52–55 %). A CT's lungs are at whatever breath-hold the patient managed,
//!   below capacity, so an atlas keeps its own inspiration level and varies its lungs by the
//!   norm's ratio between subject and reference adult (see `atlas::AtlasOrgan::full_ml`).
//! - Brain (grey + white matter): 1260 mL in men and 1130 mL in women (young and middle-aged
//!   adults; Cosgrove, Mazure & Staley, Biol Psychiatry 2007;62:847, review of MRI volumetry),
//!   SD 10 % of the mean (the spread of adult series, e.g. Allen et al., Am J Phys Anthropol
//!   2002;118:341); from age 30 the brain loses about 0.25 % of its volume a year (healthy-aging
//!   series report 0.2–0.3 %/yr, rising after 60: Fotenos et al., Neurology 2005;64:1032;
//!   Scahill et al., Arch Neurol 2003;60:989), modelled linearly.
//! - Heart (whole heart: chambers, blood pool and myocardium, as a `heart` label holds it):
//!   351.9 ± 57.6 mL per m² BSA, the deep-learning whole-heart (pericardial sac) volume on the
//!   non-contrast cardiac CTs of the PROMISE trial's CT arm (3798 patients, 60.5 ± 8.2 yr,
//!   51.5 % women; Eur Radiol 2021, "whole heart volume … predicts major adverse cardiac
//!   events"); SD 16 % of the mean (57.6 / 351.9). The sac also holds the epicardial fat inside
//!   the pericardium, so a mask of the heart alone sits somewhat below this norm. The study
//!   reports men larger than women without a per-sex figure; BSA carries that difference here.

use super::{BodySize, Sex};

/// Mean and SD (mL) of an organ's volume for given demographics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Norm {
    pub mean_ml: f64,
    pub sd_ml: f64,
}

impl Norm {
    /// (volume − mean) / SD.
    pub fn z(&self, volume_ml: f64) -> f64 {
        (volume_ml - self.mean_ml) / self.sd_ml
    }
}

/// Mosteller body surface area (m²).
pub fn bsa_m2(body: &BodySize) -> f64 {
    (body.height_cm * body.weight_kg / 3600.0).sqrt()
}

/// Organs (label names) with a literature norm, in report order.
/// Names are labels or groups (`brain`: grey + white matter, see `ontology::organ_group`).
pub const ORGANS: [&str; 8] = [
    "liver",
    "spleen",
    "kidney_left",
    "kidney_right",
    "lung_left",
    "lung_right",
    "heart",
    "brain",
];

/// Share of total lung capacity in the right lung.
pub const RIGHT_LUNG_SHARE: f64 = 0.53;

/// Whole-heart volume per m² of body surface area, mean and SD (mL/m²).
pub const HEART_ML_PER_M2: f64 = 351.9;
pub const HEART_SD_ML_PER_M2: f64 = 57.6;

/// Relative brain volume loss per year of age past [`BRAIN_LOSS_FROM_AGE`].
pub const BRAIN_LOSS_PER_YEAR: f64 = 0.0025;
pub const BRAIN_LOSS_FROM_AGE: f64 = 30.0;

/// The literature norm of an organ (a label name from [`ORGANS`]); None for others.
pub fn organ_norm(organ: &str, body: &BodySize) -> Option<Norm> {
    let bsa = bsa_m2(body);
    match organ {
        "liver" => {
            let mean = (1267.28 * bsa - 794.41).max(400.0);
            Some(Norm {
                mean_ml: mean,
                sd_ml: 0.18 * mean,
            })
        }
        "spleen" => Some(Norm {
            mean_ml: 198.0,
            sd_ml: 88.0,
        }),
        "kidney_left" | "kidney_right" => {
            let sex = if body.sex == Sex::Male { 1.035 } else { 0.965 };
            let mean = 140.0 * bsa / 1.9 * sex;
            Some(Norm {
                mean_ml: mean,
                sd_ml: 0.2 * mean,
            })
        }
        "lung_left" | "lung_right" => {
            let h = body.height_cm / 100.0;
            let (tlc, rsd) = if body.sex == Sex::Male {
                (7.99 * h - 7.08, 0.70)
            } else {
                (6.60 * h - 5.79, 0.60)
            };
            let share = if organ == "lung_right" {
                RIGHT_LUNG_SHARE
            } else {
                1.0 - RIGHT_LUNG_SHARE
            };
            let mean = 1000.0 * tlc.max(1.0) * share;
            Some(Norm {
                mean_ml: mean,
                sd_ml: 1000.0 * rsd * share,
            })
        }
        "heart" => Some(Norm {
            mean_ml: HEART_ML_PER_M2 * bsa,
            sd_ml: HEART_SD_ML_PER_M2 * bsa,
        }),
        "brain" => {
            let young = if body.sex == Sex::Male {
                1260.0
            } else {
                1130.0
            };
            let aged = 1.0 - BRAIN_LOSS_PER_YEAR * (body.age_years - BRAIN_LOSS_FROM_AGE).max(0.0);
            let mean = young * aged.max(0.5);
            Some(Norm {
                mean_ml: mean,
                sd_ml: 0.1 * mean,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norms_follow_the_cited_formulas() {
        // Mosteller: 180 cm, 80 kg → 2.0 m².
        let b = BodySize {
            height_cm: 180.0,
            weight_kg: 80.0,
            sex: Sex::Male,
            age_years: 50.0,
        };
        assert!((bsa_m2(&b) - 2.0).abs() < 1e-12);
        let liver = organ_norm("liver", &b).unwrap();
        assert!((liver.mean_ml - (2534.56 - 794.41)).abs() < 1e-9);
        assert_eq!(organ_norm("spleen", &b).unwrap().mean_ml, 198.0);
        let f = BodySize {
            sex: Sex::Female,
            ..b
        };
        let (km, kf) = (
            organ_norm("kidney_left", &b).unwrap().mean_ml,
            organ_norm("kidney_left", &f).unwrap().mean_ml,
        );
        assert!((km / kf - 1.035 / 0.965).abs() < 1e-12 && km > 140.0);
        assert!(organ_norm("stomach", &b).is_none());
        // Heart: 351.9 ± 57.6 mL/m² at BSA 2.0 m².
        let h = organ_norm("heart", &b).unwrap();
        assert!((h.mean_ml - 703.8).abs() < 1e-9 && (h.sd_ml - 115.2).abs() < 1e-9);
        // Lungs: 180 cm man, TLC 7.99 · 1.8 − 7.08 = 7.302 L, 53 % right.
        let r = organ_norm("lung_right", &b).unwrap();
        assert!((r.mean_ml - 7302.0 * 0.53).abs() < 1e-6 && (r.sd_ml - 700.0 * 0.53).abs() < 1e-9);
        // Brain: sex difference and 0.25 %/yr from 30 (at 70: 10 % less than at 30).
        let young = BodySize {
            age_years: 30.0,
            ..b
        };
        let old = BodySize {
            age_years: 70.0,
            ..b
        };
        assert_eq!(organ_norm("brain", &young).unwrap().mean_ml, 1260.0);
        assert!((organ_norm("brain", &old).unwrap().mean_ml - 1260.0 * 0.9).abs() < 1e-9);
        let fy = BodySize {
            sex: Sex::Female,
            ..young
        };
        assert_eq!(organ_norm("brain", &fy).unwrap().mean_ml, 1130.0);
        assert!((liver.z(liver.mean_ml + liver.sd_ml) - 1.0).abs() < 1e-12);
    }
}
