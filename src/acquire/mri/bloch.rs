//! A small isochromat Bloch simulator: hard (instantaneous) RF pulses, free precession with
//! T1/T2 relaxation, and spoiling. It is the time-domain reference the steady-state
//! equations in [`super::signal`] are tested against (it shares no code with them).
//!
//! Conventions: M0 along +z; a pulse of flip α and phase φ rotates about (cos φ, sin φ, 0)
//! (Rodrigues); free precession at Δf Hz multiplies Mx + iMy by e^{−i2πΔf t}, matching the
//! phase convention of the signal equations.

use std::f64::consts::PI;

/// A population of isochromats sharing T1, T2 and M0, each with its own off-resonance.
#[derive(Clone, Debug)]
pub struct Isochromats {
    pub m: Vec<[f64; 3]>,
    pub df_hz: Vec<f64>,
    pub t1_ms: f64,
    pub t2_ms: f64,
    pub m0: f64,
}

impl Isochromats {
    /// Isochromats at equilibrium.
    pub fn new(t1_ms: f64, t2_ms: f64, m0: f64, df_hz: Vec<f64>) -> Self {
        let m = vec![[0.0, 0.0, m0]; df_hz.len()];
        Isochromats {
            m,
            df_hz,
            t1_ms,
            t2_ms,
            m0,
        }
    }

    /// `n` isochromats whose off-resonances are quantiles of a Lorentzian of half-width
    /// 1/(2π T2′): their mean decays as e^{−t/T2′}, the reversible part of T2*.
    pub fn lorentzian(t1_ms: f64, t2_ms: f64, t2prime_ms: f64, m0: f64, n: usize) -> Self {
        let hw = 1000.0 / (2.0 * PI * t2prime_ms);
        let df = (0..n)
            .map(|k| hw * (PI * ((k as f64 + 0.5) / n as f64 - 0.5)).tan())
            .collect();
        Self::new(t1_ms, t2_ms, m0, df)
    }

    /// Hard pulse: rotation by `flip` about the transverse axis at angle `phase` from x.
    pub fn pulse(&mut self, flip: f64, phase: f64) {
        let (ux, uy) = (phase.cos(), phase.sin());
        let (s, c) = flip.sin_cos();
        for m in &mut self.m {
            // Rodrigues: v cos θ + (u × v) sin θ + u (u·v)(1 − cos θ), u = (ux, uy, 0).
            let [x, y, z] = *m;
            let dot = ux * x + uy * y;
            let cross = [uy * z, -ux * z, ux * y - uy * x];
            *m = [
                x * c + cross[0] * s + ux * dot * (1.0 - c),
                y * c + cross[1] * s + uy * dot * (1.0 - c),
                z * c + cross[2] * s,
            ];
        }
    }

    /// Free precession and relaxation for `t_ms`.
    pub fn precess(&mut self, t_ms: f64) {
        let e1 = (-t_ms / self.t1_ms).exp();
        let e2 = (-t_ms / self.t2_ms).exp();
        for (m, &df) in self.m.iter_mut().zip(&self.df_hz) {
            let (s, c) = (-2.0 * PI * df * t_ms * 1e-3).sin_cos();
            let (x, y) = (m[0], m[1]);
            m[0] = e2 * (x * c - y * s);
            m[1] = e2 * (x * s + y * c);
            m[2] = self.m0 + (m[2] - self.m0) * e1;
        }
    }

    /// Ideal spoiling: all transverse magnetisation destroyed.
    pub fn spoil(&mut self) {
        for m in &mut self.m {
            m[0] = 0.0;
            m[1] = 0.0;
        }
    }

