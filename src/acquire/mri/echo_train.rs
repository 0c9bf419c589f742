//! Echo trains that fill k-space over time: a fast spin echo reads each band of phase lines
//! at its own echo (T2 filters k-space), a single-shot EPI reads every line one echo spacing
//! after the last (T2* or, around a spin echo, T2 and T2′ filter k-space; off-resonance
//! accrues phase line by line and so displaces along the phase axis).
//!
//! The k-space of a voxel's signal is weighted per line by a(tₙ, θ)/a(TE, θ), its decay at
//! the line's time over the decay at TE (where the signal equations give the signal), with
//! θ the voxel's relaxation rates. Rather than one transform per line, the decay is split
//! into a few separable terms, a(tₙ, θ) ≈ Σⱼ Uₙⱼ Cⱼ(θ), from the eigenvectors of
//! Σ_θ a(·, θ) a(·, θ)ᵀ over a log-spaced grid of the rates the object holds: each term j is
//! one object image S·Cⱼ(θ)/a(TE, θ), transformed once, whose k-space lines are weighted by
//! Uₙⱼ. The rank is chosen so the dropped eigenvalues hold less than 10⁻⁹ of the total (an
//! RMS decay error near 3·10⁻⁵ of the excitation's signal).

use nalgebra::{DMatrix, SymmetricEigen};

use super::kspace::ky_of;
use super::protocol::{MriProtocol, Sequence};

/// How the signal decays away from TE along the train.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decay {
    /// Refocused echoes (fast spin echo): e^{−t/T2}.
    T2,
    /// Gradient echoes (GRE-EPI): e^{−t/T2*}.
    T2Star,
    /// Gradient echoes around a spin echo at TE (SE-EPI, DWI): e^{−t/T2 − |t − TE|/T2′}.
    T2AndT2Prime,
}

/// When each phase line is read.
#[derive(Clone, Debug)]
pub struct EchoTrain {
    /// Time of each phase line (DFT order) after the excitation, ms; lines not acquired
    /// hold TE.
    pub t_ms: Vec<f64>,
    pub te_ms: f64,
    pub decay: Decay,
    /// EPI: the lines read with the readout gradient reversed (odd echoes).
    pub odd: Vec<bool>,
    /// EPI: time per unit step of ky, ms (echo spacing / acceleration): off-resonance Δf
    /// displaces along the phase axis by Δf·this·N_phase pixels.
    pub ms_per_ky: Option<f64>,
}

impl EchoTrain {
    /// The protocol's train over the acquired lines of `mask` (DFT order), or `None` when
    /// every line is read at TE (one echo per excitation).
    pub fn new(p: &MriProtocol, mask: &[bool]) -> Option<EchoTrain> {
        let n = mask.len();
        let esp = p.echo_spacing_ms();
        // Acquired lines in ky order.
        let mut acq: Vec<usize> = (0..n).filter(|&l| mask[l]).collect();
        acq.sort_by_key(|&l| ky_of(l, n));
        let mut t_ms = vec![p.te_ms; n];
        let mut odd = vec![false; n];
        if p.epi {
            // One shot, lines in ky order; the line at (or just above) ky = 0 is read at TE.
            let i0 = acq.iter().position(|&l| ky_of(l, n) >= 0).unwrap_or(0);
            for (i, &l) in acq.iter().enumerate() {
                t_ms[l] = p.te_ms + (i as f64 - i0 as f64) * esp;
                odd[l] = (i + i0) % 2 == 1;
            }
            let span = ky_of(*acq.last()?, n) - ky_of(acq[0], n);
            let ms_per_ky = (span > 0).then(|| esp * (acq.len() - 1) as f64 / span as f64);
            let decay = if p.sequence == Sequence::SpoiledGre {
                Decay::T2Star
            } else {
                Decay::T2AndT2Prime
            };
            return Some(EchoTrain {
                t_ms,
                te_ms: p.te_ms,
                decay,
                odd,
                ms_per_ky,
            });
        }
        if !p.is_fast_spin_echo() {
            return None;
        }
        // Fast spin echo: the acquired lines in `etl` bands along ky, band b read at echo e(b);
        // the band holding ky = 0 at the echo at TE, and the further a band from it, the
        // further its echo from TE (linear ordering when TE is mid-train, centric when it is
        // the first echo).
        let etl = p.etl.min(acq.len().max(1));
        let band = |i: usize| i * etl / acq.len();
        let centre = band(acq.iter().position(|&l| ky_of(l, n) >= 0).unwrap_or(0));
        let e_te = ((p.te_ms / esp).round() as usize).clamp(1, etl);
        let mut bands: Vec<usize> = (0..etl).collect();
        bands.sort_by_key(|&b| (b.abs_diff(centre), b));
        let mut echoes: Vec<usize> = (1..=etl).collect();
        echoes.sort_by_key(|&e| (e.abs_diff(e_te), e));
        let mut echo_of_band = vec![0; etl];
        for (&b, &e) in bands.iter().zip(&echoes) {
            echo_of_band[b] = e;
        }
        for (i, &l) in acq.iter().enumerate() {
            t_ms[l] = echo_of_band[band(i)] as f64 * esp;
        }
        Some(EchoTrain {
            t_ms,
            te_ms: p.te_ms,
            decay: Decay::T2,
            odd,
            ms_per_ky: None,
        })
    }

