//! Smooth random deformation: Gaussian displacements on a 40 mm control lattice, interpolated
//! by a uniform cubic B-spline (Rueckert et al., IEEE TMI 1999, free-form deformation), and
//! applied as a nearest-neighbour pull-back label'(x) = label(x + d(x)) so labels stay labels.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use crate::volume::{Grid, Volume};

/// Control-point spacing (mm): coarse enough that organs bend rather than crumple.
pub(crate) const CONTROL_SPACING_MM: f64 = 40.0;

/// Per axis: for each voxel index, the first control index and the four B-spline weights.
fn axis_weights(n: usize, spacing: f64) -> (usize, Vec<(usize, [f64; 4])>) {
    let extent = (n.max(1) - 1) as f64 * spacing;
    let nc = (extent / CONTROL_SPACING_MM).floor() as usize + 4;
    let w = (0..n)
        .map(|i| {
            // Control point c sits at (c - 1)·40 mm from voxel 0, so every voxel has the
            // full 4-point support inside the lattice.
            let u = i as f64 * spacing / CONTROL_SPACING_MM + 1.0;
            let b = u.floor();
            let t = u - b;
            let t2 = t * t;
            let t3 = t2 * t;
            let w = [
                (1.0 - t).powi(3) / 6.0,
                (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0,
                (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0,
                t3 / 6.0,
            ];
            (b as usize - 1, w)
        })
        .collect();
    (nc, w)
}

/// Deforms a label map. `sd_mm` is the SD of each control-point displacement component; the
/// interpolated field's SD is about 0.6 × that (B-spline smoothing). `sd_mm == 0` returns the
/// input unchanged and draws nothing from `rng`.
pub(crate) fn deform(labels: &Volume<u16>, sd_mm: f64, rng: &mut ChaCha8Rng) -> Volume<u16> {
    let g = &labels.grid;
    let Some(ffd) = Ffd::draw(g, sd_mm, rng) else {
        return labels.clone();
    };
    let [nx, ny, nz] = g.dims;
    let mut out = Volume::filled(g.clone(), 0u16);
    out.data
        .par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(k, slice)| {
            for j in 0..ny {
                for i in 0..nx {
                    let d = ffd.at(i, j, k);
                    // Pull back from x + d; clamp at the edges so the body is not cut off.
                    let src = [
                        (i as f64 + d[0] / g.spacing_mm[0])
                            .round()
                            .clamp(0.0, (nx - 1) as f64) as usize,
                        (j as f64 + d[1] / g.spacing_mm[1])
                            .round()
                            .clamp(0.0, (ny - 1) as f64) as usize,
                        (k as f64 + d[2] / g.spacing_mm[2])
                            .round()
                            .clamp(0.0, (nz - 1) as f64) as usize,
                    ];
                    slice[i + nx * j] = labels.get(src[0], src[1], src[2]);
                }
            }
        });
    out
}

/// A drawn free-form deformation on a grid: the control displacements summed along x and y
/// for every control z-plane (so memory is one plane per control plane, not a field per
/// voxel), and the z weights per slice.
pub(crate) struct Ffd {
    nx: usize,
    ny: usize,
    axy: Vec<[f64; 3]>,
    wz: Vec<(usize, [f64; 4])>,
}

impl Ffd {
    /// Draws the control displacements; None (and nothing drawn from `rng`) when `sd_mm` is 0
    /// or the grid is empty.
    pub(crate) fn draw(g: &Grid, sd_mm: f64, rng: &mut ChaCha8Rng) -> Option<Ffd> {
        if sd_mm <= 0.0 || g.is_empty() {
            return None;
        }
        let [nx, ny, nz] = g.dims;
        let (ncx, wx) = axis_weights(nx, g.spacing_mm[0]);
        let (ncy, wy) = axis_weights(ny, g.spacing_mm[1]);
        let (ncz, wz) = axis_weights(nz, g.spacing_mm[2]);
        // Control displacements, x-fastest, 3 components each.
        let ctrl: Vec<[f64; 3]> = (0..ncx * ncy * ncz)
            .map(|_| {
                [0, 1, 2].map(|_| {
                    let v: f64 = rng.sample(StandardNormal);
                    v * sd_mm
                })
            })
            .collect();
        // Separable evaluation: along x, then y, for every control z-plane; z per voxel below.
        let mut ax = vec![[0.0; 3]; ncz * ncy * nx];
        for cz in 0..ncz {
            for cy in 0..ncy {
                for (i, (b, w)) in wx.iter().enumerate() {
                    let mut acc = [0.0; 3];
                    for (a, wa) in w.iter().enumerate() {
                        let c = ctrl[b + a + ncx * (cy + ncy * cz)];
                        for d in 0..3 {
                            acc[d] += wa * c[d];
                        }
                    }
                    ax[i + nx * (cy + ncy * cz)] = acc;
                }
            }
        }
        let mut axy = vec![[0.0; 3]; ncz * ny * nx];
        axy.par_chunks_mut(nx * ny)
            .enumerate()
            .for_each(|(cz, plane)| {
                for (j, (b, w)) in wy.iter().enumerate() {
                    for i in 0..nx {
                        let mut acc = [0.0; 3];
                        for (a, wa) in w.iter().enumerate() {
                            let c = ax[i + nx * (b + a + ncy * cz)];
                            for d in 0..3 {
                                acc[d] += wa * c[d];
                            }
                        }
                        plane[i + nx * j] = acc;
                    }
                }
            });
        Some(Ffd { nx, ny, axy, wz })
    }

    /// Displacement (mm) at voxel (i, j, k).
    #[inline]
    pub(crate) fn at(&self, i: usize, j: usize, k: usize) -> [f64; 3] {
        let (b, w) = self.wz[k];
        let mut d = [0.0; 3];
        for (c, wc) in w.iter().enumerate() {
            let v = self.axy[i + self.nx * (j + self.ny * (b + c))];
            for a in 0..3 {
                d[a] += wc * v[a];
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn bspline_weights_partition_unity() {
        let (_, w) = axis_weights(50, 3.0);
        for (_, ws) in w {
            assert!((ws.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn zero_is_identity_and_nonzero_moves_a_boundary_smoothly() {
        let g = Grid::centered([40, 40, 20], [2.0, 2.0, 3.0]);
        let mut v = Volume::filled(g.clone(), 0u16);
        for (idx, x) in v.data.iter_mut().enumerate() {
            let p = g.world(g.ijk(idx)[0], g.ijk(idx)[1], g.ijk(idx)[2]);
            if p[0] < 0.0 {
                *x = 1;
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(deform(&v, 0.0, &mut rng), v);
        let d = deform(&v, 6.0, &mut rng);
        assert_ne!(d, v);
        // Label counts change only modestly: the field is smooth and small.
        let c0 = v.data.iter().filter(|&&x| x == 1).count() as f64;
        let c1 = d.data.iter().filter(|&&x| x == 1).count() as f64;
        assert!((c1 / c0 - 1.0).abs() < 0.25, "{c0} vs {c1}");
    }
}
