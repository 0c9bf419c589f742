//! Iodinated contrast: each organ's iodine concentration in each phase after an intravenous
//! bolus, so a CT arm can image the same subject native, arterial, portal-venous or delayed.
//!
//! The table holds enhancement — CT number above the unenhanced value at 120 kVp — per
//! perfusion class and phase. Typical adult values for a weight-based injection (≈ 1.5–2
//! mL/kg of 300–370 mg I/mL at 3–5 mL/s; aortic peak ≈ 25–35 s, hepatic peak ≈ 60–80 s),
//! as summarised by Bae, Radiology 256, 32 (2010) (aortic and hepatic enhancement curves,
//! the ≥ 50 HU hepatic enhancement a portal-venous scan aims at), Heiken et al., Radiology
//! 195, 353 (1995) (hepatic enhancement ≈ 50 HU), and, for the portal-venous aorta, portal
//! vein, liver and spleen, a real portal-venous abdomen (aorta ≈ 150, portal vein ≈ 135,
//! liver ≈ 90, spleen ≈ 80 HU). Kidney: corticomedullary in the arterial phase, nephrographic
//! later (Yuh & Cohan, AJR 173, 747 (1999)). Brain parenchyma behind the blood–brain barrier
//! enhances by its blood volume only (≈ 4 % grey, 2 % white matter).
//!
//! Each enhancement becomes an iodine concentration at the reference beam
//! (ΔHU = 1000·c·(μ/ρ)_I / μ_water at `CT_REFERENCE_KEV`), and the CT simulator adds that
//! iodine to the voxel by mass, so the kVp dependence of the enhancement comes from iodine's
//! own attenuation (higher at 80 kVp, lower at 140 kVp), not from the table.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{attenuation, CT_REFERENCE_KEV};

/// Time after the start of the injection at which the arm scans.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// No contrast.
    #[default]
    Native,
    /// Late arterial (≈ 35–40 s): arteries and heart bright, corticomedullary kidneys,
    /// pancreas and spleen enhancing, liver barely.
    Arterial,
    /// Portal venous (≈ 70 s): liver at its peak, veins and arteries alike.
    PortalVenous,
    /// Delayed / equilibrium (≈ 3–5 min): blood pool and parenchyma converging.
    Delayed,
}

/// How a tissue takes up contrast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Perfusion {
    /// Air, fat, bone, CSF, bile, urine, cysts (no enhancement).
    None = 0,
    Artery,
    PortalVein,
    /// Systemic veins (vena cavae, iliac and other veins).
    Vein,
    /// Heart: chambers' blood pool and myocardium together.
    Heart,
    Liver,
    Spleen,
    Kidney,
    Pancreas,
    /// Stomach, bowel, oesophagus wall.
    GiWall,
    Muscle,
    /// Other soft tissue and organs (adrenals, thyroid, prostate, skin, body).
    SoftTissue,
    GreyMatter,
    WhiteMatter,
    /// Arterially fed tumour (hepatocellular carcinoma type): brighter than the liver in the
    /// arterial phase, "washout" below it later.
    HypervascularLesion,
    /// Lesion enhancing less than its organ in the portal phase (most metastases; solid
    /// lung nodules).
    HypovascularLesion,
}

/// Every class, in `repr(u8)` order.
pub const PERFUSION: [Perfusion; 16] = [
    Perfusion::None,
    Perfusion::Artery,
    Perfusion::PortalVein,
    Perfusion::Vein,
    Perfusion::Heart,
    Perfusion::Liver,
    Perfusion::Spleen,
    Perfusion::Kidney,
    Perfusion::Pancreas,
    Perfusion::GiWall,
    Perfusion::Muscle,
    Perfusion::SoftTissue,
    Perfusion::GreyMatter,
    Perfusion::WhiteMatter,
    Perfusion::HypervascularLesion,
    Perfusion::HypovascularLesion,
];

/// How a focal lesion takes up contrast (pipeline: `lesion.enhancement`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LesionEnhancement {
    /// No uptake (cysts, necrosis).
    None,
    /// Arterial-phase hyperenhancement with portal-venous and delayed washout (HCC type).
    Hypervascular,
    /// Mild, slow uptake below the liver's in the portal phase (metastases, lung nodules).
    Hypovascular,
}

impl LesionEnhancement {
    pub fn perfusion(self) -> Perfusion {
        match self {
            LesionEnhancement::None => Perfusion::None,
            LesionEnhancement::Hypervascular => Perfusion::HypervascularLesion,
            LesionEnhancement::Hypovascular => Perfusion::HypovascularLesion,
        }
    }
}

impl Perfusion {
    /// The class stored in a perfusion map.
    pub fn from_u8(v: u8) -> Perfusion {
        PERFUSION
            .get(v as usize)
            .copied()
            .unwrap_or(Perfusion::None)
    }

