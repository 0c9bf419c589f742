//! SNOMED CT coding of the label ontology for DICOM Segmentation (SEG) objects: the
//! Segmented Property Category, Segmented Property Type and laterality modifier of every
//! label, lesion kind and lesion part, and the reverse lookup an SEG import needs.
//!
//! Every code here was read from one of these sources; none is made up:
//!
//! - **TotalSegmentator's own mapping**, `wasserth/TotalSegmentator`,
//!   `totalsegmentator/resources/totalsegmentator_snomed_mapping.csv` (last changed in commit
//!   d90ebaf, 2025-12-11; curated by the Imaging Data Commons team, that repository's PRs
//!   #218 and #324). It gives the type code of all 117 `total` classes and of
//!   `subcutaneous_fat`, `skeletal_muscle`, `torso_fat`, `lung_vessels` and the regional
//!   `vertebrae_*` classes. We take its type codes, its
//!   generic-code-plus-laterality pattern for paired structures and its one-code-per-vertebra
//!   and one-code-per-rib-number choices.
//! - **DICOM PS3.16** context groups as shipped in pydicom 3.0.2 (`pydicom/sr/_cid_dict.py`,
//!   `pydicom/sr/_concepts_dict.py`, generated from the standard; `pydicom.sr.codedict.codes`):
//!   CID 7150 (categories), CID 7191 / 7192 / 7194 / 7197 (tissue, anatomical structure,
//!   morphologically abnormal structure and body substance types), CID 244 (laterality),
//!   CID 300 (multi-energy relevant materials), CID 4 (anatomic regions) and CID 6102 (chest
//!   findings). Every code TotalSegmentator's mapping shares with these tables was checked
//!   against them, and the code meanings are the standard's where it has the code.
//! - **TotalSegmentator PR #612** (A. Fedorov, "Fix two SNOMED CT code errors in the
//!   segmentation mapping"; still open when this was written), for two corrections below.
//!
//! Where we depart from TotalSegmentator's mapping, and why:
//!
//! - Category "Anatomical Structure" is SCT 91723000, as CID 7150 lists it. TotalSegmentator
//!   (like Slicer's and dcmqi's terminology files) writes SCT 123037004, the SNOMED "Body
//!   structure" concept, under that meaning; newer mappings such as MOOSE's
//!   (`ENHANCE-PET/MOOSE`, `moosez/mappings/moose_snomed_mapping.csv`) use 91723000. Imports
//!   match on the type code only, so SEGs carrying either category read back.
//! - Likewise 49755003 is labelled "Morphologically Abnormal Structure", CID 7150's current
//!   meaning, rather than the older "Morphologically Altered Structure".
//! - Subclavian arteries: TotalSegmentator's 29700009 is "Right subclavian artery" (pydicom
//!   lists it so), which with a Left modifier contradicts itself; we use the side-neutral
//!   36765005 "Subclavian artery" of CID 7192, as PR #612 does.
//! - Gluteus maximus: 181674001 is SNOMED's "Entire gluteus maximus muscle", which a partial
//!   field of view over-asserts; PR #612 replaces it by 206007 "Structure of gluteus maximus
//!   muscle", the kind of concept the neighbouring gluteus codes already are.
//! - Left atrial appendage: TotalSegmentator codes 68786006 "Auricular appendage" + Left;
//!   CID 7192 has the pre-coordinated 33626005 "Left auricular appendage", the same style
//!   TotalSegmentator uses for the heart's chambers, so we use that without a modifier.
//! - Pulmonary vessels: TotalSegmentator's `lung_vessels` is "Blood vessel" in the lung,
//!   filed under Anatomical Structure; CID 7191 lists "Blood vessel" as a Tissue type, so the
//!   category here is Tissue. Categories generally follow the CID (7191 Tissue, 7192
//!   Anatomical Structure, 7194 Morphologically Abnormal Structure, 7197 Body Substance) that
//!   lists the type, and TotalSegmentator's category where no segmentation CID lists it.
//!
//! The legacy TotalSegmentator codes are still understood by [`label_for_codes`], so a
//! TotalSegmentator SEG imports without loss.
//!
//! Laterality: for an anatomical structure or tissue the modifier belongs in the segment's
//! Segmented Property Type Modifier Code Sequence (0062,0011). For the morphologically
//! abnormal structures (the kidney cysts, lesions) the type says what the finding is and the
//! side belongs to where it is: write [`anatomic_region_for_label`]'s code to the Anatomic
//! Region Sequence (0008,2218) and the modifier to the Anatomic Region Modifier Sequence
//! (0008,2220), as TotalSegmentator's mapping does for its kidney cysts.

use super::ontology::normalize;

/// A coded concept (DICOM code sequence item).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code {
    pub value: &'static str,
    pub scheme: &'static str,
    pub meaning: &'static str,
}

/// Category, type and optional laterality modifier of one label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentCodes {
    pub category: Code,
    pub kind: Code,
    pub modifier: Option<Code>,
}

