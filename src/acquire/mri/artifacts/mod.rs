//! Artifact models: smooth fields (receive bias, B0), rigid motion, and image-domain
//! ("retrospective") versions of motion, ghosting, spikes, bias and Rician noise that act on
//! a magnitude volume the way TorchIO's transforms do, but slice by slice as a 2D
//! multi-slice acquisition would (readout x, phase y, slices z).

use rayon::prelude::*;

use super::fft::Fft;
use super::noise::{FastRng, Normals};
use crate::volume::Volume;

/// A smooth random field in [−1, 1]: a cubic polynomial in coordinates normalised to the
/// half-extent, rescaled so its maximum magnitude over the box is 1 and clamped (so a field
/// 1 + (r/2)·g never leaves [1 − r/2, 1 + r/2]).
#[derive(Clone, Debug, PartialEq)]
pub struct SmoothField {
    /// (i, j, k, coefficient): Σ c uˣⁱ uʸʲ uᶻᵏ.
    pub terms: Vec<(u8, u8, u8, f64)>,
    pub half_extent_mm: [f64; 3],
}

impl SmoothField {
    pub fn random(rng: &mut FastRng, half_extent_mm: [f64; 3]) -> SmoothField {
        let mut terms = Vec::new();
        for i in 0..=3u8 {
            for j in 0..=(3 - i) {
                for k in 0..=(3 - i - j) {
                    if i + j + k == 0 {
                        continue;
                    }
                    // Higher orders weaker, as in smooth coil/B0 profiles.
                    let w = 1.0 / (1 + i + j + k) as f64;
                    terms.push((i, j, k, w * (2.0 * rng.uniform() - 1.0)));
                }
            }
        }
        let mut f = SmoothField {
            terms,
            half_extent_mm: half_extent_mm.map(|h| h.max(1e-6)),
        };
        // Normalise on a 21³ lattice over the box.
        let mut max = 0.0f64;
        for a in 0..21 {
            for b in 0..21 {
                for c in 0..21 {
                    let u = [a, b, c].map(|t| t as f64 / 10.0 - 1.0);
                    max = max.max(f.eval_unit(u).abs());
                }
            }
        }
        let s = if max > 0.0 { 1.0 / max } else { 0.0 };
        f.terms.iter_mut().for_each(|t| t.3 *= s);
        f
    }

    fn eval_unit(&self, u: [f64; 3]) -> f64 {
        self.terms
            .iter()
            .map(|&(i, j, k, c)| {
                c * u[0].powi(i as i32) * u[1].powi(j as i32) * u[2].powi(k as i32)
            })
            .sum()
    }

    /// g at world point `p` (mm), clamped to [−1, 1].
    pub fn eval(&self, p: [f64; 3]) -> f64 {
        let u = [0, 1, 2].map(|a| (p[a] / self.half_extent_mm[a]).clamp(-1.0, 1.0));
        self.eval_unit(u).clamp(-1.0, 1.0)
    }

    /// g on a plane: `rows × cols` values, row coordinate along world axis `row_axis`, column
    /// along `col_axis`, at `fixed` on the remaining axis. Uses per-axis power tables.
    pub fn eval_plane(
        &self,
        row_axis: usize,
        rows: &[f64],
        col_axis: usize,
        cols: &[f64],
        fixed: f64,
    ) -> Vec<f32> {
        let other = 3 - row_axis - col_axis;
        let pw = |v: f64, a: usize| {
            let u = (v / self.half_extent_mm[a]).clamp(-1.0, 1.0);
            [1.0, u, u * u, u * u * u]
        };
        let rp: Vec<[f64; 4]> = rows.iter().map(|&v| pw(v, row_axis)).collect();
        let cp: Vec<[f64; 4]> = cols.iter().map(|&v| pw(v, col_axis)).collect();
        let op = pw(fixed, other);
        let mut out = Vec::with_capacity(rows.len() * cols.len());
        for r in &rp {
            // Collapse the polynomial to a cubic in the column coordinate for this row.
            let mut cc = [0.0f64; 4];
            for &(i, j, k, c) in &self.terms {
                let e = [i as usize, j as usize, k as usize];
                cc[e[col_axis]] += c * r[e[row_axis]] * op[e[other]];
            }
            out.extend(cp.iter().map(|q| {
                (cc[0] + cc[1] * q[1] + cc[2] * q[2] + cc[3] * q[3]).clamp(-1.0, 1.0) as f32
            }));
        }
        out
    }
}

