//! Stochastic detail: the part of an object the decoder cannot say, drawn from statistics
//! measured on the training data.
//!
//! Why: the latent grid is 4× coarser than the object and the decoder is deterministic and
//! trained with an L1 loss, so within each 4×4×4 block it returns the conditional median —
//! smooth. On the real `ct-abdomen` CT the spread of the voxels around their block mean is
//! 11.4 HU in the liver and 15 HU in fat; the decoder's samples had 1.3 and 3.7 HU. That
//! missing part is mostly acquisition noise and sub-block structure (lung vessels,
//! trabeculae) that 4 latent channels per 64 voxels cannot carry, and which no decoder
//! could predict from the latent anyway: it is a distribution, not a value.
//!
//! So the model keeps, per class, the distribution of the autoencoder's residual on its
//! training cases (the real value minus the reconstruction: 129 quantiles) and one spatial
//! correlation per channel, measured on the residual mapped to standard-normal scores class
//! by class. A sample then gets a Gaussian-copula field: white noise convolved with a
//! kernel whose autocorrelation is the measured one, mapped voxel by voxel through Φ and
//! its class's residual quantiles — the right marginal per tissue (heavy tails included:
//! the vessels of a lung base), the right noise-power shape — minus its mean over every
//! 4×4×4 block, so each block keeps exactly the mean its latent says (the invariant of the
//! autoencoder's shortcut). What it is not: anatomy. A vessel tree or trabecular network
//! comes out as texture with their values and their correlation length, not as tubes and
//! plates.

use serde::{Deserialize, Serialize};

use crate::noise::normal_noise;
use crate::LdmError;

/// Quantiles kept per class and channel, at p = (i + ½) / n.
pub const QUANTILES: usize = 129;
/// Half-widths (x, y, z) of the measured autocorrelation and of the kernel, in voxels of the
/// training grid.
pub const HALF: [usize; 3] = [3, 3, 2];
/// Histogram of the residual: ±`RANGE` channel scales (±4000 HU for CT) in bins of
/// 1/`BINS_PER_SCALE` (1 HU).
const RANGE: f64 = 4.0;
const BINS_PER_SCALE: f64 = 1000.0;
/// Grid on which the kernel is derived from the autocorrelation (larger than the window,
/// so the square root of the spectrum is taken on a fine frequency grid).
const DFT: [usize; 3] = [16, 16, 8];
/// Block edge of the autoencoder's shortcut (its spatial compression).
const BLOCK: usize = 4;

/// Residual statistics of a trained model (stored in `config.json`, absent for models
/// trained before them: those sample without stochastic detail).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResidualTexture {
    /// `[channel][class]`: the residual's quantiles in physical units, ascending; empty for
    /// a class no training voxel had.
    pub quantiles: Vec<Vec<Vec<f32>>>,
    /// Per channel, a kernel on `(2·HALF + 1)` voxels (x fastest) with unit sum of squares.
    pub kernels: Vec<Vec<f32>>,
    /// Per channel, the measured correlation of normal scores with the next voxel along x,
    /// y and z (for the model card and the tests).
    pub neighbour_correlation: Vec<[f32; 3]>,
    /// Training voxels the statistics were measured on.
    pub voxels: u64,
    /// Per class, training voxels left out as focal findings ([`crate::focal`]); empty for
    /// statistics measured before the rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub focal_voxels: Vec<u64>,
}

fn kernel_dims() -> [usize; 3] {
    HALF.map(|h| 2 * h + 1)
}

/// Standard normal CDF (puruspe's erfc: accurate in the tails).
fn phi(x: f64) -> f64 {
    0.5 * puruspe::erfc(-x / std::f64::consts::SQRT_2)
}

/// Standard normal quantile.
fn phi_inv(p: f64) -> f64 {
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    if p < 0.5 {
        -std::f64::consts::SQRT_2 * puruspe::inverfc(2.0 * p)
    } else {
        std::f64::consts::SQRT_2 * puruspe::inverfc(2.0 * (1.0 - p))
    }
}

