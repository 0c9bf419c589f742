//! The sampling loop (diffusers' pipeline `__call__`, without the model loading): a
//! [`Sampler`] owns the guidance scales, the solver and the number of steps, asks its
//! [`Scheduler`] for the time grid and each step, and combines the guided predictions.

use burn::tensor::{backend::Backend, Tensor};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::scheduler::{Scheduler, Solver};

/// Classifier-free guidance scales (1 = plain conditional sampling).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guidance {
    pub text: f32,
    pub labels: f32,
}

impl Guidance {
    /// Used where neither the caller nor the model says otherwise: the prompt strengthened,
    /// the labels plainly conditional (every shipped model's evaluation recommends labels 1).
    pub const DEFAULT: Guidance = Guidance {
        text: 3.0,
        labels: 1.0,
    };
}

/// Guidance scales a caller chooses (a pipeline's `generator.guidance`, `eval-model`'s flags):
/// each one unset falls back to the model's recommendation, then to [`Guidance::DEFAULT`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuidanceChoice {
    /// Text (prompt) guidance scale; 1 = plain conditional sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 50.0))]
    pub text: Option<f32>,
    /// Label-map guidance scale; 1 = plain conditional sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 50.0))]
    pub labels: Option<f32>,
}

impl GuidanceChoice {
    pub fn resolve(self, recommended: Option<Guidance>) -> Guidance {
        let base = recommended.unwrap_or(Guidance::DEFAULT);
        Guidance {
            text: self.text.unwrap_or(base.text),
            labels: self.labels.unwrap_or(base.labels),
        }
    }
}

/// Sampling steps where the caller does not choose.
pub const DEFAULT_STEPS: usize = 30;

/// How to turn noise into a latent with a given denoiser.
#[derive(Clone, Debug)]
pub struct Sampler<S: Scheduler> {
    pub scheduler: S,
    pub guidance: Guidance,
    pub solver: Solver,
    pub steps: usize,
}

impl<S: Scheduler> Sampler<S> {
    /// Default guidance ([`Guidance::DEFAULT`]), Euler, [`DEFAULT_STEPS`].
    pub fn new(scheduler: S) -> Self {
        Sampler {
            scheduler,
            guidance: Guidance::DEFAULT,
            solver: Solver::Euler,
            steps: DEFAULT_STEPS,
        }
    }

    pub fn with_guidance(mut self, guidance: Guidance) -> Self {
        self.guidance = guidance;
        self
    }

    pub fn with_solver(mut self, solver: Solver) -> Self {
        self.solver = solver;
        self
    }

    pub fn with_steps(mut self, steps: usize) -> Self {
        self.steps = steps;
        self
    }

    /// Whether the denoiser runs on three conditioning branches (unconditional, labels only,
    /// labels + text) per call; with both scales 1 guidance is the plain conditional
    /// prediction and one branch suffices.
    pub fn guided(&self) -> bool {
        !(self.guidance.text == 1.0 && self.guidance.labels == 1.0)
    }

    /// Integrates from the noise `x` at t = 1 to t = 0. `denoiser(x, t)` predicts on a batch of
    /// one (or, when [`Sampler::guided`], three stacked copies of `x` in branch order) and
    /// `progress(step, steps)` is told after every step.
    pub fn run<B: Backend>(
        &self,
        mut x: Tensor<B, 5>,
        denoiser: impl Fn(Tensor<B, 5>, &[f32]) -> Tensor<B, 5>,
        mut progress: impl FnMut(usize, usize),
    ) -> Tensor<B, 5> {
        let predict = |x: Tensor<B, 5>, t: f32| -> Tensor<B, 5> {
            if !self.guided() {
                return denoiser(x, &[t]);
            }
            let out = denoiser(Tensor::cat(vec![x.clone(), x.clone(), x], 0), &[t; 3]);
            let mut parts = out.chunk(3, 0);
            let full = parts.pop().expect("3 parts");
            let labels_only = parts.pop().expect("3 parts");
            let uncond = parts.pop().expect("3 parts");
            guide(uncond, labels_only, full, self.guidance)
        };
        let heun = self.solver == Solver::Heun && self.scheduler.supports_heun();
        let ts = self.scheduler.timesteps(self.steps);
        for (i, w) in ts.windows(2).enumerate() {
            let (t, t_next) = (w[0], w[1]);
            let v = predict(x.clone(), t);
            x = if heun && t_next > 0.0 {
                let x_e = self.scheduler.step(x.clone(), v.clone(), t, t_next);
                let v2 = predict(x_e, t_next);
                self.scheduler.step(x, (v + v2).mul_scalar(0.5), t, t_next)
            } else {
                self.scheduler.step(x, v, t, t_next)
            };
            progress(i + 1, self.steps);
        }
        x
    }
}