    /// Enhancement at 120 kVp (HU above unenhanced) in `phase`: see the module docs.
    pub fn enhancement_hu(self, phase: Phase) -> f64 {
        use Perfusion as P;
        // [arterial, portal venous, delayed]
        let row: [f64; 3] = match self {
            P::None => [0.0, 0.0, 0.0],
            P::Artery => [250.0, 107.0, 60.0],
            P::PortalVein => [70.0, 92.0, 60.0],
            P::Vein => [20.0, 90.0, 60.0],
            P::Heart => [180.0, 90.0, 55.0],
            P::Liver => [15.0, 43.0, 25.0],
            P::Spleen => [70.0, 45.0, 25.0],
            P::Kidney => [120.0, 130.0, 100.0],
            P::Pancreas => [75.0, 55.0, 25.0],
            P::GiWall => [30.0, 40.0, 20.0],
            P::Muscle => [5.0, 10.0, 10.0],
            P::SoftTissue => [15.0, 25.0, 15.0],
            P::GreyMatter => [8.0, 4.0, 2.5],
            P::WhiteMatter => [4.0, 2.0, 1.2],
            // HCC: arterial-phase hyperenhancement above the liver's, then "washout" below
            // the portal-venous and delayed liver (LI-RADS v2018 major features; typical HCC
            // enhancement ≈ 60–80 HU arterial, ≈ 30 HU portal venous).
            P::HypervascularLesion => [70.0, 30.0, 20.0],
            // Hypovascular metastases (e.g. colorectal) enhance less than the liver in the
            // portal phase; malignant lung nodules by ≥ 15 HU, median ≈ 38 (Swensen et al.,
            // Radiology 214, 73 (2000)).
            P::HypovascularLesion => [10.0, 25.0, 25.0],
        };
        match phase {
            Phase::Native => 0.0,
            Phase::Arterial => row[0],
            Phase::PortalVenous => row[1],
            Phase::Delayed => row[2],
        }
    }

    /// Iodine concentration (mg/mL, i.e. g/L) that gives the enhancement at the reference
    /// beam.
    pub fn iodine_mg_ml(self, phase: Phase) -> f64 {
        self.enhancement_hu(phase) / hu_per_mg_ml()
    }
}

/// CT number of 1 mg/mL of iodine at the reference beam: 1000·0.001·(μ/ρ)_I / (μ/ρ)_water.
pub fn hu_per_mg_ml() -> f64 {
    let i = attenuation::material_index("iodine").expect("iodine is in the attenuation table");
    let w = attenuation::material_index("water").expect("water is in the attenuation table");
    attenuation::mu_rho(i, CT_REFERENCE_KEV) / attenuation::mu_rho(w, CT_REFERENCE_KEV)
}

/// The perfusion class of an anatomy label, by its name (focal lesions: their own
/// `LesionEnhancement`).
pub fn perfusion_for_label(label_name: &str) -> Perfusion {
    use Perfusion as P;
    let n = label_name;
    match n {
        "liver" => P::Liver,
        "spleen" => P::Spleen,
        "pancreas" => P::Pancreas,
        "heart" | "atrial_appendage_left" => P::Heart,
        "portal_vein_and_splenic_vein" => P::PortalVein,
        "stomach" | "esophagus" | "duodenum" | "small_bowel" | "colon" => P::GiWall,
        "grey_matter" => P::GreyMatter,
        "white_matter" | "brain" | "spinal_cord" => P::WhiteMatter,
        "skeletal_muscle" => P::Muscle,
        // Bile and urine: no enhancement modelled (excretion into urine comes later).
        "gallbladder" | "urinary_bladder" => P::None,
        _ if n.starts_with("kidney") => P::Kidney,
        _ if n == "aorta" || n.contains("artery") || n == "brachiocephalic_trunk" => P::Artery,
        // Mixed pulmonary arteries and veins, and the aorta with the pulmonary trunk and the
        // cavae: the arterial curve, as their largest part fills first.
        "pulmonary_vessels" | "great_vessels" => P::Artery,
        _ if n.contains("vena") || n.contains("vein") => P::Vein,
        _ if n.starts_with("autochthon_")
            || n.starts_with("iliopsoas_")
            || n.starts_with("gluteus_") =>
        {
            P::Muscle
        }
        _ => match super::tissue_for_label(n).name {
            "soft_tissue" | "skin" | "stomach" | "bowel" => P::SoftTissue,
            _ => P::None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iodine_sensitivity_matches_the_literature_order() {
        // 1 mg I/mL reads ≈ 25–40 HU across clinical beams (≈ 26 at 120 kVp polychromatic,
        // more for the monochromatic reference energy, just above iodine's effective energy).
        let k = hu_per_mg_ml();
        assert!((25.0..45.0).contains(&k), "{k} HU per mg/mL");
    }

    #[test]
    fn classes_round_trip_and_name_the_right_organs() {
        for (i, p) in PERFUSION.iter().enumerate() {
            assert_eq!(Perfusion::from_u8(i as u8), *p);
            assert_eq!(*p as u8 as usize, i);
        }
        assert_eq!(perfusion_for_label("aorta"), Perfusion::Artery);
        assert_eq!(perfusion_for_label("iliac_artery_left"), Perfusion::Artery);
        assert_eq!(perfusion_for_label("inferior_vena_cava"), Perfusion::Vein);
        assert_eq!(
            perfusion_for_label("portal_vein_and_splenic_vein"),
            Perfusion::PortalVein
        );
        assert_eq!(perfusion_for_label("kidney_left"), Perfusion::Kidney);
        for none in [
            "background",
            "vertebrae_L1",
            "lung_upper_lobe_left",
            "subcutaneous_fat",
            "csf",
            "gallbladder",
        ] {
            assert_eq!(perfusion_for_label(none), Perfusion::None, "{none}");
        }
        // Native is native for every class; the aorta peaks in the arterial phase, the liver
        // in the portal-venous one.
        for p in PERFUSION {
            assert_eq!(p.iodine_mg_ml(Phase::Native), 0.0);
        }
        let a = |p: Perfusion, ph| p.enhancement_hu(ph);
        assert!(a(Perfusion::Artery, Phase::Arterial) > a(Perfusion::Artery, Phase::PortalVenous));
        assert!(a(Perfusion::Liver, Phase::PortalVenous) > a(Perfusion::Liver, Phase::Arterial));
        assert!(a(Perfusion::Liver, Phase::PortalVenous) > a(Perfusion::Liver, Phase::Delayed));
    }
}
