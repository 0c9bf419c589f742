//! The classes the benchmark's network segments, and how any label map's names reach them.
//!
//! Organs are grouped as a radiologist scores them (both kidneys one class, every lung lobe
//! and the lung vessels one lung, every vertebra one spine), through the engine's ontology, so
//! a cohort's labels, TotalSegmentator's `total` names and other spellings all land on the
//! same class. Lesions of any kind are one class; organs not listed are background.

use std::sync::OnceLock;

use synthcohort::anatomy::{import, ontology};
use synthcohort::generate::ldm::LESION_CLASS;

/// Index = class id (0 is background).
pub const CLASSES: [&str; 9] = [
    "background",
    "liver",
    "spleen",
    "kidney",
    "lung",
    "heart",
    "aorta",
    "vertebrae",
    "lesion",
];
pub const N_CLASSES: usize = CLASSES.len();
pub const LESION: u8 = 8;

/// Class of each ontology label id (lesion ids → lesion), built once.
pub fn class_of_ontology_ids() -> &'static [u8] {
    static LUT: OnceLock<Vec<u8>> = OnceLock::new();
    LUT.get_or_init(build_lut)
}

fn build_lut() -> Vec<u8> {
    let mut lut = vec![0u8; u16::MAX as usize + 1];
    for (c, group) in CLASSES.iter().enumerate().skip(1) {
        if c as u8 == LESION {
            continue;
        }
        for id in ontology::organ_group(group).unwrap_or_default() {
            lut[id as usize] = c as u8;
        }
    }
    for l in lut.iter_mut().skip(ontology::LESION_ID_BASE as usize) {
        *l = LESION;
    }
    lut
}

/// Class of a label name in any spelling the ontology's import knows (`Liver`,
/// `kidney_left`, `vertebrae_L1`), or of a model class name (`lesion`); None = background.
pub fn class_of_name(name: &str) -> u8 {
    if name == LESION_CLASS {
        return LESION;
    }
    let Some(canonical) = import::ontology_name(name) else {
        return 0;
    };
    match ontology::label_by_name(canonical) {
        Some(l) => class_of_ontology_ids()[l.id as usize],
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_reach_their_class() {
        assert_eq!(CLASSES[class_of_name("Liver") as usize], "liver");
        assert_eq!(CLASSES[class_of_name("kidney_left") as usize], "kidney");
        assert_eq!(CLASSES[class_of_name("kidney_right") as usize], "kidney");
        assert_eq!(
            CLASSES[class_of_name("lung_lower_lobe_left") as usize],
            "lung"
        );
        assert_eq!(CLASSES[class_of_name("vertebrae_L1") as usize], "vertebrae");
        assert_eq!(CLASSES[class_of_name("lesion") as usize], "lesion");
        // Organs outside the benchmark's classes are background, not a wrong organ.
        assert_eq!(class_of_name("stomach"), 0);
        assert_eq!(class_of_name("no_such_organ"), 0);
    }
}
