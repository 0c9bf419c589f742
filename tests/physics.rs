//! The QA pipelines end to end, checked against physics: water and air HU and the 1/√mAs
//! noise law (qa_water_ct), energy dependence of bone and iodine (qa_ct_inserts), and
//! brain MRI contrast with CSF nulling (qa_brain_mri). Tissues are found by their names in
//! labels.json, as a user would.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use synthcohort::io;
use synthcohort::volume::Volume;

fn run_pipeline(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let p = common::repo(&format!("pipelines/{name}.yaml"));
    common::run_ok(&[
        "run",
        p.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    (tmp, out)
}

fn label_ids(out: &Path) -> BTreeMap<String, u16> {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("labels.json")).unwrap()).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["id"].as_u64().unwrap() as u16,
            )
        })
        .collect()
}

fn stats(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt(),
    )
}

/// Voxels of the middle slice within `r` pixels of (ci, cj).
fn disk(img: &Volume<f32>, ci: f64, cj: f64, r: f64) -> Vec<f64> {
    let k = img.grid.dims[2] / 2;
    let mut out = Vec::new();
    for j in 0..img.grid.dims[1] {
        for i in 0..img.grid.dims[0] {
            if (i as f64 - ci).powi(2) + (j as f64 - cj).powi(2) <= r * r {
                out.push(img.get(i, j, k) as f64);
            }
        }
    }
    out
}

#[test]
fn water_cylinder_reads_water_and_air_and_noise_follows_inverse_sqrt_mas() {
    let (_tmp, out) = run_pipeline("qa_water_ct");
    let img50 = io::read_image(&out.join("images/sub-0001_mas50.nii.gz")).unwrap();
    let img200 = io::read_image(&out.join("images/sub-0001_mas200.nii.gz")).unwrap();
    let c = (img50.grid.dims[0] as f64 - 1.0) / 2.0;
    let (w50, sd50) = stats(&disk(&img50, c, c, 20.0));
    let (w200, sd200) = stats(&disk(&img200, c, c, 20.0));
    let (air, _) = stats(&disk(&img200, 12.0, 12.0, 8.0));
    eprintln!(
        "water {w50:.1}/{w200:.1} HU, noise {sd50:.2}/{sd200:.2} HU (ratio {:.3}), air {air:.1} HU",
        sd50 / sd200
    );
    assert!(w200.abs() < 5.0 && w50.abs() < 5.0, "water {w50} {w200}");
    assert!((air + 1000.0).abs() < 10.0, "air {air}");
    assert!(
        (sd50 / sd200 - 2.0).abs() < 0.15,
        "noise ratio {}",
        sd50 / sd200
    );
    // Dose is linear in mAs.
    let rows = io::read_manifest(&out.join("manifest.parquet")).unwrap();
    let dose: BTreeMap<&str, f64> = rows
        .iter()
        .map(|r| (r.arm.as_str(), r.ctdi_vol_mgy))
        .collect();
    assert!((dose["mas200"] / dose["mas50"] - 4.0).abs() < 1e-9 && dose["mas50"] > 0.0);
    // The 200 mm cylinder's water-equivalent diameter (AAPM 220) from its noisy image, and the
    // SSDE from it (AAPM 204: f(20 cm) = 3.704369·e^(−0.7343874) = 1.78).
    for r in &rows {
        let dw = r.water_equivalent_diameter_mm;
        assert!((dw - 200.0).abs() < 3.0, "{}: D_w {dw} mm", r.arm);
        assert!(
            (r.ssde_mgy / r.ctdi_vol_mgy - 1.777).abs() < 0.03,
            "{}: SSDE {}",
            r.arm,
            r.ssde_mgy
        );
    }
}

