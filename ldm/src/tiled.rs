//! Decoding an object of any size in bounded memory.
//!
//! The decoder's full-resolution end holds, per voxel, one output map per class and
//! channel (the per-class head, `classes × channels` floats) beside a few feature maps: at
//! 256×256×160 with the 45 classes of `ct-abdomen` that head alone is 1.9 GB, at
//! 512×512×300 about 14 GB. The latent and half-resolution levels are 8× and 64× smaller
//! and run whole; the full-resolution layers run in z-slabs with a halo of 4 voxels (one
//! per 3×3×3 convolution there: `up0`, the residual block's two, the head), so every kept
//! voxel sees what it would see in the whole volume.
//!
//! What a slab cannot see is the whole volume's GroupNorm statistics, and per-slab
//! statistics would change the output slab by slab (seams). So the three full-resolution
//! norms get the whole volume's statistics in passes: pass 1 runs every slab up to the first
//! norm and sums its input per group, pass 2 up to the second with the first's statistics
//! fixed, pass 3 up to the third, and pass 4 makes the output. The statistics passes carry no
//! per-class head, so their slabs are larger; each convolution's output is trimmed to the rows
//! it got right, so the halo is computed once per layer, not four times. Earlier layers are
//! still recomputed per pass: on 2 cores a 256×256×160 `ct-abdomen` object decodes in about
//! twice the whole-volume time, for a working set of one slab. An object whose head fits the
//! budget is decoded whole. The result equals the whole-volume decoder up to float rounding
//! (tested).

use burn::nn::GroupNorm;
use burn::tensor::activation::silu;
use burn::tensor::{backend::Backend, Int, Tensor, TensorData};

use crate::autoencoder::{avg_pool4, Autoencoder};
use crate::blocks::upsample_nearest2;
use crate::LdmError;

/// Full-resolution 3×3×3 convolutions between the half-resolution features and the
/// output: each spoils one voxel at a slab's cut edge.
const HALO: usize = 4;

/// Bytes of the per-class head's output one slab may hold (with its halo).
pub const SLAB_BUDGET_BYTES: usize = 256 << 20;

/// Running per-group sums of one GroupNorm's input over slabs (f64: a 10⁸-voxel volume's
/// sum of squares loses nothing).
struct GroupSums {
    sum: Vec<f64>,
    sum2: Vec<f64>,
    count: f64,
}

impl GroupSums {
    fn new(groups: usize) -> Self {
        Self {
            sum: vec![0.0; groups],
            sum2: vec![0.0; groups],
            count: 0.0,
        }
    }

    fn add<B: Backend>(&mut self, x: Tensor<B, 5>) -> Result<(), LdmError> {
        let [_, c, d, h, w] = x.dims();
        let g = self.sum.len();
        let v = x
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| LdmError::Input(format!("{e:?}")))?;
        // Channel-major, so each group is a contiguous run of c/g channels.
        let per_group = c / g * d * h * w;
        for (k, chunk) in v.chunks(per_group).enumerate() {
            let (mut s, mut s2) = (0f64, 0f64);
            for &x in chunk {
                let x = f64::from(x);
                s += x;
                s2 += x * x;
            }
            self.sum[k] += s;
            self.sum2[k] += s2;
        }
        self.count += per_group as f64;
        Ok(())
    }

    /// The norm as a per-channel affine map `x·a + b` with these statistics.
    fn affine<B: Backend>(
        &self,
        norm: &GroupNorm<B>,
    ) -> Result<(Tensor<B, 5>, Tensor<B, 5>), LdmError> {
        let c = norm.num_channels;
        let per = c / norm.num_groups;
        let val = |p: &Option<burn::module::Param<Tensor<B, 1>>>, default: f32| match p {
            Some(t) => t
                .val()
                .into_data()
                .to_vec::<f32>()
                .map_err(|e| LdmError::Input(format!("{e:?}"))),
            None => Ok(vec![default; c]),
        };
        let (gamma, beta) = (val(&norm.gamma, 1.0)?, val(&norm.beta, 0.0)?);
        let (mut a, mut b) = (vec![0f32; c], vec![0f32; c]);
        for ch in 0..c {
            let g = ch / per;
            let mean = self.sum[g] / self.count;
            let var = (self.sum2[g] / self.count - mean * mean).max(0.0);
            let inv = 1.0 / (var + norm.epsilon).sqrt();
            a[ch] = (f64::from(gamma[ch]) * inv) as f32;
            b[ch] = (f64::from(beta[ch]) - mean * f64::from(gamma[ch]) * inv) as f32;
        }
        let device = norm
            .gamma
            .as_ref()
            .map(|g| g.val().device())
            .unwrap_or_default();
        let t = |v: Vec<f32>| {
            Tensor::<B, 1>::from_data(TensorData::new(v, [c]), &device).reshape([1, c, 1, 1, 1])
        };
        Ok((t(a), t(b)))
    }
}