/// Accumulates [`ResidualTexture`] over training cases in two passes: every case's residual
/// through [`TextureFit::add_marginals`], then every case again through
/// [`TextureFit::add_correlation`] (which needs the marginals to map residuals to normal
/// scores). Memory: one histogram per class and channel, whatever the dataset's size.
pub struct TextureFit {
    scales: Vec<f32>,
    classes: usize,
    bins: usize,
    /// Per (channel, class), one histogram per [`Tier`]; `hist` becomes the chosen one.
    hist: Vec<Vec<u64>>,
    tiers: Vec<[Vec<u64>; 3]>,
    /// Per (channel, class): the tier its marginal came from.
    chosen: Vec<usize>,
    /// Normal score of each histogram bin (filled when the marginals are complete).
    scores: Vec<Vec<f32>>,
    corr: Vec<Vec<f64>>,
    pairs: Vec<Vec<f64>>,
}

impl TextureFit {
    /// `scales`: each channel's physical scale (1000 for HU).
    pub fn new(scales: &[f32], classes: usize) -> Self {
        let bins = (2.0 * RANGE * BINS_PER_SCALE) as usize;
        let nk: usize = kernel_dims().iter().product();
        Self {
            scales: scales.to_vec(),
            classes,
            bins,
            hist: Vec::new(),
            tiers: vec![[vec![0; bins], vec![0; bins], vec![0; bins]]; scales.len() * classes],
            chosen: Vec::new(),
            scores: Vec::new(),
            corr: vec![vec![0.0; nk]; scales.len()],
            pairs: vec![vec![0.0; nk]; scales.len()],
        }
    }

    fn bin(&self, ch: usize, v: f32) -> usize {
        let u = f64::from(v) / f64::from(self.scales[ch]);
        (((u + RANGE) * BINS_PER_SCALE).floor().max(0.0) as usize).min(self.bins - 1)
    }

    /// `residual`: channel-major physical residual of one case; `classes` its class map on
    /// `dims` (the latent grid's blocks start at the origin). A class's marginal comes from
    /// the voxels of 4×4×4 blocks it fills alone where it has at least [`MIN_VOXELS`] of
    /// them, else from its interior voxels (six neighbours of its class), else from all.
    /// Why not all: where a block holds two tissues the residual is mostly the decoder's
    /// and the labels' misfit at the boundary (fat and muscle from HU windows: up to
    /// 400 HU), which spread over every fat voxel tripled its within-block spread.
    /// A NaN residual (a focal finding, [`crate::focal`]) is left out here and in
    /// [`TextureFit::add_correlation`].
    pub fn add_marginals(&mut self, residual: &[f32], classes: &[u8], dims: [usize; 3]) {
        let n = classes.len();
        let tier = tiers(classes, dims);
        for ch in 0..self.scales.len() {
            for (i, (&c, &v)) in classes
                .iter()
                .zip(&residual[ch * n..(ch + 1) * n])
                .enumerate()
            {
                if v.is_nan() {
                    continue;
                }
                let c = usize::from(c).min(self.classes - 1);
                let b = self.bin(ch, v);
                for t in tier[i]..3 {
                    self.tiers[ch * self.classes + c][t][b] += 1;
                }
            }
        }
    }

    fn ensure_scores(&mut self) {
        if !self.scores.is_empty() {
            return;
        }
        for t in &self.tiers {
            let pick = (0..3)
                .find(|&k| t[k].iter().sum::<u64>() >= MIN_VOXELS)
                .unwrap_or(2);
            self.chosen.push(pick);
            self.hist.push(t[pick].clone());
        }
        self.scores = self
            .hist
            .iter()
            .map(|h| {
                let total = h.iter().sum::<u64>() as f64;
                let mut below = 0.0;
                h.iter()
                    .map(|&k| {
                        let mid = (below + 0.5 * k as f64) / total.max(1.0);
                        below += k as f64;
                        phi_inv(mid) as f32
                    })
                    .collect()
            })
            .collect();
    }