/// A rigid transform about the isocentre: p ↦ R p + t, R = Rz Ry Rx.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rigid {
    pub r: [[f64; 3]; 3],
    pub t: [f64; 3],
}

impl Rigid {
    pub fn new(translation_mm: [f64; 3], rotation_deg: [f64; 3]) -> Rigid {
        let [a, b, c] = rotation_deg.map(f64::to_radians);
        let rx = [
            [1.0, 0.0, 0.0],
            [0.0, a.cos(), -a.sin()],
            [0.0, a.sin(), a.cos()],
        ];
        let ry = [
            [b.cos(), 0.0, b.sin()],
            [0.0, 1.0, 0.0],
            [-b.sin(), 0.0, b.cos()],
        ];
        let rz = [
            [c.cos(), -c.sin(), 0.0],
            [c.sin(), c.cos(), 0.0],
            [0.0, 0.0, 1.0],
        ];
        let mul = |m: [[f64; 3]; 3], n: [[f64; 3]; 3]| {
            let mut o = [[0.0; 3]; 3];
            for i in 0..3 {
                for j in 0..3 {
                    o[i][j] = (0..3).map(|k| m[i][k] * n[k][j]).sum();
                }
            }
            o
        };
        Rigid {
            r: mul(rz, mul(ry, rx)),
            t: translation_mm,
        }
    }

    pub fn is_identity(&self) -> bool {
        self.t == [0.0; 3] && self.r == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    }

    /// Where the object point now at world `q` came from: Rᵀ (q − t).
    #[inline]
    pub fn pull(&self, q: [f64; 3]) -> [f64; 3] {
        let d = [q[0] - self.t[0], q[1] - self.t[1], q[2] - self.t[2]];
        [0, 1, 2].map(|j| self.r[0][j] * d[0] + self.r[1][j] * d[1] + self.r[2][j] * d[2])
    }
}

/// Trilinear interpolation of `data` (on the x-fastest grid `dims`) at continuous voxel
/// coordinates `v`; zero outside.
#[inline]
pub fn trilinear(data: &[f32], dims: [usize; 3], v: [f64; 3]) -> f32 {
    // Truncation of v + 1 is floor(v) + 1 for v > −1, without a libm call.
    if !(v[0] > -1.0 && v[1] > -1.0 && v[2] > -1.0) {
        return 0.0;
    }
    let i = (v[0] + 1.0) as usize;
    let j = (v[1] + 1.0) as usize;
    let k = (v[2] + 1.0) as usize;
    if i > dims[0] || j > dims[1] || k > dims[2] {
        return 0.0;
    }
    let (wx, wy, wz) = (
        (v[0] + 1.0 - i as f64) as f32,
        (v[1] + 1.0 - j as f64) as f32,
        (v[2] + 1.0 - k as f64) as f32,
    );
    let (nx, nxy) = (dims[0], dims[0] * dims[1]);
    let c = if i >= 1 && j >= 1 && k >= 1 && i < dims[0] && j < dims[1] && k < dims[2] {
        // Interior: all eight neighbours exist.
        let b = (i - 1) + nx * (j - 1) + nxy * (k - 1);
        [
            data[b],
            data[b + 1],
            data[b + nx],
            data[b + nx + 1],
            data[b + nxy],
            data[b + nxy + 1],
            data[b + nxy + nx],
            data[b + nxy + nx + 1],
        ]
    } else {
        // Edge: indices shifted by +1, zero outside.
        let get = |a: usize, b: usize, c: usize| -> f32 {
            if a == 0 || b == 0 || c == 0 || a > dims[0] || b > dims[1] || c > dims[2] {
                0.0
            } else {
                data[(a - 1) + nx * (b - 1) + nxy * (c - 1)]
            }
        };
        [
            get(i, j, k),
            get(i + 1, j, k),
            get(i, j + 1, k),
            get(i + 1, j + 1, k),
            get(i, j, k + 1),
            get(i + 1, j, k + 1),
            get(i, j + 1, k + 1),
            get(i + 1, j + 1, k + 1),
        ]
    };
    let c00 = c[0] + wx * (c[1] - c[0]);
    let c10 = c[2] + wx * (c[3] - c[2]);
    let c01 = c[4] + wx * (c[5] - c[4]);
    let c11 = c[6] + wx * (c[7] - c[6]);
    let c0 = c00 + wy * (c10 - c00);
    let c1 = c01 + wy * (c11 - c01);
    c0 + wz * (c1 - c0)
}

