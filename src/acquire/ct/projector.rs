//! Ray-driven forward projection (Joseph, IEEE Trans. Med. Imaging 1, 192 (1982)).
//!
//! Joseph's method steps along the ray's dominant axis one pixel plane at a time and
//! interpolates linearly (2D) or bilinearly (3D) between the pixels the ray crosses in
//! that plane; the line integral is the sum times the path length per step,
//! Δs = spacing / |cos| (Joseph eq. 4). Images are padded with one zero pixel on every side
//! so the inner loop needs no bounds tests. Several co-registered maps (the basis
//! materials) are projected in one pass: `C` channels per pixel.
//!
//! Units: pixel values × mm. For basis-density maps (g/cm³) the result is g/cm³·mm.

use rayon::prelude::*;

use super::geometry::{ConeGeometry, FanGeometry, ParallelGeometry, Plane};
use crate::volume::Grid;

/// A plane of `C`-channel pixels with a one-pixel zero border.
pub struct Padded2<const C: usize> {
    plane: Plane,
    w: usize,
    data: Vec<[f32; C]>,
}

impl<const C: usize> Padded2<C> {
    /// `img`: nx·ny pixels, x fastest.
    pub fn new(img: &[[f32; C]], plane: &Plane) -> Self {
        let (nx, ny) = (plane.nx, plane.ny);
        assert_eq!(img.len(), nx * ny, "image length must match its plane");
        let w = nx + 2;
        let mut data = vec![[0.0f32; C]; w * (ny + 2)];
        for j in 0..ny {
            data[(j + 1) * w + 1..(j + 1) * w + 1 + nx].copy_from_slice(&img[j * nx..(j + 1) * nx]);
        }
        Padded2 {
            plane: plane.clone(),
            w,
            data,
        }
    }
}

/// Indices i in [0, n−1] with −1 < c + i·m < len (the ray touches the interpolation support).
#[inline]
fn step_range(c: f64, m: f64, len: f64, n: usize) -> Option<(usize, usize)> {
    let (lo, hi) = if m.abs() < 1e-12 {
        if c > -1.0 && c < len {
            (0.0, (n - 1) as f64)
        } else {
            return None;
        }
    } else {
        let a = (-1.0 - c) / m;
        let b = (len - c) / m;
        (
            a.min(b).ceil().max(0.0),
            a.max(b).floor().min((n - 1) as f64),
        )
    };
    if lo > hi {
        None
    } else {
        Some((lo as usize, hi as usize))
    }
}

/// Line integral of each channel along the ray through `a` (mm) with unit direction `d`.
#[inline]
pub fn joseph2<const C: usize>(img: &Padded2<C>, a: [f64; 2], d: [f64; 2]) -> [f32; C] {
    let pl = &img.plane;
    let (nx, ny) = (pl.nx, pl.ny);
    // Stage 1: the ray in continuous pixel coordinates (pixel units per mm of path).
    let ax = (a[0] - pl.origin_mm[0]) / pl.spacing_mm[0];
    let ay = (a[1] - pl.origin_mm[1]) / pl.spacing_mm[1];
    let dx = d[0] / pl.spacing_mm[0];
    let dy = d[1] / pl.spacing_mm[1];
    let mut acc = [0.0f32; C];
    let w = img.w;
    let data = &img.data;
    // Stage 2: step along the dominant axis, interpolate along the other (Joseph eq. 2–4).
    let (x_major, c, m, ds, n_major, len_minor) = if dx.abs() >= dy.abs() {
        let m = dy / dx;
        (true, ay - ax * m, m, 1.0 / dx.abs(), nx, ny)
    } else {
        let m = dx / dy;
        (false, ax - ay * m, m, 1.0 / dy.abs(), ny, nx)
    };
    let Some((lo, hi)) = step_range(c, m, len_minor as f64, n_major) else {
        return acc;
    };
    let top = (len_minor + 1) as f64;
    let mut t = c + lo as f64 * m + 1.0;
    // Strides of the minor and major axes in the padded image (no branch in the loop).
    let (s_min, s_maj, off) = if x_major { (w, 1, 1) } else { (1, w, w) };
    for i in lo..=hi {
        let tc = t.clamp(0.0, top);
        let j = (tc as usize).min(len_minor);
        let f = (tc - j as f64) as f32;
        let p0 = j * s_min + i * s_maj + off;
        let (v0, v1) = (&data[p0], &data[p0 + s_min]);
        for ch in 0..C {
            acc[ch] += v0[ch] + f * (v1[ch] - v0[ch]);
        }
        t += m;
    }
    for v in acc.iter_mut() {
        *v *= ds as f32;
    }
    acc
}

/// Parallel-beam sinogram (views × detectors) of a single-channel image.
pub fn project_parallel(img: &[f32], plane: &Plane, geo: &ParallelGeometry) -> Vec<f32> {
    let img1: Vec<[f32; 1]> = img.iter().map(|&v| [v]).collect();
    let pad = Padded2::new(&img1, plane);
    let nd = geo.det_count;
    let mut out = vec![0.0f32; geo.angles_rad.len() * nd];
    out.par_chunks_mut(nd).enumerate().for_each(|(v, row)| {
        for (k, o) in row.iter_mut().enumerate() {
            let (a, d) = geo.ray(v, k);
            *o = joseph2(&pad, a, d)[0];
        }
    });
    out
}

