//! Times our parallel-beam projection and FBP of the 256² Shepp–Logan phantom (360 views
//! over 180°), for `benches/peers/ct_peers.py`. Prints one JSON line; with `--out DIR`
//! also writes phantom.f32, sinogram.f32 and recon.f32 (little-endian, row-major y, x).
//!
//! cargo run --release --example ct_phantom -- [--n 256] [--views 360] [--out DIR]

use std::time::Instant;

use synthcohort::acquire::ct::phantom::{rasterize_ellipses, SHEPP_LOGAN};
use synthcohort::acquire::ct::{fbp_parallel, project_parallel, ParallelGeometry, Plane, Window};

fn write_f32(path: &std::path::Path, v: &[f32]) -> std::io::Result<()> {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let n: usize = arg("--n").and_then(|s| s.parse().ok()).unwrap_or(256);
    let views: usize = arg("--views").and_then(|s| s.parse().ok()).unwrap_or(360);
    let plane = Plane::centered(n, n, [2.0 / n as f64; 2]);
    let img = rasterize_ellipses(SHEPP_LOGAN, &plane, 4);
    // Detectors cover the image diagonal (√2·n, odd) so the corners are reconstructed too.
    let nd = ((n as f64 * std::f64::consts::SQRT_2).ceil() as usize) | 1;
    let geo = ParallelGeometry::half_turn(views, nd, 2.0 / n as f64);
    // Warm-up: starts the rayon pool and touches the pages, as a library caller would have.
    let _ = fbp_parallel(
        &project_parallel(&img, &plane, &geo),
        &geo,
        &plane,
        Window::Ramp,
    );
    let t0 = Instant::now();
    let sino = project_parallel(&img, &plane, &geo);
    let t1 = Instant::now();
    let rec = fbp_parallel(&sino, &geo, &plane, Window::Ramp);
    let t2 = Instant::now();
    let rmse = (img
        .iter()
        .zip(&rec)
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum::<f64>()
        / img.len() as f64)
        .sqrt();
    if let Some(dir) = arg("--out") {
        let d = std::path::Path::new(&dir);
        std::fs::create_dir_all(d)?;
        write_f32(&d.join("phantom.f32"), &img)?;
        write_f32(&d.join("sinogram.f32"), &sino)?;
        write_f32(&d.join("recon.f32"), &rec)?;
    }
    println!(
        "{{\"n\": {n}, \"views\": {views}, \"project_s\": {:.6}, \"fbp_s\": {:.6}, \"rmse\": {rmse:.6}, \"threads\": {}}}",
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        rayon::current_num_threads()
    );
    Ok(())
}
