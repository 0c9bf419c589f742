//! CT acquisition simulator: tissue object → the HU image a CT protocol would produce.
//!
//! Stages (each in its own file): protocol (validated config, presets) → spectrum (tungsten,
//! filtration, bowtie) → materials (μ/ρ and basis decomposition, in
//! `tissue::attenuation`) → projector (Joseph; parallel,
//! fan, cone) → polychromatic (Beer–Lambert over energy, energy-integrating detector, water
//! beam-hardening correction) → noise (compound Poisson + electronic) → recon (FBP / FDK with
//! apodised ramps) → bone correction (second pass) → HU → dose (CTDIvol from the beam by Monte
//! Carlo in `ctdi`/`mc`; SSDE in `dose`). Scan modes: axial, circular cone, helical
//! (`helical`); tube-current modulation (`tcm`); optional object scatter (`scatter`).

pub mod aperture;
mod basis;
pub mod bone_correction;
pub mod ctdi;
pub mod dose;
pub mod extended_fov;
pub mod geometry;
pub mod helical;
mod interaction_tables;
mod linsolve;
pub mod mc;
pub mod mtf_model;
pub mod noise;
pub mod phantom;
pub mod polychromatic;
pub mod projector;
pub mod protocol;
pub mod recon;
pub mod scatter;
mod simd;
pub mod spectrum;
pub mod tables;
pub mod tcm;

#[cfg(test)]
mod tests;

use rayon::prelude::*;

pub use geometry::{ConeGeometry, FanGeometry, ParallelGeometry, Plane};
pub use projector::{project_cone, project_fan, project_parallel};
pub use protocol::{Bowtie, Contrast, CtProtocol, Kernel, Phase, ScanMode, TubeCurrentModulation};
pub use recon::{fbp_fan, fbp_parallel, fdk, Window};
pub use spectrum::Spectrum;

use crate::rng::{stream, Stage};
use crate::tissue::attenuation::{
    self as materials, basis_coeffs, material_index, mu_rho, BasisCoeffs,
};
use crate::tissue::contrast::PERFUSION;
use crate::tissue::object::CtMaps;
use crate::volume::{Grid, Volume};
use basis::BasisSource;
use bone_correction::BoneModel;
use polychromatic::{apply_correction, water_correction, PolyTable, BH_DEGREE};

/// The reconstructed image and its dose and calibration figures.
#[derive(Clone, Debug)]
pub struct CtResult {
    /// HU on the recon grid (matrix × matrix × slices, centred on the rotation axis and on
    /// the object's z centre).
    pub image: Volume<f32>,
    pub ctdi_vol_mgy: f64,
    /// Water-equivalent diameter of the subject in the image (AAPM 220), mm.
    pub water_equivalent_diameter_mm: f64,
    /// Size-specific dose estimate (AAPM 204) from the CTDIvol and that diameter, mGy.
    pub ssde_mgy: f64,
    /// Energy (keV) whose μ_water calibrates HU (see `Spectrum::effective_energy_kev`).
    pub effective_energy_kev: f64,
    /// Mean tube load per rotation (mAs) of the views behind each recon slice: the protocol's
    /// `mas` without tube-current modulation.
    pub mas_per_slice: Vec<f64>,
    /// How far (mm) the body reaches past the scan field's radius, when it does: its
    /// projections are cut at the detector's edges (truncation), unless `extended_fov`.
    pub truncation_mm: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum CtError {
    #[error("CT protocol: {}", .0.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; "))]
    Protocol(Vec<(String, String)>),
    #[error(
        "CT object: material `{name}` (index {index}) has no attenuation data; known: {known}"
    )]
    UnknownMaterial {
        name: String,
        index: usize,
        known: String,
    },
    #[error("CT object: voxel material index {index} but only {count} material names")]
    MaterialIndex { index: usize, count: usize },
    #[error("CT object: the {map} map's grid {got:?} differs from the hu map's {expected:?}")]
    GridMismatch {
        map: &'static str,
        got: [usize; 3],
        expected: [usize; 3],
    },
    #[error("CT spectrum: {0}")]
    Spectrum(String),
    #[error(
        "CT contrast: the arm scans in the {0:?} phase but the object has no perfusion map \
         (a phantom without organs); use contrast: {{phase: native}}"
    )]
    NoPerfusion(Phase),
}

/// Water-equivalent thickness used to define the effective energy (a 20 cm body), mm.
pub const CALIBRATION_WATER_MM: f64 = 200.0;

/// Detector efficiency × geometric efficiency applied to the SpekPy fluence, calibrated so
/// that a 200 mm water cylinder at 120 kVp, 200 mAs, standard kernel, generic64 geometry
/// (0.78 mm pixels, 2.5 mm slices) shows ≈ 10 HU central noise (must-show 5 figures).
pub const DETECTOR_EFFICIENCY: f64 = 0.35;