    /// Second pass: the autocorrelation of the normal scores over pairs of voxels of
    /// labelled (non-background) classes, each in the tier its class's marginal came from.
    /// `dims`: the case's grid (x fastest).
    pub fn add_correlation(&mut self, residual: &[f32], classes: &[u8], dims: [usize; 3]) {
        self.ensure_scores();
        let n = classes.len();
        let tier = tiers(classes, dims);
        let k = self.classes;
        let [nx, ny, nz] = dims;
        let kd = kernel_dims();
        for ch in 0..self.scales.len() {
            let used: Vec<bool> = classes
                .iter()
                .zip(&tier)
                .zip(&residual[ch * n..(ch + 1) * n])
                .map(|((&c, &t), v)| {
                    let c = usize::from(c).min(k - 1);
                    c != 0 && t <= self.chosen[ch * k + c] && !v.is_nan()
                })
                .collect();
            let g: Vec<f32> = classes
                .iter()
                .zip(&residual[ch * n..(ch + 1) * n])
                .map(|(&c, &v)| {
                    let c = usize::from(c).min(self.classes - 1);
                    self.scores[ch * self.classes + c][self.bin(ch, v)]
                })
                .collect();
            for (j, (sum, cnt)) in self.corr[ch]
                .iter_mut()
                .zip(self.pairs[ch].iter_mut())
                .enumerate()
            {
                let dx = (j % kd[0]) as isize - HALF[0] as isize;
                let dy = ((j / kd[0]) % kd[1]) as isize - HALF[1] as isize;
                let dz = (j / (kd[0] * kd[1])) as isize - HALF[2] as isize;
                let (mut s, mut k) = (0.0f64, 0u64);
                for z in 0..nz {
                    let z2 = z as isize + dz;
                    if z2 < 0 || z2 >= nz as isize {
                        continue;
                    }
                    for y in 0..ny {
                        let y2 = y as isize + dy;
                        if y2 < 0 || y2 >= ny as isize {
                            continue;
                        }
                        let row = (z * ny + y) * nx;
                        let row2 = (z2 as usize * ny + y2 as usize) * nx;
                        let x0 = (-dx).max(0) as usize;
                        let x1 = (nx as isize - dx.max(0)).max(0) as usize;
                        let mut acc = 0.0f64;
                        for x in x0..x1 {
                            let a = row + x;
                            let b = (row2 as isize + x as isize + dx) as usize;
                            if used[a] && used[b] {
                                acc += f64::from(g[a]) * f64::from(g[b]);
                                k += 1;
                            }
                        }
                        s += acc;
                    }
                }
                *sum += s;
                *cnt += k as f64;
            }
        }
    }

    pub fn finish(mut self) -> ResidualTexture {
        self.ensure_scores();
        let voxels = self
            .tiers
            .iter()
            .map(|t| t[2].iter().sum::<u64>())
            .sum::<u64>()
            / self.scales.len().max(1) as u64;
        let quantiles = (0..self.scales.len())
            .map(|ch| {
                (0..self.classes)
                    .map(|c| {
                        let h = &self.hist[ch * self.classes + c];
                        quantiles_of(h, |b| {
                            ((b as f64 + 0.5) / BINS_PER_SCALE - RANGE) * f64::from(self.scales[ch])
                        })
                    })
                    .collect()
            })
            .collect();
        let kd = kernel_dims();
        let mut kernels = Vec::new();
        let mut neighbour_correlation = Vec::new();
        for ch in 0..self.scales.len() {
            let r: Vec<f64> = self.corr[ch]
                .iter()
                .zip(&self.pairs[ch])
                .map(|(&s, &k)| if k > 0.0 { s / k } else { 0.0 })
                .collect();
            let r0 = r[index(kd, [0, 0, 0])].max(1e-9);
            let at = |d: [isize; 3]| r[index(kd, d)] / r0;
            neighbour_correlation.push([
                at([1, 0, 0]) as f32,
                at([0, 1, 0]) as f32,
                at([0, 0, 1]) as f32,
            ]);
            kernels.push(kernel_from_autocorrelation(&r));
        }
        ResidualTexture {
            quantiles,
            kernels,
            neighbour_correlation,
            voxels,
            focal_voxels: Vec::new(),
        }
    }
}

