//! Helical scanning: the source turns while the table moves `pitch` × the collimated width
//! per rotation; reconstruction by helical FDK (Wang, Lin & Cheng, Med. Phys. 20, 1191
//! (1993); Kudo & Saito 1991): every view is cosine-weighted and ramp-filtered as in FDK and
//! backprojected from its own source position into every voxel its cone reaches, each ray
//! weighted so that the repeated measurements of one line sum to the full scan's weight
//! (see [`backproject`]).

use rayon::prelude::*;

use super::geometry::{ConeGeometry, Plane};
use super::projector::{joseph3, Padded3};
use super::recon::{fdk_filter, sample_view, Window};
use super::{
    blur_cone, bone_correction, bone_sinogram, columns, cone_geometry, ctdi, detect_view,
    photon_scale, projection_blur, sub_planes, to_hu, view_scales, BoneModel, Ctx, PolyTable,
};
use crate::volume::Grid;

/// The source path: `views_per_turn` views per rotation, `n_views` in all, the table at
/// `z0_mm` at view 0 and advancing `feed_mm` per rotation.
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    pub views_per_turn: usize,
    pub n_views: usize,
    pub z0_mm: f64,
    pub feed_mm: f64,
    pub sid_mm: f64,
    pub cols: usize,
    pub rows: usize,
    pub pixel_mm: f64,
}

impl Trajectory {
    /// A path whose every plane in [z_lo, z_hi] has a full rotation centred on it.
    pub fn covering(
        z_lo: f64,
        z_hi: f64,
        feed_mm: f64,
        views_per_turn: usize,
        geo: &ConeGeometry,
    ) -> Trajectory {
        let turns = (z_hi - z_lo + feed_mm) / feed_mm;
        Trajectory {
            views_per_turn,
            n_views: (turns * views_per_turn as f64).ceil() as usize + 1,
            z0_mm: z_lo - 0.5 * feed_mm,
            feed_mm,
            sid_mm: geo.sid_mm,
            cols: geo.cols,
            rows: geo.rows,
            pixel_mm: geo.pixel_mm,
        }
    }

    /// Table (source) z of view `v`.
    pub fn z(&self, v: usize) -> f64 {
        self.z0_mm + self.feed_mm * v as f64 / self.views_per_turn as f64
    }

    /// The circular geometry that view `v` shares angle and height with (use view index
    /// `v % views_per_turn` in it).
    pub fn at(&self, v: usize) -> ConeGeometry {
        ConeGeometry {
            views: self.views_per_turn,
            sid_mm: self.sid_mm,
            cols: self.cols,
            rows: self.rows,
            pixel_mm: self.pixel_mm,
            z_mm: self.z(v),
        }
    }

    /// The rotation of views centred on plane `z`: [v0, v1).
    pub fn window(&self, z: f64) -> (usize, usize) {
        let vc = (z - self.z0_mm) / self.feed_mm * self.views_per_turn as f64;
        let v0 = (vc - 0.5 * self.views_per_turn as f64).round().max(0.0) as usize;
        let v1 = (v0 + self.views_per_turn).min(self.n_views);
        (v0.min(v1), v1)
    }
}

/// Cone projections (views × rows × cols) of views `v0..v1` of the path.
pub fn project<const C: usize>(
    pad: &Padded3<C>,
    traj: &Trajectory,
    v0: usize,
    v1: usize,
) -> Vec<[f32; C]> {
    let per_view = traj.rows * traj.cols;
    let mut out = vec![[0.0f32; C]; (v1 - v0) * per_view];
    out.par_chunks_mut(per_view)
        .enumerate()
        .for_each(|(i, view)| {
            let v = v0 + i;
            let geo = traj.at(v);
            let a = v % traj.views_per_turn;
            for r in 0..traj.rows {
                for c in 0..traj.cols {
                    let (s, d) = geo.ray(a, r, c);
                    view[r * traj.cols + c] = joseph3(pad, s, d).0;
                }
            }
        });
    out
}

