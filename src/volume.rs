//! `Volume<T>`: a 3D array on a physical grid.
//!
//! Storage is x-fastest (index = i + nx·(j + ny·k)), the same order NIfTI stores voxels, so
//! writing is a straight copy. World coordinates are RAS+ in mm (NIfTI's convention): x → patient right,
//! y → anterior, z → superior. The direction matrix is the identity; the affine is
//! `world = origin + diag(spacing) · index`.

use serde::{Deserialize, Serialize};

/// Voxel grid: dimensions, spacing (mm) and the world position (mm) of voxel (0, 0, 0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    pub dims: [usize; 3],
    pub spacing_mm: [f64; 3],
    pub origin_mm: [f64; 3],
}

impl Grid {
    /// A grid whose centre (the middle of the voxel block) sits at world (0, 0, 0).
    pub fn centered(dims: [usize; 3], spacing_mm: [f64; 3]) -> Self {
        let origin_mm = [0, 1, 2].map(|a| -0.5 * (dims[a] as f64 - 1.0) * spacing_mm[a]);
        Grid {
            dims,
            spacing_mm,
            origin_mm,
        }
    }

    pub fn len(&self) -> usize {
        self.dims[0] * self.dims[1] * self.dims[2]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        i + self.dims[0] * (j + self.dims[1] * k)
    }

    /// Inverse of [`Grid::index`].
    #[inline]
    pub fn ijk(&self, idx: usize) -> [usize; 3] {
        let nx = self.dims[0];
        let ny = self.dims[1];
        [idx % nx, (idx / nx) % ny, idx / (nx * ny)]
    }

    /// World position (mm) of a voxel centre.
    #[inline]
    pub fn world(&self, i: usize, j: usize, k: usize) -> [f64; 3] {
        [
            self.origin_mm[0] + i as f64 * self.spacing_mm[0],
            self.origin_mm[1] + j as f64 * self.spacing_mm[1],
            self.origin_mm[2] + k as f64 * self.spacing_mm[2],
        ]
    }

    /// Continuous voxel coordinates of a world point (mm).
    #[inline]
    pub fn to_voxel(&self, p: [f64; 3]) -> [f64; 3] {
        [0, 1, 2].map(|a| (p[a] - self.origin_mm[a]) / self.spacing_mm[a])
    }

    /// Voxel volume in mL (1 mL = 1000 mm³).
    pub fn voxel_ml(&self) -> f64 {
        self.spacing_mm.iter().product::<f64>() / 1000.0
    }

    /// Physical extent (mm) covered by the voxels along each axis.
    pub fn extent_mm(&self) -> [f64; 3] {
        [0, 1, 2].map(|a| self.dims[a] as f64 * self.spacing_mm[a])
    }

    /// 4×4 affine (row-major, RAS+ mm) mapping voxel index to world, as NIfTI's sform.
    pub fn affine(&self) -> [[f64; 4]; 4] {
        [
            [self.spacing_mm[0], 0.0, 0.0, self.origin_mm[0]],
            [0.0, self.spacing_mm[1], 0.0, self.origin_mm[1]],
            [0.0, 0.0, self.spacing_mm[2], self.origin_mm[2]],
            [0.0, 0.0, 0.0, 1.0],
        ]
    }
}

/// A 3D array on a grid. See the module docs for the storage order.
#[derive(Clone, Debug, PartialEq)]
pub struct Volume<T> {
    pub grid: Grid,
    pub data: Vec<T>,
}

impl<T: Copy> Volume<T> {
    pub fn filled(grid: Grid, value: T) -> Self {
        let data = vec![value; grid.len()];
        Volume { grid, data }
    }

    /// Wraps existing data; panics only on a programming error (length mismatch).
    pub fn from_vec(grid: Grid, data: Vec<T>) -> Self {
        assert_eq!(
            grid.len(),
            data.len(),
            "volume data length must match its grid"
        );
        Volume { grid, data }
    }

    #[inline]
    pub fn get(&self, i: usize, j: usize, k: usize) -> T {
        self.data[self.grid.index(i, j, k)]
    }

