//! Calibration of how much a sample's 4×4×4 block means vary inside each class.
//!
//! The autoencoder's shortcut channel carries each block's mean, and the denoiser generates
//! it. On the real `ct-abdomen` scan that channel spans lung, bone and gas blocks while a
//! liver's block means vary by a few HU — below the denoiser's error — so sampled livers
//! varied twice as much from block to block as the real one (11.6 HU against 5.6). Measured
//! per class on the training cases (real blocks against the model's own samples of the same
//! label maps), a factor per class scales each sampled block's deviation from what its
//! classes' means predict; everything inside a block moves together, so the decoder's
//! sub-block structure and the stochastic detail ([`crate::texture`]) stay as they were.
//!
//! A block's deviation is `d = b − μ`, with `b` its mean and `μ` the mean, over its voxels,
//! of each voxel's class mean in the same volume — so the subject's own class means (its
//! enhancement, its liver's density) are left alone, and blocks at organ borders are judged
//! against the blend of their classes. Factors are measured on blocks lying wholly in one
//! class; a mixed block is scaled by the mean of its voxels' factors.

use serde::{Deserialize, Serialize};

use crate::LdmError;

/// Block edge of the autoencoder's shortcut (its spatial compression).
const BLOCK: usize = 4;
/// Fewer single-class blocks than this in the training cases: the class keeps factor 1.
pub const MIN_BLOCKS: u64 = 10;
/// Factors are kept within this range (a handful of blocks cannot justify more).
const FACTOR_RANGE: (f64, f64) = (0.25, 2.0);

/// Per class and channel, the factor sampled block deviations are scaled by (stored in
/// `config.json`; absent for models without it, which sample as they are).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockSpread {
    /// `[channel][class]`.
    pub factors: Vec<Vec<f32>>,
    /// `[class]`: the single-class blocks the factor was measured on.
    pub blocks: Vec<u64>,
    /// Training cases the model sampled for it (0: not recorded, a config from before it was).
    #[serde(default)]
    pub cases: usize,
    /// Sampling steps and label guidance of the samples it was measured on: other settings
    /// give somewhat other spreads.
    pub steps: usize,
    pub guidance_labels: f32,
}

/// Each block's deviation from its classes' means, per channel (`[channel][block]`), and the
/// class of each block lying wholly in one class (`None` for mixed blocks). Only whole
/// blocks count: a grid not a multiple of 4 drops its last partial blocks.
fn deviations(
    object: &[f32],
    classes: &[u8],
    dims: [usize; 3],
    k: usize,
) -> (Vec<Vec<f64>>, Vec<Option<u8>>) {
    let n = classes.len();
    let channels = object.len() / n;
    let [bx, by, bz] = dims.map(|d| d / BLOCK);
    let nb = bx * by * bz;
    let mut pure: Vec<Option<u8>> = vec![None; nb];
    let mut first = vec![true; nb];
    let mut mixed = vec![false; nb];
    let mut out = Vec::with_capacity(channels);
    for ch in 0..channels {
        let v = &object[ch * n..(ch + 1) * n];
        let (mut sum, mut cnt) = (vec![0f64; k], vec![0u64; k]);
        for (&x, &c) in v.iter().zip(classes) {
            sum[c as usize] += f64::from(x);
            cnt[c as usize] += 1;
        }
        let mean: Vec<f64> = sum
            .iter()
            .zip(&cnt)
            .map(|(s, &c)| if c > 0 { s / c as f64 } else { 0.0 })
            .collect();
        let mut d = vec![0f64; nb];
        for z in 0..bz * BLOCK {
            for y in 0..by * BLOCK {
                let row = (z * dims[1] + y) * dims[0];
                let brow = ((z / BLOCK) * by + y / BLOCK) * bx;
                for x in 0..bx * BLOCK {
                    let c = classes[row + x];
                    let b = brow + x / BLOCK;
                    d[b] += f64::from(v[row + x]) - mean[c as usize];
                    if ch == 0 {
                        if first[b] {
                            pure[b] = Some(c);
                            first[b] = false;
                        } else if pure[b] != Some(c) {
                            mixed[b] = true;
                        }
                    }
                }
            }
        }
        let w = 1.0 / (BLOCK * BLOCK * BLOCK) as f64;
        d.iter_mut().for_each(|x| *x *= w);
        out.push(d);
    }
    for (p, m) in pure.iter_mut().zip(&mixed) {
        if *m {
            *p = None;
        }
    }
    (out, pure)
}