/// Adds `w` × the trilinear samples of each `data[ch]` (x-fastest grid `dims`, zero outside)
/// at the voxel coordinates `start + i·step` to `out[ch][i]`, for every i of the row: the
/// values of [`trilinear`] point by point. Inside the volume (the bulk of a row) the weights
/// and neighbour offsets are shared by the channels and need no edge tests; with AVX2 eight
/// points go at once, their positions in f32 (≤ 3·10⁻⁵ voxel for grids up to 512).
pub fn add_row_samples<const C: usize>(
    data: [&[f32]; C],
    dims: [usize; 3],
    start: [f64; 3],
    step: [f64; 3],
    w: f32,
    out: [&mut [f32]; C],
) {
    let n = out.first().map_or(0, |o| o.len());
    assert!(out.iter().all(|o| o.len() == n));
    let len = dims[0] * dims[1] * dims[2];
    assert!(data.iter().all(|d| d.len() == len));
    #[cfg(target_arch = "x86_64")]
    let (done, out) = {
        let mut out = out;
        let vector = len < i32::MAX as usize
            && dims.iter().all(|&d| d >= 2)
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        // SAFETY: the features were just detected; sizes checked above.
        let done = if vector {
            unsafe { add_row_samples_avx2(&data, dims, start, step, w, &mut out) }
        } else {
            0
        };
        (done, out)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    add_row_samples_scalar(data, dims, start, step, w, out, done);
}

/// The points from `from` on of [`add_row_samples`], in scalar code.
#[allow(clippy::needless_range_loop)] // i indexes every channel's row
fn add_row_samples_scalar<const C: usize>(
    data: [&[f32]; C],
    dims: [usize; 3],
    start: [f64; 3],
    step: [f64; 3],
    w: f32,
    out: [&mut [f32]; C],
    from: usize,
) {
    let n = out.first().map_or(0, |o| o.len());
    let (nx, nxy) = (dims[0], dims[0] * dims[1]);
    let hi = dims.map(|d| d as f64 - 1.0);
    for i in from..n {
        let v = [0, 1, 2].map(|a| start[a] + i as f64 * step[a]);
        // All eight neighbours exist: 0 ≤ v < n − 1 on every axis.
        if v[0] >= 0.0 && v[1] >= 0.0 && v[2] >= 0.0 && v[0] < hi[0] && v[1] < hi[1] && v[2] < hi[2]
        {
            let (x, y, z) = (v[0] as usize, v[1] as usize, v[2] as usize);
            let (wx, wy, wz) = (
                (v[0] - x as f64) as f32,
                (v[1] - y as f64) as f32,
                (v[2] - z as f64) as f32,
            );
            let b = x + nx * y + nxy * z;
            for ch in 0..C {
                let d = &data[ch][b..b + nxy + nx + 2];
                let c00 = d[0] + wx * (d[1] - d[0]);
                let c10 = d[nx] + wx * (d[nx + 1] - d[nx]);
                let c01 = d[nxy] + wx * (d[nxy + 1] - d[nxy]);
                let c11 = d[nxy + nx] + wx * (d[nxy + nx + 1] - d[nxy + nx]);
                let c0 = c00 + wy * (c10 - c00);
                let c1 = c01 + wy * (c11 - c01);
                out[ch][i] += w * (c0 + wz * (c1 - c0));
            }
        } else {
            for ch in 0..C {
                out[ch][i] += w * trilinear(data[ch], dims, v);
            }
        }
    }
}

/// [`add_row_samples`] eight points at a time with gathers; points near or outside the edge
/// fall back to [`trilinear`]. Returns how many leading points it did (whole vectors).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn add_row_samples_avx2<const C: usize>(
    data: &[&[f32]; C],
    dims: [usize; 3],
    start: [f64; 3],
    step: [f64; 3],
    w: f32,
    out: &mut [&mut [f32]; C],
) -> usize {
    use std::arch::x86_64::*;
    let n = out.first().map_or(0, |o| o.len());
    let (nx, nxy) = (dims[0] as i32, (dims[0] * dims[1]) as i32);
    let lane = _mm256_setr_ps(0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0);
    let hi = dims.map(|d| _mm256_set1_ps(d as f32 - 1.0));
    let (st, sp) = (
        start.map(|v| _mm256_set1_ps(v as f32)),
        step.map(|v| _mm256_set1_ps(v as f32)),
    );
    let (zero, vw) = (_mm256_setzero_ps(), _mm256_set1_ps(w));
    let (vnx, vnxy) = (_mm256_set1_epi32(nx), _mm256_set1_epi32(nxy));
    // The eight corners' offsets from the base voxel.
    let corner = [0, 1, nx, nx + 1, nxy, nxy + 1, nxy + nx, nxy + nx + 1];
    let mut i0 = 0;
    while i0 + 8 <= n {
        let iv = _mm256_add_ps(_mm256_set1_ps(i0 as f32), lane);
        let v = [0, 1, 2].map(|a| _mm256_fmadd_ps(iv, sp[a], st[a]));
        let mut inside = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
        for a in 0..3 {
            let ge = _mm256_cmp_ps::<_CMP_GE_OQ>(v[a], zero);
            let lt = _mm256_cmp_ps::<_CMP_LT_OQ>(v[a], hi[a]);
            inside = _mm256_and_ps(inside, _mm256_and_ps(ge, lt));
        }
        let mask = _mm256_movemask_ps(inside);
        if mask != 0 {
            let fl = v.map(|x| _mm256_floor_ps(x));
            let wt = [0, 1, 2].map(|a| _mm256_sub_ps(v[a], fl[a]));
            let b = _mm256_add_epi32(
                _mm256_cvttps_epi32(fl[0]),
                _mm256_add_epi32(
                    _mm256_mullo_epi32(_mm256_cvttps_epi32(fl[1]), vnx),
                    _mm256_mullo_epi32(_mm256_cvttps_epi32(fl[2]), vnxy),
                ),
            );
            // Points outside read voxel 0's neighbourhood (in bounds) and are discarded.
            let b = _mm256_and_si256(b, _mm256_castps_si256(inside));
            for ch in 0..C {
                let p = data[ch].as_ptr();
                // SAFETY: an inside point's base voxel is at most (nx−2, ny−2, nz−2), so
                // every corner is in the volume; outside points use base 0.
                let d =
                    corner.map(|o| unsafe { _mm256_i32gather_ps::<4>(p.offset(o as isize), b) });
                let c00 = _mm256_fmadd_ps(wt[0], _mm256_sub_ps(d[1], d[0]), d[0]);
                let c10 = _mm256_fmadd_ps(wt[0], _mm256_sub_ps(d[3], d[2]), d[2]);
                let c01 = _mm256_fmadd_ps(wt[0], _mm256_sub_ps(d[5], d[4]), d[4]);
                let c11 = _mm256_fmadd_ps(wt[0], _mm256_sub_ps(d[7], d[6]), d[6]);
                let c0 = _mm256_fmadd_ps(wt[1], _mm256_sub_ps(c10, c00), c00);
                let c1 = _mm256_fmadd_ps(wt[1], _mm256_sub_ps(c11, c01), c01);
                let r = _mm256_and_ps(_mm256_fmadd_ps(wt[2], _mm256_sub_ps(c1, c0), c0), inside);
                // SAFETY: i0 + 8 ≤ n.
                unsafe {
                    let o = out[ch].as_mut_ptr().add(i0);
                    _mm256_storeu_ps(o, _mm256_fmadd_ps(vw, r, _mm256_loadu_ps(o)));
                }
            }
        }
        if mask != 0xff {
            for l in (0..8).filter(|l| mask & (1 << l) == 0) {
                let v = [0, 1, 2].map(|a| start[a] + (i0 + l) as f64 * step[a]);
                for ch in 0..C {
                    out[ch][i0 + l] += w * trilinear(data[ch], dims, v);
                }
            }
        }
        i0 += 8;
    }
    i0
}