    /// Gradient spoiling: isochromat j additionally precesses by 2π·cycles·j/n, as across a
    /// voxel under a crusher of `cycles` turns.
    pub fn dephase(&mut self, cycles: f64) {
        let n = self.m.len() as f64;
        for (j, m) in self.m.iter_mut().enumerate() {
            let (s, c) = (2.0 * PI * cycles * j as f64 / n).sin_cos();
            let (x, y) = (m[0], m[1]);
            m[0] = x * c - y * s;
            m[1] = x * s + y * c;
        }
    }

    /// Mean transverse magnetisation (Mx, My).
    pub fn signal(&self) -> (f64, f64) {
        let n = self.m.len() as f64;
        let (x, y) = self
            .m
            .iter()
            .fold((0.0, 0.0), |(a, b), m| (a + m[0], b + m[1]));
        (x / n, y / n)
    }
}

/// Spoiled GRE by time stepping: `n_tr` repetitions of α → TE (record) → TR − TE → ideal
/// spoil; T2* through Lorentzian isochromats. Returns |signal| of the last repetition.
pub fn spoiled_gre(
    t1: f64,
    t2: f64,
    t2prime: f64,
    tr: f64,
    te: f64,
    flip: f64,
    n_tr: usize,
) -> f64 {
    let mut iso = Isochromats::lorentzian(t1, t2, t2prime, 1.0, 4001);
    let mut sig = (0.0, 0.0);
    for _ in 0..n_tr {
        iso.pulse(flip, 0.0);
        iso.precess(te);
        sig = iso.signal();
        iso.precess(tr - te);
        iso.spoil();
    }
    sig.0.hypot(sig.1)
}

/// bSSFP by time stepping one isochromat at `df_hz`: α pulses alternating in phase (0, π),
/// signal at TE of the last repetition.
pub fn bssfp(t1: f64, t2: f64, tr: f64, te: f64, flip: f64, df_hz: f64, n_tr: usize) -> f64 {
    let mut iso = Isochromats::new(t1, t2, 1.0, vec![df_hz]);
    let mut sig = (0.0, 0.0);
    for k in 0..n_tr {
        iso.pulse(flip, if k % 2 == 0 { 0.0 } else { PI });
        iso.precess(te);
        sig = iso.signal();
        iso.precess(tr - te);
    }
    sig.0.hypot(sig.1)
}

/// MPRAGE by time stepping: inversion, delay, `n` spoiled α readouts every `esp` with the
/// centre one at TI, recovery to TR; `n_cycles` repetitions, signal at the centre readout.
#[allow(clippy::too_many_arguments)]
pub fn mprage(
    t1: f64,
    t2: f64,
    tr: f64,
    te: f64,
    ti: f64,
    flip: f64,
    n: usize,
    esp: f64,
    n_cycles: usize,
) -> f64 {
    let mut iso = Isochromats::new(t1, t2, 1.0, vec![0.0]);
    let t0 = ti - (n / 2) as f64 * esp;
    let mut sig = 0.0;
    for _ in 0..n_cycles {
        iso.pulse(PI, 0.0);
        iso.spoil();
        iso.precess(t0);
        for k in 0..n {
            iso.pulse(flip, 0.0);
            if k == n / 2 {
                let mut probe = iso.clone();
                probe.precess(te);
                sig = probe.signal().0.hypot(probe.signal().1);
            }
            iso.spoil();
            iso.precess(if k + 1 < n {
                esp
            } else {
                tr - t0 - (n - 1) as f64 * esp
            });
        }
    }
    sig
}

/// The spin-echo train after an excitation at phase 0: `etl` times (ESP/2, crusher, 180°
/// about y (CPMG), crusher, ESP/2), recording |signal| at each echo. The crushers dephase
/// every pathway but the spin echo across the isochromats.
fn spin_echo_train_readout(iso: &mut Isochromats, esp: f64, etl: usize) -> Vec<f64> {
    iso.pulse(PI / 2.0, 0.0);
    (0..etl)
        .map(|_| {
            iso.precess(0.5 * esp);
            iso.dephase(1.0);
            iso.pulse(PI, PI / 2.0);
            iso.dephase(1.0);
            iso.precess(0.5 * esp);
            let (x, y) = iso.signal();
            x.hypot(y)
        })
        .collect()
}

