//! CT simulator benchmarks: parallel-beam projection and FBP of a 256² Shepp–Logan phantom
//! (360 views over 180°), and one 256×256×128 volume through a 360-view cone scan with a
//! 900×64 detector (timed once, not by criterion, to keep the run moderate; prints seconds
//! and rays·samples per second).

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use synthcohort::acquire::ct::phantom::{rasterize_ellipses, SHEPP_LOGAN};
use synthcohort::acquire::ct::{
    fbp_parallel, fdk, project_cone, project_parallel, ConeGeometry, ParallelGeometry, Plane,
    Window,
};
use synthcohort::volume::Grid;

fn parallel(c: &mut Criterion) {
    let n = 256;
    let plane = Plane::centered(n, n, [2.0 / n as f64; 2]);
    let img = rasterize_ellipses(SHEPP_LOGAN, &plane, 4);
    let geo = ParallelGeometry::half_turn(360, 363, 2.0 / n as f64);
    let sino = project_parallel(&img, &plane, &geo);
    let mut g = c.benchmark_group("ct_parallel_256_360");
    g.sample_size(10);
    g.bench_function("project", |b| {
        b.iter(|| black_box(project_parallel(&img, &plane, &geo)))
    });
    g.bench_function("fbp_ramp", |b| {
        b.iter(|| black_box(fbp_parallel(&sino, &geo, &plane, Window::Ramp)))
    });
    g.finish();
}

