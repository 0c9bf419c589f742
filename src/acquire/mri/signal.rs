//! Analytic steady-state signal equations, one per sequence family.
//!
//! Signals are the transverse magnetisation at TE relative to the equilibrium M0 of a PD = 1
//! tissue, as complex values (re, im): sequences that refocus off-resonance (spin echo and the
//! inversion-recovery family) are real and may be negative (phase-sensitive sign, the
//! magnitude image takes |·|); gradient-echo families carry the off-resonance phase at TE.
//! References: Bernstein, King & Zhou, *Handbook of MRI Pulse Sequences* (2004) [HB];
//! Ernst & Anderson 1966; Freeman & Hill 1971 with the elliptical form of Xiang & Hoff,
//! MRM 2014;71:927 [XH]; Deichmann et al., NeuroImage 2000;12:112 for MPRAGE [D].

use std::f64::consts::PI;

use super::protocol::{MriProtocol, Sequence};

/// The timing of one sequence, in the units the equations use (ms, rad, Hz).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeqParams {
    pub sequence: Sequence,
    pub tr_ms: f64,
    pub te_ms: f64,
    pub ti_ms: f64,
    pub flip_rad: f64,
    /// MPRAGE readouts per inversion; the fast spin echo's refocused echoes (1: one echo).
    pub etl: usize,
    /// MPRAGE readout spacing; the fast spin echo's echo spacing (one echo: TE).
    pub esp_ms: f64,
    /// Diffusion weighting (DWI), s/mm²; 0 otherwise.
    pub b_s_mm2: f64,
}

impl SeqParams {
    pub fn from_protocol(p: &MriProtocol) -> SeqParams {
        let (esp_ms, etl) = match p.sequence {
            Sequence::Mprage => (p.echo_spacing_ms(), p.etl),
            _ => p.refocusing_train(),
        };
        SeqParams {
            sequence: p.sequence,
            tr_ms: p.tr_ms,
            te_ms: p.te_ms,
            ti_ms: p.ti_ms.unwrap_or(0.0),
            flip_rad: p.flip_deg.to_radians(),
            etl,
            esp_ms,
            b_s_mm2: if p.sequence == Sequence::Dwi {
                p.b_value_s_mm2
            } else {
                0.0
            },
        }
    }

    /// Whether off-resonance leaves a phase at TE (gradient echoes) or is refocused.
    pub fn is_gradient_echo(&self) -> bool {
        matches!(
            self.sequence,
            Sequence::SpoiledGre | Sequence::Mprage | Sequence::Bssfp
        )
    }
}

/// Spin echo (90°–180°), [HB] eq. 14.8 without the ETL's T2 blurring:
/// S = PD (1 − 2 e^{−(TR − TE/2)/T1} + e^{−TR/T1}) e^{−TE/T2}. A single-echo
/// [`spin_echo_train`].
pub fn spin_echo(pd: f64, t1: f64, t2: f64, tr: f64, te: f64) -> f64 {
    spin_echo_train(pd, t1, t2, tr, te, te, 1)
}

/// Mz at the last echo of a CPMG train of `etl` ideal 180° pulses `esp` apart (the first at
/// esp/2) after a 90° that left Mz = 0: each interval relaxes Mz towards M0, each 180°
/// inverts it.
pub(crate) fn train_end_mz(t1: f64, esp: f64, etl: usize) -> f64 {
    let relax = |m: f64, t: f64| 1.0 + (m - 1.0) * (-t / t1).exp();
    let mut m = relax(0.0, 0.5 * esp);
    for k in 0..etl.max(1) {
        m = relax(-m, if k + 1 < etl { esp } else { 0.5 * esp });
    }
    m
}

