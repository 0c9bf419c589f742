//! Scoring one trained network on the real scan's held-out slices, in 3D: the held-out
//! slices keep their places in the volume and every other slice is masked out of both maps
//! (so surfaces at the edge of a held-out block are surfaces, as at a scan's ends).

use serde::{Deserialize, Serialize};

use crate::classes::{CLASSES, LESION, N_CLASSES};
use crate::metrics::{detection, dice, hd95, Stack};
use crate::slices::{Canvas, Slice};

/// Neither prediction nor truth: slices outside the scored set.
const MASKED: u8 = u8::MAX;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrganScore {
    pub organ: String,
    /// None where the organ is in neither map.
    pub dice: Option<f64>,
    /// mm; None where either map lacks the organ.
    pub hd95_mm: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scores {
    pub organs: Vec<OrganScore>,
    pub lesions_true: u32,
    pub lesions_found: u32,
    /// Predicted lesion components touching no true lesion, on the scored slices.
    pub lesion_false_positives: u32,
}

/// Scores `pred` (one plane per slice of `test`, same order) against the slices' classes,
/// with the test slices at their index `k` in a stack of `nz` slices `dz_mm` apart.
pub fn score(pred: &[Vec<u8>], test: &[&Slice], nz: usize, dz_mm: f64, c: Canvas) -> Scores {
    let plane = c.nx * c.ny;
    let mut p = vec![MASKED; plane * nz];
    let mut t = vec![MASKED; plane * nz];
    for (y, s) in pred.iter().zip(test) {
        p[s.k * plane..(s.k + 1) * plane].copy_from_slice(y);
        t[s.k * plane..(s.k + 1) * plane].copy_from_slice(&s.y);
    }
    let dims = [c.nx, c.ny, nz];
    let spacing_mm = [c.spacing_mm, c.spacing_mm, dz_mm];
    let sp = Stack {
        data: &p,
        dims,
        spacing_mm,
    };
    let st = Stack {
        data: &t,
        dims,
        spacing_mm,
    };
    let organs = (1..N_CLASSES as u8)
        .filter(|&k| k != LESION)
        .map(|k| OrganScore {
            organ: CLASSES[k as usize].to_string(),
            dice: dice(&sp, &st, k),
            hd95_mm: hd95(&sp, &st, k),
        })
        .collect();
    let (lesions_true, lesions_found, lesion_false_positives) = detection(&sp, &st, LESION);
    Scores {
        organs,
        lesions_true,
        lesions_found,
        lesion_false_positives,
    }
}

/// The real scan's slices split into interleaved blocks of `block` slices: even blocks
/// train, odd blocks score, and the first and last slice of every block belong to neither,
/// so no training slice is adjacent to a scored one.
pub fn split(slices: &[Slice], block: usize) -> (Vec<&Slice>, Vec<&Slice>) {
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for s in slices {
        let (b, r) = (s.k / block, s.k % block);
        if r == 0 || r + 1 == block {
            continue;
        }
        if b % 2 == 0 {
            train.push(s);
        } else {
            test.push(s);
        }
    }
    (train, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_never_shares_or_touches_slices() {
        let c = Canvas::default();
        let slices: Vec<Slice> = (0..100)
            .map(|k| Slice {
                x: vec![],
                y: vec![0; c.nx * c.ny],
                source: 0,
                k,
            })
            .collect();
        let (train, test) = split(&slices, 16);
        assert!(!train.is_empty() && !test.is_empty());
        for a in &train {
            for b in &test {
                assert!(a.k.abs_diff(b.k) >= 2, "{} next to {}", a.k, b.k);
            }
        }
    }

    /// A perfect prediction scores Dice 1 and HD95 0 on the organs present, None elsewhere.
    #[test]
    fn perfect_prediction_scores_perfectly() {
        let c = Canvas::default();
        let mut y = vec![0u8; c.nx * c.ny];
        for v in 30..50 {
            for u in 40..60 {
                y[v * c.nx + u] = 1;
            }
        }
        let s: Vec<Slice> = (3..8)
            .map(|k| Slice {
                x: vec![],
                y: y.clone(),
                source: 0,
                k,
            })
            .collect();
        let refs: Vec<&Slice> = s.iter().collect();
        let pred: Vec<Vec<u8>> = s.iter().map(|s| s.y.clone()).collect();
        let sc = score(&pred, &refs, 10, 3.0, c);
        assert_eq!(sc.organs[0].dice, Some(1.0));
        assert_eq!(sc.organs[0].hd95_mm, Some(0.0));
        assert_eq!(sc.organs[1].dice, None);
        assert_eq!(sc.lesion_false_positives, 0);
    }
}
