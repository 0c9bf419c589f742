//! MRI acquisition simulator: tissue maps (PD, T1, T2, T2*, fat fraction) → the magnitude
//! image a protocol would produce.
//!
//! Stages of [`acquire`]:
//! 1. Signal: per voxel, the sequence's analytic steady-state transverse magnetisation
//!    ([`signal`]), water and fat (−3.4 ppm) separately where their phase or position differ,
//!    with the B0 map's off-resonance.
//! 2. Per slice (in parallel; one RNG stream per slice and coil): the object on the slice's
//!    sim grid (slab-averaged, moved for each motion state), fat/B0 displacement along the
//!    readout, receive bias.
//! 3. Per coil: sensitivity × object → k-space cropped to the matrix ([`kspace`]), lines from
//!    their motion state, sampling mask (partial Fourier, undersampling), ghosting, spike,
//!    complex Gaussian noise at the protocol's SNR ([`noise`]).
//! 4. Zero-filled inverse transform, coil combination (RSS or sensitivity-weighted), magnitude
//!    ([`recon`]).
//!
//! The Bloch simulator in [`bloch`] is the time-domain reference for the equations.

pub mod artifacts;
pub mod bloch;
pub mod coils;
pub mod echo_train;
pub mod fft;
pub mod grappa;
pub mod kspace;
pub mod noise;
pub mod partial_fourier;
pub mod phantom;
pub mod protocol;
pub mod recon;
pub mod signal;
mod slice;
pub mod susceptibility;

use rayon::prelude::*;
use serde_json::json;

pub use protocol::{
    Artifacts, Combine, InPlane, Motion, MriProtocol, PartialFourierRecon, ReadoutAxis,
    SamplingPattern, Sequence, Undersampling,
};

use crate::tissue::object::MriMaps;
use crate::volume::{Grid, Volume};
use artifacts::{Rigid, SmoothField};
use coils::CoilArray;
use kspace::{Geometry, Plans};
use noise::{FastRng, Normals};
use signal::SeqParams;
use slice::{simulate_slice, Complex, Component, Ctx};

/// The simulated acquisition.
pub struct MriResult {
    /// Magnitude image on the acquisition grid (matrix over the FOV, slices of `slice_mm`,
    /// `Grid::centered`), in units of M0 of a PD = 1 tissue.
    pub image: Volume<f32>,
    /// SENSE g-factor map on the image grid (`g_factor_map` with SENSE unfolding).
    pub g_factor: Option<Volume<f32>>,
    /// ADC map (µm²/ms) from this image and a b = 0 acquisition (`adc_map`).
    pub adc: Option<Volume<f32>>,
    pub kspace: Option<KSpace>,
    /// Sampling mask per phase line (1 = acquired), centred order (index j ↔ ky = j − n/2);
    /// present when partial Fourier or undersampling is on.
    pub mask: Option<Vec<u8>>,
    /// Artifacts and their realised parameters, for the manifest.
    pub applied: serde_json::Value,
}

/// Complex multi-coil k-space. `dims` = [nx, ny, slices] in the image's (x, y) orientation,
/// DC at index n/2 (fftshifted); data index ((coil·slices + z)·ny + ky)·nx + kx. Scaled so
/// that an orthonormal inverse 2D DFT (`numpy.fft.ifft2(ifftshift(k), norm="ortho")`) gives
/// the coil image.
pub struct KSpace {
    pub coils: usize,
    pub dims: [usize; 3],
    pub data: Vec<[f32; 2]>,
}

#[derive(Debug, thiserror::Error)]
pub enum MriError {
    #[error("MRI protocol is invalid: {}", .0.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; "))]
    InvalidProtocol(Vec<(String, String)>),
    #[error("MRI maps are at {maps} T but the protocol is at {protocol} T")]
    FieldMismatch { maps: f64, protocol: f64 },
    #[error("MRI map `{name}` has grid dims {got:?}, the PD map has {want:?}")]
    MapGrid {
        name: &'static str,
        got: [usize; 3],
        want: [usize; 3],
    },
}

