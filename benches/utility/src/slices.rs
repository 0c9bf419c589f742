//! Axial slices on one canvas: every source (cohort subject or real scan, any grid and
//! spacing) is resampled in-plane to the canvas spacing and centred on its body, so the
//! network sees the same physical scale whatever the source's spacing.
//!
//! Intensity handling as a user would set it, two channels in about [−1, 1]:
//! - CT: two windows, a wide one (−1000…1000 HU, lungs and bone) and a soft-tissue one
//!   (W 400 / L 40);
//! - MR (arbitrary units, scanner- and subject-dependent): a z-score over the body, clipped
//!   at ±3 SD (nnU-Net's MR scheme), and the body's 0.5–99.5th percentiles mapped onto
//!   [−1, 1] (TorchIO's `RescaleIntensity` with percentiles). The body: voxels above 10 % of
//!   the robust intensity range (2nd–98th percentile of an in-plane 3 × 3 mean), air
//!   speckles dropped, holes filled slice by slice.

use synthcohort::anatomy::atlas::derive::flood_2d;
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
/// MR body threshold: this fraction of the robust range (2nd–98th percentile) above its
/// low end, as FSL's BET sets its brain/background threshold.
const BODY_MR_FRACTION: f64 = 0.1;

/// What kind of image a volume is, which sets its intensity handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    /// CT in HU.
    Ct,
    /// MR magnitude, arbitrary units.
    Mr,
}

/// How one volume's values become the network's channels.
#[derive(Clone, Copy, Debug)]
enum Norm {
    Hu,
    /// z-score and percentile window over the body.
    Mr {
        mean: f32,
        sd: f32,
        lo: f32,
        hi: f32,
    },
}

impl Norm {
    fn channels(self, v: f32) -> [f32; CHANNELS] {
        match self {
            Norm::Hu => normalise_hu(v),
            Norm::Mr { mean, sd, lo, hi } => [
                ((v - mean) / sd).clamp(-3.0, 3.0) / 3.0,
                ((v.clamp(lo, hi) - lo) / (hi - lo)) * 2.0 - 1.0,
            ],
        }
    }
}

/// A volume's centre, fill value for the canvas outside its grid, and normalisation.
struct Prepared {
    centre: [f64; 2],
    outside: f32,
    norm: Norm,
}

fn prepare(img: &Volume<f32>, modality: Modality) -> Prepared {
    match modality {
        Modality::Ct => Prepared {
            centre: mask_centre(img.data.iter().map(|&v| v > BODY_HU), img.grid.dims),
            outside: OUTSIDE_HU,
            norm: Norm::Hu,
        },
        Modality::Mr => {
            // Magnitude noise in air (Rician) reaches well above zero in a low-SNR image, so
            // the threshold comes from an in-plane 3×3 mean (noise SD a third), and a voxel
            // above it counts as body only where its neighbourhood is too (no air speckles);
            // dark tissue inside the body (fluid, spleen on T1) is taken in by the hole fill.
            let smooth = box3(img);
            let mut sorted: Vec<f32> = smooth
                .data
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            let p2 = percentile(&mut sorted, 0.02);
            let p98 = percentile(&mut sorted, 0.98);
            let threshold = p2 + (BODY_MR_FRACTION * (p98 - p2) as f64) as f32;
            let mut body = body_mask(img, threshold);
            for ((b, &v), &sm) in body.iter_mut().zip(&img.data).zip(&smooth.data) {
                if v > threshold && sm <= threshold {
                    *b = false;
                }
            }
            let mut inside: Vec<f32> = img
                .data
                .iter()
                .zip(&body)
                .filter(|(_, &b)| b)
                .map(|(&v, _)| v)
                .collect();
            let mut outside: Vec<f32> = img
                .data
                .iter()
                .zip(&body)
                .filter(|(_, &b)| !b)
                .map(|(&v, _)| v)
                .collect();
            let n = inside.len().max(1) as f64;
            let mean = inside.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = inside
                .iter()
                .map(|&v| (v as f64 - mean).powi(2))
                .sum::<f64>()
                / n;
            let sd = (var.sqrt() as f32).max(f32::EPSILON);
            let lo = percentile(&mut inside, 0.005);
            let hi = percentile(&mut inside, 0.995).max(lo + f32::EPSILON);
            Prepared {
                centre: mask_centre(body.iter().copied(), img.grid.dims),
                outside: if outside.is_empty() {
                    lo
                } else {
                    percentile(&mut outside, 0.5)
                },
                norm: Norm::Mr {
                    mean: mean as f32,
                    sd,
                    lo,
                    hi,
                },
            }
        }
    }
}

