//! Tissue-property tables: label → CT attenuation (HU, material, density) and MRI relaxation
//! (PD, T1, T2, T2*) at 1.5 T and 3 T.
//!
//! Sources (copied from the project's reference tables, `shared/reference/`):
//! - [TS] median HU measured inside TotalSegmentator labels of a real contrast-enhanced torso
//!   CT (TotalSegmentator 2.18.0 test data, 3 mm): spleen 35, kidneys 14–20, liver 47,
//!   lungs −779…−856, aorta 44, vertebrae 110–155, ribs 200–280, gluteal muscles 10–38,
//!   iliopsoas 49–52, spinal cord 6, small bowel 25, stomach 38, gallbladder 3.
//! - [ICRU46] ICRU Report 46 (1992) tissue compositions and reference densities, one
//!   material per tissue (adipose, muscle, lung, blood, liver, spleen, kidney, heart, skin,
//!   GI tract, cartilage, spongiosa, cortical bone, brain grey and white matter, …): see
//!   `attenuation_tables.rs`. A tissue's density is not tabulated here: it follows from its
//!   HU within its material at the 120 kVp reference beam ([`Tissue::ct_density`]), so the
//!   simulator reads the tissue's HU back at 120 kVp and the material's own energy
//!   dependence at other kVp.
//! - [S] Stanisz et al., MRM 2005;54:507–512: T1/T2 at 1.5 T and 3 T (WM, GM, muscle, heart,
//!   liver, blood, spinal cord).
//! - [B] BrainWeb values as shipped in MRzeroCore 1.2.0: 3 T T1/T2/T2′/PD of CSF and fat, and
//!   the PD and T2′ of WM and GM (whose T1/T2 are [S]).
//!
//! Relaxation is tabulated at 1.5 and 3 T, the fields Stanisz measured; a field above 3 T is
//! rejected by the protocols (no table here has data for every tissue there). Between the
//! tables and below 1.5 T, T1 follows a power law of the field, T1 ∝ B0^b (Bottomley et al.,
//! Med Phys 11, 425 (1984)), with b from each tissue's two values, so T1 rises monotonically
//! with field for every tissue; T2, T2* and PD are interpolated linearly and held below 1.5 T.
//! - [L] textbook CT values where no measurement above applies (fat −100, CSF 5, grey
//!   matter 40, white matter 28, cortical skull ~1000 HU, PMMA ~120 HU, 10 mg/mL iodine
//!   ≈ 260 HU at 120 kVp) and generic estimates marked `est` (PD and T2′ of body tissues).
//!
//! T2* = 1 / (1/T2 + 1/T2′). Texture SDs are within-tissue heterogeneity used by the
//! procedural generator, chosen to resemble real CT texture at ~1–3 mm (not measured values).

pub mod attenuation;
pub mod attenuation_tables;
pub mod contrast;
pub mod diffusion;
pub mod object;
pub mod susceptibility;

/// MRI properties at one field strength.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Relaxation {
    /// Proton density relative to CSF.
    pub pd: f64,
    pub t1_ms: f64,
    pub t2_ms: f64,
    pub t2star_ms: f64,
}

/// One tissue class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tissue {
    pub name: &'static str,
    /// CT attenuation at a 120 kVp-like effective energy, HU.
    pub hu: f64,
    /// Within-tissue texture SD, HU.
    pub hu_texture_sd: f64,
    /// Material for polychromatic CT (a name in [`attenuation_tables::MU_RHO_MATERIALS`]);
    /// the mass density follows from `hu` within it ([`Tissue::ct_density`]).
    pub material: &'static str,
    pub mri_1p5t: Relaxation,
    pub mri_3t: Relaxation,
    /// Within-tissue texture of the MRI maps, as a fraction of the value.
    pub mri_texture_rel: f64,
}

const fn rx(pd: f64, t1_ms: f64, t2_ms: f64, t2prime_ms: f64) -> Relaxation {
    Relaxation {
        pd,
        t1_ms,
        t2_ms,
        t2star_ms: 1.0 / (1.0 / t2_ms + 1.0 / t2prime_ms),
    }
}