    /// The voxel's rates θ = (θ₁, θ₂) in 1/ms for this decay, from T2 and T2* in ms
    /// (both at least 1 ms: shorter tissues hold no signal at any echo).
    pub fn rates(&self, t2_ms: f64, t2star_ms: f64) -> [f64; 2] {
        let r2 = 1.0 / t2_ms.max(1.0);
        let r2s = 1.0 / t2star_ms.max(1.0);
        match self.decay {
            Decay::T2 => [r2, 0.0],
            Decay::T2Star => [r2s, 0.0],
            Decay::T2AndT2Prime => [r2, (r2s - r2).max(0.0)],
        }
    }

    /// The decay from the excitation to time `t` (ms) at rates θ.
    pub fn decay_at(&self, t: f64, th: [f64; 2]) -> f64 {
        (-t * th[0] - (t - self.te_ms).abs() * th[1]).exp()
    }
}

/// A log-spaced grid of one rate, with θ = 0 (no decay of that kind) as its first node.
#[derive(Clone, Debug)]
struct RateAxis {
    ln_lo: f64,
    step: f64,
    /// Nodes after the zero node.
    n: usize,
}

impl RateAxis {
    /// Nodes from `lo` to `hi` with ln-spacing `step`; a single node (0) when `hi` is 0.
    fn new(lo: f64, hi: f64, step: f64) -> RateAxis {
        if hi <= 0.0 {
            return RateAxis {
                ln_lo: 0.0,
                step,
                n: 0,
            };
        }
        let lo = lo.max(2e-5).min(hi);
        let n = ((hi / lo).ln() / step).ceil() as usize + 1;
        RateAxis {
            ln_lo: lo.ln(),
            step,
            n,
        }
    }

    fn len(&self) -> usize {
        self.n + 1
    }

    /// The largest node.
    fn max(&self) -> f64 {
        self.node(self.n)
    }

    fn node(&self, i: usize) -> f64 {
        if i == 0 {
            0.0
        } else {
            (self.ln_lo + (i - 1) as f64 * self.step).exp()
        }
    }

    /// The two nodes around θ and the weight of the upper one (linear in θ below the first
    /// log node, linear in ln θ above it).
    fn locate(&self, th: f64) -> (usize, usize, f64) {
        if self.n == 0 {
            return (0, 0, 0.0);
        }
        let first = self.ln_lo.exp();
        if th <= first {
            return (0, 1, (th / first).max(0.0));
        }
        let u = ((th.ln() - self.ln_lo) / self.step).min((self.n - 1) as f64);
        let i = (u.floor() as usize).min(self.n.saturating_sub(2));
        (i + 1, (i + 2).min(self.n), u - i as f64)
    }
}

/// The separable split of a train's decay: `rank` line-weight vectors and a table of the
/// matching per-voxel coefficients over the rate grid.
#[derive(Clone, Debug)]
pub struct TrainBasis {
    pub train: EchoTrain,
    /// Uₙⱼ per term j, per phase line (DFT order).
    pub line_weights: Vec<Vec<f32>>,
    axes: [RateAxis; 2],
    /// Cⱼ at each grid node (θ₁ index major, then θ₂), `rank` values per node.
    table: Vec<f64>,
    /// Worst |Σⱼ Uₙⱼ Cⱼ(θ) − a(tₙ, θ)| over the grid nodes.
    pub max_error: f64,
}