/// In-plane 3 × 3 mean of every slice (over the neighbours inside the grid at its edges).
fn box3(img: &Volume<f32>) -> Volume<f32> {
    let [nx, ny, nz] = img.grid.dims;
    let plane = nx * ny;
    let mut out = img.clone();
    for k in 0..nz {
        let im = &img.data[k * plane..(k + 1) * plane];
        for j in 0..ny {
            for i in 0..nx {
                let (mut sum, mut n) = (0f32, 0f32);
                for jj in j.saturating_sub(1)..(j + 2).min(ny) {
                    for ii in i.saturating_sub(1)..(i + 2).min(nx) {
                        sum += im[jj * nx + ii];
                        n += 1.0;
                    }
                }
                out.data[k * plane + j * nx + i] = sum / n;
            }
        }
    }
    out
}

/// The q-quantile (nearest rank) of `v`, reordering it; 0 for an empty slice.
fn percentile(v: &mut [f32], q: f64) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let k = ((v.len() - 1) as f64 * q).round() as usize;
    *v.select_nth_unstable_by(k, |a, b| a.total_cmp(b)).1
}

/// Body voxels: above `threshold`, or enclosed in their axial slice by voxels above it
/// (everything not reachable from the slice's border through voxels at or below it).
fn body_mask(img: &Volume<f32>, threshold: f32) -> Vec<bool> {
    let [nx, ny, _] = img.grid.dims;
    img.data
        .chunks(nx * ny)
        .flat_map(|im| {
            let wall: Vec<bool> = im.iter().map(|&v| v > threshold).collect();
            flood_2d(nx, ny, &wall).into_iter().map(|air| !air)
        })
        .collect()
}

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

/// In-plane centre of the bounding box of the body (`mask`, voxels in volume order) over the
/// whole volume, in voxel units; the grid's centre for an empty mask.
fn mask_centre(mask: impl Iterator<Item = bool>, dims: [usize; 3]) -> [f64; 2] {
    let [nx, ny, _] = dims;
    let (mut lo, mut hi) = ([usize::MAX; 2], [0usize; 2]);
    for (idx, inside) in mask.enumerate() {
        if inside {
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

/// Every axial slice of `img` with its classes `cls` (same grid), on the canvas: bilinear
/// for the image, nearest for the classes, intensities normalised as `modality` sets.
pub fn slices_of(
    img: &Volume<f32>,
    cls: &Volume<u8>,
    source: usize,
    c: Canvas,
    modality: Modality,
) -> Vec<Slice> {
    assert_eq!(
        img.grid.dims, cls.grid.dims,
        "image and classes on one grid"
    );
    let [nx, ny, nz] = img.grid.dims;
    let [sx, sy, _] = img.grid.spacing_mm;
    let prep = prepare(img, modality);
    let centre = prep.centre;
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
                    let value = bilinear(im, nx, ny, fx, fy, prep.outside);
                    let (ri, rj) = (fx.round(), fy.round());
                    if ri >= 0.0 && rj >= 0.0 && (ri as usize) < nx && (rj as usize) < ny {
                        y[p] = lb[rj as usize * nx + ri as usize];
                    }
                    for (ch, val) in prep.norm.channels(value).into_iter().enumerate() {
                        x[ch * c.nx * c.ny + p] = val;
                    }
                }
            }
            Slice { x, y, source, k }
        })
        .collect()
}