#[allow(clippy::too_many_arguments)]
const fn t(
    name: &'static str,
    hu: f64,
    hu_texture_sd: f64,
    material: &'static str,
    mri_1p5t: Relaxation,
    mri_3t: Relaxation,
    mri_texture_rel: f64,
) -> Tissue {
    Tissue {
        name,
        hu,
        hu_texture_sd,
        material,
        mri_1p5t,
        mri_3t,
        mri_texture_rel,
    }
}

/// The tissue classes. Relaxation rows: [S] where given, else [B], else `est`.
pub const TISSUES: &[Tissue] = &[
    t(
        "air",
        -1000.0,
        0.0,
        "air",
        rx(0.0, 1.0, 1.0, 1.0),
        rx(0.0, 1.0, 1.0, 1.0),
        0.0,
    ),
    t(
        "water",
        0.0,
        0.0,
        "water",
        rx(1.0, 3000.0, 1500.0, 1000.0),
        rx(1.0, 3000.0, 1500.0, 1000.0),
        0.0,
    ),
    // [L] fat HU; [B] 3 T fat; 1.5 T fat T1 ≈ 260 ms (est).
    t(
        "fat",
        -100.0,
        12.0,
        "adipose",
        rx(1.0, 260.0, 85.0, 12.0),
        rx(1.0, 370.0, 125.0, 12.0),
        0.03,
    ),
    // [TS] muscle HU; [S] T1/T2; PD, T2′ est.
    t(
        "muscle",
        40.0,
        10.0,
        "muscle",
        rx(0.75, 1008.0, 44.0, 60.0),
        rx(0.75, 1412.0, 50.0, 40.0),
        0.03,
    ),
    t(
        "soft_tissue",
        30.0,
        15.0,
        "muscle",
        rx(0.8, 900.0, 60.0, 60.0),
        rx(0.8, 1200.0, 55.0, 40.0),
        0.05,
    ),
    // [TS] lung −780…−856 HU; lung parenchyma has very short T2* (~1–2 ms, est).
    t(
        "lung",
        -820.0,
        45.0,
        "lung",
        rx(0.15, 1200.0, 40.0, 2.0),
        rx(0.15, 1400.0, 35.0, 1.0),
        0.1,
    ),
    // [TS] aorta/IVC 42–50 HU; [S] blood.
    t(
        "blood",
        44.0,
        6.0,
        "blood",
        rx(0.9, 1441.0, 290.0, 100.0),
        rx(0.9, 1932.0, 275.0, 60.0),
        0.02,
    ),
    // [S] heart; HU as blood-filled myocardium.
    t(
        "heart",
        40.0,
        8.0,
        "heart",
        rx(0.8, 1030.0, 40.0, 60.0),
        rx(0.8, 1471.0, 47.0, 40.0),
        0.03,
    ),
    // [TS] liver 47; [S] liver.
    t(
        "liver",
        47.0,
        9.0,
        "liver",
        rx(0.7, 576.0, 46.0, 40.0),
        rx(0.7, 812.0, 42.0, 25.0),
        0.03,
    ),
    t(
        "spleen",
        35.0,
        8.0,
        "spleen",
        rx(0.8, 1057.0, 79.0, 60.0),
        rx(0.8, 1328.0, 61.0, 40.0),
        0.03,
    ),
    t(
        "kidney",
        17.0,
        10.0,
        "kidney",
        rx(0.8, 690.0, 55.0, 60.0),
        rx(0.8, 1194.0, 56.0, 40.0),
        0.04,
    ),
    t(
        "stomach",
        38.0,
        12.0,
        "gi_tract",
        rx(0.8, 900.0, 60.0, 50.0),
        rx(0.8, 1200.0, 55.0, 35.0),
        0.05,
    ),
    t(
        "bowel",
        25.0,
        20.0,
        "gi_tract",
        rx(0.8, 900.0, 60.0, 40.0),
        rx(0.8, 1200.0, 55.0, 30.0),
        0.08,
    ),
    // [TS] vertebrae 110–155 HU: cancellous bone, ICRU-46 spongiosa (bone mineral in red
    // and yellow marrow; 1.18 g/cm³ reads ~+325 HU, adult vertebral bodies less dense).
    t(
        "cancellous_bone",
        130.0,
        40.0,
        "spongiosa",
        rx(0.3, 550.0, 50.0, 10.0),
        rx(0.3, 600.0, 45.0, 6.0),
        0.1,
    ),
    // [TS] ribs 200–280 HU at 3 mm (thin cortex round marrow, in partial volume): spongiosa.
    t(
        "rib_bone",
        250.0,
        60.0,
        "spongiosa",
        rx(0.2, 500.0, 40.0, 5.0),
        rx(0.2, 550.0, 35.0, 3.0),
        0.1,
    ),
    // [TS] costal cartilage 114 HU (89–135); ICRU-46 cartilage. MRI: hyaline cartilage
    // T1 ≈ 1000/1240 ms, T2 ≈ 40/37 ms at 1.5/3 T (est).
    t(
        "cartilage",
        115.0,
        12.0,
        "cartilage",
        rx(0.7, 1000.0, 40.0, 40.0),
        rx(0.7, 1240.0, 37.0, 25.0),
        0.05,
    ),
    // [L] cortical bone (skull): T2* ~ 0.5 ms, PD low (est).
    t(
        "cortical_bone",
        1000.0,
        80.0,
        "cortical_bone",
        rx(0.05, 300.0, 1.0, 1.0),
        rx(0.05, 350.0, 1.0, 1.0),
        0.1,
    ),
    // [TS] spinal cord 6 HU; [S] spinal cord; neural tissue, mostly white matter (ICRU 46).
    t(
        "spinal_cord",
        10.0,
        5.0,
        "white_matter",
        rx(0.75, 745.0, 74.0, 100.0),
        rx(0.75, 993.0, 78.0, 60.0),
        0.02,
    ),
    t(
        "skin",
        30.0,
        8.0,
        "skin",
        rx(0.7, 600.0, 40.0, 60.0),
        rx(0.7, 800.0, 35.0, 40.0),
        0.05,
    ),
    // [L] unenhanced brain CT: grey matter 35–40, white matter 25–30 HU; ICRU-46 grey and
    // white matter compositions (white matter richer in lipid carbon); T1/T2 [S] at 1.5 and
    // 3 T (Stanisz's in vivo brain: WM T1 884 → 1084 ms, GM 1124 → 1820 ms), PD and T2′ [B].
    t(
        "grey_matter",
        38.0,
        3.0,
        "grey_matter",
        rx(0.8, 1124.0, 95.0, 320.0),
        rx(0.8, 1820.0, 99.0, 320.0),
        0.03,
    ),
    t(
        "white_matter",
        29.0,
        3.0,
        "white_matter",
        rx(0.7, 884.0, 72.0, 180.0),
        rx(0.7, 1084.0, 69.0, 180.0),
        0.03,
    ),
    // [B] CSF at 3 T; 1.5 T T1 ≈ 4000 ms (est).
    t(
        "csf",
        5.0,
        2.0,
        "water",
        rx(1.0, 4000.0, 2000.0, 59.0),
        rx(1.0, 4160.0, 1650.0, 59.0),
        0.01,
    ),
    // QA phantom materials [L].
    t(
        "pmma",
        120.0,
        0.0,
        "pmma",
        rx(0.0, 1.0, 1.0, 1.0),
        rx(0.0, 1.0, 1.0, 1.0),
        0.0,
    ),
    t(
        "bone_insert",
        900.0,
        0.0,
        "cortical_bone",
        rx(0.05, 350.0, 1.0, 1.0),
        rx(0.05, 350.0, 1.0, 1.0),
        0.0,
    ),
    t(
        "iodine_10mg_ml",
        260.0,
        0.0,
        "iodine_water_10mg_ml",
        rx(1.0, 2500.0, 1200.0, 500.0),
        rx(1.0, 2500.0, 1200.0, 500.0),
        0.0,
    ),
    t(
        "adipose_insert",
        -100.0,
        0.0,
        "adipose",
        rx(1.0, 260.0, 85.0, 12.0),
        rx(1.0, 370.0, 125.0, 12.0),
        0.0,
    ),
];

