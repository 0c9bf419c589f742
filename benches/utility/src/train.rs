//! Training and inference of the 2D UNet: the same budget for every arm (steps, batch,
//! canvas, learning-rate schedule), a fixed seed per run, cross-entropy + soft Dice loss,
//! Adam with cosine decay, and light augmentation (±8 px shifts, left–right flips — the
//! classes pool both sides —, ±10 % intensity gain on the normalised channels).

use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Mutex;

use crate::classes::N_CLASSES;
use crate::slices::{Canvas, Slice, CHANNELS};
use crate::unet::UNet2d;

pub type Cpu = burn::backend::Flex<f32>;
pub type CpuTrain = burn::backend::Autodiff<Cpu>;

/// The training budget every arm gets.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Budget {
    pub steps: usize,
    pub batch: usize,
    pub width: usize,
    pub lr: f64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            steps: 350,
            batch: 4,
            width: 8,
            lr: 1e-2,
        }
    }
}

/// Most pixels a shift moves a slice by.
const MAX_SHIFT: i64 = 8;

/// One augmented copy of `s` into the batch buffers.
fn augment(s: &Slice, c: Canvas, rng: &mut ChaCha8Rng, x: &mut Vec<f32>, y: &mut Vec<u8>) {
    let (dx, dy) = (
        rng.random_range(-MAX_SHIFT..=MAX_SHIFT),
        rng.random_range(-MAX_SHIFT..=MAX_SHIFT),
    );
    let flip = rng.random_bool(0.5);
    let gain = rng.random_range(0.9f32..=1.1);
    let plane = c.nx * c.ny;
    let src = |u: usize, v: usize| -> Option<usize> {
        let u = (if flip { c.nx - 1 - u } else { u }) as i64 - dx;
        let v = v as i64 - dy;
        (u >= 0 && v >= 0 && u < c.nx as i64 && v < c.ny as i64)
            .then(|| v as usize * c.nx + u as usize)
    };
    let base_x = x.len();
    x.resize(base_x + CHANNELS * plane, 0.0);
    for ch in 0..CHANNELS {
        for v in 0..c.ny {
            for u in 0..c.nx {
                // Outside the shifted slice: air in both windows.
                let val = src(u, v).map_or(-1.0, |p| s.x[ch * plane + p] * gain);
                x[base_x + ch * plane + v * c.nx + u] = val;
            }
        }
    }
    for v in 0..c.ny {
        for u in 0..c.nx {
            y.push(src(u, v).map_or(0, |p| s.y[p]));
        }
    }
}

/// Class-balanced cross-entropy (each class weighted by 1/√ its pixel share in the batch,
/// normalised to a mean pixel weight of 1, so the 90 % background does not drown the
/// organs) + (1 − mean soft Dice over the foreground classes present in the batch; a class
/// absent from the batch would only teach "predict nothing").
fn loss<B: Backend>(logits: Tensor<B, 4>, onehot: Tensor<B, 4>, counts: &[usize]) -> Tensor<B, 1> {
    let [_, k, _, _] = logits.dims();
    let device = logits.device();
    let total: usize = counts.iter().sum();
    let raw: Vec<f32> = counts
        .iter()
        .map(|&n| {
            if n > 0 {
                (total as f32 / n as f32).sqrt()
            } else {
                0.0
            }
        })
        .collect();
    let mean_w = raw
        .iter()
        .zip(counts)
        .map(|(w, &n)| w * n as f32)
        .sum::<f32>()
        / total as f32;
    let w: Vec<f32> = raw.iter().map(|x| x / mean_w).collect();
    let w = Tensor::<B, 1>::from_data(TensorData::new(w, [k]), &device).reshape([1, k, 1, 1]);
    let ce = (log_softmax(logits.clone(), 1) * onehot.clone() * w)
        .sum_dim(1)
        .mean()
        .neg();
    let present: Vec<bool> = counts.iter().map(|&n| n > 0).collect();
    // Per-class sums over batch and pixels by reductions only: a transpose to [class, …]
    // makes burn-flex copy the tensor through a strided iterator, a third of a step.
    let per_class = |t: Tensor<B, 4>| t.sum_dim(3).sum_dim(2).sum_dim(0).reshape([k]);
    let p = softmax(logits, 1);
    let inter = per_class(p.clone() * onehot.clone());
    let denom = per_class(p) + per_class(onehot);
    let dice = (inter * 2.0 + 1.0) / (denom + 1.0);
    let mask: Vec<f32> = (0..k).map(|c| (c > 0 && present[c]) as u8 as f32).collect();
    let n = mask.iter().sum::<f32>();
    let ce = ce.reshape([1]);
    if n == 0.0 {
        return ce;
    }
    let mask = Tensor::<B, 1>::from_data(TensorData::new(mask, [k]), &device);
    let fg = (dice * mask).sum() / n;
    ce + (fg.neg() + 1.0).reshape([1])
}

/// burn seeds one backend-wide generator: networks built on several threads at once take
/// turns, so each one's initial weights depend on its seed alone.
static INIT: Mutex<()> = Mutex::new(());

