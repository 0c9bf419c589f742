//! Implicit-surface toolkit for the phantoms: approximate signed distances (mm, negative
//! inside), smooth noise, and a painter that evaluates each object only inside its bounding
//! box, slice-parallel.

use rayon::prelude::*;

use crate::volume::{Grid, Volume};

pub(crate) type V3 = [f64; 3];

#[inline]
pub(crate) fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
#[inline]
pub(crate) fn add(a: V3, b: V3) -> V3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
#[inline]
pub(crate) fn scale(a: V3, s: f64) -> V3 {
    [a[0] * s, a[1] * s, a[2] * s]
}
#[inline]
pub(crate) fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
#[inline]
pub(crate) fn norm(a: V3) -> f64 {
    dot(a, a).sqrt()
}
pub(crate) fn normalize(a: V3) -> V3 {
    let n = norm(a);
    if n > 0.0 {
        scale(a, 1.0 / n)
    } else {
        [0.0, 0.0, 1.0]
    }
}
pub(crate) fn cross(a: V3, b: V3) -> V3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// Solves m·x = v by Gaussian elimination with partial pivoting; None when singular.
pub(crate) fn solve_linear(mut m: Vec<Vec<f64>>, mut v: Vec<f64>) -> Option<Vec<f64>> {
    let n = v.len();
    for col in 0..n {
        let piv = (col..n).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[piv][col].abs() < 1e-12 {
            return None;
        }
        m.swap(col, piv);
        v.swap(col, piv);
        let pivot_row = m[col].clone();
        for r in col + 1..n {
            let f = m[r][col] / pivot_row[col];
            for (x, p) in m[r].iter_mut().zip(&pivot_row).skip(col) {
                *x -= f * p;
            }
            v[r] -= f * v[col];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|c| m[r][c] * x[c]).sum();
        x[r] = (v[r] - s) / m[r][r];
    }
    Some(x)
}

pub(crate) fn smoothstep(e0: f64, e1: f64, x: f64) -> f64 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

pub(crate) fn lerp(a: f64, b: f64, t: f64) -> f64 {
    a + (b - a) * t
}

/// Polynomial smooth minimum (Quilez): unions without creases, blend width `k` mm.
pub(crate) fn smin(a: f64, b: f64, k: f64) -> f64 {
    let h = (0.5 + 0.5 * (b - a) / k).clamp(0.0, 1.0);
    lerp(b, a, h) - k * h * (1.0 - h)
}

/// Ellipsoid distance bound (Quilez): exact on the surface, good near it, never zero inside.
pub(crate) fn ellipsoid(p: V3, c: V3, r: V3) -> f64 {
    let q = sub(p, c);
    let k0 = norm([q[0] / r[0], q[1] / r[1], q[2] / r[2]]);
    let k1 = norm([
        q[0] / (r[0] * r[0]),
        q[1] / (r[1] * r[1]),
        q[2] / (r[2] * r[2]),
    ]);
    if k1 < 1e-12 {
        return -r[0].min(r[1]).min(r[2]);
    }
    k0 * (k0 - 1.0) / k1
}

/// 2D ellipse, same bound.
pub(crate) fn ellipse(x: f64, y: f64, a: f64, b: f64) -> f64 {
    let k0 = ((x / a).powi(2) + (y / b).powi(2)).sqrt();
    let k1 = ((x / (a * a)).powi(2) + (y / (b * b)).powi(2)).sqrt();
    if k1 < 1e-12 {
        return -a.min(b);
    }
    k0 * (k0 - 1.0) / k1
}

/// An orthonormal frame whose first axis is `u`.
pub(crate) fn frame(u: V3, hint: V3) -> [V3; 3] {
    let u = normalize(u);
    let w = normalize(cross(u, hint));
    let v = cross(w, u);
    [u, v, w]
}

