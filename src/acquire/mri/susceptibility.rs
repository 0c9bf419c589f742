//! The B0 field a body makes: the dipole field of its susceptibility map, then a linear shim.
//!
//! With B0 along z, the relative field shift of a susceptibility distribution χ (SI, ≪ 1) is,
//! in k-space, δB/B0 = (1/3 − kz²/|k|²) χ̂(k) (Salomir et al., Concepts Magn Reson B
//! 2003;19:26; Marques & Bowtell, Concepts Magn Reson B 2005;25:65), the 1/3 being the
//! Lorentz-sphere correction. The map's background (its corner: air around a body) is
//! subtracted first — a uniform χ makes no field shift, the kernel being 0 at k = 0 — and the
//! map is padded by half its size on each axis by continuing its edges.

use rayon::prelude::*;
use rustfft::{num_complex::Complex32, FftPlanner};

use crate::volume::{Grid, Volume};

/// The field shift δB/B0 in ppm on `chi`'s grid, χ in ppm; B0 along the grid's z axis.
pub fn field_shift_ppm(chi: &Volume<f32>) -> Volume<f32> {
    let dims = chi.grid.dims;
    let background = chi.data.first().copied().unwrap_or(0.0);
    // FFT-friendly padded sizes (even, ≥ 1.5 n).
    let pd = dims.map(|n| (n + n / 2).next_multiple_of(2).max(2));
    let (px, py, pz) = (pd[0], pd[1], pd[2]);
    // Padding continues each edge outwards (half the pad after the end, half before the
    // start, as the transform wraps): a body cut by the grid (a neck, a torso's ends) goes on
    // as it was instead of ending in a surface that would make a field of its own.
    let src = |i: usize, n: usize, p: usize| {
        if i < n {
            i
        } else if i - n < (p - n) / 2 {
            n - 1
        } else {
            0
        }
    };
    let mut buf = vec![Complex32::new(0.0, 0.0); px * py * pz];
    buf.par_chunks_mut(px * py)
        .enumerate()
        .for_each(|(k, plane)| {
            let sk = src(k, dims[2], pz);
            for j in 0..py {
                let sj = src(j, dims[1], py);
                for i in 0..px {
                    let v =
                        chi.data[(sk * dims[1] + sj) * dims[0] + src(i, dims[0], px)] - background;
                    plane[j * px + i] = Complex32::new(v, 0.0);
                }
            }
        });
    fft3(&mut buf, pd, false);
    // Kernel in cycles/mm (its value depends only on direction, so units cancel).
    let freq = |i: usize, n: usize, d: f64| {
        let f = if i < n.div_ceil(2) {
            i as f64
        } else {
            i as f64 - n as f64
        };
        f / (n as f64 * d)
    };
    let sp = chi.grid.spacing_mm;
    buf.par_chunks_mut(px * py)
        .enumerate()
        .for_each(|(k, plane)| {
            let kz = freq(k, pz, sp[2]);
            for j in 0..py {
                let ky = freq(j, py, sp[1]);
                for i in 0..px {
                    let kx = freq(i, px, sp[0]);
                    let k2 = kx * kx + ky * ky + kz * kz;
                    let d = if k2 == 0.0 {
                        0.0
                    } else {
                        1.0 / 3.0 - kz * kz / k2
                    };
                    plane[j * px + i] *= d as f32;
                }
            }
        });
    fft3(&mut buf, pd, true);
    let scale = 1.0 / (px * py * pz) as f32;
    let mut out = vec![0f32; chi.data.len()];
    for k in 0..dims[2] {
        for j in 0..dims[1] {
            for i in 0..dims[0] {
                out[(k * dims[1] + j) * dims[0] + i] = buf[(k * py + j) * px + i].re * scale;
            }
        }
    }
    Volume::from_vec(chi.grid.clone(), out)
}

/// In-place 3D DFT of `buf` (x fastest), unnormalised.
fn fft3(buf: &mut [Complex32], dims: [usize; 3], inverse: bool) {
    let mut planner = FftPlanner::<f32>::new();
    let [nx, ny, nz] = dims;
    let plan = |n: usize, planner: &mut FftPlanner<f32>| {
        if inverse {
            planner.plan_fft_inverse(n)
        } else {
            planner.plan_fft_forward(n)
        }
    };
    let (fx, fy, fz) = (
        plan(nx, &mut planner),
        plan(ny, &mut planner),
        plan(nz, &mut planner),
    );
    buf.par_chunks_mut(nx).for_each(|line| fx.process(line));
    // y: per z-plane, columns gathered and scattered.
    buf.par_chunks_mut(nx * ny).for_each(|plane| {
        let mut col = vec![Complex32::new(0.0, 0.0); ny];
        for i in 0..nx {
            for j in 0..ny {
                col[j] = plane[j * nx + i];
            }
            fy.process(&mut col);
            for j in 0..ny {
                plane[j * nx + i] = col[j];
            }
        }
    });
    // z: lines gathered per (x, y) in parallel, then written back.
    let plane = nx * ny;
    let lines: Vec<Vec<Complex32>> = (0..plane)
        .into_par_iter()
        .map(|q| {
            let mut l: Vec<Complex32> = (0..nz).map(|k| buf[k * plane + q]).collect();
            fz.process(&mut l);
            l
        })
        .collect();
    for (q, l) in lines.into_iter().enumerate() {
        for (k, v) in l.into_iter().enumerate() {
            buf[k * plane + q] = v;
        }
    }
}