/// Voxels a tier needs for a class's marginal to come from it.
pub const MIN_VOXELS: u64 = 500;

/// Per voxel: 0 if its 4×4×4 block (from the origin, inside `dims`) is one class, 1 if
/// its six face neighbours (inside the grid) are its class, 2 otherwise.
fn tiers(classes: &[u8], dims: [usize; 3]) -> Vec<usize> {
    let [nx, ny, nz] = dims;
    let [bx, by, bz] = dims.map(|d| d.div_ceil(BLOCK));
    let mut pure = vec![true; bx * by * bz];
    let block = |x: usize, y: usize, z: usize| ((z / BLOCK) * by + y / BLOCK) * bx + x / BLOCK;
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let i = (z * ny + y) * nx + x;
                let first = ((z / BLOCK * BLOCK) * ny + y / BLOCK * BLOCK) * nx + x / BLOCK * BLOCK;
                if classes[i] != classes[first] {
                    pure[block(x, y, z)] = false;
                }
            }
        }
    }
    // A block the grid cuts is not a whole block.
    for z in 0..bz {
        for y in 0..by {
            for x in 0..bx {
                if (x + 1) * BLOCK > nx || (y + 1) * BLOCK > ny || (z + 1) * BLOCK > nz {
                    pure[(z * by + y) * bx + x] = false;
                }
            }
        }
    }
    let mut out = vec![2; classes.len()];
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let i = (z * ny + y) * nx + x;
                let c = classes[i];
                let differs = (x > 0 && classes[i - 1] != c)
                    || (x + 1 < nx && classes[i + 1] != c)
                    || (y > 0 && classes[i - nx] != c)
                    || (y + 1 < ny && classes[i + nx] != c)
                    || (z > 0 && classes[i - nx * ny] != c)
                    || (z + 1 < nz && classes[i + nx * ny] != c);
                out[i] = if pure[block(x, y, z)] {
                    0
                } else if !differs {
                    1
                } else {
                    2
                };
            }
        }
    }
    out
}

/// Index into a window of half-widths [`HALF`] of lag `d`.
fn index(kd: [usize; 3], d: [isize; 3]) -> usize {
    let i = |a: usize| (d[a] + HALF[a] as isize) as usize;
    (i(2) * kd[1] + i(1)) * kd[0] + i(0)
}

/// `QUANTILES` quantiles of a histogram (`value(b)`: bin b's centre); empty when it is.
fn quantiles_of(h: &[u64], value: impl Fn(usize) -> f64) -> Vec<f32> {
    let total: u64 = h.iter().sum();
    if total == 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(QUANTILES);
    let mut cum = 0u64;
    let mut b = 0usize;
    for i in 0..QUANTILES {
        let target = (i as f64 + 0.5) / QUANTILES as f64 * total as f64;
        while b < h.len() - 1 && (cum + h[b]) as f64 <= target {
            cum += h[b];
            b += 1;
        }
        out.push(value(b) as f32);
    }
    out
}

