//! Classes whose training CT holds metal: drawn by a stand-in, never as themselves.
//!
//! Why: real CT datasets carry implants — the one `ct-abdomen` learned from has a left hip
//! prosthesis: 6.1 % of its `femur_left` training voxels at 3000 HU or more (up to 3100, the
//! scanner's ceiling; 13 % above 1500 HU) and streaks down to −670 HU around them. A model
//! learns that as what a left femur is, and every sample's left femur came out as metal and
//! streak noise (−1770 to 4860 HU) under a label that says "femur": a wrong label for a
//! segmentation model trained on the cohort. No tissue reaches that attenuation, so a class
//! with a measurable share of voxels above [`METAL_HU`] is marked at training, and generation
//! draws it by its mirror or by another class of its tissue (`femur_right`).

use crate::model::{LdmConfig, Modality};
use crate::train::CaseSource;
use crate::LdmError;

/// HU above which a voxel is taken as metal: just below the 12-bit ceiling (3071 HU) where
/// metal saturates, and above fully mineralised cortical bone (ICRU 46, 1.92 g/cm³) at every
/// effective energy from 50 keV up — 2589 HU at 50 keV (about an 80 kVp beam's), 1936 at
/// 60 keV, 1559 at 70 keV (μ/ρ of the project's tables; `src/generate/ldm.rs` tests it) —
/// while a real bone voxel is never all cortex at full density.
pub const METAL_HU: f32 = 3000.0;

/// Share of a class's training voxels above [`METAL_HU`] that marks the class: well above
/// what noise or a few misplaced label voxels next to an implant give (the other 61 classes
/// of `ct-abdomen`: none at all), well below an implant inside the class (6.1 %).
pub const METAL_FRACTION: f64 = 0.01;

/// Counts, per class, training voxels and those above [`METAL_HU`] in the `hu` channel.
pub struct MetalCount {
    voxels: Vec<u64>,
    metal: Vec<u64>,
}

impl MetalCount {
    pub fn new(classes: usize) -> Self {
        Self {
            voxels: vec![0; classes],
            metal: vec![0; classes],
        }
    }

    /// `hu`: one case's HU channel; `classes` its class map (same length).
    pub fn add(&mut self, hu: &[f32], classes: &[u8]) {
        for (&v, &c) in hu.iter().zip(classes) {
            let c = c as usize;
            if c < self.voxels.len() {
                self.voxels[c] += 1;
                self.metal[c] += u64::from(v > METAL_HU);
            }
        }
    }

    /// Names of the classes (background never) whose metal share reaches [`METAL_FRACTION`],
    /// with that share.
    pub fn finish(&self, names: &[String]) -> Vec<(String, f64)> {
        (1..self.voxels.len().min(names.len()))
            .filter(|&c| self.voxels[c] > 0)
            .map(|c| (c, self.metal[c] as f64 / self.voxels[c] as f64))
            .filter(|&(_, share)| share >= METAL_FRACTION)
            .map(|(c, share)| (names[c].clone(), share))
            .collect()
    }
}

/// Whether `cfg`'s training marked class `name` as holding metal.
pub fn is_metal(cfg: &LdmConfig, name: &str) -> bool {
    cfg.metal_classes().iter().any(|m| m == name)
}

/// The channel metal is measured on: `hu` of a CT model; none for MRI.
pub fn hu_channel(cfg: &LdmConfig) -> Option<usize> {
    (cfg.modality == Modality::Ct)
        .then(|| cfg.channels.iter().position(|c| c.name == "hu"))
        .flatten()
}

/// The classes of `cases` (labelled, physical units) whose metal share reaches
/// [`METAL_FRACTION`], with that share; none for an MRI model. Reads each case once.
pub fn find_metal_classes(
    cfg: &LdmConfig,
    cases: &dyn CaseSource,
) -> Result<Vec<(String, f64)>, LdmError> {
    let Some(ch) = hu_channel(cfg) else {
        return Ok(Vec::new());
    };
    let mut count = MetalCount::new(cfg.classes.len());
    for i in 0..cases.len() {
        let case = cases.case(i)?;
        let n = case.classes.len();
        count.add(&case.object[ch * n..(ch + 1) * n], &case.classes);
    }
    Ok(count.finish(&cfg.classes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_implant_marks_its_class_and_stray_bright_voxels_do_not() {
        let names: Vec<String> = ["background", "femur_left", "femur_right", "aorta"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut count = MetalCount::new(4);
        // femur_left: 13 % at 3071 HU (an implant); femur_right: 0.5 % at 3050 HU (below
        // the share) and dense cortex at 2600 HU (below the threshold); aorta: contrast at
        // 400 HU; background: metal outside the body never marks it.
        let mut hu = Vec::new();
        let mut classes = Vec::new();
        for i in 0..1000 {
            hu.push(if i < 130 { 3071.0 } else { 250.0 });
            classes.push(1);
            hu.push(match i {
                0..5 => 3050.0,
                5..300 => 2600.0,
                _ => 180.0,
            });
            classes.push(2);
            hu.push(400.0);
            classes.push(3);
            hu.push(if i < 500 { 3071.0 } else { -1000.0 });
            classes.push(0);
        }
        count.add(&hu, &classes);
        let marked = count.finish(&names);
        assert_eq!(marked.len(), 1, "{marked:?}");
        assert_eq!(marked[0].0, "femur_left");
        assert!((marked[0].1 - 0.13).abs() < 1e-9);
        // Counting is per voxel, whatever the case split: the same voxels in two cases give
        // the same answer.
        let mut split = MetalCount::new(4);
        let half = hu.len() / 2;
        split.add(&hu[..half], &classes[..half]);
        split.add(&hu[half..], &classes[half..]);
        assert_eq!(split.finish(&names), marked);
    }
}
