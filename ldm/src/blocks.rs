//! Building blocks shared by the autoencoder and the denoiser (3D, channels-first
//! `[batch, channels, z, y, x]`).

use burn::module::Module;
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::conv::{Conv3d, Conv3dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig3d};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{backend::Backend, Bool, Tensor};

/// Largest group count ≤ 8 that divides `channels`: tiny channel counts (4, 12) still get a
/// valid GroupNorm instead of a panic at init.
pub fn groups_for(channels: usize) -> usize {
    (1..=8).rev().find(|g| channels % g == 0).unwrap_or(1)
}

/// 3×3×3 convolution that keeps the spatial size.
pub fn conv3(c_in: usize, c_out: usize) -> Conv3dConfig {
    Conv3dConfig::new([c_in, c_out], [3, 3, 3]).with_padding(PaddingConfig3d::Explicit(1, 1, 1))
}

pub fn norm<B: Backend>(channels: usize, device: &B::Device) -> GroupNorm<B> {
    GroupNormConfig::new(groups_for(channels), channels).init(device)
}

/// Residual block: GN → SiLU → conv → (+ embedding) → GN → SiLU → conv, with a 1×1×1
/// skip projection when the channel count changes.
#[derive(Module, Debug)]
pub struct ResBlock<B: Backend> {
    pub(crate) norm1: GroupNorm<B>,
    pub(crate) conv1: Conv3d<B>,
    emb: Option<Linear<B>>,
    pub(crate) norm2: GroupNorm<B>,
    pub(crate) conv2: Conv3d<B>,
    pub(crate) skip: Option<Conv3d<B>>,
}

impl<B: Backend> ResBlock<B> {
    /// `emb_dim` > 0 adds a projected conditioning vector (timestep, scalars) per channel.
    pub fn new(c_in: usize, c_out: usize, emb_dim: usize, device: &B::Device) -> Self {
        Self {
            norm1: norm(c_in, device),
            conv1: conv3(c_in, c_out).init(device),
            emb: (emb_dim > 0).then(|| LinearConfig::new(emb_dim, c_out).init(device)),
            norm2: norm(c_out, device),
            conv2: conv3(c_out, c_out).init(device),
            skip: (c_in != c_out).then(|| Conv3dConfig::new([c_in, c_out], [1, 1, 1]).init(device)),
        }
    }

    pub fn forward(&self, x: Tensor<B, 5>, emb: Option<&Tensor<B, 2>>) -> Tensor<B, 5> {
        let h = self.conv1.forward(silu(self.norm1.forward(x.clone())));
        let h = match (&self.emb, emb) {
            (Some(lin), Some(e)) => {
                let [b, c] = [h.dims()[0], h.dims()[1]];
                h + lin.forward(silu(e.clone())).reshape([b, c, 1, 1, 1])
            }
            _ => h,
        };
        let h = self.conv2.forward(silu(self.norm2.forward(h)));
        let skip = match &self.skip {
            Some(s) => s.forward(x),
            None => x,
        };
        skip + h
    }
}

/// Stride-2 convolution (learned down-sampling, as in MONAI's `Downsample` with conv).
#[derive(Module, Debug)]
pub struct Down<B: Backend> {
    conv: Conv3d<B>,
}

impl<B: Backend> Down<B> {
    pub fn new(c_in: usize, c_out: usize, device: &B::Device) -> Self {
        let conv = Conv3dConfig::new([c_in, c_out], [3, 3, 3])
            .with_stride([2, 2, 2])
            .with_padding(PaddingConfig3d::Explicit(1, 1, 1))
            .init(device);
        Self { conv }
    }
    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        self.conv.forward(x)
    }
}

/// Nearest 2× up-sampling followed by a 3×3×3 convolution (no checkerboard, unlike a
/// transposed convolution).
#[derive(Module, Debug)]
pub struct Up<B: Backend> {
    conv: Conv3d<B>,
}

impl<B: Backend> Up<B> {
    pub fn new(c_in: usize, c_out: usize, device: &B::Device) -> Self {
        Self {
            conv: conv3(c_in, c_out).init(device),
        }
    }
    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        self.conv.forward(upsample_nearest2(x))
    }
}

