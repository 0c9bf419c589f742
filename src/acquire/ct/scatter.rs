//! Object scatter: a convolution (kernel) model of the scatter reaching the detector behind
//! the one-dimensional anti-scatter grid, calibrated per beam by Monte Carlo (`mc.rs`).
//!
//! Model (Ohnesorge, Flohr & Klingenbeck-Regn, Eur. Radiol. 9, 563 (1999)): each ray's
//! scatter potential is its primary signal times its water-equivalent path, q = I·p (a
//! pencil beam scatters ∝ p·e^(−p): most at p ≈ 1), and the scatter signal is that potential
//! spread by a Gaussian kernel across the detector columns, S = A·(K_σ ⊗ q), the same on every
//! row of the view; q = I·p^k with k fitted (k > 1: multiple scatter in thick objects). A
//! (which grows with the collimated width nT and falls with the grid ratio), σ and k are fitted once per beam to the scatter the transport scores behind the grid
//! for centred water cylinders of 200 and 320 mm. The scanner's scatter correction is not
//! modelled: `scatter: true` shows the cupping and streaks uncorrected scatter leaves.

use super::mc::{self, Cylinder, Detector, Medium};
use super::protocol::CtProtocol;
use super::spectrum::{bowtie_mm, Spectrum};
use crate::tissue::attenuation::{material_index, mu_rho_at_kev};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Calibration cylinders (water), mm.
pub const CALIBRATION_DIAMETERS_MM: [f64; 2] = [200.0, 320.0];
/// Detector bin for the calibration tallies at isocentre, mm.
const BIN_MM: f64 = 8.0;
/// Histories per calibration cylinder.
const HISTORIES: usize = 1 << 21;

/// A fitted scatter kernel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScatterModel {
    pub amplitude: f64,
    pub sigma_mm: f64,
    /// Power of the path in the scatter potential, q = I·p^k (thick objects scatter more
    /// than single scatter's k = 1 predicts: multiple scatter).
    pub exponent: f64,
}

/// The scatter one calibration cylinder gives: per detector bin (isocentre mm), primary and
/// scatter from the transport, and the model's scatter.
#[derive(Clone, Debug)]
pub struct Profile {
    pub u_mm: Vec<f64>,
    pub primary: Vec<f64>,
    pub scatter_mc: Vec<f64>,
    pub scatter_model: Vec<f64>,
}

impl Profile {
    /// Scatter-to-primary ratio of the central bins (|u| < 2 bins), transport and model.
    pub fn central_spr(&self) -> (f64, f64) {
        let idx: Vec<usize> = (0..self.u_mm.len())
            .filter(|&i| self.u_mm[i].abs() < 2.0 * BIN_MM)
            .collect();
        let p: f64 = idx.iter().map(|&i| self.primary[i]).sum();
        let s: f64 = idx.iter().map(|&i| self.scatter_mc[i]).sum();
        let m: f64 = idx.iter().map(|&i| self.scatter_model[i]).sum();
        (s / p, m / p)
    }
}

/// Gaussian kernel convolution of `q` (samples `du_mm` apart), truncated at 3σ, normalised to
/// unit area in mm (so S has q's units × mm⁻¹ × mm = q's units).
pub fn convolve(q: &[f64], du_mm: f64, sigma_mm: f64) -> Vec<f64> {
    let half = ((3.0 * sigma_mm / du_mm).ceil() as isize).max(1);
    let k: Vec<f64> = (-half..=half)
        .map(|i| (-0.5 * (i as f64 * du_mm / sigma_mm).powi(2)).exp())
        .collect();
    let norm: f64 = k.iter().sum();
    let n = q.len() as isize;
    (0..n)
        .map(|i| {
            let mut acc = 0.0;
            for (j, w) in k.iter().enumerate() {
                let m = i + j as isize - half;
                if (0..n).contains(&m) {
                    acc += w * q[m as usize];
                }
            }
            acc / norm
        })
        .collect()
}