/// A zero-phase kernel whose autocorrelation is `r` (lags over the [`HALF`] window,
/// symmetrised, taken as zero beyond it): the square root of its power spectrum on the
/// [`DFT`] grid, transformed back and cut to the window, with unit sum of squares.
fn kernel_from_autocorrelation(r: &[f64]) -> Vec<f32> {
    use std::f64::consts::TAU;
    let kd = kernel_dims();
    let lags: Vec<([isize; 3], f64)> = (0..r.len())
        .map(|j| {
            let d = [
                (j % kd[0]) as isize - HALF[0] as isize,
                ((j / kd[0]) % kd[1]) as isize - HALF[1] as isize,
                (j / (kd[0] * kd[1])) as isize - HALF[2] as isize,
            ];
            let sym = 0.5 * (r[j] + r[index(kd, d.map(|v| -v))]);
            (d, sym)
        })
        .collect();
    let phase = |f: [usize; 3], d: [isize; 3]| {
        (0..3)
            .map(|a| f[a] as f64 * d[a] as f64 / DFT[a] as f64)
            .sum::<f64>()
            * TAU
    };
    let freqs: Vec<[usize; 3]> = (0..DFT[2])
        .flat_map(|z| (0..DFT[1]).flat_map(move |y| (0..DFT[0]).map(move |x| [x, y, z])))
        .collect();
    let amp: Vec<f64> = freqs
        .iter()
        .map(|&f| {
            let s: f64 = lags.iter().map(|&(d, v)| v * phase(f, d).cos()).sum();
            s.max(0.0).sqrt()
        })
        .collect();
    let mut k: Vec<f64> = lags
        .iter()
        .map(|&(d, _)| {
            freqs
                .iter()
                .zip(&amp)
                .map(|(&f, &a)| a * phase(f, d).cos())
                .sum::<f64>()
        })
        .collect();
    let norm = k.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
    k.iter_mut().for_each(|v| *v /= norm);
    k.into_iter().map(|v| v as f32).collect()
}

impl ResidualTexture {
    /// Checks the statistics fit a model with `channels` channels and `classes` classes.
    pub fn check(&self, channels: usize, classes: usize) -> Result<(), LdmError> {
        let nk: usize = kernel_dims().iter().product();
        if self.quantiles.len() != channels
            || self.kernels.len() != channels
            || self.quantiles.iter().any(|q| q.len() != classes)
            || self.kernels.iter().any(|k| k.len() != nk)
            || self
                .quantiles
                .iter()
                .flatten()
                .any(|q| !(q.is_empty() || q.len() == QUANTILES))
            || !(self.focal_voxels.is_empty() || self.focal_voxels.len() == classes)
        {
            return Err(LdmError::Config(format!(
                "texture statistics do not fit {channels} channels, {classes} classes and a {nk}-voxel kernel"
            )));
        }
        Ok(())
    }

    /// Adds stochastic detail to `object` (physical, channel-major on `dims`, each a
    /// multiple of 4 and aligned with the latent grid) drawn for `seed`.
    pub fn apply(&self, object: &mut [f32], classes: &[u8], dims: [usize; 3], seed: u64) {
        let n = classes.len();
        for (ch, kernel) in self.kernels.iter().enumerate() {
            // The normal field becomes the detail in place: besides the object, the peak is
            // the widened white noise and this one field (8 B per voxel).
            let mut e = correlated_noise(kernel, dims, seed ^ (0x5445_5854 + ch as u64));
            let q = &self.quantiles[ch];
            for (v, &c) in e.iter_mut().zip(classes) {
                *v = match q.get(usize::from(c)) {
                    Some(t) if !t.is_empty() => from_quantiles(t, phi(f64::from(*v))),
                    _ => 0.0,
                };
            }
            remove_block_means(&mut e, dims);
            for (o, v) in object[ch * n..(ch + 1) * n].iter_mut().zip(&e) {
                *o += v;
            }
        }
    }
}

/// The value at probability `u` of a distribution given by [`QUANTILES`] quantiles
/// (linear between them, clamped beyond the outermost).
fn from_quantiles(q: &[f32], u: f64) -> f32 {
    let t = u * q.len() as f64 - 0.5;
    if t <= 0.0 {
        return q[0];
    }
    let i = (t.floor() as usize).min(q.len() - 1);
    if i + 1 >= q.len() {
        return q[q.len() - 1];
    }
    let f = (t - i as f64) as f32;
    q[i] + f * (q[i + 1] - q[i])
}