/// `vol` moved by `xform` (trilinear, zero fill), on the same grid.
pub fn transform_volume(vol: &Volume<f32>, xform: &Rigid) -> Vec<f32> {
    let g = &vol.grid;
    let [nx, ny, _] = g.dims;
    let mut out = vec![0f32; g.len()];
    // Index → world → source → voxel is affine: step it along x instead of per voxel.
    let vox = |i: usize, j: usize, k: usize| g.to_voxel(xform.pull(g.world(i, j, k)));
    let v0 = vox(0, 0, 0);
    let dx = [0, 1, 2].map(|a| vox(1, 0, 0)[a] - v0[a]);
    out.par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(k, plane)| {
            for (j, row) in plane.chunks_exact_mut(nx).enumerate() {
                add_row_samples([&vol.data[..]], g.dims, vox(0, j, k), dx, 1.0, [row]);
            }
        });
    out
}

/// Which phase lines (signed ky, time-ordered from the most negative) are acquired after a
/// motion event covering the last `fraction` of lines.
pub fn moved_line(ky_index: usize, n_phase: usize, fraction: f64) -> bool {
    // Line l of the DFT order has ky = l (l < ⌈n/2⌉) or l − n; time order t = ky + ⌊n/2⌋.
    let half = n_phase / 2;
    let ky = if ky_index < n_phase.div_ceil(2) {
        ky_index as i64
    } else {
        ky_index as i64 - n_phase as i64
    };
    let t = (ky + half as i64) as f64;
    t >= (1.0 - fraction) * n_phase as f64 - 1e-9
}

