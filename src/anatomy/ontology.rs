//! The label ontology: every organ/tissue id a phantom or an imported map can carry.
//!
//! Ids 1..=117 are TotalSegmentator v2 `total` task class ids and names (Wasserthal et al.,
//! Radiology: AI 2023; class list as shipped with TotalSegmentator 2.x), so a real
//! TotalSegmentator map imports without renumbering and nnU-Net models trained on our output
//! speak the same class ids. Ids 120..=199 are ours, for tissues TotalSegmentator's `total`
//! task does not label. Id 0 is background (air outside the body) and is not in the ontology;
//! lesions use ids from [`LESION_ID_BASE`] upwards.

use std::sync::OnceLock;

/// One label: id, snake_case name (TotalSegmentator's where it has one) and display colour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelInfo {
    pub id: u16,
    pub name: &'static str,
    pub color: [u8; 3],
}

/// Lesion k (0-based) of a subject gets id `LESION_ID_BASE + k`.
pub const LESION_ID_BASE: u16 = 201;

// TotalSegmentator v2, task `total`: id → class name (copied from its class map).
const TS_TOTAL: [(u16, &str); 117] = [
    (1, "spleen"),
    (2, "kidney_right"),
    (3, "kidney_left"),
    (4, "gallbladder"),
    (5, "liver"),
    (6, "stomach"),
    (7, "pancreas"),
    (8, "adrenal_gland_right"),
    (9, "adrenal_gland_left"),
    (10, "lung_upper_lobe_left"),
    (11, "lung_lower_lobe_left"),
    (12, "lung_upper_lobe_right"),
    (13, "lung_middle_lobe_right"),
    (14, "lung_lower_lobe_right"),
    (15, "esophagus"),
    (16, "trachea"),
    (17, "thyroid_gland"),
    (18, "small_bowel"),
    (19, "duodenum"),
    (20, "colon"),
    (21, "urinary_bladder"),
    (22, "prostate"),
    (23, "kidney_cyst_left"),
    (24, "kidney_cyst_right"),
    (25, "sacrum"),
    (26, "vertebrae_S1"),
    (27, "vertebrae_L5"),
    (28, "vertebrae_L4"),
    (29, "vertebrae_L3"),
    (30, "vertebrae_L2"),
    (31, "vertebrae_L1"),
    (32, "vertebrae_T12"),
    (33, "vertebrae_T11"),
    (34, "vertebrae_T10"),
    (35, "vertebrae_T9"),
    (36, "vertebrae_T8"),
    (37, "vertebrae_T7"),
    (38, "vertebrae_T6"),
    (39, "vertebrae_T5"),
    (40, "vertebrae_T4"),
    (41, "vertebrae_T3"),
    (42, "vertebrae_T2"),
    (43, "vertebrae_T1"),
    (44, "vertebrae_C7"),
    (45, "vertebrae_C6"),
    (46, "vertebrae_C5"),
    (47, "vertebrae_C4"),
    (48, "vertebrae_C3"),
    (49, "vertebrae_C2"),
    (50, "vertebrae_C1"),
    (51, "heart"),
    (52, "aorta"),
    (53, "pulmonary_vein"),
    (54, "brachiocephalic_trunk"),
    (55, "subclavian_artery_right"),
    (56, "subclavian_artery_left"),
    (57, "common_carotid_artery_right"),
    (58, "common_carotid_artery_left"),
    (59, "brachiocephalic_vein_left"),
    (60, "brachiocephalic_vein_right"),
    (61, "atrial_appendage_left"),
    (62, "superior_vena_cava"),
    (63, "inferior_vena_cava"),
    (64, "portal_vein_and_splenic_vein"),
    (65, "iliac_artery_left"),
    (66, "iliac_artery_right"),
    (67, "iliac_vena_left"),
    (68, "iliac_vena_right"),
    (69, "humerus_left"),
    (70, "humerus_right"),
    (71, "scapula_left"),
    (72, "scapula_right"),
    (73, "clavicula_left"),
    (74, "clavicula_right"),
    (75, "femur_left"),
    (76, "femur_right"),
    (77, "hip_left"),
    (78, "hip_right"),
    (79, "spinal_cord"),
    (80, "gluteus_maximus_left"),
    (81, "gluteus_maximus_right"),
    (82, "gluteus_medius_left"),
    (83, "gluteus_medius_right"),
    (84, "gluteus_minimus_left"),
    (85, "gluteus_minimus_right"),
    (86, "autochthon_left"),
    (87, "autochthon_right"),
    (88, "iliopsoas_left"),
    (89, "iliopsoas_right"),
    (90, "brain"),
    (91, "skull"),
    (92, "rib_left_1"),
    (93, "rib_left_2"),
    (94, "rib_left_3"),
    (95, "rib_left_4"),
    (96, "rib_left_5"),
    (97, "rib_left_6"),
    (98, "rib_left_7"),
    (99, "rib_left_8"),
    (100, "rib_left_9"),
    (101, "rib_left_10"),
    (102, "rib_left_11"),
    (103, "rib_left_12"),
    (104, "rib_right_1"),
    (105, "rib_right_2"),
    (106, "rib_right_3"),
    (107, "rib_right_4"),
    (108, "rib_right_5"),
    (109, "rib_right_6"),
    (110, "rib_right_7"),
    (111, "rib_right_8"),
    (112, "rib_right_9"),
    (113, "rib_right_10"),
    (114, "rib_right_11"),
    (115, "rib_right_12"),
    (116, "sternum"),
    (117, "costal_cartilages"),
];

