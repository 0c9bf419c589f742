//! What a run will need before it starts (`run --dry-run`, and the refusal of a run that
//! would not fit): peak memory from the stages a subject goes through, disk from the files.
//!
//! A subject's memory peaks either while its object is made (labels, every property map the
//! arms need, the texture and one map in the making) or while one arm images it (the object
//! plus that arm's image and working set: an axial CT scan streams its basis maps a plane at
//! a time, cone and helical scans hold them whole, an MRI arm holds its signal components and,
//! with susceptibility, a padded 3D field); maps no later arm images are released after each
//! arm. Byte counts are read off the code's buffers and checked against `/usr/bin/time -v`
//! (README, "Clinical size").

use super::*;
use crate::acquire::ct::{ctdi, Phase, ScanMode};

/// Peak memory of the latent diffusion generator per object voxel while the whole object is
/// decoded at once: measured with `/usr/bin/time -v` on `pipelines/ldm_thorax.yaml`
/// (`ct-thorax`, 15 steps, --jobs 2) at 64×64×48, 96×96×72 and 128×128×96 objects, the peak
/// exceeded the rest of the estimate by 458, 477 and 410 bytes an object voxel. One sampler,
/// behind a lock, whatever --jobs.
const LDM_BYTES_PER_VOXEL: u64 = 440;

/// Larger objects are decoded in z-slabs (`synthcohort_ldm::tiled`): what stays whole is
/// the latent, the half-resolution features, the label map and the output, a few bytes an
/// object voxel; a slab's per-class head and its gathered copy take twice the slab budget.
/// Sampling holds the latent-resolution denoiser's activations and label fractions for three
/// guidance branches, 64× fewer cells than voxels: its peak outgrows the decoder's only at
/// clinical sizes. Fitted to one subject of `ct-abdomen` (62 classes, 20 steps) at
/// 144×116×84, 256×256×160 and 512×512×300 (598 MiB, 898 MiB and 4.46 GiB measured; 621 MiB,
/// 914 MiB and 4.3 GiB estimated) and `ct-thorax` at 128×128×96 (613 MiB measured, 611
/// estimated).
const LDM_SLAB_BYTES_PER_VOXEL: u64 = 12;
const LDM_SLAB_BYTES: u64 = 2 * synthcohort_ldm::tiled::SLAB_BUDGET_BYTES as u64 + (8 << 20);
const LDM_SAMPLING_BYTES_PER_VOXEL: u64 = 36;

/// Peak bytes of the latent diffusion generator for an object of `vox` voxels.
fn ldm_bytes(vox: u64) -> u64 {
    let tiled =
        (vox * LDM_SLAB_BYTES_PER_VOXEL + LDM_SLAB_BYTES).max(vox * LDM_SAMPLING_BYTES_PER_VOXEL);
    (vox * LDM_BYTES_PER_VOXEL).min(tiled)
}

/// The process without any subject: code, thread stacks, the shipped atlas and its tables.
const FIXED_BYTES: u64 = 40 << 20;

/// The shipped `abdomen` atlas's visceral-fat flow field (`anatomy::atlas::visceral`): its
/// body box plus 60 mm at 3 mm cells and 6 mm planes, 193 × 172 × 56 cells of two f32. The
/// atlas holds one; a subject's anatomy stage holds its displacement field and a second
/// buffer while squaring.
const VISCERAL_FIELD_BYTES: u64 = 193 * 172 * 56 * 8;

/// Rough resource needs of a run, for `--dry-run`.
#[derive(Clone, Debug)]
pub struct Estimate {
    pub subjects: u64,
    pub voxels_per_subject: u64,
    pub peak_memory_bytes: u64,
    pub disk_bytes: u64,
}

/// Bytes an object voxel of the tissue object: labels (u16), CT maps (HU, density: f32;
/// material, perfusion: u8) and per MRI field seven f32 maps (PD, T1, T2, T2*, fat fraction,
/// ADC, susceptibility).
fn object_bytes_per_voxel(needs: &Needs) -> u64 {
    2 + if needs.ct { 10 } else { 0 } + 28 * needs.mri_fields_t.len() as u64
}

/// Voxels of the image an arm writes (its recon or acquisition grid).
fn image_voxels(protocol: &Protocol, obj: &Grid) -> u64 {
    let slices = |slice_mm: f64| ((obj.extent_mm()[2] / slice_mm).round() as u64).max(1);
    match protocol {
        Protocol::None { .. } => obj.len() as u64,
        Protocol::Ct(c) => (c.matrix * c.matrix) as u64 * slices(c.slice_mm),
        Protocol::Mri(m) => (m.matrix[0] * m.matrix[1]) as u64 * slices(m.slice_mm),
    }
}

