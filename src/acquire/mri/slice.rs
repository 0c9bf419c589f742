//! One slice of the acquisition: the object's signal resampled onto the slice (with motion),
//! each coil's sensitivity, k-space sampling with B0, ghosting and spikes, noise, and the
//! coil combination. `acquire` in the parent module prepares the [`Ctx`] and runs slices in
//! parallel.

use super::*;

/// One object-signal component on the object grid: water, or fat when it is displaced.
pub(super) struct Component {
    pub(super) re: Vec<f32>,
    pub(super) im: Option<Vec<f32>>,
    /// Off-resonance (Hz) that displaces this component along the readout, besides B0.
    pub(super) shift_hz: f64,
    /// The echo-train term this component feeds (`echo_train::TrainBasis`; 0 without one).
    pub(super) basis: usize,
}

/// A complex image as split (re, im) buffers.
pub(super) type Complex = (Vec<f32>, Vec<f32>);
/// One slice's result: combined magnitude, each coil's k-space when exporting, and the
/// g-factor map when SENSE unfolded the slice.
pub(super) type SliceOut = (Vec<f32>, Vec<Complex>, Option<Vec<f32>>);

/// Everything a slice worker reads.
pub(super) struct Ctx<'a> {
    pub(super) p: &'a MriProtocol,
    pub(super) g: Geometry,
    pub(super) plans: Plans,
    pub(super) obj: &'a Grid,
    pub(super) fast: bool,
    pub(super) comps: Vec<Component>,
    pub(super) motion: Option<(Rigid, Vec<bool>)>,
    pub(super) b0: Option<B0>,
    pub(super) bias: Option<(SmoothField, f32)>,
    pub(super) coils: CoilArray,
    pub(super) mask: Vec<bool>,
    pub(super) ghost: Option<f32>,
    pub(super) spike: Option<(i64, i64, f64, f64)>,
    pub(super) sigma_line: Option<f32>,
    pub(super) sigma_img: Option<f32>,
    pub(super) kx_domain: bool,
    /// Homodyne partial-Fourier reconstruction (partial Fourier with `homodyne`).
    pub(super) homodyne: Option<partial_fourier::Homodyne>,
    /// Cholesky factor of the coils' noise covariance (correlated coil noise).
    pub(super) noise_chol: Option<Vec<f64>>,
    /// The echo train's separable decay, when lines are read at different times.
    pub(super) train: Option<echo_train::TrainBasis>,
    pub(super) seed: u64,
}

/// The fields on slice `s`'s sim grid that every object term and motion state of the slice
/// shares: the B0 off-resonance (Hz) and the receive bias factor.
pub(super) struct SliceFields {
    df_b0: Option<Vec<f64>>,
    bias: Option<Vec<f32>>,
}

impl SliceFields {
    pub(super) fn new(ctx: &Ctx, s: usize) -> SliceFields {
        let g = &ctx.g;
        let read: Vec<f64> = (0..g.ns_read).map(|r| g.read_mm(r)).collect();
        let phase: Vec<f64> = (0..g.ns_phase).map(|l| g.phase_mm(l)).collect();
        let z = g.slice_z_mm(s);
        SliceFields {
            df_b0: ctx.b0.as_ref().map(|b| b.sim_plane_hz(g, s, &phase, &read)),
            bias: ctx.bias.as_ref().map(|(f, h)| {
                f.eval_plane(g.phase_axis, &phase, g.read_axis, &read, z)
                    .into_iter()
                    .map(|v| 1.0 + h * v)
                    .collect()
            }),
        }
    }
}

