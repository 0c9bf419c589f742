//! The CT protocol of one arm: tube, filtration, geometry, detector, reconstruction.
//! A validated config with named scanner presets (house style: validate before any work).
//!
//! This type is also the pipeline's CT arm: a YAML arm is a partial overlay of these fields
//! on the scanner preset, so each field, its documentation and its allowed range are declared
//! here once (the `range` attributes feed both the published schema and [`CtProtocol::validate`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::tissue::contrast::Phase;

/// Reconstruction kernel: the ramp filter apodised by a window (see `recon::Window`).
/// Sharper kernels pass more high frequencies: sharper edges, more noise. A named kernel, or
/// `{mtf50_lp_cm: x}`: a Gaussian window whose width is solved so that the image's MTF50 at
/// the isocentre, on this arm's geometry, is x line pairs per cm (see `mtf_model`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kernel {
    Ramp,
    SheppLogan,
    Smooth,
    Standard,
    Sharp,
    /// Target MTF50 in lp/cm (soft tissue ≈ 3, standard body ≈ 4, bone/lung ≈ 6–8).
    Mtf50LpCm(#[schemars(range(min = 0.5, max = 30.0))] f64),
}

/// Bowtie filter: water-equivalent thickness that grows with fan angle (see `spectrum::bowtie_mm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Bowtie {
    None,
    Small,
    Medium,
    Large,
}

/// `Axial`: fan beam, one rotation per recon slice. `Cone`: circular cone beam + FDK,
/// step-and-shoot rotations each covering the detector's z width at isocentre. `Helical`:
/// the table moves `pitch` × the collimated width per rotation; helical FDK.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScanMode {
    /// Fan beam, slice by slice, FBP.
    Axial,
    /// Circular cone beam, FDK.
    Cone,
    /// Helical cone beam (table feed per rotation = pitch × rows × pixel), helical FDK.
    Helical,
}

/// Automatic tube-current modulation (see `tcm`): `mas` becomes the load at the reference
/// water-equivalent diameter.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TubeCurrentModulation {
    /// Within each rotation, load ∝ √(attenuation) of each view (mean kept).
    pub angular: bool,
    /// Along z, load follows the subject's water-equivalent diameter.
    pub longitudinal: bool,
    /// 1: constant central noise across sizes; 0: fixed load.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub strength: f64,
    /// Water-equivalent diameter at which the load is `mas`, mm.
    #[schemars(range(min = 100.0, max = 600.0))]
    pub reference_diameter_mm: f64,
}

impl Default for TubeCurrentModulation {
    fn default() -> Self {
        TubeCurrentModulation {
            angular: false,
            longitudinal: false,
            strength: 0.5,
            reference_diameter_mm: 300.0,
        }
    }
}

impl TubeCurrentModulation {
    pub fn is_on(&self) -> bool {
        self.angular || self.longitudinal
    }
}

/// Iodinated contrast of an arm: the phase after an intravenous bolus at which it scans
/// (organ iodine concentrations per phase: `tissue::contrast`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Contrast {
    pub phase: Phase,
}

