//! Visceral fat from BMI on an atlas: the torso (visceral + intermuscular) fat is inflated in
//! place per subject, so that it keeps the atlas's ratio to the subcutaneous fat.
//!
//! Why that rule: in the Framingham MDCT study the subcutaneous-to-visceral fat volume ratio
//! does not depend on BMI (Maurovich-Horvat et al., Int J Obes 2007;31:500: men 1.2 ± 0.5,
//! women 2.2 ± 0.9, no association with BMI), so when the subcutaneous band grows with BMI the
//! visceral fat grows by the same volume factor.
//!
//! How: in each axial plane the fat is a source of area. The velocity field v = ∇φ with
//! ∇²φ = ρ (ρ: the fraction of a 3 mm cell that is fat away from the fat's border) has
//! divergence ρ: it spreads fat and is divergence-free everywhere else, so what it carries
//! along (organs, muscle, the subcutaneous band) moves outward without growing. A subject's map
//! is the flow of u·v (its exponential, by scaling and squaring), a diffeomorphism: smooth,
//! invertible, never folding. Fat carried out of its source cells stops growing, so the fat's
//! growth is measured on the atlas at a few amounts and u is solved from the band's growth by
//! interpolation (see [`Visceral::amount`]). In the subject's pull-back this stage sits before
//! the band's, so it acts on the atlas's interior as measured. Organs that straddle fat cells
//! gain a little (measured at the same probes); the organs with a norm are held to it by the
//! organ bumps.
//!
//! Limits, both measured (README, "Anatomy: how real it is"): only inflation — a deflating
//! flow draws the tissue beside the fat into the fat's fixed source cells and shrinks it too —
//! so subjects leaner than the atlas's patient keep his visceral fat; and u stops at 2 (fat
//! × 1.85), where the growth saturates while the body keeps widening.
//!
//! φ is solved with periodic FFTs on a square 1.25 × the atlas's width plus margins, its mean
//! source removed (the far air compresses by that mean, a fraction of a percent).

use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

use super::habitus::{Habitus, RAYS};
use crate::volume::{fft2_square, Volume};

/// Flow cell (mm) in-plane, at least the atlas voxel: fine enough that a cell holding fat
/// seldom holds much of an organ (they inflate with it).
const CELL_MM: f64 = 3.0;
/// Flow planes (mm) apart, at least the atlas's slices.
const PLANE_MM: f64 = 6.0;
/// The field is kept this far (mm) beyond the body's bounding box; beyond, the edge
/// displacement is held.
const MARGIN_MM: f64 = 60.0;
/// Flow amounts outside this are clamped. Only inflation: a deflating flow draws the tissue
/// around the fat into the fat's (fixed) source cells, which then shrink it too.
const AMOUNT_RANGE: [f64; 2] = [0.0, 2.0];
/// The amounts at which the fat's growth is measured on the atlas (inflated fat flows out of
/// its source cells and slows, so growth is not linear in u).
const PROBES: [f64; 2] = [1.0, 2.0];

/// An atlas's visceral fat flow field.
#[derive(Clone, Debug)]
pub struct Visceral {
    /// Field grid: origin of sample (0, 0, 0) (mm), in-plane cell and plane spacing, sizes.
    origin: [f64; 3],
    cell: f64,
    dz: f64,
    dims: [usize; 3],
    /// Velocity (mm per unit amount), index `(k·ny + j)·nx + i`.
    vel: Vec<[f32; 2]>,
    /// Largest |∂v_a/∂x_b| over the field (1 per unit amount).
    max_gradient: f64,
    /// Subcutaneous band area as f·s0 + f²·s1/2 (the atlas's: s0 + s1/2), from the band rays.
    sat: [f64; 2],
    /// Probe amounts u (ascending, 0 first) and, per probe, the ln of the growth of the fat
    /// (entry 0) and of each organ asked for (entries 1…), counted on the atlas's grid.
    probes: Vec<f64>,
    growth: Vec<Vec<f64>>,
}

/// A subject's pull-back through the flow: displacements on the field grid.
#[derive(Clone, Debug)]
pub struct VisceralWarp<'a> {
    field: &'a Visceral,
    disp: Vec<[f32; 2]>,
}

