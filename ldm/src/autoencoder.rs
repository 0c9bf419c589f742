//! 3D KL autoencoder with 4× spatial compression (MAISI-style) that codes the object's
//! residual from its label-mean image, and whose decoder also sees the label map at full
//! resolution.
//!
//! Why the label-aware decoder: the latent grid is 4× coarser than the object, so organ
//! boundaries would otherwise have to be re-invented by the decoder from a 4 mm-ish code;
//! giving it the (always available) label map keeps boundaries where the labels put them
//! and leaves the latent to carry what labels cannot: texture, intensity shifts, disease.
//!
//! Why the residual: when the encoder saw the object itself, the label contrast (air to
//! bone, 1.6 in network units) dwarfed what the latent is for (a 40 HU steatosis shift is
//! 0.04), and a decoder that could already reproduce the label means from the labels never
//! learned to read the latent (the first shipped models: no texture, no text effect). The
//! encoder now sees `(x − μ[label]) / s` and the decoder returns `μ[label] + s·r̂`, with the
//! class means μ and the residual RMS `s` measured on the training data and frozen.
//!
//! Why the shortcut: even so, 200 steps on real-size thorax crops did not teach the decoder
//! to read a liver-wide 40 HU shift out of its latent. As in DC-AE's residual autoencoding
//! (Chen et al. 2024, non-parametric space-to-channel shortcuts), the first latent channels
//! carry the 4×-averaged residual itself and the decoder
//! adds it back, up-sampled, to its own (zero-initialised) output: the autoencoder starts
//! as a 4× average-pooling codec that already keeps every organ's shift, and training only
//! has to learn what that loses.
//!
//! Why the shortcut channels are exact block means and the decoder's own output is
//! block-mean free: with an L1 loss the decoder settles on the median, and a sparse change
//! (white-matter hyperintensities: a few voxels of 60 ms more T2 in a 4×4×4 block) has a
//! median of zero, so the trained decoder cancelled what the shortcut carried (the shipped
//! `mri-head` reconstructions kept +0.4 of a +4.0 ms white-matter shift). Now the first
//! latent channels are `avg_pool4(r)` and nothing else, and the decoder adds only detail
//! whose mean over every block is zero: each block of the reconstruction has exactly the
//! mean its latent says, whatever the weights, and what the denoiser generates there is
//! what the object shows.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv3d, Conv3dConfig};
use burn::nn::{Embedding, EmbeddingConfig, GroupNorm};
use burn::tensor::activation::silu;
use burn::tensor::{backend::Backend, Int, Tensor, TensorData};

use crate::blocks::{conv3, norm, upsample_nearest2, Down, ResBlock, SelfAttention, Up};

#[derive(Config, Debug)]
pub struct AutoencoderConfig {
    /// Object channels (1 for HU, 4 for PD/T1/T2/T2*).
    pub in_channels: usize,
    /// Label classes (index 0 = background/other).
    pub classes: usize,
    #[config(default = 4)]
    pub latent_channels: usize,
    /// Feature widths at full, 1/2 and 1/4 resolution.
    #[config(default = "[8, 16, 32]")]
    pub channels: [usize; 3],
    /// Width of the label embedding fed to the decoder's last level.
    #[config(default = 8)]
    pub label_dim: usize,
    /// Self-attention at the latent level (off by default: costly on CPU, little gain at
    /// 4× compression).
    #[config(default = false)]
    pub attention: bool,
}