pub fn tissue(name: &str) -> &'static Tissue {
    TISSUES
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("tissue table has no `{name}`"))
}

/// Simple fluid as a cyst holds it: (unenhanced HU, proton density relative to CSF, T1 ms,
/// T2 ms) — the default of `kind: cyst` lesions and the content of cystic lesion parts.
pub const CYST_FLUID: (f64, f64, f64, f64) = (5.0, 0.97, 3500.0, 1200.0);

/// The tissue of an anatomy label, by the label's name. Unknown labels (e.g. imported organs
/// without a row here) are soft tissue.
pub fn tissue_for_label(label_name: &str) -> &'static Tissue {
    let n = label_name;
    let class = match n {
        "" | "background" => "air",
        "trachea" | "insert_air" | "intestinal_gas" => "air",
        "water" => "water",
        "subcutaneous_fat" | "torso_fat" => "fat",
        "insert_fat" => "adipose_insert",
        "insert_acrylic" => "pmma",
        "insert_bone" => "bone_insert",
        "insert_iodine" => "iodine_10mg_ml",
        "heart" | "atrial_appendage_left" => "heart",
        "liver" => "liver",
        "spleen" => "spleen",
        "stomach" | "esophagus" | "duodenum" => "stomach",
        "small_bowel" | "colon" => "bowel",
        "spinal_cord" => "spinal_cord",
        "skull" => "cortical_bone",
        "scalp" => "skin",
        "csf" | "lateral_ventricles" => "csf",
        "grey_matter" => "grey_matter",
        "white_matter" | "brain" => "white_matter",
        "skeletal_muscle" => "muscle",
        "pulmonary_vessels" | "great_vessels" => "blood",
        // A threshold-segmented bone of any name: mostly ribs and vertebrae.
        "bone" => "cancellous_bone",
        "body" => "soft_tissue",
        _ if n.starts_with("lung_") => "lung",
        _ if n.starts_with("kidney") => "kidney",
        _ if n.starts_with("vertebrae")
            || n == "sacrum"
            || n.starts_with("hip_")
            || n.starts_with("femur_") =>
        {
            "cancellous_bone"
        }
        "costal_cartilages" | "intervertebral_discs" => "cartilage",
        _ if n.starts_with("rib_")
            || n == "sternum"
            || n.starts_with("scapula_")
            || n.starts_with("clavicula_")
            || n.starts_with("humerus_") =>
        {
            "rib_bone"
        }
        _ if n.starts_with("autochthon_")
            || n.starts_with("iliopsoas_")
            || n.starts_with("gluteus_") =>
        {
            "muscle"
        }
        _ if n == "aorta"
            || n.contains("vena")
            || n.contains("artery")
            || n.contains("vein")
            || n == "brachiocephalic_trunk" =>
        {
            "blood"
        }
        _ => "soft_tissue",
    };
    tissue(class)
}

