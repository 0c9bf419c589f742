//! The CT protocol of one arm: tube, filtration, geometry, detector, reconstruction.
//! A validated config with named scanner presets (house style: validate before any work).

use serde::{Deserialize, Serialize};

/// Reconstruction kernel: the ramp filter apodised by a window (see `recon::kernel_window`).
/// Sharper kernels pass more high frequencies: sharper edges, more noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kernel {
    Ramp,
    SheppLogan,
    Smooth,
    Standard,
    Sharp,
}

/// Bowtie filter: water-equivalent thickness that grows with fan angle (see `spectrum::bowtie_mm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bowtie {
    None,
    Small,
    Medium,
    Large,
}

/// `Axial`: fan beam, one rotation per recon slice. `Cone`: circular cone beam + FDK,
/// step-and-shoot rotations each covering the detector's z width at isocentre.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanMode {
    Axial,
    Cone,
}

/// One CT protocol. Distances in mm; the detector is described at isocentre.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CtProtocol {
    /// Tube peak voltage, kV (70–140).
    pub kvp: f64,
    /// Tube current–time product per rotation, mAs.
    pub mas: f64,
    /// Added aluminium filtration, mm, beyond the inherent 2.5 mm Al of the reference spectra.
    pub filtration_mm_al: f64,
    /// Added copper filtration, mm.
    pub filtration_mm_cu: f64,
    pub bowtie: Bowtie,
    /// Views per rotation (360°).
    pub views: usize,
    pub detector_cols: usize,
    pub detector_rows: usize,
    /// Detector pixel pitch projected to isocentre, mm (columns and rows).
    pub pixel_mm: f64,
    /// Source–isocentre distance, mm.
    pub sid_mm: f64,
    /// Source–detector distance, mm.
    pub sdd_mm: f64,
    pub scan_mode: ScanMode,
    pub kernel: Kernel,
    /// Reconstruction field of view (square), mm.
    pub fov_mm: f64,
    /// Reconstruction matrix (matrix × matrix pixels over `fov_mm`).
    pub matrix: usize,
    /// Reconstructed slice thickness (and spacing), mm.
    pub slice_mm: f64,
    pub beam_hardening_correction: bool,
    /// Quantum + electronic noise on.
    pub noise: bool,
    /// Electronic noise SD per detector reading, in photon-count units.
    pub electronic_noise: f64,
}

const PRESETS: &[&str] = &["generic64"];

impl CtProtocol {
    /// Named scanner presets. `generic64`: XCIST-like generic 64-row scanner (SID 541 mm,
    /// SDD 949 mm, 900 × 64 detector of 1.0 mm pitch at the detector → 0.57 mm at isocentre,
    /// 984 views per rotation), 120 kVp, 200 mAs, standard kernel, axial, 400 mm FOV, 256²
    /// matrix, 2.5 mm slices, medium bowtie, beam-hardening correction on.
    pub fn preset(name: &str) -> Option<CtProtocol> {
        match name {
            "generic64" => Some(CtProtocol {
                kvp: 120.0,
                mas: 200.0,
                filtration_mm_al: 3.5,
                filtration_mm_cu: 0.0,
                bowtie: Bowtie::Medium,
                views: 984,
                detector_cols: 900,
                detector_rows: 64,
                pixel_mm: 1.0 * 541.0 / 949.0,
                sid_mm: 541.0,
                sdd_mm: 949.0,
                scan_mode: ScanMode::Axial,
                kernel: Kernel::Standard,
                fov_mm: 400.0,
                matrix: 256,
                slice_mm: 2.5,
                beam_hardening_correction: true,
                noise: true,
                electronic_noise: 2.0,
            }),
            _ => None,
        }
    }

    pub fn preset_names() -> &'static [&'static str] {
        PRESETS
    }

    /// Every field checked; each problem names the field and the offending value.
    pub fn validate(&self) -> Vec<(&'static str, String)> {
        let mut e: Vec<(&'static str, String)> = Vec::new();
        let mut range = |field: &'static str, v: f64, lo: f64, hi: f64, unit: &str| {
            if !(v.is_finite() && v >= lo && v <= hi) {
                e.push((field, format!("{v} {unit} is outside {lo}–{hi} {unit}")));
            }
        };
        range("kvp", self.kvp, 70.0, 140.0, "kV");
        range("mas", self.mas, 1e-3, 1e5, "mAs");
        range("filtration_mm_al", self.filtration_mm_al, 0.0, 20.0, "mm");
        range("filtration_mm_cu", self.filtration_mm_cu, 0.0, 2.0, "mm");
        range("pixel_mm", self.pixel_mm, 0.05, 5.0, "mm");
        range("sid_mm", self.sid_mm, 100.0, 2000.0, "mm");
        range("sdd_mm", self.sdd_mm, 100.0, 3000.0, "mm");
        range("fov_mm", self.fov_mm, 10.0, 1000.0, "mm");
        range("slice_mm", self.slice_mm, 0.1, 20.0, "mm");
        range(
            "electronic_noise",
            self.electronic_noise,
            0.0,
            1e4,
            "photons",
        );
        if self.views < 8 || self.views > 20_000 {
            e.push((
                "views",
                format!("{} views per rotation; need 8–20000", self.views),
            ));
        }
        if self.detector_cols < 16 || self.detector_cols > 8192 {
            e.push((
                "detector_cols",
                format!("{} columns; need 16–8192", self.detector_cols),
            ));
        }
        if self.detector_rows < 1 || self.detector_rows > 2048 {
            e.push((
                "detector_rows",
                format!("{} rows; need 1–2048", self.detector_rows),
            ));
        }
        if self.matrix < 8 || self.matrix > 4096 {
            e.push(("matrix", format!("{} pixels; need 8–4096", self.matrix)));
        }
        if self.sdd_mm <= self.sid_mm {
            e.push((
                "sdd_mm",
                format!("SDD {} mm must exceed SID {} mm", self.sdd_mm, self.sid_mm),
            ));
        }
        if self.sid_mm <= 0.5 * self.fov_mm * std::f64::consts::SQRT_2 {
            e.push((
                "sid_mm",
                format!(
                    "SID {} mm must exceed the FOV's half-diagonal {:.1} mm (source inside the field)",
                    self.sid_mm,
                    0.5 * self.fov_mm * std::f64::consts::SQRT_2
                ),
            ));
        }
        let half_det = 0.5 * self.detector_cols as f64 * self.pixel_mm;
        // The fan must cover the FOV's inscribed circle, or the recon is truncated.
        let fan_half = (half_det / self.sid_mm).atan();
        let needed = 0.5 * self.fov_mm / self.sid_mm;
        if self.sid_mm.is_finite() && fan_half.sin() < needed.min(1.0) - 1e-9 {
            e.push((
                "detector_cols",
                format!(
                    "{} columns × {} mm cover ±{:.1} mm at isocentre, less than the FOV radius {:.1} mm",
                    self.detector_cols,
                    self.pixel_mm,
                    half_det,
                    0.5 * self.fov_mm
                ),
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
        let fields: Vec<_> = e.iter().map(|(f, _)| *f).collect();
        assert!(fields.contains(&"kvp") && fields.contains(&"views") && fields.contains(&"sdd_mm"));
        assert!(e.iter().any(|(f, m)| *f == "kvp" && m.contains("150")));
    }

    #[test]
    fn enums_use_snake_case() {
        let s = serde_json::to_string(&Kernel::SheppLogan).unwrap();
        assert_eq!(s, "\"shepp_logan\"");
        let b: Bowtie = serde_json::from_str("\"large\"").unwrap();
        assert_eq!(b, Bowtie::Large);
    }
}
