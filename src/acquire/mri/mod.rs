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
pub mod fft;
pub mod kspace;
pub mod noise;
pub mod phantom;
pub mod protocol;
pub mod recon;
pub mod signal;

use rayon::prelude::*;
use serde_json::json;

pub use protocol::{
    Artifacts, Combine, InPlane, Motion, MriProtocol, ReadoutAxis, SamplingPattern, Sequence,
    Undersampling,
};

use crate::tissue::object::MriMaps;
use crate::volume::{Grid, Volume};
use artifacts::{Rigid, SmoothField};
use coils::CoilArray;
use kspace::{Geometry, Plans};
use noise::{FastRng, Normals};
use signal::SeqParams;

/// The simulated acquisition.
pub struct MriResult {
    /// Magnitude image on the acquisition grid (matrix over the FOV, slices of `slice_mm`,
    /// `Grid::centered`), in units of M0 of a PD = 1 tissue.
    pub image: Volume<f32>,
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

/// One object-signal component on the object grid: water, or fat when it is displaced.
struct Component {
    re: Vec<f32>,
    im: Option<Vec<f32>>,
    /// Off-resonance (Hz) that displaces this component along the readout, besides B0.
    shift_hz: f64,
}

/// A complex image as split (re, im) buffers.
type Complex = (Vec<f32>, Vec<f32>);
/// One slice's result: combined magnitude and, when exporting, each coil's k-space.
type SliceOut = (Vec<f32>, Vec<Complex>);

/// Everything a slice worker reads.
struct Ctx<'a> {
    p: &'a MriProtocol,
    g: Geometry,
    plans: Plans,
    obj: &'a Grid,
    fast: bool,
    comps: Vec<Component>,
    motion: Option<(Rigid, Vec<bool>)>,
    b0: Option<(SmoothField, f64)>,
    bias: Option<(SmoothField, f32)>,
    coils: CoilArray,
    mask: Vec<bool>,
    ghost: Option<f32>,
    spike: Option<(i64, i64, f64, f64)>,
    sigma_line: Option<f32>,
    sigma_img: Option<f32>,
    kx_domain: bool,
    seed: u64,
}

/// Simulates the acquisition. `seed`: one stream per slice/coil is derived with
/// `crate::rng::stream(seed, Stage::Acquire, index)`, so results do not depend on thread
/// count. Deterministic.
pub fn acquire(maps: &MriMaps, protocol: &MriProtocol, seed: u64) -> Result<MriResult, MriError> {
    let p = protocol;
    // 0. Checks: protocol, field strength, map grids.
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
    ] {
        if v.grid.dims != obj.dims {
            return Err(MriError::MapGrid {
                name,
                got: v.grid.dims,
                want: obj.dims,
            });
        }
    }
    let g = Geometry::new(p, obj);
    let a = &p.artifacts;
    let fov3 = [p.fov_mm[0], p.fov_mm[1], g.n_slices as f64 * p.slice_mm];
    let half = fov3.map(|e| 0.5 * e);
    let mut applied = serde_json::Map::new();
    applied.insert("sequence".into(), json!(p.sequence));
    applied.insert("oversampling".into(), json!([g.os_read, g.os_phase]));

    // 1. Object signal per voxel.
    let b0 = a.b0_offresonance_ppm.map(|ppm| {
        let f = SmoothField::random(&mut FastRng::from_stream(seed, 0x3_0000_0000), half);
        (f, protocol::ppm_to_hz(ppm, p.field_t))
    });
    if let Some((_, hz)) = &b0 {
        applied.insert(
            "b0_offresonance".into(),
            json!({"amplitude_ppm": a.b0_offresonance_ppm, "max_offset_hz": hz.abs(), "max_shift_px": hz.abs() / p.bandwidth_hz_per_px}),
        );
    }
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
    let mask = kspace::sampling_mask(g.n_phase, p.partial_fourier, p.undersampling.as_ref(), seed);
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
        seed,
        g,
    };

    // 3–4. Slices in parallel, each written into its plane of the image by its own thread.
    let g = &ctx.g;
    let plane = g.n_read * g.n_phase;
    let mut image = vec![0f32; plane * g.n_slices];
    let slices: Vec<Vec<Complex>> = image
        .par_chunks_mut(plane)
        .enumerate()
        .map(|(s, out)| {
            let (img, ks) = simulate_slice(&ctx, s);
            if g.read_axis == 0 {
                out.copy_from_slice(&img);
            } else {
                fft::transpose(&img, g.n_phase, g.n_read, out);
            }
            ks
        })
        .collect();
    let unshift = |j: usize, n: usize| (j + n - n / 2) % n;
    let kspace = p.export_kspace.then(|| {
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
    });
    let mask = has_mask.then(|| {
        (0..g.n_phase)
            .map(|j| ctx.mask[unshift(j, g.n_phase)] as u8)
            .collect()
    });
    Ok(MriResult {
        image: Volume::from_vec(g.grid.clone(), image),
        kspace,
        mask,
        applied: serde_json::Value::Object(applied),
    })
}

