//! Filtered backprojection: parallel beam, equispaced fan beam and FDK cone beam.
//!
//! - Ramp filter: the band-limited spatial ramp of Kak & Slaney (1988) eq. 3.61,
//!   h(0) = 1/(4τ²), h(n odd) = −1/(n²π²τ²), h(n even) = 0, applied by FFT with zero padding
//!   to ≥ 2n (no circular wrap, no DC offset), then apodised by the kernel's window.
//! - Parallel: f = (π/V) Σ_θ Q_θ(x cos θ + y sin θ) over [0, π) (K&S eq. 3.45).
//! - Fan (flat detector at isocentre, full 2π): pre-weight D/√(D²+p²), filter with h/2,
//!   backproject Δβ·Q(p′)/U², U = (D − s)/D, p′ = t/U (K&S eqs. 3.136–3.140).
//! - FDK (Feldkamp, Davis & Kress, JOSA A 1, 612 (1984)): pre-weight D/√(D²+p²+ζ²),
//!   row-wise filtering as in the fan case, backproject with 1/U² at (p′, ζ′) = (t, z − z_s)/U.

use rayon::prelude::*;

use super::fft::{Fft, C64};
use super::geometry::{det_pos, ConeGeometry, FanGeometry, ParallelGeometry, Plane};
use super::protocol::Kernel;

/// Apodisation window of a kernel at frequency `f` as a fraction of Nyquist (0–1).
/// Sharp: ramp with a mild high-frequency boost (edge enhancement as in bone kernels);
/// Shepp–Logan: sinc (Shepp & Logan, IEEE TNS 21, 21 (1974)); Standard: cosine;
/// Smooth: Hann cut off at 0.7 Nyquist.
pub fn kernel_window(kernel: Kernel, f: f64) -> f64 {
    use std::f64::consts::PI;
    match kernel {
        Kernel::Ramp => 1.0,
        Kernel::Sharp => 1.0 + 0.4 * f * f,
        Kernel::SheppLogan => {
            let x = 0.5 * PI * f;
            if x.abs() < 1e-12 {
                1.0
            } else {
                x.sin() / x
            }
        }
        Kernel::Standard => (0.5 * PI * f).cos(),
        Kernel::Smooth => {
            let fc = 0.7;
            if f >= fc {
                0.0
            } else {
                0.5 * (1.0 + (PI * f / fc).cos())
            }
        }
    }
}

/// Ramp filter for rows of `n` detectors at pitch `tau_mm`, scaled by `scale`.
pub struct RampFilter {
    fft: Fft,
    n: usize,
    /// Real frequency response (h is even), including τ and `scale`.
    resp: Vec<f64>,
}

impl RampFilter {
    pub fn new(n: usize, tau_mm: f64, kernel: Kernel, scale: f64) -> RampFilter {
        let np = (2 * n).next_power_of_two();
        let fft = Fft::new(np);
        // Stage 1: spatial ramp samples on the padded circle (K&S eq. 3.61).
        let mut h: Vec<C64> = vec![(0.0, 0.0); np];
        for (k, v) in h.iter_mut().enumerate() {
            let m = if k <= np / 2 {
                k as i64
            } else {
                k as i64 - np as i64
            };
            v.0 = if m == 0 {
                1.0 / (4.0 * tau_mm * tau_mm)
            } else if m % 2 != 0 {
                -1.0 / ((m * m) as f64 * std::f64::consts::PI.powi(2) * tau_mm * tau_mm)
            } else {
                0.0
            };
        }
        fft.run(&mut h, false);
        // Stage 2: apodise; ×τ turns the discrete convolution into the integral (eq. 3.62).
        let resp = h
            .iter()
            .enumerate()
            .map(|(k, v)| {
                let m = if k <= np / 2 { k } else { np - k };
                let f = m as f64 / (np / 2) as f64;
                v.0 * tau_mm * scale * kernel_window(kernel, f)
            })
            .collect();
        RampFilter { fft, n, resp }
    }