/// Fast (turbo) spin echo: 90°, then `etl` ideal 180° refocusing pulses `esp` apart, echoes
/// at esp, 2 esp, …; the signal of the echo at `te` (a multiple of `esp`) in the steady
/// state where Mz recovers from its value at the last echo over TR − etl·esp:
/// S = PD (1 + (Mz_end − 1) e^{−(TR − etl·esp)/T1}) e^{−TE/T2}. With etl = 1, esp = TE this
/// is [`spin_echo`]'s equation. Echo n of the train is this signal × e^{−(n·esp − TE)/T2}.
pub fn spin_echo_train(pd: f64, t1: f64, t2: f64, tr: f64, te: f64, esp: f64, etl: usize) -> f64 {
    let m_end = train_end_mz(t1, esp, etl);
    let mz = 1.0 + (m_end - 1.0) * (-(tr - etl.max(1) as f64 * esp) / t1).exp();
    pd * mz * (-te / t2).exp()
}

/// Spoiled gradient echo, Ernst equation ([HB] eq. 14.10):
/// S = PD sin α (1 − E1) / (1 − cos α E1) · e^{−TE/T2*}, E1 = e^{−TR/T1}.
pub fn spoiled_gre(pd: f64, t1: f64, t2star: f64, tr: f64, te: f64, flip: f64) -> f64 {
    let e1 = (-tr / t1).exp();
    pd * flip.sin() * (1.0 - e1) / (1.0 - flip.cos() * e1) * (-te / t2star).exp()
}

/// Inversion recovery with a spin-echo readout, in its steady state ([HB] §14.2):
/// S = PD (1 − 2 e^{−TI/T1} + 2 e^{−(TR − TE/2)/T1} − e^{−TR/T1}) e^{−TE/T2}.
/// The readout's 180° at TE/2 inverts what Mz has recovered since the 90°, hence the
/// e^{−(TR − TE/2)/T1} term (the TE ≪ TR form drops it and the last term's sign follows:
/// 1 − 2 e^{−TI/T1} + e^{−TR/T1}). A single-echo [`inversion_recovery_train`]; zero at
/// [`super::protocol::null_ti_ms`].
pub fn inversion_recovery(pd: f64, t1: f64, t2: f64, tr: f64, te: f64, ti: f64) -> f64 {
    inversion_recovery_train(pd, t1, t2, tr, te, ti, te, 1)
}

/// Inversion recovery with a fast-spin-echo readout (IR-FSE, FLAIR, STIR as scanners run
/// them): inversion, TI, 90°, `etl` refocusing pulses `esp` apart, recovery to TR. With Mz_end
/// the train's Mz at its last echo and L = etl·esp, the steady state before the inversion is
/// m = 1 + (Mz_end − 1) e^{−(TR − TI − L)/T1} and the signal at TE is
/// PD (1 − (1 + m) e^{−TI/T1}) e^{−TE/T2} (signed: negative before the null).
#[allow(clippy::too_many_arguments)]
pub fn inversion_recovery_train(
    pd: f64,
    t1: f64,
    t2: f64,
    tr: f64,
    te: f64,
    ti: f64,
    esp: f64,
    etl: usize,
) -> f64 {
    let e = |t: f64| (-t / t1).exp();
    let m_end = train_end_mz(t1, esp, etl);
    let m_ss = 1.0 + (m_end - 1.0) * e(tr - ti - etl.max(1) as f64 * esp);
    pd * (1.0 - (1.0 + m_ss) * e(ti)) * (-te / t2).exp()
}

/// MPRAGE-like magnetisation-prepared spoiled GRE: the exact steady state of the cycle
/// inversion → delay → `n` α pulses every `esp` → delay to TR, with ideal spoiling ([D]).
/// Each step maps Mz affinely (relaxation m ↦ 1 + (m − 1)E, pulse m ↦ m cos α, inversion
/// m ↦ −m), so the cycle is m ↦ a m + b and the steady state is b / (1 − a). The signal is
/// read at the centre pulse (linear ordering: pulse n/2 at TI).
#[allow(clippy::too_many_arguments)]
pub fn mprage(
    pd: f64,
    t1: f64,
    t2star: f64,
    tr: f64,
    te: f64,
    ti: f64,
    flip: f64,
    n: usize,
    esp: f64,
) -> f64 {
    // 1. Timing: first pulse so that pulse n/2 falls at TI; recovery after the last pulse.
    let t0 = (ti - (n / 2) as f64 * esp).max(0.0);
    let td = (tr - t0 - (n.max(1) - 1) as f64 * esp).max(0.0);
    let relax = |t: f64| {
        let e = (-t / t1).exp();
        (e, 1.0 - e)
    };
    let (c, e_esp, e_t0, e_td) = (flip.cos(), relax(esp), relax(t0), relax(td));
    // 2. Compose the affine maps (a, b) over one cycle, starting just before the inversion.
    let compose = |(a, b): (f64, f64), (a2, b2): (f64, f64)| (a2 * a, a2 * b + b2);
    let mut f = (-1.0, 0.0);
    f = compose(f, e_t0);
    let mut before_centre = f;
    for k in 0..n {
        if k == n / 2 {
            before_centre = f;
        }
        f = compose(f, (c, 0.0));
        f = compose(f, if k + 1 < n { e_esp } else { e_td });
    }
    // 3. Steady state before the inversion, then Mz just before the centre pulse.
    let m_ss = f.1 / (1.0 - f.0);
    let mz = before_centre.0 * m_ss + before_centre.1;
    pd * mz * flip.sin() * (-te / t2star).exp()
}