/// Bytes one arm holds on top of the object while it images one subject.
fn arm_bytes(protocol: &Protocol, obj: &Grid) -> u64 {
    let vox = obj.len() as u64;
    let img = image_voxels(protocol, obj);
    // The image (f32), its labels resampled to its grid (u16) and the encoded file.
    let written = img * (4 + 2 + 4);
    written
        + match protocol {
            Protocol::None { .. } => 0,
            Protocol::Ct(c) => {
                // Basis maps: water and bone, and iodine in a contrast phase (f32 each).
                let basis = 4 * if c.contrast.phase == Phase::Native {
                    2
                } else {
                    3
                };
                let per_view = (c.detector_rows * c.detector_cols) as u64;
                // One rotation's line integrals (per basis) and detected projections.
                let rotation = c.views as u64 * per_view * (basis + 4);
                match c.scan_mode {
                    // One slab per thread.
                    ScanMode::Axial => 0,
                    // The basis volume, one rotation, the reconstruction in μ before HU.
                    ScanMode::Cone => vox * basis + rotation + img * 4,
                    // The basis volume and its padded copy, plus the filtered projections
                    // of the whole path (f32): while the last rotation is projected, all but
                    // that rotation's beside its line integrals and detected projections;
                    // then all of them beside the reconstruction and its sub-planes.
                    ScanMode::Helical => {
                        let feed = c.pitch * ctdi::collimation_mm(c);
                        let z = img as f64 / (c.matrix * c.matrix) as f64 * c.slice_mm;
                        let path = ((z + feed) / feed * c.views as f64).ceil() as u64 + 1;
                        let last_rotation =
                            path.saturating_sub(c.views as u64) * per_view * 4 + rotation;
                        let recon = path * per_view * 4 + img * 8;
                        2 * vox * basis + last_rotation.max(recon)
                    }
                }
            }
            Protocol::Mri(m) => {
                let a = &m.artifacts;
                // Signal components: water (and fat with chemical shift), real part; an
                // echo train splits each into a few decay terms.
                let parts = if a.chemical_shift { 2 } else { 1 };
                let terms = if m.etl > 1 || m.epi { 4 } else { 1 };
                let comps = vox * 4 * parts * terms;
                // Susceptibility: the χ map padded 1.5× per axis as complex f32 and one
                // transform buffer, then the field (f32) and its sorted magnitudes (f64).
                let chi = if a.susceptibility {
                    vox * (2 * 27 + 4 + 8)
                } else {
                    0
                };
                // ADC: a second (b = 0) image, the sorted copy and the map.
                let adc = if m.adc_map { img * 12 } else { 0 };
                let kspace = if m.export_kspace {
                    img * m.coils as u64 * 8 * 2
                } else {
                    0
                };
                comps.max(chi) + adc + kspace
            }
        }
}

/// Peak bytes of one subject: the larger of making its object and imaging it under the
/// costliest arm; a trial also makes the lesion-free twin while the subject is held.
fn subject_bytes(p: &Resolved, obj: &Grid) -> u64 {
    let vox = obj.len() as u64;
    let object = vox * object_bytes_per_voxel(&needs(p));
    // The unit-SD texture and one map in the making (or its blur buffer).
    let make = object + vox * 8;
    // An arm holds the maps it and the later arms image (earlier ones are released).
    let image = (0..p.arms.len())
        .map(|i| {
            vox * object_bytes_per_voxel(&needs_of(&p.arms[i..]))
                + arm_bytes(&p.arms[i].protocol, obj)
        })
        .max()
        .unwrap_or(0);
    // Building the anatomy on the abdomen atlas: labels and the visceral displacement fields.
    let anatomy = if visceral_atlas(p) {
        vox * 2 + 2 * VISCERAL_FIELD_BYTES
    } else {
        0
    };
    let one = make.max(image).max(anatomy);
    if p.spec.trial.is_some() {
        object + one
    } else {
        one
    }
}

/// Whether subjects are built on the shipped `abdomen` atlas (the one with a visceral flow).
fn visceral_atlas(p: &Resolved) -> bool {
    p.spec.anatomy.source.is_none() && p.spec.anatomy.template == crate::anatomy::Template::Abdomen
}