fn apply<B: Backend>(x: Tensor<B, 5>, ab: &(Tensor<B, 5>, Tensor<B, 5>)) -> Tensor<B, 5> {
    x * ab.0.clone() + ab.1.clone()
}

/// How far through the full-resolution layers a pass runs.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Upto {
    Norm1,
    Norm2,
    NormOut,
    Output,
}

impl<B: Backend> Autoencoder<B> {
    /// [`Autoencoder::decode_slabs`] with [`SLAB_BUDGET_BYTES`].
    pub fn decode_bounded(
        &self,
        z: Tensor<B, 5>,
        labels: &[u8],
        dims: [usize; 3],
    ) -> Result<Vec<f32>, LdmError> {
        self.decode_slabs(z, labels, dims, SLAB_BUDGET_BYTES)
    }

    /// [`Autoencoder::decode`] of one object (batch 1) in z-slabs: the same values (up to
    /// float rounding) in a working set of about one slab of the per-class head
    /// ([`SLAB_BUDGET_BYTES`]) beside the latent- and half-resolution features. `labels`:
    /// class indices on the grid `dims` (x fastest; each a multiple of 4). Returns network
    /// units, channel-major.
    pub fn decode_slabs(
        &self,
        z: Tensor<B, 5>,
        labels: &[u8],
        dims: [usize; 3],
        budget_bytes: usize,
    ) -> Result<Vec<f32>, LdmError> {
        let [nx, ny, nz] = dims;
        if z.dims()[0] != 1 || labels.len() != nx * ny * nz || dims.iter().any(|d| d % 4 != 0) {
            return Err(LdmError::Input(format!(
                "slab decoding takes one latent and a label map on a grid of multiples of 4, not {:?} and {} labels on {dims:?}",
                z.dims(),
                labels.len()
            )));
        }
        let device = z.device();
        let c = self.res_scale.dims()[0];
        let k = self.dec_out.weight.dims()[0];
        // The latent and half-resolution levels, whole.
        let h = self.dec2.forward(self.dec_in.forward(z.clone()), None);
        let h = match &self.dec_attn {
            Some(a) => a.forward(h),
            None => h,
        };
        let half = self.dec1.forward(self.up1.forward(h), None);

        let plane = nx * ny;
        // The head of a slab and its two rows of halo in the budget; a whole object that fits
        // is decoded at once (the passes would only recompute it).
        let head_rows = budget_bytes / (k * plane * 4);
        if head_rows >= nz {
            let l: Vec<i64> = labels.iter().map(|&v| i64::from(v)).collect();
            let l = Tensor::<B, 4, Int>::from_data(TensorData::new(l, [1, nz, ny, nx]), &device);
            return self
                .decode(z, l)
                .into_data()
                .to_vec::<f32>()
                .map_err(|e| LdmError::Input(format!("{e:?}")));
        }
        let slabs_of = |rows: usize| -> Vec<(usize, usize)> {
            let rows = (rows / 4 * 4).clamp(4, nz);
            (0..nz)
                .step_by(rows)
                .map(|z0| (z0, (z0 + rows).min(nz)))
                .collect()
        };
        let out_slabs = slabs_of(head_rows.saturating_sub(2));
        // The statistics passes hold no head: about two copies of the widest feature map a
        // voxel (the input of the first norm), so their slabs are larger.
        let trunk = 2 * 4 * (self.dec0.norm1.num_channels);
        let stat_slabs = slabs_of((budget_bytes / (trunk * plane)).saturating_sub(2 * HALO));

        let label_rows = |a: usize, b: usize| {
            let l: Vec<i64> = labels[a * plane..b * plane]
                .iter()
                .map(|&v| i64::from(v))
                .collect();
            Tensor::<B, 4, Int>::from_data(TensorData::new(l, [1, b - a, ny, nx]), &device)
        };
        // After a 3×3×3 convolution on rows [a, b), the row at a cut edge saw zero padding
        // instead of its neighbour: drop it (at the volume's own edges zero padding is right).
        let shrink = |t: Tensor<B, 5>, (a, b): (usize, usize)| {
            let a2 = if a > 0 { a + 1 } else { a };
            let b2 = if b < nz { b - 1 } else { b };
            (t.narrow(2, a2 - a, b2 - a2), (a2, b2))
        };
        // The full-resolution layers on slab [z0, z1) and its halo, kept rows only.
        let window = |z0: usize,
                      z1: usize,
                      upto: Upto,
                      n1: Option<&(Tensor<B, 5>, Tensor<B, 5>)>,
                      n2: Option<&(Tensor<B, 5>, Tensor<B, 5>)>,
                      n3: Option<&(Tensor<B, 5>, Tensor<B, 5>)>|
         -> Tensor<B, 5> {
            let w0 = (z0.saturating_sub(HALO), (z1 + HALO).min(nz));
            let keep = |t: Tensor<B, 5>, w: (usize, usize)| t.narrow(2, z0 - w.0, z1 - z0);
            let up = self
                .up0
                .forward(half.clone().narrow(2, w0.0 / 2, (w0.1 - w0.0) / 2));
            let (up, w1) = shrink(up, w0);
            let lab = label_rows(w1.0, w1.1);
            let emb = self
                .labels
                .forward(lab.reshape([1, (w1.1 - w1.0) * plane]))
                .swap_dims(1, 2)
                .reshape([1, self.label_dim, w1.1 - w1.0, ny, nx]);
            let x0 = Tensor::cat(vec![up, emb], 1);
            if upto == Upto::Norm1 {
                return keep(x0, w1);
            }
            let blk = &self.dec0;
            let a1 = blk
                .conv1
                .forward(silu(apply(x0.clone(), n1.expect("pass 2 has norm 1"))));
            let (a1, w2) = shrink(a1, w1);
            if upto == Upto::Norm2 {
                return keep(a1, w2);
            }
            let h = blk
                .conv2
                .forward(silu(apply(a1, n2.expect("pass 3 has norm 2"))));
            let (h, w3) = shrink(h, w2);
            let x0 = x0.narrow(2, w3.0 - w1.0, w3.1 - w3.0);
            let skip = match &blk.skip {
                Some(s) => s.forward(x0),
                None => x0,
            };
            let y = skip + h;
            if upto == Upto::NormOut {
                return keep(y, w3);
            }
            let head = self
                .dec_out
                .forward(silu(apply(y, n3.expect("pass 4 has norm 3"))));
            let (head, w4) = shrink(head, w3);
            keep(head, w4)
        };

        let mut stats = Vec::new();
        for (upto, norm) in [
            (Upto::Norm1, &self.dec0.norm1),
            (Upto::Norm2, &self.dec0.norm2),
            (Upto::NormOut, &self.dec_norm),
        ] {
            let mut sums = GroupSums::new(norm.num_groups);
            for &(z0, z1) in &stat_slabs {
                sums.add(window(z0, z1, upto, stats.first(), stats.get(1), None))?;
            }
            stats.push(sums.affine(norm)?);
        }

        let n = plane * nz;
        let mut out = vec![0f32; c * n];
        for &(z0, z1) in &out_slabs {
            let per_class = window(
                z0,
                z1,
                Upto::Output,
                stats.first(),
                stats.get(1),
                stats.get(2),
            );
            let m = (z1 - z0) * plane;
            let flat = label_rows(z0, z1).reshape([1, m]);
            let idx = flat
                .clone()
                .mul_scalar(c as i64)
                .reshape([1, 1, m])
                .expand([1, c, m])
                + Tensor::<B, 1, Int>::arange(0..c as i64, &device)
                    .reshape([1, c, 1])
                    .expand([1, c, m]);
            let detail =
                per_class
                    .reshape([1, k, m])
                    .gather(1, idx)
                    .reshape([1, c, z1 - z0, ny, nx]);
            // Slabs start and end on multiples of 4, so each slab's blocks are the volume's.
            let block_mean = upsample_nearest2(upsample_nearest2(avg_pool4(detail.clone())));
            let short = upsample_nearest2(upsample_nearest2(z.clone().narrow(1, 0, c).narrow(
                2,
                z0 / 4,
                (z1 - z0) / 4,
            )));
            let r = detail - block_mean + short;
            let mean =
                self.label_bias
                    .forward(flat)
                    .swap_dims(1, 2)
                    .reshape([1, c, z1 - z0, ny, nx]);
            let scale = self.res_scale.val().reshape([1, c, 1, 1, 1]);
            let v = (mean + r * scale)
                .into_data()
                .to_vec::<f32>()
                .map_err(|e| LdmError::Input(format!("{e:?}")))?;
            for ch in 0..c {
                out[ch * n + z0 * plane..ch * n + z1 * plane]
                    .copy_from_slice(&v[ch * m..(ch + 1) * m]);
            }
        }
        Ok(out)
    }
}

