//! A real CT and its organ segmentation become an atlas label map.
//!
//! Organ segmentations (TotalSegmentator's `total` task) leave the body's bulk unlabelled: the
//! outline, subcutaneous and visceral fat, the muscle the task has no class for, gas outside
//! the gut labels. Those come from the CT itself by fixed Hounsfield windows inside the body,
//! and every voxel so painted is counted in [`DeriveReport`]:
//!
//! - **body**: every voxel with HU > −500 (midway between air and fat) or an organ label,
//!   closed per axial slice (everything air cannot reach from the slice border is body, so gas
//!   in the bowel and the lungs is inside), then the largest 3-D connected part (the table and
//!   blankets are separate parts and go).
//! - **fat**, HU −500…−30 (the −190…−30 HU adipose window of CT body composition, Mourtzakis et
//!   al., Appl Physiol Nutr Metab 2008;33:997; the −500…−190 HU partial-volume rim between fat and
//!   air goes with fat): *subcutaneous* where it connects, through fat within
//!   [`SUBCUT_MAX_DEPTH_MM`] of the skin, to the skin; *torso fat* (visceral and intermuscular)
//!   otherwise.
//! - **skeletal muscle**, HU −30…150 (the same protocol's −29…150 HU muscle window): unlabelled
//!   soft tissue, which in the trunk is mostly the muscle the task has no class for (abdominal
//!   wall, intercostals); vessel and bowel walls and lymph nodes fall in it too.
//! - **soft tissue** (`body`), HU > 150 outside every label: unlabelled calcification and
//!   enhancing vessels.
//! - **intestinal gas**, HU ≤ −500 inside the body outside every label.
//!
//! Reconstructed fields of view often cut the patient's flanks: the body outline there is a
//! straight edge. Each axial slice gets an axis-aligned ellipse fitted to the outline where it
//! is not cut (smoothed over ±3 slices), and the cut rows and columns are extended outward to
//! that ellipse, as subcutaneous fat, on a grid padded by [`PAD_MM`]; the report counts them.

use std::collections::VecDeque;

use serde::Serialize;

use super::super::geom::solve_linear;
use super::super::lesion::edt_sq;
use super::super::ontology::{BODY, INTESTINAL_GAS, SKELETAL_MUSCLE, SUBCUTANEOUS_FAT, TORSO_FAT};
use crate::volume::{neighbours4, neighbours6, Grid, Volume};

/// Skin threshold (HU): midway between air (−1000) and fat (about −100).
pub const BODY_HU: f32 = -500.0;
/// Upper end of the fat window (HU).
pub const FAT_MAX_HU: f32 = -30.0;
/// Upper end of the muscle window (HU).
pub const MUSCLE_MAX_HU: f32 = 150.0;
/// Fat deeper than this below the skin is never subcutaneous (mm). Tuned on the TotalSegmentator
/// tissue-types map of the shipped CT's slices 82–96 (Dice of subcutaneous fat 0.73 with no
/// limit, 0.86 at 45 mm, where the flood no longer leaks through thin abdominal wall into the
/// mesentery) and reported on slices 97–111 (see the atlas card).
pub const SUBCUT_MAX_DEPTH_MM: f64 = 45.0;
/// Room (mm) on each side in x and y for completing an outline the field of view cut.
pub const PAD_MM: f64 = 75.0;
/// Slices on either side averaged into a slice's outline ellipse.
const ELLIPSE_SMOOTH: usize = 3;
/// Reconstructions often leave a voxel or two of air at the field's edge: a body within this
/// many voxels of the edge counts as cut there.
const EDGE_MARGIN: usize = 2;
/// Fewest uncut outline points for an ellipse fit.
const MIN_OUTLINE_POINTS: usize = 24;