/// Simulates the scan (see the module docs for the stages). Deterministic: each view's noise
/// comes from `stream(noise_seed, Acquire, slice_or_rotation << 32 | view)`.
pub fn acquire(obj: &CtMaps, protocol: &CtProtocol, noise_seed: u64) -> Result<CtResult, CtError> {
    let spec = spectrum::Spectrum::tungsten(
        protocol.kvp,
        protocol.filtration_mm_al,
        protocol.filtration_mm_cu,
    );
    acquire_with_spectrum(obj, protocol, &spec, noise_seed)
}

/// [`acquire`] with an explicit spectrum (photons/mm²/mAs at 1 m per bin; one bin gives a
/// monochromatic scan). `protocol.kvp` then only sets the dose estimate.
pub fn acquire_with_spectrum(
    obj: &CtMaps,
    protocol: &CtProtocol,
    spec: &Spectrum,
    noise_seed: u64,
) -> Result<CtResult, CtError> {
    // Stage 1: validate protocol, object and spectrum.
    let problems = protocol.validate();
    if !problems.is_empty() {
        return Err(CtError::Protocol(problems));
    }
    let g = &obj.hu.grid;
    let phase = protocol.contrast.phase;
    let perfusion = match (&obj.perfusion, phase) {
        (_, Phase::Native) => None,
        (Some(p), _) => Some(p),
        (None, _) => return Err(CtError::NoPerfusion(phase)),
    };
    for (name, got) in [
        ("density", &obj.density.grid),
        ("material", &obj.material.grid),
    ]
    .into_iter()
    .chain(perfusion.map(|p| ("perfusion", &p.grid)))
    {
        if got.dims != g.dims {
            return Err(CtError::GridMismatch {
                map: name,
                got: got.dims,
                expected: g.dims,
            });
        }
    }
    if spec.kev.is_empty()
        || spec.total() <= 0.0
        || spec.kev.iter().any(|&e| !(10.0..=150.0).contains(&e))
    {
        return Err(CtError::Spectrum(format!(
            "{} bins, total {:e}; need ≥ 1 bin within 10–150 keV and photons > 0",
            spec.kev.len(),
            spec.total()
        )));
    }

    // Stage 2: basis decomposition per material, then per voxel (g/cm³ of each basis).
    let mut coeffs: Vec<BasisCoeffs> = Vec::with_capacity(obj.materials.len());
    for (i, name) in obj.materials.iter().enumerate() {
        coeffs.push(basis_coeffs(name).ok_or_else(|| CtError::UnknownMaterial {
            name: name.to_string(),
            index: i,
            known: materials::material_names().join(", "),
        })?);
    }
    if let Some(&bad) = obj
        .material
        .data
        .iter()
        .find(|&&m| m as usize >= coeffs.len())
    {
        return Err(CtError::MaterialIndex {
            index: bad as usize,
            count: coeffs.len(),
        });
    }
    // Contrast: each voxel's iodine (g/cm³) added to its own material, by mass.
    let perfusion = perfusion.map(|perf| {
        let iodine: Vec<f32> = PERFUSION
            .iter()
            .map(|c| (c.iodine_mg_ml(phase) / 1000.0) as f32)
            .collect();
        (&perf.data[..], iodine)
    });
    let plane = g.dims[0] * g.dims[1];
    let basis = BasisSource::new(
        &obj.material.data,
        &obj.density.data,
        perfusion,
        &coeffs,
        plane,
    );
    let has_iodine = basis.has_iodine();

    // Stage 3: beam quality and HU calibration.
    let w = material_index("water").unwrap();
    let e_eff = spec.effective_energy_kev(CALIBRATION_WATER_MM);
    let mu_w_eff = mu_rho(w, e_eff); // cm²/g; water 1 g/cm³ → cm⁻¹
    let recon_grid = recon_grid(g, protocol);
    // Bone-bearing materials only: light materials (air, fat, soft tissue) carry small bone
    // coefficients from the two-basis fit, which are no bone for the correction.
    let bone_material: Vec<bool> = coeffs
        .iter()
        .map(|c| c[1] > bone_correction::BONE_COEFF_MIN)
        .collect();
    let has_bone = obj.material.data.iter().any(|&m| bone_material[m as usize]);
    let mu_basis_mm = materials::BASIS.map(|b| mu_rho(material_index(b).unwrap(), e_eff) / 10.0);
    let pixel_mm2 = g.spacing_mm[0] * g.spacing_mm[1];
    let slice_dw = basis.map_planes::<3, f64>(|s| {
        tcm::water_equivalent_diameter(s, pixel_mm2, &mu_basis_mm, mu_w_eff / 10.0)
    });
    let ctx = Ctx {
        protocol,
        spec,
        mu_w_eff,
        seed: noise_seed,
        bone: (protocol.bone_correction && protocol.beam_hardening_correction && has_bone)
            .then(|| BoneModel::calibrated(spec, e_eff)),
        scatter: protocol.scatter.then(|| scatter::model_for(protocol, spec)),
        mu_basis_mm,
        slice_dw,
        obj_grid: g.clone(),
    };
    let (image, mas_per_slice) = if has_iodine {
        scan::<3>(&ctx, g, &basis, &recon_grid)
    } else {
        scan::<2>(&ctx, g, &basis, &recon_grid)
    };
    let mut image = Volume::from_vec(recon_grid, image);
    pad_out_of_field(&mut image, protocol);
    let truncation_mm = body_beyond_scan_field_mm(obj, protocol.scan_field_radius_mm());
    let mean_mas = mas_per_slice.iter().sum::<f64>() / mas_per_slice.len().max(1) as f64;
    // Dose from the protocol's tungsten beam (an explicit test spectrum only images).
    let dose_spec = spectrum::Spectrum::tungsten(
        protocol.kvp,
        protocol.filtration_mm_al,
        protocol.filtration_mm_cu,
    );
    let ctdi_vol_mgy = ctdi::ctdi_vol_mgy(protocol, &dose_spec, mean_mas);
    let dw = dose::water_equivalent_diameter_mm(&image);
    Ok(CtResult {
        image,
        ctdi_vol_mgy,
        water_equivalent_diameter_mm: dw,
        ssde_mgy: dose::ssde_mgy(ctdi_vol_mgy, dw),
        effective_energy_kev: e_eff,
        mas_per_slice,
        truncation_mm,
    })
}