impl TrainBasis {
    /// The basis for rates up to `max_rates` (1/ms) and down to `min_rates` (the range of the
    /// object's signal-bearing voxels; a zero bound is the zero node). Faster rates are
    /// treated as `max_rates`.
    pub fn new(train: EchoTrain, min_rates: [f64; 2], max_rates: [f64; 2]) -> TrainBasis {
        let axes = [
            RateAxis::new(min_rates[0], max_rates[0], 0.02),
            RateAxis::new(min_rates[1], max_rates[1], 0.03),
        ];
        // Distinct line times: lines read at the same time share a row.
        let mut times: Vec<f64> = train.t_ms.clone();
        times.sort_by(f64::total_cmp);
        times.dedup();
        let nt = times.len();
        let nodes: Vec<[f64; 2]> = (0..axes[0].len())
            .flat_map(|i| (0..axes[1].len()).map(move |k| (i, k)))
            .map(|(i, k)| [axes[0].node(i), axes[1].node(k)])
            .collect();
        let cols: Vec<Vec<f64>> = nodes
            .iter()
            .map(|&th| times.iter().map(|&t| train.decay_at(t, th)).collect())
            .collect();
        let mut gram = DMatrix::<f64>::zeros(nt, nt);
        for c in &cols {
            for a in 0..nt {
                for b in a..nt {
                    gram[(a, b)] += c[a] * c[b];
                }
            }
        }
        for a in 0..nt {
            for b in 0..a {
                gram[(a, b)] = gram[(b, a)];
            }
        }
        let eig = SymmetricEigen::new(gram);
        let mut order: Vec<usize> = (0..nt).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        let total: f64 = eig.eigenvalues.iter().map(|v| v.max(0.0)).sum();
        let mut kept = 0.0;
        let mut rank = 0;
        for &j in &order {
            if rank > 0 && total - kept <= 1e-9 * total {
                break;
            }
            kept += eig.eigenvalues[j].max(0.0);
            rank += 1;
        }
        let u: Vec<Vec<f64>> = order[..rank]
            .iter()
            .map(|&j| eig.eigenvectors.column(j).iter().copied().collect())
            .collect();
        let mut table = Vec::with_capacity(nodes.len() * rank);
        let mut max_error = 0.0f64;
        for c in &cols {
            let coef: Vec<f64> = u
                .iter()
                .map(|uj| uj.iter().zip(c).map(|(a, b)| a * b).sum())
                .collect();
            for (t, &want) in c.iter().enumerate() {
                let got: f64 = u.iter().zip(&coef).map(|(uj, cj)| uj[t] * cj).sum();
                max_error = max_error.max((got - want).abs());
            }
            table.extend(coef);
        }
        let row_of = |t: f64| times.partition_point(|&x| x < t);
        let line_weights = u
            .iter()
            .map(|uj| train.t_ms.iter().map(|&t| uj[row_of(t)] as f32).collect())
            .collect();
        TrainBasis {
            train,
            line_weights,
            axes,
            table,
            max_error,
        }
    }

    pub fn rank(&self) -> usize {
        self.line_weights.len()
    }