/// What the derivation painted, for the atlas card and provenance.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DeriveReport {
    pub body_voxels: usize,
    pub organ_voxels: usize,
    pub subcutaneous_fat_voxels: usize,
    pub torso_fat_voxels: usize,
    pub skeletal_muscle_voxels: usize,
    pub soft_tissue_voxels: usize,
    pub intestinal_gas_voxels: usize,
    /// Voxels added beyond the original field of view to complete a cut outline.
    pub completed_voxels: usize,
    /// Axial slices whose outline the field of view cut.
    pub cut_slices: usize,
    /// Widest completion (mm) past the original field's edge.
    pub max_completion_mm: f64,
    /// 3-D parts above the skin threshold left out (table, blankets, cables).
    pub dropped_parts: usize,
}

#[derive(thiserror::Error, Debug)]
pub enum DeriveError {
    #[error("the CT ({ct:?}) and its segmentation ({seg:?}) are on different grids")]
    GridMismatch { ct: Box<Grid>, seg: Box<Grid> },
    #[error("no voxel of the CT is above {BODY_HU} HU: not a CT in Hounsfield units?")]
    NoBody,
}

/// Derives the atlas label map from `ct` (HU) and `seg` (ontology ids, on the CT's grid).
pub fn derive(
    ct: &Volume<f32>,
    seg: &Volume<u16>,
) -> Result<(Volume<u16>, DeriveReport), DeriveError> {
    if ct.grid != seg.grid {
        return Err(DeriveError::GridMismatch {
            ct: Box::new(ct.grid.clone()),
            seg: Box::new(seg.grid.clone()),
        });
    }
    let g0 = &ct.grid;
    let [nx0, ny0, nz] = g0.dims;
    let pad = [0, 1].map(|a| (PAD_MM / g0.spacing_mm[a]).round() as usize);
    let grid = Grid {
        dims: [nx0 + 2 * pad[0], ny0 + 2 * pad[1], nz],
        spacing_mm: g0.spacing_mm,
        origin_mm: [
            g0.origin_mm[0] - pad[0] as f64 * g0.spacing_mm[0],
            g0.origin_mm[1] - pad[1] as f64 * g0.spacing_mm[1],
            g0.origin_mm[2],
        ],
    };
    // Padded index → original index, None in the padding.
    let orig = |i: usize, j: usize, k: usize| -> Option<usize> {
        let (io, jo) = (i.checked_sub(pad[0])?, j.checked_sub(pad[1])?);
        (io < nx0 && jo < ny0).then(|| g0.index(io, jo, k))
    };
    let mut report = DeriveReport::default();

    // Body: closed per slice, then the largest 3-D part.
    let mut body = close_slices(&grid, |v| {
        let [i, j, k] = grid.ijk(v);
        orig(i, j, k).is_some_and(|o| ct.data[o] > BODY_HU || seg.data[o] != 0)
    });
    let (keep, dropped) = largest_component(&grid, &mut body);
    if keep == 0 {
        return Err(DeriveError::NoBody);
    }
    report.dropped_parts = dropped;

    // Outline completion where the field of view cut the body.
    let ellipses = slice_ellipses(&grid, &body, pad, [nx0, ny0]);
    let mut labels = vec![0u16; grid.len()];
    for (k, e) in ellipses.iter().enumerate() {
        let Some(e) = *e else { continue };
        let added = complete_slice(&grid, &mut body, k, pad, [nx0, ny0], e, &mut labels);
        if added.0 > 0 {
            report.cut_slices += 1;
            report.completed_voxels += added.0;
            report.max_completion_mm = report.max_completion_mm.max(added.1);
        }
    }

    // Organs from the segmentation, the rest by HU window.
    const FAT: u16 = u16::MAX;
    for idx in 0..grid.len() {
        if !body[idx] || labels[idx] != 0 {
            continue;
        }
        let [i, j, k] = grid.ijk(idx);
        let Some(o) = orig(i, j, k) else { continue };
        let (l, hu) = (seg.data[o], ct.data[o]);
        labels[idx] = if l != 0 {
            report.organ_voxels += 1;
            l
        } else if hu <= BODY_HU {
            report.intestinal_gas_voxels += 1;
            INTESTINAL_GAS
        } else if hu <= FAT_MAX_HU {
            FAT
        } else if hu <= MUSCLE_MAX_HU {
            report.skeletal_muscle_voxels += 1;
            SKELETAL_MUSCLE
        } else {
            report.soft_tissue_voxels += 1;
            BODY
        };
    }
    split_fat(&grid, &body, &mut labels, FAT);
    for &l in &labels {
        match l {
            SUBCUTANEOUS_FAT => report.subcutaneous_fat_voxels += 1,
            TORSO_FAT => report.torso_fat_voxels += 1,
            _ => {}
        }
    }
    report.body_voxels = body.iter().filter(|&&b| b).count();
    Ok((Volume::from_vec(grid, labels), report))
}

