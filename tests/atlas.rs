//! Atlas anatomy: derived from a real CT and its segmentation, checked against an independent
//! body-composition segmentation of the same scan; per-subject organ volumes against
//! literature norms; a pull-back that never folds; lesions placed on real organs.

mod common;

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use synthcohort::anatomy::{
    self, atlas, import_labels, norms, ontology, parse_names_file, AnatomyParams, BodySize,
    LesionPlacement, LesionRequest, LesionShape, Sex, Template,
};
use synthcohort::io::nifti;
use synthcohort::volume::{Grid, Volume};

fn data(name: &str) -> std::path::PathBuf {
    common::repo(&format!("tests/data/{name}"))
}

fn derived() -> (Volume<u16>, atlas::derive::DeriveReport) {
    let ct = nifti::read_image(&data("ts_ct_torso_3mm.nii.gz")).unwrap();
    let seg = nifti::read_labels(&data("ts_ct_torso_3mm_seg_total.nii.gz")).unwrap();
    let names =
        parse_names_file(&std::fs::read_to_string(data("ts_total_classes.txt")).unwrap()).unwrap();
    let (mapped, _) = import_labels(&seg, &names, &ct.grid);
    atlas::derive::derive(&ct, &mapped).unwrap()
}

fn dice(a: &[bool], b: &[bool]) -> f64 {
    let inter = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let n = a.iter().filter(|x| **x).count() + b.iter().filter(|x| **x).count();
    2.0 * inter as f64 / n as f64
}

/// The fat and muscle the derivation paints from Hounsfield windows agree with
/// TotalSegmentator's own tissue-types model on the slices not used to tune the depth limit
/// (97–111; the limit was tuned on 82–96).
#[test]
fn derived_fat_and_muscle_agree_with_an_independent_tissue_segmentation() {
    let (labels, report) = derived();
    let tt = nifti::read_labels(&data("ts_ct_torso_3mm_tissue_types_z82-111.nii.gz")).unwrap();
    let muscle_ids: Vec<u16> = [
        "skeletal_muscle",
        "autochthon_left",
        "autochthon_right",
        "iliopsoas_left",
        "iliopsoas_right",
        "gluteus_maximus_left",
        "gluteus_maximus_right",
        "gluteus_medius_left",
        "gluteus_medius_right",
        "gluteus_minimus_left",
        "gluteus_minimus_right",
    ]
    .iter()
    .map(|n| ontology::label_by_name(n).unwrap().id)
    .collect();
    let g = &tt.grid;
    let mut ours: BTreeMap<&str, Vec<bool>> = BTreeMap::new();
    let mut theirs: BTreeMap<&str, Vec<bool>> = BTreeMap::new();
    for idx in 0..g.len() {
        let [i, j, k] = g.ijk(idx);
        if k < 15 {
            continue; // tuning slices
        }
        let l = labels.sample_nearest(g.world(i, j, k)).unwrap();
        let t = tt.data[idx];
        for (name, o, r) in [
            ("subcutaneous fat", l == ontology::SUBCUTANEOUS_FAT, t == 1),
            ("torso fat", l == ontology::TORSO_FAT, t == 2),
            ("muscle", muscle_ids.contains(&l), t == 3),
        ] {
            ours.entry(name).or_default().push(o);
            theirs.entry(name).or_default().push(r);
        }
    }
    let d: BTreeMap<&str, f64> = ours
        .iter()
        .map(|(k, v)| (*k, dice(v, &theirs[k])))
        .collect();
    eprintln!("Dice against TotalSegmentator tissue types, slices 97–111: {d:?}; {report:?}");
    assert!(d["subcutaneous fat"] > 0.78, "{d:?}");
    assert!(d["torso fat"] > 0.75, "{d:?}");
    assert!(d["muscle"] > 0.63, "{d:?}");
    // The whole body is labelled: nothing inside the outline is background.
    assert!(report.body_voxels == labels.data.iter().filter(|&&l| l != 0).count());
}

/// The shipped atlas is exactly what the derivation makes of the shipped scan, so it can be
/// rebuilt (`synthcohort atlas`) and audited.
#[test]
fn shipped_atlas_is_the_derivation_of_the_shipped_scan() {
    let (labels, _) = derived();
    let shipped = nifti::read_labels(&atlas::labels_path(Template::Abdomen).unwrap()).unwrap();
    assert_eq!(shipped.grid.dims, labels.grid.dims);
    assert!(
        shipped.data == labels.data,
        "re-run `synthcohort atlas` (see models/atlas-abdomen/ATLAS.md)"
    );
}

