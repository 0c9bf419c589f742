//! A nested-ellipsoid head (scalp fat, skull, CSF with ventricles, grey and white matter) as
//! 3 T MRI maps, for benchmarks and peer comparisons that need an object without the
//! anatomy and generator stages.

use crate::tissue::{object::MriMaps, tissue};
use crate::volume::{Grid, Volume};

/// Head-like ellipsoid phantom: tissue name at a world point (mm).
fn tissue_at(p: [f64; 3]) -> &'static str {
    let e = |a: f64, b: f64, c: f64, dx: f64| {
        ((p[0] - dx) / a).powi(2) + (p[1] / b).powi(2) + (p[2] / c).powi(2)
    };
    if e(90.0, 110.0, 70.0, 0.0) > 1.0 {
        "air"
    } else if e(84.0, 104.0, 66.0, 0.0) > 1.0 {
        "fat"
    } else if e(80.0, 100.0, 62.0, 0.0) > 1.0 {
        "cortical_bone"
    } else if e(76.0, 96.0, 58.0, 0.0) > 1.0
        || e(8.0, 30.0, 15.0, 12.0) <= 1.0
        || e(8.0, 30.0, 15.0, -12.0) <= 1.0
    {
        "csf"
    } else if e(60.0, 80.0, 45.0, 0.0) > 1.0 {
        "grey_matter"
    } else {
        "white_matter"
    }
}

/// The phantom's 3 T maps on a centred grid.
pub fn head_maps(dims: [usize; 3], spacing: [f64; 3]) -> MriMaps {
    let g = Grid::centered(dims, spacing);
    let n = g.len();
    let mut v: [Vec<f32>; 6] = std::array::from_fn(|_| vec![0f32; n]);
    #[allow(clippy::needless_range_loop)] // six parallel output arrays indexed together
    for idx in 0..n {
        let [i, j, k] = g.ijk(idx);
        let name = tissue_at(g.world(i, j, k));
        let r = tissue(name).mri_3t;
        v[0][idx] = r.pd as f32;
        v[1][idx] = r.t1_ms as f32;
        v[2][idx] = r.t2_ms as f32;
        v[3][idx] = r.t2star_ms as f32;
        v[4][idx] = (name == "fat") as u8 as f32;
        v[5][idx] = crate::tissue::diffusion::adc_um2_ms(name) as f32;
    }
    let [pd, t1_ms, t2_ms, t2star_ms, fat_fraction, adc_um2_ms] =
        v.map(|d| Volume::from_vec(g.clone(), d));
    MriMaps {
        field_t: 3.0,
        pd,
        t1_ms,
        t2_ms,
        t2star_ms,
        fat_fraction,
        adc_um2_ms,
        chi_ppm: None,
    }
}
