//! Analytic ellipse phantoms for tests and benchmarks: the modified Shepp–Logan phantom
//! (Toft, PhD thesis, DTU 1996, table 2.1; the 0–1 range used by skimage), its supersampled
//! raster and exact line integrals.

use super::geometry::Plane;

/// An ellipse of constant `value` added to the image, in the phantom's units (mm or the
/// unit square); `phi_deg` rotates it anticlockwise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ellipse {
    pub value: f64,
    pub cx: f64,
    pub cy: f64,
    pub a: f64,
    pub b: f64,
    pub phi_deg: f64,
}

const fn e(value: f64, a: f64, b: f64, cx: f64, cy: f64, phi_deg: f64) -> Ellipse {
    Ellipse {
        value,
        cx,
        cy,
        a,
        b,
        phi_deg,
    }
}

/// Modified Shepp–Logan on [−1, 1]² (Toft 1996), values 0–1.
pub const SHEPP_LOGAN: &[Ellipse] = &[
    e(1.0, 0.69, 0.92, 0.0, 0.0, 0.0),
    e(-0.8, 0.6624, 0.874, 0.0, -0.0184, 0.0),
    e(-0.2, 0.11, 0.31, 0.22, 0.0, -18.0),
    e(-0.2, 0.16, 0.41, -0.22, 0.0, 18.0),
    e(0.1, 0.21, 0.25, 0.0, 0.35, 0.0),
    e(0.1, 0.046, 0.046, 0.0, 0.1, 0.0),
    e(0.1, 0.046, 0.046, 0.0, -0.1, 0.0),
    e(0.1, 0.046, 0.023, -0.08, -0.605, 0.0),
    e(0.1, 0.023, 0.023, 0.0, -0.606, 0.0),
    e(0.1, 0.023, 0.046, 0.06, -0.605, 0.0),
];

#[inline]
fn inside(el: &Ellipse, x: f64, y: f64) -> bool {
    let (s, c) = el.phi_deg.to_radians().sin_cos();
    let (dx, dy) = (x - el.cx, y - el.cy);
    let u = (c * dx + s * dy) / el.a;
    let v = (-s * dx + c * dy) / el.b;
    u * u + v * v <= 1.0
}

/// Raster on `plane` (x fastest) with `ss × ss` supersampling per pixel (area fractions).
pub fn rasterize_ellipses(ellipses: &[Ellipse], plane: &Plane, ss: usize) -> Vec<f32> {
    let mut img = vec![0.0f32; plane.len()];
    let w = 1.0 / (ss * ss) as f64;
    for j in 0..plane.ny {
        for i in 0..plane.nx {
            let c = plane.world(i, j);
            let mut acc = 0.0;
            for sj in 0..ss {
                for si in 0..ss {
                    let x = c[0] + ((si as f64 + 0.5) / ss as f64 - 0.5) * plane.spacing_mm[0];
                    let y = c[1] + ((sj as f64 + 0.5) / ss as f64 - 0.5) * plane.spacing_mm[1];
                    for el in ellipses {
                        if inside(el, x, y) {
                            acc += el.value * w;
                        }
                    }
                }
            }
            img[j * plane.nx + i] = acc as f32;
        }
    }
    img
}

/// Exact line integral along the line through `a` with unit direction `d`:
/// Σ value × chord, the chord from |P + sD|² = 1 in each ellipse's unit-circle frame.
pub fn ellipse_line_integral(ellipses: &[Ellipse], a: [f64; 2], d: [f64; 2]) -> f64 {
    let mut sum = 0.0;
    for el in ellipses {
        let (s, c) = el.phi_deg.to_radians().sin_cos();
        let (px, py) = (a[0] - el.cx, a[1] - el.cy);
        let p = [(c * px + s * py) / el.a, (-s * px + c * py) / el.b];
        let q = [(c * d[0] + s * d[1]) / el.a, (-s * d[0] + c * d[1]) / el.b];
        let qq = q[0] * q[0] + q[1] * q[1];
        let pq = p[0] * q[0] + p[1] * q[1];
        let disc = pq * pq - qq * (p[0] * p[0] + p[1] * p[1] - 1.0);
        if disc > 0.0 {
            sum += el.value * 2.0 * disc.sqrt() / qq;
        }
    }
    sum
}
