//! Augmentation of the autoencoder's crops: mirroring (object and labels together) and an
//! intensity gain and shift. Nothing is drawn when it is off, and what is drawn comes after
//! the step's other draws, so a run without augmentation is the run from before it existed.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::TrainOptions;

/// An axis of the object grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Axis {
    X,
    Y,
    Z,
}

impl Axis {
    fn index(self) -> usize {
        self as usize
    }
}

/// Augments a batch in place: `xs` normalised crops (`batch × ch × z × y × x`), `ls` their
/// labels (`batch × z × y × x`), all of size `opts.ae_crop`.
pub(super) fn batch(
    rng: &mut ChaCha8Rng,
    opts: &TrainOptions,
    xs: &mut [f32],
    ls: &mut [i64],
    ch: usize,
) {
    let size = opts.ae_crop;
    let per: usize = size.iter().product();
    for b in 0..opts.ae_batch {
        let mut flip = [false; 3];
        for a in &opts.ae_flip {
            flip[a.index()] = rng.random_bool(0.5);
        }
        let x = &mut xs[b * ch * per..(b + 1) * ch * per];
        for v in x.chunks_mut(per) {
            mirror(v, size, flip);
        }
        mirror(&mut ls[b * per..(b + 1) * per], size, flip);
        for v in x.chunks_mut(per) {
            let gain = if opts.ae_gain_jitter > 0.0 {
                let a = opts.ae_gain_jitter as f32;
                1.0 + rng.random_range(-a..a)
            } else {
                1.0
            };
            let shift = if opts.ae_shift_jitter > 0.0 {
                let s = opts.ae_shift_jitter as f32;
                rng.random_range(-s..s)
            } else {
                0.0
            };
            if gain != 1.0 || shift != 0.0 {
                for x in v.iter_mut() {
                    *x = *x * gain + shift;
                }
            }
        }
    }
}

/// Mirrors an x-fastest volume of `size` along the axes flagged in `flip`.
fn mirror<T: Copy>(v: &mut [T], size: [usize; 3], flip: [bool; 3]) {
    if !flip.contains(&true) {
        return;
    }
    let src = v.to_vec();
    let [nx, ny, nz] = size;
    let m = |i: usize, n: usize, f: bool| if f { n - 1 - i } else { i };
    for z in 0..nz {
        for y in 0..ny {
            let row = (m(z, nz, flip[2]) * ny + m(y, ny, flip[1])) * nx;
            for x in 0..nx {
                v[(z * ny + y) * nx + x] = src[row + m(x, nx, flip[0])];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Every mirrored crop keeps each voxel's object value beside its own label, and over a
    /// few draws each flagged axis is mirrored and the other is not.
    #[test]
    fn flips_move_object_and_labels_together() {
        let size = [4, 3, 2];
        let per = 24;
        let opts = TrainOptions {
            ae_crop: size,
            ae_batch: 8,
            ae_flip: vec![Axis::X, Axis::Z],
            ..TrainOptions::default()
        };
        // Voxel v of crop b: label v, object 1000 b + v (two channels: ± that).
        let mut xs = Vec::new();
        let mut ls = Vec::new();
        for b in 0..8 {
            for c in 0..2 {
                let sign = if c == 0 { 1.0 } else { -1.0 };
                xs.extend((0..per).map(|v| sign * (1000 * b + v) as f32));
            }
            ls.extend((0..per).map(|v| v as i64));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        batch(&mut rng, &opts, &mut xs, &mut ls, 2);
        let (mut flipped_x, mut flipped_z) = (0, 0);
        for b in 0..8 {
            let l = &ls[b * per..(b + 1) * per];
            for c in 0..2 {
                let sign = if c == 0 { 1.0 } else { -1.0 };
                let x = &xs[(2 * b + c) * per..(2 * b + c + 1) * per];
                for v in 0..per {
                    assert_eq!(x[v], sign * (1000 * b as i64 + l[v]) as f32, "crop {b}");
                }
            }
            // Label of voxel (0, 0, 0): where the original corner went.
            let src = l[0] as usize;
            let (sx, sy, sz) = (src % 4, (src / 4) % 3, src / 12);
            assert_eq!(sy, 0, "y is never flipped");
            flipped_x += usize::from(sx == 3);
            flipped_z += usize::from(sz == 1);
        }
        assert!(flipped_x > 0 && flipped_x < 8, "{flipped_x}");
        assert!(flipped_z > 0 && flipped_z < 8, "{flipped_z}");
    }

    #[test]
    fn off_draws_nothing_and_changes_nothing() {
        let opts = TrainOptions {
            ae_crop: [4, 4, 4],
            ae_batch: 2,
            ..TrainOptions::default()
        };
        let mut xs: Vec<f32> = (0..128).map(|v| v as f32 * 0.1).collect();
        let mut ls: Vec<i64> = (0..128).collect();
        let (x0, l0) = (xs.clone(), ls.clone());
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        batch(&mut rng, &opts, &mut xs, &mut ls, 1);
        assert_eq!((xs, ls), (x0, l0));
        let mut fresh = ChaCha8Rng::seed_from_u64(7);
        assert_eq!(rng.random::<u64>(), fresh.random::<u64>());
    }

    #[test]
    fn jitter_scales_and_shifts_within_bounds() {
        let opts = TrainOptions {
            ae_crop: [4, 4, 4],
            ae_batch: 1,
            ae_gain_jitter: 0.2,
            ae_shift_jitter: 0.05,
            ..TrainOptions::default()
        };
        let mut xs = vec![1.0f32; 64];
        xs.extend(vec![0.0f32; 64]);
        let mut ls = vec![0i64; 64];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        batch(&mut rng, &opts, &mut xs, &mut ls, 2);
        // Channel 1 is 0 everywhere: only its shift shows; channel 0 shows gain + shift.
        let shift = xs[64];
        assert!(shift.abs() < 0.05 && xs[64..].iter().all(|&v| v == shift));
        assert!((xs[0] - 1.0).abs() < 0.25 && xs[0] != 1.0 && xs[..64].iter().all(|&v| v == xs[0]));
    }
}
