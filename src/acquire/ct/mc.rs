//! Monte Carlo photon transport of the arm's own beam through a homogeneous cylinder (PMMA
//! dose phantom or water): the physics behind CTDI from the beam (`ctdi.rs`) and the
//! calibration of the scatter model (`scatter.rs`).
//!
//! Beam: the protocol's spectrum, bowtie, source–isocentre distance and z collimation (a
//! trapezoid profile whose FWHM is the nominal width and whose ramps are the focal-spot
//! penumbra). Interactions: photoelectric absorption and incoherent (Compton) scattering,
//! angles and energies from Klein–Nishina (Kahn's sampling, as in MCNP/EGS); coherent
//! scattering is kept forward (no change of direction: at CT energies its form factor
//! confines it to a few degrees, e.g. < 10° at 60 keV in water). Air kerma is scored by the
//! track-length estimator (Σ w·E·μ_en/ρ(air)·ℓ / V) in the CTDI chamber volumes; detected
//! energy behind a focused one-dimensional anti-scatter grid is scored per detector column.
//! A full rotation is the fixed source averaged over the cylinder's rotational symmetry,
//! so peripheral tallies are rings.

use super::interaction_tables::{PMMA_XS, WATER_XS, XS_E0_KEV, XS_ROWS};
use super::protocol::Bowtie;
use super::spectrum::{air_mu_en, bowtie_mm, Spectrum};
use crate::tissue::attenuation::{material_index, mu_rho_at_kev};
use rand::{Rng, RngExt};
use rayon::prelude::*;

/// Cylinder media with split interaction tables.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Medium {
    /// PMMA, 1.19 g/cm³ (IEC 60601-2-44 CTDI phantoms).
    Pmma,
    /// Water, 1.0 g/cm³.
    Water,
}

impl Medium {
    fn density(self) -> f64 {
        match self {
            Medium::Pmma => 1.19,
            Medium::Water => 1.0,
        }
    }
    fn table(self) -> &'static [[f32; 3]; XS_ROWS] {
        match self {
            Medium::Pmma => &PMMA_XS,
            Medium::Water => &WATER_XS,
        }
    }
}

/// The arm's beam as the transport sees it.
#[derive(Clone, Debug)]
pub struct Beam {
    pub spectrum: Spectrum,
    pub bowtie: Bowtie,
    pub sid_mm: f64,
    pub sdd_mm: f64,
    /// Nominal z collimation at isocentre (FWHM of the profile), mm.
    pub width_mm: f64,
    /// Focal-spot penumbra at isocentre (each ramp of the trapezoid), mm.
    pub penumbra_mm: f64,
}

/// A right circular cylinder on the rotation axis, centred at z = 0.
#[derive(Clone, Copy, Debug)]
pub struct Cylinder {
    pub radius_mm: f64,
    pub half_length_mm: f64,
    pub medium: Medium,
}

/// Where air kerma is scored: the volume { r_in ≤ r ≤ r_out, |z| ≤ half_length }.
#[derive(Clone, Copy, Debug)]
pub struct Chamber {
    pub r_in_mm: f64,
    pub r_out_mm: f64,
    pub half_length_mm: f64,
}

impl Chamber {
    fn volume_cm3(&self) -> f64 {
        std::f64::consts::PI
            * (self.r_out_mm.powi(2) - self.r_in_mm.powi(2))
            * 2.0
            * self.half_length_mm
            / 1000.0
    }
}

/// The detector and its one-dimensional focused anti-scatter grid.
#[derive(Clone, Copy, Debug)]
pub struct Detector {
    /// Columns at isocentre: `bins` of `bin_mm` centred on the central ray.
    pub bins: usize,
    pub bin_mm: f64,
    /// Grid ratio (lamella height / gap); a photon off the focal direction by α passes with
    /// probability max(0, 1 − ratio·|tan α|). 0: no grid.
    pub grid_ratio: f64,
}

/// Tallies per mAs: air kerma in each chamber (mGy) and detected energy per column (keV),
/// unscattered and scattered.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub kerma_mgy: Vec<f64>,
    pub primary_kev: Vec<f64>,
    pub scatter_kev: Vec<f64>,
}

impl Tally {
    fn add(mut self, o: Tally) -> Tally {
        for (a, b) in [
            (&mut self.kerma_mgy, o.kerma_mgy),
            (&mut self.primary_kev, o.primary_kev),
            (&mut self.scatter_kev, o.scatter_kev),
        ] {
            if a.is_empty() {
                *a = b;
            } else {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
            }
        }
        self
    }
}

