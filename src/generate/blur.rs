//! Separable Gaussian filtering of volumes (texture correlation, partial-volume smoothing).

use rayon::prelude::*;

use crate::volume::Grid;

/// Normalised 1D Gaussian taps for an SD of `sigma_vox` voxels (radius 3σ).
pub fn kernel(sigma_vox: f64) -> Vec<f32> {
    let r = (3.0 * sigma_vox).ceil().max(1.0) as i64;
    let w: Vec<f64> = (-r..=r)
        .map(|d| (-0.5 * (d as f64 / sigma_vox).powi(2)).exp())
        .collect();
    let s: f64 = w.iter().sum();
    w.iter().map(|x| (x / s) as f32).collect()
}

/// Gaussian blur with per-axis SD in mm; axes whose SD is under 0.2 voxel are left alone.
/// Edges replicate the border voxel. Deterministic whatever the thread count (each output
/// voxel is one fixed-order sum).
pub fn gaussian(data: &mut Vec<f32>, grid: &Grid, sigma_mm: [f64; 3]) {
    for (axis, sd) in sigma_mm.iter().enumerate() {
        let s = sd / grid.spacing_mm[axis];
        if s < 0.2 || grid.dims[axis] < 2 {
            continue;
        }
        let k = kernel(s);
        *data = pass(data, grid.dims, axis, &k);
    }
}

/// SD of white unit-variance noise after [`gaussian`] with the same arguments, so callers
/// can rescale texture to unit SD.
pub fn noise_gain(grid: &Grid, sigma_mm: [f64; 3]) -> f64 {
    let mut g = 1.0;
    for (axis, sd) in sigma_mm.iter().enumerate() {
        let s = sd / grid.spacing_mm[axis];
        if s < 0.2 || grid.dims[axis] < 2 {
            continue;
        }
        g *= kernel(s).iter().map(|w| (*w as f64).powi(2)).sum::<f64>();
    }
    g.sqrt()
}

fn pass(src: &[f32], dims: [usize; 3], axis: usize, k: &[f32]) -> Vec<f32> {
    let [nx, ny, nz] = dims;
    let r = (k.len() / 2) as i64;
    let mut out = vec![0.0f32; src.len()];
    match axis {
        0 => out
            .par_chunks_mut(nx)
            .zip(src.par_chunks(nx))
            .for_each(|(o, row)| {
                for (i, ov) in o.iter_mut().enumerate() {
                    let mut acc = 0.0f32;
                    for (t, w) in k.iter().enumerate() {
                        let ii = (i as i64 + t as i64 - r).clamp(0, nx as i64 - 1) as usize;
                        acc += w * row[ii];
                    }
                    *ov = acc;
                }
            }),
        1 => out
            .par_chunks_mut(nx * ny)
            .zip(src.par_chunks(nx * ny))
            .for_each(|(o, slab)| {
                for j in 0..ny {
                    let orow = &mut o[j * nx..(j + 1) * nx];
                    for (t, w) in k.iter().enumerate() {
                        let jj = (j as i64 + t as i64 - r).clamp(0, ny as i64 - 1) as usize;
                        let irow = &slab[jj * nx..(jj + 1) * nx];
                        for (ov, iv) in orow.iter_mut().zip(irow) {
                            *ov += w * iv;
                        }
                    }
                }
            }),
        _ => {
            let n = nx * ny;
            out.par_chunks_mut(n).enumerate().for_each(|(kz, o)| {
                for (t, w) in k.iter().enumerate() {
                    let kk = (kz as i64 + t as i64 - r).clamp(0, nz as i64 - 1) as usize;
                    let islab = &src[kk * n..(kk + 1) * n];
                    for (ov, iv) in o.iter_mut().zip(islab) {
                        *ov += w * iv;
                    }
                }
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_preserves_constants_and_mass() {
        let g = Grid::centered([16, 12, 10], [1.0, 2.0, 1.5]);
        let mut c = vec![3.0f32; g.len()];
        gaussian(&mut c, &g, [2.0, 2.0, 2.0]);
        assert!(c.iter().all(|v| (v - 3.0).abs() < 1e-5));
    }

    #[test]
    fn impulse_response_has_the_requested_sd() {
        // The blurred impulse is the kernel itself: its second moment is σ² (in voxels²).
        let g = Grid::centered([41, 1, 1], [1.0; 3]);
        let mut d = vec![0.0f32; 41];
        d[20] = 1.0;
        gaussian(&mut d, &g, [3.0, 0.0, 0.0]);
        let var: f64 = d
            .iter()
            .enumerate()
            .map(|(i, v)| (*v as f64) * (i as f64 - 20.0).powi(2))
            .sum();
        assert!((var.sqrt() - 3.0).abs() < 0.05, "{}", var.sqrt());
    }

    #[test]
    fn noise_gain_predicts_blurred_white_noise_sd() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let g = Grid::centered([64, 64, 32], [1.0; 3]);
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut d: Vec<f32> = (0..g.len())
            .map(|_| StandardNormal.sample(&mut r))
            .collect();
        gaussian(&mut d, &g, [2.0; 3]);
        // Interior only: replicated edges correlate the border voxels.
        let inner: Vec<f64> = (0..g.len())
            .filter(|&i| {
                let [x, y, z] = g.ijk(i);
                (6..58).contains(&x) && (6..58).contains(&y) && (6..26).contains(&z)
            })
            .map(|i| d[i] as f64)
            .collect();
        let n = inner.len() as f64;
        let mean = inner.iter().sum::<f64>() / n;
        let sd = (inner.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let predicted = noise_gain(&g, [2.0; 3]);
        assert!((sd / predicted - 1.0).abs() < 0.1, "{sd} vs {predicted}");
    }
}
