//! The scan field of view: the circle the fan covers, the recon square's corners padded
//! outside it, a body wider than it imaged with truncation (and a warning), and the
//! extended-FOV reconstruction recovering the skin line
//! (`cargo test --release --test ct_scan_field -- --nocapture` prints the figures).

mod common;

use common::ct_subject::water_ellipse;
use synthcohort::acquire::ct::{self, protocol::CtProtocol};
use synthcohort::volume::{Grid, Volume};

/// The scan field's radius from the geometry alone: the fan's half-angle through a flat
/// detector of `cols` × `pitch` at isocentre, seen from `sid`.
fn field_radius(cols: usize, pitch: f64, sid: f64) -> f64 {
    sid * (0.5 * cols as f64 * pitch / sid).atan().sin()
}

#[test]
fn default_scanner_covers_500_mm_and_a_narrow_detector_is_refused_with_both_numbers() {
    let p = CtProtocol::preset("generic64").unwrap();
    let r = field_radius(p.detector_cols, p.pixel_mm, p.sid_mm);
    eprintln!("generic64 scan field: {:.1} mm diameter", 2.0 * r);
    assert!((p.scan_field_radius_mm() - r).abs() < 1e-9);
    assert!(2.0 * r >= 500.0, "{}", 2.0 * r);
    let ok = CtProtocol {
        fov_mm: 500.0,
        matrix: 512,
        ..p.clone()
    };
    assert!(ok.validate().is_empty(), "{:?}", ok.validate());
    let narrow = CtProtocol {
        detector_cols: 600,
        fov_mm: 450.0,
        ..p.clone()
    };
    let want = 2.0 * field_radius(600, p.pixel_mm, p.sid_mm);
    let errs = narrow.validate();
    let msg = &errs.iter().find(|(f, _)| f == "fov_mm").expect("refused").1;
    eprintln!("fov_mm: {msg}");
    assert!(msg.contains("reconstruction FOV 450 mm"), "{msg}");
    assert!(
        msg.contains(&format!("scan field of view {want:.1} mm")),
        "{msg}"
    );
    // Both numbers right: the FOV really is wider than the field.
    assert!(want < 450.0);
    // With the extended field (1.5× the radius) the same FOV fits.
    let ext = CtProtocol {
        extended_fov: true,
        ..narrow
    };
    assert!(ext.validate().is_empty(), "{:?}", ext.validate());
}

/// Water discs on a 600 mm grid imaged with the 500 mm scan field, noise off.
fn scan(r: f64, fov: f64, extended: bool) -> (Volume<f32>, Option<f64>) {
    let grid = Grid::centered([240, 240, 1], [2.5, 2.5, 5.0]);
    let mut p = CtProtocol::preset("generic64").unwrap();
    p.noise = false;
    p.matrix = 240;
    p.fov_mm = fov;
    p.slice_mm = 5.0;
    p.extended_fov = extended;
    let r = ct::acquire(&water_ellipse(&grid, r, r), &p, 1).unwrap();
    (r.image, r.truncation_mm)
}

/// Mean HU over the pixels between radii `r0` and `r1` mm.
fn annulus(img: &Volume<f32>, r0: f64, r1: f64) -> f64 {
    let g = &img.grid;
    let v: Vec<f64> = (0..g.dims[0] * g.dims[1])
        .filter_map(|q| {
            let w = g.world(q % g.dims[0], q / g.dims[0], 0);
            let r = w[0].hypot(w[1]);
            (r >= r0 && r < r1).then(|| img.data[q] as f64)
        })
        .collect();
    v.iter().sum::<f64>() / v.len() as f64
}

/// Radius (mm) where the profile along +x falls through −500 HU, outside `from` mm.
fn skin_line(img: &Volume<f32>, from: f64) -> f64 {
    let g = &img.grid;
    let j = g.dims[1] / 2;
    let xs: Vec<(f64, f64)> = (0..g.dims[0])
        .map(|i| (g.world(i, j, 0)[0], img.get(i, j, 0) as f64))
        .filter(|(x, _)| *x > from)
        .collect();
    for w in xs.windows(2) {
        let ((x0, a), (x1, b)) = (w[0], w[1]);
        if a > -500.0 && b <= -500.0 {
            return x0 + (a + 500.0) / (a - b) * (x1 - x0);
        }
    }
    f64::NAN
}