/// Spin echo by time stepping: `n_tr` repetitions of 90° → TE/2 → 180° → TE/2 (record) →
/// TR − TE → ideal spoil; 64 isochromats spread over one crusher cycle.
pub fn spin_echo(t1: f64, t2: f64, tr: f64, te: f64, n_tr: usize) -> f64 {
    fast_spin_echo(t1, t2, tr, te, 1, None, n_tr)[0]
}

/// Fast spin echo (with `ti`: inversion-recovery FSE, FLAIR, STIR) by time stepping: `n_tr`
/// repetitions of [180° inversion, spoil, TI], 90°, `etl` refocused echoes `esp` apart, the
/// rest of TR, spoil. Returns every echo of the last repetition, signed by Mz before the 90°
/// (as a phase-sensitive reconstruction shows it).
pub fn fast_spin_echo(
    t1: f64,
    t2: f64,
    tr: f64,
    esp: f64,
    etl: usize,
    ti: Option<f64>,
    n_tr: usize,
) -> Vec<f64> {
    let mut iso = Isochromats::new(t1, t2, 1.0, vec![0.0; 64]);
    let mut echoes = Vec::new();
    for _ in 0..n_tr {
        if let Some(ti) = ti {
            iso.pulse(PI, 0.0);
            iso.spoil();
            iso.precess(ti);
        }
        let sign = iso.m[0][2].signum();
        echoes = spin_echo_train_readout(&mut iso, esp, etl);
        echoes.iter_mut().for_each(|e| *e *= sign);
        iso.precess(tr - ti.unwrap_or(0.0) - etl as f64 * esp);
        iso.spoil();
    }
    echoes
}

