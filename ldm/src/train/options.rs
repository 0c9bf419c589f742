//! The training options (`training:` in a training config) and their checks.

use serde::{Deserialize, Serialize};

use super::Axis;
use crate::model::GRID_MULTIPLE;
use crate::LdmError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainOptions {
    pub seed: u64,
    /// Object crop `[x, y, z]` for the autoencoder (multiples of 16).
    pub ae_crop: [usize; 3],
    pub ae_batch: usize,
    pub ae_steps: usize,
    pub ae_lr: f64,
    pub kl_weight: f64,
    /// Weight of the L1 loss on finite differences (keeps edges sharp).
    pub grad_weight: f64,
    /// Latent crop `[x, y, z]` for the denoiser (multiples of 4; the whole latent if larger).
    pub dm_crop: [usize; 3],
    pub dm_batch: usize,
    pub dm_steps: usize,
    pub dm_lr: f64,
    /// Probability of dropping the prompt / the labels of a training item (for guidance).
    pub drop_text: f64,
    pub drop_labels: f64,
    /// Share of denoiser crops centred on a labelled organ (the rest are uniform).
    pub organ_crops: f64,
    pub checkpoint_every: usize,
    /// Autoencoder augmentation: each crop, object and labels together, is mirrored along
    /// each of these axes (`x`, `y`, `z`) with probability ½. Off by default: with its labels
    /// mirrored alike a flipped crop is still consistent, but a mirrored body (liver on the
    /// left) is not an anatomy the model should learn to draw. Texture, which is what the
    /// autoencoder learns, has no side, so flips are offered for the autoencoder stage only;
    /// the denoiser, which learns where organs lie, never sees them.
    pub ae_flip: Vec<Axis>,
    /// Autoencoder augmentation: each crop's normalised values are multiplied, per channel,
    /// by 1 + U(−a, a) with this `a` (in [0, 1); 0, the default, is off), so the autoencoder
    /// also reconstructs scans a little brighter or darker than its data's.
    pub ae_gain_jitter: f64,
    /// Autoencoder augmentation: then shifted, per channel, by U(−b, b) network units with
    /// this `b` (≥ 0; 0, the default, is off).
    pub ae_shift_jitter: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            seed: 0,
            ae_crop: [48, 48, 48],
            ae_batch: 2,
            ae_steps: 400,
            ae_lr: 2e-3,
            kl_weight: 1e-4,
            grad_weight: 0.5,
            dm_crop: [24, 24, 20],
            dm_batch: 4,
            dm_steps: 1500,
            dm_lr: 1e-3,
            drop_text: 0.15,
            drop_labels: 0.15,
            organ_crops: 0.5,
            checkpoint_every: 250,
            ae_flip: Vec::new(),
            ae_gain_jitter: 0.0,
            ae_shift_jitter: 0.0,
        }
    }
}

impl TrainOptions {
    pub fn check(&self) -> Result<(), LdmError> {
        let bad = |m: String| Err(LdmError::Config(format!("training options: {m}")));
        if self
            .ae_crop
            .iter()
            .any(|c| *c == 0 || c % GRID_MULTIPLE != 0)
        {
            return bad(format!(
                "ae_crop {:?} must be positive multiples of {GRID_MULTIPLE}",
                self.ae_crop
            ));
        }
        if self.dm_crop.iter().any(|c| *c == 0 || c % 4 != 0) {
            return bad(format!(
                "dm_crop {:?} must be positive multiples of 4",
                self.dm_crop
            ));
        }
        if self.ae_batch == 0 || self.dm_batch == 0 {
            return bad("batch sizes must be ≥ 1".into());
        }
        if !(0.0..1.0).contains(&self.drop_text) || !(0.0..1.0).contains(&self.drop_labels) {
            return bad("drop probabilities must be in [0, 1)".into());
        }
        if !(0.0..=1.0).contains(&self.organ_crops) {
            return bad("organ_crops must be in [0, 1]".into());
        }
        if !(self.ae_lr > 0.0 && self.dm_lr > 0.0) {
            return bad("learning rates must be > 0".into());
        }
        if let Some(a) = self
            .ae_flip
            .iter()
            .enumerate()
            .find(|(i, a)| self.ae_flip[..*i].contains(a))
            .map(|(_, a)| a)
        {
            return bad(format!("ae_flip names axis {a:?} twice"));
        }
        if !(0.0..1.0).contains(&self.ae_gain_jitter) {
            return bad(format!(
                "ae_gain_jitter {} must be in [0, 1)",
                self.ae_gain_jitter
            ));
        }
        if !(self.ae_shift_jitter >= 0.0 && self.ae_shift_jitter.is_finite()) {
            return bad(format!(
                "ae_shift_jitter {} must be ≥ 0",
                self.ae_shift_jitter
            ));
        }
        Ok(())
    }
}