/// White noise on `dims` convolved with `kernel` (unit variance when the kernel has unit sum
/// of squares), drawn on a grid widened by the kernel's half-widths so the edges are as
/// correlated as the middle.
fn correlated_noise(kernel: &[f32], dims: [usize; 3], seed: u64) -> Vec<f32> {
    use rayon::prelude::*;
    let kd = kernel_dims();
    let ext = [0, 1, 2].map(|a| dims[a] + 2 * HALF[a]);
    let w = normal_noise(seed, ext.iter().product());
    let taps: Vec<(usize, f32)> = kernel
        .iter()
        .enumerate()
        .filter(|(_, &k)| k.abs() > 1e-6)
        .map(|(j, &k)| {
            let (x, y, z) = (j % kd[0], (j / kd[0]) % kd[1], j / (kd[0] * kd[1]));
            ((z * ext[1] + y) * ext[0] + x, k)
        })
        .collect();
    let [nx, ny, _] = dims;
    let mut out = vec![0f32; dims.iter().product()];
    out.par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(z, slice)| {
            for y in 0..ny {
                let base = (z * ext[1] + y) * ext[0];
                let row = &mut slice[y * nx..(y + 1) * nx];
                for &(off, k) in &taps {
                    let src = &w[base + off..base + off + nx];
                    for (o, s) in row.iter_mut().zip(src) {
                        *o += k * s;
                    }
                }
            }
        });
    out
}