impl AutoencoderConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> Autoencoder<B> {
        let [c0, c1, c2] = self.channels;
        let z = self.latent_channels;
        assert!(
            self.in_channels > 0 && z >= self.in_channels,
            "autoencoder: needs at least as many latent channels as object channels"
        );
        Autoencoder {
            enc_in: conv3(self.in_channels, c0).init(device),
            enc0: ResBlock::new(c0, c0, 0, device),
            down0: Down::new(c0, c1, device),
            enc1: ResBlock::new(c1, c1, 0, device),
            down1: Down::new(c1, c2, device),
            enc2: ResBlock::new(c2, c2, 0, device),
            enc_attn: self.attention.then(|| SelfAttention::new(c2, 2, device)),
            enc_norm: norm(c2, device),
            enc_out: enc_out_layer(c2, z, device),
            dec_in: conv3(z, c2).init(device),
            dec2: ResBlock::new(c2, c2, 0, device),
            dec_attn: self.attention.then(|| SelfAttention::new(c2, 2, device)),
            up1: Up::new(c2, c1, device),
            dec1: ResBlock::new(c1, c1, 0, device),
            up0: Up::new(c1, c0, device),
            labels: EmbeddingConfig::new(self.classes, self.label_dim).init(device),
            dec0: ResBlock::new(c0 + self.label_dim, c0, 0, device),
            dec_norm: norm(c0, device),
            dec_out: conv3(c0, self.in_channels * self.classes)
                .with_initializer(burn::nn::Initializer::Zeros)
                .init(device),
            label_bias: EmbeddingConfig::new(self.classes, self.in_channels)
                .with_initializer(burn::nn::Initializer::Zeros)
                .init(device),
            res_scale: Param::from_tensor(Tensor::ones([self.in_channels], device)),
            label_dim: self.label_dim,
        }
    }
}

/// Initial log-variance of the posterior. At 0 (σ = 1) the reparameterised noise drowns the
/// latent, and a decoder that also sees the labels settles on the per-label mean image and
/// never learns to read the latent (what the first shipped `ct-thorax` did: no texture, no
/// text effect). Starting at σ ≈ 0.02 lets information through from the first step; the KL
/// term then decides how much noise the latent tolerates.
pub const LOGVAR_INIT: f32 = -8.0;

fn enc_out_layer<B: Backend>(c_in: usize, z: usize, device: &B::Device) -> Conv3d<B> {
    let mut conv = Conv3dConfig::new([c_in, 2 * z], [1, 1, 1]).init(device);
    let bias: Vec<f32> = (0..2 * z)
        .map(|i| if i < z { 0.0 } else { LOGVAR_INIT })
        .collect();
    conv.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(bias, [2 * z]),
        device,
    )));
    conv
}

/// Mean over 4×4×4 blocks of `[b, c, d, h, w]` (each a multiple of 4), keeping every
/// intermediate at ≤ 5 dimensions.
pub fn avg_pool4<B: Backend>(x: Tensor<B, 5>) -> Tensor<B, 5> {
    let [b, c, d, h, w] = x.dims();
    let (d4, h4, w4) = (d / 4, h / 4, w / 4);
    x.reshape([b * c * d4, 4, h * w])
        .mean_dim(1)
        .reshape([b * c * d4 * h4, 4, w])
        .mean_dim(1)
        .reshape([b * c * d4 * h4 * w4, 4])
        .mean_dim(1)
        .reshape([b, c, d4, h4, w4])
}

#[derive(Module, Debug)]
pub struct Autoencoder<B: Backend> {
    enc_in: Conv3d<B>,
    enc0: ResBlock<B>,
    down0: Down<B>,
    enc1: ResBlock<B>,
    down1: Down<B>,
    enc2: ResBlock<B>,
    enc_attn: Option<SelfAttention<B>>,
    enc_norm: GroupNorm<B>,
    enc_out: Conv3d<B>,
    pub(crate) dec_in: Conv3d<B>,
    pub(crate) dec2: ResBlock<B>,
    pub(crate) dec_attn: Option<SelfAttention<B>>,
    pub(crate) up1: Up<B>,
    pub(crate) dec1: ResBlock<B>,
    pub(crate) up0: Up<B>,
    pub(crate) labels: Embedding<B>,
    pub(crate) dec0: ResBlock<B>,
    pub(crate) dec_norm: GroupNorm<B>,
    pub(crate) dec_out: Conv3d<B>,
    /// Per-class mean (network units), added to the output and subtracted from the input;
    /// set from the data and frozen (only ever used detached).
    pub(crate) label_bias: Embedding<B>,
    /// Per-channel RMS of the residual from the class means; frozen like `label_bias`.
    pub(crate) res_scale: Param<Tensor<B, 1>>,
    pub(crate) label_dim: usize,
}