impl Visceral {
    /// Solves the flow field of label `fat` on `labels`; None when the map has no such fat or
    /// no subcutaneous band to follow.
    /// `organs`: labels whose growth under the flow is measured too (see [`Visceral::ln_growth`]).
    pub fn measure(
        labels: &Volume<u16>,
        habitus: &Habitus,
        fat: u16,
        organs: &[u16],
    ) -> Option<Visceral> {
        let g = &labels.grid;
        if habitus.slices() != g.dims[2] || !labels.data.contains(&fat) {
            return None;
        }
        let sat = band_area_terms(habitus, g.dims[2]);
        if sat[0] + 0.5 * sat[1] <= 0.0 {
            return None;
        }
        let sq = Square::for_atlas(g);
        let rho = source_fraction(labels, fat, &sq);
        let (lo, hi) = sq.window(&body_box(labels));
        let (nx, ny) = (hi[0] - lo[0] + 1, hi[1] - lo[1] + 1);
        let vel = solve_velocity(&rho, &sq, lo, [nx, ny]);
        let mut field = Visceral {
            origin: [
                sq.origin[0] + lo[0] as f64 * sq.cell,
                sq.origin[1] + lo[1] as f64 * sq.cell,
                g.origin_mm[2] + 0.5 * (sq.per_plane - 1) as f64 * g.spacing_mm[2],
            ],
            cell: sq.cell,
            dz: sq.per_plane as f64 * g.spacing_mm[2],
            dims: [nx, ny, sq.planes],
            max_gradient: max_gradient(&vel, [nx, ny, sq.planes], sq.cell),
            vel,
            sat,
            probes: Vec::new(),
            growth: Vec::new(),
        };
        let ids: Vec<u16> = std::iter::once(fat).chain(organs.iter().copied()).collect();
        let (probes, growth) = field.probe_growth(labels, &ids);
        // A fat growth that does not rise with the amount (a map whose fat barely answers)
        // has nothing to solve for.
        if growth.windows(2).any(|w| w[1][0] <= w[0][0]) {
            return None;
        }
        field.probes = probes;
        field.growth = growth;
        Some(field)
    }

    /// How much each of `ids` grows (ln of its voxel count on the atlas's grid) at each probe
    /// amount; the first row is u = 0.
    fn probe_growth(&self, labels: &Volume<u16>, ids: &[u16]) -> (Vec<f64>, Vec<Vec<f64>>) {
        let g = &labels.grid;
        let count = |map: &(dyn Fn([f64; 3]) -> [f64; 3] + Sync)| -> Vec<f64> {
            (0..g.dims[2])
                .into_par_iter()
                .map(|k| {
                    let mut n = vec![0usize; ids.len()];
                    for j in 0..g.dims[1] {
                        for i in 0..g.dims[0] {
                            let l = labels.sample_nearest(map(g.world(i, j, k)));
                            if let Some(x) = ids.iter().position(|&id| Some(id) == l) {
                                n[x] += 1;
                            }
                        }
                    }
                    n
                })
                .reduce(
                    || vec![0; ids.len()],
                    |a, b| a.iter().zip(&b).map(|(x, y)| x + y).collect(),
                )
                .into_iter()
                .map(|n| n.max(1) as f64)
                .collect()
        };
        let before = count(&|p| p);
        let mut probes = vec![0.0];
        let mut growth = vec![vec![0.0; ids.len()]];
        for &u in &PROBES {
            let warp = self.warp(u);
            let after = count(&|p| warp.pull_back(p));
            probes.push(u);
            growth.push(
                after
                    .iter()
                    .zip(&before)
                    .map(|(a, b)| (a / b).ln())
                    .collect(),
            );
        }
        (probes, growth)
    }