/// Simulates the acquisition. `seed`: one stream per slice/coil is derived with
/// `crate::rng::stream(seed, Stage::Acquire, index)`, so results do not depend on thread
/// count. Deterministic.
pub fn acquire(maps: &MriMaps, protocol: &MriProtocol, seed: u64) -> Result<MriResult, MriError> {
    if protocol.adc_map {
        return acquire_with_adc(maps, protocol, seed);
    }
    let p = protocol;
    check_inputs(maps, p)?;
    let obj = &maps.pd.grid;
    let g = Geometry::new(p, obj);
    let a = &p.artifacts;
    let fov3 = [p.fov_mm[0], p.fov_mm[1], g.n_slices as f64 * p.slice_mm];
    let half = fov3.map(|e| 0.5 * e);
    let mut applied = serde_json::Map::new();
    applied.insert("sequence".into(), json!(p.sequence));
    applied.insert("oversampling".into(), json!([g.os_read, g.os_phase]));

    // 1. Object signal per voxel.
    let smooth = a.b0_offresonance_ppm.map(|ppm| {
        let f = SmoothField::random(&mut FastRng::from_stream(seed, 0x3_0000_0000), half);
        (f, protocol::ppm_to_hz(ppm, p.field_t))
    });
    if let Some((_, hz)) = &smooth {
        applied.insert(
            "b0_offresonance".into(),
            json!({"amplitude_ppm": a.b0_offresonance_ppm, "max_offset_hz": hz.abs(), "max_shift_px": hz.abs() / p.bandwidth_hz_per_px}),
        );
    }
    let map_hz = match (&maps.chi_ppm, a.susceptibility) {
        (Some(chi), true) => {
            let field = susceptibility::field_shift_ppm(chi);
            let shimmed = susceptibility::shim_linear(&field, |i| maps.pd.data[i] > 0.0);
            let hz_per_ppm = protocol::ppm_to_hz(1.0, p.field_t);
            let hz: Vec<f32> = shimmed
                .data
                .iter()
                .map(|&v| (v as f64 * hz_per_ppm) as f32)
                .collect();
            let mut sorted: Vec<f64> = hz
                .iter()
                .zip(&maps.pd.data)
                .filter(|(_, &pd)| pd > 0.0)
                .map(|(&h, _)| h.abs() as f64)
                .collect();
            sorted.sort_by(f64::total_cmp);
            let p99 = sorted
                .get((0.99 * sorted.len().saturating_sub(1) as f64) as usize)
                .copied()
                .unwrap_or(0.0);
            applied.insert(
                "susceptibility_b0".into(),
                json!({"shim": "linear", "p99_offset_hz": p99, "p99_shift_px": p99 / p.bandwidth_hz_per_px}),
            );
            Some(Volume::from_vec(chi.grid.clone(), hz))
        }
        (None, true) => {
            // Objects without anatomy (QA phantoms) carry no susceptibility map.
            applied.insert(
                "susceptibility_b0".into(),
                json!("not applied: the object has no susceptibility map (no anatomy)"),
            );
            None
        }
        _ => None,
    };
    let b0 = (smooth.is_some() || map_hz.is_some()).then_some(B0 { smooth, map_hz });
    let fat_hz = protocol::ppm_to_hz(protocol::FAT_SHIFT_PPM, p.field_t);
    if a.chemical_shift {
        applied.insert(
            "chemical_shift".into(),
            json!({"fat_offset_hz": fat_hz, "fat_shift_px": fat_hz / p.bandwidth_hz_per_px}),
        );
    }
    let comps = object_signal(
        maps,
        &SeqParams::from_protocol(p),
        b0.as_ref(),
        fat_hz,
        a.chemical_shift,
    );

    // 2. Sampling, motion and line artifacts, shared by all slices and coils.
    // SENSE takes its coil maps from a calibration prescan: no extra centre lines, so each
    // coil image is a pure R-fold alias that unfolds exactly.
    let sense_r = recon::sense_unfold_factor(p);
    let sampling = p.undersampling.as_ref().map(|u| Undersampling {
        center_lines: if sense_r.is_some() { 0 } else { u.center_lines },
        ..u.clone()
    });
    let mask = kspace::sampling_mask(g.n_phase, p.partial_fourier, sampling.as_ref(), seed);
    let n_acq = mask.iter().filter(|&&m| m).count();
    let has_mask = p.partial_fourier < 1.0 || p.undersampling.is_some();
    if has_mask {
        applied.insert(
            "sampling".into(),
            json!({"partial_fourier": p.partial_fourier, "undersampling": p.undersampling, "lines_acquired": n_acq, "acceleration": g.n_phase as f64 / n_acq as f64}),
        );
    }
    let motion = a.motion.as_ref().map(|m| {
        let lines: Vec<bool> = (0..g.n_phase).map(|l| artifacts::moved_line(l, g.n_phase, m.fraction_of_lines)).collect();
        applied.insert(
            "motion".into(),
            json!({"translation_mm": m.translation_mm, "rotation_deg": m.rotation_deg, "fraction_of_lines": m.fraction_of_lines, "moved_lines": lines.iter().filter(|&&b| b).count()}),
        );
        (Rigid::new(m.translation_mm, m.rotation_deg), lines)
    });
    let bias = a.bias_field.map(|r| {
        applied.insert(
            "bias_field".into(),
            json!({"range": r, "min": 1.0 - r / 2.0, "max": 1.0 + r / 2.0}),
        );
        (
            SmoothField::random(&mut FastRng::from_stream(seed, 0x2_0000_0000), half),
            (0.5 * r) as f32,
        )
    });
    let ghost = a.ghosting.map(|f| {
        applied.insert(
            "ghosting".into(),
            json!({"fraction": f, "odd_line_scale": 1.0 - 2.0 * f}),
        );
        (1.0 - 2.0 * f) as f32
    });
    let spike = a.spike.map(|s| {
        let mut r = FastRng::from_stream(seed, 0x4_0000_0000);
        let kx = (r.uniform() * g.n_read as f64) as i64 - g.n_read as i64 / 2;
        let ky = (r.uniform() * g.n_phase as f64) as i64 - g.n_phase as i64 / 2;
        let ph = 2.0 * std::f64::consts::PI * r.uniform();
        applied.insert(
            "spike".into(),
            json!({"intensity": s, "kx": kx, "ky": ky, "phase_rad": ph}),
        );
        (kx, ky, s, ph)
    });
    // Echo trains: each line read at its own time, the decay split into separable terms.
    let train = echo_train::EchoTrain::new(p, &mask).map(|t| train_basis(t, maps));
    let comps = match &train {
        Some(b) => {
            let desc = &b.train;
            applied.insert(
                "echo_train".into(),
                json!({
                    "kind": if p.epi { "epi" } else { "fast_spin_echo" },
                    "echo_spacing_ms": p.echo_spacing_ms(),
                    "first_line_ms": desc.t_ms.iter().zip(&mask).filter(|(_, &m)| m).map(|(t, _)| *t).fold(f64::INFINITY, f64::min),
                    "last_line_ms": desc.t_ms.iter().zip(&mask).filter(|(_, &m)| m).map(|(t, _)| *t).fold(0.0, f64::max),
                    "phase_px_per_hz": desc.ms_per_ky.map(|ms| ms * 1e-3 * g.n_phase as f64),
                    "decay_terms": b.rank(),
                    "decay_error": b.max_error,
                }),
            );
            split_by_train(comps, maps, b)
        }
        None => comps,
    };
    let sigma = noise::noise_sigma(p);
    let kx_domain = g.os_read > 1;
    // Image σ from k-space noise through the unnormalised forward / 1/ns inverse transforms.
    let mut line_scale = g.ns_phase as f64 / (g.n_phase as f64).sqrt();
    if kx_domain {
        line_scale *= g.ns_read as f64 / (g.n_read as f64).sqrt();
    }
    let sigma_line = p.noise.then_some((sigma * line_scale) as f32);
    applied.insert(
        "noise_sigma".into(),
        json!(if p.noise { Some(sigma) } else { None }),
    );
    applied.insert(
        "coils".into(),
        json!({"count": p.coils, "combine": p.combine}),
    );

    let ctx = Ctx {
        p,
        plans: Plans::new(&g),
        fast: g.matches_object(obj),
        obj,
        comps,
        motion,
        b0,
        bias,
        coils: CoilArray::new(p.coils, fov3),
        mask,
        ghost,
        spike,
        sigma_line,
        sigma_img: p.noise.then_some(sigma as f32),
        kx_domain,
        noise_chol: noise::coil_noise_cholesky(p),
        train,
        homodyne: match p.partial_fourier_recon {
            PartialFourierRecon::Homodyne => {
                partial_fourier::Homodyne::new(g.n_phase, p.partial_fourier)
            }
            PartialFourierRecon::ZeroFill => None,
        },
        seed,
        g,
    };

    // 3–4. Slices in parallel, each written into its plane of the image by its own thread.
    let g = &ctx.g;
    let plane = g.n_read * g.n_phase;
    let mut image = vec![0f32; plane * g.n_slices];
    let (slices, g_slices): (Vec<Vec<Complex>>, Vec<Option<Vec<f32>>>) = image
        .par_chunks_mut(plane)
        .enumerate()
        .map(|(s, out)| {
            let (img, ks, gf) = simulate_slice(&ctx, s);
            let to_image = |v: &[f32], o: &mut [f32]| {
                if g.read_axis == 0 {
                    o.copy_from_slice(v);
                } else {
                    fft::transpose(v, g.n_phase, g.n_read, o);
                }
            };
            to_image(&img, out);
            let gf = gf.map(|v| {
                let mut o = vec![0f32; plane];
                to_image(&v, &mut o);
                o
            });
            (ks, gf)
        })
        .unzip();
    let g_factor = sense_r.map(|r| {
        let data: Vec<f32> = g_slices.into_iter().flat_map(Option::unwrap_or_default).collect();
        let vals: Vec<f64> = data.iter().filter(|v| **v > 0.0).map(|&v| v as f64).collect();
        let mean = vals.iter().sum::<f64>() / vals.len().max(1) as f64;
        let max = vals.iter().copied().fold(0.0, f64::max);
        applied.insert(
            "sense".into(),
            json!({"acceleration": r, "g_factor_mean": mean, "g_factor_max": max, "center_lines": 0}),
        );
        Volume::from_vec(g.grid.clone(), data)
    });
    let unshift = |j: usize, n: usize| (j + n - n / 2) % n;
    let kspace = p.export_kspace.then(|| export_kspace(p, g, &slices));
    let mask = has_mask.then(|| {
        (0..g.n_phase)
            .map(|j| ctx.mask[unshift(j, g.n_phase)] as u8)
            .collect()
    });
    Ok(MriResult {
        image: Volume::from_vec(g.grid.clone(), image),
        g_factor: g_factor.filter(|_| p.g_factor_map),
        adc: None,
        kspace,
        mask,
        applied: serde_json::Value::Object(applied),
    })
}

