//! Noise schedulers as small independent objects (diffusers style): each implements
//! [`Scheduler`], which says how to make a training pair at time `t ∈ [0, 1]`, which time grid
//! to sample on and how to take one sampling step. [`AnyScheduler`] is the one a checkpoint's
//! [`SchedulerConfig`] builds.
//!
//! Time runs from 0 (data) to 1 (pure noise) for both, so the denoiser's time embedding
//! means the same thing whichever scheduler trained it.

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

/// ODE solver of the sampler: `euler` (one model call per step) or `heun` (two, more accurate
/// for few steps).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Solver {
    #[default]
    Euler,
    Heun,
}

/// Which scheduler a model was trained with (and therefore must be sampled with).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SchedulerConfig {
    /// Rectified flow: `x_t = (1 − t)·x₀ + t·ε`, the network predicts the velocity `ε − x₀`.
    RectifiedFlow,
    /// DDPM (linear β from `beta_start` to `beta_end` over `train_steps`), ε-prediction,
    /// sampled with deterministic DDIM.
    Ddpm {
        train_steps: usize,
        beta_start: f64,
        beta_end: f64,
    },
}

impl SchedulerConfig {
    pub fn ddpm_default() -> Self {
        SchedulerConfig::Ddpm {
            train_steps: 1000,
            beta_start: 1e-4,
            beta_end: 0.02,
        }
    }

    pub fn build(&self) -> AnyScheduler {
        match *self {
            SchedulerConfig::RectifiedFlow => AnyScheduler::Flow(RectifiedFlow),
            SchedulerConfig::Ddpm {
                train_steps,
                beta_start,
                beta_end,
            } => AnyScheduler::Ddpm(Ddpm::new(train_steps, beta_start, beta_end)),
        }
    }
}

/// A noise schedule and its sampler step. Time runs from 0 (data) to 1 (noise).
pub trait Scheduler {
    /// Noisy input and regression target for clean `x0`, noise `eps` at time `t` (per batch
    /// item). Returns the time actually used (DDPM snaps it to its discrete grid).
    fn training_pair<B: Backend>(
        &self,
        x0: Tensor<B, 5>,
        eps: Tensor<B, 5>,
        t: &[f32],
    ) -> (Tensor<B, 5>, Tensor<B, 5>, Vec<f32>);

    /// Decreasing time grid `t_0 = 1 > … > t_n = 0` for `steps` sampling steps.
    fn timesteps(&self, steps: usize) -> Vec<f32>;

    /// One step from time `t` to `t_next` given the network's prediction at `(x, t)`.
    fn step<B: Backend>(
        &self,
        x: Tensor<B, 5>,
        pred: Tensor<B, 5>,
        t: f32,
        t_next: f32,
    ) -> Tensor<B, 5>;

    /// Whether Heun's second evaluation applies (ODE schedulers only).
    fn supports_heun(&self) -> bool {
        false
    }
}

/// The scheduler a checkpoint names.
#[derive(Clone, Debug)]
pub enum AnyScheduler {
    Flow(RectifiedFlow),
    Ddpm(Ddpm),
}

impl Scheduler for AnyScheduler {
    fn training_pair<B: Backend>(
        &self,
        x0: Tensor<B, 5>,
        eps: Tensor<B, 5>,
        t: &[f32],
    ) -> (Tensor<B, 5>, Tensor<B, 5>, Vec<f32>) {
        match self {
            AnyScheduler::Flow(f) => f.training_pair(x0, eps, t),
            AnyScheduler::Ddpm(d) => d.training_pair(x0, eps, t),
        }
    }

    fn timesteps(&self, steps: usize) -> Vec<f32> {
        match self {
            AnyScheduler::Flow(f) => f.timesteps(steps),
            AnyScheduler::Ddpm(d) => d.timesteps(steps),
        }
    }

    fn step<B: Backend>(
        &self,
        x: Tensor<B, 5>,
        pred: Tensor<B, 5>,
        t: f32,
        t_next: f32,
    ) -> Tensor<B, 5> {
        match self {
            AnyScheduler::Flow(f) => f.step(x, pred, t, t_next),
            AnyScheduler::Ddpm(d) => d.step(x, pred, t, t_next),
        }
    }

