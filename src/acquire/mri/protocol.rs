//! The MRI protocol: sequence, timing, geometry, receive chain and artifacts, with clinical
//! presets (`default_for`) and validation that names the offending field.

use serde::{Deserialize, Serialize};

use crate::tissue;

/// Pulse sequence families with an analytic steady-state signal in [`super::signal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sequence {
    SpinEcho,
    SpoiledGre,
    InversionRecovery,
    Flair,
    Stir,
    Mprage,
    Bssfp,
}

/// Multi-coil combination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// Root-sum-of-squares of the coil magnitudes.
    Rss,
    /// Sensitivity-weighted (Roemer) combination Σ c*ρ / Σ|c|² with the true coil maps.
    Sense,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplingPattern {
    /// Every R-th phase line (aliases at FOV/R), plus the fully sampled centre.
    Regular,
    /// Random lines with density falling off quadratically from the centre.
    VariableDensity,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Undersampling {
    pub factor: f64,
    pub pattern: SamplingPattern,
    pub center_lines: usize,
}

/// Acquisition artifacts; each `None`/`false` = off.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Artifacts {
    /// Peak-to-peak multiplicative range, e.g. 0.3 → field in [0.85, 1.15].
    pub bias_field: Option<f64>,
    pub motion: Option<Motion>,
    /// N/2 ghost intensity as a fraction of the object.
    pub ghosting: Option<f64>,
    /// Spike amplitude relative to the k-space centre (the maximum for a non-negative object).
    pub spike: Option<f64>,
    /// Fat displaced along the readout by its chemical shift (−3.4 ppm) / bandwidth per pixel.
    pub chemical_shift: bool,
    /// Amplitude (ppm) of a smooth B0 inhomogeneity: readout distortion, GRE phase, bSSFP bands.
    pub b0_offresonance_ppm: Option<f64>,
}

/// One rigid movement: the last `fraction_of_lines` of the phase-encode lines (in time
/// order) are acquired with the object translated and rotated (about the isocentre).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Motion {
    pub translation_mm: [f64; 3],
    pub rotation_deg: [f64; 3],
    /// 1.0 = all lines moved = a pure rigid transform of the image.
    pub fraction_of_lines: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MriProtocol {
    pub sequence: Sequence,
    pub field_t: f64,
    /// Repetition time; for MPRAGE the inversion-to-inversion time.
    pub tr_ms: f64,
    pub te_ms: f64,
    /// Inversion time (IR, FLAIR, STIR; MPRAGE: inversion to the k-space centre readout).
    pub ti_ms: Option<f64>,
    pub flip_deg: f64,
    /// Echo train length (MPRAGE: readouts per inversion).
    pub etl: usize,
    /// In-plane (x, y) field of view, mm.
    pub fov_mm: [f64; 2],
    /// In-plane (x, y) matrix.
    pub matrix: [usize; 2],
    /// 2D multi-slice along z covering the object's z extent.
    pub slice_mm: f64,
    /// 0 = x, 1 = y; the phase-encode axis is the other one.
    pub readout_axis: usize,
    pub nex: u32,
    pub coils: usize,
    pub combine: Combine,
    /// Fraction of phase lines acquired, 0.5..=1 (1 = full).
    pub partial_fourier: f64,
    pub undersampling: Option<Undersampling>,
    pub bandwidth_hz_per_px: f64,
    pub noise: bool,
    /// SNR of a PD = 1 tissue at full magnetisation for a 1×1×5 mm voxel, NEX 1, one coil,
    /// 3 T; scales with voxel volume, √NEX and field strength (linear).
    pub snr_reference: f64,
    pub artifacts: Artifacts,
    pub export_kspace: bool,
}

/// Fat–water chemical shift, ppm (fat resonates below water).
pub const FAT_SHIFT_PPM: f64 = -3.4;
/// Gyromagnetic ratio of ¹H, MHz/T.
pub const GAMMA_MHZ_PER_T: f64 = 42.577;

/// Off-resonance (Hz) of a shift `ppm` at `field_t`.
pub fn ppm_to_hz(ppm: f64, field_t: f64) -> f64 {
    ppm * GAMMA_MHZ_PER_T * field_t
}

/// Inversion time (ms) nulling a tissue of longitudinal relaxation `t1_ms` at repetition
/// `tr_ms`: TI = T1 ln(2 / (1 + e^{−TR/T1})) (Bydder & Young 1985).
pub fn null_ti_ms(t1_ms: f64, tr_ms: f64) -> f64 {
    t1_ms * (2.0 / (1.0 + (-tr_ms / t1_ms).exp())).ln()
}

