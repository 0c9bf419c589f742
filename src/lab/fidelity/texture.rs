//! Within-organ texture of `fidelity`: the radially averaged noise-power spectrum of
//! mean-removed axial patches and grey-level co-occurrence features, and their distances
//! from the real scan's.

use rustfft::{num_complex::Complex, FftPlanner};

/// Side of the square axial texture patches, mm; organs too thin for one patch of that size
/// inside the real scan (a lung base, half a vertebra) are measured with the smaller one.
pub(super) const PATCH_MM: f64 = 24.0;
pub(super) const SMALL_PATCH_MM: f64 = 12.0;
/// Grey levels of the co-occurrence matrix.
pub(super) const GLCM_LEVELS: usize = 32;
/// Most radial frequency bins of the NPS (cycles/mm), up to the lower Nyquist of the grids.
pub(super) const NPS_BINS: usize = 8;
/// NPS floor for the log distance (HU²·mm²): a flat organ's spectrum.
pub(super) const NPS_FLOOR: f64 = 1e-3;

/// Radially averaged NPS (HU²·mm²) of the mean-removed square axial patches wholly inside
/// `mask`, in `NPS_BINS` bins up to `f_max` cycles/mm, and how many patches it averages;
/// None without a patch.
pub(super) fn nps(
    values: &[f32],
    mask: &[bool],
    grid: &crate::volume::Grid,
    f_max: f64,
    patch_mm: f64,
) -> Option<(Vec<f64>, usize)> {
    let [nx, ny, nz] = grid.dims;
    let (dx, dy) = (grid.spacing_mm[0], grid.spacing_mm[1]);
    let n = ((patch_mm / dx.max(dy)).round() as usize).max(4);
    if n > nx || n > ny {
        return None;
    }
    let fft = FftPlanner::<f64>::new().plan_fft_forward(n);
    // Bins start at the patch's fundamental frequency and are at least one frequency step
    // wide, so every bin holds samples on any grid.
    let f_lo = 0.99 / patch_mm;
    let bins = nps_bins(f_max, patch_mm);
    let mut sum = vec![0.0; bins];
    let mut count = vec![0usize; bins];
    let mut patches = 0usize;
    let mut buf = vec![Complex::new(0.0, 0.0); n * n];
    for k in 0..nz {
        // Non-overlapping patches on a regular lattice.
        for j0 in (0..=ny - n).step_by(n) {
            for i0 in (0..=nx - n).step_by(n) {
                let inside = (0..n).all(|j| (0..n).all(|i| mask[grid.index(i0 + i, j0 + j, k)]));
                if !inside {
                    continue;
                }
                let mean = (0..n)
                    .flat_map(|j| (0..n).map(move |i| (i, j)))
                    .map(|(i, j)| values[grid.index(i0 + i, j0 + j, k)] as f64)
                    .sum::<f64>()
                    / (n * n) as f64;
                for j in 0..n {
                    for i in 0..n {
                        buf[j * n + i] =
                            Complex::new(values[grid.index(i0 + i, j0 + j, k)] as f64 - mean, 0.0);
                    }
                }
                crate::volume::fft2_square(&mut buf, n, &*fft);
                for j in 0..n {
                    for i in 0..n {
                        let fx = (if i <= n / 2 {
                            i as f64
                        } else {
                            i as f64 - n as f64
                        }) / (n as f64 * dx);
                        let fy = (if j <= n / 2 {
                            j as f64
                        } else {
                            j as f64 - n as f64
                        }) / (n as f64 * dy);
                        let f = (fx * fx + fy * fy).sqrt();
                        if f < f_lo || f >= f_max {
                            continue;
                        }
                        let b = ((f - f_lo) / (f_max - f_lo) * bins as f64) as usize;
                        // NPS = |DFT|² · Δx·Δy / (Nx·Ny)  (HU²·mm²).
                        sum[b] += buf[j * n + i].norm_sqr() * dx * dy / (n * n) as f64;
                        count[b] += 1;
                    }
                }
                patches += 1;
            }
        }
    }
    (patches > 0 && count.iter().all(|&c| c > 0)).then(|| {
        (
            sum.iter().zip(&count).map(|(s, &c)| s / c as f64).collect(),
            patches,
        )
    })
}

/// Radial bins between the patch's fundamental and `f_max` (cycles/mm).
pub(super) fn nps_bins(f_max: f64, patch_mm: f64) -> usize {
    (((f_max - 0.99 / patch_mm) * patch_mm).floor() as usize).clamp(1, NPS_BINS)
}

/// Centres (cycles/mm) of the `bins` radial bins `nps` fills between the patch's fundamental
/// and `f_max`.
pub(super) fn nps_bin_centres(f_max: f64, patch_mm: f64, bins: usize) -> Vec<f64> {
    let f_lo = 0.99 / patch_mm;
    (0..bins)
        .map(|b| f_lo + (b as f64 + 0.5) * (f_max - f_lo) / bins as f64)
        .collect()
}