/// Whole-volume against slab decoding, for `benches/ldm.rs`.
pub mod bench {
    use super::*;
    use crate::{Cpu, Ldm, LdmConfig};

    /// An untrained (seeded) model's autoencoder, a random latent and a label map.
    pub struct DecodeBench {
        model: Ldm<Cpu>,
        z: Tensor<Cpu, 5>,
        labels: Vec<u8>,
        dims: [usize; 3],
    }

    impl DecodeBench {
        /// `dims`: the object grid, multiples of 16.
        pub fn new(cfg: &LdmConfig, dims: [usize; 3]) -> Result<Self, LdmError> {
            let dev = Default::default();
            let model = Ldm::<Cpu>::init_seeded(cfg, 1, &dev)?;
            let k = cfg.classes.len();
            let n = dims.iter().product::<usize>();
            // Slabs of classes along x, so every class has voxels in every slab.
            let labels = (0..n)
                .map(|i| ((i % dims[0]) * k / dims[0]) as u8)
                .collect();
            let zc = cfg.autoencoder.latent_channels;
            let z = crate::model::normal_tensor::<Cpu, 5>(
                [1, zc, dims[2] / 4, dims[1] / 4, dims[0] / 4],
                3,
                &dev,
            );
            Ok(Self {
                model,
                z,
                labels,
                dims,
            })
        }

