//! Lesion shapes and placement, plus the exact Euclidean distance transform both placement
//! and `organ_min_extent_mm` use.

use std::f64::consts::PI;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::geom::{dot, frame, normalize, V3};
use super::LesionShape;
use crate::volume::{Grid, Volume};

/// A drawn lesion shape around the origin (mm).
pub(crate) struct ShapeInst {
    axes: [V3; 3],
    semi: V3,
    /// Lobulation harmonics: (direction, order, phase, weight); weights sum to 1.
    harmonics: Vec<(V3, f64, f64, f64)>,
    amp: f64,
    /// Spicules: (unit direction, length beyond the core radius, root radius), mm.
    spicules: Vec<(V3, f64, f64)>,
    /// The inner part is the body shrunk by this factor (cystic cavity, necrotic core,
    /// part-solid nodule's solid component).
    pub core_scale: Option<f64>,
    pub r_max: f64,
    pub r_min: f64,
    /// Largest radius of the body (r_max without the spicules).
    pub r_body: f64,
}

/// A spicule: a cone along `u` from the core radius `r0` out to `r0 + len`, its radius
/// tapering from `root` to nothing (a cylinder of `root` inside the core).
fn in_spicule(d: V3, u: V3, r0: f64, len: f64, root: f64) -> bool {
    let t = dot(d, u);
    if t < 0.0 || t > r0 + len {
        return false;
    }
    let perp2 = dot(d, d) - t * t;
    let rad = root * (1.0 - ((t - r0) / len).max(0.0));
    perp2 <= rad * rad
}

fn ellipsoid(axes: [V3; 3], r: f64, rng: &mut ChaCha8Rng) -> ShapeInst {
    let ratios = [
        1.0,
        rng.random_range(0.7..=1.0),
        rng.random_range(0.7..=1.0),
    ];
    let mean = ratios.iter().sum::<f64>() / 3.0;
    let semi = ratios.map(|q| r * q / mean);
    let (lo, hi) = (
        semi.iter().cloned().fold(f64::MAX, f64::min),
        semi.iter().cloned().fold(0.0, f64::max),
    );
    ShapeInst {
        axes,
        semi,
        harmonics: vec![],
        amp: 0.0,
        spicules: vec![],
        core_scale: None,
        r_max: hi,
        r_min: lo,
        r_body: hi,
    }
}

/// A sphere whose radius is modulated by four smooth angular harmonics of relative amplitude
/// `amp`: bumps, not spikes.
fn lobulated(axes: [V3; 3], r: f64, amp: f64, rng: &mut ChaCha8Rng) -> ShapeInst {
    let n = 4;
    let mut harmonics: Vec<(V3, f64, f64, f64)> = (0..n)
        .map(|_| {
            let dir = random_unit(rng);
            let order = rng.random_range(2..=4) as f64;
            let phase = rng.random_range(0.0..2.0 * PI);
            let w = rng.random_range(0.5..1.0);
            (dir, order, phase, w)
        })
        .collect();
    let total: f64 = harmonics.iter().map(|h| h.3).sum();
    for h in &mut harmonics {
        h.3 /= total;
    }
    ShapeInst {
        axes,
        semi: [r; 3],
        harmonics,
        amp,
        spicules: vec![],
        core_scale: None,
        r_max: r * (1.0 + amp),
        r_min: r * (1.0 - amp),
        r_body: r * (1.0 + amp),
    }
}

fn random_unit(rng: &mut ChaCha8Rng) -> V3 {
    normalize([0, 1, 2].map(|_| rng.sample::<f64, _>(StandardNormal)))
}

impl ShapeInst {
    pub fn draw(shape: LesionShape, diameter_mm: f64, rng: &mut ChaCha8Rng) -> ShapeInst {
        let r = diameter_mm / 2.0;
        let axes = frame(random_unit(rng), random_unit(rng));
        let round = |axes| ShapeInst {
            axes,
            semi: [r; 3],
            harmonics: vec![],
            amp: 0.0,
            spicules: vec![],
            core_scale: None,
            r_max: r,
            r_min: r,
            r_body: r,
        };
        match shape {
            LesionShape::Sphere => round(axes),
            LesionShape::Ellipsoid => ellipsoid(axes, r, rng),
            LesionShape::Lobulated => lobulated(axes, r, 0.15, rng),
            LesionShape::Spiculated => {
                let mut s = lobulated(axes, r, 0.10, rng);
                let n = rng.random_range(8..=14);
                let root = (0.18 * r).max(0.8);
                s.spicules = (0..n)
                    .map(|_| (random_unit(rng), rng.random_range(0.5..=1.2) * r, root))
                    .collect();
                let longest = s.spicules.iter().map(|sp| sp.1).fold(0.0, f64::max);
                s.r_max = r * (1.0 + s.amp) + longest;
                s
            }
            LesionShape::Cystic => {
                let mut s = ellipsoid(axes, r, rng);
                // Thin-walled: 1.5–3 mm, never more than 40 % of the short semi-axis.
                let wall = rng.random_range(1.5..=3.0f64).min(0.4 * s.r_min);
                s.core_scale = Some(1.0 - wall / s.r_min);
                s
            }
            LesionShape::Necrotic => {
                let mut s = lobulated(axes, r, 0.15, rng);
                s.core_scale = Some(rng.random_range(0.4..=0.7));
                s
            }
            LesionShape::PartSolid => {
                let mut s = lobulated(axes, r, 0.10, rng);
                s.core_scale = Some(rng.random_range(0.3..=0.6));
                s
            }
        }
    }