const fn sct(value: &'static str, meaning: &'static str) -> Code {
    Code {
        value,
        scheme: "SCT",
        meaning,
    }
}

const fn dcm(value: &'static str, meaning: &'static str) -> Code {
    Code {
        value,
        scheme: "DCM",
        meaning,
    }
}

const fn seg(category: Code, kind: Code, modifier: Option<Code>) -> SegmentCodes {
    SegmentCodes {
        category,
        kind,
        modifier,
    }
}

const fn anat(kind: Code) -> SegmentCodes {
    seg(ANATOMICAL_STRUCTURE, kind, None)
}

const fn left(kind: Code) -> SegmentCodes {
    seg(ANATOMICAL_STRUCTURE, kind, Some(LEFT))
}

const fn right(kind: Code) -> SegmentCodes {
    seg(ANATOMICAL_STRUCTURE, kind, Some(RIGHT))
}

const fn tissue(kind: Code) -> SegmentCodes {
    seg(TISSUE, kind, None)
}

const fn body_substance(kind: Code) -> SegmentCodes {
    seg(BODY_SUBSTANCE, kind, None)
}

const fn substance(kind: Code) -> SegmentCodes {
    seg(SUBSTANCE, kind, None)
}

const fn abnormal(kind: Code, side: Option<Code>) -> SegmentCodes {
    seg(MORPHOLOGICALLY_ABNORMAL_STRUCTURE, kind, side)
}

// Segmentation property categories, CID 7150.
pub const ANATOMICAL_STRUCTURE: Code = sct("91723000", "Anatomical Structure");
pub const TISSUE: Code = sct("85756007", "Tissue");
pub const BODY_SUBSTANCE: Code = sct("91720002", "Body Substance");
pub const SUBSTANCE: Code = sct("105590001", "Substance");
pub const MORPHOLOGICALLY_ABNORMAL_STRUCTURE: Code =
    sct("49755003", "Morphologically Abnormal Structure");

// Laterality, CID 244.
pub const LEFT: Code = sct("7771000", "Left");
pub const RIGHT: Code = sct("24028007", "Right");
/// Says "both sides" rather than one; an import treats it as no laterality.
pub const RIGHT_AND_LEFT: Code = sct("51440002", "Right and left");

// Type codes that several labels share (the two sides of a paired structure, or a label and
// a lesion kind), named once so the twins cannot drift apart.
const KIDNEY: Code = sct("64033007", "Kidney");
const ADRENAL_GLAND: Code = sct("23451007", "Adrenal gland");
const LUNG: Code = sct("39607008", "Lung");
const UPPER_LOBE_OF_LUNG: Code = sct("45653009", "Upper lobe of lung");
const LOWER_LOBE_OF_LUNG: Code = sct("90572001", "Lower lobe of lung");
const SUBCLAVIAN_ARTERY: Code = sct("36765005", "Subclavian artery");
const COMMON_CAROTID_ARTERY: Code = sct("32062004", "Common carotid artery");
const INNOMINATE_VEIN: Code = sct("8887007", "Innominate vein");
const COMMON_ILIAC_ARTERY: Code = sct("73634005", "Common iliac artery");
const COMMON_ILIAC_VEIN: Code = sct("46027005", "Common iliac vein");
const HUMERUS: Code = sct("85050009", "Humerus");
const SCAPULA: Code = sct("79601000", "Scapula");
const CLAVICLE: Code = sct("51299004", "Clavicle");
const FEMUR: Code = sct("71341001", "Femur");
const HIP: Code = sct("29836001", "Hip");
const GLUTEUS_MAXIMUS_MUSCLE: Code = sct("206007", "Gluteus maximus muscle");
const GLUTEUS_MEDIUS_MUSCLE: Code = sct("78333006", "Gluteus medius muscle");
// TotalSegmentator's meaning reads "Gluteus minius muscle", a typo.
const GLUTEUS_MINIMUS_MUSCLE: Code = sct("75297007", "Gluteus minimus muscle");
// "Autochthonous" back muscles are the deep (intrinsic) back muscles, more than the erector
// spinae alone (whose code TotalSegmentator's issue #135 weighed before settling on this).
const DEEP_MUSCLE_OF_BACK: Code = sct("244849004", "Deep muscle of back");
const ILIOPSOAS_MUSCLE: Code = sct("68455001", "Iliopsoas muscle");
const FIRST_RIB: Code = sct("48535007", "First rib");
const SECOND_RIB: Code = sct("78247007", "Second rib");
const THIRD_RIB: Code = sct("25888004", "Third rib");
const FOURTH_RIB: Code = sct("25523003", "Fourth rib");
const FIFTH_RIB: Code = sct("15339008", "Fifth rib");
const SIXTH_RIB: Code = sct("59558009", "Sixth rib");
const SEVENTH_RIB: Code = sct("24915002", "Seventh rib");
const EIGHTH_RIB: Code = sct("5953002", "Eighth rib");
const NINTH_RIB: Code = sct("22565002", "Ninth rib");
const TENTH_RIB: Code = sct("77644006", "Tenth rib");
const ELEVENTH_RIB: Code = sct("58830002", "Eleventh rib");
const TWELFTH_RIB: Code = sct("43993008", "Twelfth rib");
const CYST: Code = sct("367643001", "Cyst");