    /// The flow amount u for a subcutaneous band `f` times the atlas's: the fat grows by the
    /// band's area factor (the measured growth interpolated, extrapolated past the probes
    /// along the end segments).
    pub fn amount(&self, f: f64) -> f64 {
        if f == 1.0 {
            return 0.0;
        }
        let [s0, s1] = self.sat;
        let target = ((f * s0 + 0.5 * f * f * s1) / (s0 + 0.5 * s1))
            .max(1e-3)
            .ln();
        if target <= 0.0 {
            return 0.0;
        }
        let (p, g) = (&self.probes, &self.growth);
        let seg = (0..p.len() - 1)
            .position(|s| target <= g[s + 1][0])
            .unwrap_or(p.len() - 2);
        let u = p[seg] + (target - g[seg][0]) * (p[seg + 1] - p[seg]) / (g[seg + 1][0] - g[seg][0]);
        u.clamp(AMOUNT_RANGE[0], AMOUNT_RANGE[1])
    }

    /// ln of the growth of entry `which` (0: the fat, i: the i-th organ measured) at amount u,
    /// interpolated between the probes.
    pub fn ln_growth(&self, which: usize, u: f64) -> f64 {
        let p = &self.probes;
        if which >= self.growth[0].len() || u <= 0.0 {
            return 0.0;
        }
        let seg = (0..p.len() - 1)
            .position(|s| u <= p[s + 1])
            .unwrap_or(p.len() - 2);
        let w = (u - p[seg]) / (p[seg + 1] - p[seg]);
        let (a, b) = (self.growth[seg][which], self.growth[seg + 1][which]);
        a + w * (b - a)
    }

    /// The pull-back of the flow of `u`·v: the displacement field of exp(−u·v) by scaling and
    /// squaring (steps small against a cell, so each composition stays invertible).
    pub fn warp(&self, u: f64) -> VisceralWarp<'_> {
        // The first step is a small deformation: its largest velocity gradient times the step
        // at most 1/4, so x ↦ x + step·v is invertible and each squaring keeps it so.
        let squarings =
            ((4.0 * u.abs() * self.max_gradient).max(1.0).log2().ceil() as i32).clamp(1, 20);
        let s = (-u / f64::from(1u32 << squarings)) as f32;
        let mut disp: Vec<[f32; 2]> = self.vel.iter().map(|v| [v[0] * s, v[1] * s]).collect();
        let mut next = disp.clone();
        let [nx, ny, _] = self.dims;
        let inv_cell = 1.0 / self.cell;
        for _ in 0..squarings {
            next.par_chunks_mut(nx * ny)
                .zip(disp.par_chunks(nx * ny))
                .for_each(|(out, plane)| {
                    for j in 0..ny {
                        for i in 0..nx {
                            let d = plane[j * nx + i];
                            let at = bilinear(
                                plane,
                                nx,
                                ny,
                                i as f64 + f64::from(d[0]) * inv_cell,
                                j as f64 + f64::from(d[1]) * inv_cell,
                            );
                            out[j * nx + i] = [d[0] + at[0], d[1] + at[1]];
                        }
                    }
                });
            std::mem::swap(&mut disp, &mut next);
        }
        VisceralWarp { field: self, disp }
    }
}

impl VisceralWarp<'_> {
    /// Where a point of the inflated frame comes from.
    #[inline]
    pub fn pull_back(&self, q: [f64; 3]) -> [f64; 3] {
        let f = self.field;
        let [nx, ny, nz] = f.dims;
        let uz = ((q[2] - f.origin[2]) / f.dz).clamp(0.0, (nz - 1) as f64);
        let k0 = uz.floor() as usize;
        let k1 = (k0 + 1).min(nz - 1);
        let w = uz - k0 as f64;
        let (x, y) = ((q[0] - f.origin[0]) / f.cell, (q[1] - f.origin[1]) / f.cell);
        let plane = |k: usize| &self.disp[k * nx * ny..(k + 1) * nx * ny];
        let a = bilinear(plane(k0), nx, ny, x, y);
        let b = bilinear(plane(k1), nx, ny, x, y);
        [
            q[0] + f64::from(a[0]) + w * f64::from(b[0] - a[0]),
            q[1] + f64::from(a[1]) + w * f64::from(b[1] - a[1]),
            q[2],
        ]
    }
}

/// The FFT square the flow is solved on, and how atlas voxels fall into its cells and planes.
struct Square {
    /// Cells per side (a power of two), cell size (mm), centre of cell (0, 0) (mm).
    n: usize,
    cell: f64,
    origin: [f64; 2],
    /// Atlas slices per flow plane, and planes.
    per_plane: usize,
    planes: usize,
}