/// Sets the recon square's pixels outside the reconstructed field (the scan field, or its
/// extension) to the protocol's out-of-field value, as scanners pad their images' corners.
fn pad_out_of_field(image: &mut Volume<f32>, p: &CtProtocol) {
    let r = p.reconstructed_field_radius_mm();
    let g = image.grid.clone();
    let plane = g.dims[0] * g.dims[1];
    let outside: Vec<bool> = (0..plane)
        .map(|q| {
            let w = g.world(q % g.dims[0], q / g.dims[0], 0);
            w[0].hypot(w[1]) > r
        })
        .collect();
    let pad = p.out_of_field_hu as f32;
    image.data.par_chunks_mut(plane).for_each(|sl| {
        for (v, &o) in sl.iter_mut().zip(&outside) {
            if o {
                *v = pad;
            }
        }
    });
}

/// How far (mm) any voxel denser than lung-like −500 HU lies past `radius` from the rotation
/// axis, when one does.
fn body_beyond_scan_field_mm(obj: &CtMaps, radius: f64) -> Option<f64> {
    let g = &obj.hu.grid;
    let plane = g.dims[0] * g.dims[1];
    let far = obj
        .hu
        .data
        .par_chunks(plane)
        .map(|sl| {
            sl.iter()
                .enumerate()
                .filter(|(_, &h)| h > -500.0)
                .map(|(q, _)| {
                    let w = g.world(q % g.dims[0], q / g.dims[0], 0);
                    // The voxel's far edge, not its centre.
                    w[0].hypot(w[1]) + 0.5 * g.spacing_mm[0].max(g.spacing_mm[1])
                })
                .fold(0.0f64, f64::max)
        })
        .reduce(|| 0.0, f64::max);
    (far > radius + 1e-6).then_some(far - radius)
}

/// matrix × matrix over the FOV, slices of `slice_mm` covering the object's z extent,
/// centred on the rotation axis and the object's z centre.
pub fn recon_grid(obj: &Grid, p: &CtProtocol) -> Grid {
    let zext = obj.extent_mm()[2];
    let nz = ((zext / p.slice_mm).round() as usize).max(1);
    let mut g = Grid::centered(
        [p.matrix, p.matrix, nz],
        [
            p.fov_mm / p.matrix as f64,
            p.fov_mm / p.matrix as f64,
            p.slice_mm,
        ],
    );
    let zc = obj.origin_mm[2] + 0.5 * (obj.dims[2] as f64 - 1.0) * obj.spacing_mm[2];
    g.origin_mm[2] += zc;
    g
}

struct Ctx<'a> {
    protocol: &'a CtProtocol,
    spec: &'a Spectrum,
    mu_w_eff: f64,
    seed: u64,
    /// The second-pass bone correction, when on and the object holds bone.
    bone: Option<BoneModel>,
    /// The scatter kernel, when scatter is on.
    scatter: Option<scatter::ScatterModel>,
    /// μ (mm⁻¹ per g/cm³) of each basis at the effective energy.
    mu_basis_mm: [f64; 3],
    /// Water-equivalent diameter of each object z slice, mm (tube-current modulation).
    slice_dw: Vec<f64>,
    obj_grid: Grid,
}

