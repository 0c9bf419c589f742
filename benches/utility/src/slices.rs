//! Axial slices on one canvas: every source (cohort subject or real scan, any grid and
//! spacing) is resampled in-plane to the canvas spacing and centred on its body, so the
//! network sees the same physical scale whatever the source's spacing.
//!
//! CT intensity handling as a user would set it: two windows as two channels, a wide one
//! (−1000…1000 HU, lungs and bone) and a soft-tissue one (W 400 / L 40), each scaled to
//! about [−1, 1].

use synthcohort::volume::Volume;

/// Canvas: 88 × 72 pixels of 5 mm (440 × 360 mm), divisible by 8 for three poolings; 5 mm
/// keeps a training step under a second on one core.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Canvas {
    pub nx: usize,
    pub ny: usize,
    pub spacing_mm: f64,
}

impl Default for Canvas {
    fn default() -> Self {
        Canvas {
            nx: 88,
            ny: 72,
            spacing_mm: 5.0,
        }
    }
}

pub const CHANNELS: usize = 2;
/// Air, for pixels of the canvas outside the source's grid.
const OUTSIDE_HU: f32 = -1024.0;
/// Body threshold for centring, HU.
const BODY_HU: f32 = -500.0;

/// One axial slice: `CHANNELS` normalised planes and the class of each pixel.
#[derive(Clone, Debug)]
pub struct Slice {
    pub x: Vec<f32>,
    pub y: Vec<u8>,
    /// Source volume and slice index (for the split and for scoring in 3D).
    pub source: usize,
    pub k: usize,
}

/// The two CT windows of a HU value.
pub fn normalise_hu(hu: f32) -> [f32; CHANNELS] {
    [
        hu.clamp(-1000.0, 1000.0) / 1000.0,
        (hu.clamp(-160.0, 240.0) - 40.0) / 200.0,
    ]
}

/// In-plane centre of the body (voxels above −500 HU) over the whole volume, in voxel units;
/// the grid's centre when nothing is above the threshold.
fn body_centre(img: &Volume<f32>) -> [f64; 2] {
    let [nx, ny, _] = img.grid.dims;
    let (mut lo, mut hi) = ([usize::MAX; 2], [0usize; 2]);
    for (idx, &v) in img.data.iter().enumerate() {
        if v > BODY_HU {
            let (i, j) = (idx % nx, (idx / nx) % ny);
            lo = [lo[0].min(i), lo[1].min(j)];
            hi = [hi[0].max(i), hi[1].max(j)];
        }
    }
    if lo[0] == usize::MAX {
        return [(nx as f64 - 1.0) / 2.0, (ny as f64 - 1.0) / 2.0];
    }
    [(lo[0] + hi[0]) as f64 / 2.0, (lo[1] + hi[1]) as f64 / 2.0]
}

/// Every axial slice of `img` (HU) with its classes `cls` (same grid), on the canvas:
/// bilinear for the image, nearest for the classes.
pub fn slices_of(img: &Volume<f32>, cls: &Volume<u8>, source: usize, c: Canvas) -> Vec<Slice> {
    assert_eq!(
        img.grid.dims, cls.grid.dims,
        "image and classes on one grid"
    );
    let [nx, ny, nz] = img.grid.dims;
    let [sx, sy, _] = img.grid.spacing_mm;
    let centre = body_centre(img);
    // Canvas pixel → source voxel coordinates (fractional).
    let to_src = |u: usize, v: usize| {
        let dx = (u as f64 - (c.nx as f64 - 1.0) / 2.0) * c.spacing_mm;
        let dy = (v as f64 - (c.ny as f64 - 1.0) / 2.0) * c.spacing_mm;
        (centre[0] + dx / sx, centre[1] + dy / sy)
    };
    let plane = nx * ny;
    (0..nz)
        .map(|k| {
            let im = &img.data[k * plane..(k + 1) * plane];
            let lb = &cls.data[k * plane..(k + 1) * plane];
            let mut x = vec![0f32; CHANNELS * c.nx * c.ny];
            let mut y = vec![0u8; c.nx * c.ny];
            for v in 0..c.ny {
                for u in 0..c.nx {
                    let (fx, fy) = to_src(u, v);
                    let p = v * c.nx + u;
                    let hu = bilinear(im, nx, ny, fx, fy);
                    let (ri, rj) = (fx.round(), fy.round());
                    if ri >= 0.0 && rj >= 0.0 && (ri as usize) < nx && (rj as usize) < ny {
                        y[p] = lb[rj as usize * nx + ri as usize];
                    }
                    for (ch, val) in normalise_hu(hu).into_iter().enumerate() {
                        x[ch * c.nx * c.ny + p] = val;
                    }
                }
            }
            Slice { x, y, source, k }
        })
        .collect()
}

