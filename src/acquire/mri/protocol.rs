//! The MRI protocol: sequence, timing, geometry, receive chain and artifacts, with clinical
//! presets (`default_for`) and validation that names the offending field.
//!
//! This type is also the pipeline's MRI arm: a YAML arm is a partial overlay of these fields
//! on the sequence's preset, so each field, its documentation and its allowed range are
//! declared here once (the `range` attributes feed the published schema and
//! [`MriProtocol::validate`]).

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::tissue;

/// Pulse sequence families with an analytic steady-state signal in [`super::signal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sequence {
    SpinEcho,
    SpoiledGre,
    InversionRecovery,
    Flair,
    Stir,
    Mprage,
    Bssfp,
    /// Diffusion-weighted spin echo (Stejskal–Tanner pair around the 180°): the spin-echo
    /// signal × e^(−b·ADC), isotropic (trace), fat suppressed as clinical DWI is.
    Dwi,
}

/// Multi-coil combination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// Root-sum-of-squares of the coil magnitudes.
    Rss,
    /// Sensitivity-weighted (Roemer) combination Σ c*ρ / Σ|c|² with the true coil maps; with
    /// regular undersampling, SENSE unfolding.
    Sense,
    /// GRAPPA: regular undersampling's missing lines synthesised from the acquired ones in all
    /// coils with a kernel fitted on the `center_lines` (auto-calibration), then RSS.
    Grappa,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SamplingPattern {
    /// Every R-th phase line (aliases at FOV/R), plus the fully sampled centre.
    Regular,
    /// Random lines with density falling off quadratically from the centre.
    VariableDensity,
}

/// How partially sampled k-space (`partial_fourier` < 1) is reconstructed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartialFourierRecon {
    /// Homodyne: the missing half restored from conjugate symmetry after a low-resolution
    /// phase correction (Noll et al. 1991), as scanners do.
    #[default]
    Homodyne,
    /// Zero filling: the missing lines stay zero (blur and ringing along phase-encode).
    ZeroFill,
}

/// k-space undersampling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Undersampling {
    /// Acceleration factor R.
    #[schemars(range(min = 1.0, max = 16.0))]
    pub factor: f64,
    #[serde(default = "regular")]
    pub pattern: SamplingPattern,
    /// Fully sampled central phase-encode lines.
    #[serde(default = "default_center_lines")]
    #[schemars(range(max = 256))]
    pub center_lines: usize,
}

fn regular() -> SamplingPattern {
    SamplingPattern::Regular
}

fn default_center_lines() -> usize {
    16
}

/// Acquisition artifacts; each is off unless given.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Artifacts {
    /// Receive bias field: peak-to-peak multiplicative range (0.3 → 0.85–1.15).
    #[schemars(range(min = 0.0, max = 1.0))]
    pub bias_field: Option<f64>,
    /// Rigid motion during the acquisition.
    pub motion: Option<Motion>,
    /// N/2 ghost intensity as a fraction of the object.
    #[schemars(range(min = 0.0, max = 0.5))]
    pub ghosting: Option<f64>,
    /// Spike amplitude relative to the k-space centre (the maximum for a non-negative object).
    #[schemars(range(min = 0.0, max = 10.0))]
    pub spike: Option<f64>,
    /// Fat displaced along the readout by its chemical shift (−3.4 ppm) / bandwidth per pixel.
    pub chemical_shift: bool,
    /// Amplitude (ppm) of a smooth B0 inhomogeneity: readout distortion, GRE phase, bSSFP bands.
    #[schemars(range(min = 0.0, max = 20.0))]
    pub b0_offresonance_ppm: Option<f64>,
    /// B0 from the body's own susceptibility (air, lung, bone, fat against water): the dipole
    /// field of the tissue susceptibility map after a linear shim over the body, displacing
    /// along the readout (and the phase axis with EPI) and dephasing gradient echoes' phase;
    /// adds to `b0_offresonance_ppm`. Needs an object built from anatomy.
    pub susceptibility: bool,
    /// EPI Nyquist (N/2) ghost: the odd echoes' shift along the readout against the even ones,
    /// in k-space samples (gradient delays and eddy currents; 0.05–0.5 is typical
    /// uncorrected). Needs `epi`.
    #[schemars(range(min = 0.0, max = 4.0))]
    pub epi_echo_shift_samples: Option<f64>,
}