impl Ctx<'_> {
    /// Longitudinal tube-current factor with the source at table position `z_mm`: the
    /// water-equivalent diameter averaged over the collimated width there.
    fn longitudinal(&self, z_mm: f64, width_mm: f64) -> f64 {
        let t = &self.protocol.tube_current_modulation;
        if !t.longitudinal {
            return 1.0;
        }
        let g = &self.obj_grid;
        let (mut sum, mut n) = (0.0, 0);
        for (k, &d) in self.slice_dw.iter().enumerate() {
            let zk = g.origin_mm[2] + k as f64 * g.spacing_mm[2];
            if (zk - z_mm).abs() <= 0.5 * width_mm.max(g.spacing_mm[2]) {
                sum += d;
                n += 1;
            }
        }
        let dw = if n > 0 {
            sum / n as f64
        } else {
            // Beyond the object: the nearest slice.
            let k = ((z_mm - g.origin_mm[2]) / g.spacing_mm[2])
                .round()
                .clamp(0.0, (self.slice_dw.len() - 1) as f64) as usize;
            self.slice_dw[k]
        };
        tcm::longitudinal(t, dw, self.mu_w_eff / 10.0)
    }
}

/// Per-column detector physics: bowtie, air signal, water correction.
struct Columns {
    bow_gcm2: Vec<f64>,
    ln_s0: Vec<f64>,
    /// The air reading behind each column, through the same crosstalk as the object's (the
    /// scanner's air calibration sees it too).
    air: Vec<f64>,
    bh: Vec<([f64; BH_DEGREE + 1], f64)>,
}

fn columns(ctx: &Ctx, table: &PolyTable, cols: usize) -> Columns {
    let p = ctx.protocol;
    let d = p.sid_mm;
    // The bowtie sees the ray's perpendicular distance from the isocentre.
    let bow_gcm2: Vec<f64> = (0..cols)
        .map(|k| {
            let u = geometry::det_pos(k, cols, p.pixel_mm);
            spectrum::bowtie_mm(p.bowtie, u * d / (d * d + u * u).sqrt()) / 10.0
        })
        .collect();
    let ln_s0: Vec<f64> = bow_gcm2
        .iter()
        .map(|&b| table.lookup([b, 0.0, 0.0]).0)
        .collect();
    let mut air: Vec<f64> = ln_s0.iter().map(|l| l.exp()).collect();
    aperture::crosstalk(&mut air, p.detector_crosstalk);
    let bh = if p.beam_hardening_correction {
        // The correction depends only on the bowtie thickness: fit once per distinct value.
        let mut cache: Vec<(f64, ([f64; BH_DEGREE + 1], f64))> = Vec::new();
        bow_gcm2
            .iter()
            .map(|&b| {
                if let Some((_, c)) = cache.iter().find(|(x, _)| (x - b).abs() < 1e-3) {
                    return *c;
                }
                let c = water_correction(ctx.spec, b, ctx.mu_w_eff, 60.0);
                cache.push((b, c));
                c
            })
            .collect()
    } else {
        Vec::new()
    };
    Columns {
        bow_gcm2,
        ln_s0,
        air,
        bh,
    }
}

/// The focal spot's and detector cells' blur of a projection, at the detector pitch referred
/// to the isocentre.
fn projection_blur(p: &CtProtocol) -> Option<aperture::Blur> {
    let cell = if p.detector_aperture { p.pixel_mm } else { 0.0 };
    let focal = p.focal_spot_mm * (p.sdd_mm - p.sid_mm) / p.sdd_mm;
    aperture::design(p.pixel_mm, cell, focal)
}

/// Blurs cone projections (`views` × `rows` × `cols`) along each detector row (fan
/// direction), then along each column (z).
fn blur_cone<const C: usize>(
    b: &aperture::Blur,
    li: &mut [[f32; C]],
    views: usize,
    rows: usize,
    cols: usize,
) {
    b.apply(li, (0..views * rows).map(|r| r * cols), cols, 1);
    let col_starts = (0..views).flat_map(|v| (0..cols).map(move |c| v * rows * cols + c));
    b.apply(li, col_starts, rows, cols);
}

/// Photons at 1 m per mm² → per detector cell per view: inverse square to the isocentre,
/// cell area at isocentre, mAs shared over the views, detector efficiency.
fn photon_scale(p: &CtProtocol, row_mm: f64) -> f64 {
    (1000.0 / p.sid_mm).powi(2) * p.pixel_mm * row_mm * p.mas / p.views as f64 * DETECTOR_EFFICIENCY
}