    #[inline]
    pub fn set(&mut self, i: usize, j: usize, k: usize, v: T) {
        let idx = self.grid.index(i, j, k);
        self.data[idx] = v;
    }

    /// Nearest-voxel value at a world point, or `None` outside the grid.
    pub fn sample_nearest(&self, p: [f64; 3]) -> Option<T> {
        let v = self.grid.to_voxel(p);
        let mut ijk = [0usize; 3];
        for a in 0..3 {
            let r = v[a].round();
            if r < 0.0 || r >= self.grid.dims[a] as f64 {
                return None;
            }
            ijk[a] = r as usize;
        }
        Some(self.get(ijk[0], ijk[1], ijk[2]))
    }

    /// Axial slice k as a row-major (y, x) image of nx·ny values.
    pub fn axial_slice(&self, k: usize) -> Vec<T> {
        let n = self.grid.dims[0] * self.grid.dims[1];
        self.data[k * n..(k + 1) * n].to_vec()
    }

    pub fn map<U: Copy>(&self, f: impl Fn(T) -> U) -> Volume<U> {
        Volume {
            grid: self.grid.clone(),
            data: self.data.iter().map(|&v| f(v)).collect(),
        }
    }
}

/// In-plane 4-neighbours of pixel `p` of an nx × ny slice (x-fastest), those inside it.
#[inline]
pub fn neighbours4(p: usize, nx: usize, ny: usize) -> impl Iterator<Item = usize> {
    let (i, j) = (p % nx, p / nx);
    [
        (i > 0).then(|| p - 1),
        (i + 1 < nx).then(|| p + 1),
        (j > 0).then(|| p - nx),
        (j + 1 < ny).then(|| p + nx),
    ]
    .into_iter()
    .flatten()
}

/// The up-to-six face neighbours of voxel `v` (x-fastest index) inside `grid`.
pub fn neighbours6(grid: &Grid, v: usize) -> impl Iterator<Item = usize> {
    let [nx, ny, nz] = grid.dims;
    let [i, j, k] = grid.ijk(v);
    let plane = nx * ny;
    [
        (i > 0).then(|| v - 1),
        (i + 1 < nx).then(|| v + 1),
        (j > 0).then(|| v - nx),
        (j + 1 < ny).then(|| v + nx),
        (k > 0).then(|| v - plane),
        (k + 1 < nz).then(|| v + plane),
    ]
    .into_iter()
    .flatten()
}

/// In-place 2-D FFT of an n × n row-major plane with a length-n plan (rows, then columns;
/// unnormalised, like the plan).
pub fn fft2_square<T: rustfft::FftNum>(
    a: &mut [rustfft::num_complex::Complex<T>],
    n: usize,
    plan: &dyn rustfft::Fft<T>,
) {
    for row in a.chunks_mut(n) {
        plan.process(row);
    }
    let mut col = vec![rustfft::num_complex::Complex::new(T::zero(), T::zero()); n];
    for i in 0..n {
        for j in 0..n {
            col[j] = a[j * n + i];
        }
        plan.process(&mut col);
        for j in 0..n {
            a[j * n + i] = col[j];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centered_grid_is_symmetric_about_origin() {
        let g = Grid::centered([4, 5, 6], [2.0, 1.5, 3.0]);
        let first = g.world(0, 0, 0);
        let last = g.world(3, 4, 5);
        for a in 0..3 {
            assert!((first[a] + last[a]).abs() < 1e-9);
        }
    }

    #[test]
    fn index_and_ijk_are_inverse() {
        let g = Grid::centered([3, 4, 5], [1.0; 3]);
        for idx in 0..g.len() {
            let [i, j, k] = g.ijk(idx);
            assert_eq!(g.index(i, j, k), idx);
        }
    }

    #[test]
    fn nearest_sampling_round_trips_voxel_centres() {
        let g = Grid::centered([3, 3, 3], [2.0; 3]);
        let mut v = Volume::filled(g.clone(), 0u16);
        v.set(2, 1, 0, 7);
        assert_eq!(v.sample_nearest(g.world(2, 1, 0)), Some(7));
        assert_eq!(v.sample_nearest([100.0, 0.0, 0.0]), None);
    }
}
