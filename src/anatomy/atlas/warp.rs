//! One subject from an atlas: a pull-back map from the subject's grid into the atlas frame,
//! composed of (in pull-back order) the smooth random deformation, the height scale, one
//! scaling bump per organ with a literature norm, the visceral fat's flow and the subcutaneous
//! fat band from BMI.
//!
//! Each piece is invertible by construction (the random field is small against its 40 mm
//! control spacing; a bump q ↦ c + (q − c)(1 − a·w(|q − c|)) with |a| ≤ 0.27 and a taper no
//! steeper than 1/R keeps d|q′|/d|q| > 0; the visceral map is the flow of a smooth field; the
//! band map is monotone in r), and
//! [`SubjectWarp::min_jacobian`] measures the composite's Jacobian determinant on the grid.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use super::super::deform::Ffd;
use super::super::geom::{smoothstep, solve_linear};
use super::super::norms::organ_norm;
use super::super::ontology::SUBCUTANEOUS_FAT;
use super::super::phantom::subcutaneous_fat_mm;
use super::visceral::VisceralWarp;
use super::{Atlas, AtlasOrgan};
use crate::anatomy::BodySize;
use crate::volume::{Grid, Volume};

/// Height of the adult an atlas is taken to be (cm): the scans carry no demographics, so the
/// same reference as the procedural phantoms.
pub const ATLAS_HEIGHT_CM: f64 = 170.0;
/// A bump scales uniformly within `BUMP_INNER` × the organ's equivalent radius and tapers to
/// nothing at `BUMP_OUTER` × it.
const BUMP_INNER: f64 = 1.2;
const BUMP_OUTER: f64 = 3.0;
/// Linear organ scale factors are kept within these (volume ×0.5 … ×2 where the organ answers
/// its bump fully).
const K_MIN: f64 = 0.79;
const K_MAX: f64 = 1.26;
/// Subject organ volumes are drawn within ±2.5 SD of the norm.
const Z_MAX: f64 = 2.5;
/// An atlas whose median subcutaneous band is thinner than this (mm) keeps its fat as
/// scanned: stretching it to a BMI would mean ×10 and more.
pub const MIN_STRETCHABLE_BAND_MM: f64 = 5.0;
/// Band factors outside this are clamped (BMI far outside 15–45).
const BAND_RANGE: [f64; 2] = [0.15, 4.0];

/// One organ's scaling bump (atlas frame).
#[derive(Clone, Debug)]
pub struct Bump {
    pub organ: &'static str,
    centre: [f64; 3],
    /// 1 − 1/k: the pull-back shrinks distances by this within the inner radius.
    a: f64,
    r_in: f64,
    r_out: f64,
    /// Linear scale factor and the volume the subject's norm asked for (mL).
    pub k: f64,
    pub target_ml: f64,
}

impl Bump {
    fn new(o: &AtlasOrgan, k: f64, target_ml: f64) -> Bump {
        Bump {
            organ: o.name,
            centre: o.centroid,
            a: 1.0 - 1.0 / k,
            r_in: BUMP_INNER * o.r_eq_mm,
            r_out: BUMP_OUTER * o.r_eq_mm,
            k,
            target_ml,
        }
    }

    #[inline]
    fn pull_back(&self, q: [f64; 3]) -> [f64; 3] {
        let d = [0, 1, 2].map(|a| q[a] - self.centre[a]);
        let r = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        if r >= self.r_out {
            return q;
        }
        let w = 1.0 - smoothstep(self.r_in, self.r_out, r);
        let s = 1.0 - self.a * w;
        [0, 1, 2].map(|a| self.centre[a] + d[a] * s)
    }
}

