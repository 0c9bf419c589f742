//! A real label map as anatomy, imaged like its own scan: the TotalSegmentator segmentation of
//! the real torso CT in `tests/data` (plus the body composition TotalSegmentator's `body` /
//! `tissue_types` tasks give, here thresholded from the scan: fat −190…−30 HU, other soft
//! tissue above) is rendered by the procedural generator (tissue table, no texture) and imaged
//! noise-free at 120 kVp in
//! the phase of that scan (native: its aorta reads 44 HU). Each organ's median is compared
//! with the real scan's, beside the label-mean painter baseline; then the same anatomy in the
//! portal-venous phase against a real portal-venous abdomen (liver ≈ 90, spleen ≈ 80, aorta
//! ≈ 150, portal vein ≈ 135 HU).
//!
//! Tune / report split: slabs of 4 slices alternate between the two halves. The painter learns
//! each label's median on the tune slabs; both are scored on the report slabs. The tissue
//! table's HU were themselves read off this scan (whole), so the procedural row is not
//! independent of it: what the test shows is that the CT physics (materials, beam hardening,
//! bone correction, blur) gives the table's HU back inside a real body. Run with
//! `-- --nocapture` for the table.

mod common;

use std::path::PathBuf;

use common::ct_subject::{interior, procedural_ct};
use synthcohort::acquire::ct::{self, protocol::CtProtocol};
use synthcohort::anatomy::{self, parse_names_file, Template};
use synthcohort::generate::procedural::Procedural;
use synthcohort::io::nifti;
use synthcohort::volume::{Grid, Volume};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Pads an [nx, ny, nz] array to [n, n, nz] (n = max(nx, ny)), centred with whole-voxel
/// offsets, so the scanner's square recon grid is the object grid.
fn pad_square<T: Copy>(v: &[T], dims: [usize; 3], fill: T) -> (Vec<T>, usize) {
    let [nx, ny, nz] = dims;
    let n = nx.max(ny);
    let (ox, oy) = ((n - nx) / 2, (n - ny) / 2);
    let mut out = vec![fill; n * n * nz];
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                out[(z * n + y + oy) * n + x + ox] = v[(z * ny + y) * nx + x];
            }
        }
    }
    (out, n)
}

/// The one-voxel erosion of the labels `ids` (as the reference medians in
/// `shared/reference/ct_real_organ_hu.tsv` were read).
fn eroded(labels: &Volume<u16>, ids: &[u16]) -> Vec<usize> {
    ids.iter().flat_map(|&id| interior(labels, id, 1)).collect()
}

fn median(v: &[f32], idx: &[usize]) -> f64 {
    let mut x: Vec<f32> = idx.iter().map(|&i| v[i]).collect();
    x.sort_by(f32::total_cmp);
    f64::from(x[x.len() / 2])
}