impl Square {
    fn for_atlas(g: &crate::volume::Grid) -> Square {
        let cell = CELL_MM.max(g.spacing_mm[0]).max(g.spacing_mm[1]);
        let per_plane = ((PLANE_MM / g.spacing_mm[2]).round() as usize).max(1);
        let ext = g.extent_mm();
        // The atlas and the margin with room to spare: the periodic images of the fat then
        // sit a body width or more away (their pull is a gentle, near-uniform drift; it adds
        // no divergence).
        let n = ((1.25 * (ext[0].max(ext[1]) + 2.0 * MARGIN_MM) / cell).ceil() as usize)
            .next_power_of_two();
        let centre =
            [0, 1].map(|a| g.origin_mm[a] + 0.5 * (g.dims[a] - 1) as f64 * g.spacing_mm[a]);
        Square {
            n,
            cell,
            origin: [0, 1].map(|a| centre[a] - 0.5 * (n - 1) as f64 * cell),
            per_plane,
            planes: g.dims[2].div_ceil(per_plane),
        }
    }

    /// The cell index along axis `a` (0: x, 1: y) of a coordinate (mm).
    fn cell_of(&self, x: f64, a: usize) -> usize {
        (((x - self.origin[a]) / self.cell).round().max(0.0) as usize).min(self.n - 1)
    }

    /// The cells kept: an in-plane box (min, max corners, mm) plus the margin, inside the
    /// square; (first, last) cell per axis.
    fn window(&self, bb: &[[f64; 2]; 2]) -> ([usize; 2], [usize; 2]) {
        let lo = [0, 1].map(|a| self.cell_of(bb[0][a] - MARGIN_MM, a));
        let hi = [0, 1].map(|a| self.cell_of(bb[1][a] + MARGIN_MM, a).max(lo[a]));
        (lo, hi)
    }
}

/// Per plane and square cell, the fraction of atlas voxels that are fat away from the fat's
/// border. Only fat whose in-plane neighbours are fat too is a source: the flow's expansion
/// then starts a voxel away from what the fat borders, so the half voxel that
/// nearest-neighbour sampling gives each side of a boundary is not what gets stretched.
fn source_fraction(labels: &Volume<u16>, fat: u16, sq: &Square) -> Vec<f32> {
    let g = &labels.grid;
    let [anx, any, anz] = g.dims;
    let n = sq.n;
    let mut rho = vec![0f32; sq.planes * n * n];
    let mut count = vec![0u32; sq.planes * n * n];
    for k in 0..anz {
        let kz = k / sq.per_plane;
        for j in 0..any {
            for i in 0..anx {
                let p = g.world(i, j, k);
                let c = (kz * n + sq.cell_of(p[1], 1)) * n + sq.cell_of(p[0], 0);
                count[c] += 1;
                let interior = labels.get(i, j, k) == fat
                    && i > 0
                    && j > 0
                    && i + 1 < anx
                    && j + 1 < any
                    && [(i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)]
                        .iter()
                        .all(|&(a, b)| labels.get(a, b, k) == fat);
                if interior {
                    rho[c] += 1.0;
                }
            }
        }
    }
    for (r, &c) in rho.iter_mut().zip(&count) {
        if c > 0 {
            *r /= c as f32;
        }
    }
    rho
}

/// The in-plane bounding box (min, max corners, mm) of every non-zero label.
fn body_box(labels: &Volume<u16>) -> [[f64; 2]; 2] {
    let g = &labels.grid;
    let mut bb = [[f64::INFINITY; 2], [f64::NEG_INFINITY; 2]];
    for (idx, &l) in labels.data.iter().enumerate() {
        if l != 0 {
            let [i, j, k] = g.ijk(idx);
            let p = g.world(i, j, k);
            for a in 0..2 {
                bb[0][a] = bb[0][a].min(p[a]);
                bb[1][a] = bb[1][a].max(p[a]);
            }
        }
    }
    bb
}