/// Bilinear sample of a plane at fractional voxel (fx, fy); `outside` outside it.
fn bilinear(im: &[f32], nx: usize, ny: usize, fx: f64, fy: f64, outside: f32) -> f32 {
    if fx < 0.0 || fy < 0.0 || fx > (nx - 1) as f64 || fy > (ny - 1) as f64 {
        return outside;
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
        let s = slices_of(&img, &cls, 0, Canvas::default(), Modality::Ct);
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

    /// An MR body of two halves (200 and 400 a.u.) around a dark 10 a.u. cyst, in air of
    /// 5 a.u. with bright speckles: the cyst belongs to the body (hole fill), the speckles do
    /// not, the z-score uses the body's mean and SD (analytic from the three areas), and the
    /// percentile window spans the body.
    #[test]
    fn mr_z_score_over_the_filled_body() {
        let (n, nz) = (60, 2);
        let grid = Grid::centered([n, n, nz], [4.0, 4.0, 4.0]);
        let mut img = Volume::filled(grid.clone(), 5.0f32);
        let cls = Volume::filled(grid, 0u8);
        let (mut a, mut b, mut cyst) = (0usize, 0usize, 0usize);
        for k in 0..nz {
            for j in 10..50 {
                for i in 10..50 {
                    let v = if (20..26).contains(&i) && (20..26).contains(&j) {
                        cyst += 1;
                        10.0
                    } else if i < 30 {
                        a += 1;
                        200.0
                    } else {
                        b += 1;
                        400.0
                    };
                    img.set(i, j, k, v);
                }
            }
        }
        // Rician-like air speckles far above the threshold: neither body nor centre.
        for k in 0..nz {
            for (i, j) in [(2, 2), (4, 2), (2, 4), (6, 6)] {
                img.set(i, j, k, 300.0);
            }
        }
        let total = (a + b + cyst) as f64;
        let mean = (200.0 * a as f64 + 400.0 * b as f64 + 10.0 * cyst as f64) / total;
        let var = (a as f64 * (200.0 - mean).powi(2)
            + b as f64 * (400.0 - mean).powi(2)
            + cyst as f64 * (10.0 - mean).powi(2))
            / total;
        let z = |v: f64| ((v - mean) / var.sqrt()).clamp(-3.0, 3.0) / 3.0;
        let c = Canvas::default();
        let s = slices_of(&img, &cls, 0, c, Modality::Mr);
        // Canvas pixel of source voxel (i, j): the body's box is centred on the canvas.
        let centre = 29.5;
        let at = |i: usize, j: usize| {
            let u = ((i as f64 - centre) * 4.0 / c.spacing_mm + (c.nx as f64 - 1.0) / 2.0).round();
            let v = ((j as f64 - centre) * 4.0 / c.spacing_mm + (c.ny as f64 - 1.0) / 2.0).round();
            v as usize * c.nx + u as usize
        };
        // Sample well inside each region so bilinear blending does not reach a border.
        for (i, j, v) in [(15, 40, 200.0), (44, 40, 400.0)] {
            let got = s[0].x[at(i, j)] as f64;
            assert!((got - z(v)).abs() < 1e-3, "z({v}) = {got}, want {}", z(v));
        }
        // The window: the body's 99.5th percentile (400) maps to 1, its 0.5th (the cyst, 10,
        // 1.4 % of the body) to −1.
        assert!((s[0].x[c.nx * c.ny + at(44, 40)] - 1.0).abs() < 1e-5);
        assert!((s[0].x[c.nx * c.ny + at(22, 22)] + 1.0).abs() < 1e-3);
        // Air outside the grid reads the air level, not zero: the outermost canvas column is
        // beyond the 240 mm grid and equals the air z-score.
        assert!((s[0].x[0] as f64 - z(5.0)).abs() < 1e-3);
    }
}
