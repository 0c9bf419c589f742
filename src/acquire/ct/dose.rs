//! Size-specific dose: the water-equivalent diameter of each subject (AAPM Report 220) and
//! the SSDE (AAPM Report 204) from the arm's CTDIvol, which `ctdi.rs` computes from the beam.

/// AAPM Report 204 (2011), conversion from the 32 cm phantom's CTDIvol to SSDE as a function
/// of the patient's effective (here water-equivalent) diameter x in cm: f = a·exp(−b·x).
pub const SSDE_32CM_A: f64 = 3.704369;
pub const SSDE_32CM_B: f64 = 0.03671937;

/// Water-equivalent diameter (mm) of a reconstructed CT volume, AAPM Report 220 (2014):
/// per slice A_w = Σ (HU/1000 + 1)·A_pixel over the pixels above −900 HU (the patient; air and
/// its noise excluded), D_w = 2·√(A_w/π); averaged over the slices that hold patient.
pub fn water_equivalent_diameter_mm(hu: &crate::volume::Volume<f32>) -> f64 {
    let [nx, ny, nz] = hu.grid.dims;
    let pixel = hu.grid.spacing_mm[0] * hu.grid.spacing_mm[1];
    let per_slice: Vec<f64> = (0..nz)
        .map(|k| {
            let a: f64 = hu.data[k * nx * ny..(k + 1) * nx * ny]
                .iter()
                .filter(|&&v| v > -900.0)
                .map(|&v| (f64::from(v) / 1000.0 + 1.0).max(0.0) * pixel)
                .sum();
            2.0 * (a / std::f64::consts::PI).sqrt()
        })
        .filter(|&d| d > 0.0)
        .collect();
    if per_slice.is_empty() {
        0.0
    } else {
        per_slice.iter().sum::<f64>() / per_slice.len() as f64
    }
}

/// SSDE (mGy) from the 32 cm phantom's CTDIvol and the water-equivalent diameter (mm).
pub fn ssde_mgy(ctdi_vol_32cm_mgy: f64, dw_mm: f64) -> f64 {
    ctdi_vol_32cm_mgy * SSDE_32CM_A * (-SSDE_32CM_B * dw_mm / 10.0).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn water_equivalent_diameter_of_water_and_of_a_denser_ellipse() {
        use crate::volume::{Grid, Volume};
        // A water disc of 200 mm and, on other slices, a 300 × 200 mm ellipse at +100 HU
        // (D_w = 2·√(1.1·a·b) = 2·√(1.1·150·100) mm); air −1000 HU with noise to −850.
        let g = Grid::centered([400, 400, 2], [1.0, 1.0, 5.0]);
        let mut v = Volume::filled(g.clone(), -1000.0f32);
        for idx in 0..g.len() {
            let [i, j, k] = g.ijk(idx);
            let w = g.world(i, j, k);
            let inside = if k == 0 {
                w[0] * w[0] + w[1] * w[1] < 100.0 * 100.0
            } else {
                (w[0] / 150.0).powi(2) + (w[1] / 100.0).powi(2) < 1.0
            };
            v.data[idx] = if inside {
                if k == 0 {
                    0.0
                } else {
                    100.0
                }
            } else if (i + j) % 2 == 0 {
                -950.0
            } else {
                -1000.0
            };
        }
        let mut one = v.clone();
        one.grid.dims[2] = 1;
        one.data.truncate(400 * 400);
        let d0 = water_equivalent_diameter_mm(&one);
        assert!((d0 - 200.0).abs() < 1.0, "water disc D_w {d0}");
        let d1 = 2.0 * (1.1f64 * 150.0 * 100.0).sqrt();
        let both = water_equivalent_diameter_mm(&v);
        assert!(
            (both - 0.5 * (200.0 + d1)).abs() < 1.0,
            "mean D_w {both} vs {}",
            0.5 * (200.0 + d1)
        );
    }

    #[test]
    fn ssde_follows_aapm_204() {
        // AAPM 204's fit: f(x) = 3.704369·e^(−0.03671937·x), x in cm; it falls with size and
        // crosses 1 at ≈ 35.7 cm.
        let f = |d_mm: f64| ssde_mgy(1.0, d_mm);
        assert!((f(200.0) - 3.704369 * (-0.7343874f64).exp()).abs() < 1e-9);
        assert!(f(150.0) > f(250.0) && f(250.0) > f(350.0));
        let x1 = (3.704369f64).ln() / 0.03671937;
        assert!((f(10.0 * x1) - 1.0).abs() < 1e-9 && (x1 - 35.66).abs() < 0.05);
    }
}