    /// Whether offset `d` lies in the inner part (see `core_scale`).
    pub fn in_core(&self, d: V3) -> bool {
        self.core_scale
            .is_some_and(|c| self.in_body(d.map(|x| x / c)))
    }

    /// Whether offset `d` (mm from the centre) is inside.
    pub fn contains(&self, d: V3) -> bool {
        self.in_body(d)
            || self
                .spicules
                .iter()
                .any(|&(u, len, root)| in_spicule(d, u, self.semi[0], len, root))
    }

    /// The body without spicules.
    pub fn in_body(&self, d: V3) -> bool {
        let l = [
            dot(d, self.axes[0]),
            dot(d, self.axes[1]),
            dot(d, self.axes[2]),
        ];
        let q: f64 = (0..3)
            .map(|a| (l[a] / self.semi[a]).powi(2))
            .sum::<f64>()
            .sqrt();
        if self.harmonics.is_empty() {
            return q <= 1.0;
        }
        let len = dot(d, d).sqrt();
        if len == 0.0 {
            return true;
        }
        let u = [d[0] / len, d[1] / len, d[2] / len];
        // Radius modulated by a few smooth angular harmonics: bumps, not spikes.
        let m: f64 = self
            .harmonics
            .iter()
            .map(|(dir, n, ph, w)| w * (n * dot(u, *dir).clamp(-1.0, 1.0).acos() + ph).cos())
            .sum();
        q <= 1.0 + self.amp * m
    }
}

/// Exact squared Euclidean distance (mm²) from each voxel centre to the nearest voxel centre
/// outside `mask` (outside the grid counts as outside), by Felzenszwalb & Huttenlocher's
/// separable lower-envelope algorithm (Theory of Computing 2012), on the mask's bounding box
/// padded by one voxel. Returns (box origin ijk, box dims, values x-fastest).
pub(crate) fn edt_sq(grid: &Grid, mask: &[bool]) -> Option<([usize; 3], [usize; 3], Vec<f64>)> {
    let [nx, ny, _] = grid.dims;
    let mut lo = [usize::MAX; 3];
    let mut hi = [0usize; 3];
    let mut any = false;
    for (idx, &m) in mask.iter().enumerate() {
        if m {
            any = true;
            let ijk = grid.ijk(idx);
            for a in 0..3 {
                lo[a] = lo[a].min(ijk[a]);
                hi[a] = hi[a].max(ijk[a]);
            }
        }
    }
    if !any {
        return None;
    }
    // One virtual voxel of padding on every side so grid edges count as outside.
    let dims = [0, 1, 2].map(|a| hi[a] - lo[a] + 3);
    let inf = 1e30;
    let mut f = vec![0.0; dims[0] * dims[1] * dims[2]];
    for k in 1..dims[2] - 1 {
        for j in 1..dims[1] - 1 {
            for i in 1..dims[0] - 1 {
                let src = (lo[0] + i - 1) + nx * ((lo[1] + j - 1) + ny * (lo[2] + k - 1));
                if mask[src] {
                    f[i + dims[0] * (j + dims[1] * k)] = inf;
                }
            }
        }
    }
    let stride = [1, dims[0], dims[0] * dims[1]];
    for a in 0..3 {
        let n = dims[a];
        let h = grid.spacing_mm[a];
        let others: Vec<usize> = (0..3).filter(|&b| b != a).collect();
        let mut line = vec![0.0; n];
        let mut out = vec![0.0; n];
        for u in 0..dims[others[0]] {
            for v in 0..dims[others[1]] {
                let base = u * stride[others[0]] + v * stride[others[1]];
                for q in 0..n {
                    line[q] = f[base + q * stride[a]];
                }
                edt_1d(&line, h, &mut out);
                for q in 0..n {
                    f[base + q * stride[a]] = out[q];
                }
            }
        }
    }
    // Padded box: box index (i, j, k) is grid voxel lo + (i, j, k) - 1.
    Some((lo, dims, f))
}