fn params(body: BodySize, grid: &Grid, deformation_mm: f64) -> AnatomyParams {
    AnatomyParams {
        template: Template::Abdomen,
        grid: grid.clone(),
        body,
        deformation_mm,
        lesions: Vec::new(),
    }
}

/// Twenty subjects of mixed size: kidney volumes fall within 2 SD of the literature norm for
/// their body surface area in at least 85 % of draws (a normal draw gives 95 %), and no
/// subject's pull-back folds.
#[test]
fn atlas_subjects_follow_organ_norms_and_never_fold() {
    let grid = Grid::centered([96, 80, 84], [5.0, 5.0, 4.0]);
    let kid = ontology::label_by_name("kidney_right").unwrap().id;
    let mut within = 0;
    let mut min_jac = f64::INFINITY;
    let n = 20;
    for s in 0..n {
        let body = BodySize {
            height_cm: 155.0 + 2.0 * s as f64,
            weight_kg: 55.0 + 2.5 * s as f64,
            sex: if s % 2 == 0 { Sex::Female } else { Sex::Male },
            age_years: 50.0,
        };
        let prm = params(body, &grid, 4.0);
        let a = anatomy::build(
            &prm,
            None,
            &mut ChaCha8Rng::seed_from_u64(s),
            &mut ChaCha8Rng::seed_from_u64(1000 + s),
        )
        .unwrap();
        let ml = a.labels.data.iter().filter(|&&l| l == kid).count() as f64 * grid.voxel_ml();
        let norm = norms::organ_norm("kidney_right", &body).unwrap();
        if norm.z(ml).abs() <= 2.0 {
            within += 1;
        }
        let w = anatomy::subject_warp(
            &prm,
            atlas::load(Template::Abdomen).unwrap(),
            &mut ChaCha8Rng::seed_from_u64(s),
        );
        min_jac = min_jac.min(w.min_jacobian());
    }
    assert!(within * 100 >= 85 * n, "{within} of {n} within 2 SD");
    assert!(min_jac > 0.0, "pull-back folds: min Jacobian {min_jac}");
}

/// Same seed, three BMIs: the subcutaneous fat grows with BMI and the organs stay put.
#[test]
fn subcutaneous_fat_follows_bmi() {
    let grid = Grid::centered([100, 84, 66], [5.0, 5.0, 5.0]);
    let count = |weight_kg: f64, id: u16| {
        let body = BodySize {
            height_cm: 175.0,
            weight_kg,
            sex: Sex::Male,
            age_years: 50.0,
        };
        let a = anatomy::build(
            &params(body, &grid, 0.0),
            None,
            &mut ChaCha8Rng::seed_from_u64(7),
            &mut ChaCha8Rng::seed_from_u64(8),
        )
        .unwrap();
        a.labels.data.iter().filter(|&&l| l == id).count()
    };
    let fat = [60.0, 85.0, 110.0].map(|w| count(w, ontology::SUBCUTANEOUS_FAT));
    assert!(fat[0] < fat[1] && fat[1] < fat[2], "{fat:?}");
    assert!(fat[2] as f64 > 2.0 * fat[0] as f64, "{fat:?}");
    // Visceral fat follows (Maurovich-Horvat 2007: the subcutaneous/visceral ratio does not
    // depend on BMI). It grows from the atlas's BMI (≈ 22) up to its cap (flow amount 2, which
    // 110 kg at 175 cm reaches), so the ratio stays within ×1.6 over BMI 20–36 where a fixed
    // visceral fat would let it grow ×2.9 with the subcutaneous band.
    let vat = [60.0, 85.0, 110.0].map(|w| count(w, ontology::TORSO_FAT));
    let ratio = [0, 1, 2].map(|i| fat[i] as f64 / vat[i] as f64);
    assert!(
        vat[1] as f64 > 1.4 * vat[0] as f64 && vat[2] > vat[1],
        "{vat:?}"
    );
    let spread =
        ratio.iter().copied().fold(0.0, f64::max) / ratio.iter().copied().fold(f64::MAX, f64::min);
    eprintln!("subcutaneous {fat:?}, visceral {vat:?}, ratios {ratio:?}");
    assert!(spread < 1.6, "subcutaneous/visceral ratios {ratio:?}");
    let liver = ontology::label_by_name("liver").unwrap().id;
    let l = [60.0, 110.0].map(|w| count(w, liver) as f64);
    // The liver follows BSA (Vauthey): the same draw at 110 kg is larger by the norm's ratio.
    let norm = |weight_kg: f64| {
        let b = BodySize {
            height_cm: 175.0,
            weight_kg,
            sex: Sex::Male,
            age_years: 50.0,
        };
        norms::organ_norm("liver", &b).unwrap().mean_ml
    };
    let (got, want) = (l[1] / l[0], norm(110.0) / norm(60.0));
    assert!(
        (got / want - 1.0).abs() < 0.15,
        "liver {l:?}: ratio {got:.2}, norm ratio {want:.2}"
    );
}