/// Whether a label's tissue is parenchyma — a solid organ, a gland, muscle, the cord — in
/// which a bright focus on CT is a finding (a stone, a calcification, an implant's streak)
/// rather than the tissue's own structure: not bone or cartilage (cortex, calcifying
/// cartilage), lung (vessels), fat, gas, blood (contrast), stomach and bowel (oral contrast
/// and content), nor `body`, the rest of the body no organ label claims. The model's
/// stochastic detail leaves such foci out ([`synthcohort_ldm::focal`]).
pub fn is_parenchyma(label_name: &str) -> bool {
    label_name != "body"
        && matches!(
            tissue_for_label(label_name).name,
            "liver" | "spleen" | "kidney" | "muscle" | "soft_tissue" | "spinal_cord"
        )
}

/// Effective energy (keV) of the reference beam at which a tissue's HU fixes its density:
/// the default 120 kVp protocol (`generic64`: 3.5 mm Al added to SpekPy's 2.5 mm Al) through the 200 mm
/// water calibration phantom. Checked against the CT simulator's own beam in
/// `acquire::ct::tests::reference_energy_is_the_120kvp_calibration_energy`.
pub const CT_REFERENCE_KEV: f64 = 63.96;

impl Tissue {
    /// Mass density (g/cm³) at which this tissue's material reads `hu` at the reference beam:
    /// ρ = (1 + HU/1000) · μ_water(E_ref) / (μ/ρ)_material(E_ref). The HU table (measured on
    /// real scans) stays the truth at 120 kVp; at other kVp the material's own energy
    /// dependence moves the CT number (bone and iodine up at 80 kVp), as on a scanner.
    pub fn ct_density(&self) -> f64 {
        density_for_hu(self.material, self.hu)
    }