impl MriProtocol {
    /// Clinical presets: T1w SE, T1w 2D FLASH (TE in phase), T1w IR, FLAIR with TI at the
    /// CSF null, STIR with TI at the fat null, MPRAGE (ADNI-like), bSSFP. One coil, noise on,
    /// artifacts off, 256 mm / 256² / 5 mm slices (MPRAGE 1 mm).
    pub fn default_for(sequence: Sequence, field_t: f64) -> MriProtocol {
        let high = field_t >= 2.0;
        let t1 = |name: &str| tissue::tissue(name).relaxation(field_t).t1_ms;
        // First fat–water in-phase echo, 1/|Δf_fat|.
        let te_in_phase = 1000.0 / ppm_to_hz(FAT_SHIFT_PPM, field_t.max(0.1)).abs();
        let (tr, te, ti, flip, etl, slice) = match sequence {
            Sequence::SpinEcho => (500.0, 15.0, None, 90.0, 1, 5.0),
            Sequence::SpoiledGre => (250.0, te_in_phase, None, 70.0, 1, 5.0),
            Sequence::InversionRecovery => (
                3000.0,
                15.0,
                Some(if high { 900.0 } else { 700.0 }),
                90.0,
                1,
                5.0,
            ),
            Sequence::Flair => (
                9000.0,
                100.0,
                Some(null_ti_ms(t1("csf"), 9000.0)),
                90.0,
                16,
                5.0,
            ),
            Sequence::Stir => (
                4000.0,
                40.0,
                Some(null_ti_ms(t1("fat"), 4000.0)),
                90.0,
                8,
                5.0,
            ),
            Sequence::Mprage => {
                if high {
                    (2300.0, 3.0, Some(900.0), 9.0, 176, 1.0)
                } else {
                    (2400.0, 3.6, Some(1000.0), 8.0, 160, 1.0)
                }
            }
            Sequence::Bssfp => (5.0, 2.5, None, 50.0, 1, 5.0),
        };
        MriProtocol {
            sequence,
            field_t,
            tr_ms: tr,
            te_ms: te,
            ti_ms: ti,
            flip_deg: flip,
            etl,
            fov_mm: [256.0, 256.0],
            matrix: [256, 256],
            slice_mm: slice,
            readout_axis: 0,
            nex: 1,
            coils: 1,
            combine: Combine::Rss,
            partial_fourier: 1.0,
            undersampling: None,
            bandwidth_hz_per_px: 200.0,
            noise: true,
            snr_reference: 40.0,
            artifacts: Artifacts::default(),
            export_kspace: false,
        }
    }

    /// MPRAGE echo spacing (ms): TE, the second half of the readout (1/BW per pixel) and a
    /// 1 ms spoiler.
    pub fn echo_spacing_ms(&self) -> f64 {
        self.te_ms + 0.5 * 1000.0 / self.bandwidth_hz_per_px + 1.0
    }