/// A 50 mm exophytic renal tumour grows out of a real kidney (42–55 mm thick at most):
/// a quarter to three quarters of it outside, recorded as such.
#[test]
fn exophytic_renal_tumour_on_a_real_kidney() {
    let grid = Grid::centered([100, 84, 84], [4.0, 4.0, 4.0]);
    let mut prm = params(BodySize::median(), &grid, 0.0);
    prm.lesions = vec![LesionRequest {
        condition: "renal_tumour".into(),
        kind: "tumour".into(),
        organ: "kidney".into(),
        diameter_mm: 50.0,
        shape: LesionShape::Sphere,
        placement: LesionPlacement::Exophytic,
        growth: Default::default(),
    }];
    let a = anatomy::build(
        &prm,
        None,
        &mut ChaCha8Rng::seed_from_u64(3),
        &mut ChaCha8Rng::seed_from_u64(4),
    )
    .unwrap();
    let l = &a.lesions[0];
    assert_eq!(l.placement, LesionPlacement::Exophytic);
    assert!((0.25..=0.75).contains(&l.fraction_in_organ), "{l:?}");
    let sphere_ml = std::f64::consts::PI / 6.0 * 50f64.powi(3) / 1000.0;
    assert!((l.volume_ml / sphere_ml - 1.0).abs() < 0.2, "{l:?}");
    assert!(a.labels.data.contains(&l.label_id));
    // Inside, the same tumour does not fit.
    prm.lesions[0].placement = LesionPlacement::Inside;
    let e = anatomy::build(
        &prm,
        None,
        &mut ChaCha8Rng::seed_from_u64(3),
        &mut ChaCha8Rng::seed_from_u64(4),
    )
    .unwrap_err();
    assert!(e.to_string().contains("could not place"), "{e}");
}