/// Per axial slice, everything air cannot reach from the slice's border through voxels
/// outside `wall` (after one-pixel lines are opened away): the body, gas inside it included.
pub(super) fn close_slices(grid: &Grid, wall: impl Fn(usize) -> bool) -> Vec<bool> {
    let [nx, ny, nz] = grid.dims;
    let plane = nx * ny;
    let mut body = vec![false; grid.len()];
    for k in 0..nz {
        let cand: Vec<bool> = (0..plane).map(|p| wall(k * plane + p)).collect();
        let outside = flood_2d(nx, ny, &open_2d(nx, ny, &cand));
        for (p, out) in outside.into_iter().enumerate() {
            body[k * plane + p] = !out;
        }
    }
    body
}

/// Binary opening by the 4-neighbour cross: drops lines one pixel thick (the table top and
/// blankets where they touch the skin) and keeps everything thicker.
pub(super) fn open_2d(nx: usize, ny: usize, m: &[bool]) -> Vec<bool> {
    let full = |p: usize| {
        let (i, j) = (p % nx, p / nx);
        i > 0 && j > 0 && i + 1 < nx && j + 1 < ny
    };
    let eroded: Vec<bool> = (0..m.len())
        .map(|p| m[p] && full(p) && neighbours4(p, nx, ny).all(|q| m[q]))
        .collect();
    (0..m.len())
        .map(|p| eroded[p] || (m[p] && neighbours4(p, nx, ny).any(|q| eroded[q])))
        .collect()
}

/// Pixels of an nx × ny slice that air reaches from the border (4-connected) through pixels
/// not in `wall` (the complement is the body with its holes filled).
pub fn flood_2d(nx: usize, ny: usize, wall: &[bool]) -> Vec<bool> {
    let mut out = vec![false; nx * ny];
    let mut q = VecDeque::new();
    for i in 0..nx {
        for j in [0, ny - 1] {
            q.push_back(i + nx * j);
        }
    }
    for j in 0..ny {
        for i in [0, nx - 1] {
            q.push_back(i + nx * j);
        }
    }
    while let Some(p) = q.pop_front() {
        if out[p] || wall[p] {
            continue;
        }
        out[p] = true;
        q.extend(neighbours4(p, nx, ny));
    }
    out
}

/// Keeps only the largest 6-connected part of `mask`; returns (its size, parts dropped).
pub(super) fn largest_component(grid: &Grid, mask: &mut [bool]) -> (usize, usize) {
    let (comp, sizes) = components(grid, mask);
    let best = (1..sizes.len()).max_by_key(|&c| sizes[c]).unwrap_or(0);
    for (m, &c) in mask.iter_mut().zip(&comp) {
        *m = c != 0 && c as usize == best;
    }
    (
        sizes.get(best).copied().unwrap_or(0),
        sizes.len().saturating_sub(2),
    )
}

