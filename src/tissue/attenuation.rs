//! Mass attenuation μ/ρ(E) of the reference materials and the basis-material decomposition.
//!
//! Data: `attenuation_tables.rs` (Elam/Ravel/Sieber via xraydb, ICRU-46 mixtures; see there). Between
//! table energies μ/ρ is interpolated log–log; the iodine K-edge (33.17 keV, Deslattes et al.
//! Rev. Mod. Phys. 75, 35 (2003)) splits the interval 33–34 keV so each side is interpolated
//! (extrapolated) from its own side only.
//!
//! Basis decomposition (Alvarez & Macovski, Phys. Med. Biol. 21, 733 (1976): away from
//! K-edges μ(E) of any light material is a linear combination of two basis functions): each
//! material's μ/ρ is fitted as `a_w·(μ/ρ)_water + a_b·(μ/ρ)_bone (+ a_i·(μ/ρ)_iodine)`, so the
//! polychromatic forward model needs one line integral per basis, not one per energy.

use super::attenuation_tables::{DENSITY, MU_E0_KEV, MU_RHO, MU_RHO_MATERIALS, MU_ROWS};

/// Iodine K-edge, keV.
pub const IODINE_K_EDGE_KEV: f64 = 33.169;

/// Basis materials, in the order of [`BasisCoeffs`].
pub const BASIS: [&str; 3] = ["water", "cortical_bone", "iodine"];

/// Per-gram coefficients of a material on the basis: μ/ρ_m(E) ≈ Σ_b c[b]·μ/ρ_b(E).
pub type BasisCoeffs = [f64; 3];

/// Index of a material in the μ/ρ table.
pub fn material_index(name: &str) -> Option<usize> {
    MU_RHO_MATERIALS.iter().position(|m| *m == name)
}

/// Reference density of a material, g/cm³ (ICRU-46 / NIST).
pub fn density(name: &str) -> Option<f64> {
    material_index(name).map(|i| DENSITY[i])
}

/// All material names in the table.
pub fn material_names() -> &'static [&'static str] {
    &MU_RHO_MATERIALS
}

/// μ/ρ at an integer table energy (10..=150 keV), cm²/g.
#[inline]
pub fn mu_rho_at_kev(m: usize, kev: usize) -> f64 {
    MU_RHO[kev - MU_E0_KEV][m] as f64
}

/// μ/ρ of material `m` at `kev` (10–150 keV), cm²/g, log–log interpolated; panics only on a
/// programming error (energy out of table).
pub fn mu_rho(m: usize, kev: f64) -> f64 {
    let lo = MU_E0_KEV as f64;
    let hi = (MU_E0_KEV + MU_ROWS - 1) as f64;
    assert!(
        (lo..=hi).contains(&kev),
        "μ/ρ table covers {lo}–{hi} keV, asked {kev}"
    );
    let mut i0 = (kev.floor() as usize).min(MU_E0_KEV + MU_ROWS - 2);
    // The K-edge lies inside [33, 34]: take the two table points on the query's side.
    let has_edge = MU_RHO_MATERIALS[m].contains("iodine");
    if has_edge && kev > 33.0 && kev < 34.0 {
        i0 = if kev < IODINE_K_EDGE_KEV { 32 } else { 34 };
    }
    let (e0, e1) = (i0 as f64, i0 as f64 + 1.0);
    let (y0, y1) = (mu_rho_at_kev(m, i0).ln(), mu_rho_at_kev(m, i0 + 1).ln());
    let t = (kev.ln() - e0.ln()) / (e1.ln() - e0.ln());
    (y0 + t * (y1 - y0)).exp()
}

