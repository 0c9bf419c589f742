//! The model's own random stream, shared by sampling and the stochastic detail.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Standard-normal draws from a seeded ChaCha stream: the same seed gives the same noise
/// on every backend and thread count.
pub fn normal_noise(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
}