/// Line integrals (g/cm³·mm per basis) of one view (`rows` × columns) → corrected line
/// integrals (μ·mm). `scale` is the view's photons per unit signal (tube load included).
#[allow(clippy::too_many_arguments)]
fn detect_view<const C: usize>(
    ctx: &Ctx,
    table: &PolyTable,
    cols: &Columns,
    li: &[[f32; C]],
    out: &mut [f32],
    scale: f64,
    sub: u64,
) {
    let p = ctx.protocol;
    let mut rng = stream(ctx.seed, Stage::Acquire, sub);
    let ncol = cols.bow_gcm2.len();
    // Stage a–b: g/cm³·mm → g/cm² (the bowtie adds water); expected signal and variance
    // (Beer–Lambert over energy).
    let lookup = |idx: usize, l: &[f32; C]| {
        let mut lb = [0.0f64; 3];
        for c in 0..C {
            lb[c] = l[c] as f64 / 10.0;
        }
        lb[0] += cols.bow_gcm2[idx % ncol];
        table.lookup(lb)
    };
    // Scatter: one profile per view from the row-averaged primary and path (an extra pass
    // over the view only when scatter is on).
    let scatter: Option<Vec<f64>> = ctx.scatter.as_ref().map(|m| {
        let rows = (li.len() / ncol).max(1);
        let (mut prim, mut path) = (vec![0.0; ncol], vec![0.0; ncol]);
        for (idx, l) in li.iter().enumerate() {
            let (ln_s, _) = lookup(idx, l);
            let k = idx % ncol;
            prim[k] += ln_s.exp() / rows as f64;
            path[k] += (cols.ln_s0[k] - ln_s) / rows as f64;
        }
        scatter::view_scatter(m, &prim, &path, p.pixel_mm)
    });
    let mut reading = vec![0.0f64; ncol];
    for (row_li, row_out) in li.chunks(ncol).zip(out.chunks_mut(ncol)) {
        // Stage c: detected signal per unit photon scale, noisy or expected.
        for (k, (l, r)) in row_li.iter().zip(reading.iter_mut()).enumerate() {
            let (ln_s, ln_v) = lookup(k, l);
            let (mut s, mut v) = (ln_s.exp(), ln_v.exp());
            if let Some(sc) = &scatter {
                // Scatter photons carry about the primary's energy per photon: same v/s.
                v += sc[k] * v / s.max(1e-300);
                s += sc[k];
            }
            *r = if p.noise {
                noise::noisy_reading(&mut rng, s * scale, v * scale, p.electronic_noise) / scale
            } else {
                s
            };
        }
        // Stage d: crosstalk between neighbouring cells of the row.
        aperture::crosstalk(&mut reading[..row_li.len()], p.detector_crosstalk);
        for (k, (r, o)) in reading.iter().zip(row_out.iter_mut()).enumerate() {
            let pl = -(r / cols.air[k]).ln();
            // Stage e: water beam-hardening correction → μ_w(E_eff)·W (cm⁻¹·cm); μ per mm.
            let pc = if p.beam_hardening_correction {
                let (c, sc) = &cols.bh[k];
                apply_correction(c, *sc, pl)
            } else {
                pl
            };
            *o = pc as f32; // dimensionless: μ·length
        }
    }
}

/// Each view's largest path (μ·L at the effective energy) through the object, for angular
/// tube-current modulation; `per_view` rays per view.
fn view_max_paths<const C: usize>(ctx: &Ctx, li: &[[f32; C]], per_view: usize) -> Vec<f64> {
    li.par_chunks(per_view)
        .map(|v| {
            v.iter()
                .map(|l| {
                    (0..C)
                        .map(|c| l[c] as f64 * ctx.mu_basis_mm[c])
                        .sum::<f64>()
                })
                .fold(0.0, f64::max)
        })
        .collect()
}

/// Photons per unit signal of each view of one rotation (or helical turn): the base
/// `scale` × longitudinal factor (per view) × angular factor.
fn view_scales<const C: usize>(
    ctx: &Ctx,
    li: &[[f32; C]],
    per_view: usize,
    scale: f64,
    longitudinal: impl Fn(usize) -> f64,
) -> Vec<f64> {
    let t = &ctx.protocol.tube_current_modulation;
    let ang = if t.angular {
        tcm::angular(t, &view_max_paths(ctx, li, per_view))
    } else {
        vec![1.0; li.len() / per_view.max(1)]
    };
    ang.iter()
        .enumerate()
        .map(|(v, a)| scale * a * longitudinal(v))
        .collect()
}

fn table_for<const C: usize>(
    ctx: &Ctx,
    basis: &BasisSource,
    grid: &Grid,
    cols: usize,
) -> PolyTable {
    // Bounds of the line integrals: at most the longest chord (diagonal) × extreme densities.
    let ext = grid.extent_mm();
    let chord_cm = (ext[0] * ext[0] + ext[1] * ext[1] + ext[2] * ext[2]).sqrt() / 10.0;
    let mut lo = [0.0f64; 3];
    let mut hi = [0.0f64; 3];
    for (c, (mn, mx)) in basis.ranges::<C>().into_iter().enumerate() {
        lo[c] = mn as f64 * chord_cm;
        hi[c] = mx as f64 * chord_cm;
    }
    // The bone correction looks up estimated paths, up to all-bone along the chord.
    if let Some(bone) = &ctx.bone {
        hi[1] = hi[1].max(bone.max_density() * chord_cm);
    }
    // Realistic paths never reach max density along the whole diagonal; cap the table.
    hi[0] = hi[0].min(80.0);
    hi[1] = hi[1].min(20.0);
    hi[2] = hi[2].min(0.5);
    lo[1] = lo[1].max(-5.0);
    let bow = (0..cols)
        .map(|k| {
            spectrum::bowtie_mm(
                ctx.protocol.bowtie,
                geometry::det_pos(k, cols, ctx.protocol.pixel_mm),
            ) / 10.0
        })
        .fold(0.0f64, f64::max);
    hi[0] += bow;
    PolyTable::new(ctx.spec, lo, hi)
}

