//! GRAPPA (Griswold et al., Magn Reson Med 47, 1202 (2002)): the phase lines regular
//! undersampling skips are synthesised, coil by coil, as a linear combination of the acquired
//! neighbours in every coil. The weights come from the fully sampled centre lines (the
//! auto-calibration signal, ACS), where every line is known: a least-squares fit of each
//! offset m = 1 … R − 1 from the two acquired lines around it (ky_s and ky_s + R) at kx − 1,
//! kx, kx + 1 in all coils. Each coil image is then the inverse transform of its filled
//! k-space, and the coils are combined by root-sum-of-squares.

use rustfft::num_complex::Complex;

use super::kspace::ky_of;
use super::recon::invert;

type C64 = Complex<f64>;

/// Kernel extent along kx (−1, 0, +1) and the source lines (ky_s, ky_s + R).
const KX: [i64; 3] = [-1, 0, 1];
const LINES: usize = 2;

/// Fills, in place, the lines of `coils` (per coil: `np` phase lines × `nr` kx samples, both
/// axes in DFT order, re and im) that `acquired` marks missing, calibrating on the lines
/// `acs` marks (a contiguous fully sampled block). Returns the number of calibration
/// equations per offset (0: too few ACS lines, nothing filled).
pub fn fill(
    coils: &mut [(Vec<f32>, Vec<f32>)],
    np: usize,
    nr: usize,
    r: usize,
    acquired: &[bool],
    acs: &[bool],
) -> usize {
    let nc = coils.len();
    let ns = nc * LINES * KX.len();
    let n = np as i64;
    let line = |ky: i64| ky.rem_euclid(n) as usize;
    let at = |coils: &[(Vec<f32>, Vec<f32>)], c: usize, l: usize, kx: i64| {
        let k = l * nr + kx.rem_euclid(nr as i64) as usize;
        C64::new(coils[c].0[k] as f64, coils[c].1[k] as f64)
    };
    let sources = |coils: &[(Vec<f32>, Vec<f32>)], ky_s: i64, kx: i64, out: &mut [C64]| {
        let mut j = 0;
        for s in 0..LINES {
            let l = line(ky_s + (s * r) as i64);
            for &dx in &KX {
                for c in 0..nc {
                    out[j] = at(coils, c, l, kx + dx);
                    j += 1;
                }
            }
        }
    };
    let mut weights: Vec<Vec<C64>> = Vec::with_capacity(r);
    let mut n_fit = usize::MAX;
    let mut src = vec![C64::new(0.0, 0.0); ns];
    for m in 1..r {
        // Calibration: every ACS target whose two source lines are ACS lines too.
        let targets: Vec<i64> = (0..np)
            .map(|l| ky_of(l, np))
            .filter(|&ky| {
                let ky_s = ky - m as i64;
                acs[line(ky)] && acs[line(ky_s)] && acs[line(ky_s + r as i64)]
            })
            .collect();
        n_fit = n_fit.min(targets.len() * nr);
        if targets.len() * nr < 2 * ns {
            return 0;
        }
        let mut a = vec![C64::new(0.0, 0.0); ns * ns];
        let mut b = vec![C64::new(0.0, 0.0); ns * nc];
        for &ky in &targets {
            for kx in 0..nr as i64 {
                sources(coils, ky - m as i64, kx, &mut src);
                for i in 0..ns {
                    let si = src[i].conj();
                    for j in 0..ns {
                        a[i * ns + j] += si * src[j];
                    }
                    for c in 0..nc {
                        b[i * nc + c] += si * at(coils, c, line(ky), kx);
                    }
                }
            }
        }
        // Tikhonov regularisation at 10⁻⁴ of the mean diagonal keeps the fit stable where the
        // coils are nearly redundant.
        let lambda = 1e-4 * (0..ns).map(|i| a[i * ns + i].re).sum::<f64>() / ns as f64;
        for i in 0..ns {
            a[i * ns + i] += lambda;
        }
        let Some(inv) = invert(&a, ns) else {
            return 0;
        };
        let mut w = vec![C64::new(0.0, 0.0); ns * nc];
        for i in 0..ns {
            for c in 0..nc {
                w[i * nc + c] = (0..ns).map(|k| inv[i * ns + k] * b[k * nc + c]).sum();
            }
        }
        weights.push(w);
    }
    // Synthesis of every missing line whose two source lines were acquired.
    for l in 0..np {
        if acquired[l] {
            continue;
        }
        let ky = ky_of(l, np);
        let m = ky.rem_euclid(r as i64);
        let ky_s = ky - m;
        if m == 0 || !acquired[line(ky_s)] || !acquired[line(ky_s + r as i64)] {
            continue;
        }
        let w = &weights[m as usize - 1];
        let mut filled = vec![C64::new(0.0, 0.0); nc * nr];
        for kx in 0..nr {
            sources(coils, ky_s, kx as i64, &mut src);
            for c in 0..nc {
                filled[c * nr + kx] = (0..ns).map(|i| src[i] * w[i * nc + c]).sum();
            }
        }
        for (c, coil) in coils.iter_mut().enumerate() {
            for kx in 0..nr {
                let v = filled[c * nr + kx];
                coil.0[l * nr + kx] = v.re as f32;
                coil.1[l * nr + kx] = v.im as f32;
            }
        }
    }
    n_fit
}