/// One CT protocol. Distances in mm; the detector is described at isocentre.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CtProtocol {
    /// Tube peak voltage in kVp.
    #[schemars(range(min = 70.0, max = 140.0))]
    pub kvp: f64,
    /// Tube current–time product per rotation in mAs.
    #[schemars(range(min = 0.1, max = 2000.0))]
    pub mas: f64,
    /// Added aluminium filtration in mm, beyond the inherent 2.5 mm Al of the reference spectra.
    #[schemars(range(min = 0.0, max = 20.0))]
    pub filtration_mm_al: f64,
    /// Added copper filtration in mm.
    #[schemars(range(min = 0.0, max = 2.0))]
    pub filtration_mm_cu: f64,
    /// Bowtie filter.
    pub bowtie: Bowtie,
    /// Views per rotation (360°).
    #[schemars(range(min = 8, max = 20000))]
    pub views: usize,
    /// Detector columns.
    #[schemars(range(min = 16, max = 8192))]
    pub detector_cols: usize,
    /// Detector rows.
    #[schemars(range(min = 1, max = 2048))]
    pub detector_rows: usize,
    /// Detector pixel pitch projected to the isocentre in mm (columns and rows).
    #[schemars(range(min = 0.05, max = 5.0))]
    pub pixel_mm: f64,
    /// Source–isocentre distance in mm.
    #[schemars(range(min = 100.0, max = 2000.0))]
    pub sid_mm: f64,
    /// Source–detector distance in mm.
    #[schemars(range(min = 100.0, max = 3000.0))]
    pub sdd_mm: f64,
    /// Focal-spot width in mm (its penumbra blurs each projection; 0: a point source).
    #[serde(default = "default_focal_spot_mm")]
    #[schemars(range(min = 0.0, max = 3.0))]
    pub focal_spot_mm: f64,
    /// Detector cells integrate over their width instead of sampling a point.
    #[serde(default = "yes")]
    pub detector_aperture: bool,
    /// Fraction of a cell's signal that crosstalk passes to each of its two neighbours along
    /// the detector row (see `aperture::crosstalk`).
    #[serde(default = "default_crosstalk")]
    #[schemars(range(min = 0.0, max = 0.2))]
    pub detector_crosstalk: f64,
    /// Fan-beam axial, circular cone-beam or helical scanning.
    pub scan_mode: ScanMode,
    /// Helical pitch: table feed per rotation / collimated width (rows × pixel). Up to 1:
    /// above it a plane sees less than a full turn and the reconstruction would need
    /// short-scan weights before filtering (see `helical::backproject`).
    #[serde(default = "default_pitch")]
    #[schemars(range(min = 0.1, max = 1.0))]
    pub pitch: f64,
    /// Tube-current modulation (angular and/or longitudinal); off by default.
    #[serde(default)]
    pub tube_current_modulation: TubeCurrentModulation,
    /// Object scatter reaching the detector (kernel model calibrated by Monte Carlo; see
    /// `scatter`), left uncorrected. Off by default.
    #[serde(default)]
    pub scatter: bool,
    /// Anti-scatter grid ratio (lamella height / gap) of the one-dimensional focused grid;
    /// 0: no grid. Used when `scatter` is on.
    #[serde(default = "default_grid_ratio")]
    #[schemars(range(min = 0.0, max = 60.0))]
    pub grid_ratio: f64,
    /// Reconstruction kernel.
    pub kernel: Kernel,
    /// Reconstruction field of view (square) in mm; default: the object grid's extent. At most
    /// the scan field's diameter (the circle the fan covers, `scan_field_radius_mm`), or 1.5×
    /// it with `extended_fov`; the square's corners outside that circle read
    /// `out_of_field_hu`.
    #[schemars(range(min = 10.0, max = 1000.0))]
    pub fov_mm: f64,
    /// Extended-FOV reconstruction (axial scans): each view's projection is extrapolated past
    /// the detector's edges by the water cylinder that continues its edge value and slope
    /// (Ohnesorge et al., Med Phys 2000;27:39), so a body wider than the scan field keeps its
    /// skin line and loses the truncation rim; `fov_mm` may reach 1.5× the scan field.
    #[serde(default)]
    pub extended_fov: bool,
    /// The value of pixels outside the reconstructed field (the square's corners), HU, as a
    /// scanner's pixel padding value; air by default.
    #[serde(default = "default_out_of_field_hu")]
    #[schemars(range(min = -4000.0, max = -1000.0))]
    pub out_of_field_hu: f64,
    /// Reconstruction matrix (matrix × matrix pixels over `fov_mm`); default: the object grid.
    #[schemars(range(min = 8, max = 4096))]
    pub matrix: usize,
    /// Reconstructed slice thickness (and spacing) in mm; default: the object grid's.
    #[schemars(range(min = 0.1, max = 20.0))]
    pub slice_mm: f64,
    /// First-order water beam-hardening correction.
    pub beam_hardening_correction: bool,
    /// Second-pass bone beam-hardening correction (the first-pass image split into water and
    /// bone, reprojected, the bone's extra hardening removed; see `bone_correction`). Needs
    /// `beam_hardening_correction`.
    #[serde(default = "yes")]
    pub bone_correction: bool,
    /// Contrast phase (`{phase: native | arterial | portal_venous | delayed}`); native by
    /// default. The same subject can be scanned in several phases by several arms.
    #[serde(default)]
    pub contrast: Contrast,
    /// Quantum and electronic noise on.
    pub noise: bool,
    /// Electronic noise SD per detector reading, in photon-count units.
    #[schemars(range(min = 0.0, max = 1000.0))]
    pub electronic_noise: f64,
}