/// Subtracts from every voxel the mean of its 4×4×4 block (dims multiples of 4).
fn remove_block_means(e: &mut [f32], dims: [usize; 3]) {
    let [nx, ny, nz] = dims;
    let [bx, by, bz] = dims.map(|d| d / BLOCK);
    let mut sum = vec![0f64; bx * by * bz];
    let cell = |x: usize, y: usize, z: usize| ((z / BLOCK) * by + y / BLOCK) * bx + x / BLOCK;
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                sum[cell(x, y, z)] += f64::from(e[(z * ny + y) * nx + x]);
            }
        }
    }
    let w = 1.0 / (BLOCK * BLOCK * BLOCK) as f64;
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                e[(z * ny + y) * nx + x] -= (sum[cell(x, y, z)] * w) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gaussian noise with a known correlation (white noise smoothed along x by [1, 1]/√2:
    /// neighbour correlation ½ along x, 0 along y and z) and per-class marginals (class 1
    /// sd 10, class 2 a skewed mix): the fit recovers the correlation and the marginals, and
    /// the field drawn from the fit has them back.
    #[test]
    fn fitted_statistics_reproduce_a_known_field() {
        let dims = [48, 48, 24];
        let n: usize = dims.iter().product();
        let w = normal_noise(1, n + 1);
        let g: Vec<f32> = (0..n)
            .map(|i| (w[i] + w[i + 1]) / std::f32::consts::SQRT_2)
            .collect();
        let classes: Vec<u8> = (0..n)
            .map(|i| 1 + ((i / (dims[0] * 12)) % 2) as u8)
            .collect();
        // Class 2: exp of the score, so the marginal is lognormal-shaped (heavy right tail).
        let res: Vec<f32> = g
            .iter()
            .zip(&classes)
            .map(|(&v, &c)| if c == 1 { 10.0 * v } else { 20.0 * v.exp() })
            .collect();
        let mut fit = TextureFit::new(&[1000.0], 3);
        fit.add_marginals(&res, &classes, dims);
        fit.add_correlation(&res, &classes, dims);
        let t = fit.finish();
        let [cx, cy, cz] = t.neighbour_correlation[0];
        assert!((cx - 0.5).abs() < 0.03, "x correlation {cx}");
        assert!(cy.abs() < 0.03 && cz.abs() < 0.03, "y {cy}, z {cz}");
        assert!(t.quantiles[0][0].is_empty(), "class 0 had no voxel");
        // Median of class 1 ≈ 0, of class 2 ≈ 20·e⁰ = 20 (within a histogram bin or two).
        assert!(t.quantiles[0][1][QUANTILES / 2].abs() < 1.5);
        assert!((t.quantiles[0][2][QUANTILES / 2] - 20.0).abs() < 1.5);

        let mut drawn = vec![0f32; n];
        t.apply(&mut drawn, &classes, dims, 7);
        let (mut s1, mut k1, mut above) = (0.0f64, 0.0f64, 0usize);
        let (mut k2, mut cxx) = (0usize, 0.0f64);
        for (i, (&v, &c)) in drawn.iter().zip(&classes).enumerate() {
            if c == 1 {
                s1 += f64::from(v * v);
                k1 += 1.0;
            } else {
                k2 += 1;
                // 20·e¹ ≈ 54.4 is exceeded by 15.9 % of the marginal (score > 1); the block
                // means removed are the marginal's mean, 20·e^½ ≈ 33.0, give or take.
                above += usize::from(v > 54.37 - 32.97);
            }
            if (i + 1) % dims[0] != 0 && classes[i + 1] == c && c == 1 {
                cxx += f64::from(v * drawn[i + 1]);
            }
        }
        let sd1 = (s1 / k1).sqrt();
        // Block-mean removal takes (1/64)·Σ correlations of the variance: sd ≈ 10·√(1 − 2/64·…).
        assert!((sd1 - 10.0).abs() < 1.0, "class 1 sd {sd1}");
        let r = cxx / s1;
        assert!((r - 0.5).abs() < 0.1, "drawn x correlation {r}");
        let frac = above as f64 / k2 as f64;
        assert!((frac - 0.159).abs() < 0.04, "class 2 tail {frac}");
    }

    /// A focal finding's voxels (NaN residuals, `crate::focal`) are left out: a class whose
    /// residual holds a 100-voxel 800 HU cluster keeps that tail in its quantiles, the same
    /// class with those voxels marked does not, and its correlation stays finite.
    #[test]
    fn focal_voxels_are_left_out_of_the_marginal_and_the_correlation() {
        let dims = [32, 32, 16];
        let n: usize = dims.iter().product();
        let classes = vec![1u8; n];
        let noise = normal_noise(5, n);
        let fit = |res: &[f32]| {
            let mut f = TextureFit::new(&[1000.0], 2);
            f.add_marginals(res, &classes, dims);
            f.add_correlation(res, &classes, dims);
            f.finish()
        };
        let stone: Vec<f32> = noise
            .iter()
            .enumerate()
            .map(|(i, &v)| if i < 100 { 800.0 } else { 10.0 * v })
            .collect();
        let left_out: Vec<f32> = stone
            .iter()
            .map(|&v| if v > 500.0 { f32::NAN } else { v })
            .collect();
        let (with, without) = (fit(&stone), fit(&left_out));
        assert!(with.quantiles[0][1][QUANTILES - 1] > 700.0);
        assert!(without.quantiles[0][1][QUANTILES - 1] < 60.0);
        assert_eq!(without.voxels, n as u64 - 100);
        assert!(without.kernels[0].iter().all(|k| k.is_finite()));
        // Focal counts, where present, name every class.
        let counted = ResidualTexture {
            focal_voxels: vec![0, 100],
            ..without.clone()
        };
        counted.check(1, 2).unwrap();
        let short = ResidualTexture {
            focal_voxels: vec![100],
            ..without
        };
        assert!(short.check(1, 2).is_err());
    }

    #[test]
    fn every_block_keeps_its_mean() {
        let dims = [8, 8, 8];
        let mut e: Vec<f32> = normal_noise(3, 512).into_iter().map(|v| v + 5.0).collect();
        remove_block_means(&mut e, dims);
        for b in 0..8 {
            let (bx, by, bz) = (b % 2 * 4, b / 2 % 2 * 4, b / 4 * 4);
            let mut s = 0.0;
            for z in bz..bz + 4 {
                for y in by..by + 4 {
                    for x in bx..bx + 4 {
                        s += e[(z * 8 + y) * 8 + x];
                    }
                }
            }
            assert!(s.abs() < 1e-3, "block {b} sums to {s}");
        }
    }

    #[test]
    fn the_kernel_of_white_noise_is_a_single_tap() {
        let nk: usize = kernel_dims().iter().product();
        let mut r = vec![0.0; nk];
        r[index(kernel_dims(), [0, 0, 0])] = 1.0;
        let k = kernel_from_autocorrelation(&r);
        let centre = k[index(kernel_dims(), [0, 0, 0])];
        assert!((centre - 1.0).abs() < 1e-5, "centre tap {centre}");
    }
}
