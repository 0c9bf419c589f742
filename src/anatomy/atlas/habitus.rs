//! Body habitus on an atlas: the subcutaneous fat band, measured per axial slice along rays
//! from the body's centroid, and stretched or thinned per subject.
//!
//! Along each ray the band runs from the skin (`r_skin`, the outermost body voxel) inward
//! through subcutaneous fat to the fascia (`r_fascia`). A subject whose band is `f` times the
//! atlas's pulls back radius r as: r inside the fascia unchanged; r in the band (up to
//! r_fascia + f·t, t = r_skin − r_fascia) from r_fascia + (r − r_fascia)/f; r beyond from
//! r + (1 − f)·t, which is outside the atlas's body. Monotone in r and continuous in angle and
//! slice, so the map never folds.

use crate::volume::Volume;

/// Rays per slice (3° apart).
pub(super) const RAYS: usize = 120;
/// Rays on either side averaged into one, and slices on either side averaged into one
/// (smooths the ragged voxel outline, which a thicker band would magnify).
const RAY_SMOOTH: usize = 3;
const SLICE_SMOOTH: usize = 2;
/// Thickest band that stretches, in multiples of the median band.
const BAND_CAP: f64 = 2.0;

/// Per-slice band geometry of an atlas.
#[derive(Clone, Debug)]
pub struct Habitus {
    /// Per slice: body centroid (x, y) in mm, or None for a slice without body.
    centre: Vec<Option<[f64; 2]>>,
    /// Per slice × ray: (r_fascia, r_skin) in mm.
    band: Vec<[(f64, f64); RAYS]>,
    z0: f64,
    dz: f64,
    /// Median band thickness (mm) over every ray of every slice with body.
    pub median_band_mm: f64,
}

impl Habitus {
    /// Measures the band of label `fat` on every slice of `labels` (any non-zero label is body).
    pub fn measure(labels: &Volume<u16>, fat: u16) -> Habitus {
        let g = &labels.grid;
        let [nx, ny, nz] = g.dims;
        let step = 0.5 * g.spacing_mm[0].min(g.spacing_mm[1]);
        let mut centre = Vec::with_capacity(nz);
        let mut band = Vec::with_capacity(nz);
        let mut all = Vec::new();
        for k in 0..nz {
            let (mut sx, mut sy, mut n) = (0.0, 0.0, 0usize);
            for j in 0..ny {
                for i in 0..nx {
                    if labels.get(i, j, k) != 0 {
                        let p = g.world(i, j, k);
                        sx += p[0];
                        sy += p[1];
                        n += 1;
                    }
                }
            }
            if n == 0 {
                centre.push(None);
                band.push([(0.0, 0.0); RAYS]);
                continue;
            }
            let c = [sx / n as f64, sy / n as f64];
            let z = g.world(0, 0, k)[2];
            let r_max = g.extent_mm()[0].hypot(g.extent_mm()[1]);
            let mut raw = [(0.0, 0.0); RAYS];
            for (ray, slot) in raw.iter_mut().enumerate() {
                let th = ray as f64 * std::f64::consts::TAU / RAYS as f64;
                let (dx, dy) = (th.cos(), th.sin());
                let at = |r: f64| labels.sample_nearest([c[0] + r * dx, c[1] + r * dy, z]);
                // Inward from beyond the grid to the skin, then through the fat to the fascia.
                let mut r = r_max;
                while r > 0.0 && at(r).unwrap_or(0) == 0 {
                    r -= step;
                }
                let skin = r.max(0.0);
                while r > 0.0 && at(r) == Some(fat) {
                    r -= step;
                }
                *slot = (r.max(0.0), skin);
            }
            let mut smooth = [(0.0, 0.0); RAYS];
            for (ray, slot) in smooth.iter_mut().enumerate() {
                let mut acc = (0.0, 0.0);
                for d in 0..=2 * RAY_SMOOTH {
                    let q = raw[(ray + RAYS + d - RAY_SMOOTH) % RAYS];
                    acc.0 += q.0;
                    acc.1 += q.1;
                }
                let m = (2 * RAY_SMOOTH + 1) as f64;
                *slot = (acc.0 / m, acc.1 / m);
                all.push(slot.1 - slot.0);
            }
            centre.push(Some(c));
            band.push(smooth);
        }
        let band: Vec<[(f64, f64); RAYS]> = (0..nz)
            .map(|k| {
                if centre[k].is_none() {
                    return band[k];
                }
                let near: Vec<usize> = (k.saturating_sub(SLICE_SMOOTH)
                    ..=(k + SLICE_SMOOTH).min(nz - 1))
                    .filter(|&q| centre[q].is_some())
                    .collect();
                let m = near.len() as f64;
                std::array::from_fn(|ray| {
                    let (a, b) = near.iter().fold((0.0, 0.0), |acc, &q| {
                        (acc.0 + band[q][ray].0, acc.1 + band[q][ray].1)
                    });
                    (a / m, b / m)
                })
            })
            .collect();
        all.sort_by(f64::total_cmp);
        let median_band_mm = all.get(all.len() / 2).copied().unwrap_or(0.0);
        // Only the outer BAND_CAP × median of a band stretches: a ray whose "band" is much
        // thicker runs through something lying against the body (a hand beside the hip in the
        // abdomen atlas), which would otherwise be pushed far out.
        let cap = BAND_CAP * median_band_mm;
        let band = band
            .into_iter()
            .map(|rays| rays.map(|(fascia, skin)| (fascia.max(skin - cap), skin)))
            .collect();
        Habitus {
            centre,
            band,
            z0: g.origin_mm[2],
            dz: g.spacing_mm[2],
            median_band_mm,
        }
    }