/// 6-connected parts of `mask`: per voxel its part (0 = none) and each part's size (index 0
/// unused), numbered in scan order.
pub(super) fn components(g: &Grid, mask: &[bool]) -> (Vec<u32>, Vec<usize>) {
    let mut comp = vec![0u32; mask.len()];
    let mut sizes = vec![0usize];
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || comp[start] != 0 {
            continue;
        }
        let id = sizes.len() as u32;
        comp[start] = id;
        stack.push(start);
        let mut n = 0;
        while let Some(v) = stack.pop() {
            n += 1;
            for q in neighbours6(g, v) {
                if mask[q] && comp[q] == 0 {
                    comp[q] = id;
                    stack.push(q);
                }
            }
        }
        sizes.push(n);
    }
    (comp, sizes)
}

/// Axis-aligned ellipse (centre x, centre y, semi-axis x, semi-axis y), in padded voxel units.
type Ellipse = [f64; 4];

/// Per slice, the ellipse fitted to the uncut outline, smoothed over neighbouring slices.
fn slice_ellipses(
    grid: &Grid,
    body: &[bool],
    pad: [usize; 2],
    orig_dims: [usize; 2],
) -> Vec<Option<Ellipse>> {
    let [nx, ny, nz] = grid.dims;
    let m = EDGE_MARGIN;
    let in_orig = |i: usize, j: usize| {
        i >= pad[0] + m
            && j >= pad[1] + m
            && i + m < pad[0] + orig_dims[0]
            && j + m < pad[1] + orig_dims[1]
    };
    let raw: Vec<Option<Ellipse>> = (0..nz)
        .map(|k| {
            let b = |i: usize, j: usize| body[i + nx * (j + ny * k)];
            let mut pts = Vec::new();
            for j in 1..ny - 1 {
                for i in 1..nx - 1 {
                    if !b(i, j) {
                        continue;
                    }
                    // An outline point has air beside it inside the original field; points
                    // beside the padding are where the field cut the body.
                    let nbrs = [(i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)];
                    let to_air = nbrs.iter().any(|&(a, c)| !b(a, c) && in_orig(a, c));
                    let to_pad = nbrs.iter().any(|&(a, c)| !in_orig(a, c));
                    if to_air && !to_pad {
                        pts.push((i as f64, j as f64));
                    }
                }
            }
            fit_ellipse(&pts)
        })
        .collect();
    (0..nz)
        .map(|k| {
            raw[k]?;
            let lo = k.saturating_sub(ELLIPSE_SMOOTH);
            let hi = (k + ELLIPSE_SMOOTH).min(nz - 1);
            let fits: Vec<Ellipse> = raw[lo..=hi].iter().flatten().copied().collect();
            let n = fits.len() as f64;
            Some([0, 1, 2, 3].map(|c| fits.iter().map(|f| f[c]).sum::<f64>() / n))
        })
        .collect()
}