/// Whether the command line's filter (as for criterion's groups) selects the hand-timed
/// benchmark `name`, so `cargo bench --bench ct -- axial_scan` runs only that one.
fn selected(name: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

fn cone(_c: &mut Criterion) {
    if !selected("cone") {
        return;
    }
    // A 256×256×128 ellipsoid-filled volume (1 mm × 1 mm × 2 mm voxels), generic64-like
    // geometry: SID 541 mm, 900×64 detector at 0.57 mm (isocentre), 360 views.
    let grid = Grid::centered([256, 256, 128], [1.0, 1.0, 2.0]);
    let mut vol = vec![[0.0f32; 1]; grid.len()];
    for (idx, v) in vol.iter_mut().enumerate() {
        let [i, j, k] = grid.ijk(idx);
        let w = grid.world(i, j, k);
        if (w[0] / 110.0).powi(2) + (w[1] / 90.0).powi(2) + (w[2] / 120.0).powi(2) < 1.0 {
            v[0] = 1.0;
        }
    }
    let geo = ConeGeometry {
        views: 360,
        sid_mm: 541.0,
        cols: 900,
        rows: 64,
        pixel_mm: 0.57,
        z_mm: 0.0,
    };
    let t0 = Instant::now();
    let (proj, samples) = project_cone(&vol, &grid, &geo);
    let tp = t0.elapsed().as_secs_f64();
    let rays = (geo.views * geo.rows * geo.cols) as f64;
    eprintln!(
        "cone projection 256×256×128, 360 views, 900×64: {tp:.2} s, {:.3e} rays/s, {:.3e} samples/s ({} threads)",
        rays / tp,
        samples as f64 / tp,
        rayon::current_num_threads()
    );
    let plane = Plane::centered(256, 256, [1.0, 1.0]);
    let zs: Vec<f64> = (0..16).map(|k| -15.0 + 2.0 * k as f64).collect();
    let sino: Vec<f32> = proj.iter().map(|v| v[0]).collect();
    let t1 = Instant::now();
    black_box(fdk(&sino, &geo, &plane, &zs, Window::Standard));
    eprintln!(
        "FDK 256²×16 slices from 360×64×900: {:.2} s",
        t1.elapsed().as_secs_f64()
    );
}

/// A 256×256×128 torso-like object (muscle ellipse, fat ring, lungs, a vertebral column and
/// ribs of cortical bone).
fn torso_object() -> synthcohort::tissue::object::CtMaps {
    use synthcohort::tissue::object::CtMaps;
    use synthcohort::volume::Volume;
    let grid = Grid::centered([256, 256, 128], [1.4, 1.4, 2.0]);
    let materials = vec!["air", "adipose", "muscle", "lung", "cortical_bone"];
    let mut mat = Volume::filled(grid.clone(), 0u8);
    let mut hu = Volume::filled(grid.clone(), -1000.0f32);
    for idx in 0..grid.len() {
        let [i, j, k] = grid.ijk(idx);
        let w = grid.world(i, j, k);
        let e = |a: f64, b: f64, cx: f64, cy: f64| {
            ((w[0] - cx) / a).powi(2) + ((w[1] - cy) / b).powi(2)
        };
        let (m, h) = if e(15.0, 15.0, 0.0, -60.0) < 1.0
            || (e(150.0, 105.0, 0.0, 0.0) < 1.0
                && e(142.0, 97.0, 0.0, 0.0) >= 1.0
                && (k / 8) % 2 == 0)
        {
            (4, 1000.0)
        } else if e(55.0, 60.0, -65.0, 5.0) < 1.0 || e(55.0, 60.0, 65.0, 5.0) < 1.0 {
            (3, -820.0)
        } else if e(140.0, 95.0, 0.0, 0.0) < 1.0 {
            (2, 40.0)
        } else if e(170.0, 120.0, 0.0, 0.0) < 1.0 {
            (1, -100.0)
        } else {
            (0, -1000.0)
        };
        mat.data[idx] = m;
        hu.data[idx] = h;
    }
    let density = Volume::from_vec(
        grid.clone(),
        mat.data
            .iter()
            .zip(&hu.data)
            .map(|(&m, &h)| {
                synthcohort::tissue::density_for_hu(materials[m as usize], h as f64) as f32
            })
            .collect(),
    );
    CtMaps {
        hu,
        density,
        material: mat,
        materials,
        perfusion: None,
    }
}

/// The torso scanned with the bone correction off (the scan as it was before the correction
/// existed) and on: the correction's cost as a ratio, timed once each in the same run.
fn bone_correction_cost(mode: synthcohort::acquire::ct::ScanMode) {
    use synthcohort::acquire::ct::{acquire, CtProtocol};
    let obj = torso_object();
    let mut p = CtProtocol::preset("generic64").unwrap();
    p.scan_mode = mode;
    p.views = 360;
    p.matrix = 256;
    p.slice_mm = 2.0;
    let mut secs = [0.0; 2];
    for (n, on) in [false, true].into_iter().enumerate() {
        p.bone_correction = on;
        let t = Instant::now();
        black_box(acquire(&obj, &p, 1).expect("scan"));
        secs[n] = t.elapsed().as_secs_f64();
    }
    eprintln!(
        "{mode:?} scan 256×256×128, 360 views, 900×64: bone correction off {:.1} s, on {:.1} s, ratio {:.2} ({} threads)",
        secs[0],
        secs[1],
        secs[1] / secs[0],
        rayon::current_num_threads()
    );
}

fn cone_scan(_c: &mut Criterion) {
    if selected("cone_scan") {
        bone_correction_cost(synthcohort::acquire::ct::ScanMode::Cone);
    }
}

fn axial_scan(_c: &mut Criterion) {
    if selected("axial_scan") {
        bone_correction_cost(synthcohort::acquire::ct::ScanMode::Axial);
    }
}

/// The torso as a circular cone scan (the issue-16 reference) and as a helical scan at pitch
/// 1 with angular + longitudinal tube-current modulation and scatter, bone correction on in
/// both, timed once each in the same run: the helical scan's cost as a ratio.
fn helical_scan(_c: &mut Criterion) {
    use synthcohort::acquire::ct::{acquire, CtProtocol, ScanMode};
    if !selected("helical_scan") {
        return;
    }
    let obj = torso_object();
    let mut p = CtProtocol::preset("generic64").unwrap();
    p.views = 360;
    p.matrix = 256;
    p.slice_mm = 2.0;
    let mut secs = [0.0; 2];
    for (n, helical) in [false, true].into_iter().enumerate() {
        if helical {
            p.scan_mode = ScanMode::Helical;
            p.pitch = 1.0;
            p.tube_current_modulation.angular = true;
            p.tube_current_modulation.longitudinal = true;
            p.scatter = true;
        } else {
            p.scan_mode = ScanMode::Cone;
        }
        let t = Instant::now();
        black_box(acquire(&obj, &p, 1).expect("scan"));
        secs[n] = t.elapsed().as_secs_f64();
    }
    eprintln!(
        "256×256×128, 360 views, 900×64, bone correction on: cone {:.1} s, helical pitch 1 + TCM + scatter {:.1} s, ratio {:.2} ({} threads)",
        secs[0],
        secs[1],
        secs[1] / secs[0],
        rayon::current_num_threads()
    );
}

criterion_group!(benches, parallel, cone, cone_scan, axial_scan, helical_scan);
criterion_main!(benches);
