use std::collections::BTreeMap;

use rand::SeedableRng;

use super::ontology::*;
use super::*;

fn rngs(a: u64, l: u64) -> (ChaCha8Rng, ChaCha8Rng) {
    (ChaCha8Rng::seed_from_u64(a), ChaCha8Rng::seed_from_u64(l))
}

fn params(
    t: Template,
    grid: Grid,
    deformation_mm: f64,
    lesions: Vec<LesionRequest>,
) -> AnatomyParams {
    AnatomyParams {
        template: t,
        grid,
        body: BodySize::median(),
        deformation_mm,
        lesions,
    }
}

fn volume_ml(v: &Volume<u16>, ids: &[u16]) -> f64 {
    v.data.iter().filter(|l| ids.contains(l)).count() as f64 * v.grid.voxel_ml()
}

fn centroid(v: &Volume<u16>, id: u16) -> [f64; 3] {
    let mut acc = [0.0; 3];
    let mut n = 0.0;
    for (idx, &l) in v.data.iter().enumerate() {
        if l == id {
            let [i, j, k] = v.grid.ijk(idx);
            let p = v.grid.world(i, j, k);
            for a in 0..3 {
                acc[a] += p[a];
            }
            n += 1.0;
        }
    }
    acc.map(|x| x / n)
}

/// No voxel of `ids` on the outer faces of the grid: the organ is wholly covered.
fn wholly_inside(v: &Volume<u16>, ids: &[u16]) -> bool {
    let [nx, ny, nz] = v.grid.dims;
    v.data.iter().enumerate().all(|(idx, l)| {
        let [i, j, k] = v.grid.ijk(idx);
        let edge = i == 0 || j == 0 || k == 0 || i + 1 == nx || j + 1 == ny || k + 1 == nz;
        !(edge && ids.contains(l))
    })
}

fn render(t: Template, grid: Grid) -> Volume<u16> {
    phantom::render_template(t, &grid, &BodySize::median(), 1)
}

fn assert_labels_declared(t: Template, v: &Volume<u16>) {
    let declared = template_labels(t);
    let mut seen: Vec<u16> = v.data.clone();
    seen.sort_unstable();
    seen.dedup();
    for l in seen {
        assert!(
            l == 0 || declared.contains(&l),
            "{t}: label {l} rendered but not in template_labels"
        );
    }
}

#[test]
fn thorax_organ_volumes_and_layout_are_plausible() {
    let g = Grid::centered([192, 192, 160], [2.5, 2.5, 2.5]);
    let t0 = std::time::Instant::now();
    let v = render(Template::ThoraxPhantom, g);
    eprintln!("thorax 192x192x160 rendered in {:?}", t0.elapsed());
    // The phantom's lungs are its five lobes (the group also names whole lungs and vessels).
    let lungs: Vec<u16> = vec![10, 11, 12, 13, 14];
    let lung_ml = volume_ml(&v, &lungs);
    let heart_ml = volume_ml(&v, &[HEART]);
    eprintln!("lungs {lung_ml:.0} mL, heart {heart_ml:.0} mL");
    for id in &lungs {
        eprintln!(
            "  {} {:.0} mL",
            label_by_id(*id).unwrap().name,
            volume_ml(&v, &[*id])
        );
        assert!(volume_ml(&v, &[*id]) > 150.0, "lobe {id} too small");
    }
    assert!((3000.0..=7000.0).contains(&lung_ml), "lungs {lung_ml} mL");
    assert!((500.0..=900.0).contains(&heart_ml), "heart {heart_ml} mL");
    assert!(wholly_inside(&v, &lungs) && wholly_inside(&v, &[HEART]));
    // RAS+ (+x = patient right): left lung at -x, liver at +x, heart left of midline and
    // anterior.
    assert!(centroid(&v, LUNG_UPPER_LEFT)[0] < -40.0 && centroid(&v, LUNG_UPPER_RIGHT)[0] > 40.0);
    assert!(centroid(&v, LIVER)[0] > 20.0);
    let h = centroid(&v, HEART);
    assert!(h[0] < 0.0 && h[1] > 0.0, "heart centroid {h:?}");
    // Upper lobes above lower lobes; the middle lobe anterior.
    assert!(centroid(&v, LUNG_UPPER_RIGHT)[2] > centroid(&v, LUNG_LOWER_RIGHT)[2]);
    assert!(centroid(&v, LUNG_MIDDLE_RIGHT)[1] > centroid(&v, LUNG_LOWER_RIGHT)[1]);
    for id in [
        TRACHEA,
        ESOPHAGUS,
        AORTA,
        SPINAL_CORD,
        STERNUM,
        rib_id(true, 5),
        rib_id(false, 5),
        38,
        AUTOCHTHON_LEFT,
        SUBCUTANEOUS_FAT,
        SKELETAL_MUSCLE,
        BODY,
    ] {
        assert!(volume_ml(&v, &[id]) > 1.0, "label {id} missing from thorax");
    }
    assert_labels_declared(Template::ThoraxPhantom, &v);
}