// Anatomic regions (CID 4 and TotalSegmentator's AnatomicRegionSequence column).
const TRUNK: Code = sct("22943007", "Trunk");
const SPINE: Code = sct("421060004", "Spine");
const PHANTOM: Code = sct("706342009", "Phantom");

/// Every ontology label, in ontology order. Ids 1..=117 take TotalSegmentator's type codes
/// (with the corrections listed in the module documentation); the rest are ours.
#[rustfmt::skip]
const LABELS: &[(&str, SegmentCodes)] = &[
    // TotalSegmentator v2 `total` classes.
    ("spleen", anat(sct("78961009", "Spleen"))),
    ("kidney_right", right(KIDNEY)),
    ("kidney_left", left(KIDNEY)),
    ("gallbladder", anat(sct("28231008", "Gallbladder"))),
    ("liver", anat(sct("10200004", "Liver"))),
    ("stomach", anat(sct("69695003", "Stomach"))),
    ("pancreas", anat(sct("15776009", "Pancreas"))),
    ("adrenal_gland_right", right(ADRENAL_GLAND)),
    ("adrenal_gland_left", left(ADRENAL_GLAND)),
    ("lung_upper_lobe_left", left(UPPER_LOBE_OF_LUNG)),
    ("lung_lower_lobe_left", left(LOWER_LOBE_OF_LUNG)),
    ("lung_upper_lobe_right", right(UPPER_LOBE_OF_LUNG)),
    ("lung_middle_lobe_right", anat(sct("72481006", "Middle lobe of right lung"))),
    ("lung_lower_lobe_right", right(LOWER_LOBE_OF_LUNG)),
    ("esophagus", anat(sct("32849002", "Esophagus"))),
    ("trachea", anat(sct("44567001", "Trachea"))),
    ("thyroid_gland", anat(sct("69748006", "Thyroid"))),
    ("small_bowel", anat(sct("30315005", "Small intestine"))),
    ("duodenum", anat(sct("38848004", "Duodenum"))),
    ("colon", anat(sct("71854001", "Colon"))),
    ("urinary_bladder", anat(sct("89837001", "Bladder"))),
    ("prostate", anat(sct("41216001", "Prostate"))),
    // The side qualifies the region (Kidney), see the module documentation.
    ("kidney_cyst_left", abnormal(CYST, Some(LEFT))),
    ("kidney_cyst_right", abnormal(CYST, Some(RIGHT))),
    ("sacrum", anat(sct("54735007", "Sacrum"))),
    // Not in the DICOM tables pydicom ships; TotalSegmentator's code.
    ("vertebrae_S1", anat(sct("65985001", "S1 vertebra"))),
    ("vertebrae_L5", anat(sct("49668003", "L5 vertebra"))),
    ("vertebrae_L4", anat(sct("11994002", "L4 vertebra"))),
    ("vertebrae_L3", anat(sct("36470004", "L3 vertebra"))),
    ("vertebrae_L2", anat(sct("14293000", "L2 vertebra"))),
    ("vertebrae_L1", anat(sct("66794005", "L1 vertebra"))),
    ("vertebrae_T12", anat(sct("23215003", "T12 vertebra"))),
    ("vertebrae_T11", anat(sct("12989004", "T11 vertebra"))),
    ("vertebrae_T10", anat(sct("7610001", "T10 vertebra"))),
    ("vertebrae_T9", anat(sct("82687006", "T9 vertebra"))),
    ("vertebrae_T8", anat(sct("11068009", "T8 vertebra"))),
    ("vertebrae_T7", anat(sct("62487009", "T7 vertebra"))),
    ("vertebrae_T6", anat(sct("45296009", "T6 vertebra"))),
    ("vertebrae_T5", anat(sct("56401006", "T5 vertebra"))),
    ("vertebrae_T4", anat(sct("73071006", "T4 vertebra"))),
    ("vertebrae_T3", anat(sct("1626008", "T3 vertebra"))),
    ("vertebrae_T2", anat(sct("53733008", "T2 vertebra"))),
    ("vertebrae_T1", anat(sct("64864005", "T1 vertebra"))),
    ("vertebrae_C7", anat(sct("87391001", "C7 vertebra"))),
    ("vertebrae_C6", anat(sct("36054005", "C6 vertebra"))),
    ("vertebrae_C5", anat(sct("36978003", "C5 vertebra"))),
    ("vertebrae_C4", anat(sct("5329002", "C4 vertebra"))),
    ("vertebrae_C3", anat(sct("113205007", "C3 vertebra"))),
    ("vertebrae_C2", anat(sct("39976000", "C2 vertebra"))),
    ("vertebrae_C1", anat(sct("14806007", "C1 vertebra"))),
    ("heart", anat(sct("80891009", "Heart"))),
    ("aorta", anat(sct("15825003", "Aorta"))),
    ("pulmonary_vein", anat(sct("122972007", "Pulmonary vein"))),
    ("brachiocephalic_trunk", anat(sct("12691009", "Innominate artery"))),
    ("subclavian_artery_right", right(SUBCLAVIAN_ARTERY)),
    ("subclavian_artery_left", left(SUBCLAVIAN_ARTERY)),
    ("common_carotid_artery_right", right(COMMON_CAROTID_ARTERY)),
    ("common_carotid_artery_left", left(COMMON_CAROTID_ARTERY)),
    ("brachiocephalic_vein_left", left(INNOMINATE_VEIN)),
    ("brachiocephalic_vein_right", right(INNOMINATE_VEIN)),
    // Pre-coordinated (CID 7192), so no modifier.
    ("atrial_appendage_left", anat(sct("33626005", "Left auricular appendage"))),
    ("superior_vena_cava", anat(sct("48345005", "Superior vena cava"))),
    ("inferior_vena_cava", anat(sct("64131007", "Inferior vena cava"))),
    // TotalSegmentator's code for its combined class; not in the DICOM tables.
    ("portal_vein_and_splenic_vein", anat(sct("110765007", "Portal vein and splenic vein"))),
    ("iliac_artery_left", left(COMMON_ILIAC_ARTERY)),
    ("iliac_artery_right", right(COMMON_ILIAC_ARTERY)),
    ("iliac_vena_left", left(COMMON_ILIAC_VEIN)),
    ("iliac_vena_right", right(COMMON_ILIAC_VEIN)),
    ("humerus_left", left(HUMERUS)),
    ("humerus_right", right(HUMERUS)),
    ("scapula_left", left(SCAPULA)),
    ("scapula_right", right(SCAPULA)),
    ("clavicula_left", left(CLAVICLE)),
    ("clavicula_right", right(CLAVICLE)),
    ("femur_left", left(FEMUR)),
    ("femur_right", right(FEMUR)),
    ("hip_left", left(HIP)),
    ("hip_right", right(HIP)),
    ("spinal_cord", anat(sct("2748008", "Spinal cord"))),
    ("gluteus_maximus_left", left(GLUTEUS_MAXIMUS_MUSCLE)),
    ("gluteus_maximus_right", right(GLUTEUS_MAXIMUS_MUSCLE)),
    ("gluteus_medius_left", left(GLUTEUS_MEDIUS_MUSCLE)),
    ("gluteus_medius_right", right(GLUTEUS_MEDIUS_MUSCLE)),
    ("gluteus_minimus_left", left(GLUTEUS_MINIMUS_MUSCLE)),
    ("gluteus_minimus_right", right(GLUTEUS_MINIMUS_MUSCLE)),
    ("autochthon_left", left(DEEP_MUSCLE_OF_BACK)),
    ("autochthon_right", right(DEEP_MUSCLE_OF_BACK)),
    ("iliopsoas_left", left(ILIOPSOAS_MUSCLE)),
    ("iliopsoas_right", right(ILIOPSOAS_MUSCLE)),
    ("brain", anat(sct("12738006", "Brain"))),
    ("skull", anat(sct("89546000", "Skull"))),
    ("rib_left_1", left(FIRST_RIB)),
    ("rib_left_2", left(SECOND_RIB)),
    ("rib_left_3", left(THIRD_RIB)),
    ("rib_left_4", left(FOURTH_RIB)),
    ("rib_left_5", left(FIFTH_RIB)),
    ("rib_left_6", left(SIXTH_RIB)),
    ("rib_left_7", left(SEVENTH_RIB)),
    ("rib_left_8", left(EIGHTH_RIB)),
    ("rib_left_9", left(NINTH_RIB)),
    ("rib_left_10", left(TENTH_RIB)),
    ("rib_left_11", left(ELEVENTH_RIB)),
    ("rib_left_12", left(TWELFTH_RIB)),
    ("rib_right_1", right(FIRST_RIB)),
    ("rib_right_2", right(SECOND_RIB)),
    ("rib_right_3", right(THIRD_RIB)),
    ("rib_right_4", right(FOURTH_RIB)),
    ("rib_right_5", right(FIFTH_RIB)),
    ("rib_right_6", right(SIXTH_RIB)),
    ("rib_right_7", right(SEVENTH_RIB)),
    ("rib_right_8", right(EIGHTH_RIB)),
    ("rib_right_9", right(NINTH_RIB)),
    ("rib_right_10", right(TENTH_RIB)),
    ("rib_right_11", right(ELEVENTH_RIB)),
    ("rib_right_12", right(TWELFTH_RIB)),
    ("sternum", anat(sct("56873002", "Sternum"))),
    ("costal_cartilages", anat(sct("50016007", "Costal Cartilage"))),
    // Ours. Codes from the DICOM context groups unless TotalSegmentator has the class.
    // `body` is the soft tissue inside the outline that no other label claims: the segments
    // of a label map do not overlap, so "Entire body" would over-assert.
    ("body", tissue(sct("87784001", "Soft tissue"))),
    // TotalSegmentator `tissue_types` names, with its codes.
    ("subcutaneous_fat", tissue(sct("67769002", "Subcutaneous fatty tissue"))),
    ("skeletal_muscle", anat(sct("127954009", "Skeletal muscle"))),
    ("scalp", anat(sct("41695006", "Scalp"))),
    // CID 7192 (via CID 7153, CNS structures) files CSF as an anatomical structure.
    ("csf", anat(sct("65216001", "Cerebrospinal Fluid"))),
    ("grey_matter", anat(sct("389081007", "Gray Matter"))),
    ("white_matter", anat(sct("389080008", "White Matter"))),
    // Both ventricles in one label: no modifier, as TotalSegmentator codes its two-sided
    // `kidney` class.
    ("lateral_ventricles", anat(sct("66720007", "Lateral Ventricle"))),
    // TotalSegmentator's code; region Trunk.
    ("torso_fat", tissue(sct("55603005", "Fat"))),
    // Gas anywhere inside the body outside the organ labels, hence no region.
    ("intestinal_gas", body_substance(sct("74947009", "Gas"))),
    // QA phantom materials: Substance types, mostly from CID 300 (multi-energy materials),
    // region Phantom.
    ("water", substance(sct("11713004", "Water"))),
    ("insert_air", substance(sct("15158005", "Air"))),
    ("insert_fat", substance(sct("256674009", "Fat"))),
    // PMMA; acrylic resin is the closest concept in the DICOM tables.
    ("insert_acrylic", substance(sct("261712009", "Acrylic resin"))),
    // Bone-equivalent inserts are hydroxyapatite in a resin base; CID 300 names the mineral.
    ("insert_bone", substance(sct("256579008", "Calcium Hydroxyapatite"))),
    ("insert_iodine", substance(sct("44588005", "Iodine"))),
    // Whole lungs: the lobes' pattern, generic code plus side.
    ("lung_left", left(LUNG)),
    ("lung_right", right(LUNG)),
    // TotalSegmentator's `lung_vessels` code; the region (Lung) tells it from other vessels.
    ("pulmonary_vessels", tissue(sct("59820001", "Blood Vessel"))),
    // The contrast blood pool outside the heart. No source has a "great vessels" concept and
    // "Blood vessel" already codes the pulmonary vessels, so the broader Blood (CID 7191).
    ("great_vessels", tissue(sct("87612001", "Blood"))),
    // Threshold-segmented bone of no name: bone tissue.
    ("bone", tissue(sct("3138006", "Bone"))),
    // The spine as one class: the generic code of TotalSegmentator's regional vertebrae classes.
    ("vertebrae", anat(sct("51282000", "Vertebra"))),
    // No source we could read has a generic disc code (CID 7604 lists only discs by level),
    // so the broader (fibro)cartilage tissue, region Spine.
    ("intervertebral_discs", tissue(sct("309312004", "Cartilage"))),
];

