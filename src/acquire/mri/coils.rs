//! Receive-coil sensitivity maps.
//!
//! Each element is a Gaussian-profile loop outside the field of view with a linear phase
//! roll: smooth like a Biot–Savart map, and *separable*, c(x, y, z) = cx(x) cy(y) cz(z), so
//! a slice's map costs one complex multiply per pixel instead of an exp per pixel per coil.
//! Elements sit on rings of 8 around the isocentre (rings stacked along z for > 8). The
//! array is scaled so that Σ|c_i|² = 1 at the isocentre: the combined image keeps the object's
//! intensity there, and SNR gains appear towards the periphery as in real arrays. One coil
//! means a uniform body coil (c ≡ 1).

use std::f64::consts::PI;

#[derive(Clone, Debug, PartialEq)]
pub struct Coil {
    pub centre_mm: [f64; 3],
    /// Gaussian SD of the sensitivity profile.
    pub width_mm: f64,
    pub phase0_rad: f64,
    pub phase_grad_rad_per_mm: [f64; 3],
    pub scale: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CoilArray {
    pub coils: Vec<Coil>,
    pub uniform: bool,
}

impl CoilArray {
    /// `n` coils around a field of view of `extent_mm` (x, y, z), centred at the isocentre.
    pub fn new(n: usize, extent_mm: [f64; 3]) -> CoilArray {
        if n <= 1 {
            let c = Coil {
                centre_mm: [0.0; 3],
                width_mm: f64::INFINITY,
                phase0_rad: 0.0,
                phase_grad_rad_per_mm: [0.0; 3],
                scale: 1.0,
            };
            return CoilArray {
                coils: vec![c],
                uniform: true,
            };
        }
        let rings = n.div_ceil(8);
        let radius = 0.6 * extent_mm[0].max(extent_mm[1]);
        let width = 0.45 * extent_mm[0].max(extent_mm[1]);
        let mut coils: Vec<Coil> = (0..n)
            .map(|i| {
                let ring = i / 8;
                let in_ring = if ring + 1 < rings {
                    8
                } else {
                    n - 8 * (rings - 1)
                };
                let a = 2.0 * PI * (i % 8) as f64 / in_ring as f64 + 0.3 * ring as f64;
                let z = if rings == 1 {
                    0.0
                } else {
                    (ring as f64 / (rings - 1) as f64 - 0.5) * 0.8 * extent_mm[2]
                };
                let (s, c) = a.sin_cos();
                Coil {
                    centre_mm: [radius * c, radius * s, z],
                    width_mm: width,
                    phase0_rad: a,
                    // About one radian of phase roll across the FOV, pointing away from the coil.
                    phase_grad_rad_per_mm: [c / radius, s / radius, 0.0],
                    scale: 1.0,
                }
            })
            .collect();
        let mut arr = CoilArray {
            coils: coils.clone(),
            uniform: false,
        };
        let ss: f64 = (0..n).map(|i| arr.magnitude(i, [0.0; 3]).powi(2)).sum();
        coils.iter_mut().for_each(|c| c.scale = 1.0 / ss.sqrt());
        arr.coils = coils;
        arr
    }

    pub fn len(&self) -> usize {
        self.coils.len()
    }

    pub fn is_empty(&self) -> bool {
        self.coils.is_empty()
    }

    fn magnitude(&self, i: usize, p: [f64; 3]) -> f64 {
        let c = &self.coils[i];
        if self.uniform {
            return c.scale;
        }
        let d2: f64 = (0..3).map(|a| (p[a] - c.centre_mm[a]).powi(2)).sum();
        c.scale * (-d2 / (2.0 * c.width_mm * c.width_mm)).exp()
    }

    /// Complex sensitivity of coil `i` at world point `p` (mm).
    pub fn sensitivity(&self, i: usize, p: [f64; 3]) -> (f64, f64) {
        let c = &self.coils[i];
        let m = self.magnitude(i, p);
        let ph = c.phase0_rad
            + (0..3)
                .map(|a| c.phase_grad_rad_per_mm[a] * p[a])
                .sum::<f64>();
        (m * ph.cos(), m * ph.sin())
    }

    /// The separable factor of coil `i` along world `axis` at `coords_mm`; the z factor also
    /// carries the scale and the constant phase.
    pub fn axis_factor(&self, i: usize, axis: usize, coords_mm: &[f64]) -> Vec<(f32, f32)> {
        let c = &self.coils[i];
        coords_mm
            .iter()
            .map(|&u| {
                let mut m = if self.uniform {
                    1.0
                } else {
                    (-(u - c.centre_mm[axis]).powi(2) / (2.0 * c.width_mm * c.width_mm)).exp()
                };
                let mut ph = c.phase_grad_rad_per_mm[axis] * u;
                if axis == 2 {
                    m *= c.scale;
                    ph += c.phase0_rad;
                }
                ((m * ph.cos()) as f32, (m * ph.sin()) as f32)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_factors_reproduce_the_map_and_normalise_at_isocentre() {
        let arr = CoilArray::new(12, [256.0, 256.0, 150.0]);
        let ss: f64 = (0..12)
            .map(|i| {
                let (a, b) = arr.sensitivity(i, [0.0; 3]);
                a * a + b * b
            })
            .sum();
        assert!((ss - 1.0).abs() < 1e-12);
        let p = [40.0, -70.0, 20.0];
        for i in 0..12 {
            let f: Vec<(f32, f32)> = (0..3).map(|a| arr.axis_factor(i, a, &[p[a]])[0]).collect();
            let mul = |a: (f64, f64), b: (f32, f32)| {
                (
                    a.0 * b.0 as f64 - a.1 * b.1 as f64,
                    a.0 * b.1 as f64 + a.1 * b.0 as f64,
                )
            };
            let v = mul(mul((f[0].0 as f64, f[0].1 as f64), f[1]), f[2]);
            let w = arr.sensitivity(i, p);
            assert!((v.0 - w.0).abs() < 1e-6 && (v.1 - w.1).abs() < 1e-6);
        }
    }
}