    /// Relaxation at `field_t` (0.1–3 T; above 3 T the 3 T values): T1 by the power law
    /// through the 1.5 and 3 T values, T2, T2* and PD linear between them and held below.
    pub fn relaxation(&self, field_t: f64) -> Relaxation {
        let f = field_t.min(3.0);
        let w = ((f - 1.5) / 1.5).clamp(0.0, 1.0);
        let (a, b) = (self.mri_1p5t, self.mri_3t);
        let mix = |x: f64, y: f64| x + w * (y - x);
        let exponent = (b.t1_ms / a.t1_ms).log2();
        Relaxation {
            pd: mix(a.pd, b.pd),
            t1_ms: a.t1_ms * (f / 1.5).powf(exponent),
            t2_ms: mix(a.t2_ms, b.t2_ms),
            t2star_ms: mix(a.t2star_ms, b.t2star_ms),
        }
    }
}

/// Density (g/cm³) at which `material` reads `hu` at the reference beam (see
/// [`Tissue::ct_density`]); panics on a material missing from the table (a table error).
pub fn density_for_hu(material: &str, hu: f64) -> f64 {
    let m = attenuation::material_index(material)
        .unwrap_or_else(|| panic!("tissue material `{material}` is not in the attenuation table"));
    let w = attenuation::material_index("water").expect("water is in the attenuation table");
    let ratio = attenuation::mu_rho(w, CT_REFERENCE_KEV) / attenuation::mu_rho(m, CT_REFERENCE_KEV);
    ((1.0 + hu / 1000.0) * ratio).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where a bright focus is a finding (left out of a model's stochastic detail) and where
    /// it is the tissue's own structure (cortex, vessels, contrast, content).
    #[test]
    fn parenchyma_is_solid_organs_and_muscle() {
        for name in [
            "liver",
            "spleen",
            "kidney_left",
            "pancreas",
            "gallbladder",
            "urinary_bladder",
            "prostate",
            "gluteus_maximus_left",
            "iliopsoas_right",
            "skeletal_muscle",
            "spinal_cord",
        ] {
            assert!(is_parenchyma(name), "{name}");
        }
        for name in [
            "vertebrae_L1",
            "femur_left",
            "rib_left_9",
            "costal_cartilages",
            "lung_lower_lobe_right",
            "aorta",
            "portal_vein_and_splenic_vein",
            "colon",
            "stomach",
            "subcutaneous_fat",
            "intestinal_gas",
            "background",
            "body",
        ] {
            assert!(!is_parenchyma(name), "{name}");
        }
    }

    #[test]
    fn reference_values_are_carried_over() {
        // Stanisz 2005 at 3 T and BrainWeb at 3 T, as in the reference table.
        assert_eq!(tissue("liver").mri_3t.t1_ms, 812.0);
        assert_eq!(tissue("white_matter").mri_3t.t1_ms, 1084.0);
        assert_eq!(tissue("grey_matter").mri_3t.t1_ms, 1820.0);
        assert_eq!(tissue("csf").mri_3t.t2_ms, 1650.0);
        // T2* from T2 and T2′ (WM: T2 69 [S], T2′ 180 [B] → 49.9 ms).
        assert!((tissue("white_matter").mri_3t.t2star_ms - 49.88).abs() < 0.01);
    }

    #[test]
    fn t1_rises_monotonically_with_field_for_every_tissue() {
        for t in TISSUES {
            let mut last = 0.0;
            for k in 1..=30 {
                let f = 0.1 * k as f64;
                let t1 = t.relaxation(f).t1_ms;
                assert!(t1 >= last, "{}: T1 {t1} at {f} T below {last}", t.name);
                last = t1;
            }
            // The tables are met exactly at their fields.
            assert!((t.relaxation(1.5).t1_ms - t.mri_1p5t.t1_ms).abs() < 1e-9);
            assert!((t.relaxation(3.0).t1_ms - t.mri_3t.t1_ms).abs() < 1e-6 * t.mri_3t.t1_ms);
        }
        // Bottomley's exponents for soft tissue lie around 0.3–0.5 over 1.5–3 T.
        let b = (tissue("liver").mri_3t.t1_ms / tissue("liver").mri_1p5t.t1_ms).log2();
        assert!((0.3..0.6).contains(&b), "liver exponent {b}");
    }

    #[test]
    fn contrast_orderings_hold() {
        let (wm, gm, csf) = (tissue("white_matter"), tissue("grey_matter"), tissue("csf"));
        assert!(wm.mri_3t.t1_ms < gm.mri_3t.t1_ms && gm.mri_3t.t1_ms < csf.mri_3t.t1_ms);
        assert!(tissue("fat").hu < 0.0 && tissue("lung").hu < tissue("fat").hu);
        assert!(tissue("cortical_bone").hu > tissue("rib_bone").hu);
    }

    /// The HU measured on real scans, turned into density within each ICRU-46 material,
    /// must land near ICRU 46's own density for that tissue: two independent sources agree.
    #[test]
    fn densities_from_measured_hu_match_icru46() {
        assert!((density_for_hu("water", 0.0) - 1.0).abs() < 1e-12);
        for name in [
            "fat",
            "muscle",
            "blood",
            "liver",
            "spleen",
            "kidney",
            "heart",
            "cartilage",
            "grey_matter",
            "white_matter",
        ] {
            let t = tissue(name);
            let m = attenuation::material_index(t.material).unwrap();
            let icru = attenuation_tables::DENSITY[m];
            let rho = t.ct_density();
            eprintln!("{name}: {rho:.4} g/cm³ from {} HU (ICRU 46 {icru})", t.hu);
            assert!(
                (rho / icru - 1.0).abs() < 0.04,
                "{name}: {rho:.4} vs ICRU {icru}"
            );
        }
        // Lung on an inspiration CT (−820 HU) holds more air than ICRU's 0.26 g/cm³ tissue.
        let l = tissue("lung").ct_density();
        assert!(l > 0.15 && l < 0.26, "lung {l}");
        // Adult vertebral spongiosa at 130 HU is less dense than ICRU's 1.18 g/cm³ sample.
        let v = tissue("cancellous_bone").ct_density();
        assert!(v > 1.0 && v < 1.18, "vertebral spongiosa {v}");
    }

    #[test]
    fn labels_map_to_tissues() {
        assert_eq!(tissue_for_label("lung_upper_lobe_left").name, "lung");
        assert_eq!(tissue_for_label("vertebrae_T7").name, "cancellous_bone");
        assert_eq!(tissue_for_label("rib_left_3").name, "rib_bone");
        assert_eq!(tissue_for_label("inferior_vena_cava").name, "blood");
        assert_eq!(tissue_for_label("unheard_of").name, "soft_tissue");
    }
}