// Our own ids for tissues the TotalSegmentator `total` task leaves unlabelled.
pub const BODY: u16 = 120;
pub const SUBCUTANEOUS_FAT: u16 = 121;
pub const SKELETAL_MUSCLE: u16 = 122;
pub const SCALP: u16 = 123;
pub const CSF: u16 = 124;
pub const GREY_MATTER: u16 = 125;
pub const WHITE_MATTER: u16 = 126;
pub const LATERAL_VENTRICLES: u16 = 127;
/// Visceral and intermuscular fat (TotalSegmentator's tissue-types name).
pub const TORSO_FAT: u16 = 128;
/// Gas in the body outside the organ labels (atlas derivation).
pub const INTESTINAL_GAS: u16 = 129;
pub const WATER: u16 = 130;
pub const INSERT_AIR: u16 = 131;
pub const INSERT_FAT: u16 = 132;
pub const INSERT_ACRYLIC: u16 = 133;
pub const INSERT_BONE: u16 = 134;
pub const INSERT_IODINE: u16 = 135;
/// Whole lungs, where a segmentation does not split them into lobes (the chest atlas).
pub const LUNG_LEFT: u16 = 136;
pub const LUNG_RIGHT: u16 = 137;
/// Vessels (and fissures) inside the lungs' outline.
pub const PULMONARY_VESSELS: u16 = 138;
/// Contrast blood pool outside the heart: aorta, pulmonary trunk, cavae, arch branches.
pub const GREAT_VESSELS: u16 = 139;
/// Bone of unknown name (a threshold segmentation).
pub const BONE: u16 = 140;
/// The spine as one class, where a segmentation does not name each vertebra (TotalSegmentator
/// `total_mr`'s `vertebrae`), and the discs between them.
pub const VERTEBRAE: u16 = 141;
pub const INTERVERTEBRAL_DISCS: u16 = 142;

const OWN: [(u16, &str); 23] = [
    (BODY, "body"),
    (SUBCUTANEOUS_FAT, "subcutaneous_fat"),
    (SKELETAL_MUSCLE, "skeletal_muscle"),
    (SCALP, "scalp"),
    (CSF, "csf"),
    (GREY_MATTER, "grey_matter"),
    (WHITE_MATTER, "white_matter"),
    (LATERAL_VENTRICLES, "lateral_ventricles"),
    (TORSO_FAT, "torso_fat"),
    (INTESTINAL_GAS, "intestinal_gas"),
    (WATER, "water"),
    (INSERT_AIR, "insert_air"),
    (INSERT_FAT, "insert_fat"),
    (INSERT_ACRYLIC, "insert_acrylic"),
    (INSERT_BONE, "insert_bone"),
    (INSERT_IODINE, "insert_iodine"),
    (LUNG_LEFT, "lung_left"),
    (LUNG_RIGHT, "lung_right"),
    (PULMONARY_VESSELS, "pulmonary_vessels"),
    (GREAT_VESSELS, "great_vessels"),
    (BONE, "bone"),
    (VERTEBRAE, "vertebrae"),
    (INTERVERTEBRAL_DISCS, "intervertebral_discs"),
];

