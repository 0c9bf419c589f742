//! Regions of interest: the square axial patches a model observer reads.

use serde::{Deserialize, Serialize};

use crate::volume::Volume;

/// One square axial ROI with its ground truth. The signal (when present) is centred on pixel
/// (`size / 2`, `size / 2`), the convention [`extract_roi`] and the observer channels share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Roi {
    /// size × size values, row-major (y, x): the layout of [`Volume::axial_slice`].
    pub pixels: Vec<f32>,
    pub size: usize,
    /// Signal present.
    pub truth: bool,
    /// Subject id; ROIs of one subject (e.g. a lesion and its lesion-free twin) are kept in
    /// the same cross-validation fold.
    pub subject: String,
    pub arm: String,
}

/// The `size_px` × `size_px` axial patch (row-major (y, x)) of the slice through the voxel
/// nearest `center_mm`, that voxel at patch pixel (size_px / 2, size_px / 2); `None` when the
/// patch would leave the grid or `size_px` is 0.
pub fn extract_roi(image: &Volume<f32>, center_mm: [f64; 3], size_px: usize) -> Option<Vec<f32>> {
    if size_px == 0 {
        return None;
    }
    let g = &image.grid;
    let v = g.to_voxel(center_mm);
    let mut c = [0usize; 3];
    for a in 0..3 {
        let r = v[a].round();
        if !(r >= 0.0 && r < g.dims[a] as f64) {
            return None;
        }
        c[a] = r as usize;
    }
    let half = size_px / 2;
    let (i0, j0) = (c[0].checked_sub(half)?, c[1].checked_sub(half)?);
    if i0 + size_px > g.dims[0] || j0 + size_px > g.dims[1] {
        return None;
    }
    let mut out = Vec::with_capacity(size_px * size_px);
    for j in j0..j0 + size_px {
        let row = g.index(i0, j, c[2]);
        out.extend_from_slice(&image.data[row..row + size_px]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Grid;

    #[test]
    fn roi_is_centred_on_the_nearest_voxel_and_row_major() {
        let g = Grid::centered([10, 8, 3], [0.5, 0.5, 2.0]);
        let mut vol = Volume::filled(g.clone(), 0.0f32);
        for k in 0..3 {
            for j in 0..8 {
                for i in 0..10 {
                    vol.set(i, j, k, (100 * k + 10 * j + i) as f32);
                }
            }
        }
        // A point 0.1 mm off voxel (5, 4, 1)'s centre.
        let mut p = g.world(5, 4, 1);
        p[0] += 0.1;
        let roi = extract_roi(&vol, p, 4).unwrap();
        // Centre pixel (2, 2) is voxel (5, 4); rows run along y.
        assert_eq!(roi[2 * 4 + 2], 145.0);
        assert_eq!(roi[0], 100.0 + 10.0 * 2.0 + 3.0);
        assert_eq!(roi[1], 124.0);
        assert_eq!(roi[4], 133.0);
        // Odd sizes centre exactly.
        let roi3 = extract_roi(&vol, p, 3).unwrap();
        assert_eq!(roi3[4], 145.0);
    }

    #[test]
    fn roi_leaving_the_grid_is_none() {
        let g = Grid::centered([10, 8, 3], [1.0; 3]);
        let vol = Volume::filled(g.clone(), 1.0f32);
        assert!(extract_roi(&vol, g.world(1, 4, 1), 4).is_none());
        // An even patch spans centre − 2 ..= centre + 1.
        assert!(extract_roi(&vol, g.world(9, 4, 1), 4).is_none());
        assert!(extract_roi(&vol, g.world(8, 4, 1), 4).is_some());
        assert!(extract_roi(&vol, g.world(2, 2, 1), 4).is_some());
        assert!(extract_roi(&vol, [0.0, 0.0, 99.0], 4).is_none());
        assert!(extract_roi(&vol, g.world(5, 4, 1), 9).is_none());
    }
}