/// Inversion recovery (IR, FLAIR, STIR) by time stepping with a single spin-echo readout:
/// [`fast_spin_echo`] with one echo at TE.
pub fn inversion_recovery(t1: f64, t2: f64, tr: f64, te: f64, ti: f64, n_tr: usize) -> f64 {
    fast_spin_echo(t1, t2, tr, te, 1, Some(ti), n_tr)[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acquire::mri::signal;
    use crate::tissue::tissue;

    const TISSUES: [&str; 4] = ["grey_matter", "white_matter", "csf", "fat"];
    const FLIPS: [f64; 8] = [5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0];

    /// Repetitions for the slowest tissue (CSF) to reach steady state to < 1e-5.
    fn reps(t1: f64, tr: f64, flip: f64) -> usize {
        (12.0 / (tr / t1 + (1.0 - flip.cos())).min(1.0)).ceil() as usize + 10
    }

    #[test]
    fn spoiled_gre_equation_matches_bloch_within_1_percent() {
        let (tr, te) = (20.0, 4.0);
        let mut worst = 0.0f64;
        for name in TISSUES {
            let r = tissue(name).mri_3t;
            let t2prime = 1.0 / (1.0 / r.t2star_ms - 1.0 / r.t2_ms);
            for f in FLIPS {
                let a = f.to_radians();
                let eq = signal::spoiled_gre(1.0, r.t1_ms, r.t2star_ms, tr, te, a);
                let sim = spoiled_gre(r.t1_ms, r.t2_ms, t2prime, tr, te, a, reps(r.t1_ms, tr, a));
                let err = (sim - eq).abs() / eq;
                worst = worst.max(err);
                assert!(err < 0.01, "{name} {f}°: equation {eq:.5} Bloch {sim:.5}");
            }
        }
        eprintln!(
            "spoiled GRE (TR 20, TE 4): worst |Bloch − Ernst|/Ernst = {:.3} %",
            100.0 * worst
        );
    }

    #[test]
    fn bssfp_equation_matches_bloch_within_1_percent() {
        let (tr, te) = (5.0, 2.5);
        let mut worst = 0.0f64;
        for name in TISSUES {
            let r = tissue(name).mri_3t;
            for df in [0.0, 20.0, 60.0, -90.0] {
                for f in FLIPS {
                    let a = f.to_radians();
                    let (re, im) = signal::bssfp(1.0, r.t1_ms, r.t2_ms, tr, te, a, df);
                    let eq = re.hypot(im);
                    let n = (15.0 * r.t1_ms / tr) as usize;
                    let sim = bssfp(r.t1_ms, r.t2_ms, tr, te, a, df, n);
                    let err = (sim - eq).abs() / eq;
                    worst = worst.max(err);
                    assert!(
                        err < 0.01,
                        "{name} Δf {df} {f}°: equation {eq:.5} Bloch {sim:.5}"
                    );
                }
            }
        }
        eprintln!(
            "bSSFP (TR 5, TE 2.5, Δf 0/20/60/−90 Hz): worst relative error {:.3} %",
            100.0 * worst
        );
    }

    #[test]
    fn mprage_equation_matches_bloch() {
        let (tr, te, ti, n, esp) = (2300.0, 3.0, 900.0, 176, 6.5);
        for name in ["grey_matter", "white_matter", "csf"] {
            let r = tissue(name).mri_3t;
            let a = 9f64.to_radians();
            let eq = signal::mprage(1.0, r.t1_ms, r.t2_ms, tr, te, ti, a, n, esp).abs();
            let sim = mprage(r.t1_ms, r.t2_ms, tr, te, ti, a, n, esp, 20);
            eprintln!("MPRAGE {name}: equation {eq:.5} Bloch {sim:.5}");
            assert!(
                (sim - eq).abs() < 0.01 * eq.max(0.01),
                "{name}: {eq} vs {sim}"
            );
        }
    }

    /// Repetitions for the slowest tissue to reach its steady state (inversion or 90° each TR).
    fn reps_long(t1: f64, tr: f64) -> usize {
        (15.0 * t1 / tr).ceil() as usize + 5
    }

    #[test]
    fn spin_echo_equation_matches_bloch_within_1_percent() {
        let mut worst = 0.0f64;
        for name in TISSUES {
            let r = tissue(name).mri_3t;
            for (tr, te) in [
                (500.0, 15.0),
                (2000.0, 30.0),
                (4000.0, 100.0),
                (300.0, 80.0),
            ] {
                let eq = signal::spin_echo(1.0, r.t1_ms, r.t2_ms, tr, te);
                let sim = spin_echo(r.t1_ms, r.t2_ms, tr, te, reps_long(r.t1_ms, tr));
                let err = (sim - eq).abs() / eq;
                worst = worst.max(err);
                assert!(
                    err < 0.01,
                    "{name} {tr}/{te}: equation {eq:.5} Bloch {sim:.5}"
                );
            }
        }
        eprintln!(
            "spin echo: worst |Bloch − equation|/equation = {:.4} %",
            100.0 * worst
        );
    }

    /// IR, FLAIR and STIR at their presets' timing (1.5 and 3 T; FLAIR and STIR read by fast
    /// spin-echo trains of 16 and 8 echoes): the equation within 1 % of the equilibrium signal
    /// of the Bloch steady state at every echo of the train, and the preset's TI nulls CSF
    /// (FLAIR) and fat (STIR) in the Bloch signal to within 2 % of equilibrium.
    #[test]
    fn inversion_recovery_family_matches_bloch_and_nulls_in_it() {
        use crate::acquire::mri::protocol::{MriProtocol, Sequence};
        let mut worst = 0.0f64;
        for field in [1.5, 3.0] {
            for seq in [Sequence::InversionRecovery, Sequence::Flair, Sequence::Stir] {
                let p = MriProtocol::default_for(seq, field);
                let (tr, te, ti) = (p.tr_ms, p.te_ms, p.ti_ms.unwrap());
                let (esp, etl) = p.refocusing_train();
                for name in TISSUES {
                    let r = tissue(name).relaxation(field);
                    let eq = signal::inversion_recovery_train(
                        1.0, r.t1_ms, r.t2_ms, tr, te, ti, esp, etl,
                    );
                    let sim = fast_spin_echo(
                        r.t1_ms,
                        r.t2_ms,
                        tr,
                        esp,
                        etl,
                        Some(ti),
                        reps_long(r.t1_ms, tr),
                    );
                    for (e, s) in sim.iter().enumerate() {
                        let want = eq * (-((e + 1) as f64 * esp - te) / r.t2_ms).exp();
                        worst = worst.max((s - want).abs());
                        assert!(
                            (s - want).abs() < 0.01,
                            "{seq:?} {field} T {name} echo {}: equation {want:.5} Bloch {s:.5}",
                            e + 1
                        );
                    }
                    let at_te = sim[(te / esp).round() as usize - 1];
                    let nulled = match seq {
                        Sequence::Flair => name == "csf",
                        Sequence::Stir => name == "fat",
                        _ => false,
                    };
                    if nulled {
                        eprintln!(
                            "{seq:?} {field} T (ETL {etl}, ESP {esp:.2}) TI {ti:.0} ms: {name} Bloch signal at TE {at_te:+.5} of equilibrium"
                        );
                        assert!(
                            at_te.abs() < 0.02,
                            "{seq:?} {field} T: {name} not nulled: {at_te}"
                        );
                    }
                }
            }
        }
        eprintln!("IR / FLAIR / STIR: worst |Bloch − equation| = {worst:.5} of equilibrium");
    }

    /// Fast spin echo (ETL 4–16, echo spacings 8–15 ms, TE mid-train and first echo): the
    /// train equation × e^{−(tₙ − TE)/T2} against every echo of the Bloch train within 1 %.
    #[test]
    fn fast_spin_echo_train_matches_bloch_at_every_echo() {
        let mut worst = 0.0f64;
        for name in TISSUES {
            let r = tissue(name).mri_3t;
            for (tr, esp, etl, echo) in [
                (4000.0, 10.0, 16, 9),
                (3000.0, 8.0, 8, 1),
                (600.0, 15.0, 4, 1),
                (5000.0, 12.0, 12, 8),
            ] {
                let te = echo as f64 * esp;
                let eq = signal::spin_echo_train(1.0, r.t1_ms, r.t2_ms, tr, te, esp, etl);
                let sim =
                    fast_spin_echo(r.t1_ms, r.t2_ms, tr, esp, etl, None, reps_long(r.t1_ms, tr));
                for (e, s) in sim.iter().enumerate() {
                    let want = eq * (-((e + 1) as f64 * esp - te) / r.t2_ms).exp();
                    let err = (s - want).abs() / want;
                    worst = worst.max(err);
                    assert!(
                        err < 0.01,
                        "{name} TR {tr} ESP {esp} ETL {etl} echo {}: equation {want:.5} Bloch {s:.5}",
                        e + 1
                    );
                }
            }
        }
        eprintln!(
            "fast spin echo: worst |Bloch − equation|/equation over all echoes = {:.4} %",
            100.0 * worst
        );
    }

    #[test]
    fn pulses_rotate_as_expected() {
        let mut iso = Isochromats::new(1e9, 1e9, 1.0, vec![0.0]);
        iso.pulse(PI / 2.0, 0.0);
        let m = iso.m[0];
        assert!(m[2].abs() < 1e-12 && (m[0].abs() + m[1].abs() - 1.0).abs() < 1e-12);
        iso.pulse(PI, 0.0);
        iso.pulse(PI / 2.0, 0.0);
        assert!((iso.m[0][2] - 1.0).abs() < 1e-12, "{:?}", iso.m[0]);
    }
}