/// Classifier-free guidance with separate scales for labels and text (MAISI/InstructPix2Pix
/// style): `u + s_l·(l − u) + s_t·(f − l)` where `u` is unconditional, `l` label-only and `f`
/// label + text. With both scales 1 this is exactly `f`.
pub fn guide<B: Backend>(
    uncond: Tensor<B, 5>,
    labels_only: Tensor<B, 5>,
    full: Tensor<B, 5>,
    g: Guidance,
) -> Tensor<B, 5> {
    uncond.clone()
        + (labels_only.clone() - uncond).mul_scalar(g.labels)
        + (full - labels_only).mul_scalar(g.text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::{RectifiedFlow, SchedulerConfig};
    use crate::Cpu;

    fn max_abs(a: Tensor<Cpu, 5>, b: Tensor<Cpu, 5>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    #[test]
    fn guidance_with_unit_scales_is_the_conditional_prediction() {
        let dev = Default::default();
        let r = |seed| crate::model::normal_tensor::<Cpu, 5>([1, 4, 3, 3, 3], seed, &dev);
        let (u, l, f) = (r(3), r(4), r(5));
        let g = |labels, text| Guidance { text, labels };
        assert!(
            max_abs(
                guide(u.clone(), l.clone(), f.clone(), g(1.0, 1.0)),
                f.clone()
            ) < 1e-6
        );
        // Scale 0 on text gives the label-only prediction.
        assert!(max_abs(guide(u, l.clone(), f, g(1.0, 0.0)), l) < 1e-6);
    }

    /// With the exact velocity of a straight path from x0 to the noise, the Euler sampler
    /// lands on x0 for either scheduler grid; guidance branches that all predict the same
    /// velocity change nothing.
    #[test]
    fn sampling_with_the_exact_velocity_recovers_the_data() {
        let dev = Default::default();
        let x0 = crate::model::normal_tensor::<Cpu, 5>([1, 2, 2, 2, 2], 7, &dev);
        let eps = crate::model::normal_tensor::<Cpu, 5>([1, 2, 2, 2, 2], 8, &dev);
        let v = eps.clone() - x0.clone();
        for guidance in [
            Guidance {
                text: 1.0,
                labels: 1.0,
            },
            Guidance::DEFAULT,
        ] {
            let s = Sampler::new(RectifiedFlow)
                .with_guidance(guidance)
                .with_steps(7);
            let mut calls = 0;
            let out = s.run(
                eps.clone(),
                |x, t| {
                    assert_eq!(x.dims()[0], t.len());
                    Tensor::cat(vec![v.clone(); t.len()], 0)
                },
                |_, _| calls += 1,
            );
            assert_eq!(calls, 7);
            assert!(max_abs(out, x0.clone()) < 1e-5);
        }
        // Heun falls back to Euler where the scheduler is not an ODE.
        let s = Sampler::new(SchedulerConfig::ddpm_default().build()).with_solver(Solver::Heun);
        assert!(!s.scheduler.supports_heun());
    }
}