const PRESETS: &[&str] = &["generic64"];

fn yes() -> bool {
    true
}

fn default_pitch() -> f64 {
    1.0
}

/// A one-dimensional CT anti-scatter collimator: ≈ 20–30 mm lamellae at ≈ 1 mm pitch.
fn default_grid_ratio() -> f64 {
    25.0
}

/// Off: scanners calibrate most of their detectors' crosstalk out, and the blur of the
/// remainder is within the aperture model. Set it (a few per cent per neighbour for a
/// solid-state detector with reflector septa) to image an uncorrected detector.
fn default_crosstalk() -> f64 {
    0.0
}

/// A typical large focal spot of a body CT tube (≈ 0.9–1.2 mm nominal).
fn default_focal_spot_mm() -> f64 {
    1.0
}

fn default_out_of_field_hu() -> f64 {
    -1024.0
}

/// How far past the scan field an extended-FOV reconstruction reaches, as a factor of its
/// radius (clinical extended-FOV reconstructions reach 650–800 mm from a 500 mm field).
pub const EXTENDED_FOV_FACTOR: f64 = 1.5;

impl CtProtocol {
    /// Named scanner presets. `generic64`: XCIST-like generic 64-row scanner (SID 541 mm,
    /// SDD 949 mm, 990 × 64 detector of 1.0 mm pitch at the detector → 0.57 mm at isocentre,
    /// a 500 mm scan field as clinical 64-slice scanners have (XCIST's 900 curved columns
    /// reach 494 mm; this flat virtual detector needs 990 at the same isocentre pitch),
    /// 984 views per rotation, 1.0 mm focal spot, cells integrating over their pitch; no crosstalk), 120 kVp, 200 mAs, standard kernel, axial, 400 mm FOV, 256²
    /// matrix, 2.5 mm slices, medium bowtie, water and bone beam-hardening corrections on.
    pub fn preset(name: &str) -> Option<CtProtocol> {
        match name {
            "generic64" => Some(CtProtocol {
                kvp: 120.0,
                mas: 200.0,
                filtration_mm_al: 3.5,
                filtration_mm_cu: 0.0,
                bowtie: Bowtie::Medium,
                views: 984,
                detector_cols: 990,
                detector_rows: 64,
                pixel_mm: 1.0 * 541.0 / 949.0,
                sid_mm: 541.0,
                sdd_mm: 949.0,
                focal_spot_mm: default_focal_spot_mm(),
                detector_aperture: true,
                detector_crosstalk: default_crosstalk(),
                scan_mode: ScanMode::Axial,
                pitch: default_pitch(),
                tube_current_modulation: TubeCurrentModulation::default(),
                scatter: false,
                grid_ratio: default_grid_ratio(),
                kernel: Kernel::Standard,
                fov_mm: 400.0,
                extended_fov: false,
                out_of_field_hu: default_out_of_field_hu(),
                matrix: 256,
                slice_mm: 2.5,
                beam_hardening_correction: true,
                bone_correction: true,
                contrast: Contrast::default(),
                noise: true,
                electronic_noise: 2.0,
            }),
            _ => None,
        }
    }

