//! The MTF a reconstruction gives at the isocentre, predicted from the scan's geometry, so a
//! kernel can be asked for by the MTF50 it should give (`kernel: {mtf50_lp_cm: x}`) rather
//! than by a window's name.
//!
//! Before the kernel's window, the image's MTF at the centre is the product of the blurs a
//! projection passes through: the focal spot's and the cell aperture's boxes (as the
//! projector's 7-tap filter realises them, `aperture::design`), detector crosstalk
//! (`aperture::crosstalk_response`) and the backprojection's linear interpolation between
//! detector samples, sinc²(u·τ) (Kak & Slaney 1988, §3.3; the ramp itself is flat in MTF).
//! The kernel is then a Gaussian window W(u) = exp(−½ (u / (σ·u_N))²), u_N the detector's
//! Nyquist frequency: W(u50) = 0.5 / M₀(u50) fixes σ in closed form. `tests/ct_mtf.rs`
//! measures the result on an edge phantom.

use super::aperture::{self, sinc};
use super::protocol::CtProtocol;

/// Detector Nyquist frequency at the isocentre, cycles/mm.
pub fn nyquist(p: &CtProtocol) -> f64 {
    0.5 / p.pixel_mm
}

/// MTF at the isocentre without any kernel window (the ramp kernel), at `u` cycles/mm.
pub fn unapodised(p: &CtProtocol, u: f64) -> f64 {
    let tau = p.pixel_mm;
    let blur = super::projection_blur(p).map_or(1.0, |b| b.response(u, tau));
    blur * aperture::crosstalk_response(p.detector_crosstalk, u, tau) * sinc(u * tau).powi(2)
}

/// The highest MTF50 this geometry reaches (the ramp kernel's), lp/cm; capped at Nyquist.
pub fn sharpest_mtf50_lp_cm(p: &CtProtocol) -> f64 {
    let un = nyquist(p);
    if unapodised(p, un) > 0.5 {
        return 10.0 * un;
    }
    // The product of the blurs falls monotonically up to Nyquist: bisect.
    let (mut lo, mut hi) = (0.0, un);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if unapodised(p, mid) > 0.5 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    10.0 * 0.5 * (lo + hi)
}

/// Width σ (fraction of Nyquist) of the Gaussian window that gives MTF50 = `target_lp_cm`;
/// `None` when the geometry cannot reach it.
pub fn gaussian_sigma(p: &CtProtocol, target_lp_cm: f64) -> Option<f64> {
    let u50 = 0.1 * target_lp_cm;
    let m0 = unapodised(p, u50);
    if u50.is_nan() || u50 <= 0.0 || m0 <= 0.5 || u50 > nyquist(p) {
        return None;
    }
    Some(u50 / nyquist(p) / (2.0 * (2.0 * m0).ln()).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_solved_window_puts_the_predicted_mtf50_on_target() {
        let mut p = CtProtocol::preset("generic64").unwrap();
        p.detector_crosstalk = 0.02;
        let limit = sharpest_mtf50_lp_cm(&p);
        // 0.57 mm cells: Nyquist 8.77 lp/cm; aperture, 0.43 mm focal penumbra, 2 % crosstalk and
        // interpolation put the ramp's MTF50 between 4 and 8 lp/cm.
        assert!(limit > 4.0 && limit < 8.0, "ramp MTF50 {limit}");
        for target in [2.0, 3.5, 5.0] {
            let s = gaussian_sigma(&p, target).unwrap();
            let u = 0.1 * target;
            let w = (-0.5 * (u / nyquist(&p) / s).powi(2)).exp();
            assert!((unapodised(&p, u) * w - 0.5).abs() < 1e-9);
        }
        assert!(gaussian_sigma(&p, limit + 0.1).is_none());
        let mut bad = p.clone();
        bad.kernel = crate::acquire::ct::Kernel::Mtf50LpCm(limit + 0.5);
        assert!(bad
            .validate()
            .iter()
            .any(|(f, _)| f == "kernel.mtf50_lp_cm"));
    }

    #[test]
    fn more_crosstalk_lowers_the_reachable_mtf() {
        let mut p = CtProtocol::preset("generic64").unwrap();
        p.detector_crosstalk = 0.0;
        let clean = sharpest_mtf50_lp_cm(&p);
        p.detector_crosstalk = 0.1;
        assert!(sharpest_mtf50_lp_cm(&p) < clean);
    }
}