/// A `dwi` arm with `adc_map`: the b image, a b = 0 image (its own noise), and
/// ADC = ln(S₀/S_b)/b per pixel where both images hold signal (zero elsewhere), as a scanner
/// computes it from the magnitude images, noise floor included.
fn acquire_with_adc(maps: &MriMaps, p: &MriProtocol, seed: u64) -> Result<MriResult, MriError> {
    let errs = p.validate();
    if !errs.is_empty() {
        return Err(MriError::InvalidProtocol(errs));
    }
    let one = MriProtocol {
        adc_map: false,
        ..p.clone()
    };
    let mut res = acquire(maps, &one, seed)?;
    let b0 = acquire(
        maps,
        &MriProtocol {
            b_value_s_mm2: 0.0,
            ..one
        },
        seed ^ 0xD1FF_0000_0000_0000,
    )?;
    // Pixels below 5 % of the b = 0 image's 99th percentile are background.
    let mut sorted: Vec<f32> = b0.image.data.clone();
    sorted.sort_unstable_by(f32::total_cmp);
    let floor = 0.05 * sorted[(0.99 * (sorted.len() - 1) as f64) as usize];
    let b = p.b_value_s_mm2;
    let adc: Vec<f32> = b0
        .image
        .data
        .iter()
        .zip(&res.image.data)
        .map(|(&s0, &sb)| {
            if s0 > floor && sb > 0.0 {
                ((s0 as f64 / sb as f64).ln() / b * 1e3).max(0.0) as f32
            } else {
                0.0
            }
        })
        .collect();
    if let serde_json::Value::Object(m) = &mut res.applied {
        m.insert(
            "diffusion".into(),
            json!({"b_value_s_mm2": b, "adc_map": true}),
        );
    }
    res.adc = Some(Volume::from_vec(res.image.grid.clone(), adc));
    Ok(res)
}