/// Posterior of the encoder: mean and log-variance, each `[b, z, d/4, h/4, w/4]`.
pub struct Posterior<B: Backend> {
    pub mean: Tensor<B, 5>,
    pub logvar: Tensor<B, 5>,
}

impl<B: Backend> Posterior<B> {
    /// KL divergence to N(0, I), averaged over elements.
    pub fn kl(&self) -> Tensor<B, 1> {
        let lv = self.logvar.clone().clamp(-30.0, 20.0);
        (self.mean.clone().powf_scalar(2.0) + lv.clone().exp() - lv - 1.0)
            .mean()
            .mul_scalar(0.5)
    }

    /// Reparameterised sample `mean + σ·ε` for training the decoder.
    pub fn sample(&self, eps: Tensor<B, 5>) -> Tensor<B, 5> {
        let std = self.logvar.clone().clamp(-30.0, 20.0).mul_scalar(0.5).exp();
        self.mean.clone() + std * eps
    }
}

impl<B: Backend> Autoencoder<B> {
    /// Sets the class means (`classes × channels`) and the residual RMS per channel, both in
    /// network units, measured on the training data.
    pub fn with_residual_stats(
        mut self,
        means: &[f32],
        scales: &[f32],
        classes: usize,
        channels: usize,
    ) -> Self {
        let device = self.dec_out.weight.device();
        let t = Tensor::<B, 2>::from_data(
            TensorData::new(means.to_vec(), [classes, channels]),
            &device,
        );
        self.label_bias.weight = Param::from_tensor(t);
        self.res_scale = Param::from_tensor(Tensor::from_data(
            TensorData::new(scales.to_vec(), [channels]),
            &device,
        ));
        self
    }

    /// The frozen mean of one class, per channel (network units).
    pub fn class_mean(&self, class: usize) -> Vec<f32> {
        self.label_bias
            .weight
            .val()
            .narrow(0, class, 1)
            .into_data()
            .to_vec::<f32>()
            .unwrap_or_default()
    }

    /// The label-mean image `[b, c, d, h, w]` and the residual scale broadcastable to it.
    fn label_mean(&self, labels: Tensor<B, 4, Int>) -> (Tensor<B, 5>, Tensor<B, 5>) {
        let [b, d, h, w] = labels.dims();
        let bias = self
            .label_bias
            .forward(labels.reshape([b, d * h * w]))
            .swap_dims(1, 2)
            .detach();
        let c = bias.dims()[1];
        let scale = self.res_scale.val().detach().reshape([1, c, 1, 1, 1]);
        (bias.reshape([b, c, d, h, w]), scale)
    }

    /// The object in residual units, `(x − μ[label]) / s`: what the encoder reads and what
    /// the reconstruction loss is measured in.
    pub fn residual(&self, x: Tensor<B, 5>, labels: Tensor<B, 4, Int>) -> Tensor<B, 5> {
        let (mean, scale) = self.label_mean(labels);
        (x - mean) / scale
    }

    /// `x`: `[b, c, d, h, w]` with d, h, w multiples of 4; `labels`: `[b, d, h, w]`.
    pub fn encode(&self, x: Tensor<B, 5>, labels: Tensor<B, 4, Int>) -> Posterior<B> {
        self.encode_residual(self.residual(x, labels))
    }

    /// [`Autoencoder::encode`] of an object already in residual units.
    pub fn encode_residual(&self, r: Tensor<B, 5>) -> Posterior<B> {
        let short = avg_pool4(r.clone());
        let h = self.enc0.forward(self.enc_in.forward(r), None);
        let h = self.enc1.forward(self.down0.forward(h), None);
        let mut h = self.enc2.forward(self.down1.forward(h), None);
        if let Some(a) = &self.enc_attn {
            h = a.forward(h);
        }
        let out = self.enc_out.forward(silu(self.enc_norm.forward(h)));
        let z = out.dims()[1] / 2;
        let mut halves = out.split(z, 1);
        let logvar = halves.pop().expect("two halves");
        let mean = halves.pop().expect("two halves");
        let c = short.dims()[1];
        let mean = if c < z {
            Tensor::cat(vec![short, mean.narrow(1, c, z - c)], 1)
        } else {
            short
        };
        Posterior { mean, logvar }
    }