/// Runs `f` on each slice's hybrid (ky, x) space: FFT along y, `f(k_re, k_im, slice)`, inverse
/// FFT, magnitude. Shared by the retrospective transforms.
fn per_slice_hybrid(
    vol: &Volume<f32>,
    f: impl Fn(&mut [f32], &mut [f32], usize) + Sync,
) -> Volume<f32> {
    let [nx, ny, _] = vol.grid.dims;
    let plan = Fft::new(ny);
    let mut out = vec![0f32; vol.data.len()];
    out.par_chunks_mut(nx * ny).enumerate().for_each(|(k, o)| {
        let mut re = vol.data[k * nx * ny..(k + 1) * nx * ny].to_vec();
        let mut im = vec![0f32; nx * ny];
        plan.process(&mut re, &mut im, nx, false);
        f(&mut re, &mut im, k);
        plan.process(&mut re, &mut im, nx, true);
        let s = 1.0 / ny as f32;
        for ((o, r), i) in o.iter_mut().zip(&re).zip(&im) {
            *o = s * (r * r + i * i).sqrt();
        }
    });
    Volume::from_vec(vol.grid.clone(), out)
}

/// Rigid motion during a 2D multi-slice acquisition of an image: the last
/// `fraction_of_lines` phase lines (y) of every slice see the moved object.
pub fn apply_motion(vol: &Volume<f32>, motion: &super::Motion) -> Volume<f32> {
    let xform = Rigid::new(motion.translation_mm, motion.rotation_deg);
    let g = &vol.grid;
    let [nx, ny, _] = g.dims;
    // Index → world → source → voxel is affine: step it along x (as `transform_volume`).
    let vox = |i: usize, j: usize, k: usize| g.to_voxel(xform.pull(g.world(i, j, k)));
    let v0 = vox(0, 0, 0);
    let dx = [0, 1, 2].map(|a| vox(1, 0, 0)[a] - v0[a]);
    let plan = Fft::new(ny);
    let moved_lines: Vec<bool> = (0..ny)
        .map(|l| moved_line(l, ny, motion.fraction_of_lines))
        .collect();
    let mut out = vec![0f32; vol.data.len()];
    // The acquired k-space is F(a) on the still lines and F(b) on the moved ones, i.e.
    // F(a) + P F(b − a): by linearity the image is a + F⁻¹ P F(b − a), one transform pair
    // per slice instead of three. The moved slice b is resampled straight into b − a.
    out.par_chunks_mut(nx * ny).enumerate().for_each(|(k, o)| {
        let a = &vol.data[k * nx * ny..(k + 1) * nx * ny];
        let mut re: Vec<f32> = a.iter().map(|v| -v).collect();
        for (j, row) in re.chunks_exact_mut(nx).enumerate() {
            add_row_samples([&vol.data[..]], g.dims, vox(0, j, k), dx, 1.0, [row]);
        }
        let mut im = vec![0f32; nx * ny];
        plan.process(&mut re, &mut im, nx, false);
        for (l, _) in moved_lines.iter().enumerate().filter(|(_, &m)| !m) {
            re[l * nx..(l + 1) * nx].fill(0.0);
            im[l * nx..(l + 1) * nx].fill(0.0);
        }
        plan.process(&mut re, &mut im, nx, true);
        let s = 1.0 / ny as f32;
        for (((o, a), r), i) in o.iter_mut().zip(a).zip(&re).zip(&im) {
            let (r, i) = (a + s * r, s * i);
            *o = (r * r + i * i).sqrt();
        }
    });
    Volume::from_vec(vol.grid.clone(), out)
}

