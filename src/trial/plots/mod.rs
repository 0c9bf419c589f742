//! PNG plots: ROC curves per arm and d′ against dose (also the training-loss plot).
//!
//! Drawn with `plotters` into an RGB buffer and encoded with `png`. Text is rendered by
//! ab_glyph from DejaVu Sans embedded in the binary (`assets/fonts`, Bitstream Vera
//! licence), never from the machine's fonts, so the same inputs give the same bytes on
//! every machine. Ticks are chosen here (1–2–5 steps, log decades), not by plotters, so the
//! axes do not change with the plotting library's heuristics.

use std::sync::Once;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

type Rgb = [u8; 3];

/// One arm's ROC curve for [`plot_roc`]: (arm, (FPR, TPR) points, AUC).
pub type RocCurve = (String, Vec<(f64, f64)>, f64);

/// Colour of the ROC chance diagonal.
pub const DIAGONAL_RGB: Rgb = [150, 150, 150];
/// Series colours in order (Okabe–Ito, distinguishable with colour-vision deficiencies).
pub const PALETTE: [Rgb; 8] = [
    [0, 114, 178],
    [213, 94, 0],
    [0, 158, 115],
    [204, 121, 167],
    [230, 159, 0],
    [86, 180, 233],
    [0, 0, 0],
    [240, 228, 66],
];
/// (width, height) of [`plot_roc`]'s image in pixels.
pub const ROC_SIZE_PX: (usize, usize) = (600, 600);
/// (width, height) of [`plot_xy`]'s image in pixels.
pub const XY_SIZE_PX: (usize, usize) = (720, 520);
const GRID: Rgb = [228, 228, 228];
const FONT: &str = "sans-serif";
const FONT_PX: f64 = 15.0;
const TITLE_PX: f64 = 18.0;
/// Width of data curves in pixels.
const CURVE_PX: u32 = 3;

static FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are compiled in; a parse failure would be a broken build, not an input.
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES)
            .unwrap_or_else(|_| panic!("embedded DejaVu Sans does not parse"));
    });
}

fn colour(c: Rgb) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// Pixel margins around the plot area: (left, top, right, bottom).
type Margins = (u32, u32, u32, u32);

/// Where a rendered plot's area lies: its pixel rectangle and the plot-coordinate ranges
/// (log10 of data on log axes) it spans.
struct PixelMap {
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
    x: (f64, f64),
    y: (f64, f64),
    /// Read by the tests' data-to-pixel mapping.
    #[cfg_attr(not(test), allow(dead_code))]
    log: bool,
}

impl PixelMap {
    /// Pixel position of a plot-coordinate point (to within plotters' own rounding, 1 px).
    fn at(&self, (x, y): (f64, f64)) -> (f64, f64) {
        (
            self.left + (x - self.x.0) / (self.x.1 - self.x.0) * (self.right - self.left),
            self.bottom - (y - self.y.0) / (self.y.1 - self.y.0) * (self.bottom - self.top),
        )
    }

    /// Pixel position of a data point.
    #[cfg(test)]
    fn px(&self, x: f64, y: f64) -> (f64, f64) {
        let t = |v: f64| if self.log { v.log10() } else { v };
        self.at((t(x), t(y)))
    }
}

/// Everything one chart needs: size, layout, axes and their ticks (plot coordinates).
struct Axes<'a> {
    size: (usize, usize),
    margins: Margins,
    x: (f64, f64),
    y: (f64, f64),
    x_ticks: Vec<f64>,
    y_ticks: Vec<f64>,
    log: bool,
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
}

/// One polyline: plot-coordinate points, colour, line width, marker half-size (0: none).
struct Series {
    pts: Vec<(f64, f64)>,
    rgb: Rgb,
    width: u32,
    marker: i32,
}

/// Where the legend goes: one of the plot area's corners, as plotters names them.
type Corner = SeriesLabelPosition;

/// Draws axes, series and legend into a fresh RGB buffer; returns the PNG and the map.
fn render(
    a: &Axes,
    series: &[Series],
    legend: &[(String, Rgb)],
    corner: impl Fn(&PixelMap, (i32, i32)) -> Corner,
) -> (Vec<u8>, PixelMap) {
    register_font();
    let (w, h) = a.size;
    let mut buf = vec![255u8; w * h * 3];
    let map = draw(&mut buf, a, series, legend, corner)
        .unwrap_or_else(|e| panic!("drawing into an in-memory bitmap failed: {e}"));
    (encode_png(w, h, &buf), map)
}