/// Weight of a view for a plane by the plane's height above the source, −1 … 1 across the
/// collimated width at isocentre: flat over the central 98 %, a cos² taper to zero at the
/// edges.
fn row_taper(t: f64) -> f64 {
    // Near-binary: the weights' dependence on the fan angle (applied after filtering) leaves
    // a low-frequency error that shrinks as the taper steepens (water cylinder, pitch 1,
    // r = 120 mm: ±40 HU at a 0.4 flat top, ±20 at 0.8, ±10 at 0.95, ±5 at 0.98).
    const FLAT: f64 = 0.98;
    let a = t.abs();
    if a >= 1.0 {
        0.0
    } else if a <= FLAT {
        1.0
    } else {
        (0.5 * std::f64::consts::PI * (a - FLAT) / (1.0 - FLAT))
            .cos()
            .powi(2)
    }
}

/// Helical FDK backprojection of filtered projections `q` (all views of the path) at the
/// planes `z_mm`; z-major stacked planes. Every view whose cone reaches a voxel counts, with
/// the redundancy weight w = 2·f(t)/Σ f over the ray's conjugates (β + 2πm at the same fan
/// angle γ, β + π − 2γ + 2πm at −γ; γ positive along the detector's column axis), f the row
/// taper: per ray the weights of the repeated
/// measurements of one line sum to 2, as the unweighted full scan's two do (Tang et al.,
/// Phys. Med. Biol. 51, 855 (2006), here in native fan geometry).
pub fn backproject(q: &[f32], traj: &Trajectory, plane: &Plane, z_mm: &[f64]) -> Vec<f32> {
    let (nc, nr) = (traj.cols, traj.rows);
    let d = traj.sid_mm;
    let nvt = traj.views_per_turn;
    let dbeta = 2.0 * std::f64::consts::PI / nvt as f64;
    let inv = 1.0 / traj.pixel_mm;
    let (c0, r0) = (0.5 * (nc as f64 - 1.0), 0.5 * (nr as f64 - 1.0));
    let half = 0.5 * nr as f64 * traj.pixel_mm;
    let per_view = traj.feed_mm / nvt as f64;
    let mut out = vec![0.0f32; plane.len() * z_mm.len()];
    out.par_chunks_mut(plane.nx)
        .enumerate()
        .for_each(|(jz, orow)| {
            let (k, j) = (jz / plane.ny, jz % plane.ny);
            let z = z_mm[k];
            // The views whose beam holds the plane, and their taper weights.
            let va =
                (((z - half - traj.z0_mm) / per_view).ceil().max(0.0) as usize).min(traj.n_views);
            let vb = ((((z + half - traj.z0_mm) / per_view).floor() + 1.0).max(0.0) as usize)
                .min(traj.n_views);
            let nv = vb.saturating_sub(va);
            if nv == 0 {
                return;
            }
            let f: Vec<f64> = (va..vb)
                .map(|v| row_taper((z - traj.z(v)) / half))
                .collect();
            // F(i) = Σ_m f(i + m·turn) for i in −turn … nv + turn (offset `turn`): the
            // weights of every measurement at the same angle (views beyond the path are 0).
            let turn = nvt as isize;
            let ext = nv as isize + 2 * turn + 1;
            let fsum: Vec<f64> = (0..ext)
                .map(|e| {
                    let i = e - turn;
                    let mut acc = 0.0;
                    let mut x = i.rem_euclid(turn);
                    while x < nv as isize {
                        acc += f[x as usize];
                        x += turn;
                    }
                    acc
                })
                .collect();
            let fsum_at = |x: f64| -> f64 {
                let e = (x + turn as f64).clamp(0.0, (ext - 1) as f64);
                let a = e as usize;
                let b = (a + 1).min(ext as usize - 1);
                let fr = e - a as f64;
                fsum[a] * (1.0 - fr) + fsum[b] * fr
            };
            let y = plane.world(0, j)[1];
            let (x0, dx) = (plane.origin_mm[0], plane.spacing_mm[0]);
            for (n, v) in (va..vb).enumerate() {
                if f[n] <= 0.0 {
                    continue;
                }
                let beta = dbeta * (v % nvt) as f64;
                let (sb, cb) = beta.sin_cos();
                let dz = z - traj.z(v);
                let same = fsum[n + nvt];
                let view = &q[v * nc * nr..(v + 1) * nc * nr];
                let mut s = x0 * cb + y * sb;
                let mut t = -x0 * sb + y * cb;
                let (ds, dt) = (dx * cb, -dx * sb);
                for o in orow.iter_mut() {
                    let u_inv = d / (d - s);
                    let pm = t * u_inv;
                    let pi = pm * inv + c0;
                    let zi = (dz * u_inv * inv + r0).clamp(0.0, (nr - 1) as f64);
                    s += ds;
                    t += dt;
                    if pi < 0.0 || pi > (nc - 1) as f64 {
                        continue;
                    }
                    let value = sample_view(view, nc, nr, pi, zi);
                    // The conjugate ray through this voxel: β + π − 2γ.
                    let conj = (std::f64::consts::PI - 2.0 * (pm / d).atan()) / dbeta;
                    let w = 2.0 * f[n] / (same + fsum_at(n as f64 + conj));
                    *o += (w * dbeta * u_inv * u_inv) as f32 * value;
                }
            }
        });
    out
}