/// `anatomy-check` against the segmentation the atlas was built from: the alignment must find
/// it (liver and kidneys overlap well, the phantom baseline less), and the volume table covers
/// the organs with norms, with a positive smallest Jacobian.
#[test]
fn anatomy_check_finds_the_atlas_in_its_own_segmentation() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("check");
    common::run_ok(&[
        "anatomy-check",
        common::repo("pipelines/quickstart.yaml").to_str().unwrap(),
        "--subjects",
        "3",
        "--realism-subjects",
        "1",
        "--reference",
        data("ts_ct_torso_3mm_seg_total.nii.gz").to_str().unwrap(),
        "--reference-names",
        data("ts_total_classes.txt").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert!(r["population"]["min_jacobian"].as_f64().unwrap() > 0.0);
    let organs: Vec<&str> = r["population"]["organs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["organ"].as_str().unwrap())
        .collect();
    assert_eq!(organs, ["liver", "spleen", "kidney_left", "kidney_right"]);
    let dice = |t: &str, o: &str| {
        r["realism"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["template"] == t && row["organ"] == o)
            .unwrap()["dice_mean"]
            .as_f64()
            .unwrap()
    };
    // One generated subject (its own height, organ sizes and deformation) against the scan
    // itself: well aligned, though not identical. Subject 1 is a man of BMI 32.7 against the
    // atlas patient's ≈ 22, so his visceral fat is inflated (visceral.rs) and moves the liver
    // by the fat around it, which translation + scale alignment does not undo (0.72 measured).
    assert!(
        dice("abdomen", "liver") > 0.68,
        "{}",
        dice("abdomen", "liver")
    );
    assert!(
        dice("abdomen", "kidney_right") > 0.6,
        "{}",
        dice("abdomen", "kidney_right")
    );
    let mean = |t: &str| r["realism"]["mean_dice"][t].as_f64().unwrap();
    assert!(
        mean("abdomen") > mean("abdomen_phantom"),
        "{}",
        r["realism"]["mean_dice"]
    );
}

/// The `head` atlas: the real template's grey and white matter, CSF, ventricles enclosed in
/// brain, and the added skull and scalp around it.
#[test]
fn head_atlas_has_real_brain_tissue_inside_added_shells() {
    let a = atlas::load(Template::Head).unwrap();
    let want: Vec<u16> = [
        ontology::SKULL,
        ontology::SCALP,
        ontology::CSF,
        ontology::GREY_MATTER,
        ontology::WHITE_MATTER,
        ontology::LATERAL_VENTRICLES,
    ]
    .into_iter()
    .collect::<std::collections::BTreeSet<u16>>()
    .into_iter()
    .collect();
    assert_eq!(a.label_ids, want);
    let ml = |id: u16| {
        a.labels.data.iter().filter(|&&l| l == id).count() as f64 * a.labels.grid.voxel_ml()
    };
    // MNI152 space is an enlarged average brain: GM + WM about 1.7 L, GM above WM as in
    // every adult series; ventricles a small fraction of it.
    let (gm, wm, v) = (
        ml(ontology::GREY_MATTER),
        ml(ontology::WHITE_MATTER),
        ml(ontology::LATERAL_VENTRICLES),
    );
    eprintln!("head atlas: GM {gm:.0} mL, WM {wm:.0} mL, ventricles {v:.1} mL");
    assert!((1500.0..2000.0).contains(&(gm + wm)) && gm > wm);
    assert!((0.005..0.03).contains(&(v / (gm + wm))), "ventricles {v}");
    assert!((a.brain_ml.unwrap() - (gm + wm)).abs() < 1e-6);
    // Every ventricle voxel is surrounded by brain tissue or CSF, never skull.
    let g = &a.labels.grid;
    for (idx, &l) in a.labels.data.iter().enumerate() {
        if l == ontology::LATERAL_VENTRICLES {
            let [i, j, k] = g.ijk(idx);
            for o in [[1i64, 0, 0], [0, 1, 0], [0, 0, 1]] {
                for sgn in [-1i64, 1] {
                    let q = [0, 1, 2].map(|x| ([i, j, k][x] as i64 + sgn * o[x]) as usize);
                    let n = a.labels.get(q[0], q[1], q[2]);
                    assert!(n != ontology::SKULL && n != ontology::SCALP && n != 0);
                }
            }
        }
    }
}

/// Brain volumes of head-atlas subjects follow the sex and age norm: within 2 SD in at least
/// 85 % of draws, women's brains smaller than men's and old brains smaller than young ones by
/// about the ratios the norm gives (1130/1260; 0.25 %/yr from 30), and nothing folds.
#[test]
fn head_atlas_brain_volumes_follow_sex_and_age_norms() {
    let grid = Grid::centered([64, 72, 64], [3.0; 3]);
    let brain = anatomy::organ_group("brain").unwrap();
    let a = atlas::load(Template::Head).unwrap();
    let n = 40u64;
    let (mut within, mut min_jac) = (0, f64::INFINITY);
    // Mean volume ratio to the reference norm (male, 30) per group: (female?, old?).
    let mut groups: BTreeMap<(bool, bool), Vec<f64>> = BTreeMap::new();
    for s in 0..n {
        let (female, old) = (s % 2 == 0, s % 4 >= 2);
        let body = BodySize {
            height_cm: 170.0,
            weight_kg: 70.0,
            sex: if female { Sex::Female } else { Sex::Male },
            age_years: if old { 75.0 } else { 30.0 },
        };
        let prm = AnatomyParams {
            template: Template::Head,
            ..params(body, &grid, 3.0)
        };
        let built = anatomy::build(
            &prm,
            None,
            &mut ChaCha8Rng::seed_from_u64(s),
            &mut ChaCha8Rng::seed_from_u64(500 + s),
        )
        .unwrap();
        let ml = built
            .labels
            .data
            .iter()
            .filter(|l| brain.contains(l))
            .count() as f64
            * grid.voxel_ml();
        let norm = norms::organ_norm("brain", &body).unwrap();
        within += (norm.z(ml).abs() <= 2.0) as usize;
        groups.entry((female, old)).or_default().push(ml);
        let w = anatomy::subject_warp(&prm, a, &mut ChaCha8Rng::seed_from_u64(s));
        min_jac = min_jac.min(w.min_jacobian());
    }
    let mean = |k: (bool, bool)| groups[&k].iter().sum::<f64>() / groups[&k].len() as f64;
    let sex_ratio =
        (mean((true, false)) + mean((true, true))) / (mean((false, false)) + mean((false, true)));
    let age_ratio =
        (mean((false, true)) + mean((true, true))) / (mean((false, false)) + mean((true, false)));
    eprintln!("brain: {within}/{n} within 2 SD, F/M {sex_ratio:.3}, 75/30 y {age_ratio:.3}, min Jacobian {min_jac:.3}");
    assert!(
        within * 100 >= 85 * n as usize,
        "{within} of {n} within 2 SD"
    );
    // 10 subjects per group, SD 10 %: each group mean within about ±6 % of its norm.
    assert!(
        (sex_ratio - 1130.0 / 1260.0).abs() < 0.08,
        "F/M {sex_ratio}"
    );
    assert!(
        (age_ratio - (1.0 - 0.0025 * 45.0)).abs() < 0.08,
        "old/young {age_ratio}"
    );
    assert!(min_jac > 0.0);
}

/// The `chest` atlas: real lungs (right larger than left, as in every adult), airways running
/// from the top of the field into the lungs' midline, vessels inside the lungs' outline, the
/// heart between them, bone; and subjects whose lungs follow the lung-capacity norm's height
/// dependence (a 190 cm man's lungs larger than a 155 cm woman's by about the norm's ratio)
/// without folding.
#[test]
fn chest_atlas_has_real_lungs_that_vary_with_the_lung_capacity_norm() {
    let a = atlas::load(Template::Chest).unwrap();
    let g = &a.labels.grid;
    let ml = |id: u16| a.labels.data.iter().filter(|&&l| l == id).count() as f64 * g.voxel_ml();
    let (left, right) = (ml(ontology::LUNG_LEFT), ml(ontology::LUNG_RIGHT));
    eprintln!("chest atlas: lungs L {left:.0} R {right:.0} mL, heart {:.0}, airways {:.0}, pulmonary vessels {:.0}, great vessels {:.0}, bone {:.0}",
        ml(ontology::HEART), ml(ontology::TRACHEA), ml(ontology::PULMONARY_VESSELS), ml(ontology::GREAT_VESSELS), ml(ontology::BONE));
    assert!(right > left && (2500.0..8000.0).contains(&(left + right)));
    assert!((300.0..1200.0).contains(&ml(ontology::HEART)));
    assert!((10.0..150.0).contains(&ml(ontology::TRACHEA)));
    // Sides in RAS+: the right lung at +x, the heart's centroid left of the midline.
    let cx = |id: u16| {
        let (mut s, mut n) = (0.0, 0.0);
        for (v, &l) in a.labels.data.iter().enumerate() {
            if l == id {
                let [i, j, k] = g.ijk(v);
                s += g.world(i, j, k)[0];
                n += 1.0;
            }
        }
        s / n
    };
    assert!(cx(ontology::LUNG_RIGHT) > 0.0 && cx(ontology::LUNG_LEFT) < 0.0);
    assert!(
        cx(ontology::HEART) < cx(ontology::TRACHEA),
        "heart not left of the airways"
    );
    // The lung organs are scaled relative to the norm (breath-hold, not capacity).
    let lungs: Vec<&atlas::AtlasOrgan> = a
        .organs
        .iter()
        .filter(|o| o.name.starts_with("lung"))
        .collect();
    assert_eq!(lungs.len(), 2);
    assert!(lungs.iter().all(|o| o.cut && o.full_ml > o.volume_ml));

    let grid = Grid::centered([128, 100, 72], [3.5, 3.5, 4.0]);
    let lung_ml = |body: BodySize, seed: u64| {
        let prm = AnatomyParams {
            template: Template::Chest,
            ..params(body, &grid, 3.0)
        };
        let w = anatomy::subject_warp(&prm, a, &mut ChaCha8Rng::seed_from_u64(seed));
        let min_jac = w.min_jacobian();
        let l = w.labels();
        let group = anatomy::organ_group("lung").unwrap();
        let v = l.data.iter().filter(|x| group.contains(x)).count() as f64 * grid.voxel_ml();
        (v, min_jac)
    };
    let tall = BodySize {
        height_cm: 190.0,
        weight_kg: 85.0,
        sex: Sex::Male,
        age_years: 40.0,
    };
    let short = BodySize {
        height_cm: 155.0,
        weight_kg: 55.0,
        sex: Sex::Female,
        age_years: 40.0,
    };
    let (mut t, mut s, mut min_jac) = (0.0, 0.0, f64::INFINITY);
    for seed in 0..6 {
        let (a1, j1) = lung_ml(tall, seed);
        let (a2, j2) = lung_ml(short, seed);
        t += a1;
        s += a2;
        min_jac = min_jac.min(j1).min(j2);
    }
    let tlc = |b: &BodySize| {
        norms::organ_norm("lung_left", b).unwrap().mean_ml
            + norms::organ_norm("lung_right", b).unwrap().mean_ml
    };
    let (got, want) = (t / s, tlc(&tall) / tlc(&short));
    eprintln!("lungs tall/short {got:.2} (norm {want:.2}), min Jacobian {min_jac:.3}");
    assert!((got / want - 1.0).abs() < 0.2, "{got} vs {want}");
    assert!(min_jac > 0.0);
}