    /// Writes Cⱼ(θ)/a(TE, θ) for a voxel of T2, T2* (ms): the factor that turns its signal at
    /// TE into term j's object value.
    pub fn coefficients(&self, t2_ms: f64, t2star_ms: f64, out: &mut [f64]) {
        // Rates beyond the grid (tissues the basis left out for holding almost no signal at
        // TE) take the grid's fastest decay, keeping their signal at TE.
        let r = self.train.rates(t2_ms, t2star_ms);
        let th = [0, 1].map(|a| r[a].min(self.axes[a].max()));
        let (a0, a1, fa) = self.axes[0].locate(th[0]);
        let (b0, b1, fb) = self.axes[1].locate(th[1]);
        let r = self.rank();
        let m = self.axes[1].len();
        let at = |i: usize, k: usize, j: usize| self.table[(i * m + k) * r + j];
        let norm = 1.0 / self.train.decay_at(self.train.te_ms, th);
        for (j, o) in out.iter_mut().enumerate().take(r) {
            let lo = at(a0, b0, j) * (1.0 - fb) + at(a0, b1, j) * fb;
            let hi = at(a1, b0, j) * (1.0 - fb) + at(a1, b1, j) * fb;
            *o = (lo * (1.0 - fa) + hi * fa) * norm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acquire::mri::kspace::sampling_mask;

    fn fse() -> MriProtocol {
        MriProtocol {
            etl: 16,
            te_ms: 72.0,
            tr_ms: 4000.0,
            matrix: [128, 128],
            ..MriProtocol::default_for(Sequence::SpinEcho, 3.0)
        }
    }

    #[test]
    fn fse_reads_the_centre_at_te_and_orders_bands_by_echo() {
        let p = fse();
        let esp = p.echo_spacing_ms();
        assert!((p.te_ms / esp - (p.te_ms / esp).round()).abs() < 1e-9);
        let mask = vec![true; 128];
        let tr = EchoTrain::new(&p, &mask).unwrap();
        let at = |ky: i64| tr.t_ms[ky.rem_euclid(128) as usize];
        assert!((at(0) - p.te_ms).abs() < 1e-9);
        // TE (echo 9 of 16) at the band holding ky = 0 (band 8 of 0..15): linear ordering,
        // time rising monotonically with ky from the first echo to the last.
        assert_eq!(esp, 8.0);
        for ky in -64..63 {
            assert!(at(ky + 1) >= at(ky), "ky {ky}");
        }
        assert!((at(-64) - esp).abs() < 1e-9 && (at(63) - 16.0 * esp).abs() < 1e-9);
        // Each echo fills 128 / 16 = 8 lines.
        for e in 1..=16 {
            let n = tr
                .t_ms
                .iter()
                .filter(|&&t| (t - e as f64 * esp).abs() < 1e-9)
                .count();
            assert_eq!(n, 8, "echo {e}");
        }
    }

    #[test]
    fn centric_ordering_when_te_is_the_first_echo() {
        let p = MriProtocol {
            te_ms: 10.0,
            echo_spacing_ms: Some(10.0),
            ..fse()
        };
        let tr = EchoTrain::new(&p, &[true; 128]).unwrap();
        let at = |ky: i64| tr.t_ms[ky.rem_euclid(128) as usize];
        assert_eq!(at(0), 10.0);
        // Time grows with |ky|: the outermost lines are read last.
        assert!(at(-64).max(at(63)) == 160.0 && at(-64).min(at(63)) >= 150.0);
        for ky in 1..60 {
            assert!(at(ky + 4) >= at(ky) && at(-ky - 4) >= at(-ky));
        }
    }

    #[test]
    fn epi_reads_lines_one_spacing_apart_with_te_at_the_centre() {
        let p = MriProtocol {
            epi: true,
            bandwidth_hz_per_px: 1500.0,
            matrix: [96, 96],
            partial_fourier: 0.75,
            ..MriProtocol::default_for(Sequence::Dwi, 3.0)
        };
        let mask = sampling_mask(96, 0.75, None, 0);
        let tr = EchoTrain::new(&p, &mask).unwrap();
        let esp = p.echo_spacing_ms();
        let at = |ky: i64| tr.t_ms[ky.rem_euclid(96) as usize];
        assert!((at(0) - p.te_ms).abs() < 1e-9);
        assert!((at(5) - at(4) - esp).abs() < 1e-9);
        assert_eq!(p.epi_lines_before_centre(), 24);
        assert!((at(-24) - (p.te_ms - 24.0 * esp)).abs() < 1e-9);
        assert!((tr.ms_per_ky.unwrap() - esp).abs() < 1e-9);
        assert!(tr.odd[1] != tr.odd[2]);
    }

    /// The split reproduces e^{−t/T2} at every line for rates between the grid's nodes.
    #[test]
    fn basis_reproduces_the_decay_between_nodes() {
        for p in [
            fse(),
            MriProtocol {
                epi: true,
                bandwidth_hz_per_px: 1500.0,
                matrix: [128, 128],
                ..MriProtocol::default_for(Sequence::Dwi, 3.0)
            },
        ] {
            let mask = vec![true; 128];
            let train = EchoTrain::new(&p, &mask).unwrap();
            let b = TrainBasis::new(train.clone(), [1.0 / 3000.0, 0.0], [1.0 / 20.0, 1.0 / 15.0]);
            let mut c = vec![0.0; b.rank()];
            let mut worst = 0.0f64;
            for (t2, t2s) in [
                (23.7, 19.1),
                (61.3, 40.2),
                (99.0, 55.5),
                (777.0, 91.0),
                (2900.0, 2900.0),
            ] {
                b.coefficients(t2, t2s, &mut c);
                let th = train.rates(t2, t2s);
                let a_te = train.decay_at(p.te_ms, th);
                for l in 0..128 {
                    let want = train.decay_at(train.t_ms[l], th) / a_te;
                    let got: f64 = (0..b.rank())
                        .map(|j| b.line_weights[j][l] as f64 * c[j])
                        .sum();
                    // Relative to the excitation's signal: |got − want|·a(TE).
                    worst = worst.max((got - want).abs() * a_te);
                }
            }
            eprintln!(
                "{:?}: rank {}, node error {:.1e}, worst off-node error {worst:.1e}",
                train.decay,
                b.rank(),
                b.max_error
            );
            assert!(worst < 2e-4, "{worst}");
            assert!(b.rank() <= 16);
        }
    }
}