    /// Filters two rows at once (packed as real and imaginary parts: the response is real
    /// and even, so they do not mix). `b` may be empty.
    pub fn apply_pair(&self, a: &mut [f32], b: &mut [f32], scratch: &mut Vec<C64>) {
        let np = self.fft.len();
        scratch.clear();
        scratch.resize(np, (0.0, 0.0));
        for (i, v) in a.iter().enumerate() {
            scratch[i].0 = *v as f64;
        }
        for (i, v) in b.iter().enumerate() {
            scratch[i].1 = *v as f64;
        }
        self.fft.run(scratch, false);
        for (v, r) in scratch.iter_mut().zip(&self.resp) {
            v.0 *= r;
            v.1 *= r;
        }
        self.fft.run(scratch, true);
        for (i, v) in a.iter_mut().enumerate() {
            *v = scratch[i].0 as f32;
        }
        for (i, v) in b.iter_mut().enumerate() {
            *v = scratch[i].1 as f32;
        }
    }

    /// Filters every row of `rows` (each `n` long) in parallel.
    pub fn apply_rows(&self, data: &mut [f32]) {
        let n = self.n;
        data.par_chunks_mut(2 * n)
            .for_each_init(Vec::new, |scratch, pair| {
                let (a, b) = pair.split_at_mut(n.min(pair.len()));
                self.apply_pair(a, b, scratch);
            });
    }
}

/// Linear interpolation in a detector row, zero outside.
#[inline]
fn lerp_row(row: &[f32], idx: f64) -> f32 {
    if idx < 0.0 || idx > (row.len() - 1) as f64 {
        return 0.0;
    }
    let i = (idx as usize).min(row.len() - 2);
    let f = (idx - i as f64) as f32;
    row[i] + f * (row[i + 1] - row[i])
}

/// Parallel-beam FBP of a sinogram (views × det) over [0, π) onto `plane`.
pub fn fbp_parallel(
    sino: &[f32],
    geo: &ParallelGeometry,
    plane: &Plane,
    kernel: Kernel,
) -> Vec<f32> {
    let nd = geo.det_count;
    let nv = geo.angles_rad.len();
    let mut q = sino.to_vec();
    RampFilter::new(nd, geo.det_spacing_mm, kernel, 1.0).apply_rows(&mut q);
    let trig: Vec<(f64, f64)> = geo.angles_rad.iter().map(|a| a.sin_cos()).collect();
    let dbeta = std::f64::consts::PI / nv as f64;
    let c0 = 0.5 * (nd as f64 - 1.0);
    let inv = 1.0 / geo.det_spacing_mm;
    let mut img = vec![0.0f32; plane.len()];
    img.par_chunks_mut(plane.nx)
        .enumerate()
        .for_each(|(j, out)| {
            let y = plane.world(0, j)[1];
            let x0 = plane.origin_mm[0];
            let dx = plane.spacing_mm[0];
            for (v, &(s, c)) in trig.iter().enumerate() {
                let row = &q[v * nd..(v + 1) * nd];
                // t = x cos θ + y sin θ, linear in x along the image row.
                let mut idx = (x0 * c + y * s) * inv + c0;
                let step = dx * c * inv;
                for o in out.iter_mut() {
                    *o += lerp_row(row, idx);
                    idx += step;
                }
            }
            for o in out.iter_mut() {
                *o *= dbeta as f32;
            }
        });
    img
}

/// Fan-beam FBP (full rotation, flat detector at isocentre) onto `plane`.
pub fn fbp_fan(sino: &[f32], geo: &FanGeometry, plane: &Plane, kernel: Kernel) -> Vec<f32> {
    let nd = geo.det_count;
    let d = geo.sid_mm;
    // Stage 1: cosine pre-weighting D/√(D²+p²).
    let w: Vec<f32> = (0..nd)
        .map(|k| {
            let p = det_pos(k, nd, geo.det_spacing_mm);
            (d / (d * d + p * p).sqrt()) as f32
        })
        .collect();
    let mut q: Vec<f32> = sino
        .iter()
        .enumerate()
        .map(|(i, &v)| v * w[i % nd])
        .collect();
    // Stage 2: filter with g = h/2.
    RampFilter::new(nd, geo.det_spacing_mm, kernel, 0.5).apply_rows(&mut q);
    // Stage 3: weighted backprojection.
    let dbeta = 2.0 * std::f64::consts::PI / geo.views as f64;
    let mut img = vec![0.0f32; plane.len()];
    img.par_chunks_mut(plane.nx)
        .enumerate()
        .for_each(|(j, out)| {
            backproject_fan_row(&q, geo, plane, j, d, out);
            for o in out.iter_mut() {
                *o *= dbeta as f32;
            }
        });
    img
}