/// Bilinear sample of a plane at fractional voxel (fx, fy); air outside it.
fn bilinear(im: &[f32], nx: usize, ny: usize, fx: f64, fy: f64) -> f32 {
    if fx < 0.0 || fy < 0.0 || fx > (nx - 1) as f64 || fy > (ny - 1) as f64 {
        return OUTSIDE_HU;
    }
    let (i0, j0) = (fx.floor() as usize, fy.floor() as usize);
    let (i1, j1) = ((i0 + 1).min(nx - 1), (j0 + 1).min(ny - 1));
    let (tx, ty) = ((fx - i0 as f64) as f32, (fy - j0 as f64) as f32);
    let at = |i: usize, j: usize| im[j * nx + i];
    let top = at(i0, j0) * (1.0 - tx) + at(i1, j0) * tx;
    let bottom = at(i0, j1) * (1.0 - tx) + at(i1, j1) * tx;
    top * (1.0 - ty) + bottom * ty
}

#[cfg(test)]
mod tests {
    use super::*;
    use synthcohort::volume::Grid;

    /// A disc of 100 HU, radius 60 mm, on a 2 mm grid off-centre: on the 5 mm canvas it is
    /// centred, keeps its radius in mm, and its class follows it.
    #[test]
    fn resamples_to_canvas_scale_and_centres_the_body() {
        let grid = Grid::centered([120, 100, 2], [2.0, 2.0, 3.0]);
        let (cx, cy, r) = (70.0, 40.0, 30.0); // voxels: 60 mm radius
        let mut img = Volume::filled(grid.clone(), -1000.0f32);
        let mut cls = Volume::filled(grid, 0u8);
        for k in 0..2 {
            for j in 0..100 {
                for i in 0..120 {
                    if ((i as f64 - cx).powi(2) + (j as f64 - cy).powi(2)).sqrt() <= r {
                        img.set(i, j, k, 100.0);
                        cls.set(i, j, k, 1);
                    }
                }
            }
        }
        let s = slices_of(&img, &cls, 0, Canvas::default());
        assert_eq!(s.len(), 2);
        let c = Canvas::default();
        let inside: usize = s[0].y.iter().map(|&v| v as usize).sum();
        let area_mm2 = inside as f64 * 25.0;
        let true_area = std::f64::consts::PI * 60.0f64.powi(2);
        assert!(
            (area_mm2 / true_area - 1.0).abs() < 0.05,
            "{area_mm2} vs {true_area}"
        );
        // Centred: the canvas centre pixel is inside, and the class mass is centred.
        let (mut mu, mut mv) = (0.0, 0.0);
        for v in 0..c.ny {
            for u in 0..c.nx {
                if s[0].y[v * c.nx + u] == 1 {
                    mu += u as f64;
                    mv += v as f64;
                }
            }
        }
        let (mu, mv) = (mu / inside as f64, mv / inside as f64);
        assert!((mu - (c.nx as f64 - 1.0) / 2.0).abs() < 0.6, "{mu}");
        assert!((mv - (c.ny as f64 - 1.0) / 2.0).abs() < 0.6, "{mv}");
        // Windows: 100 HU reads 0.1 wide and 0.3 soft-tissue at the disc's centre.
        let p = (c.ny / 2) * c.nx + c.nx / 2;
        assert!((s[0].x[p] - 0.1).abs() < 1e-4);
        assert!((s[0].x[c.nx * c.ny + p] - 0.3).abs() < 1e-4);
    }
}