/// Balanced SSFP with (0, π) RF phase alternation at off-resonance `df_hz` ([XH] eq. 2–4):
/// I = M (1 − E2 e^{−iθ}) / (1 − b cos θ), θ = 2π Δf TR + π (the alternation moves the band
/// centre to Δf = 0), M = PD (1 − E1) sin α / (1 − E1 cos α − E2² (E1 − cos α)),
/// b = E2 (1 − E1)(1 + cos α) / (1 − E1 cos α − E2² (E1 − cos α)); read at TE with e^{−TE/T2}
/// and the phase 2π Δf TE.
pub fn bssfp(pd: f64, t1: f64, t2: f64, tr: f64, te: f64, flip: f64, df_hz: f64) -> (f64, f64) {
    let (e1, e2) = ((-tr / t1).exp(), (-tr / t2).exp());
    let (s, c) = flip.sin_cos();
    let den = 1.0 - e1 * c - e2 * e2 * (e1 - c);
    let m = pd * (1.0 - e1) * s / den;
    let b = e2 * (1.0 - e1) * (1.0 + c) / den;
    let theta = 2.0 * PI * df_hz * tr * 1e-3 + PI;
    // (1 − E2 e^{−iθ}) / (1 − b cos θ), then decay and precession to TE.
    let (nr, ni) = (1.0 - e2 * theta.cos(), e2 * theta.sin());
    let scale = m * (-te / t2).exp() / (1.0 - b * theta.cos());
    let phi = -2.0 * PI * df_hz * te * 1e-3;
    let (ps, pc) = phi.sin_cos();
    (scale * (nr * pc - ni * ps), scale * (nr * ps + ni * pc))
}

/// Diffusion attenuation e^(−b·ADC) (Stejskal & Tanner, J Chem Phys 42, 288 (1965)), b in
/// s/mm², ADC in µm²/ms (= 10⁻³ mm²/s).
pub fn diffusion_attenuation(b_s_mm2: f64, adc_um2_ms: f64) -> f64 {
    (-b_s_mm2 * adc_um2_ms * 1e-3).exp()
}