/// Codes TotalSegmentator (and the DICOM tables) use that are not our label's own type code,
/// mapped to the label they mean: (type, modifier, label). Each points at the most generic
/// label that covers the concept, so an imported segment lands somewhere sensible.
const ALIASES: &[(&str, Option<&str>, &str)] = &[
    // TotalSegmentator's own codes where we use another (see the module documentation).
    ("29700009", Some("24028007"), "subclavian_artery_right"),
    ("29700009", Some("7771000"), "subclavian_artery_left"),
    ("181674001", Some("24028007"), "gluteus_maximus_right"),
    ("181674001", Some("7771000"), "gluteus_maximus_left"),
    ("68786006", Some("7771000"), "atrial_appendage_left"),
    // TotalSegmentator classes coarser than ours: `body_trunc` (Trunk; the name importer maps
    // it to `body` too) and `ribs` (Rib; which rib is unknown, so the nameless `bone`).
    ("22943007", None, "body"),
    ("113197003", None, "bone"),
    // Wider DICOM concepts for tissues we label: "Bone" as Slicer's general anatomy codes it,
    // CID 7191 "Muscle", CID 7192 "Cerebral White Matter", CID 7140 "Cerebral Gray Matter".
    ("272673000", None, "bone"),
    ("91727004", None, "skeletal_muscle"),
    ("68523003", None, "white_matter"),
    ("40146001", None, "grey_matter"),
];

