//! Focal hyperdense findings in the training CT of a solid organ or a muscle — a kidney
//! stone, a calcified granuloma, a gallstone, an implant's streak across a muscle — left out
//! of the stochastic detail ([`crate::texture`]).
//!
//! Why: the stochastic detail draws each class's residual as one distribution, placed voxel
//! by voxel with a correlation length of a voxel or two. A focal finding is a few dozen
//! voxels in one place; counted into its class's distribution it comes back as bright specks
//! scattered over every sample of that class. `ct-abdomen`'s training left kidney holds a
//! stone (29 voxels of 200–1100 HU in a kidney that reads 12–18 HU): every sampled left kidney
//! got 59–70 voxels above 150 HU. A stone is a finding, which a pipeline asks for as a
//! condition, not what a kidney looks like.
//!
//! The rule: a voxel of a parenchymal class (the caller says which — solid organs, glands,
//! muscle; never bone, cartilage, lung, fat, gas, blood or bowel, whose bright voxels are
//! cortex, calcifying cartilage, vessels, contrast and content) is focal where its HU lies
//! above both its class's median + [`FOCAL_SDS`] robust SDs (IQR / 1.349) and
//! [`CALCIUM_HU`]. The spread term keeps enhancement out (a kidney cortex at 150–200 HU in a
//! nephrographic phase raises its class's median and spread alike), the calcium floor keeps
//! noise out in a class whose spread is small.

use crate::model::LdmConfig;
use crate::train::CaseSource;
use crate::LdmError;

/// Robust SDs above its class's median a focal voxel lies: far past a Gaussian's reach
/// (p ≈ 1e-9) and past the heavy tail of organ texture (`ct-abdomen`'s liver and spleen have
/// no voxel there at all).
pub const FOCAL_SDS: f64 = 6.0;

/// HU a focal voxel exceeds in any case: the calcium threshold of coronary calcium scoring
/// (Agatston et al. 1990, J Am Coll Cardiol 15:827), the accepted floor of a calcification on
/// CT.
pub const CALCIUM_HU: f32 = 130.0;

/// HU range of the histograms: the 12-bit CT scale, 1 HU bins (values outside clamp).
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

    /// `hu`: one case's HU channel; `classes` its class map (same length).
    pub fn add(&mut self, hu: &[f32], classes: &[u8]) {
        for (&v, &c) in hu.iter().zip(classes) {
            if let Some(h) = self.bins.get_mut(usize::from(c)) {
                let b = ((v - HU_LO).floor().max(0.0) as usize).min(HU_BINS - 1);
                h[b] += 1;
            }
        }
    }

    /// The `p`-quantile (bin centre, HU) of class `c`; None without voxels.
    fn quantile(&self, c: usize, p: f64) -> Option<f32> {
        let h = &self.bins[c];
        let total: u64 = h.iter().sum();
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

    /// Per class, the HU above which its voxels are focal findings, for the classes
    /// `parenchyma` marks (None for the others and for classes without voxels).
    pub fn ceilings(&self, parenchyma: &[bool]) -> Vec<Option<f32>> {
        (0..self.bins.len())
            .map(|c| {
                if !parenchyma.get(c).copied().unwrap_or(false) {
                    return None;
                }
                let (q1, med, q3) = (
                    self.quantile(c, 0.25)?,
                    self.quantile(c, 0.5)?,
                    self.quantile(c, 0.75)?,
                );
                let robust_sd = f64::from(q3 - q1) / 1.349;
                Some(((f64::from(med) + FOCAL_SDS * robust_sd) as f32).max(CALCIUM_HU))
            })
            .collect()
    }
}

/// The focal ceilings ([`ClassHistogram::ceilings`]) of a CT model's labelled training
/// `cases`; all None for an MRI model. Reads each case once.
pub fn focal_ceilings(
    cfg: &LdmConfig,
    cases: &dyn CaseSource,
    parenchyma: &[bool],
) -> Result<Vec<Option<f32>>, LdmError> {
    let Some(ch) = crate::metal::hu_channel(cfg) else {
        return Ok(vec![None; cfg.classes.len()]);
    };
    let mut hist = ClassHistogram::new(cfg.classes.len());
    for i in 0..cases.len() {
        let case = cases.case(i)?;
        let n = case.classes.len();
        hist.add(&case.object[ch * n..(ch + 1) * n], &case.classes);
    }
    Ok(hist.ceilings(parenchyma))
}

/// Whether a voxel of class `class` reading `hu` is focal under `ceilings`.
pub fn is_focal(ceilings: &[Option<f32>], class: u8, hu: f32) -> bool {
    matches!(ceilings.get(usize::from(class)), Some(Some(c)) if hu > *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stone in a kidney is focal; the same kidney enhanced (median and spread raised) is
    /// not, nor a bone class's cortex, nor noise in a smooth organ below the calcium floor.
    #[test]
    fn a_stone_is_focal_and_enhancement_cortex_and_noise_are_not() {
        let mut h = ClassHistogram::new(5);
        let mut hu = Vec::new();
        let mut classes = Vec::new();
        let mut push = |v: f32, c: u8| {
            hu.push(v);
            classes.push(c);
        };
        for i in 0..3000 {
            // 1: an unenhanced kidney, 18 ± ~16 HU, with a 30-voxel stone at 600 HU.
            push(
                if i < 30 {
                    600.0
                } else {
                    18.0 + (i % 41) as f32 - 20.0
                },
                1,
            );
            // 2: a kidney in a nephrographic phase: cortex 180, medulla 90 HU.
            push(if i % 2 == 0 { 180.0 } else { 90.0 }, 2);
            // 3: a vertebra: marrow 180, a quarter cortex at 900 HU (not parenchyma).
            push(if i % 4 == 0 { 900.0 } else { 180.0 }, 3);
            // 4: a smooth organ (spread 2 HU) with noise voxels at 90 HU.
            push(
                if i < 20 {
                    90.0
                } else {
                    40.0 + (i % 5) as f32 - 2.0
                },
                4,
            );
        }
        h.add(&hu, &classes);
        let ceil = h.ceilings(&[false, true, true, false, true]);
        assert_eq!(ceil[0], None, "class 0 is not parenchyma");
        assert_eq!(ceil[3], None, "bone is not parenchyma");
        let count = |c: u8| {
            hu.iter()
                .zip(&classes)
                .filter(|&(&v, &k)| k == c && is_focal(&ceil, k, v))
                .count()
        };
        assert_eq!(
            count(1),
            30,
            "the stone, and only it: ceiling {:?}",
            ceil[1]
        );
        assert_eq!(
            count(2),
            0,
            "enhancement is not focal: ceiling {:?}",
            ceil[2]
        );
        assert_eq!(count(3), 0);
        assert_eq!(
            count(4),
            0,
            "below the calcium floor: ceiling {:?}",
            ceil[4]
        );
        assert_eq!(ceil[4], Some(CALCIUM_HU));
        // An empty class has no ceiling.
        assert_eq!(
            ClassHistogram::new(2).ceilings(&[true, true]),
            vec![None, None]
        );
    }
}