    /// Every problem found, as (field, message); empty when valid.
    pub fn validate(&self) -> Vec<(&'static str, String)> {
        let mut e: Vec<(&'static str, String)> = Vec::new();
        let mut need = |ok: bool, field: &'static str, msg: String| {
            if !ok {
                e.push((field, msg));
            }
        };
        let finite_pos = |v: f64| v.is_finite() && v > 0.0;
        need(
            finite_pos(self.field_t) && self.field_t <= 11.7,
            "field_t",
            format!(
                "field strength must be in (0, 11.7] T, got {}",
                self.field_t
            ),
        );
        need(
            finite_pos(self.tr_ms),
            "tr_ms",
            format!("TR must be > 0 ms, got {}", self.tr_ms),
        );
        need(
            finite_pos(self.te_ms) && self.te_ms < self.tr_ms,
            "te_ms",
            format!(
                "TE must be > 0 and < TR ({} ms), got {}",
                self.tr_ms, self.te_ms
            ),
        );
        let needs_ti = matches!(
            self.sequence,
            Sequence::InversionRecovery | Sequence::Flair | Sequence::Stir | Sequence::Mprage
        );
        match self.ti_ms {
            None => need(
                !needs_ti,
                "ti_ms",
                format!("{:?} needs an inversion time", self.sequence),
            ),
            Some(ti) => need(
                finite_pos(ti) && ti < self.tr_ms,
                "ti_ms",
                format!("TI must be > 0 and < TR ({} ms), got {ti}", self.tr_ms),
            ),
        }
        need(
            self.flip_deg >= 1.0 && self.flip_deg <= 180.0,
            "flip_deg",
            format!("flip angle must be 1–180°, got {}", self.flip_deg),
        );
        need(self.etl >= 1, "etl", "echo train length must be ≥ 1".into());
        if self.sequence == Sequence::Mprage {
            if let Some(ti) = self.ti_ms {
                let half = 0.5 * self.etl as f64 * self.echo_spacing_ms();
                need(
                    ti >= half && ti + half <= self.tr_ms,
                    "etl",
                    format!(
                        "MPRAGE readout train of {} × {:.1} ms must fit around TI {ti} ms inside TR {} ms",
                        self.etl,
                        self.echo_spacing_ms(),
                        self.tr_ms
                    ),
                );
            }
        }
        need(
            self.fov_mm.iter().all(|&f| finite_pos(f)),
            "fov_mm",
            format!("field of view must be > 0 mm, got {:?}", self.fov_mm),
        );
        need(
            self.matrix.iter().all(|&m| (8..=2048).contains(&m)),
            "matrix",
            format!("matrix must be 8–2048 per axis, got {:?}", self.matrix),
        );
        need(
            finite_pos(self.slice_mm),
            "slice_mm",
            format!("slice thickness must be > 0 mm, got {}", self.slice_mm),
        );
        need(
            self.readout_axis <= 1,
            "readout_axis",
            format!(
                "readout axis must be 0 (x) or 1 (y), got {}",
                self.readout_axis
            ),
        );
        need(self.nex >= 1, "nex", "NEX must be ≥ 1".into());
        need(
            (1..=64).contains(&self.coils),
            "coils",
            format!("coils must be 1–64, got {}", self.coils),
        );
        need(
            (0.5..=1.0).contains(&self.partial_fourier),
            "partial_fourier",
            format!(
                "partial Fourier must be 0.5–1, got {}",
                self.partial_fourier
            ),
        );
        if let Some(u) = &self.undersampling {
            let n_phase = self.matrix[1 - self.readout_axis.min(1)];
            need(
                u.factor >= 1.0 && u.factor <= n_phase as f64 / 2.0,
                "undersampling.factor",
                format!(
                    "acceleration must be ≥ 1 and ≤ half the phase lines, got {}",
                    u.factor
                ),
            );
            need(
                u.center_lines <= n_phase,
                "undersampling.center_lines",
                format!(
                    "{} centre lines exceed the {n_phase} phase lines",
                    u.center_lines
                ),
            );
        }
        need(
            finite_pos(self.bandwidth_hz_per_px),
            "bandwidth_hz_per_px",
            format!(
                "bandwidth must be > 0 Hz/px, got {}",
                self.bandwidth_hz_per_px
            ),
        );
        need(
            finite_pos(self.snr_reference),
            "snr_reference",
            format!("reference SNR must be > 0, got {}", self.snr_reference),
        );
        let a = &self.artifacts;
        if let Some(b) = a.bias_field {
            need(
                (0.0..2.0).contains(&b),
                "artifacts.bias_field",
                format!("bias range must be in [0, 2), got {b}"),
            );
        }
        if let Some(m) = &a.motion {
            need(
                (0.0..=1.0).contains(&m.fraction_of_lines),
                "artifacts.motion.fraction_of_lines",
                format!("fraction of lines must be 0–1, got {}", m.fraction_of_lines),
            );
            need(
                m.translation_mm
                    .iter()
                    .chain(&m.rotation_deg)
                    .all(|v| v.is_finite()),
                "artifacts.motion",
                "motion must be finite".into(),
            );
        }
        if let Some(g) = a.ghosting {
            need(
                (0.0..=0.5).contains(&g),
                "artifacts.ghosting",
                format!("ghost fraction must be 0–0.5, got {g}"),
            );
        }
        if let Some(s) = a.spike {
            need(
                s.is_finite() && s >= 0.0,
                "artifacts.spike",
                format!("spike intensity must be ≥ 0, got {s}"),
            );
        }
        if let Some(p) = a.b0_offresonance_ppm {
            need(
                p.is_finite() && p.abs() <= 50.0,
                "artifacts.b0_offresonance_ppm",
                format!("B0 amplitude must be ≤ 50 ppm, got {p}"),
            );
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_at_both_fields() {
        for seq in [
            Sequence::SpinEcho,
            Sequence::SpoiledGre,
            Sequence::InversionRecovery,
            Sequence::Flair,
            Sequence::Stir,
            Sequence::Mprage,
            Sequence::Bssfp,
        ] {
            for f in [1.5, 3.0] {
                let p = MriProtocol::default_for(seq, f);
                assert!(p.validate().is_empty(), "{seq:?} {f}: {:?}", p.validate());
            }
        }
        let flair = MriProtocol::default_for(Sequence::Flair, 3.0);
        assert!(
            (flair.ti_ms.unwrap() - 2430.0).abs() < 30.0,
            "{:?}",
            flair.ti_ms
        );
    }

    #[test]
    fn validation_names_fields() {
        let mut p = MriProtocol::default_for(Sequence::SpinEcho, 3.0);
        p.te_ms = 600.0;
        p.coils = 0;
        p.partial_fourier = 0.3;
        p.matrix = [4, 256];
        let f: Vec<&str> = p.validate().into_iter().map(|(f, _)| f).collect();
        assert_eq!(f, ["te_ms", "matrix", "coils", "partial_fourier"]);
    }

    #[test]
    fn serde_uses_snake_case() {
        let p = MriProtocol::default_for(Sequence::SpoiledGre, 3.0);
        let j = serde_json::to_value(&p).unwrap();
        assert_eq!(j["sequence"], "spoiled_gre");
        assert_eq!(j["combine"], "rss");
        let back: MriProtocol = serde_json::from_value(j).unwrap();
        assert_eq!(back, p);
    }
}
