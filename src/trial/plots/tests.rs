use super::*;

fn decode(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
    let dec = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width as usize, info.height as usize, buf)
}

fn pixel(img: &(usize, usize, Vec<u8>), x: f64, y: f64) -> Rgb {
    let (x, y) = (x.round() as usize, y.round() as usize);
    let i = (y * img.0 + x) * 3;
    [img.2[i], img.2[i + 1], img.2[i + 2]]
}

/// Must-show 5.
#[test]
fn roc_png_decodes_with_diagonal_and_curve_colours() {
    let perfect = vec![(0.0, 0.0), (0.0, 1.0), (1.0, 1.0)];
    let convex = vec![(0.0, 0.0), (0.1, 0.6), (0.4, 0.9), (1.0, 1.0)];
    let png = plot_roc(&[
        ("mas25".into(), perfect, 1.0),
        ("mas100".into(), convex, 0.83),
    ]);
    let img = decode(&png);
    assert_eq!((img.0, img.1), ROC_SIZE_PX);
    let f = roc_frame();
    // On the chance diagonal, away from curves, grid and legend.
    for t in [0.3, 0.5, 0.7] {
        assert_eq!(
            pixel(&img, f.px(t), f.py(t)),
            DIAGONAL_RGB,
            "diagonal at {t}"
        );
    }
    // On the second curve's first segment, and the first curve's top edge.
    assert_eq!(pixel(&img, f.px(0.05), f.py(0.3)), PALETTE[1]);
    assert_eq!(pixel(&img, f.px(0.5), f.py(1.0)), PALETTE[0]);
    // Empty plot area is white; the frame (where no curve runs along it) is black.
    assert_eq!(pixel(&img, f.px(0.7), f.py(0.5)), WHITE);
    assert_eq!(pixel(&img, f.right, f.py(0.5)), BLACK);
    // The legend swatches are drawn in the lower right.
    let legend = (400..530).flat_map(|y| (300..580).map(move |x| (x, y)));
    let n1 = legend
        .filter(|&(x, y)| pixel(&img, x as f64, y as f64) == PALETTE[1])
        .count();
    assert!(n1 >= 25 * 3, "legend swatch pixels {n1}");
}

#[test]
fn xy_png_decodes_on_linear_and_log_axes() {
    let s = vec![(
        "water".to_string(),
        vec![(25.0, 0.9), (50.0, 1.27), (100.0, 1.8), (200.0, 2.55)],
    )];
    for log in [false, true] {
        let img = decode(&plot_xy("D' VS DOSE", "MAS", "D'", &s, log));
        assert_eq!((img.0, img.1), XY_SIZE_PX);
        let n = img.2.chunks(3).filter(|p| p == &PALETTE[0]).count();
        assert!(n > 500, "series pixels {n}");
    }
    // Degenerate inputs still give a valid image.
    let img = decode(&plot_xy("EMPTY", "X", "Y", &[], true));
    assert_eq!((img.0, img.1), XY_SIZE_PX);
    let one = vec![("one".to_string(), vec![(1.0, 1.0)])];
    decode(&plot_xy("ONE", "X", "Y", &one, false));
}

#[test]
fn axis_ticks_are_nice() {
    // Range 1.65 / 5 = 0.33 → step 0.2.
    let (r, t) = axis(0.9, 2.55, false);
    assert!(
        (r.0 - 0.8).abs() < 1e-12 && (r.1 - 2.6).abs() < 1e-12,
        "{r:?}"
    );
    assert_eq!(t.len(), 10);
    let (r, t) = axis(25.0, 200.0, true);
    assert!((r.0 - 20f64.log10()).abs() < 1e-12 && (r.1 - 200f64.log10()).abs() < 1e-12);
    assert_eq!(
        t.iter().map(|&v| fmt_tick(v)).collect::<Vec<_>>(),
        ["20", "50", "100", "200"]
    );
    // Wide ranges keep whole decades.
    let (r, _) = axis(0.5, 3000.0, true);
    assert_eq!(r, (-1.0, 4.0));
    assert_eq!(fmt_tick(0.2), "0.2");
    assert_eq!(fmt_tick(0.05), "0.05");
}

#[test]
fn text_is_drawn_in_the_glyph_box() {
    let mut c = Canvas::new(40, 20);
    c.text(1, 1, "1", BLACK);
    // '1' has its stem in glyph column 2, rows 0–6 → pixels x = 1 + 4..=5.
    assert_eq!(c.get(5, 5), BLACK);
    assert_eq!(c.get(1, 10), WHITE);
}

/// Writes sample plots to the temp dir for a human to look at:
/// `cargo test --release --lib trial::plots::tests::write_sample_plots -- --ignored`.
#[test]
#[ignore]
fn write_sample_plots() {
    let dir = std::env::temp_dir();
    let roc = plot_roc(&[
        (
            "mas25".into(),
            vec![(0.0, 0.0), (0.2, 0.5), (0.5, 0.8), (1.0, 1.0)],
            0.71,
        ),
        (
            "mas100".into(),
            vec![(0.0, 0.0), (0.1, 0.6), (0.4, 0.9), (1.0, 1.0)],
            0.83,
        ),
    ]);
    std::fs::write(dir.join("synthcohort_roc.png"), roc).unwrap();
    let s = vec![
        (
            "water".to_string(),
            vec![(2.0, 0.9), (4.0, 1.27), (8.0, 1.8), (16.0, 2.55)],
        ),
        (
            "lung".to_string(),
            vec![(2.0, 0.7), (4.0, 0.85), (8.0, 0.95), (16.0, 1.0)],
        ),
    ];
    let xy = plot_xy("d′ vs dose", "CTDIvol (mGy)", "d′", &s, true);
    std::fs::write(dir.join("synthcohort_dprime.png"), xy).unwrap();
}
