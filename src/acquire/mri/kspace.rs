//! Acquisition geometry, sampling masks, and the k-space path of one slice.
//!
//! Each slice is simulated on a *sim grid*: the protocol's matrix oversampled by an integer
//! factor along each in-plane axis until its pixels are no coarser than the object's, and
//! aligned so that every `os`-th sim pixel is an output pixel centre. The forward transform
//! crops the central `matrix` frequencies (the truncation that gives Gibbs ringing); the
//! inverse at `matrix` size returns the image. When the readout needs no crop (os = 1) the
//! readout FFT pair is skipped altogether: every k-space operation here is diagonal in kx
//! or, for spikes, has a closed form in x, so the data stay in hybrid (ky, x) space and
//! noise is added there (white noise stays white under the unitary readout transform).
//! Buffers are `n_phase` rows × `n_read` columns (one row per phase-encode line).

use rand::RngExt;

use super::fft::{transpose, Fft};
use super::protocol::{MriProtocol, SamplingPattern, Undersampling};
use crate::rng::{self, Stage};
use crate::volume::Grid;

/// In-plane sampling and slice geometry of a protocol applied to an object grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Geometry {
    pub read_axis: usize,
    pub phase_axis: usize,
    pub n_read: usize,
    pub n_phase: usize,
    pub os_read: usize,
    pub os_phase: usize,
    pub ns_read: usize,
    pub ns_phase: usize,
    pub d_read_mm: f64,
    pub d_phase_mm: f64,
    pub n_slices: usize,
    pub slice_mm: f64,
    /// The output grid (x, y, slices), centred at the isocentre.
    pub grid: Grid,
}

impl Geometry {
    pub fn new(p: &MriProtocol, obj: &Grid) -> Geometry {
        let ra = p.readout.index();
        let pa = 1 - ra;
        let (n_read, n_phase) = (p.matrix[ra], p.matrix[pa]);
        let (d_read, d_phase) = (p.fov_mm[ra] / n_read as f64, p.fov_mm[pa] / n_phase as f64);
        // Oversample until sim pixels are no coarser than the object's (cap 8: beyond that
        // the object's own detail is averaged anyway).
        let os = |d: f64, a: usize| ((d / obj.spacing_mm[a] - 1e-6).ceil() as usize).clamp(1, 8);
        let (os_read, os_phase) = (os(d_read, ra), os(d_phase, pa));
        let n_slices = ((obj.extent_mm()[2] / p.slice_mm).round() as usize).max(1);
        let grid = Grid::centered(
            [p.matrix[0], p.matrix[1], n_slices],
            [
                p.fov_mm[0] / p.matrix[0] as f64,
                p.fov_mm[1] / p.matrix[1] as f64,
                p.slice_mm,
            ],
        );
        Geometry {
            read_axis: ra,
            phase_axis: pa,
            n_read,
            n_phase,
            os_read,
            os_phase,
            ns_read: n_read * os_read,
            ns_phase: n_phase * os_phase,
            d_read_mm: d_read,
            d_phase_mm: d_phase,
            n_slices,
            slice_mm: p.slice_mm,
            grid,
        }
    }

    /// Readout coordinate (mm) of sim column `r`.
    pub fn read_mm(&self, r: usize) -> f64 {
        (r as f64 / self.os_read as f64 - 0.5 * (self.n_read as f64 - 1.0)) * self.d_read_mm
    }

    /// Phase coordinate (mm) of sim row `l`.
    pub fn phase_mm(&self, l: usize) -> f64 {
        (l as f64 / self.os_phase as f64 - 0.5 * (self.n_phase as f64 - 1.0)) * self.d_phase_mm
    }

    pub fn slice_z_mm(&self, s: usize) -> f64 {
        (s as f64 - 0.5 * (self.n_slices as f64 - 1.0)) * self.slice_mm
    }

    /// World position of sim pixel (column r, row l) in slice s.
    pub fn world(&self, r: usize, l: usize, s: usize) -> [f64; 3] {
        let mut p = [0.0, 0.0, self.slice_z_mm(s)];
        p[self.read_axis] = self.read_mm(r);
        p[self.phase_axis] = self.phase_mm(l);
        p
    }

    /// Whether the sim grid coincides with the object grid voxel for voxel (no resampling).
    pub fn matches_object(&self, obj: &Grid) -> bool {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * a.abs().max(1.0);
        let centred = Grid::centered(obj.dims, obj.spacing_mm);
        self.os_read == 1
            && self.os_phase == 1
            && obj.dims[self.read_axis] == self.n_read
            && obj.dims[self.phase_axis] == self.n_phase
            && obj.dims[2] == self.n_slices
            && close(obj.spacing_mm[self.read_axis], self.d_read_mm)
            && close(obj.spacing_mm[self.phase_axis], self.d_phase_mm)
            && close(obj.spacing_mm[2], self.slice_mm)
            && (0..3).all(|a| close(obj.origin_mm[a], centred.origin_mm[a]))
    }
}

/// Signed ky of DFT row `l` of an `n`-line k-space.
#[inline]
pub fn ky_of(l: usize, n: usize) -> i64 {
    if l < n.div_ceil(2) {
        l as i64
    } else {
        l as i64 - n as i64
    }
}

