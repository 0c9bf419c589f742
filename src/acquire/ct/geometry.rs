//! Scan geometries: parallel (tests), fan (axial, flat virtual detector at isocentre) and
//! circular cone. The rotation axis is world z; view v's source sits at angle
//! β_v = 2π·v/views in the xy plane. Detector coordinates are given at isocentre
//! (equispaced), the convention of Kak & Slaney, *Principles of Computerized Tomographic
//! Imaging* (IEEE 1988), §3.4.2, so magnification never enters the reconstruction weights.

use std::f64::consts::PI;

/// A 2D pixel plane: `nx × ny` pixels, x fastest, world position of pixel (0, 0) in mm.
#[derive(Clone, Debug, PartialEq)]
pub struct Plane {
    pub nx: usize,
    pub ny: usize,
    pub spacing_mm: [f64; 2],
    pub origin_mm: [f64; 2],
}

impl Plane {
    /// A plane centred on the rotation axis.
    pub fn centered(nx: usize, ny: usize, spacing_mm: [f64; 2]) -> Plane {
        Plane {
            nx,
            ny,
            spacing_mm,
            origin_mm: [
                -0.5 * (nx as f64 - 1.0) * spacing_mm[0],
                -0.5 * (ny as f64 - 1.0) * spacing_mm[1],
            ],
        }
    }

    /// The in-plane geometry of a volume grid's slices.
    pub fn of_grid(g: &crate::volume::Grid) -> Plane {
        Plane {
            nx: g.dims[0],
            ny: g.dims[1],
            spacing_mm: [g.spacing_mm[0], g.spacing_mm[1]],
            origin_mm: [g.origin_mm[0], g.origin_mm[1]],
        }
    }

    pub fn len(&self) -> usize {
        self.nx * self.ny
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn world(&self, i: usize, j: usize) -> [f64; 2] {
        [
            self.origin_mm[0] + i as f64 * self.spacing_mm[0],
            self.origin_mm[1] + j as f64 * self.spacing_mm[1],
        ]
    }
}

/// Detector element centres, `(i − (n−1)/2)·pitch`.
#[inline]
pub fn det_pos(i: usize, n: usize, pitch: f64) -> f64 {
    (i as f64 - 0.5 * (n as f64 - 1.0)) * pitch
}

/// Parallel beam: ray (θ, t) runs along (−sin θ, cos θ) through t·(cos θ, sin θ).
#[derive(Clone, Debug, PartialEq)]
pub struct ParallelGeometry {
    pub angles_rad: Vec<f64>,
    pub det_count: usize,
    pub det_spacing_mm: f64,
}

impl ParallelGeometry {
    /// `views` angles evenly over [0, π).
    pub fn half_turn(views: usize, det_count: usize, det_spacing_mm: f64) -> Self {
        ParallelGeometry {
            angles_rad: (0..views).map(|v| PI * v as f64 / views as f64).collect(),
            det_count,
            det_spacing_mm,
        }
    }

    /// (point on the ray, unit direction), mm.
    #[inline]
    pub fn ray(&self, view: usize, det: usize) -> ([f64; 2], [f64; 2]) {
        let (s, c) = self.angles_rad[view].sin_cos();
        let t = det_pos(det, self.det_count, self.det_spacing_mm);
        ([t * c, t * s], [-s, c])
    }
}

/// Fan beam over a full rotation, flat virtual detector through the isocentre.
#[derive(Clone, Debug, PartialEq)]
pub struct FanGeometry {
    pub views: usize,
    pub sid_mm: f64,
    pub det_count: usize,
    /// Detector pitch at isocentre, mm.
    pub det_spacing_mm: f64,
}

impl FanGeometry {
    #[inline]
    pub fn beta(&self, view: usize) -> f64 {
        2.0 * PI * view as f64 / self.views as f64
    }

    /// (source position, unit direction) of ray (view, det), mm.
    #[inline]
    pub fn ray(&self, view: usize, det: usize) -> ([f64; 2], [f64; 2]) {
        let (sb, cb) = self.beta(view).sin_cos();
        let r = self.sid_mm;
        let p = det_pos(det, self.det_count, self.det_spacing_mm);
        let src = [r * cb, r * sb];
        let d = [-p * sb - src[0], p * cb - src[1]];
        let n = (d[0] * d[0] + d[1] * d[1]).sqrt();
        (src, [d[0] / n, d[1] / n])
    }
}

/// Circular cone beam, flat virtual detector through the isocentre; the source and the
/// detector centre sit at height `z_mm`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConeGeometry {
    pub views: usize,
    pub sid_mm: f64,
    pub cols: usize,
    pub rows: usize,
    /// Pixel pitch at isocentre (columns and rows), mm.
    pub pixel_mm: f64,
    pub z_mm: f64,
}

impl ConeGeometry {
    #[inline]
    pub fn beta(&self, view: usize) -> f64 {
        2.0 * PI * view as f64 / self.views as f64
    }

    /// (source position, unit direction) of ray (view, row, col), mm.
    #[inline]
    pub fn ray(&self, view: usize, row: usize, col: usize) -> ([f64; 3], [f64; 3]) {
        let (sb, cb) = self.beta(view).sin_cos();
        let r = self.sid_mm;
        let p = det_pos(col, self.cols, self.pixel_mm);
        let zeta = det_pos(row, self.rows, self.pixel_mm);
        let src = [r * cb, r * sb, self.z_mm];
        let d = [-p * sb - src[0], p * cb - src[1], zeta];
        let n = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        (src, [d[0] / n, d[1] / n, d[2] / n])
    }

    /// z range (mm) fully seen by every view: the detector's z half-width shrinks to
    /// (R − r)/R of itself at radius r on the source side; use the FOV radius.
    pub fn covered_z(&self, fov_radius_mm: f64) -> (f64, f64) {
        let half = 0.5 * self.rows as f64 * self.pixel_mm;
        let h = half * (self.sid_mm - fov_radius_mm) / self.sid_mm;
        (self.z_mm - h, self.z_mm + h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn central_rays_pass_through_isocentre() {
        let f = FanGeometry {
            views: 8,
            sid_mm: 500.0,
            det_count: 5,
            det_spacing_mm: 1.0,
        };
        let (s, d) = f.ray(3, 2);
        // Distance from the origin to the line: |s × d|.
        assert!((s[0] * d[1] - s[1] * d[0]).abs() < 1e-9);
        let p = ParallelGeometry::half_turn(4, 3, 2.0);
        let (a, d) = p.ray(1, 2);
        assert!((a[0] * d[0] + a[1] * d[1]).abs() < 1e-12);
    }
}