    pub fn preset_names() -> &'static [&'static str] {
        PRESETS
    }

    /// Radius (mm) of the scan field of view: the circle about the rotation axis that every
    /// view's fan covers, sid·sin(atan(half detector width at isocentre / sid)) for this flat
    /// virtual detector.
    pub fn scan_field_radius_mm(&self) -> f64 {
        let half_det = 0.5 * self.detector_cols as f64 * self.pixel_mm;
        self.sid_mm * (half_det / self.sid_mm).atan().sin()
    }

    /// Radius (mm) of the field reconstructed: the scan field, or its extension.
    pub fn reconstructed_field_radius_mm(&self) -> f64 {
        let r = self.scan_field_radius_mm();
        if self.extended_fov {
            (EXTENDED_FOV_FACTOR * r).min(0.5 * self.sid_mm * std::f64::consts::SQRT_2)
        } else {
            r
        }
    }

    /// Every field checked: the declared ranges, then the rules between fields. Each problem
    /// names the field and the offending value.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut e = crate::bounds::check(self);
        if self.sdd_mm <= self.sid_mm {
            e.push((
                "sdd_mm".into(),
                format!("SDD {} mm must exceed SID {} mm", self.sdd_mm, self.sid_mm),
            ));
        }
        if self.sid_mm <= 0.5 * self.fov_mm * std::f64::consts::SQRT_2 {
            e.push((
                "sid_mm".into(),
                format!(
                    "SID {} mm must exceed the FOV's half-diagonal {:.1} mm (source inside the field)",
                    self.sid_mm,
                    0.5 * self.fov_mm * std::f64::consts::SQRT_2
                ),
            ));
        }
        if self.bone_correction && !self.beam_hardening_correction {
            e.push((
                "bone_correction".into(),
                "the bone correction is a second pass after the water correction: set \
                 beam_hardening_correction: true, or bone_correction: false"
                    .into(),
            ));
        }
        if let Kernel::Mtf50LpCm(target) = self.kernel {
            let limit = super::mtf_model::sharpest_mtf50_lp_cm(self);
            if target >= limit {
                e.push((
                    "kernel.mtf50_lp_cm".into(),
                    format!(
                        "MTF50 {target} lp/cm is beyond this geometry: the unapodised ramp gives \
                         {limit:.2} lp/cm (focal spot, detector aperture, crosstalk and \
                         interpolation); ask for less, or use `kernel: sharp`"
                    ),
                ));
            }
        }
        // The reconstruction FOV's inscribed circle must lie in the scan field (or in its
        // extension): the square's corners beyond it are padding.
        let r_scan = self.scan_field_radius_mm();
        let reach = self.reconstructed_field_radius_mm();
        if 0.5 * self.fov_mm > reach + 1e-9 {
            let how = if self.extended_fov {
                format!("the extended field of view {:.1} mm", 2.0 * reach)
            } else {
                format!("the scan field of view {:.1} mm", 2.0 * r_scan)
            };
            e.push((
                "fov_mm".into(),
                format!(
                    "the reconstruction FOV {} mm is wider than {how} (the circle {} columns × \
                     {:.3} mm at isocentre cover from a {} mm source distance); use fov_mm ≤ \
                     {:.1}{}",
                    self.fov_mm,
                    self.detector_cols,
                    self.pixel_mm,
                    self.sid_mm,
                    2.0 * reach,
                    if self.extended_fov {
                        String::new()
                    } else {
                        format!(
                            ", or extended_fov: true (up to {:.1} mm)",
                            2.0 * (EXTENDED_FOV_FACTOR * r_scan)
                                .min(0.5 * self.sid_mm * std::f64::consts::SQRT_2)
                        )
                    }
                ),
            ));
        }
        if self.extended_fov && self.scan_mode != ScanMode::Axial {
            e.push((
                "extended_fov".into(),
                "the extended-FOV reconstruction extrapolates fan-beam (axial) projections: use \
                 scan_mode: axial"
                    .into(),
            ));
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_is_valid_and_xcist_like() {
        let p = CtProtocol::preset("generic64").unwrap();
        assert!(p.validate().is_empty(), "{:?}", p.validate());
        assert!((p.pixel_mm - 0.570).abs() < 0.001);
        assert!(CtProtocol::preset("nope").is_none());
        assert_eq!(CtProtocol::preset_names(), &["generic64"]);
    }

    #[test]
    fn validation_names_fields_and_values() {
        let mut p = CtProtocol::preset("generic64").unwrap();
        p.kvp = 150.0;
        p.views = 4;
        p.sdd_mm = 500.0;
        let e = p.validate();
        let fields: Vec<_> = e.iter().map(|(f, _)| f.as_str()).collect();
        assert!(fields.contains(&"kvp") && fields.contains(&"views") && fields.contains(&"sdd_mm"));
        assert!(e.iter().any(|(f, m)| *f == "kvp" && m.contains("150")));
    }

    #[test]
    fn enums_use_snake_case() {
        let s = serde_json::to_string(&Kernel::SheppLogan).unwrap();
        assert_eq!(s, "\"shepp_logan\"");
        let b: Bowtie = serde_json::from_str("\"large\"").unwrap();
        assert_eq!(b, Bowtie::Large);
        let k: Kernel = serde_json::from_str(r#"{"mtf50_lp_cm": 4.5}"#).unwrap();
        assert_eq!(k, Kernel::Mtf50LpCm(4.5));
    }
}