        /// The whole-volume decoder; returns the first value.
        pub fn whole(&self) -> f32 {
            let [nx, ny, nz] = self.dims;
            let l: Vec<i64> = self.labels.iter().map(|&v| i64::from(v)).collect();
            let l = Tensor::<Cpu, 4, Int>::from_data(
                TensorData::new(l, [1, nz, ny, nx]),
                &Default::default(),
            );
            let out = self.model.autoencoder.decode(self.z.clone(), l);
            out.into_data().to_vec::<f32>().map(|v| v[0]).unwrap_or(0.0)
        }

        /// Slab decoding with the default budget; returns the first value.
        pub fn slabs(&self) -> f32 {
            self.model
                .autoencoder
                .decode_slabs(self.z.clone(), &self.labels, self.dims, SLAB_BUDGET_BYTES)
                .map(|v| v[0])
                .unwrap_or(0.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoencoder::AutoencoderConfig;
    use crate::blocks::conv3;
    use crate::Cpu;

    /// Slab decoding equals the whole-volume decoder, with slabs forced small enough that
    /// the volume is cut several times and the norms' statistics come from several slabs, and
    /// with random (not zero-initialised) heads and norm affines so that every path matters.
    #[test]
    fn slab_decoding_equals_the_whole_volume_decoder() {
        let dev = Default::default();
        let (classes, ch) = (5, 2);
        let mut ae = crate::model::init_with_seed(&dev, 1, || {
            AutoencoderConfig::new(ch, classes)
                .with_channels([8, 8, 16])
                .init::<Cpu>(&dev)
        })
        .with_residual_stats(
            &[0.1, -0.2, 0.5, 0.3, -0.7, 0.9, 0.0, 0.2, 1.0, -1.0],
            &[0.4, 2.0],
            classes,
            ch,
        );
        ae.dec_out = crate::model::init_with_seed(&dev, 2, || conv3(8, ch * classes).init(&dev));
        let rand1 = |n: usize, seed: u64, base: f32| {
            let v: Vec<f32> = crate::model::normal_noise(seed, n)
                .into_iter()
                .map(|x| base + 0.3 * x)
                .collect();
            burn::module::Param::from_tensor(Tensor::<Cpu, 1>::from_data(
                TensorData::new(v, [n]),
                &dev,
            ))
        };
        for (i, norm) in [&mut ae.dec0.norm1, &mut ae.dec0.norm2, &mut ae.dec_norm]
            .into_iter()
            .enumerate()
        {
            let c = norm.num_channels;
            norm.gamma = Some(rand1(c, 100 + i as u64, 1.0));
            norm.beta = Some(rand1(c, 200 + i as u64, 0.0));
        }
        let dims = [16, 12, 40];
        let n = dims.iter().product::<usize>();
        let labels: Vec<u8> = (0..n)
            .map(|i| ((i * 31 + i / 97) % 11 % classes) as u8)
            .collect();
        let z = crate::model::normal_tensor::<Cpu, 5>([1, 4, 10, 3, 4], 7, &dev);
        let lt = Tensor::<Cpu, 4, Int>::from_data(
            TensorData::new(
                labels.iter().map(|&v| i64::from(v)).collect::<Vec<_>>(),
                [1, 40, 12, 16],
            ),
            &dev,
        );
        let whole = ae
            .decode(z.clone(), lt)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        // The head in slabs of 12 rows (4 slabs), the statistics in slabs of 4 (10 slabs).
        let budget = classes * ch * 16 * 12 * 4 * (8 + 2 * HALO);
        let slabs = ae.decode_slabs(z, &labels, dims, budget).unwrap();
        assert_eq!(whole.len(), slabs.len());
        let spread = whole.iter().map(|v| v.abs()).fold(0f32, f32::max);
        assert!(spread > 0.5, "output nearly constant: test is vacuous");
        let err = whole
            .iter()
            .zip(&slabs)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(err < 1e-4, "slab decoding differs by up to {err}");
    }
}