/// The B0 off-resonance: a smooth random inhomogeneity (Hz amplitude) and the body's
/// shimmed susceptibility field (Hz, on the object grid).
pub(super) struct B0 {
    smooth: Option<(SmoothField, f64)>,
    map_hz: Option<Volume<f32>>,
}

impl B0 {
    /// Hz on object plane `k`, columns at `xs` and rows at `ys` (mm from the object centre),
    /// `z` that plane's offset.
    fn object_plane_hz(&self, k: usize, xs: &[f64], ys: &[f64], z: f64) -> Vec<f64> {
        let mut out = match &self.smooth {
            Some((f, hz)) => f
                .eval_plane(1, ys, 0, xs, z)
                .into_iter()
                .map(|v| v as f64 * hz)
                .collect(),
            None => vec![0.0; xs.len() * ys.len()],
        };
        if let Some(m) = &self.map_hz {
            let plane = xs.len() * ys.len();
            for (o, &v) in out.iter_mut().zip(&m.data[k * plane..(k + 1) * plane]) {
                *o += v as f64;
            }
        }
        out
    }

    /// Hz on sim plane `s` (rows = phase lines, columns = readout), sampled trilinearly from
    /// the susceptibility field at the pixels' world positions.
    pub(super) fn sim_plane_hz(
        &self,
        g: &Geometry,
        s: usize,
        phase: &[f64],
        read: &[f64],
    ) -> Vec<f64> {
        let z = g.slice_z_mm(s);
        let mut out = match &self.smooth {
            Some((f, hz)) => f
                .eval_plane(g.phase_axis, phase, g.read_axis, read, z)
                .into_iter()
                .map(|v| v as f64 * hz)
                .collect(),
            None => vec![0.0; phase.len() * read.len()],
        };
        if let Some(m) = &self.map_hz {
            for l in 0..phase.len() {
                for r in 0..read.len() {
                    let v = m.grid.to_voxel(g.world(r, l, s));
                    out[l * read.len() + r] += artifacts::trilinear(&m.data, m.grid.dims, v) as f64;
                }
            }
        }
        out
    }
}

