//! The object's basis-material densities (g/cm³ of water, cortical bone and iodine per voxel),
//! made on demand from its material, density and perfusion maps. An axial scan reads one
//! object plane at a time, so the whole-volume basis (8–12 bytes a voxel: over a GiB at
//! 512 × 512 × 224) is never held; cone and helical rays cross every plane, so those modes
//! make the volume once.

use rayon::prelude::*;

use crate::tissue::attenuation::BasisCoeffs;

/// Basis maps of one object in one contrast phase.
pub(super) struct BasisSource<'a> {
    material: &'a [u8],
    density: &'a [f32],
    /// Each voxel's perfusion class and the iodine (g/cm³) each class holds in this phase;
    /// `None` in the native phase.
    perfusion: Option<(&'a [u8], Vec<f32>)>,
    coeffs: &'a [BasisCoeffs],
    plane: usize,
}

impl<'a> BasisSource<'a> {
    /// `coeffs[m]`: the basis coefficients of material `m`; every `material` index must have
    /// one (checked by the caller).
    pub fn new(
        material: &'a [u8],
        density: &'a [f32],
        perfusion: Option<(&'a [u8], Vec<f32>)>,
        coeffs: &'a [BasisCoeffs],
        plane: usize,
    ) -> Self {
        Self {
            material,
            density,
            perfusion,
            coeffs,
            plane,
        }
    }

    /// Voxel `i`'s first `C` basis densities; contrast iodine is added to its own material
    /// by mass.
    #[inline]
    fn voxel<const C: usize>(&self, i: usize) -> [f32; C] {
        let rho = self.density[i].max(0.0) as f64;
        let c = &self.coeffs[self.material[i] as usize];
        let mut v = [0.0f32; C];
        for (b, out) in v.iter_mut().enumerate() {
            *out = (c[b] * rho) as f32;
        }
        if C > 2 {
            if let Some((p, iodine)) = &self.perfusion {
                v[2] += iodine.get(p[i] as usize).copied().unwrap_or(0.0);
            }
        }
        v
    }

    /// Whether any voxel holds iodine (then the scan needs the third basis).
    pub fn has_iodine(&self) -> bool {
        (0..self.material.len())
            .into_par_iter()
            .any(|i| self.voxel::<3>(i)[2] != 0.0)
    }

    /// Object plane `k` into `out` (one plane's voxels).
    pub fn plane_into<const C: usize>(&self, k: usize, out: &mut [[f32; C]]) {
        let base = k * self.plane;
        for (q, o) in out.iter_mut().enumerate() {
            *o = self.voxel::<C>(base + q);
        }
    }

    /// The whole volume, for scans whose rays cross every plane.
    pub fn volume<const C: usize>(&self) -> Vec<[f32; C]> {
        (0..self.material.len())
            .into_par_iter()
            .map(|i| self.voxel::<C>(i))
            .collect()
    }

    /// Per basis, the smallest and largest density over the object (each range includes 0).
    pub fn ranges<const C: usize>(&self) -> [(f32, f32); C] {
        (0..self.material.len())
            .into_par_iter()
            .fold(
                || [(0.0f32, 0.0f32); C],
                |mut r, i| {
                    let v = self.voxel::<C>(i);
                    for c in 0..C {
                        r[c] = (r[c].0.min(v[c]), r[c].1.max(v[c]));
                    }
                    r
                },
            )
            .reduce(
                || [(0.0f32, 0.0f32); C],
                |mut a, b| {
                    for c in 0..C {
                        a[c] = (a[c].0.min(b[c].0), a[c].1.max(b[c].1));
                    }
                    a
                },
            )
    }

    /// `f` of each object plane's basis densities, planes in parallel.
    pub fn map_planes<const C: usize, T: Send>(
        &self,
        f: impl Fn(&[[f32; C]]) -> T + Sync + Send,
    ) -> Vec<T> {
        let planes = self.material.len() / self.plane.max(1);
        (0..planes)
            .into_par_iter()
            .map_init(
                || vec![[0.0f32; C]; self.plane],
                |buf, k| {
                    self.plane_into::<C>(k, buf);
                    f(buf)
                },
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_volume_and_ranges_agree_with_the_per_voxel_rule() {
        // Two materials (water-like, bone-like), one perfused class with iodine.
        let coeffs = [[1.0, 0.0, 0.0], [0.2, 0.9, 0.0]];
        let material = vec![0u8, 1, 0, 1, 0, 0, 1, 1];
        let density = vec![1.0f32, 1.9, 1.05, -0.5, 0.0, 1.0, 1.2, 2.0];
        let perf = vec![0u8, 0, 1, 0, 1, 0, 0, 0];
        let src = BasisSource::new(
            &material,
            &density,
            Some((&perf, vec![0.0, 0.01])),
            &coeffs,
            4,
        );
        let vol = src.volume::<3>();
        // Negative densities clamp to 0; iodine only where the class holds it.
        assert_eq!(vol[3], [0.0, 0.0, 0.0]);
        assert!((vol[1][1] - 1.71).abs() < 1e-6);
        assert!((vol[2][2] - 0.01).abs() < 1e-9 && vol[0][2] == 0.0);
        assert!(src.has_iodine());
        let mut plane = vec![[0.0f32; 3]; 4];
        src.plane_into::<3>(1, &mut plane);
        assert_eq!(&plane[..], &vol[4..8]);
        let r = src.ranges::<3>();
        assert_eq!(r[0], (0.0, 1.05));
        assert!((r[1].1 - 1.8).abs() < 1e-6 && r[2] == (0.0, 0.01));
        let sums = src.map_planes::<2, f32>(|p| p.iter().map(|v| v[0]).sum());
        assert_eq!(sums.len(), 2);
        assert!((sums[0] - (1.0 + 0.38 + 1.05)).abs() < 1e-5);
        let native = BasisSource::new(&material, &density, None, &[[1.0, 0.0, 0.0]; 2], 4);
        assert!(!native.has_iodine());
    }
}
