//! Volume magnetic susceptibility of tissues relative to water (ppm, SI), for the B0 field a
//! body makes in the scanner.
//!
//! Sources: water −9.05 ppm and air +0.36 ppm (Schenck, Med Phys 1996;23:815, table I), so air
//! is +9.41 ppm relative to water; soft tissues lie within about ±0.5 ppm of water (same
//! source, "human tissues −11 to −7 ppm" with most near water) and are taken as water; fat
//! ≈ +0.6 ppm relative to water (the value fat–water QSM models use; Hernando et al., MRM
//! 2013;70:1257 report 0.6–0.8 ppm); cortical bone ≈ −2.2 ppm relative to water (Hopkins &
//! Wehrli, MRM 1997;37:494 and later bone QSM, −2 to −2.4 ppm). Mixtures are volume-weighted:
//! inflated lung holds about 80 % air (so +7.5 ppm), cancellous bone about 30 % mineralised
//! bone in marrow (so −0.7 ppm).

/// Susceptibility of tissue class `name` (a [`super::Tissue`] name) relative to water, ppm.
pub fn chi_ppm(name: &str) -> f64 {
    const AIR: f64 = 9.41;
    const BONE: f64 = -2.2;
    match name {
        "air" => AIR,
        "lung" => 0.8 * AIR,
        "fat" | "adipose_insert" => 0.6,
        "cortical_bone" | "rib_bone" | "bone_insert" => BONE,
        "cancellous_bone" => 0.3 * BONE,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn air_and_bone_bracket_water() {
        assert!((chi_ppm("air") - (0.36 + 9.05)).abs() < 1e-12);
        assert_eq!(chi_ppm("liver"), 0.0);
        assert!(chi_ppm("lung") > 0.0 && chi_ppm("cortical_bone") < chi_ppm("cancellous_bone"));
    }
}
