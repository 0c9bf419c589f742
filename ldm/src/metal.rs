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

use crate::hu_histogram::ClassHistogram;
use crate::model::LdmConfig;

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

/// Names of the classes (background never) whose share of training voxels at
/// [`METAL_HU`] or above reaches [`METAL_FRACTION`], with that share.
pub fn metal_classes(hist: &ClassHistogram, names: &[String]) -> Vec<(String, f64)> {
    (1..hist.classes().min(names.len()))
        .map(|c| (c, hist.share_at_or_above(c, METAL_HU)))
        .filter(|&(_, share)| share >= METAL_FRACTION)
        .map(|(c, share)| (names[c].clone(), share))
        .collect()
}

/// Whether `cfg`'s training marked class `name` as holding metal.
pub fn is_metal(cfg: &LdmConfig, name: &str) -> bool {
    cfg.metal_classes().iter().any(|m| m == name)
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
        let mut count = ClassHistogram::new(4);
        // femur_left: 13 % at 3071 HU or above (an implant); femur_right: 0.5 % at 3050 HU (below
        // the share) and dense cortex at 2600 HU (below the threshold); aorta: contrast at
        // 400 HU; background: metal outside the body never marks it.
        let mut hu = Vec::new();
        let mut classes = Vec::new();
        for i in 0..1000 {
            // Half at the 12-bit ceiling, half above it (an unclamped reconstruction).
            hu.push(match i {
                0..65 => 3071.0,
                65..130 => 5200.0,
                _ => 250.0,
            });
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
        let marked = metal_classes(&count, &names);
        assert_eq!(marked.len(), 1, "{marked:?}");
        assert_eq!(marked[0].0, "femur_left");
        assert!((marked[0].1 - 0.13).abs() < 1e-9);
        // Counting is per voxel, whatever the case split: the same voxels in two cases give
        // the same answer.
        let mut split = ClassHistogram::new(4);
        let half = hu.len() / 2;
        split.add(&hu[..half], &classes[..half]);
        split.add(&hu[half..], &classes[half..]);
        assert_eq!(metal_classes(&split, &names), marked);
    }
}
