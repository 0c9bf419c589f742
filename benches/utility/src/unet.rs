//! A compact 2D UNet (Ronneberger 2015) with group norm after every convolution (as
//! nnU-Net's small-batch variants; without it the network sat on "all background" for
//! hundreds of steps): three poolings, widths w, 2w, 4w, 8w, transposed-convolution
//! upsampling and skip concatenation, a 1×1 head to one logit per class.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{backend::Backend, Tensor};

/// Poolings; inputs must be divisible by 2^LEVELS.
pub const LEVELS: usize = 3;

#[derive(Module, Debug)]
pub struct DoubleConv<B: Backend> {
    c1: Conv2d<B>,
    n1: GroupNorm<B>,
    c2: Conv2d<B>,
    n2: GroupNorm<B>,
}

/// Groups per norm: 4 divides every width the benchmark uses (8 × 2^l or 16 × 2^l).
fn groups_for(c: usize) -> usize {
    (1..=4).rev().find(|g| c % g == 0).unwrap_or(1)
}

impl<B: Backend> DoubleConv<B> {
    fn new(c_in: usize, c_out: usize, device: &B::Device) -> Self {
        let conv = |a, b| {
            Conv2dConfig::new([a, b], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        Self {
            c1: conv(c_in, c_out),
            n1: GroupNormConfig::new(groups_for(c_out), c_out).init(device),
            c2: conv(c_out, c_out),
            n2: GroupNormConfig::new(groups_for(c_out), c_out).init(device),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = relu(self.n1.forward(self.c1.forward(x)));
        relu(self.n2.forward(self.c2.forward(x)))
    }
}

#[derive(Module, Debug)]
pub struct UNet2d<B: Backend> {
    enc: Vec<DoubleConv<B>>,
    pool: MaxPool2d,
    bottom: DoubleConv<B>,
    up: Vec<ConvTranspose2d<B>>,
    dec: Vec<DoubleConv<B>>,
    head: Conv2d<B>,
}

impl<B: Backend> UNet2d<B> {
    pub fn new(c_in: usize, classes: usize, width: usize, device: &B::Device) -> Self {
        let widths: Vec<usize> = (0..=LEVELS).map(|l| width << l).collect();
        let mut enc = Vec::new();
        let mut c = c_in;
        for &w in &widths[..LEVELS] {
            enc.push(DoubleConv::new(c, w, device));
            c = w;
        }
        let bottom = DoubleConv::new(c, widths[LEVELS], device);
        let (mut up, mut dec) = (Vec::new(), Vec::new());
        for l in (0..LEVELS).rev() {
            up.push(
                ConvTranspose2dConfig::new([widths[l + 1], widths[l]], [2, 2])
                    .with_stride([2, 2])
                    .init(device),
            );
            dec.push(DoubleConv::new(2 * widths[l], widths[l], device));
        }
        Self {
            enc,
            pool: MaxPool2dConfig::new([2, 2]).init(),
            bottom,
            up,
            dec,
            head: Conv2dConfig::new([widths[0], classes], [1, 1]).init(device),
        }
    }

    /// `[batch, channels, y, x]` → logits `[batch, classes, y, x]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut skips = Vec::new();
        let mut h = x;
        for e in &self.enc {
            h = e.forward(h);
            skips.push(h.clone());
            h = self.pool.forward(h);
        }
        h = self.bottom.forward(h);
        for (u, d) in self.up.iter().zip(&self.dec) {
            let s = skips.pop().expect("one skip per level");
            h = d.forward(Tensor::cat(vec![u.forward(h), s], 1));
        }
        self.head.forward(h)
    }
}