/// Stage 1: per-voxel complex signal. Water and fat share the voxel's relaxation maps (the
/// maps already describe the voxel's tissue); fat carries its chemical-shift off-resonance.
fn object_signal(
    maps: &MriMaps,
    sp: &SeqParams,
    b0: Option<&(SmoothField, f64)>,
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
            let df_plane = b0.map(|(f, hz)| {
                let z = grid.world(0, 0, k)[2] - centre[2];
                let gp = f.eval_plane(1, &ys, 0, &xs, z);
                gp.into_iter().map(|v| v as f64 * hz).collect::<Vec<f64>>()
            });
            // Piecewise-constant maps repeat voxels: reuse the previous voxel's result.
            type Memo = ([f32; 6], (f32, f32), (f32, f32));
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
    }];
    if two {
        out.push(Component {
            re: fr,
            im: complex[1].then_some(fi),
            shift_hz: fat_hz,
        });
    }
    out
}

/// Stage 2: the object on slice `s`'s sim grid (rows = phase lines), moved by `xform`.
fn object_slice(ctx: &Ctx, s: usize, xform: Option<&Rigid>) -> (Vec<f32>, Vec<f32>) {
    let g = &ctx.g;
    let n = g.ns_phase * g.ns_read;
    let (mut re, mut im) = (vec![0f32; n], vec![0f32; n]);
    let read_coords: Vec<f64> = (0..g.ns_read).map(|r| g.read_mm(r)).collect();
    let phase_coords: Vec<f64> = (0..g.ns_phase).map(|l| g.phase_mm(l)).collect();
    let z = g.slice_z_mm(s);
    let df_b0 = ctx.b0.as_ref().map(|(f, hz)| {
        f.eval_plane(g.phase_axis, &phase_coords, g.read_axis, &read_coords, z)
            .into_iter()
            .map(|v| v as f64 * hz)
            .collect::<Vec<f64>>()
    });
    for (k, comp) in ctx.comps.iter().enumerate() {
        // The first component lands in the still-zero sum itself when it is not displaced
        // (the usual case: one component, no chemical shift or B0): no copy and no add.
        let in_place = k == 0 && comp.shift_hz == 0.0 && df_b0.is_none();
        let (mut own_r, mut own_i) = if in_place {
            (Vec::new(), Vec::new())
        } else {
            (vec![0f32; n], vec![0f32; n])
        };
        let (cr, ci) = if in_place {
            (&mut re, &mut im)
        } else {
            (&mut own_r, &mut own_i)
        };
        if ctx.fast && xform.is_none() {
            // The sim grid is the object grid: plane s, transposed when the readout is y.
            let plane = g.n_read * g.n_phase;
            let src_r = &comp.re[s * plane..(s + 1) * plane];
            if g.read_axis == 0 {
                cr.copy_from_slice(src_r);
                if let Some(im) = &comp.im {
                    ci.copy_from_slice(&im[s * plane..(s + 1) * plane]);
                }
            } else {
                fft::transpose(src_r, g.n_read, g.n_phase, cr);
                if let Some(im) = &comp.im {
                    fft::transpose(&im[s * plane..(s + 1) * plane], g.n_read, g.n_phase, ci);
                }
            }
        } else {
            // Slab average (boxcar slice profile) of trilinear samples. World → (moved) →
            // voxel is affine in (r, l): step it instead of recomputing per pixel.
            let n_sub = ((g.slice_mm / ctx.obj.spacing_mm[2] - 1e-6).ceil() as usize).max(1);
            let w = 1.0 / n_sub as f32;
            let to_vox = |r: usize, l: usize, dz: f64| {
                let mut p = g.world(r, l, s);
                p[2] = z + dz;
                ctx.obj.to_voxel(xform.map_or(p, |x| x.pull(p)))
            };
            for q in 0..n_sub {
                let dz = ((q as f64 + 0.5) / n_sub as f64 - 0.5) * g.slice_mm;
                let v00 = to_vox(0, 0, dz);
                let (v10, v01) = (to_vox(1, 0, dz), to_vox(0, 1, dz));
                let dr = [0, 1, 2].map(|a| v10[a] - v00[a]);
                let dl = [0, 1, 2].map(|a| v01[a] - v00[a]);
                for (l, (or, oi)) in cr
                    .chunks_exact_mut(g.ns_read)
                    .zip(ci.chunks_exact_mut(g.ns_read))
                    .enumerate()
                {
                    let row = [0, 1, 2].map(|a| v00[a] + l as f64 * dl[a]);
                    let dims = ctx.obj.dims;
                    match &comp.im {
                        Some(im) => {
                            artifacts::add_row_samples([&comp.re, im], dims, row, dr, w, [or, oi])
                        }
                        None => artifacts::add_row_samples([&comp.re], dims, row, dr, w, [or]),
                    }
                }
            }
        }
        // Displacement along the readout by off-resonance / bandwidth (push, linear splat:
        // pile-up and voids appear where the shift varies).
        if comp.shift_hz != 0.0 || df_b0.is_some() {
            let px_per_hz = g.os_read as f64 / ctx.p.bandwidth_hz_per_px;
            for l in 0..g.ns_phase {
                let row = l * g.ns_read..(l + 1) * g.ns_read;
                let (sr, si) = (cr[row.clone()].to_vec(), ci[row.clone()].to_vec());
                let (dr, di) = (&mut cr[row.clone()], &mut ci[row]);
                dr.fill(0.0);
                di.fill(0.0);
                for r in 0..g.ns_read {
                    let hz = comp.shift_hz + df_b0.as_ref().map_or(0.0, |d| d[l * g.ns_read + r]);
                    let t = r as f64 + hz * px_per_hz;
                    let t0 = t.floor();
                    let f = (t - t0) as f32;
                    for (k, wgt) in [(t0 as i64, 1.0 - f), (t0 as i64 + 1, f)] {
                        if k >= 0 && (k as usize) < g.ns_read {
                            dr[k as usize] += wgt * sr[r];
                            di[k as usize] += wgt * si[r];
                        }
                    }
                }
            }
        }
        if !in_place {
            re.iter_mut().zip(&own_r).for_each(|(a, b)| *a += b);
            im.iter_mut().zip(&own_i).for_each(|(a, b)| *a += b);
        }
    }
    if let Some((f, h)) = &ctx.bias {
        let gp = f.eval_plane(g.phase_axis, &phase_coords, g.read_axis, &read_coords, z);
        for ((r, i), v) in re.iter_mut().zip(im.iter_mut()).zip(&gp) {
            *r *= 1.0 + h * v;
            *i *= 1.0 + h * v;
        }
    }
    (re, im)
}