#[test]
fn abdomen_organ_volumes_are_plausible() {
    let g = Grid::centered([192, 192, 160], [2.5, 2.5, 2.5]);
    let v = render(Template::AbdomenPhantom, g);
    let vol = |id| volume_ml(&v, &[id]);
    let (liver, kl, kr, spleen) = (vol(LIVER), vol(KIDNEY_LEFT), vol(KIDNEY_RIGHT), vol(SPLEEN));
    eprintln!("liver {liver:.0} kidneys {kl:.0}/{kr:.0} spleen {spleen:.0} mL");
    assert!((1000.0..=2500.0).contains(&liver), "liver {liver}");
    assert!(
        (100.0..=250.0).contains(&kl) && (100.0..=250.0).contains(&kr),
        "kidneys {kl} {kr}"
    );
    assert!((100.0..=350.0).contains(&spleen), "spleen {spleen}");
    for id in [LIVER, KIDNEY_LEFT, KIDNEY_RIGHT, SPLEEN] {
        assert!(wholly_inside(&v, &[id]), "{id} cut by the grid");
    }
    assert!(centroid(&v, KIDNEY_LEFT)[0] < -30.0 && centroid(&v, KIDNEY_RIGHT)[0] > 30.0);
    assert!(centroid(&v, SPLEEN)[0] < -40.0 && centroid(&v, SPLEEN)[1] < 0.0);
    for id in [
        STOMACH,
        AORTA,
        INFERIOR_VENA_CAVA,
        SMALL_BOWEL,
        COLON,
        ILIOPSOAS_LEFT,
        ILIOPSOAS_RIGHT,
        29,
        SPINAL_CORD,
    ] {
        assert!(vol(id) > 1.0, "label {id} missing from abdomen");
    }
    assert_labels_declared(Template::AbdomenPhantom, &v);
}

#[test]
fn head_brain_volume_is_plausible() {
    let v = render(
        Template::HeadPhantom,
        Grid::centered([128, 128, 128], [1.75; 3]),
    );
    let brain = volume_ml(&v, &[GREY_MATTER, WHITE_MATTER]);
    let (gm, wm) = (
        volume_ml(&v, &[GREY_MATTER]),
        volume_ml(&v, &[WHITE_MATTER]),
    );
    let vent = volume_ml(&v, &[LATERAL_VENTRICLES]);
    eprintln!(
        "brain {brain:.0} mL (GM {gm:.0}, WM {wm:.0}), ventricles {vent:.0} mL, csf {:.0}",
        volume_ml(&v, &[CSF])
    );
    assert!((1000.0..=1600.0).contains(&brain), "brain {brain}");
    assert!(gm > 0.3 * brain && wm > 0.3 * brain);
    assert!((5.0..=60.0).contains(&vent));
    assert!(wholly_inside(&v, &[SKULL, SCALP, GREY_MATTER]));
    assert_labels_declared(Template::HeadPhantom, &v);
}

#[test]
fn fat_thickness_follows_bmi() {
    let g = Grid::centered([96, 64, 8], [4.0, 4.0, 4.0]);
    let fat = |w: f64| {
        let b = BodySize {
            height_cm: 170.0,
            weight_kg: w,
            sex: Sex::Male,
            age_years: 45.0,
        };
        volume_ml(
            &phantom::render_template(Template::AbdomenPhantom, &g, &b, 0),
            &[SUBCUTANEOUS_FAT],
        )
    };
    let (thin, obese) = (fat(52.0), fat(101.0));
    assert!(obese > 3.0 * thin, "{thin} vs {obese}");
}