/// Nearest-neighbour 2× up-sampling of `[b, c, d, h, w]`. burn's `interpolate` is 2D only,
/// so this reshapes and expands, keeping every intermediate at ≤ 6 dimensions.
pub fn upsample_nearest2<B: Backend>(x: Tensor<B, 5>) -> Tensor<B, 5> {
    let [b, c, d, h, w] = x.dims();
    let n = b * c * d;
    let x = x
        .reshape([n, h, 1, w, 1])
        .expand([n, h, 2, w, 2])
        .reshape([b * c, d, 1, 4 * h * w])
        .expand([b * c, d, 2, 4 * h * w]);
    x.reshape([b, c, 2 * d, 2 * h, 2 * w])
}

/// Flattens `[b, c, d, h, w]` to tokens `[b, d·h·w, c]`.
pub fn to_tokens<B: Backend>(x: Tensor<B, 5>) -> Tensor<B, 3> {
    let [b, c, d, h, w] = x.dims();
    x.reshape([b, c, d * h * w]).swap_dims(1, 2)
}

pub fn from_tokens<B: Backend>(t: Tensor<B, 3>, dims: [usize; 5]) -> Tensor<B, 5> {
    t.swap_dims(1, 2).reshape(dims)
}

/// Pre-norm self-attention over all voxels of a (low-resolution) feature map, residual.
#[derive(Module, Debug)]
pub struct SelfAttention<B: Backend> {
    norm: GroupNorm<B>,
    attn: MultiHeadAttention<B>,
}

impl<B: Backend> SelfAttention<B> {
    pub fn new(channels: usize, heads: usize, device: &B::Device) -> Self {
        Self {
            norm: norm(channels, device),
            attn: MultiHeadAttentionConfig::new(channels, heads)
                .with_dropout(0.0)
                .init(device),
        }
    }
    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        self.forward_chunked(x, ATTENTION_CHUNK_BYTES)
    }

    /// [`SelfAttention::forward`] with the queries taken in chunks whose attention weights
    /// (`batch × heads × chunk × tokens` f32) fit in `budget_bytes`. Each query's row of
    /// weights is the same whichever chunk it is in, so the result is the same; the memory is
    /// not quadratic in the tokens. (A 512×512×300 object has 19 456 tokens at the denoiser's
    /// lowest level: its whole weight matrix, three guidance branches and two heads, would be
    /// 9 GB, twice that with the softmax's copy.)
    pub fn forward_chunked(&self, x: Tensor<B, 5>, budget_bytes: usize) -> Tensor<B, 5> {
        let dims = x.dims();
        let t = to_tokens(self.norm.forward(x.clone()));
        let [b, n, _] = t.dims();
        let rows = (budget_bytes / (b * self.attn.n_heads * n * 4)).max(1);
        let out = if rows >= n {
            self.attn.forward(MhaInput::self_attn(t)).context
        } else {
            // burn's attention projects keys and values again for every call; here they are
            // projected once and the weights are made a chunk of queries at a time.
            let a = &self.attn;
            let heads = |lin: &Linear<B>| {
                lin.forward(t.clone())
                    .reshape([b, n, a.n_heads, a.d_k])
                    .swap_dims(1, 2)
            };
            let (q, k, v) = (heads(&a.query), heads(&a.key), heads(&a.value));
            let kt = k.transpose();
            let parts = (0..n)
                .step_by(rows)
                .map(|s| {
                    let scores = q
                        .clone()
                        .narrow(2, s, rows.min(n - s))
                        .matmul(kt.clone())
                        .div_scalar((a.d_k as f32).sqrt());
                    softmax(scores, 3).matmul(v.clone())
                })
                .collect();
            let context = Tensor::cat(parts, 2)
                .swap_dims(1, 2)
                .reshape([b, n, a.d_model]);
            a.output.forward(context)
        };
        x + from_tokens(out, dims)
    }
}

/// Bytes the attention weights of one chunk of queries may take.
pub const ATTENTION_CHUNK_BYTES: usize = 128 << 20;

/// Cross-attention from voxels (queries) to text tokens (keys, values), residual. The text
/// width is projected to the feature width so one `MultiHeadAttention` serves.
#[derive(Module, Debug)]
pub struct CrossAttention<B: Backend> {
    norm: GroupNorm<B>,
    context: Linear<B>,
    attn: MultiHeadAttention<B>,
}