/// v = ∇φ with ∇²φ = ρ − mean(ρ) per plane (periodic, spectral), kept on the window of `size`
/// cells from cell `lo`.
fn solve_velocity(rho: &[f32], sq: &Square, lo: [usize; 2], size: [usize; 2]) -> Vec<[f32; 2]> {
    let (n, cell) = (sq.n, sq.cell);
    let [nx, ny] = size;
    let mut planner = FftPlanner::<f32>::new();
    let fwd = planner.plan_fft_forward(n);
    let inv = planner.plan_fft_inverse(n);
    let freq = |m: usize| {
        let f = if m < n / 2 {
            m as f64
        } else {
            m as f64 - n as f64
        };
        std::f64::consts::TAU * f / (n as f64 * cell)
    };
    let mut vel = vec![[0f32; 2]; sq.planes * nx * ny];
    vel.par_chunks_mut(nx * ny)
        .zip(rho.par_chunks(n * n))
        .for_each(|(out, src)| {
            let mean = src.iter().map(|&v| f64::from(v)).sum::<f64>() / (n * n) as f64;
            let mut a: Vec<Complex<f32>> = src
                .iter()
                .map(|&v| Complex::new((f64::from(v) - mean) as f32, 0.0))
                .collect();
            fft2_square(&mut a, n, &*fwd);
            // v̂ = i·k·φ̂ with φ̂ = −ρ̂/|k|². Both components are real, so one inverse
            // transform carries them: v̂x + i·v̂y comes back as vx + i·vy.
            for jy in 0..n {
                for ix in 0..n {
                    let (kx, ky) = (freq(ix), freq(jy));
                    let k2 = kx * kx + ky * ky;
                    let idx = jy * n + ix;
                    a[idx] = if k2 == 0.0 {
                        Complex::new(0.0, 0.0)
                    } else {
                        let r = a[idx];
                        let i_r = Complex::new(-r.im, r.re);
                        let vx = i_r * (-kx / k2) as f32;
                        let vy = i_r * (-ky / k2) as f32;
                        vx + Complex::new(-vy.im, vy.re)
                    };
                }
            }
            fft2_square(&mut a, n, &*inv);
            let norm = 1.0 / (n * n) as f32;
            for j in 0..ny {
                for i in 0..nx {
                    let c = a[(j + lo[1]) * n + i + lo[0]];
                    out[j * nx + i] = [c.re * norm, c.im * norm];
                }
            }
        });
    vel
}

/// The subcutaneous band's area terms over every slice and ray: Σ t·fascia and Σ t², t the
/// band's thickness, so a band f times as thick has area f·s0 + f²·s1/2.
fn band_area_terms(habitus: &Habitus, slices: usize) -> [f64; 2] {
    let mut sat = [0.0; 2];
    for k in 0..slices {
        for ray in 0..RAYS {
            let (fascia, skin) = habitus.band_of(k, ray);
            let t = (skin - fascia).max(0.0);
            sat[0] += t * fascia;
            sat[1] += t * t;
        }
    }
    sat
}

/// Largest in-plane velocity gradient component (central differences).
fn max_gradient(vel: &[[f32; 2]], dims: [usize; 3], cell: f64) -> f64 {
    let [nx, ny, nz] = dims;
    let mut g = 0.0f64;
    for k in 0..nz {
        let plane = &vel[k * nx * ny..(k + 1) * nx * ny];
        for j in 1..ny.saturating_sub(1) {
            for i in 1..nx.saturating_sub(1) {
                let (e, w) = (plane[j * nx + i + 1], plane[j * nx + i - 1]);
                let (n, s) = (plane[(j + 1) * nx + i], plane[(j - 1) * nx + i]);
                let d = [e[0] - w[0], e[1] - w[1], n[0] - s[0], n[1] - s[1]];
                let m = d.iter().fold(0f32, |a, v| a.max(v.abs()));
                g = g.max(f64::from(m) / (2.0 * cell));
            }
        }
    }
    g
}