#[test]
fn inserts_follow_their_energy_dependence() {
    let (_tmp, out) = run_pipeline("qa_ct_inserts");
    let ids = label_ids(&out);
    let lab = io::read_labels(&out.join("labels/sub-0001.nii.gz")).unwrap();
    let mean_of = |img: &Volume<f32>, name: &str| -> f64 {
        // Central disk of the insert in the middle slice, away from its edge.
        let id = ids[name];
        let k = lab.grid.dims[2] / 2;
        let (mut si, mut sj, mut n) = (0.0, 0.0, 0.0);
        for j in 0..lab.grid.dims[1] {
            for i in 0..lab.grid.dims[0] {
                if lab.get(i, j, k) == id {
                    si += i as f64;
                    sj += j as f64;
                    n += 1.0;
                }
            }
        }
        stats(&disk(img, si / n, sj / n, 5.0)).0
    };
    let lo = io::read_image(&out.join("images/sub-0001_kvp80.nii.gz")).unwrap();
    let hi = io::read_image(&out.join("images/sub-0001_kvp140.nii.gz")).unwrap();
    let c = (lo.grid.dims[0] as f64 - 1.0) / 2.0;
    let (w80, w140) = (
        stats(&disk(&lo, c, c, 10.0)).0,
        stats(&disk(&hi, c, c, 10.0)).0,
    );
    let m = |n: &str| (mean_of(&lo, n), mean_of(&hi, n));
    let (bone, iodine, fat, acrylic, air) = (
        m("insert_bone"),
        m("insert_iodine"),
        m("insert_fat"),
        m("insert_acrylic"),
        m("insert_air"),
    );
    eprintln!("80/140 kVp HU: water {w80:.0}/{w140:.0} bone {bone:?} iodine {iodine:?} fat {fat:?} acrylic {acrylic:?} air {air:?}");
    assert!(bone.0 > bone.1 + 50.0, "bone {bone:?}");
    assert!(iodine.0 > iodine.1 + 50.0, "iodine {iodine:?}");
    assert!(fat.0 < w80 && fat.1 < w140, "fat {fat:?}");
    assert!(air.0 < -950.0 && air.1 < -950.0, "air {air:?}");
}

#[test]
fn brain_mri_contrast_orders_tissues_and_flair_nulls_csf() {
    let (_tmp, out) = run_pipeline("qa_brain_mri");
    let ids = label_ids(&out);
    let lab = io::read_labels(&out.join("labels/sub-0001.nii.gz")).unwrap();
    let mean = |img: &Volume<f32>, id: u16| -> (f64, f64) {
        let v: Vec<f64> = lab
            .data
            .iter()
            .zip(&img.data)
            .filter(|(l, _)| **l == id)
            .map(|(_, x)| *x as f64)
            .collect();
        stats(&v)
    };
    let get =
        |arm: &str| io::read_image(&out.join(format!("images/sub-0001_{arm}.nii.gz"))).unwrap();
    let (t1, t2, flair) = (get("t1w_se"), get("t2w_se"), get("flair"));
    let (wm, gm, csf) = (ids["white_matter"], ids["grey_matter"], ids["csf"]);
    let t1m = (mean(&t1, wm).0, mean(&t1, gm).0, mean(&t1, csf).0);
    let t2m = (mean(&t2, wm).0, mean(&t2, gm).0, mean(&t2, csf).0);
    eprintln!("T1w WM/GM/CSF {t1m:.3?}; T2w {t2m:.3?}");
    assert!(t1m.0 > t1m.1 && t1m.1 > t1m.2, "T1w {t1m:?}");
    assert!(t2m.2 > t2m.1 && t2m.1 > t2m.0, "T2w {t2m:?}");
    // At the null point CSF carries no signal: its magnitude is the Rician noise floor, the
    // same as the air around the head.
    let (csf_f, _) = mean(&flair, csf);
    let (bg, bg_sd) = mean(&flair, 0);
    let (wm_f, _) = mean(&flair, wm);
    eprintln!("FLAIR CSF {csf_f:.4}, air {bg:.4} ± {bg_sd:.4}, WM {wm_f:.3}");
    assert!(
        (csf_f - bg).abs() < 2.0 * bg_sd,
        "CSF {csf_f} vs noise floor {bg} ± {bg_sd}"
    );
    // White matter well above the floor (FLAIR's 16-echo train reads it at SNR ≈ 10).
    assert!(wm_f > bg + 8.0 * bg_sd, "WM {wm_f} vs floor {bg} ± {bg_sd}");
}