/// Complex product of a separable coil map with a (rows × cols) slice.
fn apply_coil(
    re: &[f32],
    im: &[f32],
    rows: &[(f32, f32)],
    cols: &[(f32, f32)],
    fz: (f32, f32),
) -> (Vec<f32>, Vec<f32>) {
    let w = cols.len();
    let (mut or, mut oi) = (vec![0f32; re.len()], vec![0f32; im.len()]);
    for (l, &(pr, pi)) in rows.iter().enumerate() {
        let (rr, ri) = (pr * fz.0 - pi * fz.1, pr * fz.1 + pi * fz.0);
        let span = l * w..(l + 1) * w;
        for ((((o_r, o_i), &x), &y), &(cr, ci)) in or[span.clone()]
            .iter_mut()
            .zip(&mut oi[span.clone()])
            .zip(&re[span.clone()])
            .zip(&im[span])
            .zip(cols)
        {
            let (sr, si) = (rr * cr - ri * ci, rr * ci + ri * cr);
            *o_r = sr * x - si * y;
            *o_i = sr * y + si * x;
        }
    }
    (or, oi)
}

/// Stage 4: adds coil `c`'s image to the combination (its map on the output grid for SENSE).
#[allow(clippy::too_many_arguments)]
fn add_to_combiner(
    ctx: &Ctx,
    comb: &mut recon::Combiner,
    c: usize,
    re: &[f32],
    im: &[f32],
    out_read: &[f64],
    out_phase: &[f64],
    fz: (f32, f32),
) {
    if let recon::Combiner::Rss(_) = comb {
        comb.add(re, im, &[], &[]);
        return;
    }
    let g = &ctx.g;
    let or = ctx.coils.axis_factor(c, g.read_axis, out_read);
    let op = ctx.coils.axis_factor(c, g.phase_axis, out_phase);
    let n = re.len();
    let (cr, ci) = apply_coil(&vec![1f32; n], &vec![0f32; n], &op, &or, fz);
    comb.add(re, im, &cr, &ci);
}