/// One rigid movement: the last `fraction_of_lines` of the phase-encode lines (in time
/// order) are acquired with the object translated and rotated (about the isocentre).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Motion {
    /// Translation in mm (x, y, z).
    #[serde(default)]
    pub translation_mm: [f64; 3],
    /// Rotation in degrees about x, y, z.
    #[serde(default)]
    pub rotation_deg: [f64; 3],
    /// Fraction of k-space lines acquired in the moved position (1 = all: a pure rigid
    /// transform of the image).
    #[serde(default = "half")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub fraction_of_lines: f64,
}

fn half() -> f64 {
    0.5
}

/// Readout (frequency-encode) direction; the phase-encode axis is the other one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadoutAxis {
    X,
    Y,
}

/// One number for both in-plane axes, or `[x, y]` (how `fov_mm` and `matrix` are written).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InPlane<T> {
    Same(T),
    Each([T; 2]),
}

impl<T: Copy> InPlane<T> {
    pub fn pair(self) -> [T; 2] {
        match self {
            InPlane::Same(v) => [v, v],
            InPlane::Each(p) => p,
        }
    }
}

/// The schema of an [`InPlane`] field whose numbers lie in `MIN..=MAX`: the range is part
/// of the field's type, so it is declared once, at the field, and holds for both forms
/// (schemars drops a `range` attribute on a field that is not a plain number).
pub struct InPlaneIn<T, const MIN: u32, const MAX: u32>(std::marker::PhantomData<T>);

impl<T: JsonSchema, const MIN: u32, const MAX: u32> JsonSchema for InPlaneIn<T, MIN, MAX> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("InPlane_{}_{MIN}_{MAX}", T::schema_name()).into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut one = T::json_schema(g).to_value();
        one["minimum"] = MIN.into();
        one["maximum"] = MAX.into();
        schemars::Schema::try_from(serde_json::json!({
            "anyOf": [one, {"type": "array", "items": one, "minItems": 2, "maxItems": 2}]
        }))
        .expect("an object is a schema")
    }
}

fn in_plane<'de, D: Deserializer<'de>, T: Copy + Deserialize<'de>>(
    d: D,
) -> Result<[T; 2], D::Error> {
    InPlane::<T>::deserialize(d).map(InPlane::pair)
}