#[test]
fn qa_phantoms_are_rigid_cylinders_with_inserts() {
    let g = Grid::centered([128, 128, 4], [2.0, 2.0, 5.0]);
    let (mut a, mut l) = rngs(1, 2);
    let w = build(
        &params(Template::WaterCylinder, g.clone(), 10.0, vec![]),
        None,
        &mut a,
        &mut l,
    )
    .unwrap();
    let area = volume_ml(&w.labels, &[WATER]) * 1000.0 / 20.0;
    assert!(
        (area / (std::f64::consts::PI * 100.0 * 100.0) - 1.0).abs() < 0.02,
        "area {area}"
    );
    let q = build(
        &params(Template::CtQa, g, 10.0, vec![]),
        None,
        &mut a,
        &mut l,
    )
    .unwrap();
    for id in [
        INSERT_AIR,
        INSERT_FAT,
        INSERT_ACRYLIC,
        INSERT_BONE,
        INSERT_IODINE,
    ] {
        let rod = volume_ml(&q.labels, &[id]) * 1000.0 / 20.0;
        assert!(
            (rod / (std::f64::consts::PI * 12.5 * 12.5) - 1.0).abs() < 0.1,
            "insert {id}: {rod} mm²"
        );
        let c = centroid(&q.labels, id);
        assert!((c[0].hypot(c[1]) - 60.0).abs() < 2.0);
    }
    assert_eq!(
        template_labels(Template::CtQa),
        vec![
            WATER,
            INSERT_AIR,
            INSERT_FAT,
            INSERT_ACRYLIC,
            INSERT_BONE,
            INSERT_IODINE
        ]
    );
}

fn lesion(organ: &str, d: f64, shape: LesionShape) -> LesionRequest {
    LesionRequest {
        condition: "test".into(),
        kind: "nodule".into(),
        organ: organ.into(),
        diameter_mm: d,
        shape,
        placement: LesionPlacement::Inside,
        growth: LesionGrowth::Replace,
    }
}

#[test]
fn lesions_lie_wholly_inside_their_organ_and_build_is_deterministic() {
    let g = Grid::centered([96, 96, 80], [4.0, 4.0, 4.0]);
    let reqs = vec![
        lesion("lung", 12.0, LesionShape::Lobulated),
        lesion("liver", 30.0, LesionShape::Ellipsoid),
        lesion("lung_lower_lobe_right", 8.0, LesionShape::Sphere),
        lesion("lung", 1.0, LesionShape::Sphere),
    ];
    let p = params(Template::ThoraxPhantom, g.clone(), 5.0, reqs.clone());
    let (mut a, mut l) = rngs(7, 8);
    let got = build(&p, None, &mut a, &mut l).unwrap();
    // The pre-lesion map: same anatomy stream, no lesions.
    let (mut a2, mut l2) = rngs(7, 8);
    let pre = build(
        &params(Template::ThoraxPhantom, g.clone(), 5.0, vec![]),
        None,
        &mut a2,
        &mut l2,
    )
    .unwrap()
    .labels;
    assert_eq!(got.lesions.len(), 4);
    for (k, rec) in got.lesions.iter().enumerate() {
        assert_eq!(rec.label_id, LESION_ID_BASE + k as u16);
        let ids = organ_group(&reqs[k].organ).unwrap();
        let mut n = 0;
        for (idx, &lab) in got.labels.data.iter().enumerate() {
            if lab == rec.label_id {
                n += 1;
                assert!(
                    ids.contains(&pre.data[idx]),
                    "lesion {k} voxel outside {}",
                    reqs[k].organ
                );
            }
        }
        assert!(n >= 1);
        assert!((rec.volume_ml - n as f64 * g.voxel_ml()).abs() < 1e-9);
        let sphere_ml = std::f64::consts::PI / 6.0 * reqs[k].diameter_mm.powi(3) / 1000.0;
        if reqs[k].diameter_mm >= 12.0 {
            assert!(
                rec.volume_ml > 0.4 * sphere_ml && rec.volume_ml < 2.0 * sphere_ml,
                "lesion {k}: {} vs {sphere_ml}",
                rec.volume_ml
            );
        }
        let c = got.labels.sample_nearest(rec.center_mm).unwrap();
        assert_eq!(c, rec.label_id, "centre of lesion {k} not in it");
    }
    // Everything else untouched.
    for (idx, &lab) in got.labels.data.iter().enumerate() {
        if lab < LESION_ID_BASE {
            assert_eq!(lab, pre.data[idx]);
        }
    }
    // Determinism, and sensitivity to each stream.
    let (mut a3, mut l3) = rngs(7, 8);
    let again = build(&p, None, &mut a3, &mut l3).unwrap();
    assert_eq!(again.labels, got.labels);
    let (mut a4, mut l4) = rngs(7, 9);
    assert_ne!(
        build(&p, None, &mut a4, &mut l4).unwrap().labels,
        got.labels
    );
    let (mut a5, mut l5) = rngs(6, 8);
    assert_ne!(
        build(&p, None, &mut a5, &mut l5).unwrap().labels,
        got.labels
    );
}