/// Bilinear sample of a 2-component plane at fractional cell (x, y), held at the edges.
#[inline]
fn bilinear(p: &[[f32; 2]], nx: usize, ny: usize, x: f64, y: f64) -> [f32; 2] {
    let x = x.clamp(0.0, (nx - 1) as f64);
    let y = y.clamp(0.0, (ny - 1) as f64);
    let (i0, j0) = (x.floor() as usize, y.floor() as usize);
    let (i1, j1) = ((i0 + 1).min(nx - 1), (j0 + 1).min(ny - 1));
    let (wx, wy) = ((x - i0 as f64) as f32, (y - j0 as f64) as f32);
    let at = |i: usize, j: usize| p[j * nx + i];
    let mix =
        |a: [f32; 2], b: [f32; 2], w: f32| [a[0] + w * (b[0] - a[0]), a[1] + w * (b[1] - a[1])];
    mix(
        mix(at(i0, j0), at(i1, j0), wx),
        mix(at(i0, j1), at(i1, j1), wx),
        wy,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Grid;

    /// A disc: muscle core (r < 20), visceral fat ring (20–40), muscle wall (40–50),
    /// subcutaneous fat (50–70). Inflating the fat moves the wall out and keeps its area
    /// (divergence-free outside fat); the core keeps its area; the fat grows by the band's
    /// area factor at the solved amount; and the map never folds.
    #[test]
    fn inflates_fat_in_place_and_follows_the_band() {
        let g = Grid::centered([140, 140, 3], [1.5, 1.5, 6.0]);
        let mut v = Volume::filled(g.clone(), 0u16);
        for idx in 0..g.len() {
            let [i, j, k] = g.ijk(idx);
            let p = g.world(i, j, k);
            let r = p[0].hypot(p[1]);
            v.data[idx] = match r {
                r if r <= 20.0 => 1,
                r if r <= 40.0 => 5,
                r if r <= 50.0 => 2,
                r if r <= 70.0 => 3,
                _ => 0,
            };
        }
        let h = Habitus::measure(&v, 3);
        let vis = Visceral::measure(&v, &h, 5, &[1, 2]).expect("torso fat present");
        let counts = |u: f64| {
            let w = vis.warp(u);
            let mut n = [0usize; 6];
            for idx in 0..g.len() {
                let [i, j, k] = g.ijk(idx);
                n[usize::from(v.sample_nearest(w.pull_back(g.world(i, j, k))).unwrap_or(0))] += 1;
            }
            n
        };
        let base = counts(0.0);
        for f in [1.3f64, 1.8] {
            let u = vis.amount(f);
            assert!(u > 0.0 && u <= AMOUNT_RANGE[1], "f {f}: u {u}");
            let n = counts(u);
            let want = ((50.0 + 20.0 * f).powi(2) - 2500.0) / (70.0f64.powi(2) - 2500.0);
            let got = n[5] as f64 / base[5] as f64;
            assert!(
                (got / want - 1.0).abs() < 0.1,
                "f {f}: fat ×{got:.3}, band ×{want:.3}"
            );
            // The core (inside the ring: no field) and the wall (carried out, divergence-free)
            // keep their area to the voxels that straddle the fat; what they do gain is what
            // the organ bumps take back, so the interpolated probes must predict it.
            for (x, l) in [(1usize, 1usize), (2, 2)] {
                let r = n[l] as f64 / base[l] as f64;
                assert!((r - 1.0).abs() < 0.15, "f {f}: label {l} ×{r:.3}");
                let predicted = vis.ln_growth(x, u).exp();
                assert!(
                    (r / predicted - 1.0).abs() < 0.08,
                    "f {f}: label {l} ×{r:.3} vs {predicted:.3}"
                );
            }
        }
        // Leaner than the atlas: no deflation (see AMOUNT_RANGE).
        assert_eq!(vis.amount(0.6), 0.0);
        // No folding: the in-plane Jacobian of the pull-back stays positive.
        let w = vis.warp(AMOUNT_RANGE[1]);
        let mut min_det = f64::INFINITY;
        for j in 1..139 {
            for i in 1..139 {
                let p = |i: usize, j: usize| w.pull_back(g.world(i, j, 1));
                let (a, b, c, d) = (p(i + 1, j), p(i - 1, j), p(i, j + 1), p(i, j - 1));
                let det = ((a[0] - b[0]) * (c[1] - d[1]) - (a[1] - b[1]) * (c[0] - d[0])) / 9.0;
                min_det = min_det.min(det);
            }
        }
        assert!(min_det > 0.0, "min det {min_det}");
        assert_eq!(vis.amount(1.0), 0.0);
    }
}