/// Fits a material's μ/ρ on the basis by weighted least squares over 20–140 keV (relative
/// error weighting). Materials without iodine use water + bone only (two-basis
/// Alvarez–Macovski); iodine-bearing ones use water + iodine, which is exact for
/// `iodine_water_*` mixtures away from the edge.
pub fn basis_coeffs(name: &str) -> Option<BasisCoeffs> {
    let m = material_index(name)?;
    let w = material_index(BASIS[0]).unwrap();
    let b = material_index(BASIS[1]).unwrap();
    let i = material_index(BASIS[2]).unwrap();
    if name == BASIS[0] {
        return Some([1.0, 0.0, 0.0]);
    }
    if name == BASIS[1] {
        return Some([0.0, 1.0, 0.0]);
    }
    let second = if name.contains("iodine") { i } else { b };
    // Normal equations of min Σ_E ((a·w(E) + c·s(E) − m(E)) / m(E))².
    let (mut s11, mut s12, mut s22, mut r1, mut r2) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for kev in 20..=140 {
        let y = mu_rho_at_kev(m, kev);
        let x1 = mu_rho_at_kev(w, kev) / y;
        let x2 = mu_rho_at_kev(second, kev) / y;
        s11 += x1 * x1;
        s12 += x1 * x2;
        s22 += x2 * x2;
        r1 += x1;
        r2 += x2;
    }
    let det = s11 * s22 - s12 * s12;
    let a = (r1 * s22 - r2 * s12) / det;
    let c = (s11 * r2 - s12 * r1) / det;
    Some(if second == i {
        [a, 0.0, c]
    } else {
        [a, c, 0.0]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn water_values_match_nist_xcom() {
        // NIST XCOM / Hubbell & Seltzer (NISTIR 5632) water μ/ρ: 0.2059 cm²/g at 60 keV,
        // 0.1707 at 100 keV, 0.3756 at 30 keV.
        let w = material_index("water").unwrap();
        for (e, v) in [(60.0, 0.2059), (100.0, 0.1707), (30.0, 0.3756)] {
            let r = mu_rho(w, e);
            assert!((r / v - 1.0).abs() < 0.02, "water μ/ρ({e}) = {r}, NIST {v}");
        }
    }

    #[test]
    fn loglog_interpolation_respects_the_iodine_k_edge() {
        let i = material_index("iodine").unwrap();
        let below = mu_rho(i, 33.1);
        let above = mu_rho(i, 33.2);
        // The jump ratio of iodine's K-edge is ≈ 5–6 (Hubbell & Seltzer).
        let jump = above / below;
        assert!(jump > 4.5 && jump < 7.0, "K-edge jump {jump}");
        // Log–log between table points is exact at the points and monotone off the edge.
        let w = material_index("water").unwrap();
        assert!((mu_rho(w, 70.0) - mu_rho_at_kev(w, 70)).abs() < 1e-12);
        let mid = mu_rho(w, 70.5);
        assert!(mid < mu_rho(w, 70.0) && mid > mu_rho(w, 71.0));
    }

    #[test]
    fn basis_fit_reproduces_body_materials_within_two_percent() {
        let names = ["adipose", "muscle", "lung", "blood", "liver", "pmma", "air"];
        let (w, b) = (
            material_index("water").unwrap(),
            material_index("cortical_bone").unwrap(),
        );
        let mut worst = 0.0f64;
        for n in names {
            let c = basis_coeffs(n).unwrap();
            let m = material_index(n).unwrap();
            for kev in 30..=140 {
                let fit = c[0] * mu_rho_at_kev(w, kev) + c[1] * mu_rho_at_kev(b, kev);
                worst = worst.max((fit / mu_rho_at_kev(m, kev) - 1.0).abs());
            }
        }
        eprintln!(
            "basis fit worst relative error 30–140 keV: {:.3} %",
            worst * 100.0
        );
        assert!(worst < 0.02);
        let c = basis_coeffs("iodine_water_10mg_ml").unwrap();
        // 10 mg/mL iodine in water at ρ 1.00819: iodine mass fraction 0.009919 (ICRU mixture).
        assert!((c[2] - 0.009919).abs() < 0.0005, "iodine fraction {}", c[2]);
    }
}