/// The train's separable decay over the rates of the voxels that hold signal at TE: tissues
/// decayed below 10⁻³ of their magnetisation by TE (cortical bone, T2 ≈ 1 ms) would widen
/// the rate range, and so the number of terms, for no visible signal.
fn train_basis(train: echo_train::EchoTrain, maps: &MriMaps) -> echo_train::TrainBasis {
    let (lo, hi) = maps
        .pd
        .data
        .par_iter()
        .zip(&maps.t2_ms.data)
        .zip(&maps.t2star_ms.data)
        .filter(|((&pd, _), _)| pd > 0.0)
        .map(|((_, &t2), &t2s)| train.rates(t2 as f64, t2s as f64))
        .filter(|&r| train.decay_at(train.te_ms, r) > 1e-3)
        .map(|r| (r, r))
        .reduce(
            || ([f64::INFINITY; 2], [0.0; 2]),
            |(a, b), (c, d)| {
                (
                    [a[0].min(c[0]), a[1].min(c[1])],
                    [b[0].max(d[0]), b[1].max(d[1])],
                )
            },
        );
    echo_train::TrainBasis::new(train, lo.map(|v| if v.is_finite() { v } else { 0.0 }), hi)
}

/// Each signal component as the train's terms: term j holds S·Cⱼ(θ)/a(TE, θ) per voxel.
fn split_by_train(
    comps: Vec<Component>,
    maps: &MriMaps,
    b: &echo_train::TrainBasis,
) -> Vec<Component> {
    let r = b.rank();
    let mut out = Vec::with_capacity(comps.len() * r);
    for comp in comps {
        let n = comp.re.len();
        let mut terms: Vec<(Vec<f32>, Option<Vec<f32>>)> = (0..r)
            .map(|_| (vec![0f32; n], comp.im.as_ref().map(|_| vec![0f32; n])))
            .collect();
        let mut c = vec![0.0; r];
        for v in 0..n {
            let (sr, si) = (comp.re[v], comp.im.as_ref().map_or(0.0, |im| im[v]));
            if sr == 0.0 && si == 0.0 {
                continue;
            }
            b.coefficients(
                maps.t2_ms.data[v] as f64,
                maps.t2star_ms.data[v] as f64,
                &mut c,
            );
            for (j, (tr, ti)) in terms.iter_mut().enumerate() {
                tr[v] = (sr as f64 * c[j]) as f32;
                if let Some(ti) = ti {
                    ti[v] = (si as f64 * c[j]) as f32;
                }
            }
        }
        out.extend(
            terms
                .into_iter()
                .enumerate()
                .map(|(j, (re, im))| Component {
                    re,
                    im,
                    shift_hz: comp.shift_hz,
                    basis: j,
                }),
        );
    }
    out
}