#[test]
fn real_label_map_images_like_its_real_scan() {
    let real = nifti::read_image(&data("ts_ct_torso_3mm.nii.gz")).unwrap();
    let seg = nifti::read_labels(&data("ts_ct_torso_3mm_seg_total.nii.gz")).unwrap();
    let names =
        parse_names_file(&std::fs::read_to_string(data("ts_total_classes.txt")).unwrap()).unwrap();
    let dims = seg.grid.dims;
    assert_eq!(real.grid.dims, dims);
    let (seg_sq, n) = pad_square(&seg.data, dims, 0u16);
    let (real_sq, _) = pad_square(&real.data, dims, -1000.0f32);
    let g = Grid::centered([n, n, dims[2]], seg.grid.spacing_mm);
    let (mut labels, _) = anatomy::import_labels(
        &Volume {
            grid: g.clone(),
            data: seg_sq,
        },
        &names,
        &g,
    );
    // Body composition where the organ map is empty.
    let fat = anatomy::label_by_name("subcutaneous_fat").unwrap().id;
    let body = anatomy::label_by_name("body").unwrap().id;
    for (l, &h) in labels.data.iter_mut().zip(&real_sq) {
        if *l == 0 && h > -500.0 {
            *l = if (-190.0..=-30.0).contains(&h) {
                fat
            } else {
                body
            };
        }
    }
    // The engine's anatomy stage on the imported map. Texture off: over the few lung-base
    // voxels in the field its random offset (−17 HU at one seed) is the generator's sample
    // variance, not CT physics.
    let renderer = Procedural {
        texture_strength: 0.0,
        ..Procedural::default()
    };
    let (anatomy_labels, maps) =
        procedural_ct(Template::AbdomenPhantom, &g, Some(&labels), &renderer, &[]);
    let mut p = CtProtocol::preset("generic64").unwrap();
    assert_eq!(p.contrast.phase, ct::Phase::Native, "the scan's own phase");
    p.noise = false;
    p.views = 360;
    p.detector_cols = 600;
    p.pixel_mm = 0.9;
    p.matrix = n;
    p.fov_mm = n as f64 * g.spacing_mm[0];
    p.slice_mm = g.spacing_mm[2];
    let image = ct::acquire(&maps, &p, 0).unwrap().image;
    assert_eq!(image.grid.dims, g.dims);

    let lab = &anatomy_labels.data;
    let id = |n: &str| anatomy::label_by_name(n).unwrap().id;
    let ids_with = |pred: &dyn Fn(&str) -> bool| -> Vec<u16> {
        let mut v: Vec<u16> = lab.clone();
        v.sort_unstable();
        v.dedup();
        v.into_iter()
            .filter(|&i| anatomy::label_by_id(i).is_some_and(|l| pred(l.name)))
            .collect()
    };
    // (name, label ids, tolerance HU): the organs, bone ±50.
    let groups: Vec<(&str, Vec<u16>, f64)> = vec![
        ("liver", vec![id("liver")], 20.0),
        ("spleen", vec![id("spleen")], 20.0),
        ("kidney_right", vec![id("kidney_right")], 20.0),
        ("kidney_left", vec![id("kidney_left")], 20.0),
        ("aorta", vec![id("aorta")], 20.0),
        (
            "muscle (autochthon, iliopsoas, gluteus)",
            ids_with(&|n| {
                n.starts_with("autochthon_")
                    || n.starts_with("iliopsoas_")
                    || n.starts_with("gluteus_")
            }),
            20.0,
        ),
        ("fat", vec![fat], 20.0),
        ("lung", ids_with(&|n| n.starts_with("lung_")), 20.0),
        (
            "lumbar vertebrae",
            ids_with(&|n| n.starts_with("vertebrae_L")),
            50.0,
        ),
    ];
    let tune = |i: &usize| (i / (n * n) / 4) % 2 == 0;
    println!(
        "\nreal TotalSegmentator map imaged at 120 kVp vs its real scan (report slabs), median HU"
    );
    println!(
        "| organ | real | label-mean painter | error | procedural object | procedural + CT | error |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut failures = Vec::new();
    for (name, ids, tol) in groups {
        assert!(!ids.is_empty(), "{name}: no labels");
        let all = eroded(&anatomy_labels, &ids);
        let (t, r): (Vec<usize>, Vec<usize>) = all.into_iter().partition(tune);
        assert!(
            t.len() >= 20 && r.len() >= 20,
            "{name}: {} / {} voxels",
            t.len(),
            r.len()
        );
        let real_r = median(&real_sq, &r);
        let painter = median(&real_sq, &t);
        let sim = median(&image.data, &r);
        println!(
            "| {name} | {real_r:.0} | {painter:.0} | {:+.0} | {:.0} | {sim:.0} | {:+.0} |",
            painter - real_r,
            median(&maps.hu.data, &r),
            sim - real_r
        );
        if (sim - real_r).abs() > tol {
            failures.push(format!(
                "{name}: simulated {sim:.0} vs real {real_r:.0} (±{tol})"
            ));
        }
    }

    // The same anatomy in the portal-venous phase, against a real portal-venous abdomen.
    p.contrast.phase = ct::Phase::PortalVenous;
    let pv = ct::acquire(&maps, &p, 0).unwrap().image;
    println!("\nportal-venous phase, median HU (all slabs)");
    println!("| organ | simulated | real portal-venous scan |\n|---|---|---|");
    for (name, want) in [
        ("liver", 90.0),
        ("spleen", 80.0),
        ("aorta", 150.0),
        ("portal_vein_and_splenic_vein", 135.0),
    ] {
        let got = median(&pv.data, &eroded(&anatomy_labels, &[id(name)]));
        println!("| {name} | {got:.0} | ≈ {want:.0} |");
        if (got - want).abs() > 20.0 {
            failures.push(format!("{name} portal venous {got:.0} vs ≈ {want} (±20)"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
