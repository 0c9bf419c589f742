//! Per-class histograms of a CT model's training voxels (1 HU bins over the 12-bit scale),
//! read once from the labelled training cases: what [`crate::metal`] marks implants by and
//! [`crate::focal`] sets its ceilings from.

use crate::model::LdmConfig;
use crate::train::CaseSource;
use crate::LdmError;

/// Lower end of the histograms' range: the 12-bit CT scale, 1 HU bins (values outside
/// clamp to the end bins).
const HU_LO: f32 = -1024.0;
const HU_BINS: usize = 4096;

/// Per class, a 1 HU histogram of the training voxels' CT numbers.
pub struct ClassHistogram {
    bins: Vec<Vec<u64>>,
}

impl ClassHistogram {
    pub fn new(classes: usize) -> Self {
        Self {
            bins: vec![vec![0; HU_BINS]; classes],
        }
    }

    /// The histograms of a CT model's labelled training `cases` (its `hu` channel); None for
    /// an MRI model. Reads each case once.
    pub fn of_cases(cfg: &LdmConfig, cases: &dyn CaseSource) -> Result<Option<Self>, LdmError> {
        let Some(ch) = cfg.hu_channel() else {
            return Ok(None);
        };
        let mut hist = Self::new(cfg.classes.len());
        for i in 0..cases.len() {
            let case = cases.case(i)?;
            let n = case.classes.len();
            hist.add(&case.object[ch * n..(ch + 1) * n], &case.classes);
        }
        Ok(Some(hist))
    }

    /// `hu`: one case's HU channel; `classes` its class map (same length).
    pub fn add(&mut self, hu: &[f32], classes: &[u8]) {
        for (&v, &c) in hu.iter().zip(classes) {
            if let Some(h) = self.bins.get_mut(usize::from(c)) {
                let b = ((v - HU_LO).floor().max(0.0) as usize).min(HU_BINS - 1);
                h[b] += 1;
            }
        }
    }

    pub fn classes(&self) -> usize {
        self.bins.len()
    }

    /// Voxels of class `c`.
    pub fn voxels(&self, c: usize) -> u64 {
        self.bins[c].iter().sum()
    }

    /// Share of class `c`'s voxels at `hu` or above (to the bin), 0 without voxels.
    pub fn share_at_or_above(&self, c: usize, hu: f32) -> f64 {
        let total = self.voxels(c);
        if total == 0 {
            return 0.0;
        }
        let from = ((hu - HU_LO).ceil().max(0.0) as usize).min(HU_BINS);
        self.bins[c][from..].iter().sum::<u64>() as f64 / total as f64
    }

    /// The `p`-quantile (bin centre, HU) of class `c`; None without voxels.
    pub fn quantile(&self, c: usize, p: f64) -> Option<f32> {
        let h = &self.bins[c];
        let total = self.voxels(c);
        if total == 0 {
            return None;
        }
        let want = (p * total as f64).ceil().max(1.0) as u64;
        let mut below = 0u64;
        for (b, &k) in h.iter().enumerate() {
            below += k;
            if below >= want {
                return Some(HU_LO + b as f32 + 0.5);
            }
        }
        Some(HU_LO + HU_BINS as f32 - 0.5)
    }
}