impl ReadoutAxis {
    /// The grid axis: 0 = x, 1 = y.
    pub fn index(self) -> usize {
        match self {
            ReadoutAxis::X => 0,
            ReadoutAxis::Y => 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MriProtocol {
    /// Pulse sequence.
    pub sequence: Sequence,
    /// Main field in tesla, 0.1–3 T: the relaxation tables (Stanisz 2005, 1.5 and 3 T) end at
    /// 3 T; below 1.5 T, T1 follows a power law of the field (see `tissue::Tissue::relaxation`).
    #[schemars(range(min = 0.1, max = 3.0))]
    pub field_t: f64,
    /// Repetition time in ms; for MPRAGE the inversion-to-inversion time.
    #[schemars(range(min = 1.0, max = 30000.0))]
    pub tr_ms: f64,
    /// Echo time in ms.
    #[schemars(range(min = 0.1, max = 2000.0))]
    pub te_ms: f64,
    /// Inversion time in ms (IR, FLAIR, STIR; MPRAGE: inversion to the k-space centre readout).
    #[schemars(range(min = 1.0, max = 10000.0))]
    pub ti_ms: Option<f64>,
    /// Flip angle in degrees.
    #[schemars(range(min = 1.0, max = 180.0))]
    pub flip_deg: f64,
    /// Echo train length: refocused echoes per excitation of a fast spin echo (SE, IR, FLAIR,
    /// STIR; each echo fills its band of k-space, so T2 filters k-space), MPRAGE readouts per
    /// inversion.
    #[schemars(range(min = 1, max = 512))]
    pub etl: usize,
    /// Time between echoes of the echo train, ms: fast spin echo (TE must be a multiple),
    /// EPI (between phase lines), MPRAGE (between readouts). Default from the bandwidth:
    /// see `MriProtocol::echo_spacing_ms`.
    #[serde(default)]
    #[schemars(range(min = 0.1, max = 100.0))]
    pub echo_spacing_ms: Option<f64>,
    /// Single-shot echo-planar readout (spin echo, DWI, spoiled GRE): every phase line from one
    /// excitation, one echo spacing apart, so T2*/T2′ decay filters k-space along the phase
    /// axis and off-resonance Δf displaces along it by Δf·(echo spacing / R)·N_phase pixels.
    #[serde(default)]
    pub epi: bool,
    /// In-plane field of view in mm: one number for both axes, or `[x, y]`; default: the
    /// object grid's extent.
    #[serde(deserialize_with = "in_plane")]
    #[schemars(with = "InPlaneIn<f64, 1, 1000>")]
    pub fov_mm: [f64; 2],
    /// In-plane matrix: one number for both axes, or `[x, y]`; default: the object grid.
    #[serde(deserialize_with = "in_plane")]
    #[schemars(with = "InPlaneIn<usize, 8, 2048>")]
    pub matrix: [usize; 2],
    /// Slice thickness in mm (2D multi-slice along z covering the object's z extent).
    #[schemars(range(min = 0.1, max = 50.0))]
    pub slice_mm: f64,
    /// Readout (frequency-encode) direction; the phase-encode axis is the other one.
    pub readout: ReadoutAxis,
    /// Number of excitations (averages).
    #[schemars(range(min = 1, max = 64))]
    pub nex: u32,
    /// Receive coils.
    #[schemars(range(min = 1, max = 64))]
    pub coils: usize,
    /// Multi-coil combination. `sense` with regular undersampling by an integer R unfolds the
    /// aliased image with the coil maps (SENSE; maps from a prescan, so no centre lines are
    /// acquired); otherwise it is the sensitivity-weighted combination.
    pub combine: Combine,
    /// Noise correlation between neighbouring receive coils (0: independent). Coils k places
    /// apart on the ring correlate by ρ^k (shared sample noise and mutual inductance; array
    /// noise correlations are typically 0.1–0.3); `combine: sense` prewhitens with it.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 0.5))]
    pub coil_noise_correlation: f64,
    /// Also write the SENSE g-factor map (with `combine: sense` and regular undersampling).
    #[serde(default)]
    pub g_factor_map: bool,
    /// Fraction of the phase-encode lines acquired (1 = full).
    #[schemars(range(min = 0.5, max = 1.0))]
    pub partial_fourier: f64,
    /// Diffusion weighting of a `dwi` arm, s/mm².
    #[serde(default = "default_b_value")]
    #[schemars(range(min = 0.0, max = 10000.0))]
    pub b_value_s_mm2: f64,
    /// Also acquire b = 0 and write the ADC map ln(S₀/S_b)/b (µm²/ms) of a `dwi` arm.
    #[serde(default)]
    pub adc_map: bool,
    /// Reconstruction of partial-Fourier data: `homodyne` (default) or `zero_fill`.
    #[serde(default)]
    pub partial_fourier_recon: PartialFourierRecon,
    /// k-space undersampling.
    pub undersampling: Option<Undersampling>,
    /// Receiver bandwidth in Hz per pixel.
    #[schemars(range(min = 10.0, max = 10000.0))]
    pub bandwidth_hz_per_px: f64,
    /// Add noise.
    pub noise: bool,
    /// SNR of proton density 1 at full magnetisation in a 1×1×5 mm voxel, 256 phase-encode
    /// lines, NEX 1, 200 Hz/pixel, one coil, at 3 T; scales with voxel volume,
    /// √(phase lines × NEX / bandwidth per pixel) and field strength (see `noise::noise_sigma`).
    #[schemars(range(min = 0.1, max = 10000.0))]
    pub snr: f64,
    /// Acquisition artifacts, each off unless given.
    pub artifacts: Artifacts,
    /// Also write the complex multi-coil k-space as .npy.
    pub export_kspace: bool,
}

/// The clinical diffusion weighting of brain and body DWI.
fn default_b_value() -> f64 {
    1000.0
}

/// Fat–water chemical shift, ppm (fat resonates below water).
pub const FAT_SHIFT_PPM: f64 = -3.4;
/// Gyromagnetic ratio of ¹H, MHz/T.
pub const GAMMA_MHZ_PER_T: f64 = 42.577;

/// Off-resonance (Hz) of a shift `ppm` at `field_t`.
pub fn ppm_to_hz(ppm: f64, field_t: f64) -> f64 {
    ppm * GAMMA_MHZ_PER_T * field_t
}

/// Inversion time (ms) nulling a tissue of longitudinal relaxation `t1_ms` in an inversion
/// recovery at `tr_ms` read by `etl` spin echoes `esp_ms` apart (the zero of
/// [`super::signal::inversion_recovery_train`]): with Mz_end the train's Mz at its last echo,
/// e^{−TI/T1} = (1 + (1 − Mz_end) e^{−(TR − etl·esp)/T1}) / 2. For one echo (esp = TE) this
/// is (1 + 2 e^{−(TR − TE/2)/T1} − e^{−TR/T1}) / 2, and for TE ≪ TR Bydder & Young's (1985)
/// TI = T1 ln(2 / (1 + e^{−TR/T1})).
pub fn null_ti_ms(t1_ms: f64, tr_ms: f64, esp_ms: f64, etl: usize) -> f64 {
    let m_end = super::signal::train_end_mz(t1_ms, esp_ms, etl);
    let l = etl.max(1) as f64 * esp_ms;
    -t1_ms * (0.5 * (1.0 + (1.0 - m_end) * (-(tr_ms - l) / t1_ms).exp())).ln()
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
            Sequence::Flair => (9000.0, 100.0, Some(t1("csf")), 90.0, 16, 5.0),
            Sequence::Stir => (4000.0, 40.0, Some(t1("fat")), 90.0, 8, 5.0),
            Sequence::Mprage => {
                if high {
                    (2300.0, 3.0, Some(900.0), 9.0, 176, 1.0)
                } else {
                    (2400.0, 3.6, Some(1000.0), 8.0, 160, 1.0)
                }
            }
            Sequence::Bssfp => (5.0, 2.5, None, 50.0, 1, 5.0),
            Sequence::Dwi => (5000.0, 80.0, None, 90.0, 1, 5.0),
        };
        let mut p = MriProtocol {
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
            readout: ReadoutAxis::X,
            nex: 1,
            coils: 1,
            combine: Combine::Rss,
            coil_noise_correlation: 0.0,
            g_factor_map: false,
            partial_fourier: 1.0,
            partial_fourier_recon: PartialFourierRecon::Homodyne,
            b_value_s_mm2: default_b_value(),
            adc_map: false,
            undersampling: None,
            bandwidth_hz_per_px: 200.0,
            noise: true,
            snr: 40.0,
            artifacts: Artifacts::default(),
            export_kspace: false,
            echo_spacing_ms: None,
            epi: false,
        };
        // FLAIR and STIR: TI at the null of the T1 held in `ti_ms` above (CSF, fat), for
        // this readout's echo train.
        if let (Sequence::Flair | Sequence::Stir, Some(t1)) = (sequence, p.ti_ms) {
            let (esp, etl) = p.refocusing_train();
            p.ti_ms = Some(null_ti_ms(t1, p.tr_ms, esp, etl));
        }
        p
    }

    /// The echo spacing (ms): `echo_spacing_ms` when given, otherwise from the readout
    /// duration 1000/BW per pixel: EPI that plus 0.2 ms of gradient ramps; MPRAGE TE, the
    /// second half of the readout and a 1 ms spoiler; a fast spin echo the readout, 3 ms for
    /// the refocusing pulse and crushers, stretched so that TE falls on an echo; a single
    /// spin echo TE.
    pub fn echo_spacing_ms(&self) -> f64 {
        if let Some(esp) = self.echo_spacing_ms {
            return esp;
        }
        let readout = 1000.0 / self.bandwidth_hz_per_px;
        if self.epi {
            return readout + 0.2;
        }
        match self.sequence {
            Sequence::Mprage => self.te_ms + 0.5 * readout + 1.0,
            _ if self.is_fast_spin_echo() => {
                let echo = (self.te_ms / (readout + 3.0))
                    .round()
                    .clamp(1.0, self.etl as f64);
                self.te_ms / echo
            }
            _ => self.te_ms,
        }
    }

    /// Whether the readout is a train of refocused spin echoes (ETL > 1 in the spin-echo and
    /// inversion-recovery families).
    pub fn is_fast_spin_echo(&self) -> bool {
        self.etl > 1
            && !self.epi
            && matches!(
                self.sequence,
                Sequence::SpinEcho | Sequence::InversionRecovery | Sequence::Flair | Sequence::Stir
            )
    }

    /// The refocusing train the signal equations see, (echo spacing, echoes): the fast spin
    /// echo's, else one echo at TE (a single spin echo, SE-EPI).
    pub fn refocusing_train(&self) -> (f64, usize) {
        if self.is_fast_spin_echo() {
            (self.echo_spacing_ms(), self.etl)
        } else {
            (self.te_ms, 1)
        }
    }

    /// EPI lines read before the one at the k-space centre (ky = 0), in acquisition order:
    /// every R-th line of the part of k-space partial Fourier keeps before the centre.
    /// (Variable-density masks are drawn per run; this counts the seed-0 draw.)
    pub fn epi_lines_before_centre(&self) -> usize {
        let n = self.matrix[1 - self.readout.index()];
        let mask =
            super::kspace::sampling_mask(n, self.partial_fourier, self.undersampling.as_ref(), 0);
        (0..n)
            .filter(|&l| mask[l] && super::kspace::ky_of(l, n) < 0)
            .count()
    }

    /// Every problem found, as (field, message); empty when valid: the declared ranges, then
    /// the rules between fields.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut e = crate::bounds::check(self);
        let mut need = |ok: bool, field: &str, msg: String| {
            if !ok {
                e.push((field.to_string(), msg));
            }
        };
        need(
            self.te_ms < self.tr_ms,
            "te_ms",
            format!(
                "TE {} ms must be shorter than TR {} ms",
                self.te_ms, self.tr_ms
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
                ti < self.tr_ms,
                "ti_ms",
                format!("TI {ti} ms must be shorter than TR {} ms", self.tr_ms),
            ),
        }
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
        let esp = self.echo_spacing_ms();
        if self.is_fast_spin_echo() {
            let echo = self.te_ms / esp;
            need(
                self.te_ms >= esp * (1.0 - 1e-6),
                "te_ms",
                format!(
                    "TE {} ms is shorter than the echo spacing {esp:.2} ms: a fast spin echo's first echo comes one spacing after the excitation",
                    self.te_ms
                ),
            );
            need(
                echo < 1.0 || (echo - echo.round()).abs() < 1e-3 * echo,
                "echo_spacing_ms",
                format!(
                    "TE {} ms must be a whole number of echo spacings ({esp} ms) to fall on an echo of the train",
                    self.te_ms
                ),
            );
            need(
                echo.round() <= self.etl as f64,
                "te_ms",
                format!(
                    "TE {} ms comes after the last of the {} echoes ({:.1} ms)",
                    self.te_ms,
                    self.etl,
                    self.etl as f64 * esp
                ),
            );
            let train = self.etl as f64 * esp + self.ti_ms.unwrap_or(0.0);
            need(
                train < self.tr_ms,
                "etl",
                format!(
                    "the echo train ({} × {esp:.2} ms{}) does not fit in TR {} ms",
                    self.etl,
                    self.ti_ms
                        .map_or(String::new(), |ti| format!(" after TI {ti} ms")),
                    self.tr_ms
                ),
            );
        }
        let trained = self.is_fast_spin_echo() || self.epi || self.sequence == Sequence::Mprage;
        need(
            self.echo_spacing_ms.is_none() || trained,
            "echo_spacing_ms",
            "an echo spacing applies to echo trains: a fast spin echo (etl > 1), EPI or MPRAGE"
                .into(),
        );
        if self.epi {
            need(
                matches!(
                    self.sequence,
                    Sequence::SpinEcho | Sequence::Dwi | Sequence::SpoiledGre
                ),
                "epi",
                format!(
                    "an EPI readout follows a spin echo, DWI or spoiled GRE excitation, not {:?}",
                    self.sequence
                ),
            );
            let before = self.epi_lines_before_centre();
            need(
                self.te_ms >= before as f64 * esp,
                "te_ms",
                format!(
                    "TE {} ms is shorter than the EPI readout before the k-space centre: {before} lines × {esp:.2} ms = {:.1} ms; raise bandwidth_hz_per_px or use partial_fourier or undersampling",
                    self.te_ms,
                    before as f64 * esp
                ),
            );
        }
        need(
            self.artifacts.epi_echo_shift_samples.is_none() || self.epi,
            "artifacts.epi_echo_shift_samples",
            "the Nyquist ghost's odd/even echo shift needs an EPI readout (`epi: true`)".into(),
        );
        if let Some(u) = &self.undersampling {
            let n_phase = self.matrix[1 - self.readout.index()];
            need(
                u.factor <= n_phase as f64 / 2.0,
                "undersampling.factor",
                format!(
                    "acceleration {} exceeds half the {n_phase} phase lines",
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
        let unfolds = self.combine == Combine::Sense
            && self
                .undersampling
                .as_ref()
                .is_some_and(|u| u.pattern == SamplingPattern::Regular && u.factor > 1.0);
        if let (true, Some(u)) = (unfolds, &self.undersampling) {
            let n_phase = self.matrix[1 - self.readout.index()];
            need(
                u.factor.fract() == 0.0,
                "undersampling.factor",
                format!("SENSE unfolds integer accelerations; got R = {}", u.factor),
            );
            need(
                u.factor <= self.coils as f64,
                "undersampling.factor",
                format!(
                    "SENSE cannot unfold R = {} with {} coil(s): R must not exceed the coils",
                    u.factor, self.coils
                ),
            );
            need(
                n_phase % (u.factor.max(1.0) as usize) == 0,
                "undersampling.factor",
                format!(
                    "SENSE needs the {n_phase} phase lines to be a multiple of R = {}",
                    u.factor
                ),
            );
            need(
                self.partial_fourier == 1.0,
                "partial_fourier",
                "SENSE unfolding here needs full (not partial) Fourier sampling".into(),
            );
        }
        if self.combine == Combine::Grappa {
            let regular = self.undersampling.as_ref().filter(|u| {
                u.pattern == SamplingPattern::Regular && u.factor > 1.0 && u.factor.fract() == 0.0
            });
            need(
                regular.is_some(),
                "undersampling",
                "GRAPPA needs regular undersampling by an integer factor R > 1".into(),
            );
            need(
                self.coils >= 2,
                "coils",
                "GRAPPA synthesises lines from several coils: use 2 or more".into(),
            );
            if let Some(u) = regular {
                need(
                    u.center_lines as f64 >= u.factor + 3.0,
                    "undersampling.center_lines",
                    format!(
                        "GRAPPA calibrates on the centre lines: R = {} needs at least {} of them",
                        u.factor,
                        u.factor as usize + 3
                    ),
                );
            }
            need(
                self.partial_fourier == 1.0,
                "partial_fourier",
                "GRAPPA here needs full (not partial) Fourier sampling".into(),
            );
        }
        need(
            self.coil_noise_correlation == 0.0
                || self.coils < 2
                || super::noise::coil_noise_cholesky(self).is_some(),
            "coil_noise_correlation",
            format!(
                "a noise correlation of {} between neighbouring coils is not a valid covariance for {} coils",
                self.coil_noise_correlation, self.coils
            ),
        );
        need(
            !self.adc_map || (self.sequence == Sequence::Dwi && self.b_value_s_mm2 > 0.0),
            "adc_map",
            "an ADC map needs `sequence: dwi` with b_value_s_mm2 > 0".into(),
        );
        need(
            !self.g_factor_map || unfolds,
            "g_factor_map",
            "a g-factor map needs SENSE unfolding: combine: sense with regular undersampling"
                .into(),
        );
        if let Some(m) = &self.artifacts.motion {
            need(
                m.translation_mm
                    .iter()
                    .chain(&m.rotation_deg)
                    .all(|v| v.is_finite()),
                "artifacts.motion",
                "motion must be finite".into(),
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
        p.fov_mm = [250.0, 0.5];
        let e = p.validate();
        let mut f: Vec<&str> = e.iter().map(|(f, _)| f.as_str()).collect();
        f.sort_unstable();
        assert_eq!(
            f,
            [
                "coils",
                "fov_mm[1]",
                "matrix[0]",
                "partial_fourier",
                "te_ms"
            ]
        );
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
