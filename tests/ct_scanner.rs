//! The scanner beyond the ideal fan beam: object scatter behind the anti-scatter grid,
//! helical scanning and tube-current modulation, each measured in the image
//! (`cargo test --release --test ct_scanner -- --nocapture` prints the figures).

mod common;

use common::ct_subject::{interior, procedural_ct, water_ellipse as ellipse};
use synthcohort::acquire::ct::{self, protocol::CtProtocol, scatter, ScanMode, Spectrum};
use synthcohort::anatomy::{self, Template};
use synthcohort::generate::procedural::Procedural;
use synthcohort::generate::CtMaps;
use synthcohort::volume::{Grid, Volume};

/// generic64 with fewer views and a coarse detector so each scan takes seconds.
fn protocol(g: &Grid) -> CtProtocol {
    let mut p = CtProtocol::preset("generic64").unwrap();
    p.views = 360;
    p.detector_cols = 560;
    p.pixel_mm = 1.0;
    p.matrix = g.dims[0];
    p.fov_mm = g.dims[0] as f64 * g.spacing_mm[0];
    p.slice_mm = g.spacing_mm[2];
    p
}

/// Mean and SD over the pixels within `r` mm of (x, y) on every slice.
fn disc(img: &Volume<f32>, x: f64, y: f64, r: f64) -> (f64, f64) {
    let g = &img.grid;
    let mut v = Vec::new();
    for k in 0..g.dims[2] {
        for j in 0..g.dims[1] {
            for i in 0..g.dims[0] {
                let w = g.world(i, j, k);
                if (w[0] - x).powi(2) + (w[1] - y).powi(2) <= r * r {
                    v.push(f64::from(img.get(i, j, k)));
                }
            }
        }
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let sd = (v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt();
    (m, sd)
}

#[test]
fn scatter_to_primary_ratio_and_cupping_of_200_and_320_mm_water() {
    let g = Grid::centered([96, 96, 2], [4.0, 4.0, 5.0]);
    let mut p = protocol(&g);
    p.noise = false;
    let spec = Spectrum::tungsten(p.kvp, p.filtration_mm_al, p.filtration_mm_cu);
    let (model, profiles) = scatter::calibrate(&p, &spec);
    eprintln!(
        "scatter kernel (grid ratio {}, nT {:.1} mm): A = {:.4}, σ = {:.0} mm, k = {:.3}",
        p.grid_ratio,
        ct::ctdi::collimation_mm(&p),
        model.amplitude,
        model.sigma_mm,
        model.exponent
    );
    let mut last_spr = 0.0;
    for (d, prof) in scatter::CALIBRATION_DIAMETERS_MM.iter().zip(&profiles) {
        let (mc, fit) = prof.central_spr();
        let r = 0.5 * d;
        let obj = ellipse(&g, r, r);
        p.scatter = false;
        let off = ct::acquire(&obj, &p, 1).unwrap().image;
        p.scatter = true;
        let on = ct::acquire(&obj, &p, 1).unwrap().image;
        let cup = |img: &Volume<f32>| {
            let (c, _) = disc(img, 0.0, 0.0, 16.0);
            let e: f64 = [(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)]
                .iter()
                .map(|(ux, uy)| disc(img, 0.8 * r * ux, 0.8 * r * uy, 10.0).0)
                .sum::<f64>()
                / 4.0;
            (c, e - c)
        };
        let ((c0, cup0), (c1, cup1)) = (cup(&off), cup(&on));
        eprintln!(
            "{d:.0} mm water: central SPR Monte Carlo {mc:.3}, kernel {fit:.3}; centre {c0:+.1} → {c1:+.1} HU, \
             cupping (edge − centre) {cup0:+.1} → {cup1:+.1} HU without → with scatter"
        );
        assert!(
            (fit / mc - 1.0).abs() < 0.25,
            "{d} mm: kernel SPR {fit} vs MC {mc}"
        );
        assert!(mc > last_spr, "SPR must grow with the object");
        last_spr = mc;
        // Uncorrected scatter adds signal: every path reads short by ≈ ln(1 + SPR), so the
        // centre reads low by ≈ 1000·ln(1 + SPR)/p_centre (p the central path, μ·D).
        let p_centre = spec.water_path(*d);
        let predicted = -1000.0 * (1.0 + mc).ln() / p_centre;
        eprintln!(
            "    centre shift {:+.1} HU, predicted from the Monte Carlo SPR {predicted:+.1} HU",
            c1 - c0
        );
        assert!(
            ((c1 - c0) / predicted - 1.0).abs() < 0.35,
            "{d} mm: centre shift {} vs {predicted}",
            c1 - c0
        );
        let _ = (cup0, cup1);
    }
    // The grid's work: the same beam with no grid.
    let no_grid = CtProtocol {
        grid_ratio: 0.0,
        ..p.clone()
    };
    let (_, open) = scatter::calibrate(&no_grid, &spec);
    let spr_open: Vec<f64> = open.iter().map(|pr| pr.central_spr().0).collect();
    let spr_grid: Vec<f64> = profiles.iter().map(|pr| pr.central_spr().0).collect();
    eprintln!(
        "central SPR without grid: 200 mm {:.3}, 320 mm {:.3}",
        spr_open[0], spr_open[1]
    );
    assert!(spr_open[0] > 2.0 * spr_grid[0] && spr_open[1] > 2.0 * spr_grid[1]);
}

#[test]
fn helical_reads_like_axial_on_the_same_subject() {
    let g = Grid::centered([80, 80, 12], [5.0, 5.0, 6.0]);
    let (labels, maps) = procedural_ct(
        Template::AbdomenPhantom,
        &g,
        None,
        &Procedural::default(),
        &[],
    );
    let mut p = protocol(&g);
    p.noise = false;
    p.detector_rows = 32;
    let axial = ct::acquire(&maps, &p, 0).unwrap().image;
    // The object ends at the grid's z faces, which cone rays cross near the end slices (a
    // cone-beam effect of the truncated object, in circular cone scans too): compare the
    // slices two or more from either end.
    let inner = |k: usize| k >= 2 && k + 2 < g.dims[2];
    let mut ids: Vec<u16> = labels.data.clone();
    ids.sort_unstable();
    ids.dedup();
    let rois: Vec<(&str, Vec<usize>)> = ids
        .into_iter()
        .filter(|&i| i != 0)
        .map(|id| {
            let idx: Vec<usize> = interior(&labels, id, 1)
                .into_iter()
                .filter(|&i| inner(i / (g.dims[0] * g.dims[1])))
                .collect();
            (anatomy::label_by_id(id).map_or("?", |l| l.name), idx)
        })
        .filter(|(_, v)| v.len() >= 8)
        .collect();
    let mean = |img: &Volume<f32>, idx: &[usize]| {
        idx.iter().map(|&i| f64::from(img.data[i])).sum::<f64>() / idx.len() as f64
    };
    for pitch in [0.5, 1.0] {
        p.scan_mode = ScanMode::Helical;
        p.pitch = pitch;
        let r = ct::acquire(&maps, &p, 0).unwrap();
        let mut worst: (f64, &str) = (0.0, "");
        for (name, idx) in &rois {
            let d = mean(&r.image, idx) - mean(&axial, idx);
            if d.abs() > worst.0.abs() {
                worst = (d, name);
            }
        }
        let per_slice = g.dims[0] * g.dims[1];
        let body: Vec<usize> = (0..labels.data.len())
            .filter(|&i| labels.data[i] != 0 && inner(i / per_slice))
            .collect();
        let rmse = (body
            .iter()
            .map(|&i| f64::from(r.image.data[i] - axial.data[i]).powi(2))
            .sum::<f64>()
            / body.len() as f64)
            .sqrt();
        eprintln!(
            "helical pitch {pitch} vs axial, abdomen: {} organs, worst organ mean {:+.1} HU ({}), \
             body RMSE {rmse:.1} HU; CTDIvol {:.2} mGy",
            rois.len(),
            worst.0,
            worst.1,
            r.ctdi_vol_mgy
        );
        // Organ means within 10 HU at pitch 0.5, 15 HU at pitch 1 (the redundancy weights'
        // post-filter error grows with pitch).
        let limit = if pitch <= 0.5 { 10.0 } else { 15.0 };
        assert!(
            worst.0.abs() < limit,
            "pitch {pitch}: {} {:+.1} HU",
            worst.1,
            worst.0
        );
    }
}

#[test]
fn tube_current_modulation_evens_noise_across_body_sizes() {
    let g = Grid::centered([112, 112, 4], [4.0, 4.0, 5.0]);
    let mut p = protocol(&g);
    p.bone_correction = false;
    let small = ellipse(&g, 140.0, 100.0);
    let large = ellipse(&g, 200.0, 150.0);
    let noise = |p: &CtProtocol, obj: &CtMaps| {
        let r = ct::acquire(obj, p, 7).unwrap();
        let mas = r.mas_per_slice.iter().sum::<f64>() / r.mas_per_slice.len() as f64;
        (disc(&r.image, 0.0, 0.0, 30.0).1, mas, r.ctdi_vol_mgy)
    };
    let (s0, m_s0, c_s0) = noise(&p, &small);
    let (l0, m_l0, _) = noise(&p, &large);
    p.tube_current_modulation.longitudinal = true;
    p.tube_current_modulation.strength = 0.5;
    let (s1, m_s1, c_s1) = noise(&p, &small);
    let (l1, m_l1, _) = noise(&p, &large);
    p.tube_current_modulation.angular = true;
    let (l2, m_l2, _) = noise(&p, &large);
    let (r0, r1) = (l0 / s0, l1 / s1);
    eprintln!(
        "central noise (HU), small 280×200 / large 400×300 mm water: fixed {s0:.1} / {l0:.1} \
         (ratio {r0:.2}) at {m_s0:.0} / {m_l0:.0} mAs; longitudinal TCM (strength 0.5) {s1:.1} / \
         {l1:.1} (ratio {r1:.2}) at {m_s1:.0} / {m_l1:.0} mAs; + angular, large {l2:.1} at {m_l2:.0} mAs"
    );
    // Noise² ∝ e^(μD)/mAs: at strength s the log noise ratio shrinks to (1 − s) of its fixed
    // value (± 25 % for the noise-estimate error).
    assert!(r1 < r0);
    let k = r1.ln() / r0.ln();
    assert!((k - 0.5).abs() < 0.125, "log-ratio fraction {k}");
    // The recorded load follows the size; CTDIvol follows the load.
    assert!(m_l1 > m_s1 && (m_s0 - p.mas).abs() < 1e-9);
    assert!((c_s1 / c_s0 - m_s1 / m_s0).abs() < 1e-6);
    // Angular modulation at the same mean load lowers the ellipse's central noise.
    assert!(
        (m_l2 / m_l1 - 1.0).abs() < 0.02,
        "mean load {m_l2} vs {m_l1}"
    );
    assert!(l2 < l1, "angular {l2} vs {l1}");
}

#[test]
fn helical_water_cylinder_is_flat() {
    // A 300 mm water cylinder (144 mm long) at pitch 1: the inner slices read water within
    // 4 HU on average and 15 HU at worst out to r = 125 mm.
    let g = Grid::centered([80, 80, 24], [5.0, 5.0, 6.0]);
    let obj = ellipse(&g, 150.0, 150.0);
    let mut p = protocol(&g);
    p.noise = false;
    p.detector_rows = 32;
    p.bone_correction = false;
    p.scan_mode = ScanMode::Helical;
    p.pitch = 1.0;
    let stats = |img: &Volume<f32>| {
        let (mut worst, mut sum, mut n) = (0.0f32, 0.0f64, 0usize);
        for k in 6..18 {
            for j in 0..80 {
                for i in 0..80 {
                    let w = g.world(i, j, k);
                    if w[0].hypot(w[1]) <= 125.0 {
                        let v = img.get(i, j, k);
                        worst = if v.abs() > worst.abs() { v } else { worst };
                        sum += f64::from(v.abs());
                        n += 1;
                    }
                }
            }
        }
        (worst, sum / n as f64)
    };
    let (hw, hm) = stats(&ct::acquire(&obj, &p, 0).unwrap().image);
    p.scan_mode = ScanMode::Axial;
    let (aw, am) = stats(&ct::acquire(&obj, &p, 0).unwrap().image);
    eprintln!(
        "300 mm water, slices 6–17 within r 125 mm: helical pitch 1 worst {hw:+.1} HU, mean |HU| {hm:.1}; axial worst {aw:+.1}, mean |HU| {am:.1}"
    );
    assert!(
        hm < 4.0 && hw.abs() < 15.0,
        "helical worst {hw}, mean |HU| {hm}"
    );
}

/// The dark streak scatter adds between two dense objects (as between the hips): a 320 × 240
/// mm water ellipse with two 36 mm cortical-bone rods 180 mm apart. Streak = mean CT number
/// in the band joining the rods minus that in the band across it (both between the rods'
/// edges), noise-free, bone correction on, without and with scatter, with the grid and
/// without it.
#[test]
fn scatter_darkens_the_band_between_dense_objects() {
    let g = Grid::centered([100, 100, 2], [4.0, 4.0, 5.0]);
    let mut obj = ellipse(&g, 160.0, 120.0);
    obj.materials.push("cortical_bone");
    let bone = synthcohort::tissue::attenuation::density("cortical_bone").unwrap() as f32;
    for idx in 0..g.len() {
        let [i, j, k] = g.ijk(idx);
        let w = g.world(i, j, k);
        for cx in [-90.0, 90.0] {
            if (w[0] - cx).hypot(w[1]) < 18.0 {
                obj.material.data[idx] = 2;
                obj.density.data[idx] = bone;
                obj.hu.data[idx] = 1000.0;
            }
        }
    }
    let mut p = protocol(&g);
    p.noise = false;
    let band = |img: &Volume<f32>, along_x: bool| {
        let mut v = Vec::new();
        for idx in 0..g.len() {
            let [i, j, k] = g.ijk(idx);
            let w = g.world(i, j, k);
            let (a, b) = if along_x { (w[0], w[1]) } else { (w[1], w[0]) };
            if a.abs() < 56.0 && a.abs() > 8.0 && b.abs() < 6.0 {
                v.push(f64::from(img.data[idx]));
            }
        }
        v.iter().sum::<f64>() / v.len() as f64
    };
    let streak = |p: &CtProtocol| {
        let img = ct::acquire(&obj, p, 1).unwrap().image;
        let (along, across) = (band(&img, true), band(&img, false));
        (along - across, along, across)
    };
    p.scatter = false;
    let (s0, a0, c0) = streak(&p);
    p.scatter = true;
    let (s1, a1, c1) = streak(&p);
    p.grid_ratio = 0.0;
    let (s2, a2, c2) = streak(&p);
    eprintln!(
        "streak between two bone rods in 320 × 240 mm water (band joining them − band across, HU):\n  \
         no scatter {s0:+.1} ({a0:+.1} vs {c0:+.1}); scatter, grid ratio 25 {s1:+.1} ({a1:+.1} vs {c1:+.1}); \
         scatter, no grid {s2:+.1} ({a2:+.1} vs {c2:+.1})"
    );
    // Rays through both rods keep the least primary, so the same scatter takes the most
    // from them: the band joining the rods darkens beyond the rest. Behind a ratio-25 grid the
    // accepted scatter is narrow and small (SPR ≈ 0.09 at 320 mm), so the streak barely
    // deepens; without a grid it is tens of HU.
    assert!(s1 < s0, "grid: streak {s1:+.1} vs {s0:+.1} without scatter");
    assert!(
        s2 < s0 - 30.0,
        "no grid: streak {s2:+.1} vs {s0:+.1} without scatter"
    );
    assert!(a1 < a0 && c1 < c0, "scatter lowers the CT numbers");
}

/// Tube-current modulation on the abdomen template at two body sizes (170 cm, 55 and 110 kg):
/// the noise in the liver (SD of the difference of two noise draws / √2, so the tissue
/// texture cancels) at a fixed 200 mAs and with longitudinal + angular modulation.
#[test]
fn tube_current_modulation_evens_liver_noise_across_procedural_body_sizes() {
    use common::ct_subject::procedural_ct_of;
    use synthcohort::anatomy::{BodySize, Sex};
    let g = Grid::centered([112, 112, 12], [4.0, 4.0, 8.0]);
    let liver = anatomy::label_by_name("liver").unwrap().id;
    let subject = |kg: f64| {
        let body = BodySize {
            height_cm: 170.0,
            weight_kg: kg,
            sex: Sex::Male,
            age_years: 50.0,
        };
        procedural_ct_of(
            Template::AbdomenPhantom,
            &g,
            None,
            &Procedural::default(),
            &[],
            body,
        )
    };
    let (small_labels, small) = subject(55.0);
    let (large_labels, large) = subject(110.0);
    let noise = |p: &CtProtocol, labels: &Volume<u16>, obj: &CtMaps| {
        let a = ct::acquire(obj, p, 11).unwrap();
        let b = ct::acquire(obj, p, 12).unwrap();
        let roi = interior(labels, liver, 2);
        assert!(roi.len() > 50, "liver ROI {} voxels", roi.len());
        let d: Vec<f64> = roi
            .iter()
            .map(|&i| f64::from(a.image.data[i] - b.image.data[i]))
            .collect();
        let m = d.iter().sum::<f64>() / d.len() as f64;
        let var = d.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (d.len() - 1) as f64;
        let mas = a.mas_per_slice.iter().sum::<f64>() / a.mas_per_slice.len() as f64;
        ((var / 2.0).sqrt(), mas)
    };
    let mut p = protocol(&g);
    p.views = 240;
    let (s0, ms0) = noise(&p, &small_labels, &small);
    let (l0, ml0) = noise(&p, &large_labels, &large);
    p.tube_current_modulation.longitudinal = true;
    p.tube_current_modulation.angular = true;
    let (s1, ms1) = noise(&p, &small_labels, &small);
    let (l1, ml1) = noise(&p, &large_labels, &large);
    let (r0, r1) = (l0 / s0, l1 / s1);
    eprintln!(
        "liver noise (HU), abdomen 55 / 110 kg: fixed {s0:.1} / {l0:.1} (ratio {r0:.2}) at \
         {ms0:.0} / {ml0:.0} mAs; TCM (angular + longitudinal, strength 0.5) {s1:.1} / {l1:.1} \
         (ratio {r1:.2}) at {ms1:.0} / {ml1:.0} mAs"
    );
    assert!(r0 > 1.2, "the larger body is noisier at a fixed load: {r0}");
    assert!(ml1 > ms1, "the load follows the size");
    // Strength 0.5 halves the log noise ratio (longitudinal); the angular part lowers the
    // large body's noise further.
    let k = r1.ln() / r0.ln();
    assert!(
        k < 0.7,
        "log-ratio fraction {k:.2} (fixed {r0:.2}, TCM {r1:.2})"
    );
}
