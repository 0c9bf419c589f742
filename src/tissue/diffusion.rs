//! Apparent diffusion coefficients (ADC) per tissue, in µm²/ms (= 10⁻³ mm²/s), for
//! diffusion-weighted MRI at clinical b-values (b ≈ 0–1000 s/mm²; isotropic: the trace).
//!
//! Sources (typical values; measured ADC scatter by 10–20 % between studies, b-value ranges
//! and vendors):
//! - [M] free water self-diffusion: 3.0 at 37 °C (Mills, J Phys Chem 77, 685 (1973)); CSF
//!   ≈ 3.0; room-temperature water (QA phantoms, ≈ 20 °C) 2.0 (Holz et al., Phys Chem Chem
//!   Phys 2, 4740 (2000)).
//! - [H] normal adult brain: white matter ≈ 0.70, grey matter ≈ 0.80–0.85 (Helenius et al.,
//!   AJNR 23, 194 (2002)).
//! - [T] body DWI review values (Taouli & Koh, Radiology 254, 47 (2010); Koh & Collins, AJR
//!   188, 1622 (2007)): liver ≈ 1.2–1.5, spleen ≈ 0.8–1.0, kidney ≈ 1.9–2.2, skeletal muscle
//!   ≈ 1.4–1.6, pancreas ≈ 1.3–1.6; solid malignant tumours ≈ 0.7–1.1, simple cysts ≈ 2.5–3.0.
//! - `est`: tissues without a DWI measurement used here (bone, lung, fat, GI wall, skin):
//!   generic estimates — lipid diffuses slowly (fat ≈ 0.02), bone and lung give little DWI
//!   signal anyway.

/// ADC (µm²/ms) of a tissue of the tissue table, by its name.
pub fn adc_um2_ms(tissue: &str) -> f64 {
    match tissue {
        "air" => 0.0,
        "water" => 2.0,                          // [M] ≈ 20 °C phantom water
        "csf" => 3.0,                            // [M]
        "white_matter" => 0.70,                  // [H]
        "grey_matter" => 0.83,                   // [H]
        "spinal_cord" => 0.75,                   // est (white-matter-like tracts)
        "liver" => 1.30,                         // [T]
        "spleen" => 0.90,                        // [T]
        "kidney" => 2.00,                        // [T]
        "muscle" => 1.45,                        // [T]
        "heart" => 1.50,                         // est (myocardium ≈ skeletal muscle)
        "blood" => 1.60,                         // est (static blood; flow adds pseudo-diffusion)
        "soft_tissue" | "skin" => 1.20,          // est
        "stomach" | "bowel" => 1.30,             // est (GI wall)
        "cartilage" => 1.50,                     // est
        "fat" | "adipose_insert" => 0.02,        // est (lipid)
        "lung" => 1.00,                          // est (little signal)
        "cancellous_bone" | "rib_bone" => 0.50,  // est (marrow)
        "cortical_bone" | "bone_insert" => 0.10, // est (no signal)
        _ => 1.20,                               // est: generic soft tissue
    }
}

/// Default lesion ADC (µm²/ms) by kind: cellular solid lesions restrict diffusion [T].
pub fn lesion_adc_um2_ms(kind: &str) -> f64 {
    match kind {
        "cyst" => 2.8,
        "tumour" => 0.90,
        "metastasis" => 1.00,
        _ => 1.10, // nodule
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orderings_radiologists_read_hold() {
        // Free fluid fastest, cellular brain slowest; GM above WM; cysts above solid tumours.
        assert!(adc_um2_ms("csf") > adc_um2_ms("kidney"));
        assert!(adc_um2_ms("grey_matter") > adc_um2_ms("white_matter"));
        assert!(adc_um2_ms("liver") > adc_um2_ms("spleen"));
        assert!(lesion_adc_um2_ms("cyst") > 2.0 * lesion_adc_um2_ms("tumour"));
        for t in crate::tissue::TISSUES {
            let d = adc_um2_ms(t.name);
            assert!((0.0..=3.0).contains(&d), "{}: {d}", t.name);
        }
    }
}
