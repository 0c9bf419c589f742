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

/// Whether `c` is within one pixel of (x, y): plotters rounds line ends its own way.
fn near(img: &(usize, usize, Vec<u8>), (x, y): (f64, f64), c: Rgb) -> bool {
    (-1..=1).any(|dy| (-1..=1).any(|dx| pixel(img, x + dx as f64, y + dy as f64) == c))
}

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];

/// Must-show 5.
#[test]
fn roc_png_decodes_with_diagonal_and_curve_colours() {
    let perfect = vec![(0.0, 0.0), (0.0, 1.0), (1.0, 1.0)];
    let convex = vec![(0.0, 0.0), (0.1, 0.6), (0.4, 0.9), (1.0, 1.0)];
    let (png, f) = render_roc(&[
        ("mas25".into(), perfect, 1.0),
        ("mas100".into(), convex, 0.83),
    ]);
    let img = decode(&png);
    assert_eq!((img.0, img.1), ROC_SIZE_PX);
    // The plot area is where the layout puts it: 500 × 500 from (80, 30).
    assert_eq!(
        (f.left, f.top, f.right, f.bottom),
        (80.0, 30.0, 579.0, 529.0)
    );
    // On the chance diagonal, away from curves, grid and legend.
    for t in [0.3, 0.5, 0.7] {
        assert!(near(&img, f.px(t, t), DIAGONAL_RGB), "diagonal at {t}");
    }
    // On the second curve's first segment, and just under the first curve's top edge.
    assert!(near(&img, f.px(0.05, 0.3), PALETTE[1]));
    assert!(near(&img, f.px(0.5, 1.0), PALETTE[0]));
    // Empty plot area is white; the frame (where no curve runs along it) is black.
    assert_eq!(pixel(&img, f.px(0.7, 0.5).0, f.px(0.7, 0.5).1), WHITE);
    assert_eq!(pixel(&img, f.right, f.px(0.0, 0.5).1), BLACK);
    // The legend swatches are drawn in the lower right.
    let legend = (400..530).flat_map(|y| (300..580).map(move |x| (x, y)));
    let n1 = legend
        .filter(|&(x, y)| pixel(&img, x as f64, y as f64) == PALETTE[1])
        .count();
    assert!(n1 >= 40, "legend swatch pixels {n1}");
}

#[test]
fn xy_png_decodes_on_linear_and_log_axes() {
    let s = vec![(
        "water".to_string(),
        vec![(25.0, 0.9), (50.0, 1.27), (100.0, 1.8), (200.0, 2.55)],
    )];
    for log in [false, true] {
        let (png, f) = render_xy("d′ vs dose", "mAs", "d′", &s, log);
        let img = decode(&png);
        assert_eq!((img.0, img.1), XY_SIZE_PX);
        let n = img.2.chunks(3).filter(|p| p == &PALETTE[0]).count();
        assert!(n > 500, "series pixels {n}");
        // Every data point carries its marker where the axes put it.
        for &(x, y) in &s[0].1 {
            assert!(near(&img, f.px(x, y), PALETTE[0]), "({x}, {y}) log {log}");
        }
    }
    // Degenerate inputs still give a valid image.
    let img = decode(&plot_xy("EMPTY", "X", "Y", &[], true));
    assert_eq!((img.0, img.1), XY_SIZE_PX);
    let one = vec![("one".to_string(), vec![(1.0, 1.0)])];
    decode(&plot_xy("ONE", "X", "Y", &one, false));
}

/// A rising curve leaves the upper-left and lower-right corners free; a falling one the
/// other two. The legend's swatch must land in a free corner.
#[test]
fn legend_goes_where_the_data_are_not() {
    let rising = vec![("a".to_string(), vec![(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)])];
    let falling = vec![("a".to_string(), vec![(1.0, 3.0), (2.0, 2.0), (3.0, 1.0)])];
    for (s, free) in [(rising, [(0, 0), (1, 1)]), (falling, [(1, 0), (0, 1)])] {
        let (png, f) = render_xy("t", "x", "y", &s, false);
        let img = decode(&png);
        // Swatch pixels (series colour) per quadrant, away from the curve's own path.
        let mut count = [[0usize; 2]; 2];
        for y in f.top as usize..f.bottom as usize {
            for x in f.left as usize..f.right as usize {
                if pixel(&img, x as f64, y as f64) != PALETTE[0] {
                    continue;
                }
                let (u, v) = (
                    (x as f64 - f.left) / (f.right - f.left),
                    (y as f64 - f.top) / (f.bottom - f.top),
                );
                // Only pixels well off the diagonal the curve follows.
                let off = if free[0] == (0, 0) {
                    (u - (1.0 - v)).abs()
                } else {
                    (u - v).abs()
                };
                if off > 0.3 {
                    count[(v > 0.5) as usize][(u > 0.5) as usize] += 1;
                }
            }
        }
        let in_free: usize = free.iter().map(|&(r, c)| count[r][c]).sum();
        assert!(
            in_free >= 40,
            "swatch pixels in free corners {in_free}: {count:?}"
        );
    }
}

/// Same inputs, same bytes: text comes from the embedded font, nothing from the machine.
#[test]
fn plots_are_byte_identical_across_renders_and_carry_text() {
    let s = vec![("arm A".to_string(), vec![(2.0, 0.9), (4.0, 1.3)])];
    let a = plot_xy("d′ vs dose", "CTDIvol (mGy)", "d′", &s, true);
    let b = plot_xy("d′ vs dose", "CTDIvol (mGy)", "d′", &s, true);
    assert_eq!(a, b);
    // The title band above the plot area holds dark (text) pixels; a blank title does not.
    let dark = |png: &[u8]| {
        let img = decode(png);
        (0..21)
            .flat_map(|y| (0..img.0).map(move |x| (x, y)))
            .filter(|&(x, y)| pixel(&img, x as f64, y as f64).iter().all(|&c| c < 128))
            .count()
    };
    assert!(dark(&a) > 30, "title pixels {}", dark(&a));
    assert_eq!(dark(&plot_xy("", "CTDIvol (mGy)", "d′", &s, true)), 0);
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