    /// `z`: `[b, zc, d/4, h/4, w/4]`; `labels`: class indices `[b, d, h, w]`.
    pub fn decode(&self, z: Tensor<B, 5>, labels: Tensor<B, 4, Int>) -> Tensor<B, 5> {
        let (mean, scale) = self.label_mean(labels.clone());
        mean + self.decode_residual(z, labels) * scale
    }

    /// The decoded residual `r̂` (residual units).
    pub fn decode_residual(&self, z: Tensor<B, 5>, labels: Tensor<B, 4, Int>) -> Tensor<B, 5> {
        let c = self.res_scale.dims()[0];
        let short = upsample_nearest2(upsample_nearest2(z.clone().narrow(1, 0, c)));
        let h = self.dec2.forward(self.dec_in.forward(z), None);
        let h = match &self.dec_attn {
            Some(a) => a.forward(h),
            None => h,
        };
        let h = self.dec1.forward(self.up1.forward(h), None);
        let h = self.up0.forward(h);
        let [b, d, hh, w] = labels.dims();
        let flat = labels.reshape([b, d * hh * w]);
        let emb = self.labels.forward(flat.clone()).swap_dims(1, 2).reshape([
            b,
            self.label_dim,
            d,
            hh,
            w,
        ]);
        let h = self.dec0.forward(Tensor::cat(vec![h, emb], 1), None);
        // One output map per class and channel; each voxel reads its own class's maps. A
        // disease shift of one organ is then a smooth field the latent can code, gated to
        // the organ's exact boundary by the labels, instead of a label × latent product the
        // convolutions would have to learn.
        let per_class = self.dec_out.forward(silu(self.dec_norm.forward(h)));
        let n = d * hh * w;
        let idx = flat
            .mul_scalar(c as i64)
            .reshape([b, 1, n])
            .expand([b, c, n])
            + Tensor::<B, 1, Int>::arange(0..c as i64, &per_class.device())
                .reshape([1, c, 1])
                .expand([b, c, n]);
        let k = per_class.dims()[1];
        let detail = per_class
            .reshape([b, k, n])
            .gather(1, idx)
            .reshape([b, c, d, hh, w]);
        let block_mean = upsample_nearest2(upsample_nearest2(avg_pool4(detail.clone())));
        detail - block_mean + short
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cpu;

    /// Each 4×4×4 block of a reconstruction has the input's mean whatever the weights (here
    /// random, with a random decoder head instead of the zero-initialised one): what keeps a
    /// sparse disease's mean shift through the codec.
    #[test]
    fn reconstruction_keeps_every_block_mean_exactly() {
        let dev = Default::default();
        let (classes, ch) = (3, 2);
        let mut ae = crate::model::init_with_seed(&dev, 1, || {
            AutoencoderConfig::new(ch, classes)
                .with_channels([8, 8, 8])
                .init::<Cpu>(&dev)
        })
        .with_residual_stats(&[0.1, -0.2, 0.5, 0.3, -0.7, 0.9], &[0.4, 2.0], classes, ch);
        ae.dec_out = crate::model::init_with_seed(&dev, 2, || conv3(8, ch * classes).init(&dev));
        let dims = [1, ch, 8, 8, 12];
        let x = crate::model::normal_tensor::<Cpu, 5>(dims, 11, &dev);
        let labels: Vec<i64> = (0..8 * 8 * 12).map(|i| ((i * 31) % 7 % 3) as i64).collect();
        let labels = Tensor::<Cpu, 4, Int>::from_data(TensorData::new(labels, [1, 8, 8, 12]), &dev);
        let z = ae.encode(x.clone(), labels.clone()).mean;
        let y = ae.decode(z, labels);
        let detail = (y.clone() - x.clone()).abs().mean().into_scalar();
        assert!(
            detail > 1e-2,
            "decoder output equals its input: test is vacuous"
        );
        let (a, b) = (avg_pool4(x), avg_pool4(y));
        let err = (a - b).abs().max().into_scalar();
        assert!(err < 1e-4, "block means differ by up to {err}");
    }
}
