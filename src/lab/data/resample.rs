//! Resampling a case to the spacing a model is trained at (`resample_mm`).

use super::{err, RawCase};
use crate::lab::LabError;
use crate::volume::{Grid, Volume};

/// Most voxels a resampled case may have (a 512³ volume).
const MAX_RESAMPLED_VOXELS: usize = 512 * 512 * 512;

/// The grid of `spacing_mm` covering the field of `g`, centred where it is.
pub fn target_grid(g: &Grid, spacing_mm: [f64; 3], name: &str) -> Result<Grid, LabError> {
    if spacing_mm.iter().any(|&s| !(s.is_finite() && s > 0.0)) {
        return Err(err(format!(
            "resample_mm must be three positive spacings, not {spacing_mm:?}"
        )));
    }
    let ext = g.extent_mm();
    let dims = [0, 1, 2].map(|a| ((ext[a] / spacing_mm[a]).round() as usize).max(1));
    let n: usize = dims.iter().product();
    if n > MAX_RESAMPLED_VOXELS {
        return Err(err(format!(
            "case {name}: {dims:?} voxels at {spacing_mm:?} mm is more than {MAX_RESAMPLED_VOXELS}"
        )));
    }
    let centre = [0, 1, 2].map(|a| g.origin_mm[a] + 0.5 * (g.dims[a] - 1) as f64 * g.spacing_mm[a]);
    Ok(Grid {
        dims,
        spacing_mm,
        origin_mm: [0, 1, 2].map(|a| centre[a] - 0.5 * (dims[a] - 1) as f64 * spacing_mm[a]),
    })
}

/// Where voxel `idx` of `to` falls in `from`, in `from`'s voxel units held inside it.
fn source_voxel(from: &Grid, to: &Grid, idx: usize) -> [f64; 3] {
    let [i, j, k] = to.ijk(idx);
    let v = from.to_voxel(to.world(i, j, k));
    [0, 1, 2].map(|a| v[a].clamp(0.0, (from.dims[a] - 1) as f64))
}

/// A label map on grid `to`, by nearest neighbour.
pub fn resample_labels(labels: &Volume<u16>, to: &Grid) -> Volume<u16> {
    let data = (0..to.len())
        .map(|idx| {
            let v = source_voxel(&labels.grid, to, idx);
            labels.get(
                v[0].round() as usize,
                v[1].round() as usize,
                v[2].round() as usize,
            )
        })
        .collect();
    Volume::from_vec(to.clone(), data)
}

/// The case on a grid of `spacing_mm` covering the same field, centred where the original
/// is: its channels by trilinear interpolation (held at the edges), its labels by nearest
/// neighbour.
pub fn resample_case(c: &mut RawCase, spacing_mm: [f64; 3]) -> Result<(), LabError> {
    let g = c.labels.grid.clone();
    let to = target_grid(&g, spacing_mm, &c.name)?;
    c.labels = resample_labels(&c.labels, &to);
    for ch in c.channels.iter_mut() {
        let data = (0..to.len())
            .map(|idx| {
                crate::acquire::mri::artifacts::trilinear(
                    &ch.data,
                    g.dims,
                    source_voxel(&g, &to, idx),
                )
            })
            .collect();
        *ch = Volume::from_vec(to.clone(), data);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A linear ramp stays the same ramp in world space on the new grid, label blocks keep
    /// their place, and the field of view is kept.
    #[test]
    fn resampling_keeps_values_in_place() {
        let g = Grid::centered([20, 10, 8], [2.0, 2.0, 4.0]);
        let ramp = |p: [f64; 3]| (3.0 * p[0] - 2.0 * p[1] + p[2]) as f32;
        let image: Vec<f32> = (0..g.len())
            .map(|idx| {
                let [i, j, k] = g.ijk(idx);
                ramp(g.world(i, j, k))
            })
            .collect();
        let labels: Vec<u16> = (0..g.len())
            .map(|idx| u16::from(g.ijk(idx)[0] >= 10))
            .collect();
        let mut c = RawCase {
            name: "c".into(),
            channels: vec![Volume::from_vec(g.clone(), image)],
            labels: Volume::from_vec(g.clone(), labels),
            prompt: String::new(),
        };
        resample_case(&mut c, [4.0, 4.0, 2.0]).unwrap();
        let t = c.labels.grid.clone();
        assert_eq!(t.dims, [10, 5, 16]);
        assert_eq!(t.extent_mm(), g.extent_mm());
        for idx in 0..t.len() {
            let [i, j, k] = t.ijk(idx);
            let p = t.world(i, j, k);
            // Inside the old voxel centres the interpolation is exact for a ramp.
            let v = g.to_voxel(p);
            if (0..3).all(|a| v[a] >= 0.0 && v[a] <= (g.dims[a] - 1) as f64) {
                assert!((c.channels[0].data[idx] - ramp(p)).abs() < 1e-3, "{p:?}");
            }
            assert_eq!(c.labels.data[idx], u16::from(p[0] > 0.0), "{p:?}");
        }
        assert!(resample_case(&mut c, [0.0, 1.0, 1.0]).is_err());
    }
}
