//! CTDIvol estimate.
//!
//! CTDIvol = CTDIw / pitch (IEC 60601-2-44); axial contiguous scanning has pitch 1. The 32 cm
//! body phantom's CTDIw at 120 kV is ≈ 7 mGy per 100 mAs on 64-slice scanners (ImPACT CT
//! scanner comparison reports; AAPM Report 96 (2008) tabulates 6–9 mGy/100 mAs), linear in
//! mAs, and rises with tube voltage roughly as kV^2.5 (Huda et al., Radiology 217, 430
//! (2000): output and dose ∝ kV^2–2.5 at fixed mAs).

/// Body-phantom CTDIw per 100 mAs at 120 kV, mGy.
pub const CTDI_W_120KV_PER_100MAS_MGY: f64 = 7.0;
/// Exponent of the kV dependence.
pub const KV_EXPONENT: f64 = 2.5;

/// CTDIvol (mGy) of an axial or circular scan at `kvp` and `mas` per rotation.
pub fn ctdi_vol_mgy(kvp: f64, mas: f64) -> f64 {
    CTDI_W_120KV_PER_100MAS_MGY * (mas / 100.0) * (kvp / 120.0).powf(KV_EXPONENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_in_mas_and_rising_with_kvp() {
        assert!((ctdi_vol_mgy(120.0, 100.0) - 7.0).abs() < 1e-12);
        assert!((ctdi_vol_mgy(120.0, 200.0) / ctdi_vol_mgy(120.0, 50.0) - 4.0).abs() < 1e-12);
        let r = ctdi_vol_mgy(80.0, 100.0) / ctdi_vol_mgy(120.0, 100.0);
        assert!(r > 0.3 && r < 0.45, "80/120 kV ratio {r}");
    }
}