#[test]
fn lesion_errors_name_the_organ_and_values() {
    let g = Grid::centered([64, 64, 48], [5.0, 5.0, 5.0]);
    let (mut a, mut l) = rngs(1, 1);
    let e = build(
        &params(
            Template::AbdomenPhantom,
            g.clone(),
            0.0,
            vec![lesion("liver", 160.0, LesionShape::Lobulated)],
        ),
        None,
        &mut a,
        &mut l,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("160.0 mm lobulated") && e.contains("`liver`"),
        "{e}"
    );
    let e = build(
        &params(
            Template::HeadPhantom,
            Grid::centered([32, 32, 32], [6.0; 3]),
            0.0,
            vec![lesion("liver", 10.0, LesionShape::Sphere)],
        ),
        None,
        &mut a,
        &mut l,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("no voxels") && e.contains("liver") && e.contains("head"),
        "{e}"
    );
    let e = build(
        &params(
            Template::HeadPhantom,
            g.clone(),
            0.0,
            vec![lesion("spleen_of_mars", 10.0, LesionShape::Sphere)],
        ),
        None,
        &mut a,
        &mut l,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("unknown organ `spleen_of_mars`"), "{e}");
    let e = build(
        &params(
            Template::HeadPhantom,
            g,
            0.0,
            vec![lesion("brain", -1.0, LesionShape::Sphere)],
        ),
        None,
        &mut a,
        &mut l,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("-1"), "{e}");
}