/// The HU image and the mean tube load (mAs per rotation) behind each recon slice.
fn scan<const C: usize>(
    ctx: &Ctx,
    g: &Grid,
    basis: &BasisSource,
    rg: &Grid,
) -> (Vec<f32>, Vec<f64>) {
    let table = table_for::<C>(ctx, basis, g, ctx.protocol.detector_cols);
    match ctx.protocol.scan_mode {
        ScanMode::Axial => scan_axial::<C>(ctx, g, basis, &table, rg),
        ScanMode::Cone => scan_cone::<C>(ctx, g, &basis.volume::<C>(), &table, rg),
        ScanMode::Helical => helical::scan::<C>(ctx, g, &basis.volume::<C>(), &table, rg),
    }
}

/// μ (mm⁻¹) → HU with μ_water at the effective energy.
fn to_hu(mu_mm: f32, mu_w_mm: f64) -> f32 {
    (1000.0 * (mu_mm as f64 / mu_w_mm - 1.0)) as f32
}

/// Axial mode: each recon slice is a fan-beam scan of the object's slab under it (the
/// collimated slice), the slab's basis maps averaged over the slice thickness.
fn scan_axial<const C: usize>(
    ctx: &Ctx,
    g: &Grid,
    basis: &BasisSource,
    table: &PolyTable,
    rg: &Grid,
) -> (Vec<f32>, Vec<f64>) {
    let p = ctx.protocol;
    let [nx, ny, nz] = g.dims;
    let plane_obj = Plane::of_grid(g);
    let plane_rec = Plane::of_grid(rg);
    let geo = FanGeometry {
        views: p.views,
        sid_mm: p.sid_mm,
        det_count: p.detector_cols,
        det_spacing_mm: p.pixel_mm,
    };
    let cols = columns(ctx, table, p.detector_cols);
    let scale = photon_scale(p, p.slice_mm);
    let mu_w_mm = ctx.mu_w_eff / 10.0;
    let per_slice = plane_rec.len();
    let blur = projection_blur(p);
    let width = ctdi::collimation_mm(p);
    // Extended field: columns added on each side so the fan reaches its radius.
    let extension = p.extended_fov.then(|| {
        let reach = p.reconstructed_field_radius_mm();
        let half = p.sid_mm * (reach / p.sid_mm).asin().tan();
        let ext = ((half - 0.5 * p.detector_cols as f64 * p.pixel_mm) / p.pixel_mm)
            .ceil()
            .max(0.0) as usize;
        let geo_ext = FanGeometry {
            det_count: p.detector_cols + 2 * ext,
            ..geo.clone()
        };
        (ext, geo_ext)
    });
    let mut out = vec![0.0f32; rg.len()];
    let mas: Vec<f64> = out
        .par_chunks_mut(per_slice)
        .enumerate()
        .map(|(s, slice_out)| {
            // Stage 1: slab average over [z − t/2, z + t/2] with voxel overlap weights.
            let zc = rg.origin_mm[2] + s as f64 * rg.spacing_mm[2];
            let (z0, z1) = (zc - 0.5 * p.slice_mm, zc + 0.5 * p.slice_mm);
            let mut slab = vec![[0.0f32; C]; nx * ny];
            let mut src = vec![[0.0f32; C]; nx * ny];
            let mut wsum = 0.0;
            for k in 0..nz {
                let zk = g.origin_mm[2] + k as f64 * g.spacing_mm[2];
                let (a, b) = (zk - 0.5 * g.spacing_mm[2], zk + 0.5 * g.spacing_mm[2]);
                let ov = (b.min(z1) - a.max(z0)).max(0.0);
                if ov <= 0.0 {
                    continue;
                }
                wsum += ov;
                basis.plane_into::<C>(k, &mut src);
                for (d, v) in slab.iter_mut().zip(&src) {
                    for c in 0..C {
                        d[c] += (ov as f32) * v[c];
                    }
                }
            }
            if wsum > 0.0 {
                let inv = (1.0 / wsum) as f32;
                slab.iter_mut()
                    .for_each(|v| v.iter_mut().for_each(|x| *x *= inv));
            }
            // Stage 2: fan-beam projection of the basis maps, blurred by the apertures.
            let mut li = project_fan::<C>(&slab, &plane_obj, &geo);
            if let Some(b) = &blur {
                b.apply(
                    &mut li,
                    (0..geo.views).map(|v| v * geo.det_count),
                    geo.det_count,
                    1,
                );
            }
            // Stage 3: polychromatic detection, noise, water correction (one stream per view),
            // at each view's tube load.
            let nd = p.detector_cols;
            let long = ctx.longitudinal(zc, width);
            let scales = view_scales(ctx, &li, nd, scale, |_| long);
            let mut sino = vec![0.0f32; li.len()];
            sino.par_chunks_mut(nd)
                .zip(li.par_chunks(nd))
                .enumerate()
                .for_each(|(v, (o, l))| {
                    detect_view::<C>(
                        ctx,
                        table,
                        &cols,
                        l,
                        o,
                        scales[v],
                        ((s as u64) << 32) | v as u64,
                    );
                });
            // Stage 4: fan-beam FBP (μ in mm⁻¹) — of the projections continued past the
            // detector for an extended field —, bone correction → HU.
            let mut mu = match &extension {
                Some((ext, geo_ext)) => {
                    let wide = extended_fov::extend_sinogram(&sino, nd, *ext, mu_w_mm, p.pixel_mm);
                    fbp_fan(&wide, geo_ext, &plane_rec, Window::of(p))
                }
                None => fbp_fan(&sino, &geo, &plane_rec, Window::of(p)),
            };
            if let Some(bone) = &ctx.bone {
                let est = bone.split(&mu);
                if BoneModel::has_bone(&est) {
                    let geo_c = FanGeometry {
                        views: bone_correction::correction_views(p.views),
                        ..geo
                    };
                    let li = project_fan::<2>(&est, &plane_rec, &geo_c);
                    let delta = bone_sinogram(bone, table, &cols, &li);
                    let dmu = fbp_fan(&delta, &geo_c, &plane_rec, Window::of(p));
                    mu.iter_mut().zip(dmu).for_each(|(m, d)| *m += d);
                }
            }
            for (o, m) in slice_out.iter_mut().zip(mu) {
                *o = to_hu(m, mu_w_mm);
            }
            p.mas * long
        })
        .collect();
    (out, mas)
}