/// Grey-level co-occurrence features (contrast, homogeneity, entropy in bits) of in-plane
/// neighbour pairs (x and y offsets of one voxel, both orders) lying wholly inside `mask`,
/// grey levels `GLCM_LEVELS` bins over `range` (values outside clamp to the end bins). Unlike
/// the NPS this needs no patch, so thin organs have it too. None without a pair.
pub(super) fn glcm(
    values: &[f32],
    mask: &[bool],
    grid: &crate::volume::Grid,
    range: (f64, f64),
) -> Option<[f64; 3]> {
    let [nx, ny, nz] = grid.dims;
    let width = (range.1 - range.0).max(1e-6);
    let level = |v: f32| {
        (((f64::from(v) - range.0) / width * GLCM_LEVELS as f64).floor() as isize)
            .clamp(0, GLCM_LEVELS as isize - 1) as usize
    };
    let mut m = vec![0f64; GLCM_LEVELS * GLCM_LEVELS];
    let mut pairs = 0f64;
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let a = grid.index(i, j, k);
                if !mask[a] {
                    continue;
                }
                for (di, dj) in [(1, 0), (0, 1)] {
                    let (i2, j2) = (i + di, j + dj);
                    if i2 >= nx || j2 >= ny {
                        continue;
                    }
                    let b = grid.index(i2, j2, k);
                    if mask[b] {
                        let (p, q) = (level(values[a]), level(values[b]));
                        m[p * GLCM_LEVELS + q] += 1.0;
                        m[q * GLCM_LEVELS + p] += 1.0;
                        pairs += 2.0;
                    }
                }
            }
        }
    }
    if pairs == 0.0 {
        return None;
    }
    let (mut contrast, mut homogeneity, mut entropy) = (0.0, 0.0, 0.0);
    for p in 0..GLCM_LEVELS {
        for q in 0..GLCM_LEVELS {
            let v = m[p * GLCM_LEVELS + q] / pairs;
            if v > 0.0 {
                let d = p.abs_diff(q) as f64;
                contrast += v * d * d;
                homogeneity += v / (1.0 + d);
                entropy -= v * v.log2();
            }
        }
    }
    Some([contrast, homogeneity, entropy])
}

/// Mean relative difference of the three GLCM features from the real scan's. A flat organ
/// has contrast 0, homogeneity 1 and entropy 0.
pub(super) fn glcm_distance(real: Option<[f64; 3]>, gen: Option<[f64; 3]>) -> Option<f64> {
    let (r, g) = (real?, gen?);
    Some(
        (0..3)
            .map(|k| (g[k] - r[k]).abs() / r[k].abs().max(1e-3))
            .sum::<f64>()
            / 3.0,
    )
}

/// The real organ's 1st–99th HU percentiles: the grey-level range both sides are binned in.
pub(super) fn glcm_range(hu: &[f64]) -> (f64, f64) {
    let mut v = hu.to_vec();
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((p * v.len() as f64) as usize).min(v.len() - 1)];
    (q(0.01), q(0.99))
}

pub(super) fn texture_distance(
    real: Option<&Vec<f64>>,
    gen: Option<&Vec<f64>>,
    flat: bool,
) -> Option<f64> {
    let real = real?;
    let gen: Vec<f64> = if flat {
        vec![0.0; real.len()]
    } else {
        gen?.clone()
    };
    Some(
        real.iter()
            .zip(&gen)
            .map(|(r, g)| (r.max(NPS_FLOOR).log10() - g.max(NPS_FLOOR).log10()).abs())
            .sum::<f64>()
            / real.len() as f64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Grid;

    #[test]
    fn white_noise_nps_is_flat_at_sigma_squared_times_pixel_area() {
        // White noise of SD σ on a Δ×Δ grid has NPS σ²Δ² at every frequency.
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let grid = Grid::centered([96, 96, 8], [0.8, 0.8, 2.0]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let d = Normal::new(40.0, 12.0).unwrap();
        let v: Vec<f32> = (0..grid.len()).map(|_| d.sample(&mut rng) as f32).collect();
        let mask = vec![true; grid.len()];
        let (nps, patches) = nps(&v, &mask, &grid, 0.5 / 0.8, PATCH_MM).unwrap();
        // 30-voxel patches on a non-overlapping lattice: 3 × 3 per slice, 8 slices.
        assert_eq!(patches, 72);
        let want = 12.0f64.powi(2) * 0.8 * 0.8;
        for (b, x) in nps.iter().enumerate() {
            assert!((x / want - 1.0).abs() < 0.1, "bin {b}: {x} vs {want}");
        }
        // Bin centres: one per bin, rising, between the patch's fundamental and Nyquist.
        let centres = nps_bin_centres(0.5 / 0.8, PATCH_MM, nps.len());
        assert_eq!(centres.len(), nps.len());
        assert!(centres[0] > 1.0 / PATCH_MM * 0.99 && centres[centres.len() - 1] < 0.625);
        assert!(centres.windows(2).all(|w| w[1] > w[0]));
    }

    /// A flat organ has no co-occurrence contrast and full homogeneity; alternating levels
    /// across a column give the analytic contrast.
    #[test]
    fn glcm_of_flat_and_striped_patches() {
        let grid = Grid::centered([8, 8, 1], [1.0; 3]);
        let mask = vec![true; grid.len()];
        let flat = vec![40.0f32; grid.len()];
        let f = glcm(&flat, &mask, &grid, (0.0, 100.0)).unwrap();
        assert_eq!(f[0], 0.0);
        assert!((f[1] - 1.0).abs() < 1e-12 && f[2].abs() < 1e-12);
        // Columns alternate between levels 0 and 31: x-pairs differ by 31, y-pairs by 0, so
        // contrast = ½·31² and homogeneity = ½·(1 + 1/32).
        let stripes: Vec<f32> = (0..grid.len())
            .map(|i| if (i % 8) % 2 == 0 { 0.0 } else { 99.9 })
            .collect();
        let s = glcm(&stripes, &mask, &grid, (0.0, 100.0)).unwrap();
        assert!((s[0] - 0.5 * 31.0 * 31.0).abs() < 1e-9, "{s:?}");
        assert!((s[1] - 0.5 * (1.0 + 1.0 / 32.0)).abs() < 1e-9, "{s:?}");
        assert!(glcm_distance(Some(s), Some(s)).unwrap() < 1e-12);
    }
}