#[test]
fn imported_base_is_deformed_and_gets_lesions() {
    let g = Grid::centered([48, 48, 32], [3.0; 3]);
    let mut src = Volume::filled(g.clone(), 0u16);
    for idx in 0..g.len() {
        let [i, j, k] = g.ijk(idx);
        let p = g.world(i, j, k);
        if (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt() < 40.0 {
            src.data[idx] = 17;
        }
    }
    let names: BTreeMap<u16, String> = [(17, "liver".to_string())].into();
    let (base, rep) = import_labels(&src, &names, &g);
    assert_eq!(rep.mapped.len(), 1);
    let (mut a, mut l) = rngs(3, 4);
    let p = params(
        Template::AbdomenPhantom,
        g.clone(),
        4.0,
        vec![lesion("liver", 15.0, LesionShape::Sphere)],
    );
    let got = build(&p, Some(&base), &mut a, &mut l).unwrap();
    assert_eq!(got.lesions.len(), 1);
    assert!(got.labels.data.contains(&LIVER));
    let other = Grid::centered([10, 10, 10], [3.0; 3]);
    let e = build(&p, Some(&Volume::filled(other, 0u16)), &mut a, &mut l)
        .unwrap_err()
        .to_string();
    assert!(e.contains("grid"), "{e}");
}

#[test]
fn min_extents_are_inscribed_diameters() {
    let kid = organ_min_extent_mm(Template::AbdomenPhantom, "kidney").unwrap();
    let liver = organ_min_extent_mm(Template::AbdomenPhantom, "liver").unwrap();
    let lung = organ_min_extent_mm(Template::ThoraxPhantom, "lung").unwrap();
    eprintln!("kidney {kid} liver {liver} lung {lung}");
    assert!((25.0..=60.0).contains(&kid), "kidney {kid}");
    assert!(liver > 60.0 && lung > 60.0);
    assert!(organ_min_extent_mm(Template::HeadPhantom, "liver").is_none());
    assert!(organ_min_extent_mm(Template::HeadPhantom, "nonsense").is_none());
    let brain = organ_min_extent_mm(Template::HeadPhantom, "brain").unwrap();
    eprintln!("brain {brain}");
    assert!(brain > 25.0);
}

#[test]
fn template_label_lists() {
    let th = template_labels(Template::ThoraxPhantom);
    for id in 10..=14 {
        assert!(th.contains(&id));
    }
    for n in 1..=12 {
        assert!(th.contains(&rib_id(true, n)) && th.contains(&rib_id(false, n)));
    }
    let head = template_labels(Template::HeadPhantom);
    assert!(head.contains(&GREY_MATTER) && !head.contains(&LIVER));
    for t in Template::ALL {
        assert!(template_labels(t)
            .iter()
            .all(|&id| label_by_id(id).is_some()));
    }
}

/// `v` mirrored left–right: voxel i ↔ nx−1−i on the same grid.
fn mirrored(v: &Volume<u16>) -> Volume<u16> {
    let mut m = v.clone();
    for (idx, l) in m.data.iter_mut().enumerate() {
        let [i, j, k] = v.grid.ijk(idx);
        *l = v.data[v.grid.index(v.grid.dims[0] - 1 - i, j, k)];
    }
    m
}

/// The side checks hold on the map and fail on its mirror image, so they cannot pass on a
/// mirrored subject. Returns how many comparisons the map allowed.
fn assert_sides_right(what: &str, v: &Volume<u16>, min_checks: usize) -> usize {
    let rep = laterality::laterality(v);
    let bad: Vec<String> = rep.violations().iter().map(|c| c.to_string()).collect();
    assert!(bad.is_empty(), "{what}: wrong side: {bad:#?}");
    assert!(
        rep.checks.len() >= min_checks,
        "{what}: only {} side comparisons",
        rep.checks.len()
    );
    assert!(!rep.looks_mirrored());
    let m = laterality::laterality(&mirrored(v));
    assert_eq!(m.checks.len(), rep.checks.len(), "{what}");
    assert!(
        m.violations().len() == m.checks.len() && m.looks_mirrored(),
        "{what}: mirror image passes {} of {} side checks",
        m.checks.len() - m.violations().len(),
        m.checks.len()
    );
    rep.checks.len()
}

#[test]
fn procedural_templates_put_each_organ_on_its_side() {
    let g = Grid::centered([96, 80, 96], [4.0; 3]);
    let thorax = render(Template::ThoraxPhantom, g.clone());
    let n = assert_sides_right("thorax", &thorax, 30);
    let names: Vec<String> = laterality::laterality(&thorax)
        .checks
        .iter()
        .flat_map(|c| [c.right.name.clone(), c.left.name.clone()])
        .collect();
    for needed in [
        "liver",
        "spleen",
        "right lung lobes",
        "left lung lobes",
        "heart apex",
        "higher (right) hemidiaphragm dome",
    ] {
        assert!(names.iter().any(|x| x == needed), "thorax lacks {needed}");
    }
    eprintln!("thorax: {n} side comparisons");
    let abdomen = render(Template::AbdomenPhantom, g);
    assert_sides_right("abdomen", &abdomen, 20);
    // Deformed subjects keep their sides.
    let (mut a, mut l) = rngs(5, 6);
    let p = params(
        Template::AbdomenPhantom,
        Grid::centered([96, 80, 96], [4.0; 3]),
        6.0,
        vec![],
    );
    let got = build(&p, None, &mut a, &mut l).unwrap();
    assert_sides_right("deformed abdomen", &got.labels, 20);
}

#[test]
fn head_template_is_mirror_symmetric_in_its_labels() {
    // The head's labels (scalp, skull, CSF, grey and white matter, ventricles) have no side:
    // nothing to put on the wrong side, and the label volumes are the same on both halves.
    let v = render(
        Template::HeadPhantom,
        Grid::centered([64, 72, 64], [3.0; 3]),
    );
    assert!(laterality::laterality(&v).checks.is_empty());
    for id in [SKULL, LATERAL_VENTRICLES, GREY_MATTER, WHITE_MATTER] {
        let half = |right: bool| {
            v.data
                .iter()
                .enumerate()
                .filter(|(idx, &l)| {
                    l == id && (v.grid.world(v.grid.ijk(*idx)[0], 0, 0)[0] > 0.0) == right
                })
                .count() as f64
        };
        let (r, l) = (half(true), half(false));
        assert!(
            (r - l).abs() <= 0.06 * (r + l),
            "label {id}: {r} vs {l} voxels"
        );
    }
}

#[test]
fn imported_real_map_keeps_its_sides() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let src = crate::io::nifti::read_labels(&dir.join("ts_ct_torso_3mm_seg_total.nii.gz")).unwrap();
    let names =
        parse_names_file(&std::fs::read_to_string(dir.join("ts_total_classes.txt")).unwrap())
            .unwrap();
    let g = Grid::centered(src.grid.dims, src.grid.spacing_mm);
    let src = Volume {
        grid: g.clone(),
        data: src.data,
    };
    let (base, _) = import_labels(&src, &names, &g);
    assert_sides_right("imported TotalSegmentator CT", &base, 30);
}