/// Sub-plane heights of every recon slice (thick slices average them), slice-major.
fn plane_heights(rg: &Grid, slice_mm: f64, sub: usize) -> Vec<f64> {
    (0..rg.dims[2])
        .flat_map(|k| {
            let zc = rg.origin_mm[2] + k as f64 * rg.spacing_mm[2];
            (0..sub).map(move |m| zc - 0.5 * slice_mm + (m as f64 + 0.5) * slice_mm / sub as f64)
        })
        .collect()
}

/// Averages `sub` consecutive planes into each slice.
fn average_planes(mu: &[f32], per_slice: usize, sub: usize) -> Vec<f32> {
    mu.par_chunks(per_slice * sub)
        .flat_map_iter(|planes| {
            (0..per_slice)
                .map(move |i| (0..sub).map(|m| planes[m * per_slice + i]).sum::<f32>() / sub as f32)
        })
        .collect()
}

/// The helical scan: projection, detection and filtering one rotation at a time (the
/// filtered projections of the whole path are kept), helical FDK, then the second-pass bone
/// correction over a path with every second view. Returns HU and the mean tube load of the
/// views behind each slice.
pub(super) fn scan<const C: usize>(
    ctx: &Ctx,
    g: &Grid,
    basis: &[[f32; C]],
    table: &PolyTable,
    rg: &Grid,
) -> (Vec<f32>, Vec<f64>) {
    let p = ctx.protocol;
    let plane = Plane::of_grid(rg);
    let cols = columns(ctx, table, p.detector_cols);
    let scale = photon_scale(p, p.pixel_mm);
    let width = ctdi::collimation_mm(p);
    let feed = p.pitch * width;
    let nz = rg.dims[2];
    let z_of = |k: usize| rg.origin_mm[2] + k as f64 * rg.spacing_mm[2];
    let (z_lo, z_hi) = (z_of(0) - 0.5 * p.slice_mm, z_of(nz - 1) + 0.5 * p.slice_mm);
    let geo = cone_geometry(p, 0.0);
    let traj = Trajectory::covering(z_lo, z_hi, feed, p.views, &geo);
    let blur = projection_blur(p);
    let per_view = p.detector_rows * p.detector_cols;
    let pad = Padded3::new(basis, g);

    // Stage 1: one rotation at a time: project, blur, tube load, detect, FDK-filter.
    let mut q: Vec<f32> = Vec::with_capacity(traj.n_views * per_view);
    let mut load = Vec::with_capacity(traj.n_views);
    let mut v0 = 0;
    while v0 < traj.n_views {
        let v1 = (v0 + p.views).min(traj.n_views);
        let mut li = project::<C>(&pad, &traj, v0, v1);
        if let Some(b) = &blur {
            blur_cone(b, &mut li, v1 - v0, traj.rows, traj.cols);
        }
        let scales = view_scales(ctx, &li, per_view, scale, |v| {
            ctx.longitudinal(traj.z(v0 + v), width)
        });
        load.extend(scales.iter().map(|s| s / scale));
        let mut proj = vec![0.0f32; li.len()];
        proj.par_chunks_mut(per_view)
            .zip(li.par_chunks(per_view))
            .enumerate()
            .for_each(|(v, (o, l))| {
                detect_view::<C>(ctx, table, &cols, l, o, scales[v], (v0 + v) as u64);
            });
        drop(li);
        q.extend(fdk_filter(&proj, &geo, Window::of(p)));
        v0 = v1;
    }

    // Stage 2: helical FDK at sub-planes, averaged into each slice.
    let sub = sub_planes(p);
    let per_slice = plane.len();
    let mut mu = average_planes(
        &backproject(&q, &traj, &plane, &plane_heights(rg, p.slice_mm, sub)),
        per_slice,
        sub,
    );
    drop(q);

    // Stage 3: bone correction from the whole first-pass volume, every second view.
    if let Some(bone) = &ctx.bone {
        let est = bone.split(&mu);
        if BoneModel::has_bone(&est) {
            let nv = bone_correction::correction_views(p.views);
            let traj_c = Trajectory::covering(z_lo, z_hi, feed, nv, &geo);
            let pad_c = Padded3::new(&est, rg);
            let geo_c = ConeGeometry {
                views: nv,
                ..geo.clone()
            };
            let mut qc: Vec<f32> = Vec::with_capacity(traj_c.n_views * per_view);
            let mut v0 = 0;
            while v0 < traj_c.n_views {
                let v1 = (v0 + nv).min(traj_c.n_views);
                let li = project::<2>(&pad_c, &traj_c, v0, v1);
                let delta = bone_sinogram(bone, table, &cols, &li);
                qc.extend(fdk_filter(&delta, &geo_c, Window::of(p)));
                v0 = v1;
            }
            let centres: Vec<f64> = (0..nz).map(z_of).collect();
            let dmu = backproject(&qc, &traj_c, &plane, &centres);
            mu.iter_mut().zip(dmu).for_each(|(m, d)| *m += d);
        }
    }
    let mu_w_mm = ctx.mu_w_eff / 10.0;
    let mas = (0..nz)
        .map(|k| {
            let (a, b) = traj.window(z_of(k));
            p.mas * load[a..b].iter().sum::<f64>() / (b - a).max(1) as f64
        })
        .collect();
    (mu.into_iter().map(|m| to_hu(m, mu_w_mm)).collect(), mas)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plane_gets_one_centred_rotation() {
        let geo = ConeGeometry {
            views: 100,
            sid_mm: 541.0,
            cols: 64,
            rows: 16,
            pixel_mm: 1.0,
            z_mm: 0.0,
        };
        let t = Trajectory::covering(-20.0, 20.0, 16.0, 100, &geo);
        for z in [-20.0, -3.0, 0.0, 19.9] {
            let (a, b) = t.window(z);
            assert_eq!(b - a, 100, "plane {z}: views {a}..{b}");
            let mid = 0.5 * (t.z(a) + t.z(b - 1));
            assert!((mid - z).abs() <= 16.0 / 100.0 + 1e-9, "{mid} vs {z}");
        }
        assert!((t.z(100) - t.z(0) - 16.0).abs() < 1e-12);
    }
}