pub fn estimate(p: &Resolved, opts: &RunOptions) -> Result<Estimate, EngineError> {
    let sel = selection(p, opts)?;
    let n = sel.end - sel.start;
    let a = &p.spec.anatomy;
    let grid = Grid::centered(a.size.map(|d| d as usize), a.spacing_mm);
    let vox = grid.len() as u64;
    let jobs = jobs(opts) as u64;
    let arms = p.arms.len() as u64;
    // Compressed synthetic images run ~2–3 bytes a voxel in float32, labels far less.
    let bytes_img = if p.spec.outputs.dtype == OutputDtype::Int16 {
        1
    } else {
        3
    };
    let nnunet = if p.spec.outputs.layout == Layout::Nnunet {
        2
    } else {
        1
    };
    // DICOM series are uncompressed int16 (2 bytes a voxel) per CT or MR arm; a SEG packs a
    // bit per voxel per segment on the slices it touches (a few bits a voxel).
    let dicom_arms = if p.spec.outputs.dicom {
        p.arms
            .iter()
            .filter(|a| !matches!(a.protocol, Protocol::None { .. }))
            .count() as u64
    } else {
        0
    };
    let model = if p.spec.generator.kind == GeneratorKind::LatentDiffusion {
        ldm_bytes(vox)
    } else {
        0
    };
    Ok(Estimate {
        subjects: n,
        voxels_per_subject: vox,
        peak_memory_bytes: subject_bytes(p, &grid) * jobs.min(n)
            + model
            + FIXED_BYTES
            + if visceral_atlas(p) {
                VISCERAL_FIELD_BYTES
            } else {
                0
            },
        disk_bytes: n
            * (nnunet * (vox * bytes_img * arms + vox / 4) + dicom_arms * (vox * 2 + vox / 2)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Estimated peak (bytes) of one subject of a 64 × 64 × 32 abdomen phantom under `arm`.
    fn peak(arm: &str, trial: bool) -> u64 {
        let yaml = format!(
            "version: 1\nname: e\nseed: 1\ncohort:\n  size: 2\n  conditions:\n    - name: n\n      count: 1\n      lesion: {{kind: tumour, organ: liver, diameter_mm: 10, hu: 80}}\nanatomy: {{template: abdomen_phantom, size: [64, 64, 32], spacing_mm: [6, 6, 8]}}\nacquisition:\n  arms:\n    - {arm}\n{}",
            if trial { "trial: {roi_mm: 20}\n" } else { "" }
        );
        let p = crate::pipeline::parse(yaml.as_bytes(), "e.yaml", Path::new("."))
            .unwrap_or_else(|e| panic!("{e}"));
        let opts = RunOptions {
            jobs: 1,
            ..RunOptions::default()
        };
        estimate(&p, &opts).unwrap().peak_memory_bytes - FIXED_BYTES
    }

    #[test]
    fn buffers_a_stage_holds_are_counted() {
        let vox: u64 = 64 * 64 * 32;
        let axial = peak("{name: c, modality: ct, matrix: 64, slice_mm: 8}", false);
        let cone = peak(
            "{name: c, modality: ct, matrix: 64, slice_mm: 8, scan_mode: cone}",
            false,
        );
        // Cone rays cross every plane: the basis volume (water and bone, 8 bytes a voxel)
        // and a rotation of projections are held.
        assert!(cone >= axial + 8 * vox, "{cone} vs {axial}");
        let helical = peak(
            "{name: c, modality: ct, matrix: 64, slice_mm: 8, scan_mode: helical, pitch: 1}",
            false,
        );
        // ... and a helical scan keeps the filtered projections of its whole path.
        assert!(helical > cone, "{helical} vs {cone}");
        let se = "{name: m, modality: mri, sequence: spin_echo, tr_ms: 500, te_ms: 15, matrix: 64, slice_mm: 8";
        let plain = peak(&format!("{se}}}"), false);
        let chi = peak(
            &format!("{se}, artifacts: {{susceptibility: true}}}}"),
            false,
        );
        // The padded complex field (27 bytes a voxel, and a transform buffer) dominates.
        assert!(chi >= plain + 50 * vox, "{chi} vs {plain}");
        // A trial holds the subject while its lesion-free twin is made.
        let twin = peak("{name: c, modality: ct, matrix: 64, slice_mm: 8}", true);
        assert_eq!(twin - axial, 12 * vox);
    }
}