/// Stage 2: echo-train term `basis` of the object on slice `s`'s sim grid (rows = phase
/// lines), moved by `xform`.
pub(super) fn object_slice(
    ctx: &Ctx,
    s: usize,
    fields: &SliceFields,
    xform: Option<&Rigid>,
    basis: usize,
) -> (Vec<f32>, Vec<f32>) {
    let g = &ctx.g;
    let n = g.ns_phase * g.ns_read;
    let (mut re, mut im) = (vec![0f32; n], vec![0f32; n]);
    let z = g.slice_z_mm(s);
    let df_b0 = fields.df_b0.as_deref();
    // EPI: sim pixels along the phase axis per Hz of off-resonance.
    let phase_px_per_hz = ctx
        .train
        .as_ref()
        .and_then(|b| b.train.ms_per_ky)
        .map(|ms| ms * 1e-3 * g.ns_phase as f64);
    let comps = ctx.comps.iter().filter(|c| c.basis == basis);
    for (k, comp) in comps.enumerate() {
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
        // Displacement by off-resonance: along the readout by Δf / bandwidth, and for EPI
        // along the phase axis by Δf × the time per ky step × lines.
        if comp.shift_hz != 0.0 || df_b0.is_some() {
            let hz = |l: usize, r: usize| {
                comp.shift_hz + df_b0.as_ref().map_or(0.0, |d| d[l * g.ns_read + r])
            };
            let px_per_hz = g.os_read as f64 / ctx.p.bandwidth_hz_per_px;
            displace(cr, ci, g.ns_read, g.ns_phase, false, |l, r| {
                hz(l, r) * px_per_hz
            });
            if let Some(pp) = phase_px_per_hz {
                displace(cr, ci, g.ns_read, g.ns_phase, true, |l, r| hz(l, r) * pp);
            }
        }
        if !in_place {
            re.iter_mut().zip(&own_r).for_each(|(a, b)| *a += b);
            im.iter_mut().zip(&own_i).for_each(|(a, b)| *a += b);
        }
    }
    if let Some(gain) = &fields.bias {
        for ((r, i), v) in re.iter_mut().zip(im.iter_mut()).zip(gain) {
            *r *= v;
            *i *= v;
        }
    }
    (re, im)
}

/// Pushes each pixel of a (rows × cols) complex image by `shift(row, col)` pixels along its
/// row, or along its column when `along_columns`, splatting linearly: pile-up and voids
/// appear where the shift varies, as in a distorted acquisition.
fn displace(
    re: &mut [f32],
    im: &mut [f32],
    cols: usize,
    rows: usize,
    along_columns: bool,
    shift: impl Fn(usize, usize) -> f64,
) {
    let (lines, len) = if along_columns {
        (cols, rows)
    } else {
        (rows, cols)
    };
    let at = |line: usize, i: usize| {
        if along_columns {
            i * cols + line
        } else {
            line * cols + i
        }
    };
    let (mut sr, mut si) = (vec![0f32; len], vec![0f32; len]);
    for line in 0..lines {
        for i in 0..len {
            sr[i] = re[at(line, i)];
            si[i] = im[at(line, i)];
            re[at(line, i)] = 0.0;
            im[at(line, i)] = 0.0;
        }
        for i in 0..len {
            let (row, col) = if along_columns { (i, line) } else { (line, i) };
            let t = i as f64 + shift(row, col);
            let t0 = t.floor();
            let f = (t - t0) as f32;
            for (k, w) in [(t0 as i64, 1.0 - f), (t0 as i64 + 1, f)] {
                if k >= 0 && (k as usize) < len {
                    re[at(line, k as usize)] += w * sr[i];
                    im[at(line, k as usize)] += w * si[i];
                }
            }
        }
    }
}