/// Fan-beam sinogram (views × detectors) of a `C`-channel image.
pub fn project_fan<const C: usize>(
    img: &[[f32; C]],
    plane: &Plane,
    geo: &FanGeometry,
) -> Vec<[f32; C]> {
    let pad = Padded2::new(img, plane);
    let nd = geo.det_count;
    let mut out = vec![[0.0f32; C]; geo.views * nd];
    out.par_chunks_mut(nd).enumerate().for_each(|(v, row)| {
        for (k, o) in row.iter_mut().enumerate() {
            let (a, d) = geo.ray(v, k);
            *o = joseph2(&pad, a, d);
        }
    });
    out
}

/// A volume of `C`-channel voxels with a one-voxel zero border.
pub struct Padded3<const C: usize> {
    grid: Grid,
    w: usize,
    h: usize,
    data: Vec<[f32; C]>,
}

impl<const C: usize> Padded3<C> {
    pub fn new(vol: &[[f32; C]], grid: &Grid) -> Self {
        let [nx, ny, nz] = grid.dims;
        assert_eq!(vol.len(), nx * ny * nz, "volume length must match its grid");
        let (w, h) = (nx + 2, ny + 2);
        let mut data = vec![[0.0f32; C]; w * h * (nz + 2)];
        for k in 0..nz {
            for j in 0..ny {
                let dst = ((k + 1) * h + j + 1) * w + 1;
                let src = (k * ny + j) * nx;
                data[dst..dst + nx].copy_from_slice(&vol[src..src + nx]);
            }
        }
        Padded3 {
            grid: grid.clone(),
            w,
            h,
            data,
        }
    }
}

/// 3D Joseph: steps along x or y (whichever dominates; the cone angle keeps z minor),
/// bilinear in the other in-plane axis and z.
#[inline]
pub fn joseph3<const C: usize>(vol: &Padded3<C>, a: [f64; 3], d: [f64; 3]) -> ([f32; C], usize) {
    let g = &vol.grid;
    let [nx, ny, nz] = g.dims;
    let p = g.to_voxel(a);
    let dv = [0, 1, 2].map(|k| d[k] / g.spacing_mm[k]);
    let mut acc = [0.0f32; C];
    let (w, h) = (vol.w, vol.h);
    let x_major = dv[0].abs() >= dv[1].abs();
    let (maj, min) = if x_major { (0, 1) } else { (1, 0) };
    if dv[2].abs() > dv[maj].abs() {
        // Never for CT cone angles (< 45°); a ray along z would need a z-major loop.
        return (acc, 0);
    }
    let (n_major, len_minor) = if x_major { (nx, ny) } else { (ny, nx) };
    let mm = dv[min] / dv[maj];
    let mz = dv[2] / dv[maj];
    let cm = p[min] - p[maj] * mm;
    let cz = p[2] - p[maj] * mz;
    let Some((l1, h1)) = step_range(cm, mm, len_minor as f64, n_major) else {
        return (acc, 0);
    };
    let Some((l2, h2)) = step_range(cz, mz, nz as f64, n_major) else {
        return (acc, 0);
    };
    let (lo, hi) = (l1.max(l2), h1.min(h2));
    if lo > hi {
        return (acc, 0);
    }
    let ds = 1.0 / dv[maj].abs();
    let (top_m, top_z) = ((len_minor + 1) as f64, (nz + 1) as f64);
    let mut t = cm + lo as f64 * mm + 1.0;
    let mut u = cz + lo as f64 * mz + 1.0;
    let data = &vol.data;
    let (stride_min, stride_maj) = if x_major { (w, 1) } else { (1, w) };
    let stride_z = w * h;
    for i in lo..=hi {
        let tc = t.clamp(0.0, top_m);
        let uc = u.clamp(0.0, top_z);
        let j = (tc as usize).min(len_minor);
        let k = (uc as usize).min(nz);
        let f = (tc - j as f64) as f32;
        let e = (uc - k as f64) as f32;
        let base = k * stride_z + j * stride_min + (i + 1) * stride_maj;
        let (v00, v01) = (&data[base], &data[base + stride_min]);
        let (v10, v11) = (&data[base + stride_z], &data[base + stride_z + stride_min]);
        for ch in 0..C {
            let a0 = v00[ch] + f * (v01[ch] - v00[ch]);
            let a1 = v10[ch] + f * (v11[ch] - v10[ch]);
            acc[ch] += a0 + e * (a1 - a0);
        }
        t += mm;
        u += mz;
    }
    for v in acc.iter_mut() {
        *v *= ds as f32;
    }
    (acc, hi - lo + 1)
}