/// An exophytic 50 mm renal tumour (larger than the kidney is thick, refused inside it) grows
/// out into the body's tissue, never into air; a pleural-based 10 mm nodule lies in the lung
/// touching its boundary.
#[test]
fn exophytic_and_surface_lesions_sit_against_their_organ_boundary() {
    let g = Grid::centered([96, 96, 80], [4.0, 4.0, 4.0]);
    let mk = |organ: &str, d: f64, placement: LesionPlacement| LesionRequest {
        placement,
        ..lesion(organ, d, LesionShape::Sphere)
    };
    let inside = params(
        Template::AbdomenPhantom,
        g.clone(),
        0.0,
        vec![mk("kidney", 50.0, LesionPlacement::Inside)],
    );
    let (mut a, mut l) = rngs(3, 4);
    let err = build(&inside, None, &mut a, &mut l)
        .unwrap_err()
        .to_string();
    assert!(err.contains("wholly inside `kidney`"), "{err}");

    // The anatomy with the lesions and the same anatomy (same streams) without them.
    let with_and_without = |t: Template, reqs: Vec<LesionRequest>, seeds: (u64, u64)| {
        let run = |reqs: Vec<LesionRequest>| {
            let (mut a, mut l) = rngs(seeds.0, seeds.1);
            build(&params(t, g.clone(), 0.0, reqs), None, &mut a, &mut l).unwrap()
        };
        (run(reqs), run(vec![]).labels)
    };
    let (got, pre) = with_and_without(
        Template::AbdomenPhantom,
        vec![mk("kidney", 50.0, LesionPlacement::Exophytic)],
        (3, 4),
    );
    let rec = &got.lesions[0];
    let kidney = organ_group("kidney").unwrap();
    let vox: Vec<usize> = (0..g.len())
        .filter(|&i| got.labels.data[i] == rec.label_id)
        .collect();
    let in_kidney = vox
        .iter()
        .filter(|&&i| kidney.contains(&pre.data[i]))
        .count() as f64
        / vox.len() as f64;
    eprintln!(
        "exophytic 50 mm renal tumour: {} voxels ({:.0} ml), {:.0} % in the kidney (recorded {:.2})",
        vox.len(),
        rec.volume_ml,
        100.0 * in_kidney,
        rec.fraction_in_organ
    );
    assert!((0.25..=0.75).contains(&in_kidney), "{in_kidney}");
    assert!((rec.fraction_in_organ - in_kidney).abs() < 1e-9);
    assert!(vox.iter().all(|&i| pre.data[i] != 0), "grew into air");
    assert_eq!(rec.placement, LesionPlacement::Exophytic);

    let (got, pre) = with_and_without(
        Template::ThoraxPhantom,
        vec![mk("lung", 10.0, LesionPlacement::Surface)],
        (5, 6),
    );
    let lung = organ_group("lung").unwrap();
    let id = got.lesions[0].label_id;
    let vox: Vec<usize> = (0..g.len()).filter(|&i| got.labels.data[i] == id).collect();
    assert!(
        vox.iter().all(|&i| lung.contains(&pre.data[i])),
        "outside the lung"
    );
    // Against the boundary: within two voxels of a non-lung voxel.
    let touches = vox.iter().any(|&v| {
        let [i, j, k] = g.ijk(v);
        (-2i64..=2).any(|d| {
            [[d, 0, 0], [0, d, 0], [0, 0, d]].iter().any(|o| {
                let q = [i as i64 + o[0], j as i64 + o[1], k as i64 + o[2]];
                q.iter()
                    .zip(g.dims)
                    .all(|(&c, n)| c >= 0 && (c as usize) < n)
                    && !lung.contains(&pre.get(q[0] as usize, q[1] as usize, q[2] as usize))
            })
        })
    });
    assert!(touches, "pleural-based nodule away from the pleura");
}