/// Stages 2–4 for one slice: returns the combined magnitude (n_phase × n_read) and, when
/// exporting, each coil's orthonormal k-space in DFT order.
fn simulate_slice(ctx: &Ctx, s: usize) -> SliceOut {
    let g = &ctx.g;
    let (np, nr) = (g.n_phase, g.n_read);
    // 2. Object per motion state, with the lines each state provides.
    let mut states: Vec<(Complex, Vec<bool>)> = Vec::new();
    match &ctx.motion {
        None => states.push((object_slice(ctx, s, None), vec![true; np])),
        Some((x, moved)) => {
            if moved.iter().any(|&m| !m) {
                states.push((
                    object_slice(ctx, s, None),
                    moved.iter().map(|&m| !m).collect(),
                ));
            }
            if moved.iter().any(|&m| m) {
                states.push((object_slice(ctx, s, Some(x)), moved.clone()));
            }
        }
    }
    // When every k-space line is kept as acquired (no crop, mask or ghost) the transform pair
    // is the identity on all but the moved lines: see `simulate_slice_direct`.
    let direct = !ctx.kx_domain
        && g.os_phase == 1
        && ctx.ghost.is_none()
        && !ctx.p.export_kspace
        && ctx.mask.iter().all(|&m| m);
    if direct {
        return (simulate_slice_direct(ctx, s, &states), Vec::new());
    }
    let z = g.slice_z_mm(s);
    let sim_read: Vec<f64> = (0..g.ns_read).map(|r| g.read_mm(r)).collect();
    let sim_phase: Vec<f64> = (0..g.ns_phase).map(|l| g.phase_mm(l)).collect();
    let out_read: Vec<f64> = (0..nr).map(|r| g.read_mm(r * g.os_read)).collect();
    let out_phase: Vec<f64> = (0..np).map(|l| g.phase_mm(l * g.os_phase)).collect();
    let sense = ctx.p.combine == Combine::Sense;
    let mut comb = recon::Combiner::new(sense, np * nr);
    let mut exported = Vec::new();
    for c in 0..ctx.coils.len() {
        let fz = ctx.coils.axis_factor(c, 2, &[z])[0];
        let (fr, fp) = (
            ctx.coils.axis_factor(c, g.read_axis, &sim_read),
            ctx.coils.axis_factor(c, g.phase_axis, &sim_phase),
        );
        let mut rng = FastRng::from_stream(ctx.seed, ((s as u64) << 8) | c as u64);
        // 3a. Coil image → k-space, each line from its motion state.
        let (mut kr, mut ki) = (vec![0f32; np * nr], vec![0f32; np * nr]);
        for ((sr, si), lines) in &states {
            let (br, bi) = if ctx.coils.uniform {
                (sr.clone(), si.clone())
            } else {
                apply_coil(sr, si, &fp, &fr, fz)
            };
            let (tr, ti) = kspace::forward(g, &ctx.plans, br, bi, ctx.kx_domain);
            if states.len() == 1 {
                (kr, ki) = (tr, ti);
            } else {
                for l in (0..np).filter(|&l| lines[l]) {
                    kr[l * nr..(l + 1) * nr].copy_from_slice(&tr[l * nr..(l + 1) * nr]);
                    ki[l * nr..(l + 1) * nr].copy_from_slice(&ti[l * nr..(l + 1) * nr]);
                }
            }
        }
        // 3b. Spike relative to this coil's k-space centre.
        if let Some((kx, ky, amp, ph)) = ctx.spike {
            let l0 = ky.rem_euclid(np as i64) as usize;
            let dc = if ctx.kx_domain {
                (kr[0] as f64, ki[0] as f64)
            } else {
                (
                    kr[..nr].iter().map(|&v| v as f64).sum(),
                    ki[..nr].iter().map(|&v| v as f64).sum(),
                )
            };
            let a = amp * dc.0.hypot(dc.1);
            let (row_r, row_i) = (
                &mut kr[l0 * nr..(l0 + 1) * nr],
                &mut ki[l0 * nr..(l0 + 1) * nr],
            );
            if ctx.kx_domain {
                let r0 = kx.rem_euclid(nr as i64) as usize;
                row_r[r0] += (a * ph.cos()) as f32;
                row_i[r0] += (a * ph.sin()) as f32;
            } else {
                // A delta at kx in the readout spectrum is (A/n) e^{+i2πkx·x/n} along x.
                for x in 0..nr {
                    let ang = ph + 2.0 * std::f64::consts::PI * (kx * x as i64) as f64 / nr as f64;
                    row_r[x] += (a / nr as f64 * ang.cos()) as f32;
                    row_i[x] += (a / nr as f64 * ang.sin()) as f32;
                }
            }
        }
        // 3c. Mask, ghosting, thermal noise (one stream per slice and coil).
        for l in 0..np {
            let (row_r, row_i) = (&mut kr[l * nr..(l + 1) * nr], &mut ki[l * nr..(l + 1) * nr]);
            if !ctx.mask[l] {
                row_r.fill(0.0);
                row_i.fill(0.0);
                continue;
            }
            if let Some(a) = ctx.ghost {
                if kspace::ky_of(l, np).rem_euclid(2) == 1 {
                    row_r.iter_mut().for_each(|v| *v *= a);
                    row_i.iter_mut().for_each(|v| *v *= a);
                }
            }
            if let Some(sl) = ctx.sigma_line {
                rng.add_normals(sl, row_r, row_i);
            }
        }
        if ctx.p.export_kspace {
            exported.push(kspace::to_ortho_kspace(
                g,
                &ctx.plans,
                &kr,
                &ki,
                ctx.kx_domain,
            ));
        }
        // 4. Zero-filled reconstruction and combination.
        kspace::inverse(g, &ctx.plans, &mut kr, &mut ki, ctx.kx_domain);
        add_to_combiner(ctx, &mut comb, c, &kr, &ki, &out_read, &out_phase, fz);
    }
    (comb.finish(), exported)
}

