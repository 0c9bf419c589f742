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

use crate::hu_histogram::ClassHistogram;

/// Robust SDs above its class's median a focal voxel lies: far past a Gaussian's reach
/// (p ≈ 1e-9) and past the heavy tail of organ texture (`ct-abdomen`'s liver and spleen have
/// no voxel there at all).
pub const FOCAL_SDS: f64 = 6.0;

/// HU a focal voxel exceeds in any case: the calcium threshold of coronary calcium scoring
/// (Agatston et al. 1990, J Am Coll Cardiol 15:827), the accepted floor of a calcification on
/// CT.
pub const CALCIUM_HU: f32 = 130.0;

/// Per class, the HU above which its voxels are focal findings, for the classes
/// `parenchyma` marks (None for the others and for classes without voxels).
pub fn ceilings(hist: &ClassHistogram, parenchyma: &[bool]) -> Vec<Option<f32>> {
    (0..hist.classes())
        .map(|c| {
            if !parenchyma.get(c).copied().unwrap_or(false) {
                return None;
            }
            let (q1, med, q3) = (
                hist.quantile(c, 0.25)?,
                hist.quantile(c, 0.5)?,
                hist.quantile(c, 0.75)?,
            );
            let robust_sd = f64::from(q3 - q1) / 1.349;
            Some(((f64::from(med) + FOCAL_SDS * robust_sd) as f32).max(CALCIUM_HU))
        })
        .collect()
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
        let ceil = ceilings(&h, &[false, true, true, false, true]);
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
            ceilings(&ClassHistogram::new(2), &[true, true]),
            vec![None, None]
        );
    }
}