/// A ball-shaped organ (liver id, radius `r_mm`) filling the middle of a 2 mm grid.
fn ball_organ(r_mm: f64) -> Volume<u16> {
    let g = Grid::centered([64, 64, 64], [2.0, 2.0, 2.0]);
    let mut v = Volume::filled(g.clone(), ontology::BODY);
    for idx in 0..g.len() {
        let [i, j, k] = g.ijk(idx);
        let p = g.world(i, j, k);
        if (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt() <= r_mm {
            v.data[idx] = LIVER;
        }
    }
    v
}

fn on_ball(reqs: Vec<LesionRequest>, seed: u64) -> (Anatomy, Volume<u16>) {
    let base = ball_organ(50.0);
    let p = params(Template::AbdomenPhantom, base.grid.clone(), 0.0, reqs);
    let (mut a, mut l) = rngs(seed, seed + 1);
    (build(&p, Some(&base), &mut a, &mut l).unwrap(), base)
}

/// Each family with a second part carries it under its own id, nested as the family says:
/// the fluid and the necrotic core never touch the lesion's outside (the wall and rim are
/// there at every spacing), a part-solid nodule's solid component lies inside its ground
/// glass; parts' volumes match their voxels, and a spiculated nodule reaches beyond its core.
#[test]
fn shape_families_carry_their_parts_nested_as_drawn() {
    for (shape, part) in [
        (LesionShape::Cystic, LesionPart::Fluid),
        (LesionShape::Necrotic, LesionPart::NecroticCore),
        (LesionShape::PartSolid, LesionPart::GroundGlass),
    ] {
        let (got, _) = on_ball(vec![lesion("liver", 30.0, shape)], 11);
        let rec = &got.lesions[0];
        assert_eq!(rec.parts.len(), 1, "{shape}");
        let pr = rec.parts[0];
        assert_eq!(pr.part, part);
        assert_eq!(pr.label_id, rec.label_id + 1);
        let g = &got.labels.grid;
        let count = |id: u16| got.labels.data.iter().filter(|&&l| l == id).count();
        let (own, second) = (count(rec.label_id), count(pr.label_id));
        assert!((pr.volume_ml - second as f64 * g.voxel_ml()).abs() < 1e-9);
        assert!((rec.volume_ml - (own + second) as f64 * g.voxel_ml()).abs() < 1e-9);
        let lesion_ids = [rec.label_id, pr.label_id];
        // The inner part (fluid, core, solid) never has a face neighbour outside the lesion.
        let inner = if part == LesionPart::GroundGlass {
            rec.label_id
        } else {
            pr.label_id
        };
        let [nx, ny, _] = g.dims;
        for (v, &l) in got.labels.data.iter().enumerate() {
            if l == inner {
                for q in [v - 1, v + 1, v - nx, v + nx, v - nx * ny, v + nx * ny] {
                    assert!(
                        lesion_ids.contains(&got.labels.data[q]),
                        "{shape}: {part:?} exposed"
                    );
                }
            }
        }
        // Inner fraction as drawn: cystic (1 − wall/r)³ with a 1.5–3 mm wall (r 12–17 mm for a
        // 30 mm ellipsoid), necrotic core
        // 0.4–0.7 of the size, solid 0.3–0.6 (the cube, less the outer voxel layer).
        let inner_n = if inner == rec.label_id { own } else { second };
        let f = inner_n as f64 / (own + second) as f64;
        let (lo, hi) = match shape {
            LesionShape::Cystic => (0.2, 0.8),
            LesionShape::Necrotic => (0.02, 0.7f64.powi(3) * 1.2),
            _ => (0.005, 0.6f64.powi(3) * 1.2),
        };
        eprintln!("{shape}: inner {:.3} of {} voxels", f, own + second);
        assert!((lo..=hi).contains(&f), "{shape}: inner fraction {f}");
    }
    // Spiculated: the core's volume, with spicules reaching past 1.2 core radii.
    let (got, _) = on_ball(vec![lesion("liver", 20.0, LesionShape::Spiculated)], 5);
    let rec = &got.lesions[0];
    assert!(rec.parts.is_empty());
    let g = &got.labels.grid;
    let far = (0..g.len())
        .filter(|&i| got.labels.data[i] == rec.label_id)
        .map(|i| {
            let [a, b, c] = g.ijk(i);
            let p = g.world(a, b, c);
            (0..3)
                .map(|x| (p[x] - rec.center_mm[x]).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .fold(0.0, f64::max);
    assert!(far > 12.0, "spicules reach only {far} mm");
    let sphere_ml = std::f64::consts::PI / 6.0 * 8.0;
    assert!(
        rec.volume_ml > 0.7 * sphere_ml && rec.volume_ml < 1.5 * sphere_ml,
        "{}",
        rec.volume_ml
    );
}

/// Mass effect: a displacing lesion leaves its organ's tissue volume as it was (the medium
/// is pushed aside, not removed), where a replacing one takes its own volume out of it; the
/// organ's outline moves outward near the lesion.
#[test]
fn displacing_lesions_push_tissue_aside_and_keep_the_organ_volume() {
    let organ_ml = |a: &Anatomy| {
        a.labels.data.iter().filter(|&&l| l == LIVER).count() as f64 * a.labels.grid.voxel_ml()
    };
    let mk = |growth| LesionRequest {
        growth,
        ..lesion("liver", 40.0, LesionShape::Sphere)
    };
    let (replace, base) = on_ball(vec![mk(LesionGrowth::Replace)], 3);
    let (displace, _) = on_ball(vec![mk(LesionGrowth::Displace)], 3);
    let before = base.data.iter().filter(|&&l| l == LIVER).count() as f64 * base.grid.voxel_ml();
    let les = replace.lesions[0].volume_ml;
    let (r, d) = (organ_ml(&replace), organ_ml(&displace));
    eprintln!("liver {before:.1} ml, lesion {les:.1} ml: replace leaves {r:.1}, displace {d:.1}");
    assert!((r - (before - les)).abs() < 1e-6);
    assert!(
        (d - before).abs() < 0.04 * before,
        "displace: {d} vs {before}"
    );
    assert_eq!(displace.lesions[0].growth, LesionGrowth::Displace);
    // Same centre and shape (the lesion stream is the same), so the lesion voxels agree.
    assert_eq!(replace.lesions[0].center_mm, displace.lesions[0].center_mm);

    // A lesion placed before a displacing one is measured again where it was pushed to.
    let small = LesionRequest {
        shape: LesionShape::Cystic,
        ..lesion("liver", 16.0, LesionShape::Sphere)
    };
    let (two, _) = on_ball(vec![small, mk(LesionGrowth::Displace)], 9);
    let first = &two.lesions[0];
    let g = &two.labels.grid;
    let ids: Vec<u16> = first.label_ids().collect();
    let n = two.labels.data.iter().filter(|l| ids.contains(l)).count();
    assert!((first.volume_ml - n as f64 * g.voxel_ml()).abs() < 1e-9);
    let part = two
        .labels
        .data
        .iter()
        .filter(|&&l| l == first.parts[0].label_id)
        .count();
    assert!((first.parts[0].volume_ml - part as f64 * g.voxel_ml()).abs() < 1e-9);
    assert!(ids.contains(&two.labels.sample_nearest(first.center_mm).unwrap()));
}

#[test]
fn a_surface_lesion_needs_an_organ_with_a_surface() {
    let g = Grid::centered([48, 48, 40], [8.0, 8.0, 8.0]);
    let req = LesionRequest {
        placement: LesionPlacement::Surface,
        ..lesion("pancreas", 8.0, LesionShape::Sphere)
    };
    let (mut a, mut l) = rngs(1, 2);
    let err = build(
        &params(Template::AbdomenPhantom, g, 0.0, vec![req]),
        None,
        &mut a,
        &mut l,
    )
    .unwrap_err();
    assert!(matches!(err, AnatomyError::NoSurface { .. }), "{err}");
    for organ in [
        "lung",
        "liver",
        "kidney_left",
        "ribs",
        "vertebrae_L1",
        "colon",
        "brain",
    ] {
        assert!(surface_of(organ).is_some(), "{organ}");
    }
    for organ in [
        "pancreas",
        "white_matter",
        "aorta",
        "subcutaneous_fat",
        "csf",
    ] {
        assert!(surface_of(organ).is_none(), "{organ}");
    }
}