/// Transport options.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub histories: usize,
    pub seed: u64,
    /// Compton events absorb the photon (primary-only transport, for analytic checks).
    pub primary_only: bool,
}

/// 1 keV/g in mGy.
pub(crate) const KEV_PER_G_TO_MGY: f64 = 1.602_176_634e-16 / 1e-3 * 1e3;
/// Electron rest energy, keV.
const MEC2_KEV: f64 = 510.998_95;

/// Cross sections (mm⁻¹) of a medium at energy `e` keV: (photoelectric, incoherent), linear
/// between the 1 keV table rows.
pub(crate) fn xs(m: Medium, e: f64) -> (f64, f64) {
    let t = m.table();
    let x = (e - XS_E0_KEV as f64).clamp(0.0, (XS_ROWS - 1) as f64 - 1e-9);
    let i = x as usize;
    let f = x - i as f64;
    let lerp =
        |k: usize| (t[i][k] as f64) * (1.0 - f) + (t[(i + 1).min(XS_ROWS - 1)][k] as f64) * f;
    let rho_mm = m.density() / 10.0;
    (lerp(0) * rho_mm, lerp(1) * rho_mm)
}

/// Klein–Nishina sampling (Kahn 1954): returns (E′/E, cos θ).
fn klein_nishina<R: Rng>(rng: &mut R, e_kev: f64) -> (f64, f64) {
    let a = e_kev / MEC2_KEV;
    loop {
        let (r1, r2, r3): (f64, f64, f64) = (rng.random(), rng.random(), rng.random());
        if r1 <= (1.0 + 2.0 * a) / (9.0 + 2.0 * a) {
            let eta = 1.0 + 2.0 * a * r2;
            if r3 <= 4.0 * (1.0 / eta - 1.0 / (eta * eta)) {
                return (1.0 / eta, 1.0 - (eta - 1.0) / a);
            }
        } else {
            let eta = (1.0 + 2.0 * a) / (1.0 + 2.0 * a * r2);
            let mu = 1.0 - (eta - 1.0) / a;
            if r3 <= 0.5 * (mu * mu + 1.0 / eta) {
                return (1.0 / eta, mu);
            }
        }
    }
}

/// `d` turned by polar angle acos(`mu`) at azimuth `phi`.
fn rotate(d: [f64; 3], mu: f64, phi: f64) -> [f64; 3] {
    let st = (1.0 - mu * mu).max(0.0).sqrt();
    let (sp, cp) = phi.sin_cos();
    if d[2].abs() > 0.99999 {
        let s = d[2].signum();
        return [st * cp, st * sp, s * mu];
    }
    let k = (1.0 - d[2] * d[2]).sqrt();
    [
        mu * d[0] + st * (d[0] * d[2] * cp - d[1] * sp) / k,
        mu * d[1] + st * (d[1] * d[2] * cp + d[0] * sp) / k,
        mu * d[2] - st * cp * k,
    ]
}

/// Parameter interval (t0, t1) of the line p + t·d inside { x² + y² ≤ r², |z| ≤ h }.
pub(crate) fn inside(p: [f64; 3], d: [f64; 3], r: f64, h: f64) -> Option<(f64, f64)> {
    let (mut t0, mut t1) = (f64::NEG_INFINITY, f64::INFINITY);
    let a = d[0] * d[0] + d[1] * d[1];
    let c = p[0] * p[0] + p[1] * p[1] - r * r;
    if a < 1e-18 {
        if c > 0.0 {
            return None;
        }
    } else {
        let b = p[0] * d[0] + p[1] * d[1];
        let disc = b * b - a * c;
        if disc <= 0.0 {
            return None;
        }
        let s = disc.sqrt();
        t0 = (-b - s) / a;
        t1 = (-b + s) / a;
    }
    if d[2].abs() < 1e-15 {
        if p[2].abs() > h {
            return None;
        }
    } else {
        let (za, zb) = ((-h - p[2]) / d[2], (h - p[2]) / d[2]);
        t0 = t0.max(za.min(zb));
        t1 = t1.min(za.max(zb));
    }
    (t1 > t0).then_some((t0, t1))
}

/// Length of the segment p + t·d, t ∈ [0, s], inside the chamber.
fn chamber_length(p: [f64; 3], d: [f64; 3], s: f64, ch: &Chamber) -> f64 {
    let seg = |r: f64| {
        if r <= 0.0 {
            return 0.0;
        }
        inside(p, d, r, ch.half_length_mm)
            .map(|(a, b)| (b.min(s) - a.max(0.0)).max(0.0))
            .unwrap_or(0.0)
    };
    seg(ch.r_out_mm) - seg(ch.r_in_mm)
}