/// Stages 3–4 of a slice whose acquired lines are all kept as they are (no readout crop,
/// mask or ghosting, nothing exported). The transform pair is then the identity on all but
/// the moved lines, so by linearity each coil's image is
///   c·a + F⁻¹[P_moved F(c·(b − a))] + F⁻¹(spike) + F⁻¹(noise),
/// a and b the still and moved object: the spike is a closed-form plane wave, and F⁻¹ of
/// white noise is white noise of the image σ (F is unitary up to the scale divided out), so
/// only the motion term needs transforms. The coil map c = c_read(r)·c_phase(l)·c_z is
/// constant along the phase transform and the line selection except for c_phase, so
/// F⁻¹ P F(c·d) = c_read c_z · F⁻¹ P F(c_phase·d): coils with the same phase factor (mirror
/// pairs of a ring) share that transform pair.
fn simulate_slice_direct(ctx: &Ctx, s: usize, states: &[(Complex, Vec<bool>)]) -> Vec<f32> {
    // Its per-pixel passes are most of a slice's time outside the transforms and the noise:
    // compile them a second time for AVX2 (no FMA contraction, so both give the same numbers).
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the feature the copy is compiled for was just detected.
            return unsafe { simulate_slice_direct_avx2(ctx, s, states) };
        }
    }
    simulate_slice_direct_impl(ctx, s, states)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn simulate_slice_direct_avx2(
    ctx: &Ctx,
    s: usize,
    states: &[(Complex, Vec<bool>)],
) -> Vec<f32> {
    simulate_slice_direct_impl(ctx, s, states)
}