impl<B: Backend> CrossAttention<B> {
    pub fn new(channels: usize, d_text: usize, heads: usize, device: &B::Device) -> Self {
        Self {
            norm: norm(channels, device),
            context: LinearConfig::new(d_text, channels).init(device),
            attn: MultiHeadAttentionConfig::new(channels, heads)
                .with_dropout(0.0)
                .init(device),
        }
    }

    /// `text`: `[b, tokens, d_text]`; `pad`: `[b, tokens]`, true where a token is padding.
    pub fn forward(
        &self,
        x: Tensor<B, 5>,
        text: &Tensor<B, 3>,
        pad: &Tensor<B, 2, Bool>,
    ) -> Tensor<B, 5> {
        let dims = x.dims();
        let q = to_tokens(self.norm.forward(x.clone()));
        let kv = self.context.forward(text.clone());
        let input = MhaInput::new(q, kv.clone(), kv).mask_pad(pad.clone());
        x + from_tokens(self.attn.forward(input).context, dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cpu;
    use burn::tensor::TensorData;

    #[test]
    fn upsample_repeats_each_voxel_in_a_2x2x2_block() {
        let dev = Default::default();
        let data: Vec<f32> = (0..2 * 3 * 2 * 3 * 4).map(|v| v as f32).collect();
        let x = Tensor::<Cpu, 5>::from_data(TensorData::new(data.clone(), [2, 3, 2, 3, 4]), &dev);
        let y = upsample_nearest2(x);
        assert_eq!(y.dims(), [2, 3, 4, 6, 8]);
        let out = y.into_data().to_vec::<f32>().unwrap();
        for b in 0..2 {
            for c in 0..3 {
                for z in 0..4 {
                    for yy in 0..6 {
                        for xx in 0..8 {
                            let o = out[(((b * 3 + c) * 4 + z) * 6 + yy) * 8 + xx];
                            let i = data[(((b * 3 + c) * 2 + z / 2) * 3 + yy / 2) * 4 + xx / 2];
                            assert_eq!(o, i);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn blocks_keep_or_change_shapes_as_declared() {
        let dev = Default::default();
        // Drawn under the crate's RNG lock, so that concurrent seeded tests stay seeded.
        fn seeded<M: burn::module::Module<Cpu>>(init: impl FnOnce() -> M) -> M {
            crate::model::init_with_seed(&Default::default(), 1, init)
        }
        let x = crate::model::normal_tensor::<Cpu, 5>([2, 8, 8, 8, 4], 1, &dev);
        let emb = crate::model::normal_tensor::<Cpu, 2>([2, 16], 2, &dev);
        let r = seeded(|| ResBlock::<Cpu>::new(8, 12, 16, &dev));
        assert_eq!(r.forward(x.clone(), Some(&emb)).dims(), [2, 12, 8, 8, 4]);
        assert_eq!(
            seeded(|| Down::<Cpu>::new(8, 16, &dev))
                .forward(x.clone())
                .dims(),
            [2, 16, 4, 4, 2]
        );
        assert_eq!(
            seeded(|| Up::<Cpu>::new(8, 4, &dev))
                .forward(x.clone())
                .dims(),
            [2, 4, 16, 16, 8]
        );
        assert_eq!(
            seeded(|| SelfAttention::<Cpu>::new(8, 2, &dev))
                .forward(x.clone())
                .dims(),
            [2, 8, 8, 8, 4]
        );
        // Chunked queries (a budget of 7 query rows here) give full self-attention's result.
        let sa = seeded(|| SelfAttention::<Cpu>::new(8, 2, &dev));
        let full = sa.forward(x.clone());
        let chunked = sa.forward_chunked(x.clone(), 2 * 2 * 256 * 4 * 7);
        let diff = (full.clone() - chunked).abs().max().into_scalar();
        assert!(diff < 1e-5, "chunked attention differs by {diff}");
        assert!(
            (full - x.clone()).abs().max().into_scalar() > 1e-3,
            "attention did nothing"
        );
        let text = crate::model::normal_tensor::<Cpu, 3>([2, 5, 24], 3, &dev);
        let pad = Tensor::<Cpu, 2, Bool>::from_data(
            TensorData::new(
                vec![
                    false, false, false, true, true, false, false, false, false, false,
                ],
                [2, 5],
            ),
            &dev,
        );
        let ca = CrossAttention::<Cpu>::new(8, 24, 2, &dev);
        assert_eq!(ca.forward(x, &text, &pad).dims(), [2, 8, 8, 8, 4]);
    }
}