/// Accumulates [`BlockSpread`] over training cases, one pair (real case, the model's sample
/// of its label map) at a time; memory: a few numbers per class.
pub struct SpreadFit {
    classes: usize,
    /// `[channel][class]` sums of squared deviations.
    real: Vec<Vec<f64>>,
    sampled: Vec<Vec<f64>>,
    blocks: Vec<u64>,
    cases: usize,
}

impl SpreadFit {
    pub fn new(channels: usize, classes: usize) -> Self {
        Self {
            classes,
            real: vec![vec![0.0; classes]; channels],
            sampled: vec![vec![0.0; classes]; channels],
            blocks: vec![0; classes],
            cases: 0,
        }
    }

    /// One case: its real object and a sample on its label map, channel-major on `dims`.
    pub fn add(&mut self, real: &[f32], sampled: &[f32], classes: &[u8], dims: [usize; 3]) {
        let (dr, pure) = deviations(real, classes, dims, self.classes);
        let (ds, _) = deviations(sampled, classes, dims, self.classes);
        self.cases += 1;
        for (b, p) in pure.iter().enumerate() {
            let Some(c) = p.map(usize::from) else {
                continue;
            };
            self.blocks[c] += 1;
            for ch in 0..dr.len() {
                self.real[ch][c] += dr[ch][b] * dr[ch][b];
                self.sampled[ch][c] += ds[ch][b] * ds[ch][b];
            }
        }
    }

    pub fn finish(self, steps: usize, guidance_labels: f32) -> BlockSpread {
        let factors = self
            .real
            .iter()
            .zip(&self.sampled)
            .map(|(r, s)| {
                (0..self.classes)
                    .map(|c| {
                        if self.blocks[c] < MIN_BLOCKS || s[c] <= 0.0 {
                            1.0
                        } else {
                            (r[c] / s[c]).sqrt().clamp(FACTOR_RANGE.0, FACTOR_RANGE.1) as f32
                        }
                    })
                    .collect()
            })
            .collect();
        BlockSpread {
            factors,
            blocks: self.blocks,
            cases: self.cases,
            steps,
            guidance_labels,
        }
    }
}

impl BlockSpread {
    /// Checks the factors fit a model with `channels` channels and `classes` classes.
    pub fn check(&self, channels: usize, classes: usize) -> Result<(), LdmError> {
        if self.factors.len() != channels
            || self.blocks.len() != classes
            || self
                .factors
                .iter()
                .any(|f| f.len() != classes || f.iter().any(|v| !(v.is_finite() && *v > 0.0)))
        {
            return Err(LdmError::Config(format!(
                "block spread factors do not fit {channels} channels and {classes} classes"
            )));
        }
        Ok(())
    }