/// Trapezoid z profile at isocentre: 1 inside, linear ramps of the penumbra width.
fn profile(z: f64, width: f64, pen: f64) -> f64 {
    if pen <= 0.0 {
        return if z.abs() <= 0.5 * width { 1.0 } else { 0.0 };
    }
    ((0.5 * (width + pen) - z.abs()) / pen).clamp(0.0, 1.0)
}

/// Transports `opt.histories` photons of one source position through `cyl`, scoring the
/// chambers and (when given) the detector. Tallies are per mAs of tube load for a full
/// rotation (the fixed source averaged by the cylinder's symmetry).
pub fn transport(
    beam: &Beam,
    cyl: &Cylinder,
    chambers: &[Chamber],
    detector: Option<&Detector>,
    opt: &Options,
) -> Tally {
    let spec = &beam.spectrum;
    let total: f64 = spec.photons.iter().sum();
    let cdf: Vec<f64> = spec
        .photons
        .iter()
        .scan(0.0, |a, &p| {
            *a += p / total;
            Some(*a)
        })
        .collect();
    let water = material_index("water").unwrap();
    let d = beam.sid_mm;
    // Directions: γ uniform over the fan that covers the cylinder (or the detector), sin φ
    // uniform over the collimated cone (uniform in solid angle).
    let fan_r = detector
        .map(|det| 0.5 * det.bins as f64 * det.bin_mm)
        .unwrap_or(0.0)
        .max(cyl.radius_mm);
    let gamma_max = (fan_r / d).min(0.99).asin();
    let z_max = 0.5 * (beam.width_mm + beam.penumbra_mm);
    let s_max = (z_max / (d * d + z_max * z_max).sqrt()) * 1.05;
    let omega = 2.0 * gamma_max * 2.0 * s_max;
    // Photons per mAs per sample: fluence per mm² at 1 m × (1000 mm)² per steradian.
    let w0 = total * 1e6 * omega / opt.histories as f64;
    let chunk = 1 << 14;
    let n_chunks = opt.histories.div_ceil(chunk);
    let vols: Vec<f64> = chambers.iter().map(|c| c.volume_cm3()).collect();
    let y_det = beam.sdd_mm - d;
    (0..n_chunks)
        .into_par_iter()
        .map(|ci| {
            let mut rng = crate::rng::stream(opt.seed, crate::rng::Stage::Acquire, ci as u64);
            let mut t = Tally {
                kerma_mgy: vec![0.0; chambers.len()],
                primary_kev: vec![0.0; detector.map_or(0, |d| d.bins)],
                scatter_kev: vec![0.0; detector.map_or(0, |d| d.bins)],
            };
            let n = chunk.min(opt.histories - ci * chunk);
            for _ in 0..n {
                // Source photon: energy, direction, bowtie and profile weight.
                let u: f64 = rng.random();
                let bin = cdf.partition_point(|&c| c < u).min(cdf.len() - 1);
                let mut e = spec.kev[bin];
                let gamma = gamma_max * (2.0 * rng.random::<f64>() - 1.0);
                let sphi = s_max * (2.0 * rng.random::<f64>() - 1.0);
                let cphi = (1.0 - sphi * sphi).sqrt();
                let z_iso = d * sphi / cphi / gamma.cos();
                let prof = profile(z_iso, beam.width_mm, beam.penumbra_mm);
                if prof <= 0.0 {
                    continue;
                }
                let bow_cm = bowtie_mm(beam.bowtie, d * gamma.sin()) / 10.0;
                let w = w0 * prof * (-mu_rho_at_kev(water, e as usize) * bow_cm).exp();
                let mut dir = [gamma.sin() * cphi, gamma.cos() * cphi, sphi];
                let mut p = [0.0, -d, 0.0];
                let mut scattered = false;
                // Enter the cylinder (misses go straight to the detector).
                let mut alive = true;
                if let Some((t0, _)) = inside(p, dir, cyl.radius_mm, cyl.half_length_mm) {
                    p = [p[0] + t0 * dir[0], p[1] + t0 * dir[1], p[2] + t0 * dir[2]];
                    loop {
                        let (_, t_exit) =
                            inside(p, dir, cyl.radius_mm, cyl.half_length_mm).unwrap_or((0.0, 0.0));
                        let t_exit = t_exit.max(0.0);
                        let (mu_pe, mu_in) = xs(cyl.medium, e);
                        let mu = mu_pe + mu_in;
                        let s = -(1.0 - rng.random::<f64>()).ln() / mu;
                        let step = s.min(t_exit);
                        let k_air = w * e * air_mu_en(e) * KEV_PER_G_TO_MGY / 10.0;
                        for (k, ch) in chambers.iter().enumerate() {
                            let l = chamber_length(p, dir, step, ch);
                            if l > 0.0 {
                                t.kerma_mgy[k] += k_air * l / vols[k];
                            }
                        }
                        p = [
                            p[0] + step * dir[0],
                            p[1] + step * dir[1],
                            p[2] + step * dir[2],
                        ];
                        if s >= t_exit {
                            break;
                        }
                        if rng.random::<f64>() * mu < mu_pe || opt.primary_only {
                            alive = false;
                            break;
                        }
                        let (ratio, cos_t) = klein_nishina(&mut rng, e);
                        e *= ratio;
                        if e < XS_E0_KEV as f64 {
                            alive = false;
                            break;
                        }
                        dir = rotate(dir, cos_t, std::f64::consts::TAU * rng.random::<f64>());
                        scattered = true;
                    }
                }
                // Detector behind the grid (flat, at SDD).
                if let (true, Some(det)) = (alive, detector) {
                    if dir[1] <= 1e-9 {
                        continue;
                    }
                    let tt = (y_det - p[1]) / dir[1];
                    let (x, z) = (p[0] + tt * dir[0], p[2] + tt * dir[2]);
                    let scale = d / beam.sdd_mm;
                    if (z * scale).abs() > 0.5 * beam.width_mm {
                        continue;
                    }
                    let col = x * scale / det.bin_mm + 0.5 * det.bins as f64;
                    if col < 0.0 || col >= det.bins as f64 {
                        continue;
                    }
                    let off = dir[0].atan2(dir[1]) - x.atan2(beam.sdd_mm);
                    let pass = if det.grid_ratio > 0.0 {
                        (1.0 - det.grid_ratio * off.tan().abs()).max(0.0)
                    } else {
                        1.0
                    };
                    let dep = w * e * pass;
                    if scattered {
                        t.scatter_kev[col as usize] += dep;
                    } else {
                        t.primary_kev[col as usize] += dep;
                    }
                }
            }
            t
        })
        .reduce(Tally::default, Tally::add)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn kahn_sampling_reproduces_the_klein_nishina_mean_energy_loss() {
        // Mean fraction of energy kept, ⟨E′/E⟩, from the Klein–Nishina cross section by
        // quadrature, against the sampled mean at 60 and 140 keV.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for e in [60.0, 140.0] {
            let a = e / MEC2_KEV;
            let (mut num, mut den) = (0.0, 0.0);
            let n = 20000;
            for i in 0..n {
                let mu = -1.0 + 2.0 * (i as f64 + 0.5) / n as f64;
                let r = 1.0 / (1.0 + a * (1.0 - mu));
                let dsig = r * r * (r + 1.0 / r - (1.0 - mu * mu));
                num += dsig * r;
                den += dsig;
            }
            let exact = num / den;
            let m = 200_000;
            let got: f64 = (0..m).map(|_| klein_nishina(&mut rng, e).0).sum::<f64>() / m as f64;
            assert!(
                (got - exact).abs() < 1e-3,
                "{e} keV: sampled ⟨E′/E⟩ {got:.5} vs Klein–Nishina {exact:.5}"
            );
        }
    }

    #[test]
    fn rotation_keeps_unit_length_and_angle() {
        let d = [0.3f64, 0.5, (1.0f64 - 0.34).sqrt()];
        let r = rotate(d, 0.8, 1.1);
        let n = (r[0] * r[0] + r[1] * r[1] + r[2] * r[2]).sqrt();
        let c = r[0] * d[0] + r[1] * d[1] + r[2] * d[2];
        assert!((n - 1.0).abs() < 1e-12 && (c - 0.8).abs() < 1e-12);
    }

    #[test]
    fn chamber_length_of_a_diameter() {
        let ch = Chamber {
            r_in_mm: 0.0,
            r_out_mm: 5.0,
            half_length_mm: 50.0,
        };
        let l = chamber_length([-100.0, 0.0, 0.0], [1.0, 0.0, 0.0], 1000.0, &ch);
        assert!((l - 10.0).abs() < 1e-9);
        let ring = Chamber { r_in_mm: 2.0, ..ch };
        let l = chamber_length([-100.0, 0.0, 0.0], [1.0, 0.0, 0.0], 1000.0, &ring);
        assert!((l - 6.0).abs() < 1e-9);
        // Stopped halfway.
        let l = chamber_length([-100.0, 0.0, 0.0], [1.0, 0.0, 0.0], 100.0, &ch);
        assert!((l - 5.0).abs() < 1e-9);
    }
}