/// Complex product of a separable coil map with a (rows × cols) slice.
pub(super) fn apply_coil(
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
pub(super) fn add_to_combiner(
    ctx: &Ctx,
    comb: &mut recon::Combiner,
    c: usize,
    re: &[f32],
    im: &[f32],
    out_read: &[f64],
    out_phase: &[f64],
    fz: (f32, f32),
) {
    comb.start_coil(c);
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
pub(super) fn simulate_slice(ctx: &Ctx, s: usize) -> SliceOut {
    let g = &ctx.g;
    let (np, nr) = (g.n_phase, g.n_read);
    // 2. Object per echo-train term and motion state, with the weight of each line in it
    // (a term's decay weights; 1 or 0 for the lines a motion state provides).
    let rank = ctx.train.as_ref().map_or(1, |b| b.rank());
    let fields = SliceFields::new(ctx, s);
    let mut states: Vec<(Complex, Vec<f32>)> = Vec::new();
    for j in 0..rank {
        let w = ctx
            .train
            .as_ref()
            .map_or_else(|| vec![1.0; np], |b| b.line_weights[j].clone());
        let keep = |on: &dyn Fn(usize) -> bool| -> Vec<f32> {
            (0..np).map(|l| if on(l) { w[l] } else { 0.0 }).collect()
        };
        match &ctx.motion {
            None => states.push((object_slice(ctx, s, &fields, None, j), w.clone())),
            Some((x, moved)) => {
                if moved.iter().any(|&m| !m) {
                    states.push((object_slice(ctx, s, &fields, None, j), keep(&|l| !moved[l])));
                }
                if moved.iter().any(|&m| m) {
                    states.push((
                        object_slice(ctx, s, &fields, Some(x), j),
                        keep(&|l| moved[l]),
                    ));
                }
            }
        }
    }
    // When every k-space line is kept as acquired (no crop, mask, ghost or echo train) the
    // transform pair is the identity on all but the moved lines: see `simulate_slice_direct`.
    let direct = !ctx.kx_domain
        && g.os_phase == 1
        && ctx.ghost.is_none()
        && ctx.train.is_none()
        && !ctx.p.export_kspace
        && ctx.mask.iter().all(|&m| m);
    if direct {
        let states: Vec<(Complex, Vec<bool>)> = states
            .into_iter()
            .map(|(c, w)| (c, w.iter().map(|&v| v != 0.0).collect()))
            .collect();
        return (simulate_slice_direct(ctx, s, &states), Vec::new(), None);
    }
    let z = g.slice_z_mm(s);
    let sim_read: Vec<f64> = (0..g.ns_read).map(|r| g.read_mm(r)).collect();
    let sim_phase: Vec<f64> = (0..g.ns_phase).map(|l| g.phase_mm(l)).collect();
    let out_read: Vec<f64> = (0..nr).map(|r| g.read_mm(r * g.os_read)).collect();
    let out_phase: Vec<f64> = (0..np).map(|l| g.phase_mm(l * g.os_phase)).collect();
    let mut comb = recon::Combiner::for_protocol(ctx.p, np, nr, ctx.noise_chol.as_deref());
    let mut exported = Vec::new();
    // GRAPPA needs every coil's k-space before any is reconstructed.
    let grappa = ctx.p.combine == Combine::Grappa;
    let mut held: Vec<(Vec<f32>, Vec<f32>)> = Vec::new();
    for c in 0..ctx.coils.len() {
        let fz = ctx.coils.axis_factor(c, 2, &[z])[0];
        let (fr, fp) = (
            ctx.coils.axis_factor(c, g.read_axis, &sim_read),
            ctx.coils.axis_factor(c, g.phase_axis, &sim_phase),
        );
        let (mut rngs, weights) = coil_noise_streams(ctx, s, c);
        // 3a. Coil image → k-space, each line from its motion state.
        let (mut kr, mut ki) = (vec![0f32; np * nr], vec![0f32; np * nr]);
        for ((sr, si), lines) in &states {
            let (br, bi) = if ctx.coils.uniform {
                (sr.clone(), si.clone())
            } else {
                apply_coil(sr, si, &fp, &fr, fz)
            };
            let (tr, ti) = kspace::forward(g, &ctx.plans, br, bi, ctx.kx_domain);
            if states.len() == 1 && lines.iter().all(|&w| w == 1.0) {
                (kr, ki) = (tr, ti);
            } else {
                for (l, &w) in lines.iter().enumerate().filter(|(_, &w)| w != 0.0) {
                    let span = l * nr..(l + 1) * nr;
                    for (o, v) in kr[span.clone()].iter_mut().zip(&tr[span.clone()]) {
                        *o += w * v;
                    }
                    for (o, v) in ki[span.clone()].iter_mut().zip(&ti[span]) {
                        *o += w * v;
                    }
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
        // 3b'. EPI Nyquist ghost: the odd echoes shifted along kx.
        if let (Some(d), Some(b)) = (ctx.p.artifacts.epi_echo_shift_samples, &ctx.train) {
            nyquist_ghost(ctx, &mut kr, &mut ki, d, &b.train.odd);
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
                for (rng, w) in rngs.iter_mut().zip(&weights) {
                    rng.add_normals(sl * w, row_r, row_i);
                }
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
        if grappa {
            held.push((kr, ki));
            continue;
        }
        // 4. Zero-filled reconstruction and combination.
        match &ctx.homodyne {
            Some(h) => h.reconstruct(g, &ctx.plans, &mut kr, &mut ki, ctx.kx_domain),
            None => kspace::inverse(g, &ctx.plans, &mut kr, &mut ki, ctx.kx_domain),
        }
        add_to_combiner(ctx, &mut comb, c, &kr, &ki, &out_read, &out_phase, fz);
    }
    if grappa {
        grappa_fill(ctx, &mut held);
        for (c, (mut kr, mut ki)) in held.into_iter().enumerate() {
            kspace::inverse(g, &ctx.plans, &mut kr, &mut ki, ctx.kx_domain);
            let fz = ctx.coils.axis_factor(c, 2, &[z])[0];
            add_to_combiner(ctx, &mut comb, c, &kr, &ki, &out_read, &out_phase, fz);
        }
    }
    let (img, g) = comb.finish();
    (img, exported, g)
}

/// Shifts the `odd` lines (phase lines × read, read in k-space when `kx_domain`) by `d`
/// samples along kx: along the read axis of the image, the linear phase e^{2πi d (r − n/2)/n}
/// (its centre at the read centre), which leaves ½(1 + e^{iφ}) of the object in place and moves
/// ½(1 − e^{iφ}) of it by half the field of view.
fn nyquist_ghost(ctx: &Ctx, kr: &mut [f32], ki: &mut [f32], d: f64, odd: &[bool]) {
    let g = &ctx.g;
    let nr = g.n_read;
    if ctx.kx_domain {
        kspace::read_transform(g, &ctx.plans, kr, ki, true);
    }
    let ramp: Vec<(f32, f32)> = (0..nr)
        .map(|r| {
            let (s, c) = (2.0 * std::f64::consts::PI * d * (r as f64 - 0.5 * nr as f64)
                / nr as f64)
                .sin_cos();
            (c as f32, s as f32)
        })
        .collect();
    for (l, _) in odd.iter().enumerate().filter(|(_, &o)| o) {
        let span = l * nr..(l + 1) * nr;
        for ((a, b), &(c, s)) in kr[span.clone()].iter_mut().zip(&mut ki[span]).zip(&ramp) {
            (*a, *b) = (*a * c - *b * s, *a * s + *b * c);
        }
    }
    if ctx.kx_domain {
        kspace::read_transform(g, &ctx.plans, kr, ki, false);
        let s = 1.0 / nr as f32;
        kr.iter_mut().chain(ki.iter_mut()).for_each(|v| *v *= s);
    }
}

/// One coil's image-domain noise source: its own stream (independent coil noise: the common
/// case, kept on the stack as it always was), or the weighted streams of several coils.
enum CoilNoise<'a> {
    One(Normals<'a>),
    Mixed(Vec<(Normals<'a>, f32)>),
}

impl<'a> CoilNoise<'a> {
    fn new(rngs: &'a mut [FastRng], weights: &[f32]) -> CoilNoise<'a> {
        if rngs.len() == 1 && weights == [1.0] {
            return CoilNoise::One(Normals::new(&mut rngs[0]));
        }
        CoilNoise::Mixed(
            rngs.iter_mut()
                .map(Normals::new)
                .zip(weights.iter().copied())
                .collect(),
        )
    }

    #[inline(always)]
    fn add(&mut self, sd: f32, re: &mut [f32], im: &mut [f32]) {
        match self {
            CoilNoise::One(n) => n.add(sd, re, im),
            CoilNoise::Mixed(ns) => {
                for (n, w) in ns {
                    n.add(sd * *w, re, im);
                }
            }
        }
    }
}

/// The noise streams coil `c` of slice `s` draws from and their weights: its own stream with
/// weight 1 when the coils' noise is independent, else the streams of coils 0..=c with the
/// row c of the noise covariance's Cholesky factor (zero weights left out).
fn coil_noise_streams(ctx: &Ctx, s: usize, c: usize) -> (Vec<FastRng>, Vec<f32>) {
    let stream = |d: usize| FastRng::from_stream(ctx.seed, ((s as u64) << 8) | d as u64);
    match &ctx.noise_chol {
        None => (vec![stream(c)], vec![1.0]),
        Some(l) => {
            let n = ctx.coils.len();
            (0..=c)
                .filter(|&d| l[c * n + d] != 0.0)
                .map(|d| (stream(d), l[c * n + d] as f32))
                .unzip()
        }
    }
}

/// GRAPPA on one slice's coils (phase lines × read, read in k-space when `kx_domain`): the
/// read axis goes to k-space for the fit and back after it.
fn grappa_fill(ctx: &Ctx, coils: &mut [(Vec<f32>, Vec<f32>)]) {
    let g = &ctx.g;
    let (np, nr) = (g.n_phase, g.n_read);
    let Some(u) = ctx.p.undersampling.as_ref() else {
        return;
    };
    let read_fft = |re: &mut Vec<f32>, im: &mut Vec<f32>, inverse: bool| {
        kspace::read_transform(g, &ctx.plans, re, im, inverse);
        if inverse {
            let s = 1.0 / nr as f32;
            re.iter_mut().chain(im.iter_mut()).for_each(|v| *v *= s);
        }
    };
    if !ctx.kx_domain {
        coils
            .iter_mut()
            .for_each(|(re, im)| read_fft(re, im, false));
    }
    let c = u.center_lines as i64;
    let acs: Vec<bool> = (0..np)
        .map(|l| {
            let ky = kspace::ky_of(l, np);
            ky >= -c / 2 && ky < c - c / 2
        })
        .collect();
    grappa::fill(coils, np, nr, u.factor as usize, &ctx.mask, &acs);
    if !ctx.kx_domain {
        coils.iter_mut().for_each(|(re, im)| read_fft(re, im, true));
    }
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
pub(super) fn simulate_slice_direct(
    ctx: &Ctx,
    s: usize,
    states: &[(Complex, Vec<bool>)],
) -> Vec<f32> {
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
pub(super) fn simulate_slice_direct_impl(
    ctx: &Ctx,
    s: usize,
    states: &[(Complex, Vec<bool>)],
) -> Vec<f32> {
    let g = &ctx.g;
    let (np, nr) = (g.n_phase, g.n_read);
    let n = np * nr;
    let z = g.slice_z_mm(s);
    let read: Vec<f64> = (0..nr).map(|r| g.read_mm(r)).collect();
    let phase: Vec<f64> = (0..np).map(|l| g.phase_mm(l)).collect();
    let mut comb = recon::Combiner::for_protocol(ctx.p, np, nr, ctx.noise_chol.as_deref());
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
            // Independent noise: this coil's own stream. Correlated noise: Σ_d L_cd z_d over the
            // streams of coils d ≤ c, each drawn row by row exactly as coil d draws its own.
            let (mut rngs, weights) = coil_noise_streams(ctx, s, c);
            let mut noise = CoilNoise::new(&mut rngs, &weights);
            comb.start_coil(c);
            // Noise and combination of one finished row, while it is in L1; SENSE weighs by
            // the coil's map c_phase(l)·c_read·c_z on that row.
            let mut finish_row = |l: usize, o_r: &mut [f32], o_i: &mut [f32]| {
                if let Some(sd) = ctx.sigma_img {
                    noise.add(sd, o_r, o_i);
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
    comb.finish().0
}