/// Trains a fresh network on `train` with `budget`, seeded by `seed`; `weight` is each
/// slice's share of the draws (e.g. 1/n within each of several sources). Progress goes to
/// a bar in `bars`.
pub fn train(
    train: &[&Slice],
    weight: &[f64],
    c: Canvas,
    budget: Budget,
    seed: u64,
    label: &str,
    bars: &MultiProgress,
) -> UNet2d<Cpu> {
    type B = CpuTrain;
    let device = Default::default();
    let mut model = {
        let _turn = INIT.lock().unwrap_or_else(|e| e.into_inner());
        B::seed(&device, seed);
        UNet2d::<B>::new(CHANNELS, N_CLASSES, budget.width, &device)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x005E_ED0F_u64);
    let mut optim = AdamConfig::new().init::<B, UNet2d<B>>();
    // Slices with any organ are drawn 4× as often as empty ones (the pelvis and air slices).
    let weights: Vec<f64> = train
        .iter()
        .zip(weight)
        .map(|(s, w)| {
            if s.y.iter().any(|&v| v > 0) {
                4.0 * w
            } else {
                *w
            }
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let bar = bars.add(ProgressBar::new(budget.steps as u64)).with_style(
        ProgressStyle::with_template(
            "{msg:>34} [{bar:30}] {pos}/{len} steps, loss {prefix} ({eta})",
        )
        .expect("valid template"),
    );
    bar.set_message(label.to_string());
    let plane = c.nx * c.ny;
    for step in 0..budget.steps {
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for _ in 0..budget.batch {
            let mut r = rng.random_range(0.0..total);
            let mut pick = train.len() - 1;
            for (i, w) in weights.iter().enumerate() {
                if r < *w {
                    pick = i;
                    break;
                }
                r -= w;
            }
            augment(train[pick], c, &mut rng, &mut xs, &mut ys);
        }
        let mut oh = vec![0f32; budget.batch * N_CLASSES * plane];
        let mut counts = [0usize; N_CLASSES];
        for (i, &l) in ys.iter().enumerate() {
            let (b, p) = (i / plane, i % plane);
            oh[(b * N_CLASSES + l as usize) * plane + p] = 1.0;
            counts[l as usize] += 1;
        }
        let x = Tensor::<B, 4>::from_data(
            TensorData::new(xs, [budget.batch, CHANNELS, c.ny, c.nx]),
            &device,
        );
        let g = Tensor::<B, 4>::from_data(
            TensorData::new(oh, [budget.batch, N_CLASSES, c.ny, c.nx]),
            &device,
        );
        let l = loss(model.forward(x), g, &counts);
        if step % 10 == 0 {
            let v: f32 = l.clone().into_data().to_vec::<f32>().expect("f32 loss")[0];
            bar.set_prefix(format!("{v:.3}"));
            // Without a terminal (logs, nohup) the bar is hidden: a line every 10 %.
            if bars.is_hidden() && step % (budget.steps / 10).max(10) == 0 {
                eprintln!("{label}: step {step}/{}, loss {v:.3}", budget.steps);
            }
        }
        let grads = GradientsParams::from_grads(l.backward(), &model);
        let lr = budget.lr
            * 0.5
            * (1.0 + (std::f64::consts::PI * step as f64 / budget.steps as f64).cos());
        model = optim.step(lr, model, grads);
        bar.inc(1);
    }
    bar.finish_and_clear();
    model.valid()
}

/// Class of every pixel of `slices` (argmax of the logits), in slice order.
pub fn predict(model: &UNet2d<Cpu>, slices: &[&Slice], c: Canvas) -> Vec<Vec<u8>> {
    let device = Default::default();
    let plane = c.nx * c.ny;
    let mut out = Vec::new();
    for chunk in slices.chunks(16) {
        let xs: Vec<f32> = chunk.iter().flat_map(|s| s.x.iter().copied()).collect();
        let x = Tensor::<Cpu, 4>::from_data(
            TensorData::new(xs, [chunk.len(), CHANNELS, c.ny, c.nx]),
            &device,
        );
        let logits = model
            .forward(x)
            .into_data()
            .to_vec::<f32>()
            .expect("f32 logits");
        for b in 0..chunk.len() {
            let mut y = vec![0u8; plane];
            for (p, yp) in y.iter_mut().enumerate() {
                let mut best = (f32::NEG_INFINITY, 0u8);
                for k in 0..N_CLASSES {
                    let v = logits[(b * N_CLASSES + k) * plane + p];
                    if v > best.0 {
                        best = (v, k as u8);
                    }
                }
                *yp = best.1;
            }
            out.push(y);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loop learns: discs of +100 HU on air are segmented after a short training.
    #[test]
    fn learns_a_disc() {
        let c = Canvas {
            nx: 32,
            ny: 24,
            spacing_mm: 4.0,
        };
        let mut slices = Vec::new();
        for k in 0..6 {
            let r = 5.0 + k as f64;
            let mut x = vec![0f32; CHANNELS * c.nx * c.ny];
            let mut y = vec![0u8; c.nx * c.ny];
            for v in 0..c.ny {
                for u in 0..c.nx {
                    let inside = ((u as f64 - 15.5).powi(2) + (v as f64 - 11.5).powi(2)).sqrt() < r;
                    let hu = if inside { 100.0 } else { -1000.0 };
                    let n = crate::slices::normalise_hu(hu);
                    x[v * c.nx + u] = n[0];
                    x[c.nx * c.ny + v * c.nx + u] = n[1];
                    y[v * c.nx + u] = inside as u8;
                }
            }
            slices.push(Slice { x, y, source: 0, k });
        }
        let budget = Budget {
            steps: 60,
            batch: 4,
            width: 8,
            lr: 5e-3,
        };
        let refs: Vec<&Slice> = slices.iter().collect();
        let bars = MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden());
        let model = train(&refs, &[1.0; 6], c, budget, 1, "test", &bars);
        let pred = predict(&model, &refs, c);
        let (mut inter, mut sum) = (0usize, 0usize);
        for (p, s) in pred.iter().zip(&slices) {
            for (&a, &b) in p.iter().zip(&s.y) {
                inter += (a == 1 && b == 1) as usize;
                sum += (a == 1) as usize + (b == 1) as usize;
            }
        }
        let dice = 2.0 * inter as f64 / sum as f64;
        assert!(dice > 0.9, "Dice {dice}");
    }
}