// TotalSegmentator ids the phantoms paint, named so the phantom code reads as anatomy.
pub const SPLEEN: u16 = 1;
pub const KIDNEY_RIGHT: u16 = 2;
pub const KIDNEY_LEFT: u16 = 3;
pub const GALLBLADDER: u16 = 4;
pub const LIVER: u16 = 5;
pub const STOMACH: u16 = 6;
pub const PANCREAS: u16 = 7;
pub const LUNG_UPPER_LEFT: u16 = 10;
pub const LUNG_LOWER_LEFT: u16 = 11;
pub const LUNG_UPPER_RIGHT: u16 = 12;
pub const LUNG_MIDDLE_RIGHT: u16 = 13;
pub const LUNG_LOWER_RIGHT: u16 = 14;
pub const ESOPHAGUS: u16 = 15;
pub const TRACHEA: u16 = 16;
pub const SMALL_BOWEL: u16 = 18;
pub const COLON: u16 = 20;
pub const HEART: u16 = 51;
pub const AORTA: u16 = 52;
pub const SUPERIOR_VENA_CAVA: u16 = 62;
pub const INFERIOR_VENA_CAVA: u16 = 63;
pub const ILIAC_ARTERY_LEFT: u16 = 65;
pub const ILIAC_ARTERY_RIGHT: u16 = 66;
pub const SPINAL_CORD: u16 = 79;
pub const AUTOCHTHON_LEFT: u16 = 86;
pub const AUTOCHTHON_RIGHT: u16 = 87;
pub const ILIOPSOAS_LEFT: u16 = 88;
pub const ILIOPSOAS_RIGHT: u16 = 89;
pub const BRAIN_TS: u16 = 90;
pub const SKULL: u16 = 91;
pub const STERNUM: u16 = 116;
pub const COSTAL_CARTILAGES: u16 = 117;

/// Id of `rib_left_n` / `rib_right_n` (n = 1..=12).
pub fn rib_id(left: bool, n: usize) -> u16 {
    (if left { 91 } else { 103 }) + n as u16
}

/// Vertebra names from C1 down to S1 with their TotalSegmentator ids (50 = C1 … 26 = S1).
pub fn vertebra_id(name: &str) -> Option<u16> {
    TS_TOTAL
        .iter()
        .find(|(_, n)| n.strip_prefix("vertebrae_") == Some(name))
        .map(|(id, _)| *id)
}

/// Colour by anatomical family so overlays read at a glance (lungs pink, liver brown, bone
/// near-white, heart and arteries red, veins blue, fat yellow, muscle dark red, brain greys);
/// members of one family differ by a small id-dependent shift.
fn family_color(id: u16, name: &str) -> [u8; 3] {
    let has = |s: &str| name.contains(s);
    let base: [i32; 3] = if has("lung") {
        [250, 170, 190]
    } else if name == "liver" {
        [150, 85, 40]
    } else if name == "heart" || has("atrial") {
        [210, 30, 40]
    } else if has("aorta") || has("artery") || has("trunk") {
        [235, 60, 60]
    } else if has("vena") || has("vein") {
        [60, 90, 220]
    } else if has("vertebrae")
        || has("rib")
        || has("skull")
        || has("sternum")
        || has("sacrum")
        || has("hip")
        || has("femur")
        || has("humerus")
        || has("scapula")
        || has("clavicula")
        || name == "insert_bone"
        || name == "bone"
    {
        [235, 230, 215]
    } else if has("cartilage") {
        [200, 220, 235]
    } else if has("fat") {
        [245, 220, 120]
    } else if has("muscle") || has("autochthon") || has("iliopsoas") || has("gluteus") {
        [170, 60, 60]
    } else if name == "grey_matter" || name == "brain" {
        [150, 150, 150]
    } else if name == "white_matter" {
        [225, 225, 225]
    } else if name == "csf" || has("ventricles") || name == "water" {
        [90, 170, 230]
    } else if has("kidney") {
        [185, 100, 160]
    } else if name == "spleen" {
        [160, 50, 110]
    } else if has("bowel") || name == "colon" || name == "duodenum" {
        [235, 175, 120]
    } else if name == "stomach" || name == "esophagus" {
        [240, 150, 110]
    } else if name == "trachea" || name == "insert_air" {
        [120, 200, 200]
    } else if name == "spinal_cord" {
        [250, 240, 120]
    } else if name == "body" {
        [200, 160, 140]
    } else if name == "scalp" {
        [220, 180, 150]
    } else {
        // Deterministic spread for the rest (glands, bladder, …): golden-angle hue walk.
        let h = (id as f64 * 0.618_034).fract();
        let (r, g, b) = hsv(h, 0.55, 0.85);
        [r, g, b]
    };
    // Spread family members apart: ±16 per channel from a small id hash.
    let k = id as i32;
    let d = [(k * 7) % 33 - 16, (k * 13) % 33 - 16, (k * 5) % 33 - 16];
    [0, 1, 2].map(|c| (base[c] + d[c]).clamp(0, 255) as u8)
}