/// Acquired phase lines in DFT order: partial Fourier keeps the top ⌈pf·n⌉ lines (ky from
/// ⌈n/2⌉ − n_acq up); undersampling keeps every R-th line (through ky = 0) or a variable-density
/// random set, always with the `center_lines` around ky = 0.
pub fn sampling_mask(
    n: usize,
    partial_fourier: f64,
    us: Option<&Undersampling>,
    seed: u64,
) -> Vec<bool> {
    let top = n.div_ceil(2) as i64;
    let n_acq = ((partial_fourier * n as f64).ceil() as i64).clamp(1, n as i64);
    let mut m: Vec<bool> = (0..n).map(|l| ky_of(l, n) >= top - n_acq).collect();
    if let Some(u) = us {
        let c = u.center_lines as i64;
        let centre = |ky: i64| ky >= -c / 2 && ky < c - c / 2;
        let keep: Vec<bool> = match u.pattern {
            SamplingPattern::Regular => {
                let mut k = vec![false; n];
                let r = u.factor.max(1.0);
                let q_max = (n as f64 / r).ceil() as i64 + 1;
                for q in -q_max..=q_max {
                    let ky = (q as f64 * r).round() as i64;
                    if ky >= -(n as i64 / 2) && ky < top {
                        k[ky.rem_euclid(n as i64) as usize] = true;
                    }
                }
                k
            }
            SamplingPattern::VariableDensity => {
                let half = n as f64 / 2.0;
                let pdf: Vec<f64> = (0..n)
                    .map(|l| (1.0 - ky_of(l, n).abs() as f64 / half).max(0.0).powi(2))
                    .collect();
                let n_centre = (0..n).filter(|&l| centre(ky_of(l, n))).count() as f64;
                let target = (n as f64 / u.factor - n_centre).max(0.0);
                let (mut lo, mut hi) = (0.0, 1e6);
                for _ in 0..100 {
                    let s = 0.5 * (lo + hi);
                    let tot: f64 = (0..n)
                        .filter(|&l| !centre(ky_of(l, n)))
                        .map(|l| (s * pdf[l]).min(1.0))
                        .sum();
                    if tot > target {
                        hi = s;
                    } else {
                        lo = s;
                    }
                }
                let mut r = rng::stream(seed, Stage::Acquire, 0x1_0000_0000);
                (0..n)
                    .map(|l| r.random::<f64>() < (lo * pdf[l]).min(1.0))
                    .collect()
            }
        };
        for l in 0..n {
            m[l] = m[l] && (keep[l] || centre(ky_of(l, n)));
        }
    }
    m
}

/// FFT plans for one geometry (shared read-only across threads).
pub struct Plans {
    pub read_sim: Fft,
    pub read_out: Fft,
    pub phase_sim: Fft,
    pub phase_out: Fft,
}

impl Plans {
    pub fn new(g: &Geometry) -> Plans {
        Plans {
            read_sim: Fft::new(g.ns_read),
            read_out: Fft::new(g.n_read),
            phase_sim: Fft::new(g.ns_phase),
            phase_out: Fft::new(g.n_phase),
        }
    }
}

/// Rows of an `n_src`-row spectrum kept in an `n_dst`-row one (low frequencies, DFT order).
fn crop_rows(src: Vec<f32>, n_src: usize, n_dst: usize, width: usize) -> Vec<f32> {
    if n_src == n_dst {
        return src;
    }
    let mut out = vec![0f32; n_dst * width];
    for l in 0..n_dst {
        let from = if l < n_dst.div_ceil(2) {
            l
        } else {
            n_src - (n_dst - l)
        };
        out[l * width..(l + 1) * width].copy_from_slice(&src[from * width..(from + 1) * width]);
    }
    out
}

/// Forward transform of a sim-grid slice (`ns_phase × ns_read`, consumed) to the protocol's
/// k-space (`n_phase × n_read`): kx (when `kx_domain`) and ky, each cropped to the matrix.
pub fn forward(
    g: &Geometry,
    plans: &Plans,
    mut re: Vec<f32>,
    mut im: Vec<f32>,
    kx_domain: bool,
) -> (Vec<f32>, Vec<f32>) {
    let width = if kx_domain {
        // 1. Readout: transpose so the readout runs down columns, FFT, crop, transpose back.
        let mut tr = vec![0f32; re.len()];
        let mut ti = vec![0f32; im.len()];
        transpose(&re, g.ns_phase, g.ns_read, &mut tr);
        transpose(&im, g.ns_phase, g.ns_read, &mut ti);
        plans.read_sim.process(&mut tr, &mut ti, g.ns_phase, false);
        let (cr, ci) = (
            crop_rows(tr, g.ns_read, g.n_read, g.ns_phase),
            crop_rows(ti, g.ns_read, g.n_read, g.ns_phase),
        );
        re.truncate(g.ns_phase * g.n_read);
        im.truncate(g.ns_phase * g.n_read);
        transpose(&cr, g.n_read, g.ns_phase, &mut re);
        transpose(&ci, g.n_read, g.ns_phase, &mut im);
        g.n_read
    } else {
        g.ns_read
    };
    // 2. Phase encoding: FFT down the columns, crop.
    plans.phase_sim.process(&mut re, &mut im, width, false);
    (
        crop_rows(re, g.ns_phase, g.n_phase, width),
        crop_rows(im, g.ns_phase, g.n_phase, width),
    )
}