/// 1D squared distance transform of sampled function f with sample spacing h.
fn edt_1d(f: &[f64], h: f64, d: &mut [f64]) {
    let n = f.len();
    let mut v = vec![0usize; n];
    let mut z = vec![0.0f64; n + 1];
    let mut k = 0usize;
    v[0] = 0;
    z[0] = f64::NEG_INFINITY;
    z[1] = f64::INFINITY;
    let pos = |q: usize| q as f64 * h;
    let meet = |q: usize, p: usize| {
        ((f[q] + pos(q) * pos(q)) - (f[p] + pos(p) * pos(p))) / (2.0 * (pos(q) - pos(p)))
    };
    for q in 1..n {
        let mut s = meet(q, v[k]);
        // z[0] = -inf, so this never pops the first parabola.
        while s <= z[k] {
            k -= 1;
            s = meet(q, v[k]);
        }
        k += 1;
        v[k] = q;
        z[k] = s;
        z[k + 1] = f64::INFINITY;
    }
    k = 0;
    for (q, dq) in d.iter_mut().enumerate() {
        while z[k + 1] < pos(q) {
            k += 1;
        }
        let dx = pos(q) - pos(v[k]);
        *dq = dx * dx + f[v[k]];
    }
}

/// Distance (mm) to the nearest outside voxel for every voxel of the full grid (0 outside).
pub(crate) fn edt_full(labels: &Volume<u16>, ids: &[u16]) -> Option<Vec<f32>> {
    let mask: Vec<bool> = labels.data.iter().map(|l| ids.contains(l)).collect();
    edt_dense(&labels.grid, &mask, |d2| d2.sqrt() as f32)
}

/// [`edt_sq`] spread over the whole grid, each squared distance passed through `conv`
/// (`T::default()` outside the mask); None for an empty mask.
pub(crate) fn edt_dense<T: Copy + Default>(
    g: &Grid,
    mask: &[bool],
    conv: impl Fn(f64) -> T,
) -> Option<Vec<T>> {
    let (lo, dims, f) = edt_sq(g, mask)?;
    let mut out = vec![T::default(); g.len()];
    for k in 1..dims[2] - 1 {
        for j in 1..dims[1] - 1 {
            for i in 1..dims[0] - 1 {
                let v = f[i + dims[0] * (j + dims[1] * k)];
                if v > 0.0 {
                    out[g.index(lo[0] + i - 1, lo[1] + j - 1, lo[2] + k - 1)] = conv(v);
                }
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn edt_of_a_ball_peaks_at_its_radius() {
        let g = Grid::centered([41, 41, 21], [1.0, 1.0, 2.0]);
        let mut v = Volume::filled(g.clone(), 0u16);
        for idx in 0..g.len() {
            let [i, j, k] = g.ijk(idx);
            let p = g.world(i, j, k);
            if (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt() <= 15.0 {
                v.data[idx] = 1;
            }
        }
        let d = edt_full(&v, &[1]).unwrap();
        let centre = d[g.index(20, 20, 10)];
        // Nearest outside voxel centre is just beyond r = 15 mm.
        assert!((15.0..=17.0).contains(&centre), "{centre}");
        let max = d.iter().cloned().fold(0.0f32, f32::max);
        assert_eq!(max, centre);
        assert_eq!(d[0], 0.0);
    }

    #[test]
    fn shapes_have_the_requested_mean_size() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for shape in [
            LesionShape::Sphere,
            LesionShape::Ellipsoid,
            LesionShape::Lobulated,
        ] {
            let s = ShapeInst::draw(shape, 20.0, &mut rng);
            // Volume by Monte-Carlo-free grid count at 0.5 mm vs a 20 mm sphere (4189 mm³).
            let mut n = 0usize;
            let h = 0.5;
            for i in -30..=30 {
                for j in -30..=30 {
                    for k in -30..=30 {
                        if s.contains([i as f64 * h, j as f64 * h, k as f64 * h]) {
                            n += 1;
                        }
                    }
                }
            }
            let vol = n as f64 * h * h * h;
            assert!(vol > 0.6 * 4189.0 && vol < 1.3 * 4189.0, "{shape:?}: {vol}");
            assert!(s.r_min <= 10.0 + 1e-9 && s.r_max >= 10.0 - 1e-9);
        }
    }
}