fn draw(
    buf: &mut [u8],
    a: &Axes,
    series: &[Series],
    legend: &[(String, Rgb)],
    corner: impl Fn(&PixelMap, (i32, i32)) -> Corner,
) -> Result<PixelMap, Box<dyn std::error::Error>> {
    let (w, h) = a.size;
    let root = BitMapBackend::with_buffer(buf, (w as u32, h as u32)).into_drawing_area();
    let (ml, mt, mr, mb) = a.margins;
    let font = (FONT, FONT_PX).into_font();
    let title = (FONT, TITLE_PX).into_font();
    root.draw(&Text::new(
        a.title.to_string(),
        ((ml as i32 + w as i32 - mr as i32) / 2, (mt as i32 - 20) / 2),
        title.color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top)),
    ))?;
    let mut chart = ChartBuilder::on(&root)
        .margin_top(mt)
        .margin_right(mr)
        .x_label_area_size(mb)
        .y_label_area_size(ml)
        .build_cartesian_2d(a.x.0..a.x.1, a.y.0..a.y.1)?;
    // Axis lines only: ticks, tick labels and axis titles are placed below, at our own
    // positions (plotters would pick its own ticks and crowd the titles to the edge).
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(0)
        .draw()?;
    let grid = ShapeStyle::from(&colour(GRID)).stroke_width(1);
    for &v in &a.x_ticks {
        chart.draw_series(LineSeries::new([(v, a.y.0), (v, a.y.1)], grid))?;
    }
    for &v in &a.y_ticks {
        chart.draw_series(LineSeries::new([(a.x.0, v), (a.x.1, v)], grid))?;
    }
    for s in series {
        let style = ShapeStyle::from(&colour(s.rgb)).stroke_width(s.width);
        chart.draw_series(LineSeries::new(s.pts.iter().copied(), style))?;
        if s.marker > 0 {
            let m = s.marker;
            let fill = ShapeStyle::from(&colour(s.rgb)).filled();
            chart.draw_series(
                s.pts
                    .iter()
                    .map(|&p| EmptyElement::at(p) + Rectangle::new([(-m, -m), (m, m)], fill)),
            )?;
        }
    }
    // The frame over the grid and curve ends, as in a journal figure.
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    root.draw(&Rectangle::new(
        [(xs.start, ys.start), (xs.end - 1, ys.end - 1)],
        ShapeStyle::from(&BLACK).stroke_width(1),
    ))?;
    let tick_label = |v: f64| fmt_tick(if a.log { 10f64.powf(v) } else { v });
    let (bottom, left) = (ys.end - 1, xs.start);
    for &v in &a.x_ticks {
        let (x, _) = chart.backend_coord(&(v, a.y.0));
        root.draw(&PathElement::new(vec![(x, bottom), (x, bottom + 5)], BLACK))?;
        root.draw(&Text::new(
            tick_label(v),
            (x, bottom + 9),
            font.color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
    }
    for &v in &a.y_ticks {
        let (_, y) = chart.backend_coord(&(a.x.0, v));
        root.draw(&PathElement::new(vec![(left - 5, y), (left, y)], BLACK))?;
        root.draw(&Text::new(
            tick_label(v),
            (left - 9, y),
            font.color(&BLACK).pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }
    root.draw(&Text::new(
        a.x_label.to_string(),
        ((xs.start + xs.end) / 2, bottom + 32),
        font.color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top)),
    ))?;
    root.draw(&Text::new(
        a.y_label.to_string(),
        (left - 62, (ys.start + ys.end) / 2),
        font.color(&BLACK)
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Center, VPos::Top)),
    ))?;
    let map = PixelMap {
        left: xs.start as f64,
        top: ys.start as f64,
        right: (xs.end - 1) as f64,
        bottom: (ys.end - 1) as f64,
        x: a.x,
        y: a.y,
        log: a.log,
    };
    if !legend.is_empty() {
        let widest = legend
            .iter()
            .map(|(s, _)| {
                root.estimate_text_size(s, &TextStyle::from(font.clone()))
                    .map(|(w, _)| w)
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .max()
            .unwrap_or(0);
        // plotters' legend: 20 px rows, a swatch of about 24 px, margins of about 10 px.
        let size = (widest as i32 + 50, 22 * legend.len() as i32 + 10);
        for (label, rgb) in legend {
            let style = ShapeStyle::from(&colour(*rgb)).stroke_width(CURVE_PX);
            chart
                .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        chart
            .configure_series_labels()
            .position(corner(&map, size))
            .margin(10)
            .label_font(font.clone())
            .background_style(WHITE)
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(map)
}

fn encode_png(w: usize, h: usize, rgb: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        // Encoding into memory fails only on a size/format mismatch, a programming error.
        let mut wr = enc
            .write_header()
            .expect("PNG header for an in-memory image");
        wr.write_image_data(rgb)
            .expect("PNG data matches its header");
        wr.finish().expect("PNG finish");
    }
    out
}

/// Tick label with at most three significant digits and no trailing zeros.
fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let decimals = (2 - v.abs().log10().floor() as i64).clamp(0, 8) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Heckbert's "nice numbers": a step of 1, 2 or 5 × 10ᵏ giving about `target` intervals.
fn nice_step(range: f64, target: f64) -> f64 {
    let raw = range / target;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f < 1.5 {
        1.0
    } else if f < 3.5 {
        2.0
    } else if f < 7.5 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// (axis range in plot coordinates, tick positions in data units).
fn axis(min: f64, max: f64, log: bool) -> ((f64, f64), Vec<f64>) {
    if log {
        let (mut lo, mut hi) = (min.log10().floor(), max.log10().ceil());
        if hi <= lo {
            hi = lo + 1.0;
        }
        if !lo.is_finite() || !hi.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        let mantissas: &[f64] = if hi - lo <= 2.0 {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0]
        };
        let mut ticks = Vec::new();
        let mut e = lo;
        while e <= hi {
            for m in mantissas {
                let v = m * 10f64.powf(e);
                if v.log10() <= hi + 1e-9 {
                    ticks.push(v);
                }
            }
            e += 1.0;
        }
        // Snap the range to the 1–2–5 ticks just enclosing the data, so two octaves of dose
        // are not lost in two decades of axis.
        let tol = 1e-9;
        let a = ticks
            .iter()
            .map(|t| t.log10())
            .filter(|&t| t <= min.log10() + tol)
            .fold(lo, f64::max);
        let b = ticks
            .iter()
            .map(|t| t.log10())
            .filter(|&t| t >= max.log10() - tol)
            .fold(hi, f64::min);
        let (a, b) = if b > a { (a, b) } else { (lo, hi) };
        ticks.retain(|t| t.log10() >= a - tol && t.log10() <= b + tol);
        ((a, b), ticks)
    } else {
        let (mut lo, mut hi) = (min, max);
        if !(lo.is_finite() && hi.is_finite()) {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
            let pad = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
            lo -= pad;
            hi += pad;
        }
        let step = nice_step(hi - lo, 5.0);
        let (a, b) = ((lo / step).floor() * step, (hi / step).ceil() * step);
        let n = ((b - a) / step).round() as i64;
        let ticks = (0..=n).map(|k| a + k as f64 * step).collect();
        ((a, b), ticks)
    }
}

fn roc_axes() -> Axes<'static> {
    let ticks: Vec<f64> = (0..=5).map(|k| k as f64 / 5.0).collect();
    Axes {
        size: ROC_SIZE_PX,
        // A square 500 × 500 plot area.
        margins: (80, 30, 20, 70),
        x: (0.0, 1.0),
        y: (0.0, 1.0),
        x_ticks: ticks.clone(),
        y_ticks: ticks,
        log: false,
        title: "ROC",
        x_label: "False positive fraction",
        y_label: "True positive fraction",
    }
}

/// ROC curves, one per arm, over the chance diagonal; legend entries "arm (AUC 0.83)".
/// Each curve is (arm, (FPR, TPR) points as from [`super::roc_curve`], AUC).
pub fn plot_roc(curves: &[RocCurve]) -> Vec<u8> {
    render_roc(curves).0
}

fn render_roc(curves: &[RocCurve]) -> (Vec<u8>, PixelMap) {
    let mut series = vec![Series {
        pts: vec![(0.0, 0.0), (1.0, 1.0)],
        rgb: DIAGONAL_RGB,
        width: 1,
        marker: 0,
    }];
    let mut legend = Vec::new();
    for (k, (name, pts, auc)) in curves.iter().enumerate() {
        let rgb = PALETTE[k % PALETTE.len()];
        series.push(Series {
            pts: pts
                .iter()
                .copied()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .collect(),
            rgb,
            width: CURVE_PX,
            marker: 0,
        });
        legend.push((format!("{name} (AUC {auc:.2})"), rgb));
    }
    // ROC curves run through the upper left: the lower right is free.
    render(&roc_axes(), &series, &legend, |_, _| Corner::LowerRight)
}

/// Line-and-marker plot of `series` (name, (x, y) points, drawn in x order), on linear or
/// log–log axes (log: points with x ≤ 0 or y ≤ 0 are dropped). Used for d′ against dose.
/// The legend goes to the corner of the plot area that covers the fewest data.
pub fn plot_xy(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log_log: bool,
) -> Vec<u8> {
    render_xy(title, x_label, y_label, series, log_log).0
}

fn render_xy(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log_log: bool,
) -> (Vec<u8>, PixelMap) {
    let clean: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|(_, pts)| {
            let mut p: Vec<(f64, f64)> = pts
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .filter(|(x, y)| !log_log || (*x > 0.0 && *y > 0.0))
                .collect();
            p.sort_by(|a, b| a.0.total_cmp(&b.0));
            p
        })
        .collect();
    let all = || clean.iter().flatten();
    let fold = |sel: fn(&(f64, f64)) -> f64| {
        all()
            .map(sel)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            })
    };
    let (xmin, xmax) = fold(|p| p.0);
    let (ymin, ymax) = fold(|p| p.1);
    let (xr, xt) = axis(xmin, xmax, log_log);
    let (yr, yt) = axis(ymin, ymax, log_log);
    let t = |v: f64| if log_log { v.log10() } else { v };
    let axes = Axes {
        size: XY_SIZE_PX,
        margins: (90, 30, 25, 70),
        x: xr,
        y: yr,
        x_ticks: xt.iter().map(|&v| t(v)).collect(),
        y_ticks: yt.iter().map(|&v| t(v)).collect(),
        log: log_log,
        title,
        x_label,
        y_label,
    };
    let mut drawn = Vec::new();
    let mut legend = Vec::new();
    for (k, ((name, _), pts)) in series.iter().zip(&clean).enumerate() {
        let rgb = PALETTE[k % PALETTE.len()];
        drawn.push(Series {
            pts: pts.iter().map(|&(x, y)| (t(x), t(y))).collect(),
            rgb,
            width: CURVE_PX,
            marker: 4,
        });
        legend.push((name.clone(), rgb));
    }
    let corner = |map: &PixelMap, size: (i32, i32)| least_covered_corner(map, &drawn, size);
    render(&axes, &drawn, &legend, corner)
}