/// Unnormalised DFT (or inverse) along the readout of `n_phase` × `n_read` data, in place.
pub fn read_transform(g: &Geometry, plans: &Plans, re: &mut [f32], im: &mut [f32], inverse: bool) {
    let mut tr = vec![0f32; re.len()];
    let mut ti = vec![0f32; im.len()];
    transpose(re, g.n_phase, g.n_read, &mut tr);
    transpose(im, g.n_phase, g.n_read, &mut ti);
    plans.read_out.process(&mut tr, &mut ti, g.n_phase, inverse);
    transpose(&tr, g.n_read, g.n_phase, re);
    transpose(&ti, g.n_read, g.n_phase, im);
}

/// Inverse of [`forward`] at the protocol matrix, scaled so the object's intensity is kept.
pub fn inverse(g: &Geometry, plans: &Plans, re: &mut [f32], im: &mut [f32], kx_domain: bool) {
    plans.phase_out.process(re, im, g.n_read, true);
    let mut s = 1.0 / g.ns_phase as f32;
    if kx_domain {
        read_transform(g, plans, re, im, true);
        s /= g.ns_read as f32;
    }
    re.iter_mut().for_each(|v| *v *= s);
    im.iter_mut().for_each(|v| *v *= s);
}

/// K-space in DFT order (`n_phase × n_read`) from data in either domain, scaled so that an
/// orthonormal inverse 2D DFT gives the coil image.
pub fn to_ortho_kspace(
    g: &Geometry,
    plans: &Plans,
    re: &[f32],
    im: &[f32],
    kx_domain: bool,
) -> (Vec<f32>, Vec<f32>) {
    let (mut kr, mut ki) = (re.to_vec(), im.to_vec());
    let mut scale = ((g.n_phase * g.n_read) as f64).sqrt() / g.ns_phase as f64;
    if kx_domain {
        scale /= g.ns_read as f64;
    } else {
        let mut tr = vec![0f32; kr.len()];
        let mut ti = vec![0f32; ki.len()];
        transpose(&kr, g.n_phase, g.n_read, &mut tr);
        transpose(&ki, g.n_phase, g.n_read, &mut ti);
        plans.read_out.process(&mut tr, &mut ti, g.n_phase, false);
        transpose(&tr, g.n_read, g.n_phase, &mut kr);
        transpose(&ti, g.n_read, g.n_phase, &mut ki);
        scale /= g.n_read as f64;
    }
    kr.iter_mut().for_each(|v| *v *= scale as f32);
    ki.iter_mut().for_each(|v| *v *= scale as f32);
    (kr, ki)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_respect_partial_fourier_regular_and_centre() {
        let m = sampling_mask(16, 0.5, None, 1);
        assert_eq!(m.iter().filter(|&&b| b).count(), 8);
        assert!(m[0] && m[7] && !m[8]);
        let u = Undersampling {
            factor: 4.0,
            pattern: SamplingPattern::Regular,
            center_lines: 4,
        };
        let m = sampling_mask(32, 1.0, Some(&u), 1);
        let kys: Vec<i64> = (0..32).filter(|&l| m[l]).map(|l| ky_of(l, 32)).collect();
        for ky in [-16, -12, -8, -4, -2, -1, 0, 1, 4, 8, 12] {
            assert!(kys.contains(&ky), "{ky} missing from {kys:?}");
        }
        assert_eq!(kys.len(), 11);
        let v = Undersampling {
            factor: 3.0,
            pattern: SamplingPattern::VariableDensity,
            center_lines: 16,
        };
        let m = sampling_mask(256, 1.0, Some(&v), 9);
        let n = m.iter().filter(|&&b| b).count();
        assert!((70..=100).contains(&n), "{n} lines for R = 3");
    }

    #[test]
    fn forward_inverse_round_trips_with_oversampling() {
        let p = {
            let mut p =
                super::super::MriProtocol::default_for(super::super::Sequence::SpinEcho, 3.0);
            p.fov_mm = [64.0, 48.0];
            p.matrix = [32, 24];
            p
        };
        let obj = Grid::centered([64, 48, 4], [1.0, 1.0, 5.0]);
        let g = Geometry::new(&p, &obj);
        assert_eq!(
            (g.os_read, g.os_phase, g.ns_read, g.ns_phase),
            (2, 2, 64, 48)
        );
        let plans = Plans::new(&g);
        // A constant object survives the crop with its intensity.
        let (mut r, mut i) = forward(&g, &plans, vec![0.7; 64 * 48], vec![0.0; 64 * 48], true);
        inverse(&g, &plans, &mut r, &mut i, true);
        assert!(r.iter().all(|v| (v - 0.7).abs() < 1e-5));
    }
}