    /// Scales every block's deviation of `object` (physical, channel-major on `dims`, each
    /// a multiple of 4 and aligned with the latent grid) by its voxels' mean factor.
    pub fn apply(&self, object: &mut [f32], classes: &[u8], dims: [usize; 3]) {
        let n = classes.len();
        let k = self.blocks.len();
        let (dev, _) = deviations(object, classes, dims, k);
        let [bx, by, bz] = dims.map(|d| d / BLOCK);
        let w = 1.0 / (BLOCK * BLOCK * BLOCK) as f32;
        for (ch, f) in self.factors.iter().enumerate() {
            let mut scale = vec![0f32; bx * by * bz];
            for z in 0..bz * BLOCK {
                for y in 0..by * BLOCK {
                    let row = (z * dims[1] + y) * dims[0];
                    let brow = ((z / BLOCK) * by + y / BLOCK) * bx;
                    for x in 0..bx * BLOCK {
                        scale[brow + x / BLOCK] += w * f[classes[row + x] as usize];
                    }
                }
            }
            let v = &mut object[ch * n..(ch + 1) * n];
            for z in 0..bz * BLOCK {
                for y in 0..by * BLOCK {
                    let row = (z * dims[1] + y) * dims[0];
                    let brow = ((z / BLOCK) * by + y / BLOCK) * bx;
                    for x in 0..bx * BLOCK {
                        let b = brow + x / BLOCK;
                        v[row + x] += (scale[b] - 1.0) * dev[ch][b] as f32;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::normal_noise;

    const DIMS: [usize; 3] = [32, 32, 32];

    /// Class 1 in x < 16, class 2 elsewhere; each class has its own mean, every block a
    /// deviation of SD `sd[class]` and a fixed sub-block pattern around it.
    fn field(sd: [f32; 3], seed: u64) -> (Vec<f32>, Vec<u8>) {
        let [nx, ny, nz] = DIMS;
        let blocks = normal_noise(seed, (nx / 4) * (ny / 4) * (nz / 4));
        let mut v = vec![0f32; nx * ny * nz];
        let mut c = vec![0u8; nx * ny * nz];
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let i = (z * ny + y) * nx + x;
                    let class = if x < 16 { 1 } else { 2 };
                    let b = ((z / 4) * (ny / 4) + y / 4) * (nx / 4) + x / 4;
                    let pattern = if (x + y + z) % 2 == 0 { 3.0 } else { -3.0 };
                    c[i] = class;
                    v[i] = [0.0, 40.0, -100.0][class as usize]
                        + sd[class as usize] * blocks[b]
                        + pattern;
                }
            }
        }
        (v, c)
    }

    fn block_sd(v: &[f32], c: &[u8], class: u8) -> f64 {
        let (d, pure) = deviations(v, c, DIMS, 3);
        let x: Vec<f64> = pure
            .iter()
            .zip(&d[0])
            .filter(|(p, _)| **p == Some(class))
            .map(|(_, d)| *d)
            .collect();
        (x.iter().map(|d| d * d).sum::<f64>() / x.len() as f64).sqrt()
    }

    /// Samples whose blocks vary 2× (class 1) and 0.5× (class 2) as much as the real ones:
    /// the fit finds 0.5 and 2 (within the sampling error of 256 blocks per class and case),
    /// and applied to a fresh sample it brings the block spreads to the real ones while
    /// every voxel keeps its offset from its block mean.
    #[test]
    fn fitted_factors_restore_the_real_block_spread() {
        let mut fit = SpreadFit::new(1, 3);
        for seed in 0..4 {
            let (real, c) = field([0.0, 5.0, 8.0], 100 + seed);
            let (sampled, _) = field([0.0, 10.0, 4.0], 200 + seed);
            fit.add(&real, &sampled, &c, DIMS);
        }
        let s = fit.finish(30, 0.5);
        assert_eq!((s.blocks.clone(), s.cases), (vec![0, 1024, 1024], 4));
        assert_eq!(s.factors[0][0], 1.0, "a class without blocks keeps 1");
        assert!((s.factors[0][1] - 0.5).abs() < 0.05, "{:?}", s.factors);
        assert!((s.factors[0][2] - 2.0).abs() < 0.2, "{:?}", s.factors);
        s.check(1, 3).unwrap();
        assert!(s.check(1, 4).is_err() && s.check(2, 3).is_err());

        let (mut v, c) = field([0.0, 10.0, 4.0], 999);
        let before = v.clone();
        s.apply(&mut v, &c, DIMS);
        for class in [1, 2] {
            let sd = block_sd(&v, &c, class);
            assert!(
                (sd - [0.0, 5.0, 8.0][class as usize]).abs() < 1.0,
                "{class}: {sd}"
            );
        }
        // Within each block the pattern is unchanged: every voxel moved by its block's shift.
        for b in 0..8 {
            let i = b * 4;
            let j = i + 1;
            let moved = |i: usize| v[i] - before[i];
            assert!((moved(i) - moved(j)).abs() < 1e-4);
        }
    }

    #[test]
    fn unit_factors_change_nothing_and_mixed_blocks_are_not_measured() {
        let (mut v, c) = field([0.0, 10.0, 4.0], 7);
        let before = v.clone();
        let s = BlockSpread {
            factors: vec![vec![1.0; 3]],
            blocks: vec![0; 3],
            cases: 1,
            steps: 1,
            guidance_labels: 1.0,
        };
        s.apply(&mut v, &c, DIMS);
        assert!(v.iter().zip(&before).all(|(a, b)| (a - b).abs() < 1e-4));
        // Shift the class border to x < 14: the blocks at x = 12..15 hold both classes.
        let c2: Vec<u8> = c
            .iter()
            .enumerate()
            .map(|(i, &k)| if i % 32 >= 14 { 2 } else { k })
            .collect();
        let (_, pure) = deviations(&v, &c2, DIMS, 3);
        assert_eq!(pure.iter().filter(|p| p.is_none()).count(), 8 * 8);
    }
}