fn hsv(h: f64, s: f64, v: f64) -> (i32, i32, i32) {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - f * s), v * (1.0 - (1.0 - f) * s));
    let (r, g, b) = match i as i32 % 6 {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    };
    ((r * 255.0) as i32, (g * 255.0) as i32, (b * 255.0) as i32)
}

/// Every organ/tissue label any template or import can produce, sorted by id (no background,
/// no lesions).
pub fn ontology() -> &'static [LabelInfo] {
    static ONTOLOGY: OnceLock<Vec<LabelInfo>> = OnceLock::new();
    ONTOLOGY.get_or_init(|| {
        let mut out: Vec<LabelInfo> = Vec::with_capacity(TS_TOTAL.len() + OWN.len());
        for &(id, name) in TS_TOTAL.iter().chain(OWN.iter()) {
            let mut color = family_color(id, name);
            // Overlays and legends need distinct colours; nudge until unique.
            while out.iter().any(|l| l.color == color) {
                color[2] = color[2].wrapping_add(11);
                color[1] = color[1].wrapping_add(3);
            }
            out.push(LabelInfo { id, name, color });
        }
        out
    })
}

/// Case-insensitive lookup; spaces and dashes count as underscores.
pub fn label_by_name(name: &str) -> Option<&'static LabelInfo> {
    let n = normalize(name);
    ontology().iter().find(|l| l.name.eq_ignore_ascii_case(&n))
}

pub fn label_by_id(id: u16) -> Option<&'static LabelInfo> {
    ontology().iter().find(|l| l.id == id)
}

/// The label of the other side (`rib_left_7` → `rib_right_7`); None for an unpaired one.
pub fn mirror_name(name: &str) -> Option<String> {
    let mut swapped = false;
    let parts: Vec<&str> = name
        .split('_')
        .map(|p| match p {
            "left" => {
                swapped = true;
                "right"
            }
            "right" => {
                swapped = true;
                "left"
            }
            other => other,
        })
        .collect();
    swapped.then(|| parts.join("_"))
}

pub(crate) fn normalize(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace([' ', '-'], "_")
}

fn ids_where(pred: impl Fn(&str) -> bool) -> Vec<u16> {
    ontology()
        .iter()
        .filter(|l| pred(l.name))
        .map(|l| l.id)
        .collect()
}

/// Organ groups lesion requests may name, or a plain label name → that id.
/// `brain` includes TotalSegmentator's single `brain` class so imported maps work too.
pub fn organ_group(name: &str) -> Option<Vec<u16>> {
    let n = normalize(name);
    let ids = match n.as_str() {
        // Vessels inside the lung's outline belong to it: a nodule engulfs them.
        "lung" | "lungs" => vec![10, 11, 12, 13, 14, LUNG_LEFT, LUNG_RIGHT, PULMONARY_VESSELS],
        "lung_left" | "left_lung" => vec![10, 11, LUNG_LEFT, PULMONARY_VESSELS],
        "lung_right" | "right_lung" => vec![12, 13, 14, LUNG_RIGHT, PULMONARY_VESSELS],
        "kidney" | "kidneys" => vec![KIDNEY_RIGHT, KIDNEY_LEFT],
        "adrenal_gland" | "adrenal_glands" => vec![8, 9],
        "brain" => vec![BRAIN_TS, GREY_MATTER, WHITE_MATTER],
        "bowel" | "intestine" => vec![SMALL_BOWEL, 19, COLON],
        "vertebrae" | "spine" => ids_where(|s| s.starts_with("vertebrae") || s == "sacrum"),
        "ribs" | "rib" => ids_where(|s| s.starts_with("rib_")),
        "autochthon" => vec![AUTOCHTHON_LEFT, AUTOCHTHON_RIGHT],
        "iliopsoas" => vec![ILIOPSOAS_LEFT, ILIOPSOAS_RIGHT],
        _ => return label_by_name(&n).map(|l| vec![l.id]),
    };
    Some(ids)
}