// Lesions and lesion parts: CID 7194 (morphologically abnormal structure types), CID 7197
// (body substance types) and CID 6102 (chest findings; ground glass is a DCM code there).
const NODULE: Code = sct("27925004", "Nodule");
const NEOPLASM: Code = sct("108369006", "Neoplasm");
const SECONDARY_NEOPLASM: Code = sct("14799000", "Neoplasm, Secondary");
const MASS: Code = sct("4147007", "Mass");
const LESION: Code = sct("52988006", "Lesion");
const NECROSIS: Code = sct("6574001", "Necrosis");
const BODY_FLUID: Code = sct("32457005", "Body fluid");
const GROUND_GLASS_OPACITY: Code = dcm("112120", "Ground glass opacity");

/// Codes for an ontology label name (every name in ontology::ontology() must have an entry).
/// Matching ignores case, and spaces and dashes count as underscores, as
/// [`super::ontology::label_by_name`] does.
pub fn codes_for_label(name: &str) -> Option<SegmentCodes> {
    let n = normalize(name);
    LABELS
        .iter()
        .find(|(label, _)| label.eq_ignore_ascii_case(&n))
        .map(|&(_, codes)| codes)
}

/// The anatomic region a label's segment should carry in its Anatomic Region Sequence, for
/// the labels whose type code alone does not say where they are (TotalSegmentator codes its
/// kidney cysts, `torso_fat` and `lung_vessels` this way). None for the rest.
pub fn anatomic_region_for_label(name: &str) -> Option<Code> {
    let n = normalize(name);
    Some(match n.as_str() {
        "kidney_cyst_left" | "kidney_cyst_right" => KIDNEY,
        "torso_fat" => TRUNK,
        "pulmonary_vessels" => LUNG,
        "intervertebral_discs" => SPINE,
        "water" => PHANTOM,
        _ if n.starts_with("insert_") => PHANTOM,
        _ => return None,
    })
}