    fn supports_heun(&self) -> bool {
        match self {
            AnyScheduler::Flow(f) => f.supports_heun(),
            AnyScheduler::Ddpm(d) => d.supports_heun(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct RectifiedFlow;

/// Rectified flow: `x_t = (1 − t)·x₀ + t·ε`, velocity target `ε − x₀`, Euler/Heun steps on a
/// uniform time grid.
impl Scheduler for RectifiedFlow {
    fn training_pair<B: Backend>(
        &self,
        x0: Tensor<B, 5>,
        eps: Tensor<B, 5>,
        t: &[f32],
    ) -> (Tensor<B, 5>, Tensor<B, 5>, Vec<f32>) {
        let tt = per_item(t, &x0);
        let xt = x0.clone() * (tt.clone().neg() + 1.0) + eps.clone() * tt;
        (xt, eps - x0, t.to_vec())
    }

    fn timesteps(&self, steps: usize) -> Vec<f32> {
        (0..=steps).map(|k| 1.0 - k as f32 / steps as f32).collect()
    }

    fn step<B: Backend>(
        &self,
        x: Tensor<B, 5>,
        pred: Tensor<B, 5>,
        t: f32,
        t_next: f32,
    ) -> Tensor<B, 5> {
        x - pred.mul_scalar(t - t_next)
    }

    fn supports_heun(&self) -> bool {
        true
    }
}

#[derive(Clone, Debug)]
pub struct Ddpm {
    /// ᾱ at each of the training steps 1..=T (index k−1).
    alpha_bar: Vec<f64>,
}

impl Ddpm {
    pub fn new(steps: usize, beta_start: f64, beta_end: f64) -> Self {
        let mut ab = 1.0;
        let alpha_bar = (0..steps)
            .map(|k| {
                let beta =
                    beta_start + (beta_end - beta_start) * k as f64 / (steps.max(2) - 1) as f64;
                ab *= 1.0 - beta;
                ab
            })
            .collect();
        Self { alpha_bar }
    }

    fn steps(&self) -> usize {
        self.alpha_bar.len()
    }

    /// ᾱ(t) with t = k/T; ᾱ(0) = 1 (clean data).
    fn alpha_bar_at(&self, t: f32) -> f64 {
        let k = (f64::from(t) * self.steps() as f64).round() as usize;
        if k == 0 {
            1.0
        } else {
            self.alpha_bar[k.min(self.steps()) - 1]
        }
    }

    fn snap(&self, t: f32) -> f32 {
        let n = self.steps() as f32;
        ((t * n).round().clamp(1.0, n)) / n
    }
}

/// DDPM training with ε-prediction, sampled by deterministic DDIM on a subset of its grid.
impl Scheduler for Ddpm {
    fn training_pair<B: Backend>(
        &self,
        x0: Tensor<B, 5>,
        eps: Tensor<B, 5>,
        t: &[f32],
    ) -> (Tensor<B, 5>, Tensor<B, 5>, Vec<f32>) {
        let t: Vec<f32> = t.iter().map(|&v| self.snap(v)).collect();
        let a: Vec<f32> = t
            .iter()
            .map(|&v| self.alpha_bar_at(v).sqrt() as f32)
            .collect();
        let s: Vec<f32> = t
            .iter()
            .map(|&v| (1.0 - self.alpha_bar_at(v)).sqrt() as f32)
            .collect();
        let xt = x0.clone() * per_item(&a, &x0) + eps.clone() * per_item(&s, &x0);
        (xt, eps, t)
    }

    fn timesteps(&self, steps: usize) -> Vec<f32> {
        let n = self.steps();
        let mut ts: Vec<f32> = (0..steps)
            .map(|k| {
                let idx = n - (k * n) / steps;
                idx as f32 / n as f32
            })
            .collect();
        ts.push(0.0);
        ts
    }

    /// Deterministic DDIM (η = 0): predict x₀ from ε, re-noise to `t_next`.
    fn step<B: Backend>(
        &self,
        x: Tensor<B, 5>,
        eps: Tensor<B, 5>,
        t: f32,
        t_next: f32,
    ) -> Tensor<B, 5> {
        let ab = self.alpha_bar_at(t);
        let ab_next = self.alpha_bar_at(t_next);
        let x0 = (x - eps.clone().mul_scalar((1.0 - ab).sqrt())).div_scalar(ab.sqrt());
        x0.mul_scalar(ab_next.sqrt()) + eps.mul_scalar((1.0 - ab_next).sqrt())
    }
}

/// Broadcasts per-item scalars `[b]` to `[b, 1, 1, 1, 1]`.
fn per_item<B: Backend>(v: &[f32], like: &Tensor<B, 5>) -> Tensor<B, 5> {
    Tensor::<B, 1>::from_floats(v, &like.device()).reshape([v.len(), 1, 1, 1, 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cpu;

    fn max_abs(a: Tensor<Cpu, 5>, b: Tensor<Cpu, 5>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    /// Noising to t = 1 and integrating back with the exact velocity (or exact noise)
    /// recovers the input: the scheduler algebra and its time grid agree.
    #[test]
    fn round_trip_with_exact_targets_recovers_the_input() {
        let dev = Default::default();
        let x0 = crate::model::normal_tensor::<Cpu, 5>([2, 4, 4, 4, 4], 1, &dev);
        let eps = crate::model::normal_tensor::<Cpu, 5>([2, 4, 4, 4, 4], 2, &dev);
        for cfg in [
            SchedulerConfig::RectifiedFlow,
            SchedulerConfig::ddpm_default(),
        ] {
            let s = cfg.build();
            let ts = s.timesteps(30);
            assert_eq!(ts.len(), 31);
            assert!(ts.windows(2).all(|w| w[0] > w[1]) && ts[30] == 0.0);
            let (mut x, _, _) = s.training_pair(x0.clone(), eps.clone(), &[ts[0], ts[0]]);
            for w in ts.windows(2) {
                // The exact target at (x, t) is known because x lies on the path of (x0, eps).
                let (_, target, _) = s.training_pair(x0.clone(), eps.clone(), &[w[0], w[0]]);
                x = s.step(x, target, w[0], w[1]);
            }
            let err = max_abs(x, x0.clone());
            assert!(err < 1e-4, "{cfg:?}: round-trip error {err}");
        }
    }

    #[test]
    fn flow_pair_is_the_straight_path_and_its_velocity() {
        let dev = Default::default();
        let x0 = Tensor::<Cpu, 5>::ones([1, 1, 2, 2, 2], &dev);
        let eps = Tensor::<Cpu, 5>::zeros([1, 1, 2, 2, 2], &dev).add_scalar(3.0);
        let (xt, v, _) = SchedulerConfig::RectifiedFlow
            .build()
            .training_pair(x0, eps, &[0.25]);
        assert!((xt.mean().into_scalar() - 1.5).abs() < 1e-6);
        assert!((v.mean().into_scalar() - 2.0).abs() < 1e-6);
    }
}