/// How every organ's volume answers organ `o`'s bump alone at k0 = 1.15: per organ, the
/// exponent e with volume ratio = k0^(3·e).
pub(super) fn bump_response(
    labels: &Volume<u16>,
    o: &AtlasOrgan,
    organs: &[AtlasOrgan],
) -> Vec<f64> {
    const K0: f64 = 1.15;
    let b = Bump::new(o, K0, 0.0);
    // In-plane room around the map, so growth past its edges counts (an imported map is often
    // cropped close to the body); slices are not padded: beyond them is beyond the field.
    let l = &labels.grid;
    let pad = [l.dims[0] / 4, l.dims[1] / 4];
    let g = &Grid {
        dims: [l.dims[0] + 2 * pad[0], l.dims[1] + 2 * pad[1], l.dims[2]],
        spacing_mm: l.spacing_mm,
        origin_mm: [
            l.origin_mm[0] - pad[0] as f64 * l.spacing_mm[0],
            l.origin_mm[1] - pad[1] as f64 * l.spacing_mm[1],
            l.origin_mm[2],
        ],
    };
    let counts = (0..g.dims[2])
        .into_par_iter()
        .map(|k| {
            let mut n = vec![0usize; organs.len()];
            for j in 0..g.dims[1] {
                for i in 0..g.dims[0] {
                    let p = g.world(i, j, k);
                    // Outside the bump nothing moves: count the atlas as it is.
                    let l = labels.sample_nearest(b.pull_back(p)).unwrap_or(0);
                    if let Some(x) = organs.iter().position(|q| q.id == l) {
                        n[x] += 1;
                    }
                }
            }
            n
        })
        .reduce(
            || vec![0; organs.len()],
            |a, b| a.iter().zip(&b).map(|(x, y)| x + y).collect(),
        );
    organs
        .iter()
        .zip(counts)
        .map(|(q, n)| {
            let ratio = (n as f64 * g.voxel_ml() / q.volume_ml).max(1e-3);
            ratio.ln() / (3.0 * K0.ln())
        })
        .collect()
}

/// A subject's pull-back into an atlas.
pub struct SubjectWarp<'a> {
    atlas: &'a Atlas,
    /// Subject mm per atlas mm.
    pub scale: f64,
    /// Subcutaneous band thickness relative to the atlas's.
    pub band: f64,
    /// Visceral fat flow amount (0: as in the atlas; see `visceral`) and its pull-back.
    pub visceral: f64,
    visceral_warp: Option<VisceralWarp<'a>>,
    pub bumps: Vec<Bump>,
    ffd: Option<Ffd>,
    grid: Grid,
}