/// N/2 ghosting: odd phase lines scaled by 1 − 2g, giving a ghost of fraction g at FOV/2.
pub fn apply_ghosting(vol: &Volume<f32>, fraction: f64) -> Volume<f32> {
    let [nx, ny, _] = vol.grid.dims;
    if ny % 2 == 1 {
        return apply_ghosting_fft(vol, fraction);
    }
    // With n even, (−1)^ky on the DFT lines is the image shifted by n/2, so keeping the even
    // lines and scaling the odd ones by 1 − 2g is exactly (1 − g)·m(y) + g·m(y + n/2): the
    // ghost at half the FOV, without a transform.
    let g = fraction as f32;
    let h = ny / 2;
    let mut out = vec![0f32; vol.data.len()];
    out.par_chunks_mut(nx * ny).enumerate().for_each(|(k, o)| {
        let m = &vol.data[k * nx * ny..(k + 1) * nx * ny];
        for (j, row) in o.chunks_exact_mut(nx).enumerate() {
            let (a, b) = (&m[j * nx..(j + 1) * nx], &m[((j + h) % ny) * nx..][..nx]);
            for ((o, a), b) in row.iter_mut().zip(a).zip(b) {
                *o = ((1.0 - g) * a + g * b).abs();
            }
        }
    });
    Volume::from_vec(vol.grid.clone(), out)
}

/// [`apply_ghosting`] through the hybrid (ky, x) space, for odd line counts.
fn apply_ghosting_fft(vol: &Volume<f32>, fraction: f64) -> Volume<f32> {
    let nx = vol.grid.dims[0];
    let a = (1.0 - 2.0 * fraction) as f32;
    per_slice_hybrid(vol, |re, im, _| {
        for (l, (r, i)) in re.chunks_mut(nx).zip(im.chunks_mut(nx)).enumerate() {
            if l % 2 == 1 {
                r.iter_mut().for_each(|v| *v *= a);
                i.iter_mut().for_each(|v| *v *= a);
            }
        }
    })
}

/// A k-space spike at (kx, ky) of amplitude `intensity` × |k-space centre| in every slice:
/// in the image, a plane wave added before the magnitude (no FFT needed, by linearity).
pub fn apply_spike(vol: &Volume<f32>, intensity: f64, seed: u64) -> (Volume<f32>, [i64; 2]) {
    let [nx, ny, _] = vol.grid.dims;
    let mut rng = FastRng::from_stream(seed, 0x5_0000_0000);
    let kx = (rng.uniform() * nx as f64) as i64 - nx as i64 / 2;
    let ky = (rng.uniform() * ny as f64) as i64 - ny as i64 / 2;
    let phase0 = 2.0 * std::f64::consts::PI * rng.uniform();
    let wx: Vec<(f32, f32)> = (0..nx)
        .map(|i| {
            let a = 2.0 * std::f64::consts::PI * (kx * i as i64) as f64 / nx as f64 + phase0;
            (a.cos() as f32, a.sin() as f32)
        })
        .collect();
    let wy: Vec<(f32, f32)> = (0..ny)
        .map(|j| {
            let a = 2.0 * std::f64::consts::PI * (ky * j as i64) as f64 / ny as f64;
            (a.cos() as f32, a.sin() as f32)
        })
        .collect();
    // The unit plane wave is the same in every slice: tabulate it once.
    let (pw_re, pw_im): (Vec<f32>, Vec<f32>) = wy
        .iter()
        .flat_map(|&(cy, sy)| {
            wx.iter()
                .map(move |&(cx, sx)| (cx * cy - sx * sy, cx * sy + sx * cy))
        })
        .unzip();
    let mut out = vec![0f32; vol.data.len()];
    out.par_chunks_mut(nx * ny).enumerate().for_each(|(k, o)| {
        let src = &vol.data[k * nx * ny..(k + 1) * nx * ny];
        // |K(0,0)| = Σ image for a real image; a delta A in k-space is A/(nx ny) per pixel.
        let amp = (intensity * sum_f64(src).abs() / (nx * ny) as f64) as f32;
        for (((o, &v), &c), &s) in o.iter_mut().zip(src).zip(&pw_re).zip(&pw_im) {
            *o = ((v + amp * c).powi(2) + (amp * s).powi(2)).sqrt();
        }
    });
    (Volume::from_vec(vol.grid.clone(), out), [kx, ky])
}