/// Codes for a lesion (category "Morphologically Abnormal Structure", SCT 49755003), the type
/// chosen from the lesion kind: the pipeline's `nodule`, `tumour`, `cyst` and `metastasis`,
/// or free text. Free text is searched for those words (a "metastatic nodule" is a secondary
/// neoplasm first: the more informative finding wins), and anything unrecognised is a plain
/// "Lesion". A lesion's segment takes its organ's type code as anatomic region, with the
/// organ's laterality as region modifier.
pub fn codes_for_lesion(kind: &str) -> SegmentCodes {
    let k = normalize(kind);
    let has = |word: &str| k.contains(word);
    let kind = if has("metasta") || has("secondary") {
        SECONDARY_NEOPLASM
    } else if has("tumo") || has("neoplasm") || has("cancer") || has("carcinoma") {
        NEOPLASM
    } else if has("cyst") {
        CYST
    } else if has("nodul") {
        NODULE
    } else if has("mass") {
        MASS
    } else {
        LESION
    };
    seg(MORPHOLOGICALLY_ABNORMAL_STRUCTURE, kind, None)
}

/// Codes for a lesion part ("fluid", "necrotic_core", "ground_glass"). A cyst's fluid is a
/// body substance (CID 7197); necrosis and ground glass are abnormal structures of their own.
/// An unknown part is a plain "Lesion".
pub fn codes_for_lesion_part(part: &str) -> SegmentCodes {
    match normalize(part).as_str() {
        "fluid" => seg(BODY_SUBSTANCE, BODY_FLUID, None),
        "necrotic_core" | "necrosis" => seg(MORPHOLOGICALLY_ABNORMAL_STRUCTURE, NECROSIS, None),
        "ground_glass" => seg(
            MORPHOLOGICALLY_ABNORMAL_STRUCTURE,
            GROUND_GLASS_OPACITY,
            None,
        ),
        _ => seg(MORPHOLOGICALLY_ABNORMAL_STRUCTURE, LESION, None),
    }
}

/// True for the type codes [`codes_for_lesion`] and [`codes_for_lesion_part`] write: a
/// SEG's lesion segments, which an anatomy import leaves out rather than refuses.
pub fn is_lesion_code(type_value: &str) -> bool {
    [
        SECONDARY_NEOPLASM,
        NEOPLASM,
        CYST,
        NODULE,
        MASS,
        LESION,
        BODY_FLUID,
        NECROSIS,
        GROUND_GLASS_OPACITY,
    ]
    .iter()
    .any(|c| c.value == type_value)
}

/// Reverse lookup for importing a DICOM SEG: the ontology label name for a (type code value,
/// optional modifier code value). Pass the Segmented Property Type Modifier, or for a
/// morphologically abnormal structure the Anatomic Region Modifier (see the module
/// documentation).
///
/// Every label has its own (type, modifier) pair, so an exact match is unambiguous; codes
/// TotalSegmentator uses for coarser or differently coded classes resolve through a table of
/// aliases to the most generic label that covers them (a generic "Vertebra" is `vertebrae`,
/// a generic "Rib" is `bone`). A side on a structure we label without one (a left lateral
/// ventricle) falls back to that label; "Right and left" counts as no side. A paired
/// structure without a side (a bare "Kidney") has no label.
pub fn label_for_codes(type_value: &str, modifier_value: Option<&str>) -> Option<&'static str> {
    let side = modifier_value.filter(|&m| m != RIGHT_AND_LEFT.value);
    exact_label(type_value, side).or_else(|| side.and_then(|_| exact_label(type_value, None)))
}

