//! A subject's label map and procedural CT object, and organ ROIs, for the CT fidelity tests.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use synthcohort::anatomy::{self, AnatomyParams, BodySize, LesionRequest, Template};
use synthcohort::generate::procedural::Procedural;
use synthcohort::generate::{CtMaps, Generator, LesionTissue, Needs, Request};
use synthcohort::volume::{Grid, Volume};

/// The engine's anatomy stage (no deformation) on `template`'s phantom or on an imported
/// `base` map, with `lesions` (each request with its tissue; the label id is the one the
/// anatomy gives it), rendered to a CT object by `renderer`: the labels and the CT maps.
pub fn procedural_ct(
    template: Template,
    grid: &Grid,
    base: Option<&Volume<u16>>,
    renderer: &Procedural,
    lesions: &[(LesionRequest, LesionTissue)],
) -> (Volume<u16>, CtMaps) {
    procedural_ct_of(template, grid, base, renderer, lesions, BodySize::median())
}

/// [`procedural_ct`] for a subject of `body` size (organs scale with height, subcutaneous
/// fat with BMI).
pub fn procedural_ct_of(
    template: Template,
    grid: &Grid,
    base: Option<&Volume<u16>>,
    renderer: &Procedural,
    lesions: &[(LesionRequest, LesionTissue)],
    body: BodySize,
) -> (Volume<u16>, CtMaps) {
    let params = AnatomyParams {
        template,
        grid: grid.clone(),
        body,
        deformation_mm: 0.0,
        lesions: lesions.iter().map(|(r, _)| r.clone()).collect(),
    };
    let a = anatomy::build(
        &params,
        base,
        &mut ChaCha8Rng::seed_from_u64(1),
        &mut ChaCha8Rng::seed_from_u64(2),
    )
    .unwrap();
    let tissues: Vec<LesionTissue> = a
        .lesions
        .iter()
        .zip(lesions)
        .map(|(rec, (_, t))| LesionTissue {
            label_id: rec.label_id,
            ..*t
        })
        .collect();
    let obj = renderer
        .generate(&Request {
            labels: &a.labels,
            lesions: &tissues,
            diffuse: &[],
            prompt: "",
            needs: &Needs {
                ct: true,
                mri_fields_t: Vec::new(),
            },
            seed: 3,
        })
        .unwrap();
    (a.labels, obj.ct.unwrap())
}

/// Voxels of `id` with `id` for `r` voxels along each in-plane axis both ways and one voxel
/// across slices (ROIs away from edges, where the scanner's point-spread function mixes
/// neighbouring tissues; r = 1 is the one-voxel, 6-neighbour erosion).
pub fn interior(labels: &Volume<u16>, id: u16, r: usize) -> Vec<usize> {
    let [nx, ny, nz] = labels.grid.dims;
    let at = |x: usize, y: usize, z: usize| labels.data[(z * ny + y) * nx + x];
    let mut out = Vec::new();
    for z in r..nz - r {
        for y in r..ny - r {
            for x in r..nx - r {
                let inside = (0..=r).all(|d| {
                    at(x - d, y, z) == id
                        && at(x + d, y, z) == id
                        && at(x, y - d, z) == id
                        && at(x, y + d, z) == id
                        && at(x, y, z - d.min(1)) == id
                        && at(x, y, z + d.min(1)) == id
                });
                if inside {
                    out.push((z * ny + y) * nx + x);
                }
            }
        }
    }
    out
}

/// A water ellipse (semi-axes `a` × `b` mm) in air, 4× supersampled partial volume.
pub fn water_ellipse(grid: &Grid, a: f64, b: f64) -> CtMaps {
    let [nx, ny, nz] = grid.dims;
    let mut rho = vec![0.001205f32; grid.len()];
    let mut mat = vec![0u8; grid.len()];
    for j in 0..ny {
        for i in 0..nx {
            let c = grid.world(i, j, 0);
            let mut f = 0.0;
            for s in 0..16 {
                let x = c[0] + ((s % 4) as f64 - 1.5) / 4.0 * grid.spacing_mm[0];
                let y = c[1] + ((s / 4) as f64 - 1.5) / 4.0 * grid.spacing_mm[1];
                if (x / a).powi(2) + (y / b).powi(2) < 1.0 {
                    f += 1.0 / 16.0;
                }
            }
            for k in 0..nz {
                let idx = grid.index(i, j, k);
                mat[idx] = u8::from(f >= 0.5);
                rho[idx] = (f * 1.0 + (1.0 - f) * 0.001205) as f32;
            }
        }
    }
    let hu = rho.iter().map(|&d| 1000.0 * (d - 1.0)).collect();
    CtMaps {
        hu: Volume::from_vec(grid.clone(), hu),
        density: Volume::from_vec(grid.clone(), rho),
        material: Volume::from_vec(grid.clone(), mat),
        materials: vec!["air", "water"],
        perfusion: None,
    }
}