/// Least-squares fit of A x² + B y² + C x + D y = 1 (about the points' mean, for conditioning);
/// None unless it is a real ellipse.
fn fit_ellipse(pts: &[(f64, f64)]) -> Option<Ellipse> {
    if pts.len() < MIN_OUTLINE_POINTS {
        return None;
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let mut ata = [[0.0f64; 4]; 4];
    let mut atb = [0.0f64; 4];
    for &(x, y) in pts {
        let (x, y) = (x - mx, y - my);
        let r = [x * x, y * y, x, y];
        for a in 0..4 {
            atb[a] += r[a];
            for b in 0..4 {
                ata[a][b] += r[a] * r[b];
            }
        }
    }
    let m = ata.iter().map(|r| r.to_vec()).collect();
    let x = solve_linear(m, atb.to_vec())?;
    let [a, b, c, d] = [x[0], x[1], x[2], x[3]];
    if a <= 0.0 || b <= 0.0 {
        return None;
    }
    let (x0, y0) = (-c / (2.0 * a), -d / (2.0 * b));
    let rhs = 1.0 + a * x0 * x0 + b * y0 * y0;
    (rhs > 0.0).then(|| [x0 + mx, y0 + my, (rhs / a).sqrt(), (rhs / b).sqrt()])
}

/// Extends the rows and columns where the field cut slice `k` outward to ellipse `e`, as
/// subcutaneous fat; returns (voxels added, widest extension in mm).
fn complete_slice(
    grid: &Grid,
    body: &mut [bool],
    k: usize,
    pad: [usize; 2],
    orig_dims: [usize; 2],
    e: Ellipse,
    labels: &mut [u16],
) -> (usize, f64) {
    let [nx, ny, _] = grid.dims;
    let inside = |i: usize, j: usize| {
        let (u, v) = ((i as f64 - e[0]) / e[2], (j as f64 - e[1]) / e[3]);
        u * u + v * v <= 1.0
    };
    let mut added = 0;
    let mut widest = 0.0f64;
    let mut grow = |body: &mut [bool],
                    labels: &mut [u16],
                    cells: &mut dyn Iterator<Item = (usize, usize)>,
                    h: f64| {
        let mut n = 0;
        for (i, j) in cells {
            if !inside(i, j) {
                break;
            }
            let idx = i + nx * (j + ny * k);
            if body[idx] {
                continue;
            }
            body[idx] = true;
            labels[idx] = SUBCUTANEOUS_FAT;
            n += 1;
        }
        added += n;
        widest = widest.max(n as f64 * h);
    };
    let m = EDGE_MARGIN;
    let (x0, x1) = (pad[0] + m, pad[0] + orig_dims[0] - 1 - m);
    let (y0, y1) = (pad[1] + m, pad[1] + orig_dims[1] - 1 - m);
    let at = |body: &[bool], i: usize, j: usize| body[i + nx * (j + ny * k)];
    let [hx, hy, _] = grid.spacing_mm;
    for j in y0..=y1 {
        if at(body, x0, j) {
            grow(body, labels, &mut (0..x0).rev().map(|i| (i, j)), hx);
        }
        if at(body, x1, j) {
            grow(body, labels, &mut (x1 + 1..nx).map(|i| (i, j)), hx);
        }
    }
    for i in x0..=x1 {
        if at(body, i, y0) {
            grow(body, labels, &mut (0..y0).rev().map(|j| (i, j)), hy);
        }
        if at(body, i, y1) {
            grow(body, labels, &mut (y1 + 1..ny).map(|j| (i, j)), hy);
        }
    }
    (added, widest)
}

/// Splits the `fat` placeholder into subcutaneous fat (connected to the skin through fat no
/// deeper than [`SUBCUT_MAX_DEPTH_MM`]) and torso fat, slice by slice.
fn split_fat(grid: &Grid, body: &[bool], labels: &mut [u16], fat: u16) {
    let [nx, ny, nz] = grid.dims;
    let plane = nx * ny;
    // In-plane depth: a slice grid whose z spacing is huge, so only in-plane air counts.
    let sg = Grid {
        dims: [nx, ny, 1],
        spacing_mm: [grid.spacing_mm[0], grid.spacing_mm[1], 1e9],
        origin_mm: [0.0; 3],
    };
    let max_sq = SUBCUT_MAX_DEPTH_MM * SUBCUT_MAX_DEPTH_MM;
    for k in 0..nz {
        let b = &body[k * plane..(k + 1) * plane];
        let l = &mut labels[k * plane..(k + 1) * plane];
        let Some((lo, dims, d2)) = edt_sq(&sg, b) else {
            continue;
        };
        let depth_ok = |p: usize| {
            let (i, j) = (p % nx, p / nx);
            let (bi, bj) = (i + 1 - lo[0], j + 1 - lo[1]);
            d2[bi + dims[0] * (bj + dims[1])] <= max_sq
        };
        let skin = |p: usize| {
            let (i, j) = (p % nx, p / nx);
            i == 0
                || j == 0
                || i + 1 == nx
                || j + 1 == ny
                || !b[p - 1]
                || !b[p + 1]
                || !b[p - nx]
                || !b[p + nx]
        };
        let mut q: VecDeque<usize> = (0..plane)
            .filter(|&p| l[p] == fat && skin(p) && depth_ok(p))
            .collect();
        while let Some(p) = q.pop_front() {
            if l[p] != fat {
                continue;
            }
            l[p] = SUBCUTANEOUS_FAT;
            for n in neighbours4(p, nx, ny) {
                if l[n] == fat && depth_ok(n) {
                    q.push_back(n);
                }
            }
        }
        for v in l.iter_mut() {
            if *v == fat {
                *v = TORSO_FAT;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipse_fit_recovers_an_ellipse() {
        let pts: Vec<(f64, f64)> = (0..60)
            .map(|t| {
                let a = t as f64 * std::f64::consts::TAU / 60.0;
                (40.0 + 30.0 * a.cos(), 25.0 + 18.0 * a.sin())
            })
            .collect();
        let e = fit_ellipse(&pts).unwrap();
        for (got, want) in e.iter().zip([40.0, 25.0, 30.0, 18.0]) {
            assert!((got - want).abs() < 1e-6, "{e:?}");
        }
        // Half the outline (a cut field) still pins the ellipse.
        let half: Vec<(f64, f64)> = pts.iter().copied().filter(|p| p.0 < 55.0).collect();
        let e = fit_ellipse(&half).unwrap();
        assert!(
            (e[2] - 30.0).abs() < 1e-6 && (e[0] - 40.0).abs() < 1e-6,
            "{e:?}"
        );
    }

    /// A water-and-fat body: a fat ring 12 mm thick around muscle, with a fat island deep
    /// inside (visceral), a gas bubble, an organ, and the field of view cutting the right flank.
    #[test]
    fn paints_fat_muscle_gas_and_completes_a_cut_outline() {
        let g = Grid::centered([60, 50, 4], [3.0, 3.0, 3.0]);
        let mut ct = Volume::filled(g.clone(), -1000.0f32);
        let mut seg = Volume::filled(g.clone(), 0u16);
        for idx in 0..g.len() {
            let [i, j, k] = g.ijk(idx);
            let p = g.world(i, j, k);
            // Outer ellipse 100 × 60 mm semi-axes: wider than the 180 mm field in x.
            let r_out = (p[0] / 100.0).powi(2) + (p[1] / 60.0).powi(2);
            let r_in = (p[0] / 88.0).powi(2) + (p[1] / 48.0).powi(2);
            if r_out <= 1.0 {
                ct.data[idx] = if r_in > 1.0 { -100.0 } else { 40.0 };
            }
            if (p[0] - 20.0).hypot(p[1]) < 8.0 {
                ct.data[idx] = -100.0; // visceral fat island
            }
            if (p[0] + 20.0).hypot(p[1]) < 5.0 {
                ct.data[idx] = -900.0; // gas
            }
            if p[0].hypot(p[1] - 25.0) < 6.0 {
                seg.data[idx] = 5; // liver
            }
        }
        let (out, rep) = derive(&ct, &seg).unwrap();
        let at = |x: f64, y: f64| out.sample_nearest([x, y, 0.0]).unwrap();
        assert_eq!(at(0.0, 55.0), SUBCUTANEOUS_FAT);
        assert_eq!(at(0.0, -10.0), SKELETAL_MUSCLE);
        assert_eq!(at(20.0, 0.0), TORSO_FAT);
        assert_eq!(at(-20.0, 0.0), INTESTINAL_GAS);
        assert_eq!(at(0.0, 25.0), 5);
        assert_eq!(at(0.0, 75.0), 0);
        // The field (±88.5 mm in x) cut the flanks; the outline is completed to about ±100 mm.
        assert!(rep.cut_slices == 4 && rep.completed_voxels > 0, "{rep:?}");
        assert_eq!(at(95.0, 0.0), SUBCUTANEOUS_FAT);
        assert_eq!(at(-95.0, 0.0), SUBCUTANEOUS_FAT);
        assert_eq!(at(110.0, 0.0), 0);
        assert!((rep.max_completion_mm - 12.0).abs() <= 3.0, "{rep:?}");
    }
}