/// Σ_views Q(p′)/U² for one image row (U = (D − s)/D, p′ = t/U).
fn backproject_fan_row(
    q: &[f32],
    geo: &FanGeometry,
    plane: &Plane,
    j: usize,
    d: f64,
    out: &mut [f32],
) {
    let nd = geo.det_count;
    let c0 = 0.5 * (nd as f64 - 1.0);
    let inv = 1.0 / geo.det_spacing_mm;
    let y = plane.world(0, j)[1];
    let (x0, dx) = (plane.origin_mm[0], plane.spacing_mm[0]);
    for v in 0..geo.views {
        let (sb, cb) = geo.beta(v).sin_cos();
        let row = &q[v * nd..(v + 1) * nd];
        let mut s = x0 * cb + y * sb;
        let mut t = -x0 * sb + y * cb;
        let (ds, dt) = (dx * cb, -dx * sb);
        for o in out.iter_mut() {
            let u_inv = d / (d - s);
            let idx = t * u_inv * inv + c0;
            *o += lerp_row(row, idx) * (u_inv * u_inv) as f32;
            s += ds;
            t += dt;
        }
    }
}

/// FDK reconstruction of cone projections (views × rows × cols) at the planes `z_mm`
/// (each `plane`-shaped); returns z-major stacked planes.
pub fn fdk(
    proj: &[f32],
    geo: &ConeGeometry,
    plane: &Plane,
    z_mm: &[f64],
    kernel: Kernel,
) -> Vec<f32> {
    let (nc, nr) = (geo.cols, geo.rows);
    let d = geo.sid_mm;
    // Stage 1: FDK pre-weight D/√(D²+p²+ζ²).
    let mut q: Vec<f32> = proj
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let p = det_pos(i % nc, nc, geo.pixel_mm);
            let z = det_pos((i / nc) % nr, nr, geo.pixel_mm);
            v * (d / (d * d + p * p + z * z).sqrt()) as f32
        })
        .collect();
    // Stage 2: row-wise ramp filtering (g = h/2).
    RampFilter::new(nc, geo.pixel_mm, kernel, 0.5).apply_rows(&mut q);
    // Stage 3: backprojection, bilinear in (p′, ζ′).
    let dbeta = 2.0 * std::f64::consts::PI / geo.views as f64;
    let inv = 1.0 / geo.pixel_mm;
    let (c0, r0) = (0.5 * (nc as f64 - 1.0), 0.5 * (nr as f64 - 1.0));
    let mut out = vec![0.0f32; plane.len() * z_mm.len()];
    out.par_chunks_mut(plane.nx)
        .enumerate()
        .for_each(|(jz, orow)| {
            let (k, j) = (jz / plane.ny, jz % plane.ny);
            let dz = z_mm[k] - geo.z_mm;
            let y = plane.world(0, j)[1];
            let (x0, dx) = (plane.origin_mm[0], plane.spacing_mm[0]);
            for v in 0..geo.views {
                let (sb, cb) = geo.beta(v).sin_cos();
                let view = &q[v * nc * nr..(v + 1) * nc * nr];
                let mut s = x0 * cb + y * sb;
                let mut t = -x0 * sb + y * cb;
                let (ds, dt) = (dx * cb, -dx * sb);
                for o in orow.iter_mut() {
                    let u_inv = d / (d - s);
                    let pi = t * u_inv * inv + c0;
                    let zi = dz * u_inv * inv + r0;
                    s += ds;
                    t += dt;
                    if pi < 0.0 || zi < 0.0 || pi > (nc - 1) as f64 || zi > (nr - 1) as f64 {
                        continue;
                    }
                    let (ic, ir) = ((pi as usize).min(nc - 2), (zi as usize).min(nr.max(2) - 2));
                    let (fc, fr) = ((pi - ic as f64) as f32, (zi - ir as f64) as f32);
                    let val = if nr == 1 {
                        let r = &view[..nc];
                        r[ic] + fc * (r[ic + 1] - r[ic])
                    } else {
                        let r0v = &view[ir * nc..(ir + 1) * nc];
                        let r1v = &view[(ir + 1) * nc..(ir + 2) * nc];
                        let a = r0v[ic] + fc * (r0v[ic + 1] - r0v[ic]);
                        let b = r1v[ic] + fc * (r1v[ic + 1] - r1v[ic]);
                        a + fr * (b - a)
                    };
                    *o += val * (u_inv * u_inv) as f32;
                }
            }
            for o in orow.iter_mut() {
                *o *= dbeta as f32;
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::super::phantom::{rasterize_ellipses, Ellipse, SHEPP_LOGAN};
    use super::super::projector::{project_fan, project_parallel};
    use super::*;

    fn rmse(a: &[f32], b: &[f32]) -> f64 {
        (a.iter()
            .zip(b)
            .map(|(x, y)| ((x - y) as f64).powi(2))
            .sum::<f64>()
            / a.len() as f64)
            .sqrt()
    }

    #[test]
    fn parallel_fbp_of_shepp_logan_beats_skimage_iradon() {
        // Must-show 2: 256², 360 views over 180°, ramp filter, noise-free.
        // skimage iradon (ramp, linear interpolation, circle=True): RMSE 0.028 on its own
        // phantom (reference README); on this same raster, skimage 0.26 radon→iradon gives
        // 0.0236 and astra 2.5 CPU FBP 0.0306 (measured by benches/peers/ct_peers.py).
        let n = 256;
        let plane = Plane::centered(n, n, [2.0 / n as f64; 2]);
        let img = rasterize_ellipses(SHEPP_LOGAN, &plane, 4);
        // Detectors cover the image diagonal so the corners are reconstructed too.
        let geo = ParallelGeometry::half_turn(360, 363, 2.0 / n as f64);
        let sino = project_parallel(&img, &plane, &geo);
        let rec = fbp_parallel(&sino, &geo, &plane, Kernel::Ramp);
        let e = rmse(&rec, &img);
        eprintln!(
            "Shepp–Logan 256², 360 views, ramp: RMSE {e:.4} (skimage iradon 0.0236 on this raster)"
        );
        assert!(e < 0.0236);
    }

    #[test]
    fn fan_fbp_reconstructs_a_disc_value() {
        let n = 128;
        let plane = Plane::centered(n, n, [2.0; 2]);
        let disc = [Ellipse {
            value: 0.02,
            cx: 10.0,
            cy: -5.0,
            a: 80.0,
            b: 60.0,
            phi_deg: 20.0,
        }];
        let img: Vec<[f32; 1]> = rasterize_ellipses(&disc, &plane, 3)
            .into_iter()
            .map(|v| [v])
            .collect();
        let geo = FanGeometry {
            views: 360,
            sid_mm: 541.0,
            det_count: 400,
            det_spacing_mm: 1.0,
        };
        let sino: Vec<f32> = project_fan(&img, &plane, &geo)
            .into_iter()
            .map(|v| v[0])
            .collect();
        let rec = fbp_fan(&sino, &geo, &plane, Kernel::Ramp);
        let mut m = 0.0;
        let mut cnt = 0.0;
        for j in 54..74 {
            for i in 60..80 {
                m += rec[j * n + i] as f64;
                cnt += 1.0;
            }
        }
        let m = m / cnt;
        assert!((m / 0.02 - 1.0).abs() < 0.005, "fan FBP mean {m} vs 0.02");
    }

    #[test]
    fn kernels_order_by_passband() {
        for f in [0.2, 0.5, 0.9] {
            let w: Vec<f64> = [
                Kernel::Smooth,
                Kernel::Standard,
                Kernel::SheppLogan,
                Kernel::Ramp,
                Kernel::Sharp,
            ]
            .iter()
            .map(|&k| kernel_window(k, f))
            .collect();
            assert!(w.windows(2).all(|p| p[0] <= p[1]), "{w:?} at {f}");
        }
    }
}