/// Cone-beam projections (views × rows × cols) of a `C`-channel volume; also returns the
/// number of interpolation samples taken (for throughput figures).
pub fn project_cone<const C: usize>(
    vol: &[[f32; C]],
    grid: &Grid,
    geo: &ConeGeometry,
) -> (Vec<[f32; C]>, u64) {
    let pad = Padded3::new(vol, grid);
    let per_view = geo.rows * geo.cols;
    let mut out = vec![[0.0f32; C]; geo.views * per_view];
    let samples: u64 = out
        .par_chunks_mut(per_view)
        .enumerate()
        .map(|(v, view)| {
            let mut n = 0u64;
            for r in 0..geo.rows {
                for c in 0..geo.cols {
                    let (a, d) = geo.ray(v, r, c);
                    let (li, k) = joseph3(&pad, a, d);
                    view[r * geo.cols + c] = li;
                    n += k as u64;
                }
            }
            n
        })
        .sum();
    (out, samples)
}

#[cfg(test)]
mod tests {
    use super::super::phantom::{ellipse_line_integral, rasterize_ellipses, Ellipse, SHEPP_LOGAN};
    use super::*;

    #[test]
    fn parallel_projection_matches_analytic_ellipse_line_integrals() {
        // Must-show 1: a supersampled raster of the (modified) Shepp–Logan ellipses,
        // projected; reference: the exact chord-length integrals of the ellipses. At 512²
        // the raster's own edge error (the 0.02-wide skull rim) is below 1 %; at 256² the
        // same projector gives 1.4 %, i.e. the residual is discretisation, not the projector.
        let n = 512;
        let plane = Plane::centered(n, n, [2.0 / n as f64; 2]);
        let img = rasterize_ellipses(SHEPP_LOGAN, &plane, 4);
        let geo = ParallelGeometry::half_turn(180, 727, 2.0 / n as f64);
        let sino = project_parallel(&img, &plane, &geo);
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for v in 0..geo.angles_rad.len() {
            for k in 0..geo.det_count {
                let (a, d) = geo.ray(v, k);
                let exact = ellipse_line_integral(SHEPP_LOGAN, a, d);
                let got = sino[v * geo.det_count + k] as f64;
                num += (got - exact).powi(2);
                den += exact * exact;
            }
        }
        let rel = (num / den).sqrt();
        eprintln!(
            "parallel projection vs analytic: relative L2 error {:.4} %",
            rel * 100.0
        );
        assert!(rel < 0.01);
        // A single centred disc: every ray's integral is the chord 2√(r² − t²).
        let disc: &[Ellipse] = &[Ellipse {
            value: 1.0,
            cx: 0.0,
            cy: 0.0,
            a: 0.6,
            b: 0.6,
            phi_deg: 0.0,
        }];
        let img = rasterize_ellipses(disc, &plane, 4);
        let sino = project_parallel(&img, &plane, &geo);
        let mid = geo.det_count / 2;
        let got = sino[37 * geo.det_count + mid] as f64;
        assert!(
            (got / 1.2 - 1.0).abs() < 0.005,
            "central chord {got} vs 1.2"
        );
    }

    #[test]
    fn cone_projection_of_a_uniform_slab_matches_chords() {
        // A cylinder along z (radius 40 mm, 60 mm tall) seen by the central detector row:
        // each in-plane ray's integral is the chord length.
        let grid = Grid::centered([96, 96, 24], [1.0, 1.0, 2.5]);
        let mut vol = vec![[0.0f32; 1]; grid.len()];
        for k in 0..24 {
            for j in 0..96 {
                for i in 0..96 {
                    let w = grid.world(i, j, k);
                    let mut inside = 0.0;
                    for sj in 0..4 {
                        for si in 0..4 {
                            let x = w[0] + (si as f64 - 1.5) * 0.25;
                            let y = w[1] + (sj as f64 - 1.5) * 0.25;
                            if x * x + y * y < 1600.0 {
                                inside += 1.0 / 16.0;
                            }
                        }
                    }
                    vol[grid.index(i, j, k)] = [inside as f32];
                }
            }
        }
        let geo = ConeGeometry {
            views: 4,
            sid_mm: 500.0,
            cols: 101,
            rows: 2,
            pixel_mm: 0.8,
            z_mm: 0.0,
        };
        let (p, _) = project_cone(&vol, &grid, &geo);
        let mut worst = 0.0f64;
        for c in 20..81 {
            let (a, d) = geo.ray(1, 0, c);
            // Chord of the circle x²+y²<40² along the ray's in-plane projection.
            let dn = (d[0] * d[0] + d[1] * d[1]).sqrt();
            let (ux, uy) = (d[0] / dn, d[1] / dn);
            let dist = (a[0] * uy - a[1] * ux).abs();
            let chord = 2.0 * (1600.0 - dist * dist).max(0.0).sqrt() / dn;
            let got = p[(geo.cols * 2) + c][0] as f64;
            worst = worst.max((got - chord).abs() / 80.0);
        }
        assert!(worst < 0.01, "cone chord error {worst}");
    }
}