    /// The smoothed (fascia, skin) radii (mm) of slice `k`, ray `ray`.
    pub(super) fn band_of(&self, k: usize, ray: usize) -> (f64, f64) {
        self.band[k][ray]
    }

    /// Slices the geometry was measured on.
    pub(super) fn slices(&self) -> usize {
        self.centre.len()
    }

    /// Pulls a point back through a band `f` times the atlas's (f > 0). The band geometry is
    /// interpolated linearly between slices, so the map is continuous in z too.
    #[inline]
    pub fn pull_back(&self, q: [f64; 3], f: f64) -> [f64; 3] {
        let n = self.centre.len();
        if f == 1.0 || n == 0 {
            return q;
        }
        let u = ((q[2] - self.z0) / self.dz).clamp(0.0, (n - 1) as f64);
        let k0 = u.floor() as usize;
        let k1 = (k0 + 1).min(n - 1);
        let w = u - k0 as f64;
        let (k0, k1, w) = match (self.centre[k0], self.centre[k1]) {
            (Some(_), Some(_)) => (k0, k1, w),
            (Some(_), None) => (k0, k0, 0.0),
            (None, Some(_)) => (k1, k1, 0.0),
            (None, None) => return q,
        };
        let (c0, c1) = (
            self.centre[k0].unwrap_or_default(),
            self.centre[k1].unwrap_or_default(),
        );
        let c = [c0[0] + w * (c1[0] - c0[0]), c0[1] + w * (c1[1] - c0[1])];
        let (dx, dy) = (q[0] - c[0], q[1] - c[1]);
        let r = dx.hypot(dy);
        if r == 0.0 {
            return q;
        }
        let ray =
            dy.atan2(dx).rem_euclid(std::f64::consts::TAU) * RAYS as f64 / std::f64::consts::TAU;
        let r0 = ray.floor() as usize % RAYS;
        let wr = ray - ray.floor();
        let at = |k: usize| {
            let (a, b) = (self.band[k][r0], self.band[k][(r0 + 1) % RAYS]);
            (a.0 + wr * (b.0 - a.0), a.1 + wr * (b.1 - a.1))
        };
        let (b0, b1) = (at(k0), at(k1));
        let fascia = b0.0 + w * (b1.0 - b0.0);
        let skin = b0.1 + w * (b1.1 - b0.1);
        let t = skin - fascia;
        let r_src = if r <= fascia || t <= 0.0 {
            r
        } else if r <= fascia + f * t {
            fascia + (r - fascia) / f
        } else {
            r + (1.0 - f) * t
        };
        let s = r_src / r;
        [c[0] + dx * s, c[1] + dy * s, q[2]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Grid;

    /// A disc of muscle (radius 60 mm) in a 20 mm fat ring: the band is measured as 20 mm, and
    /// doubling it moves the skin to 100 mm.
    #[test]
    fn measures_and_stretches_a_fat_ring() {
        let g = Grid::centered([100, 100, 3], [2.0, 2.0, 2.0]);
        let mut v = Volume::filled(g.clone(), 0u16);
        for idx in 0..g.len() {
            let [i, j, k] = g.ijk(idx);
            let p = g.world(i, j, k);
            let r = p[0].hypot(p[1]);
            v.data[idx] = if r <= 60.0 {
                1
            } else if r <= 80.0 {
                2
            } else {
                0
            };
        }
        let h = Habitus::measure(&v, 2);
        assert!(
            (h.median_band_mm - 20.0).abs() <= 2.5,
            "{}",
            h.median_band_mm
        );
        for th in [0.3f64, 1.9, 4.0] {
            let at = |r: f64| [r * th.cos(), r * th.sin(), 0.0];
            let lab = |q: [f64; 3]| v.sample_nearest(q).unwrap_or(0);
            // f = 2: 95 mm is fat (pulled back to ~77 mm), 105 mm is outside, 50 mm unchanged.
            assert_eq!(lab(h.pull_back(at(95.0), 2.0)), 2);
            assert_eq!(lab(h.pull_back(at(105.0), 2.0)), 0);
            assert_eq!(h.pull_back(at(50.0), 2.0), at(50.0));
            // f = 0.5: 75 mm is now outside the 70 mm skin.
            assert_eq!(lab(h.pull_back(at(75.0), 0.5)), 0);
            assert_eq!(lab(h.pull_back(at(65.0), 0.5)), 2);
        }
    }
}