#[inline(always)]
fn simulate_slice_direct_impl(ctx: &Ctx, s: usize, states: &[(Complex, Vec<bool>)]) -> Vec<f32> {
    let g = &ctx.g;
    let (np, nr) = (g.n_phase, g.n_read);
    let n = np * nr;
    let z = g.slice_z_mm(s);
    let read: Vec<f64> = (0..nr).map(|r| g.read_mm(r)).collect();
    let phase: Vec<f64> = (0..np).map(|l| g.phase_mm(l)).collect();
    let mut comb = recon::Combiner::new(ctx.p.combine == Combine::Sense, n);
    let ((ar, ai), _) = &states[0];
    let moved = states.get(1).map(|((br, bi), lines)| {
        let dr: Vec<f32> = br.iter().zip(ar).map(|(b, a)| b - a).collect();
        let di: Vec<f32> = bi.iter().zip(ai).map(|(b, a)| b - a).collect();
        (dr, di, lines)
    });
    let nc = ctx.coils.len();
    let uniform = ctx.coils.uniform;
    let fp: Vec<Vec<(f32, f32)>> = (0..nc)
        .map(|c| ctx.coils.axis_factor(c, g.phase_axis, &phase))
        .collect();
    // Coils in groups of identical phase factors, each group in coil order.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for c in 0..nc {
        match groups.iter_mut().find(|grp| fp[grp[0]] == fp[c]) {
            Some(grp) => grp.push(c),
            None => groups.push(vec![c]),
        }
    }
    // The spike's plane wave e^{iφ} e^{2πi kx r/nr} e^{2πi ky l/np}, as row and column factors.
    let spike = ctx.spike.map(|(kx, ky, amp, ph)| {
        let tau = 2.0 * std::f64::consts::PI;
        let wx: Vec<(f64, f64)> = (0..nr)
            .map(|r| (tau * (kx * r as i64) as f64 / nr as f64).sin_cos())
            .map(|(s, c)| (c, s))
            .collect();
        let wy: Vec<(f64, f64)> = (0..np)
            .map(|l| (ph + tau * (ky * l as i64) as f64 / np as f64).sin_cos())
            .map(|(s, c)| (c, s))
            .collect();
        (amp, wx, wy)
    });
    let inv_n = 1.0 / np as f32;
    let sense = ctx.p.combine == Combine::Sense;
    let (mut tr, mut ti) = (vec![0f32; n], vec![0f32; n]);
    let (mut ir, mut ii) = (vec![0f32; n], vec![0f32; n]);
    // SENSE: one row of the current coil's map (empty, and unused, for RSS).
    let (mut map_r, mut map_i) = if sense {
        (vec![0f32; nr], vec![0f32; nr])
    } else {
        (Vec::new(), Vec::new())
    };
    for grp in &groups {
        let fp = &fp[grp[0]];
        if let Some((dr, di, lines)) = &moved {
            // T = F⁻¹ P F(c_phase·d), unnormalised.
            for (l, &(pr, pi)) in fp.iter().enumerate() {
                let span = l * nr..(l + 1) * nr;
                for (((tr, ti), &dr), &di) in tr[span.clone()]
                    .iter_mut()
                    .zip(&mut ti[span.clone()])
                    .zip(&dr[span.clone()])
                    .zip(&di[span])
                {
                    *tr = pr * dr - pi * di;
                    *ti = pr * di + pi * dr;
                }
            }
            ctx.plans.phase_sim.process(&mut tr, &mut ti, nr, false);
            for (l, _) in lines.iter().enumerate().filter(|(_, &m)| !m) {
                tr[l * nr..(l + 1) * nr].fill(0.0);
                ti[l * nr..(l + 1) * nr].fill(0.0);
            }
            ctx.plans.phase_out.process(&mut tr, &mut ti, nr, true);
        }
        for &c in grp {
            let fz = ctx.coils.axis_factor(c, 2, &[z])[0];
            // c_read·c_z per column.
            let (cr, ci): (Vec<f32>, Vec<f32>) = ctx
                .coils
                .axis_factor(c, g.read_axis, &read)
                .into_iter()
                .map(|(a, b)| (a * fz.0 - b * fz.1, a * fz.1 + b * fz.0))
                .unzip();
            let mut rng = FastRng::from_stream(ctx.seed, ((s as u64) << 8) | c as u64);
            let mut normals = Normals::new(&mut rng);
            // Noise and combination of one finished row, while it is in L1; SENSE weighs by
            // the coil's map c_phase(l)·c_read·c_z on that row.
            let mut finish_row = |l: usize, o_r: &mut [f32], o_i: &mut [f32]| {
                if let Some(sd) = ctx.sigma_img {
                    normals.add(sd, o_r, o_i);
                }
                if sense {
                    let (pr, pi) = fp[l];
                    for r in 0..nr {
                        map_r[r] = pr * cr[r] - pi * ci[r];
                        map_i[r] = pr * ci[r] + pi * cr[r];
                    }
                }
                comb.add_at(l * nr, o_r, o_i, &map_r, &map_i);
            };
            // c_read·c_z·(c_phase·a + T/n), row by row (separate loops so each vectorises).
            for (l, &(pr, pi)) in fp.iter().enumerate() {
                let span = l * nr..(l + 1) * nr;
                let (a_r, a_i) = (&ar[span.clone()], &ai[span.clone()]);
                let (t_r, t_i) = (&tr[span.clone()], &ti[span.clone()]);
                let (o_r, o_i) = (&mut ir[span.clone()], &mut ii[span]);
                match (uniform, moved.is_some()) {
                    (true, false) => {
                        o_r.copy_from_slice(a_r);
                        o_i.copy_from_slice(a_i);
                    }
                    (true, true) => {
                        for r in 0..nr {
                            o_r[r] = a_r[r] + inv_n * t_r[r];
                            o_i[r] = a_i[r] + inv_n * t_i[r];
                        }
                    }
                    (false, m) => {
                        let t = if m { inv_n } else { 0.0 };
                        let (cr, ci) = (&cr[..nr], &ci[..nr]);
                        for r in 0..nr {
                            let xr = pr * a_r[r] - pi * a_i[r] + t * t_r[r];
                            let xi = pr * a_i[r] + pi * a_r[r] + t * t_i[r];
                            o_r[r] = cr[r] * xr - ci[r] * xi;
                            o_i[r] = cr[r] * xi + ci[r] * xr;
                        }
                    }
                }
                if spike.is_none() {
                    finish_row(l, o_r, o_i);
                }
            }
            if let Some((amp, wx, wy)) = &spike {
                // K(0, 0) is the image sum; a delta A at (kx, ky) is A/(nr·np) e^{iφ(x, y)}.
                let (dc_r, dc_i) = (artifacts::sum_f64(&ir), artifacts::sum_f64(&ii));
                let a = amp * dc_r.hypot(dc_i) / n as f64;
                for (l, &(yc, ys)) in wy.iter().enumerate() {
                    let span = l * nr..(l + 1) * nr;
                    let (o_r, o_i) = (&mut ir[span.clone()], &mut ii[span]);
                    for (r, &(xc, xs)) in wx.iter().enumerate() {
                        o_r[r] += (a * (yc * xc - ys * xs)) as f32;
                        o_i[r] += (a * (yc * xs + ys * xc)) as f32;
                    }
                    finish_row(l, o_r, o_i);
                }
            }
        }
    }
    comb.finish()
}

#[cfg(test)]
mod tests;