impl<'a> SubjectWarp<'a> {
    /// Draws a subject: organ volumes from the literature norms for `body` (each within
    /// ±2.5 SD), then the random deformation on `grid` with `deformation_mm`.
    pub fn draw(
        atlas: &'a Atlas,
        body: &BodySize,
        grid: &Grid,
        deformation_mm: f64,
        rng: &mut ChaCha8Rng,
    ) -> SubjectWarp<'a> {
        // A head scales as a whole to the brain volume drawn for the subject's sex and age (the
        // skull follows the brain; atrophy therefore shows as a smaller head, not wider sulci);
        // a trunk scales with height, then per organ.
        let scale = match (atlas.brain_ml, organ_norm("brain", body)) {
            (Some(atlas_ml), Some(norm)) => {
                let z: f64 = rng.sample::<f64, _>(StandardNormal).clamp(-Z_MAX, Z_MAX);
                let target = (norm.mean_ml + z * norm.sd_ml).max(0.3 * norm.mean_ml);
                (target / atlas_ml).cbrt()
            }
            _ => body.height_cm / ATLAS_HEIGHT_CM,
        };
        // No subcutaneous fat label (a head), or a band too thin to stretch to a BMI without
        // folding (the chest atlas's lean patient: 2 mm): the fat stays as scanned.
        let band = if atlas.label_ids.binary_search(&SUBCUTANEOUS_FAT).is_err()
            || atlas.habitus.median_band_mm < MIN_STRETCHABLE_BAND_MM
        {
            1.0
        } else {
            (subcutaneous_fat_mm(body.bmi()) / atlas.habitus.median_band_mm.max(1.0))
                .clamp(BAND_RANGE[0], BAND_RANGE[1])
        };
        // Visceral fat keeps the atlas's ratio to the subcutaneous fat (see `visceral`).
        let visceral = atlas.visceral.as_ref().map_or(0.0, |v| v.amount(band));
        // Each organ's target volume, as a ratio to the atlas organ's whole volume after the
        // height scale (a cut organ's whole volume is estimated: `AtlasOrgan::full_ml`).
        // Organs without a norm keep their size (ratio 1).
        let targets: Vec<(f64, f64)> = atlas
            .organs
            .iter()
            .map(|o| {
                let Some(norm) = organ_norm(o.name, body) else {
                    return (1.0, o.volume_ml);
                };
                let z: f64 = rng.sample::<f64, _>(StandardNormal).clamp(-Z_MAX, Z_MAX);
                let target = (norm.mean_ml + z * norm.sd_ml).max(0.3 * norm.mean_ml);
                let reference = o.full_ml * scale.powi(3);
                (target / reference, target)
            })
            .collect();
        // Bumps overlap, so solve for the scale factors together: ln ρ_i = Σ_j 3·R_ij·ln k_j
        // + g_i(u), g_i being organ i's log growth under the visceral flow u alone (measured
        // on the atlas; entry 0 of the table is the fat, then the organs in this order).
        let n = targets.len();
        let m: Vec<Vec<f64>> = (0..n)
            .map(|i| (0..n).map(|j| 3.0 * atlas.response[i][j]).collect())
            .collect();
        let rhs: Vec<f64> = targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let grown = atlas
                    .visceral
                    .as_ref()
                    .map_or(0.0, |v| v.ln_growth(i + 1, visceral));
                t.0.ln() - grown
            })
            .collect();
        let ln_k = solve_linear(m, rhs).unwrap_or_else(|| vec![0.0; n]);
        let bumps = atlas
            .organs
            .iter()
            .zip(&ln_k)
            .zip(&targets)
            .map(|((o, lk), t)| Bump::new(o, lk.exp().clamp(K_MIN, K_MAX), t.1))
            .collect();
        let ffd = Ffd::draw(grid, deformation_mm, rng);
        SubjectWarp {
            atlas,
            scale,
            band,
            visceral,
            visceral_warp: atlas
                .visceral
                .as_ref()
                .filter(|_| visceral != 0.0)
                .map(|v| v.warp(visceral)),
            bumps,
            ffd,
            grid: grid.clone(),
        }
    }

    /// Atlas-frame point that subject voxel (i, j, k) shows.
    #[inline]
    pub fn pull_back(&self, i: usize, j: usize, k: usize) -> [f64; 3] {
        let mut p = self.grid.world(i, j, k);
        if let Some(f) = &self.ffd {
            let d = f.at(i, j, k);
            p = [p[0] + d[0], p[1] + d[1], p[2] + d[2]];
        }
        self.pull_back_point(p)
    }

    /// Atlas-frame point of a subject-frame point (after the random deformation).
    #[inline]
    fn pull_back_point(&self, p: [f64; 3]) -> [f64; 3] {
        let mut q = p.map(|v| v / self.scale);
        for b in &self.bumps {
            q = b.pull_back(q);
        }
        if let Some(v) = &self.visceral_warp {
            q = v.pull_back(q);
        }
        self.atlas.habitus.pull_back(q, self.band)
    }

    /// The subject's label map on its grid (nearest neighbour in the atlas).
    pub fn labels(&self) -> Volume<u16> {
        let [nx, ny, _] = self.grid.dims;
        let mut out = Volume::filled(self.grid.clone(), 0u16);
        out.data
            .par_chunks_mut(nx * ny)
            .enumerate()
            .for_each(|(k, slice)| {
                for j in 0..ny {
                    for i in 0..nx {
                        slice[i + nx * j] = self
                            .atlas
                            .labels
                            .sample_nearest(self.pull_back(i, j, k))
                            .unwrap_or(0);
                    }
                }
            });
        out
    }

    /// Smallest Jacobian determinant of the pull-back over the grid's interior (central
    /// differences, per mm): > 0 means the map folds nowhere.
    pub fn min_jacobian(&self) -> f64 {
        let [nx, ny, nz] = self.grid.dims;
        if nx < 3 || ny < 3 || nz < 3 {
            return 1.0;
        }
        let h = self.grid.spacing_mm;
        (1..nz - 1)
            .into_par_iter()
            .map(|k| {
                let mut m = f64::INFINITY;
                for j in 1..ny - 1 {
                    for i in 1..nx - 1 {
                        let col = |a: [usize; 3], b: [usize; 3], h: f64| {
                            let (p, q) = (
                                self.pull_back(a[0], a[1], a[2]),
                                self.pull_back(b[0], b[1], b[2]),
                            );
                            [0, 1, 2].map(|c| (p[c] - q[c]) / (2.0 * h))
                        };
                        let jx = col([i + 1, j, k], [i - 1, j, k], h[0]);
                        let jy = col([i, j + 1, k], [i, j - 1, k], h[1]);
                        let jz = col([i, j, k + 1], [i, j, k - 1], h[2]);
                        let det = jx[0] * (jy[1] * jz[2] - jy[2] * jz[1])
                            - jy[0] * (jx[1] * jz[2] - jx[2] * jz[1])
                            + jz[0] * (jx[1] * jy[2] - jx[2] * jy[1]);
                        m = m.min(det);
                    }
                }
                m
            })
            .reduce(|| f64::INFINITY, f64::min)
    }
}