/// Removes the least-squares constant + linear field over the voxels where `inside` holds, as
/// a scanner's first-order shim does over the imaged body; returns the shimmed field.
pub fn shim_linear(field: &Volume<f32>, inside: impl Fn(usize) -> bool) -> Volume<f32> {
    let g: &Grid = &field.grid;
    // Normal equations for f ≈ c0 + c1 x + c2 y + c3 z (coordinates in mm).
    let mut ata = nalgebra::Matrix4::<f64>::zeros();
    let mut atb = nalgebra::Vector4::<f64>::zeros();
    for (idx, &f) in field.data.iter().enumerate() {
        if !inside(idx) {
            continue;
        }
        let [i, j, k] = g.ijk(idx);
        let w = g.world(i, j, k);
        let a = nalgebra::Vector4::new(1.0, w[0], w[1], w[2]);
        ata += a * a.transpose();
        atb += a * f as f64;
    }
    let c = ata
        .try_inverse()
        .map_or(nalgebra::Vector4::zeros(), |m| m * atb);
    let data = field
        .data
        .iter()
        .enumerate()
        .map(|(idx, &f)| {
            let [i, j, k] = g.ijk(idx);
            let w = g.world(i, j, k);
            (f as f64 - c[0] - c[1] * w[0] - c[2] * w[1] - c[3] * w[2]) as f32
        })
        .collect();
    Volume::from_vec(g.clone(), data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sphere of Δχ in a uniform background: inside, no shift (the Lorentz-corrected field
    /// of a uniformly magnetised sphere); outside, Δχ/3 (a/r)³ (3 cos²θ − 1).
    #[test]
    fn sphere_field_matches_the_analytic_dipole() {
        let n = 64;
        let grid = Grid::centered([n, n, n], [1.0; 3]);
        let (a, dchi) = (8.0f64, 9.41f64);
        let chi = Volume::from_vec(
            grid.clone(),
            (0..n * n * n)
                .map(|idx| {
                    let [i, j, k] = grid.ijk(idx);
                    let w = grid.world(i, j, k);
                    if (w[0] * w[0] + w[1] * w[1] + w[2] * w[2]).sqrt() < a {
                        dchi as f32
                    } else {
                        0.0
                    }
                })
                .collect(),
        );
        let f = field_shift_ppm(&chi);
        let at = |w: [f64; 3]| {
            let v = grid.to_voxel(w).map(|c| c.round() as usize);
            f.data[(v[2] * n + v[1]) * n + v[0]] as f64
        };
        let mut worst = 0.0f64;
        for (w, label) in [
            ([0.5f64, 0.5, 0.5], "centre"),
            ([0.5, 0.5, 16.5], "pole, r = 2a"),
            ([16.5, 0.5, 0.5], "equator, r = 2a"),
            ([0.5, 12.5, 0.5], "equator, r = 1.5a"),
            ([10.5, 0.5, 10.5], "θ = 45°"),
        ] {
            let r = (w[0] * w[0] + w[1] * w[1] + w[2] * w[2]).sqrt();
            let want = if r < a {
                0.0
            } else {
                let c2 = w[2] * w[2] / (r * r);
                dchi / 3.0 * (a / r).powi(3) * (3.0 * c2 - 1.0)
            };
            let got = at(w);
            eprintln!("sphere Δχ {dchi} ppm, {label}: field {got:+.4} ppm (analytic {want:+.4})");
            worst = worst.max((got - want).abs());
        }
        // Voxelised sphere edge: within 3 % of the equatorial surface field Δχ/3.
        assert!(worst < 0.03 * dchi / 3.0, "{worst}");
    }

    #[test]
    fn linear_shim_removes_a_linear_field() {
        let grid = Grid::centered([8, 8, 8], [2.0; 3]);
        let f = Volume::from_vec(
            grid.clone(),
            (0..512)
                .map(|idx| {
                    let [i, j, k] = grid.ijk(idx);
                    let w = grid.world(i, j, k);
                    (0.3 + 0.01 * w[0] - 0.02 * w[2]) as f32
                })
                .collect(),
        );
        let s = shim_linear(&f, |_| true);
        assert!(s.data.iter().all(|v| v.abs() < 1e-5));
    }
}