/// Scatter signal of one view from its expected primary signals `primary` (per column) and
/// object-only water-equivalent paths `path` (μ·L), columns `du_mm` apart at isocentre.
/// Coarsened by averaging so the kernel stays a few dozen taps wide.
pub fn view_scatter(model: &ScatterModel, primary: &[f64], path: &[f64], du_mm: f64) -> Vec<f64> {
    let n = primary.len();
    let step = ((model.sigma_mm / 4.0 / du_mm).floor() as usize).max(1);
    let m = n.div_ceil(step);
    let mut q = vec![0.0; m];
    for i in 0..n {
        q[i / step] += primary[i] * path[i].max(0.0).powf(model.exponent) / step as f64;
    }
    let s = convolve(&q, du_mm * step as f64, model.sigma_mm);
    // Back to columns, linear between coarse centres.
    (0..n)
        .map(|i| {
            let x = (i as f64 + 0.5) / step as f64 - 0.5;
            let a = (x.floor().max(0.0) as usize).min(m - 1);
            let b = (a + 1).min(m - 1);
            let f = (x - a as f64).clamp(0.0, 1.0);
            model.amplitude * (s[a] * (1.0 - f) + s[b] * f)
        })
        .collect()
}

/// Transport through one water cylinder and the primary/path the simulator would compute.
fn calibration_profile(
    p: &CtProtocol,
    spec: &Spectrum,
    d_mm: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let beam = super::ctdi::beam(p, spec);
    let r = 0.5 * d_mm;
    let bins = (2.0 * (r + 48.0) / BIN_MM).ceil() as usize;
    let det = Detector {
        bins,
        bin_mm: BIN_MM,
        grid_ratio: p.grid_ratio,
    };
    let t = mc::transport(
        &beam,
        &Cylinder {
            radius_mm: r,
            half_length_mm: 200.0,
            medium: Medium::Water,
        },
        &[],
        Some(&det),
        &mc::Options {
            histories: HISTORIES,
            seed: 77 + d_mm as u64,
            primary_only: false,
        },
    );
    // The simulator's view of the same rays: energy-integrated signal with the bowtie, and
    // the object-only path −ln(I/I₀).
    let w = material_index("water").unwrap();
    let ew = spec.energy_weights();
    let u: Vec<f64> = (0..bins)
        .map(|i| (i as f64 + 0.5 - 0.5 * bins as f64) * BIN_MM)
        .collect();
    let (mut prim, mut path) = (Vec::new(), Vec::new());
    for &x in &u {
        let perp = x * p.sid_mm / (p.sid_mm * p.sid_mm + x * x).sqrt();
        let bow = bowtie_mm(p.bowtie, perp) / 10.0;
        let chord = if perp.abs() < r {
            2.0 * (r * r - perp * perp).sqrt() / 10.0
        } else {
            0.0
        };
        let (mut i0, mut i1) = (0.0, 0.0);
        for (n, &e) in ew.iter().zip(&spec.kev) {
            let m = mu_rho_at_kev(w, e as usize);
            i0 += n * (-m * bow).exp();
            i1 += n * (-m * (bow + chord)).exp();
        }
        prim.push(i1);
        path.push((i0 / i1).ln());
    }
    // Analytic primary in transport units: scaled on the air bins outside the cylinder.
    let air: Vec<usize> = (0..bins).filter(|&i| u[i].abs() > r + 8.0).collect();
    let k = air.iter().map(|&i| t.primary_kev[i]).sum::<f64>()
        / air.iter().map(|&i| prim[i]).sum::<f64>();
    prim.iter_mut().for_each(|v| *v *= k);
    (u, prim, path, t.scatter_kev)
}