/// The protocol's own ranges, its field against the maps', and every map on one grid.
fn check_inputs(maps: &MriMaps, p: &MriProtocol) -> Result<(), MriError> {
    let errs = p.validate();
    if !errs.is_empty() {
        return Err(MriError::InvalidProtocol(errs));
    }
    if (maps.field_t - p.field_t).abs() > 1e-6 {
        return Err(MriError::FieldMismatch {
            maps: maps.field_t,
            protocol: p.field_t,
        });
    }
    let obj = &maps.pd.grid;
    for (name, v) in [
        ("t1_ms", &maps.t1_ms),
        ("t2_ms", &maps.t2_ms),
        ("t2star_ms", &maps.t2star_ms),
        ("fat_fraction", &maps.fat_fraction),
        ("adc_um2_ms", &maps.adc_um2_ms),
    ] {
        if v.grid.dims != obj.dims {
            return Err(MriError::MapGrid {
                name,
                got: v.grid.dims,
                want: obj.dims,
            });
        }
    }
    Ok(())
}

/// Per-slice, per-coil k-space (centred, as acquired) rearranged into the exported
/// [coil][slice][phase][read] layout with DC at the array centre.
fn export_kspace(p: &MriProtocol, g: &Geometry, slices: &[Vec<Complex>]) -> KSpace {
    let unshift = |j: usize, n: usize| (j + n - n / 2) % n;
    let [nx, ny] = p.matrix;
    let nz = g.n_slices;
    let mut data = vec![[0f32; 2]; p.coils * nz * nx * ny];
    for (z, ks) in slices.iter().enumerate() {
        for (c, (kr, ki)) in ks.iter().enumerate() {
            for iy in 0..ny {
                for ix in 0..nx {
                    let (l, r) = if g.read_axis == 0 {
                        (unshift(iy, ny), unshift(ix, nx))
                    } else {
                        (unshift(ix, nx), unshift(iy, ny))
                    };
                    let src = l * g.n_read + r;
                    data[((c * nz + z) * ny + iy) * nx + ix] = [kr[src], ki[src]];
                }
            }
        }
    }
    KSpace {
        coils: p.coils,
        dims: [nx, ny, nz],
        data,
    }
}