/// The bone correction of every ray of a (fan or cone) projection whose rows are
/// `cols.bow_gcm2.len()` columns wide, from its estimated basis line integrals.
fn bone_sinogram(bone: &BoneModel, table: &PolyTable, cols: &Columns, li: &[[f32; 2]]) -> Vec<f32> {
    let ncol = cols.bow_gcm2.len();
    let mut out = vec![0.0f32; li.len()];
    out.par_chunks_mut(ncol)
        .zip(li.par_chunks(ncol))
        .for_each(|(o, l)| {
            for (k, (o, &l)) in o.iter_mut().zip(l).enumerate() {
                *o = bone.ray_correction(table, l, cols.bow_gcm2[k], cols.ln_s0[k], &cols.bh[k]);
            }
        });
    out
}

/// The protocol's cone-beam geometry with the source at table position `z_mm`.
fn cone_geometry(p: &CtProtocol, z_mm: f64) -> ConeGeometry {
    ConeGeometry {
        views: p.views,
        sid_mm: p.sid_mm,
        cols: p.detector_cols,
        rows: p.detector_rows,
        pixel_mm: p.pixel_mm,
        z_mm,
    }
}

/// One step-and-shoot rotation of the cone scan: its table position and the recon slices it
/// owns.
struct Rotation {
    z_mm: f64,
    slices: Vec<usize>,
}

/// Rotations covering the recon grid's slices, each the detector's z width at isocentre.
fn cone_rotations(p: &CtProtocol, rg: &Grid, geo: &ConeGeometry) -> Vec<Rotation> {
    let (a, b) = geo.covered_z(0.5 * p.fov_mm);
    let cover = (b - a).max(p.pixel_mm);
    let nzr = rg.dims[2];
    let z_of = |k: usize| rg.origin_mm[2] + k as f64 * rg.spacing_mm[2];
    let (zmin, zmax) = (z_of(0) - 0.5 * p.slice_mm, z_of(nzr - 1) + 0.5 * p.slice_mm);
    let n_rot = (((zmax - zmin) / cover).ceil() as usize).max(1);
    (0..n_rot)
        .map(|r| {
            let z_lo = zmin + r as f64 * cover;
            Rotation {
                z_mm: z_lo + 0.5 * cover,
                slices: (0..nzr)
                    .filter(|&k| z_of(k) >= z_lo && (z_of(k) < z_lo + cover || r == n_rot - 1))
                    .collect(),
            }
        })
        .collect()
}

/// Sub-planes per recon slice at the detector row pitch (thick slices average them).
fn sub_planes(p: &CtProtocol) -> usize {
    ((p.slice_mm / p.pixel_mm).ceil() as usize).max(1)
}