/// Ellipsoid with semi-axes `r` along the rows of `axes` (an orthonormal frame).
#[derive(Clone, Copy, Debug)]
pub(crate) struct OrientedEllipsoid {
    pub c: V3,
    pub axes: [V3; 3],
    pub r: V3,
}

impl OrientedEllipsoid {
    pub fn sdf(&self, p: V3) -> f64 {
        let d = sub(p, self.c);
        let l = [
            dot(d, self.axes[0]),
            dot(d, self.axes[1]),
            dot(d, self.axes[2]),
        ];
        ellipsoid(l, [0.0; 3], self.r)
    }
    pub fn bbox(&self) -> (V3, V3) {
        let m = self.r[0].max(self.r[1]).max(self.r[2]);
        (sub(self.c, [m; 3]), add(self.c, [m; 3]))
    }
}

/// A tube along a polyline with linearly varying radius (capsule chain).
#[derive(Clone, Debug)]
pub(crate) struct Tube {
    pub pts: Vec<V3>,
    pub radii: Vec<f64>,
}

impl Tube {
    pub fn new(pts_r: &[(V3, f64)]) -> Self {
        Tube {
            pts: pts_r.iter().map(|x| x.0).collect(),
            radii: pts_r.iter().map(|x| x.1).collect(),
        }
    }
    pub fn sdf(&self, p: V3) -> f64 {
        let mut best = f64::INFINITY;
        for s in 0..self.pts.len().saturating_sub(1) {
            let (a, b) = (self.pts[s], self.pts[s + 1]);
            let ab = sub(b, a);
            let l2 = dot(ab, ab).max(1e-12);
            let t = (dot(sub(p, a), ab) / l2).clamp(0.0, 1.0);
            let r = lerp(self.radii[s], self.radii[s + 1], t);
            let d = norm(sub(p, add(a, scale(ab, t)))) - r;
            best = best.min(d);
        }
        best
    }
    pub fn bbox(&self) -> (V3, V3) {
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for (p, r) in self.pts.iter().zip(&self.radii) {
            for a in 0..3 {
                lo[a] = lo[a].min(p[a] - r);
                hi[a] = hi[a].max(p[a] + r);
            }
        }
        (lo, hi)
    }
}

/// Smooth 3D value noise in about [-1, 1], unit feature size; quintic fade keeps it C².
pub(crate) fn value_noise(p: V3, seed: u64) -> f64 {
    let f = p.map(f64::floor);
    let t = [p[0] - f[0], p[1] - f[1], p[2] - f[2]];
    let fade = t.map(|x| x * x * x * (x * (x * 6.0 - 15.0) + 10.0));
    let [ix, iy, iz] = f.map(|x| x as i64);
    let mut acc = 0.0;
    for dz in 0..2 {
        for dy in 0..2 {
            for dx in 0..2 {
                let h = lattice(ix + dx, iy + dy, iz + dz, seed);
                let w = (if dx == 1 { fade[0] } else { 1.0 - fade[0] })
                    * (if dy == 1 { fade[1] } else { 1.0 - fade[1] })
                    * (if dz == 1 { fade[2] } else { 1.0 - fade[2] });
                acc += w * h;
            }
        }
    }
    acc
}