/// Fits the kernel to the transport's scatter for both calibration cylinders (σ by search,
/// A by least squares), and returns it with the calibration profiles.
pub fn calibrate(p: &CtProtocol, spec: &Spectrum) -> (ScatterModel, Vec<Profile>) {
    let data: Vec<_> = CALIBRATION_DIAMETERS_MM
        .iter()
        .map(|&d| calibration_profile(p, spec, d))
        .collect();
    let mut best = (
        f64::INFINITY,
        ScatterModel {
            amplitude: 0.0,
            sigma_mm: 0.0,
            exponent: 1.0,
        },
    );
    for ke in 0..=8 {
        let exponent = 1.0 + 0.125 * ke as f64;
        let mut sigma = 10.0;
        while sigma <= 400.0 {
            // Relative residuals: each cylinder's scatter weighs the same.
            let convs: Vec<Vec<f64>> = data
                .iter()
                .map(|(_, prim, path, _)| {
                    let q: Vec<f64> = prim
                        .iter()
                        .zip(path)
                        .map(|(a, b)| a * b.powf(exponent))
                        .collect();
                    convolve(&q, BIN_MM, sigma)
                })
                .collect();
            let (mut num, mut den) = (0.0, 0.0);
            for ((_, _, _, s), c) in data.iter().zip(&convs) {
                let scale = s.iter().cloned().fold(0.0, f64::max).max(1e-30);
                for (y, x) in s.iter().zip(c) {
                    num += x * y / (scale * scale);
                    den += x * x / (scale * scale);
                }
            }
            let a = num / den;
            let mut err = 0.0;
            for ((_, _, _, s), c) in data.iter().zip(&convs) {
                let scale = s.iter().cloned().fold(0.0, f64::max).max(1e-30);
                err += s
                    .iter()
                    .zip(c)
                    .map(|(y, x)| ((y - a * x) / scale).powi(2))
                    .sum::<f64>();
            }
            if err < best.0 {
                best = (
                    err,
                    ScatterModel {
                        amplitude: a,
                        sigma_mm: sigma,
                        exponent,
                    },
                );
            }
            sigma *= 1.05;
        }
    }
    let model = best.1;
    let profiles = data
        .into_iter()
        .map(|(u, prim, path, s)| {
            let q: Vec<f64> = prim
                .iter()
                .zip(&path)
                .map(|(a, b)| a * b.powf(model.exponent))
                .collect();
            let m = convolve(&q, BIN_MM, model.sigma_mm)
                .into_iter()
                .map(|v| v * model.amplitude)
                .collect();
            Profile {
                u_mm: u,
                primary: prim,
                scatter_mc: s,
                scatter_model: m,
            }
        })
        .collect();
    (model, profiles)
}

/// The fitted kernel of the protocol's beam; calibrated once per distinct beam and grid.
pub fn model_for(p: &CtProtocol, spec: &Spectrum) -> ScatterModel {
    static CACHE: OnceLock<Mutex<HashMap<String, ScatterModel>>> = OnceLock::new();
    let key = format!(
        "{:?}|{:?}|{}|{}|{}|{}|{}|{}",
        spec.photons,
        p.bowtie,
        p.sid_mm,
        p.sdd_mm,
        p.detector_rows,
        p.pixel_mm,
        p.focal_spot_mm,
        p.grid_ratio
    );
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(m) = cache.lock().unwrap().get(&key) {
        return *m;
    }
    let m = calibrate(p, spec).0;
    cache.lock().unwrap().insert(key, m);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_has_unit_area_and_the_right_width() {
        let mut q = vec![0.0; 201];
        q[100] = 1.0;
        let s = convolve(&q, 2.0, 20.0);
        let area: f64 = s.iter().sum();
        assert!((area - 1.0).abs() < 1e-3, "area {area}");
        let var: f64 = s
            .iter()
            .enumerate()
            .map(|(i, v)| v * ((i as f64 - 100.0) * 2.0).powi(2))
            .sum();
        assert!((var.sqrt() / 20.0 - 1.0).abs() < 0.02, "σ {}", var.sqrt());
    }
}