/// FDK of one rotation's projections at `sub` planes across each owned slice, averaged into
/// the slice: μ (mm⁻¹) per owned slice, in the order of `rot.slices`.
fn fdk_slices(
    p: &CtProtocol,
    proj: &[f32],
    geo: &ConeGeometry,
    plane: &Plane,
    rg: &Grid,
    rot: &Rotation,
    sub: usize,
) -> Vec<Vec<f32>> {
    let z_of = |k: usize| rg.origin_mm[2] + k as f64 * rg.spacing_mm[2];
    let zs: Vec<f64> = rot
        .slices
        .iter()
        .flat_map(|&k| {
            (0..sub).map(move |m| {
                z_of(k) - 0.5 * p.slice_mm + (m as f64 + 0.5) * p.slice_mm / sub as f64
            })
        })
        .collect();
    let mu = fdk(proj, geo, plane, &zs, Window::of(p));
    let per_slice = plane.len();
    (0..rot.slices.len())
        .map(|n| {
            (0..per_slice)
                .map(|i| {
                    (0..sub)
                        .map(|m| mu[(n * sub + m) * per_slice + i])
                        .sum::<f32>()
                        / sub as f32
                })
                .collect()
        })
        .collect()
}

/// Cone mode: step-and-shoot circular rotations, each reconstructing (FDK) the slices whose
/// centres lie in the z range every view covers; thick slices average sub-planes at the
/// detector row pitch. The bone correction reprojects the whole first-pass volume (cone rays
/// cross the slices of neighbouring rotations) and adds one more FDK per rotation, at each
/// slice's centre only (the correction varies slowly across a slice).
fn scan_cone<const C: usize>(
    ctx: &Ctx,
    g: &Grid,
    basis: &[[f32; C]],
    table: &PolyTable,
    rg: &Grid,
) -> (Vec<f32>, Vec<f64>) {
    let p = ctx.protocol;
    let plane_rec = Plane::of_grid(rg);
    let cols = columns(ctx, table, p.detector_cols);
    let scale = photon_scale(p, p.pixel_mm);
    let mu_w_mm = ctx.mu_w_eff / 10.0;
    let geo_at = |z_mm: f64| cone_geometry(p, z_mm);
    let rotations = cone_rotations(p, rg, &geo_at(0.0));
    let blur = projection_blur(p);
    let per_slice = plane_rec.len();
    let per_view = p.detector_rows * p.detector_cols;
    // μ (mm⁻¹) first; HU at the end, after the bone pass.
    let mut mu = vec![0.0f32; rg.len()];
    let mut mas = vec![p.mas; rg.dims[2]];
    let width = ctdi::collimation_mm(p);
    for (r, rot) in rotations.iter().enumerate() {
        if rot.slices.is_empty() {
            continue;
        }
        // Stage 1: cone-beam projection, detection and noise (one stream per view).
        let geo = geo_at(rot.z_mm);
        let (mut li, _) = project_cone::<C>(basis, g, &geo);
        if let Some(b) = &blur {
            blur_cone(b, &mut li, geo.views, geo.rows, geo.cols);
        }
        let long = ctx.longitudinal(rot.z_mm, width);
        let scales = view_scales(ctx, &li, per_view, scale, |_| long);
        for &k in &rot.slices {
            mas[k] = p.mas * long;
        }
        let mut proj = vec![0.0f32; li.len()];
        proj.par_chunks_mut(per_view)
            .zip(li.par_chunks(per_view))
            .enumerate()
            .for_each(|(v, (o, l))| {
                detect_view::<C>(
                    ctx,
                    table,
                    &cols,
                    l,
                    o,
                    scales[v],
                    ((r as u64) << 32) | v as u64,
                );
            });
        // Stage 2: FDK at sub-planes, averaged into each slice.
        for (k, slice) in rot.slices.iter().zip(fdk_slices(
            p,
            &proj,
            &geo,
            &plane_rec,
            rg,
            rot,
            sub_planes(p),
        )) {
            mu[k * per_slice..(k + 1) * per_slice].copy_from_slice(&slice);
        }
    }
    // Stage 3: bone correction from the whole first-pass volume.
    if let Some(bone) = &ctx.bone {
        let est = bone.split(&mu);
        if BoneModel::has_bone(&est) {
            for rot in rotations.iter().filter(|r| !r.slices.is_empty()) {
                let geo = ConeGeometry {
                    views: bone_correction::correction_views(p.views),
                    ..geo_at(rot.z_mm)
                };
                let (li, _) = project_cone::<2>(&est, rg, &geo);
                let delta = bone_sinogram(bone, table, &cols, &li);
                for (k, d) in rot
                    .slices
                    .iter()
                    .zip(fdk_slices(p, &delta, &geo, &plane_rec, rg, rot, 1))
                {
                    let dst = &mut mu[k * per_slice..(k + 1) * per_slice];
                    dst.iter_mut().zip(d).for_each(|(m, d)| *m += d);
                }
            }
        }
    }
    (mu.into_iter().map(|m| to_hu(m, mu_w_mm)).collect(), mas)
}
