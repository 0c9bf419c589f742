//! `patches.png` of `fidelity`: per organ an axial patch of the real scan beside the painter's
//! and each run's, in one window, so a reader sees what the numbers measure.

use crate::io::preview::PreviewTile;

/// Side of the square patch shown per organ in `patches.png`, mm.
pub(super) const SHOW_MM: f64 = 60.0;

/// Display window (HU) of a group's patches.
pub(super) fn window(group: &str) -> (f32, f32) {
    match group {
        "lung" => (-1000.0, 200.0),
        "vertebrae" | "ribs" => (-200.0, 1000.0),
        "fat" => (-250.0, 150.0),
        _ => (-160.0, 240.0),
    }
}

/// A `SHOW_MM` axial patch of `values` centred on the organ where the mask is deepest in
/// its fullest slice (most mask voxels), or None where the mask is empty.
pub(super) fn patch(
    values: &[f32],
    grid: &crate::volume::Grid,
    mask: &[bool],
    group: &str,
) -> Option<PreviewTile> {
    let [nx, ny, nz] = grid.dims;
    let per_slice = |k: usize| (0..nx * ny).filter(|&p| mask[k * nx * ny + p]).count();
    let k = (0..nz).max_by_key(|&k| per_slice(k))?;
    if per_slice(k) == 0 {
        return None;
    }
    // Deepest point: the mask voxel with the most mask voxels in its 7 × 7 neighbourhood.
    let inside = |i: isize, j: isize| {
        i >= 0
            && j >= 0
            && (i as usize) < nx
            && (j as usize) < ny
            && mask[grid.index(i as usize, j as usize, k)]
    };
    let (ci, cj) = (0..nx * ny)
        .filter(|&p| mask[k * nx * ny + p])
        .map(|p| (p % nx, p / nx))
        .max_by_key(|&(i, j)| {
            let (i, j) = (i as isize, j as isize);
            (-3..=3)
                .flat_map(|dj| (-3..=3).map(move |di| (di, dj)))
                .filter(|&(di, dj)| inside(i + di, j + dj))
                .count()
        })?;
    let hx = ((SHOW_MM / grid.spacing_mm[0] / 2.0).round() as usize).max(2);
    let hy = ((SHOW_MM / grid.spacing_mm[1] / 2.0).round() as usize).max(2);
    let (w, h) = (2 * hx, 2 * hy);
    let mut image = vec![-1000.0f32; w * h];
    for j in 0..h {
        for i in 0..w {
            let (si, sj) = (
                (ci + i) as isize - hx as isize,
                (cj + j) as isize - hy as isize,
            );
            if si >= 0 && sj >= 0 && (si as usize) < nx && (sj as usize) < ny {
                image[j * w + i] = values[grid.index(si as usize, sj as usize, k)];
            }
        }
    }
    Some(PreviewTile {
        title: group.to_string(),
        width: w,
        height: h,
        pixel_aspect: grid.spacing_mm[1] / grid.spacing_mm[0],
        image,
        labels: Vec::new(),
        window: window(group),
    })
}

/// Per organ (rows of `patches.png`), its tiles: real, painter, each run (None: not there).
pub(super) type Picture = Vec<Vec<Option<PreviewTile>>>;

/// Columns of `patches.png`: the real scan, the painter and the first two runs.
pub(super) const PICTURE_COLUMNS: usize = 4;