/// The anatomical surface a `placement: surface` lesion of `organ` (a label or a group) lies
/// against: pleura for the lungs, the capsule of solid abdominal organs, the serosa of hollow
/// viscera, the cortex (periosteum) of bones, the pia of the brain's surface. None where the
/// organ has no such free surface (white matter, ventricles and CSF lie inside other tissue;
/// vessels, fat, muscle and the body outline are not organs with a lining), so such a request
/// is refused instead of silently touching whatever neighbour is nearest.
pub fn surface_of(organ: &str) -> Option<&'static str> {
    let n = normalize(organ);
    let bone = [
        "bone",
        "vertebrae",
        "spine",
        "rib",
        "ribs",
        "sacrum",
        "skull",
        "sternum",
        "hip",
        "femur",
        "humerus",
        "scapula",
        "clavicula",
    ];
    if n.starts_with("lung") || n.ends_with("_lung") || n == "lungs" {
        Some("pleura")
    } else if bone
        .iter()
        .any(|b| n == *b || n.starts_with(&format!("{b}_")))
    {
        Some("cortex (periosteum)")
    } else if [
        "liver",
        "spleen",
        "kidney",
        "kidneys",
        "kidney_left",
        "kidney_right",
        "adrenal_gland",
        "adrenal_glands",
        "adrenal_gland_left",
        "adrenal_gland_right",
        "thyroid_gland",
        "prostate",
    ]
    .contains(&n.as_str())
    {
        Some("capsule")
    } else if [
        "stomach",
        "bowel",
        "intestine",
        "small_bowel",
        "duodenum",
        "colon",
        "urinary_bladder",
        "gallbladder",
        "esophagus",
    ]
    .contains(&n.as_str())
    {
        Some("serosa (wall)")
    } else if ["brain", "grey_matter"].contains(&n.as_str()) {
        Some("pia (cortical surface)")
    } else if n == "heart" {
        Some("epicardium")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ontology_has_all_totalsegmentator_classes_and_unique_ids_names_colours() {
        let o = ontology();
        assert_eq!(o.len(), 117 + 23);
        for id in 1..=117u16 {
            assert!(
                label_by_id(id).is_some(),
                "missing TotalSegmentator id {id}"
            );
        }
        let mut ids: Vec<u16> = o.iter().map(|l| l.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), o.len());
        for (i, a) in o.iter().enumerate() {
            assert!(a.id > 0 && a.id < LESION_ID_BASE);
            for b in &o[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.color, b.color, "{} and {} share a colour", a.name, b.name);
            }
        }
        assert_eq!(label_by_name("liver").unwrap().id, 5);
        assert_eq!(label_by_name("Lung upper lobe left").unwrap().id, 10);
        assert_eq!(label_by_name("white_matter").unwrap().id, WHITE_MATTER);
        assert_eq!(rib_id(true, 1), 92);
        assert_eq!(rib_id(false, 12), 115);
        assert_eq!(vertebra_id("T1"), Some(43));
        assert_eq!(vertebra_id("S1"), Some(26));
        // Colour families: lungs pink, liver brown, bone near-white, heart red.
        let c = label_by_name("lung_lower_lobe_right").unwrap().color;
        assert!(c[0] > 200 && c[1] > 120 && c[2] > 150);
        let c = label_by_name("liver").unwrap().color;
        assert!(c[0] > c[1] && c[1] > c[2]);
        let c = label_by_name("vertebrae_T5").unwrap().color;
        assert!(c.iter().all(|&v| v > 190));
        let c = label_by_name("heart").unwrap().color;
        assert!(c[0] > 180 && c[1] < 80);
    }

    #[test]
    fn groups_resolve() {
        assert_eq!(
            organ_group("lung").unwrap(),
            vec![10, 11, 12, 13, 14, LUNG_LEFT, LUNG_RIGHT, PULMONARY_VESSELS]
        );
        assert_eq!(organ_group("kidney").unwrap(), vec![2, 3]);
        let brain = organ_group("brain").unwrap();
        assert!(brain.contains(&GREY_MATTER) && brain.contains(&WHITE_MATTER));
        assert!(!brain.contains(&LATERAL_VENTRICLES));
        assert_eq!(organ_group("liver").unwrap(), vec![5]);
        assert_eq!(organ_group("ribs").unwrap().len(), 24);
        assert!(organ_group("spleen_of_mars").is_none());
    }
}