/// The signal of one isochromat population: relaxation (ms), proton density, off-resonance
/// (Hz). Gradient echoes gain the phase −2π Δf TE; the others refocus it.
pub fn signal(p: &SeqParams, pd: f64, t1: f64, t2: f64, t2star: f64, df_hz: f64) -> (f64, f64) {
    // Guard degenerate maps (air: PD 0; T ≤ 0 would divide by zero).
    if pd == 0.0 {
        return (0.0, 0.0);
    }
    let (t1, t2, t2star) = (t1.max(1e-3), t2.max(1e-3), t2star.max(1e-3));
    let real = match p.sequence {
        Sequence::SpinEcho | Sequence::Dwi => {
            spin_echo_train(pd, t1, t2, p.tr_ms, p.te_ms, p.esp_ms, p.etl)
        }
        Sequence::InversionRecovery | Sequence::Flair | Sequence::Stir => {
            inversion_recovery_train(pd, t1, t2, p.tr_ms, p.te_ms, p.ti_ms, p.esp_ms, p.etl)
        }
        Sequence::SpoiledGre => spoiled_gre(pd, t1, t2star, p.tr_ms, p.te_ms, p.flip_rad),
        Sequence::Mprage => mprage(
            pd, t1, t2star, p.tr_ms, p.te_ms, p.ti_ms, p.flip_rad, p.etl, p.esp_ms,
        ),
        Sequence::Bssfp => return bssfp(pd, t1, t2, p.tr_ms, p.te_ms, p.flip_rad, df_hz),
    };
    if p.is_gradient_echo() && df_hz != 0.0 {
        let (s, c) = (-2.0 * PI * df_hz * p.te_ms * 1e-3).sin_cos();
        (real * c, real * s)
    } else {
        (real, 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acquire::mri::protocol::null_ti_ms;
    use crate::tissue::tissue;

    fn rel(name: &str) -> crate::tissue::Relaxation {
        tissue(name).mri_3t
    }

    #[test]
    fn spin_echo_contrast_orders_tissues() {
        let s = |n: &str, tr, te| {
            let r = rel(n);
            spin_echo(r.pd, r.t1_ms, r.t2_ms, tr, te)
        };
        let (wm, gm, csf) = (
            s("white_matter", 500.0, 15.0),
            s("grey_matter", 500.0, 15.0),
            s("csf", 500.0, 15.0),
        );
        eprintln!("T1w SE (500/15): WM {wm:.3} GM {gm:.3} CSF {csf:.3}");
        assert!(wm > gm && gm > csf);
        let (wm, gm, csf) = (
            s("white_matter", 4000.0, 100.0),
            s("grey_matter", 4000.0, 100.0),
            s("csf", 4000.0, 100.0),
        );
        eprintln!("T2w SE (4000/100): WM {wm:.3} GM {gm:.3} CSF {csf:.3}");
        assert!(csf > gm && gm > wm);
    }

    #[test]
    fn flair_nulls_csf_at_its_null_point() {
        let tr = 9000.0;
        let csf = rel("csf");
        let ti = null_ti_ms(csf.t1_ms, tr, 100.0, 1);
        let sig = |n: &str| {
            let r = rel(n);
            inversion_recovery(r.pd, r.t1_ms, r.t2_ms, tr, 100.0, ti).abs()
        };
        eprintln!(
            "FLAIR TI {ti:.0} ms: CSF {:.2e} GM {:.3} WM {:.3}",
            sig("csf"),
            sig("grey_matter"),
            sig("white_matter")
        );
        assert!(sig("csf") < 1e-12);
        // Grey matter (T1 1820, T2 99 ms) above white matter (1084, 69 ms), as clinical
        // FLAIR shows them.
        assert!(sig("grey_matter") > sig("white_matter") && sig("white_matter") > 0.1);
    }

    #[test]
    fn mprage_gives_t1_contrast() {
        let s = |n: &str| {
            let r = rel(n);
            mprage(
                r.pd,
                r.t1_ms,
                r.t2star_ms,
                2300.0,
                3.0,
                900.0,
                9f64.to_radians(),
                176,
                6.5,
            )
        };
        eprintln!(
            "MPRAGE: WM {:.4} GM {:.4} CSF {:.4}",
            s("white_matter"),
            s("grey_matter"),
            s("csf")
        );
        assert!(s("white_matter") > s("grey_matter") && s("grey_matter") > s("csf").abs());
    }

    #[test]
    fn bssfp_on_resonance_matches_textbook_form() {
        // [HB] eq. 14.? on resonance: S = sin α (1 − E1) √E2 / (1 − (E1 − E2) cos α − E1 E2).
        let (t1, t2, tr, a) = (830.0f64, 75.0f64, 5.0f64, 0.8f64);
        let (e1, e2) = ((-tr / t1).exp(), (-tr / t2).exp());
        let want = a.sin() * (1.0 - e1) * e2.sqrt() / (1.0 - (e1 - e2) * a.cos() - e1 * e2);
        let (re, im) = bssfp(1.0, t1, t2, tr, tr / 2.0, a, 0.0);
        assert!(((re * re + im * im).sqrt() - want).abs() < 1e-12 * want.max(1.0));
    }
}