fn exact_label(type_value: &str, modifier_value: Option<&str>) -> Option<&'static str> {
    LABELS
        .iter()
        .find(|(_, c)| c.kind.value == type_value && c.modifier.map(|m| m.value) == modifier_value)
        .map(|&(label, _)| label)
        .or_else(|| {
            ALIASES
                .iter()
                .find(|&&(t, m, _)| t == type_value && m == modifier_value)
                .map(|&(_, _, label)| label)
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::anatomy::ontology::{label_by_name, ontology};
    use crate::anatomy::LesionPart;

    /// The kinds `LesionKind::name` writes (a stage may not import the pipeline module).
    const PIPELINE_LESION_KINDS: [&str; 4] = ["nodule", "tumour", "cyst", "metastasis"];
    const LESION_PARTS: [LesionPart; 3] = [
        LesionPart::Fluid,
        LesionPart::NecroticCore,
        LesionPart::GroundGlass,
    ];

    fn pair(c: &SegmentCodes) -> (&'static str, Option<&'static str>) {
        (c.kind.value, c.modifier.map(|m| m.value))
    }

    #[test]
    fn every_ontology_label_has_codes() {
        for l in ontology() {
            assert!(codes_for_label(l.name).is_some(), "{} has no codes", l.name);
        }
        // And the table names nothing else, so it cannot drift from the ontology unnoticed.
        assert_eq!(LABELS.len(), ontology().len());
        for (name, _) in LABELS {
            assert!(
                label_by_name(name).is_some(),
                "{name} is not an ontology label"
            );
        }
    }

    #[test]
    fn every_code_is_well_formed() {
        let mut codes: Vec<Code> = Vec::new();
        for (_, c) in LABELS {
            codes.extend([c.category, c.kind]);
            codes.extend(c.modifier);
        }
        for k in PIPELINE_LESION_KINDS
            .iter()
            .chain(&["lesion", "weird thing"])
        {
            let c = codes_for_lesion(k);
            codes.extend([c.category, c.kind]);
        }
        for p in LESION_PARTS {
            let c = codes_for_lesion_part(p.name());
            codes.extend([c.category, c.kind]);
        }
        codes.extend(
            ontology()
                .iter()
                .filter_map(|l| anatomic_region_for_label(l.name)),
        );
        codes.push(RIGHT_AND_LEFT);
        for c in codes {
            assert!(
                !c.value.is_empty() && c.value.bytes().all(|b| b.is_ascii_digit()),
                "{c:?}"
            );
            assert!(c.scheme == "SCT" || c.scheme == "DCM", "{c:?}");
            assert!(!c.meaning.is_empty(), "{c:?}");
        }
        for (t, m, label) in ALIASES {
            assert!(t.bytes().all(|b| b.is_ascii_digit()), "{t}");
            assert!(
                m.iter().all(|&m| m == LEFT.value || m == RIGHT.value),
                "{m:?}"
            );
            assert!(
                label_by_name(label).is_some(),
                "alias to unknown label {label}"
            );
        }
    }

    #[test]
    fn modifiers_are_sides_that_match_the_name() {
        for (name, c) in LABELS {
            match c.modifier {
                None => {}
                Some(m) if m == LEFT => assert!(name.contains("left"), "{name}"),
                Some(m) if m == RIGHT => assert!(name.contains("right"), "{name}"),
                Some(m) => panic!("{name}: modifier {m:?} is not a side"),
            }
        }
    }

    #[test]
    fn label_for_codes_inverts_codes_for_label() {
        let mut count: HashMap<_, usize> = HashMap::new();
        for (_, c) in LABELS {
            *count.entry(pair(c)).or_default() += 1;
        }
        for l in ontology() {
            let c = codes_for_label(l.name).unwrap();
            let (t, m) = pair(&c);
            if count[&(t, m)] == 1 {
                assert_eq!(label_for_codes(t, m), Some(l.name), "{}", l.name);
            }
        }
        // Today every pair is unique; a label sharing one would import as the first listed,
        // which must then be made the most generic (or given an alias) on purpose.
        let shared: Vec<_> = count.iter().filter(|(_, &n)| n > 1).collect();
        assert!(
            shared.is_empty(),
            "labels share (type, modifier): {shared:?}"
        );
    }

    #[test]
    fn codes_match_pydicom_code_dictionary() {
        // Values as `pydicom.sr.codedict.codes` (pydicom 3.0.2) gives them.
        let check = |name: &str, value: &str, modifier: Option<&str>| {
            let c = codes_for_label(name).unwrap();
            assert_eq!(pair(&c), (value, modifier), "{name}");
        };
        check("liver", "10200004", None); // codes.SCT.Liver
        check("spleen", "78961009", None); // codes.SCT.Spleen
        check("heart", "80891009", None); // codes.SCT.Heart
        check("aorta", "15825003", None); // codes.SCT.Aorta
        check("kidney_left", "64033007", Some("7771000")); // codes.SCT.Kidney + Left
        check("lung_right", "39607008", Some("24028007")); // codes.SCT.Lung + Right
        check("vertebrae_L1", "66794005", None); // codes.SCT.BoneStructureOfL1
        check("subclavian_artery_left", "36765005", Some("7771000")); // SubclavianArtery
        check("csf", "65216001", None); // codes.SCT.CerebrospinalFluid
        check("intestinal_gas", "74947009", None); // codes.SCT.Gas
        check("torso_fat", "55603005", None); // codes.SCT.AdiposeTissue ("Fat")
                                              // codes.cid7150.*
        assert_eq!(ANATOMICAL_STRUCTURE.value, "91723000");
        assert_eq!(TISSUE.value, "85756007");
        assert_eq!(BODY_SUBSTANCE.value, "91720002");
        assert_eq!(SUBSTANCE.value, "105590001");
        assert_eq!(MORPHOLOGICALLY_ABNORMAL_STRUCTURE.value, "49755003");
        assert_eq!(
            codes_for_label("liver").unwrap().category,
            ANATOMICAL_STRUCTURE
        );
        assert_eq!(
            codes_for_label("subcutaneous_fat").unwrap().category,
            TISSUE
        );
        assert_eq!(
            codes_for_label("kidney_cyst_right").unwrap().category,
            MORPHOLOGICALLY_ABNORMAL_STRUCTURE
        );
        // Names are looked up as the ontology looks them up.
        assert_eq!(
            codes_for_label("Vertebrae-l1"),
            codes_for_label("vertebrae_L1")
        );
        assert_eq!(codes_for_label("no_such_organ"), None);
    }

    #[test]
    fn imports_resolve_legacy_generic_and_sided_codes() {
        // TotalSegmentator's own codes where ours differ.
        assert_eq!(
            label_for_codes("29700009", Some("7771000")),
            Some("subclavian_artery_left")
        );
        assert_eq!(
            label_for_codes("181674001", Some("24028007")),
            Some("gluteus_maximus_right")
        );
        assert_eq!(
            label_for_codes("68786006", Some("7771000")),
            Some("atrial_appendage_left")
        );
        // Generic codes land on the generic label.
        assert_eq!(label_for_codes("51282000", None), Some("vertebrae"));
        assert_eq!(label_for_codes("113197003", None), Some("bone"));
        // A side we do not label falls back; "Right and left" is no side.
        assert_eq!(
            label_for_codes("51282000", Some("7771000")),
            Some("vertebrae")
        );
        assert_eq!(
            label_for_codes("66720007", Some("51440002")),
            Some("lateral_ventricles")
        );
        // A paired structure needs its side; lesions are not labels.
        assert_eq!(label_for_codes("64033007", None), None);
        assert_eq!(
            label_for_codes("64033007", Some("7771000")),
            Some("kidney_left")
        );
        assert_eq!(
            label_for_codes("367643001", Some("24028007")),
            Some("kidney_cyst_right")
        );
        assert_eq!(label_for_codes("367643001", None), None);
        assert_eq!(label_for_codes("27925004", None), None);
        assert_eq!(label_for_codes("0", None), None);
    }

    #[test]
    fn lesion_kinds_and_parts() {
        let kind = |k: &str| {
            let c = codes_for_lesion(k);
            assert_eq!(c.category, MORPHOLOGICALLY_ABNORMAL_STRUCTURE, "{k}");
            assert_eq!(c.modifier, None, "{k}");
            c.kind.value
        };
        assert_eq!(kind("nodule"), "27925004");
        assert_eq!(kind("tumour"), "108369006");
        assert_eq!(kind("Tumor"), "108369006");
        assert_eq!(kind("metastasis"), "14799000");
        assert_eq!(kind("cyst"), "367643001");
        assert_eq!(kind("metastatic nodule"), "14799000");
        assert_eq!(kind("lesion"), "52988006");
        assert_eq!(kind("something else"), "52988006");
        for k in PIPELINE_LESION_KINDS {
            assert_ne!(kind(k), LESION.value, "{k} should have a specific code");
        }

        let part = |p: LesionPart| codes_for_lesion_part(p.name());
        assert_eq!(part(LesionPart::Fluid).kind.value, "32457005");
        assert_eq!(part(LesionPart::Fluid).category, BODY_SUBSTANCE);
        assert_eq!(part(LesionPart::NecroticCore).kind.value, "6574001");
        assert_eq!(part(LesionPart::GroundGlass).kind, GROUND_GLASS_OPACITY);
        for p in LESION_PARTS {
            assert_ne!(
                part(p).kind,
                LESION,
                "{} should have a specific code",
                p.name()
            );
        }
    }

    #[test]
    fn regions_where_the_type_does_not_say_where() {
        assert_eq!(anatomic_region_for_label("kidney_cyst_left"), Some(KIDNEY));
        assert_eq!(anatomic_region_for_label("pulmonary_vessels"), Some(LUNG));
        assert_eq!(anatomic_region_for_label("insert_iodine"), Some(PHANTOM));
        assert_eq!(anatomic_region_for_label("liver"), None);
    }
}