#[test]
fn corners_are_padded_and_a_body_wider_than_the_field_is_truncated_unless_extended() {
    // Inside the field: no truncation, corners padded, water reads water.
    let (img, trunc) = scan(150.0, 500.0, false);
    let g = &img.grid;
    assert_eq!(trunc, None);
    assert_eq!(img.get(0, 0, 0), -1024.0, "corner");
    let inside = annulus(&img, 0.0, 120.0);
    eprintln!(
        "150 mm disc: water {inside:.1} HU, corner {}",
        img.get(0, 0, 0)
    );
    assert!(inside.abs() < 10.0);
    let r_field = CtProtocol::preset("generic64")
        .unwrap()
        .scan_field_radius_mm();
    for q in 0..g.dims[0] * g.dims[1] {
        let w = g.world(q % g.dims[0], q / g.dims[0], 0);
        if w[0].hypot(w[1]) > r_field {
            assert_eq!(img.data[q], -1024.0);
        }
    }

    // A 290 mm disc (580 mm wide) against the 250 mm field.
    let (cut, trunc) = scan(290.0, 500.0, false);
    let (ext, _) = scan(290.0, 700.0, true);
    let trunc = trunc.expect("truncation reported");
    let rim_cut = annulus(&cut, 200.0, 240.0);
    let rim_ext = annulus(&ext, 200.0, 240.0);
    let centre_cut = annulus(&cut, 0.0, 100.0);
    let centre_ext = annulus(&ext, 0.0, 100.0);
    let skin = skin_line(&ext, 200.0);
    eprintln!(
        "290 mm disc, 250 mm field: truncation {trunc:.1} mm; water at r 200–240 mm reads {rim_cut:.0} HU truncated, {rim_ext:.0} HU extended; centre {centre_cut:.0} / {centre_ext:.0} HU; extended skin line at {skin:.1} mm (true 290)"
    );
    if let Ok(dir) = std::env::var("SYNTHCOHORT_FIGURES") {
        save_side_by_side(
            &[&cut, &ext],
            &std::path::Path::new(&dir).join("ct_truncation.png"),
        );
    }
    assert!((trunc - 40.0).abs() < 2.0, "{trunc}");
    // Truncation: a bright rim at the field's edge and cupping inside; the extension removes
    // most of both and finds the skin line outside the field.
    assert!(rim_cut > 100.0, "{rim_cut}");
    assert!(
        rim_ext.abs() < 0.3 * rim_cut.abs(),
        "{rim_ext} vs {rim_cut}"
    );
    assert!((skin - 290.0).abs() < 10.0, "{skin}");
}

/// Grey PNG of the images side by side at one pixel per mm (window −400..+400 HU), for the
/// README (`SYNTHCOHORT_FIGURES=docs cargo test --release --test ct_scan_field`).
fn save_side_by_side(imgs: &[&Volume<f32>], path: &std::path::Path) {
    let side = 700usize;
    let mut px = vec![0u8; side * imgs.len() * side];
    for (n, img) in imgs.iter().enumerate() {
        let g = &img.grid;
        for y in 0..side {
            for x in 0..side {
                let w = [x as f64 - 350.0, 350.0 - y as f64, 0.0];
                let v = g.to_voxel(w).map(|c| c.round());
                let inside = (0..2).all(|a| v[a] >= 0.0 && (v[a] as usize) < g.dims[a]);
                let hu = if inside {
                    img.get(v[0] as usize, v[1] as usize, 0)
                } else {
                    -1024.0
                };
                px[y * side * imgs.len() + n * side + x] =
                    (((hu + 400.0) / 800.0).clamp(0.0, 1.0) * 255.0) as u8;
            }
        }
    }
    let f = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(
        std::io::BufWriter::new(f),
        (side * imgs.len()) as u32,
        side as u32,
    );
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(&px).unwrap();
}