/// Σ v in f64, in four interleaved partial sums (one sequential sum is a chain of dependent
/// adds that cannot use the vector units).
pub(super) fn sum_f64(v: &[f32]) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut chunks = v.chunks_exact(4);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x as f64;
        }
    }
    let rest: f64 = chunks.remainder().iter().map(|&x| x as f64).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + rest
}

/// Multiplicative bias 1 + (range/2)·g, g a smooth field over the volume's extent.
pub fn apply_bias_field(vol: &Volume<f32>, range: f64, seed: u64) -> Volume<f32> {
    let g = &vol.grid;
    let mut rng = FastRng::from_stream(seed, 0x6_0000_0000);
    let centre =
        [0, 1, 2].map(|a| g.origin_mm[a] + 0.5 * (g.dims[a] as f64 - 1.0) * g.spacing_mm[a]);
    let field = SmoothField::random(&mut rng, g.extent_mm().map(|e| 0.5 * e));
    let [nx, ny, _] = g.dims;
    let xs: Vec<f64> = (0..nx).map(|i| g.world(i, 0, 0)[0] - centre[0]).collect();
    let ys: Vec<f64> = (0..ny).map(|j| g.world(0, j, 0)[1] - centre[1]).collect();
    let h = (0.5 * range) as f32;
    let mut out = vec![0f32; vol.data.len()];
    out.par_chunks_mut(nx * ny).enumerate().for_each(|(k, o)| {
        let z = g.world(0, 0, k)[2] - centre[2];
        let gp = field.eval_plane(1, &ys, 0, &xs, z);
        let m = &vol.data[k * nx * ny..(k + 1) * nx * ny];
        for ((o, &v), g) in o.iter_mut().zip(m).zip(&gp) {
            *o = v * (1.0 + h * g);
        }
    });
    Volume::from_vec(vol.grid.clone(), out)
}

/// Rician noise: |m + σ(n₁ + i n₂)|, the magnitude of complex Gaussian noise added to the
/// (real) image — not additive Gaussian on the magnitude.
pub fn apply_rician_noise(vol: &Volume<f32>, sigma: f64, seed: u64) -> Volume<f32> {
    let [nx, ny, _] = vol.grid.dims;
    let s = sigma as f32;
    // Per slice: the noise into scratch rows that need no zeroing, then one pass for
    // |m + n₁ + i n₂| (the numbers of adding the draws to m and to a zeroed imaginary part).
    let mut out = vec![0f32; vol.data.len()];
    out.par_chunks_mut(nx * ny).enumerate().for_each_init(
        || (vec![0f32; nx * ny], vec![0f32; nx * ny]),
        |(nr, ni), (k, o)| {
            let mut rng = FastRng::from_stream(seed, 0x7_0000_0000 + k as u64);
            Normals::new(&mut rng).set(s, nr, ni);
            let m = &vol.data[k * nx * ny..(k + 1) * nx * ny];
            for (((o, &v), a), b) in o.iter_mut().zip(m).zip(nr.iter()).zip(ni.iter()) {
                let r = v + a;
                *o = (r * r + b * b).sqrt();
            }
        },
    );
    Volume::from_vec(vol.grid.clone(), out)
}

#[cfg(test)]
mod tests;