/// Stage 1: per-voxel complex signal. Water and fat share the voxel's relaxation maps (the
/// maps already describe the voxel's tissue); fat carries its chemical-shift off-resonance.
fn object_signal(
    maps: &MriMaps,
    sp: &SeqParams,
    b0: Option<&B0>,
    fat_hz: f64,
    separate_fat: bool,
) -> Vec<Component> {
    let grid = &maps.pd.grid;
    let [nx, ny, _] = grid.dims;
    let n = grid.len();
    let centre = [0, 1, 2]
        .map(|a| grid.origin_mm[a] + 0.5 * (grid.dims[a] as f64 - 1.0) * grid.spacing_mm[a]);
    let any_fat = maps.fat_fraction.data.iter().any(|&f| f > 0.0);
    let two = separate_fat && any_fat;
    let (mut wr, mut wi) = (vec![0f32; n], vec![0f32; n]);
    let (mut fr, mut fi) = if two {
        (vec![0f32; n], vec![0f32; n])
    } else {
        (Vec::new(), Vec::new())
    };
    let plane = nx * ny;
    let xs: Vec<f64> = (0..nx)
        .map(|i| grid.world(i, 0, 0)[0] - centre[0])
        .collect();
    let ys: Vec<f64> = (0..ny)
        .map(|j| grid.world(0, j, 0)[1] - centre[1])
        .collect();
    // Returns whether any imaginary part (water, fat) is nonzero. Zero imaginary parts are
    // not written: the buffers start zeroed, and the pages of an all-real signal's imaginary
    // buffer (most sequences) are then never touched.
    let work =
        |k: usize, wr: &mut [f32], wi: &mut [f32], mut fat: Option<(&mut [f32], &mut [f32])>| {
            let mut complex = [false; 2];
            let df_plane = b0.map(|b| {
                let z = grid.world(0, 0, k)[2] - centre[2];
                b.object_plane_hz(k, &xs, &ys, z)
            });
            // Piecewise-constant maps repeat voxels: reuse the previous voxel's result.
            type Memo = ([f32; 7], (f32, f32), (f32, f32));
            let mut last: Option<Memo> = None;
            for q in 0..plane {
                let idx = k * plane + q;
                let pd = maps.pd.data[idx] as f64;
                if pd == 0.0 {
                    continue;
                }
                let key = [
                    maps.pd.data[idx],
                    maps.t1_ms.data[idx],
                    maps.t2_ms.data[idx],
                    maps.t2star_ms.data[idx],
                    maps.fat_fraction.data[idx],
                    df_plane.as_ref().map_or(0.0, |d| d[q] as f32),
                    maps.adc_um2_ms.data[idx],
                ];
                if let Some((kk, w, f)) = &last {
                    if *kk == key {
                        wr[q] = w.0;
                        if w.1 != 0.0 {
                            wi[q] = w.1;
                        }
                        if let Some((fr, fi)) = fat.as_mut() {
                            fr[q] = f.0;
                            if f.1 != 0.0 {
                                fi[q] = f.1;
                            }
                        }
                        continue;
                    }
                }
                let (t1, t2, t2s) = (
                    maps.t1_ms.data[idx] as f64,
                    maps.t2_ms.data[idx] as f64,
                    maps.t2star_ms.data[idx] as f64,
                );
                let ff = (maps.fat_fraction.data[idx] as f64).clamp(0.0, 1.0);
                let df = df_plane.as_ref().map_or(0.0, |d| d[q]);
                // DWI: water attenuated by its diffusion, fat suppressed.
                let (pd, ff) = if sp.sequence == Sequence::Dwi {
                    let a =
                        signal::diffusion_attenuation(sp.b_s_mm2, maps.adc_um2_ms.data[idx] as f64);
                    (pd * (1.0 - ff) * a, 0.0)
                } else {
                    (pd, ff)
                };
                let (mut r, mut i) = (0.0, 0.0);
                let mut fat_val = (0.0f32, 0.0f32);
                if ff < 1.0 {
                    let w = signal::signal(sp, pd * (1.0 - ff), t1, t2, t2s, df);
                    r += w.0;
                    i += w.1;
                }
                if ff > 0.0 {
                    let f = signal::signal(sp, pd * ff, t1, t2, t2s, df + fat_hz);
                    match fat.as_mut() {
                        Some((fr, fi)) => {
                            fat_val = (f.0 as f32, f.1 as f32);
                            fr[q] = fat_val.0;
                            if fat_val.1 != 0.0 {
                                fi[q] = fat_val.1;
                                complex[1] = true;
                            }
                        }
                        None => {
                            r += f.0;
                            i += f.1;
                        }
                    }
                }
                wr[q] = r as f32;
                if i as f32 != 0.0 {
                    wi[q] = i as f32;
                    complex[0] = true;
                }
                last = Some((key, (r as f32, i as f32), fat_val));
            }
            complex
        };
    let any = |a: [bool; 2], b: [bool; 2]| [a[0] || b[0], a[1] || b[1]];
    let complex = if two {
        wr.par_chunks_mut(plane)
            .zip(wi.par_chunks_mut(plane))
            .zip(fr.par_chunks_mut(plane).zip(fi.par_chunks_mut(plane)))
            .enumerate()
            .map(|(k, ((a, b), (c, d)))| work(k, a, b, Some((c, d))))
            .reduce(|| [false; 2], any)
    } else {
        wr.par_chunks_mut(plane)
            .zip(wi.par_chunks_mut(plane))
            .enumerate()
            .map(|(k, (a, b))| work(k, a, b, None))
            .reduce(|| [false; 2], any)
    };
    let mut out = vec![Component {
        re: wr,
        im: complex[0].then_some(wi),
        shift_hz: 0.0,
        basis: 0,
    }];
    if two {
        out.push(Component {
            re: fr,
            im: complex[1].then_some(fi),
            shift_hz: fat_hz,
            basis: 0,
        });
    }
    out
}

#[cfg(test)]
mod tests;