fn lattice(x: i64, y: i64, z: i64, seed: u64) -> f64 {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for v in [x, y, z] {
        h ^= v as u64;
        h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 29;
    }
    h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^= h >> 32;
    (h >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// Two octaves of value noise at feature size `scale_mm`.
pub(crate) fn fbm(p: V3, scale_mm: f64, seed: u64) -> f64 {
    let q = scale(p, 1.0 / scale_mm);
    (value_noise(q, seed) + 0.5 * value_noise(scale(q, 2.03), seed.wrapping_add(1))) / 1.5
}

/// A paintable object in the template's standard frame: a bounding box and a rule that,
/// given the point and the label painted so far, returns the label to paint (or none).
pub(crate) struct Obj {
    pub lo: V3,
    pub hi: V3,
    pub labels: Vec<u16>,
    pub rule: Box<dyn Fn(V3, u16) -> Option<u16> + Send + Sync>,
}

impl Obj {
    /// Paint `label` wherever `sdf <= 0`.
    pub fn solid(
        label: u16,
        bbox: (V3, V3),
        sdf: impl Fn(V3) -> f64 + Send + Sync + 'static,
    ) -> Obj {
        Obj {
            lo: bbox.0,
            hi: bbox.1,
            labels: vec![label],
            rule: Box::new(move |p, _| (sdf(p) <= 0.0).then_some(label)),
        }
    }
}

/// Maps world mm to the template's standard frame: q = (x/s, y/s, z/s + z_shift).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame {
    pub s: f64,
    pub z_shift: f64,
}

/// Paints objects in order (later overwrite earlier) onto a fresh map filled with `fill`.
pub(crate) fn render(grid: &Grid, frame: Frame, objs: &[Obj], fill: u16) -> Volume<u16> {
    let [nx, ny, _] = grid.dims;
    let mut vol = Volume::filled(grid.clone(), fill);
    if grid.is_empty() {
        return vol;
    }
    let s = frame.s;
    // Voxel index range covering world interval [lo, hi] on axis a.
    let range = |a: usize, lo: f64, hi: f64, n: usize| -> Option<(usize, usize)> {
        let i0 = ((lo - grid.origin_mm[a]) / grid.spacing_mm[a])
            .ceil()
            .max(0.0);
        let i1 = ((hi - grid.origin_mm[a]) / grid.spacing_mm[a])
            .floor()
            .min(n as f64 - 1.0);
        (i1 >= i0).then_some((i0 as usize, i1 as usize))
    };
    vol.data
        .par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(k, slice)| {
            let zw = grid.origin_mm[2] + k as f64 * grid.spacing_mm[2];
            let qz = zw / s + frame.z_shift;
            for o in objs {
                if qz < o.lo[2] || qz > o.hi[2] {
                    continue;
                }
                let (Some((i0, i1)), Some((j0, j1))) = (
                    range(0, o.lo[0] * s, o.hi[0] * s, nx),
                    range(1, o.lo[1] * s, o.hi[1] * s, ny),
                ) else {
                    continue;
                };
                for j in j0..=j1 {
                    let qy = (grid.origin_mm[1] + j as f64 * grid.spacing_mm[1]) / s;
                    let row = &mut slice[j * nx..(j + 1) * nx];
                    for (i, v) in row.iter_mut().enumerate().take(i1 + 1).skip(i0) {
                        let qx = (grid.origin_mm[0] + i as f64 * grid.spacing_mm[0]) / s;
                        if let Some(l) = (o.rule)([qx, qy, qz], *v) {
                            *v = l;
                        }
                    }
                }
            }
        });
    vol
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_have_the_right_sign_and_scale() {
        assert!((ellipsoid([10.0, 0.0, 0.0], [0.0; 3], [5.0, 3.0, 2.0]) - 5.0).abs() < 1e-9);
        assert!(ellipsoid([0.0, 2.9, 0.0], [0.0; 3], [5.0, 3.0, 2.0]) < 0.0);
        let t = Tube::new(&[([0.0; 3], 2.0), ([0.0, 0.0, 10.0], 4.0)]);
        assert!((t.sdf([5.0, 0.0, 5.0]) - 2.0).abs() < 1e-9);
        assert!(smin(1.0, 1.0, 2.0) < 1.0);
        let n: Vec<f64> = (0..200)
            .map(|i| value_noise([i as f64 * 0.37, 1.3, 2.1], 7))
            .collect();
        assert!(n.iter().all(|v| v.abs() <= 1.0));
        assert!(n.iter().any(|&v| v > 0.2) && n.iter().any(|&v| v < -0.2));
    }
}