/// The plot-area corner whose legend box (`size` pixels, 10 px in from the frame) covers
/// the fewest data samples (points and 19 samples along each segment).
fn least_covered_corner(map: &PixelMap, series: &[Series], size: (i32, i32)) -> Corner {
    let px = |p: &(f64, f64)| {
        let (x, y) = map.at(*p);
        (x.round() as i32, y.round() as i32)
    };
    let (l, t) = (map.left as i32 + 10, map.top as i32 + 10);
    let (r, b) = (
        map.right as i32 - 10 - size.0,
        map.bottom as i32 - 10 - size.1,
    );
    let corners = [
        (Corner::UpperLeft, (l, t)),
        (Corner::UpperRight, (r, t)),
        (Corner::LowerRight, (r, b)),
        (Corner::LowerLeft, (l, b)),
    ];
    let mut samples = Vec::new();
    for s in series {
        let p: Vec<(i32, i32)> = s.pts.iter().map(px).collect();
        samples.extend(p.iter().map(|&(x, y)| (x as f64, y as f64)));
        for w in p.windows(2) {
            samples.extend((1..20).map(|k| {
                let f = k as f64 / 20.0;
                (
                    w[0].0 as f64 + f * (w[1].0 - w[0].0) as f64,
                    w[0].1 as f64 + f * (w[1].1 - w[0].1) as f64,
                )
            }));
        }
    }
    let covered = |&(cx, cy): &(i32, i32)| {
        samples
            .iter()
            .filter(|&&(x, y)| {
                x >= cx as f64
                    && x <= (cx + size.0) as f64
                    && y >= cy as f64
                    && y <= (cy + size.1) as f64
            })
            .count()
    };
    corners
        .into_iter()
        .min_by_key(|(_, at)| covered(at))
        .map(|(c, _)| c)
        .unwrap_or(Corner::UpperLeft)
}

#[cfg(test)]
mod tests;
