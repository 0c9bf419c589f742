//! PNG plots drawn pixel by pixel: ROC curves per arm and d′ against dose.
//!
//! No plotting crate: the figures are simple (axes, ticks, polylines, a legend), and a
//! built-in 5×7 bitmap font keeps the output byte-identical across machines and fonts.
//! Text is upper-case only (lower case is drawn as upper case).

type Rgb = [u8; 3];

/// One arm's ROC curve for [`plot_roc`]: (arm, (FPR, TPR) points, AUC).
pub type RocCurve = (String, Vec<(f64, f64)>, f64);

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
const GRID: Rgb = [228, 228, 228];
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
/// Font magnification: 5×7 glyphs drawn as 10×14 pixels, 12-pixel advance.
const SCALE: i64 = 2;
const ADVANCE: i64 = 6 * SCALE;

/// 5×7 glyph rows, bit 4 = leftmost column.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        ' ' => [0; 7],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '[' => [0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E],
        ']' => [0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        ',' => [0, 0, 0, 0, 0x0C, 0x04, 0x08],
        '-' | '−' | '–' => [0, 0, 0, 0x1F, 0, 0, 0],
        '+' => [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        '/' => [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        '\'' | '′' | '’' => [0x04, 0x04, 0x08, 0, 0, 0, 0],
        '=' => [0, 0, 0x1F, 0, 0x1F, 0, 0],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '_' => [0, 0, 0, 0, 0, 0, 0x1F],
        '×' => [0, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0],
        'Δ' => [0x04, 0x04, 0x0A, 0x0A, 0x11, 0x11, 0x1F],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04], // '?'
    }
}

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
    /// Pixels outside (x0, y0, x1, y1), inclusive, are not drawn.
    clip: (i64, i64, i64, i64),
}

impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        Canvas {
            w,
            h,
            px: vec![255; w * h * 3],
            clip: (0, 0, w as i64 - 1, h as i64 - 1),
        }
    }

    fn unclip(&mut self) {
        self.clip = (0, 0, self.w as i64 - 1, self.h as i64 - 1);
    }

    fn put(&mut self, x: i64, y: i64, c: Rgb) {
        let (x0, y0, x1, y1) = self.clip;
        if x < x0 || y < y0 || x > x1 || y > y1 {
            return;
        }
        let i = (y as usize * self.w + x as usize) * 3;
        self.px[i..i + 3].copy_from_slice(&c);
    }

    #[cfg(test)]
    fn get(&self, x: usize, y: usize) -> Rgb {
        let i = (y * self.w + x) * 3;
        [self.px[i], self.px[i + 1], self.px[i + 2]]
    }

    fn fill_rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb) {
        for y in y0..=y1 {
            for x in x0..=x1 {
                self.put(x, y, c);
            }
        }
    }

    fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb) {
        self.fill_rect(x0, y0, x1, y0, c);
        self.fill_rect(x0, y1, x1, y1, c);
        self.fill_rect(x0, y0, x0, y1, c);
        self.fill_rect(x1, y0, x1, y1, c);
    }

    /// A segment sampled every ¼ px, each sample stamped as a `thick`-pixel square.
    fn line(&mut self, a: (f64, f64), b: (f64, f64), c: Rgb, thick: i64) {
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        let n = (len * 4.0).ceil().max(1.0) as usize;
        let lo = -(thick - 1) / 2;
        let hi = thick / 2;
        for k in 0..=n {
            let t = k as f64 / n as f64;
            let x = (a.0 + t * (b.0 - a.0)).round() as i64;
            let y = (a.1 + t * (b.1 - a.1)).round() as i64;
            for dy in lo..=hi {
                for dx in lo..=hi {
                    self.put(x + dx, y + dy, c);
                }
            }
        }
    }

    fn text_width(s: &str) -> i64 {
        let n = s.chars().count() as i64;
        if n == 0 {
            0
        } else {
            n * ADVANCE - SCALE
        }
    }

    /// Horizontal text with its top-left corner at (x, y).
    fn text(&mut self, x: i64, y: i64, s: &str, c: Rgb) {
        for (k, ch) in s.chars().enumerate() {
            let g = glyph(ch);
            let ox = x + k as i64 * ADVANCE;
            for (gy, row) in g.iter().enumerate() {
                for gx in 0..5 {
                    if row & (0x10 >> gx) != 0 {
                        let (px, py) = (ox + gx as i64 * SCALE, y + gy as i64 * SCALE);
                        self.fill_rect(px, py, px + SCALE - 1, py + SCALE - 1, c);
                    }
                }
            }
        }
    }

    /// Text rotated 90° anticlockwise (reading upwards), its baseline-left corner at
    /// (x, y): glyph columns run up from y, glyph rows run right from x.
    fn text_up(&mut self, x: i64, y: i64, s: &str, c: Rgb) {
        for (k, ch) in s.chars().enumerate() {
            let g = glyph(ch);
            let oy = y - k as i64 * ADVANCE;
            for (gy, row) in g.iter().enumerate() {
                for gx in 0..5 {
                    if row & (0x10 >> gx) != 0 {
                        let (px, py) = (x + gy as i64 * SCALE, oy - (gx as i64 + 1) * SCALE);
                        self.fill_rect(px, py, px + SCALE - 1, py + SCALE - 1, c);
                    }
                }
            }
        }
    }

    fn png(&self) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.w as u32, self.h as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            // Encoding into memory fails only on a size/format mismatch, a programming error.
            let mut w = enc
                .write_header()
                .expect("PNG header for an in-memory image");
            w.write_image_data(&self.px)
                .expect("PNG data matches its header");
            w.finish().expect("PNG finish");
        }
        out
    }
}

/// A plot area: pixel rectangle and the data range it shows (log10 of data on log axes).
struct Frame {
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
    x: (f64, f64),
    y: (f64, f64),
    log: bool,
}

impl Frame {
    fn tx(&self, v: f64) -> f64 {
        if self.log {
            v.log10()
        } else {
            v
        }
    }

    fn px(&self, x: f64) -> f64 {
        self.left + (self.tx(x) - self.x.0) / (self.x.1 - self.x.0) * (self.right - self.left)
    }

    fn py(&self, y: f64) -> f64 {
        self.bottom - (self.tx(y) - self.y.0) / (self.y.1 - self.y.0) * (self.bottom - self.top)
    }

    fn clip(&self, c: &mut Canvas) {
        c.clip = (
            self.left as i64,
            self.top as i64,
            self.right as i64,
            self.bottom as i64,
        );
    }
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

/// Grid, frame, ticks and labels, title and axis labels.
fn draw_axes(c: &mut Canvas, f: &Frame, xt: &[f64], yt: &[f64], title: &str, xl: &str, yl: &str) {
    let (l, t, r, b) = (f.left as i64, f.top as i64, f.right as i64, f.bottom as i64);
    for &v in xt {
        let x = f.px(v).round() as i64;
        c.fill_rect(x, t, x, b, GRID);
    }
    for &v in yt {
        let y = f.py(v).round() as i64;
        c.fill_rect(l, y, r, y, GRID);
    }
    c.rect(l, t, r, b, BLACK);
    for &v in xt {
        let x = f.px(v).round() as i64;
        c.fill_rect(x, b, x, b + 5, BLACK);
        let s = fmt_tick(v);
        c.text(x - Canvas::text_width(&s) / 2, b + 10, &s, BLACK);
    }
    for &v in yt {
        let y = f.py(v).round() as i64;
        c.fill_rect(l - 5, y, l, y, BLACK);
        let s = fmt_tick(v);
        c.text(l - 9 - Canvas::text_width(&s), y - 7, &s, BLACK);
    }
    c.text(
        (l + r) / 2 - Canvas::text_width(title) / 2,
        (t - 14) / 2,
        title,
        BLACK,
    );
    c.text((l + r) / 2 - Canvas::text_width(xl) / 2, b + 36, xl, BLACK);
    c.text_up(10, (t + b) / 2 + Canvas::text_width(yl) / 2, yl, BLACK);
}

/// Legend box with a colour swatch and a label per entry, its top-left corner at (x, y).
fn draw_legend(c: &mut Canvas, x: i64, y: i64, entries: &[(String, Rgb)]) {
    let (w, h) = legend_size(entries);
    c.fill_rect(x, y, x + w, y + h, WHITE);
    c.rect(x, y, x + w, y + h, BLACK);
    for (k, (label, col)) in entries.iter().enumerate() {
        let yy = y + 8 + k as i64 * 20;
        c.fill_rect(x + 8, yy + 6, x + 32, yy + 8, *col);
        c.text(x + 40, yy, label, BLACK);
    }
}

fn legend_size(entries: &[(String, Rgb)]) -> (i64, i64) {
    let tw = entries
        .iter()
        .map(|(s, _)| Canvas::text_width(s))
        .max()
        .unwrap_or(0);
    (tw + 48, entries.len() as i64 * 20 + 10)
}

fn roc_frame() -> Frame {
    // A square 500 × 500 plot area with integer corners, so the chance diagonal runs exactly
    // through pixel centres.
    Frame {
        left: 80.0,
        top: 30.0,
        right: 580.0,
        bottom: 530.0,
        x: (0.0, 1.0),
        y: (0.0, 1.0),
        log: false,
    }
}

/// ROC curves, one per arm, over the chance diagonal; legend entries "ARM (AUC 0.83)".
/// Each curve is (arm, (FPR, TPR) points as from [`super::roc_curve`], AUC).
pub fn plot_roc(curves: &[RocCurve]) -> Vec<u8> {
    let (w, h) = ROC_SIZE_PX;
    let mut c = Canvas::new(w, h);
    let f = roc_frame();
    let ticks: Vec<f64> = (0..=5).map(|k| k as f64 / 5.0).collect();
    draw_axes(
        &mut c,
        &f,
        &ticks,
        &ticks,
        "ROC",
        "FALSE POSITIVE FRACTION",
        "TRUE POSITIVE FRACTION",
    );
    f.clip(&mut c);
    c.line(
        (f.px(0.0), f.py(0.0)),
        (f.px(1.0), f.py(1.0)),
        DIAGONAL_RGB,
        1,
    );
    let mut entries = Vec::new();
    for (k, (name, pts, auc)) in curves.iter().enumerate() {
        let col = PALETTE[k % PALETTE.len()];
        let pts: Vec<(f64, f64)> = pts
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|&(x, y)| (f.px(x), f.py(y)))
            .collect();
        for s in pts.windows(2) {
            c.line(s[0], s[1], col, 3);
        }
        entries.push((format!("{name} (AUC {auc:.2})"), col));
    }
    c.unclip();
    if !entries.is_empty() {
        let (lw, lh) = legend_size(&entries);
        draw_legend(
            &mut c,
            f.right as i64 - 10 - lw,
            f.bottom as i64 - 10 - lh,
            &entries,
        );
    }
    c.png()
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
    let (w, h) = XY_SIZE_PX;
    let mut c = Canvas::new(w, h);
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
    let f = Frame {
        left: 90.0,
        top: 30.0,
        right: w as f64 - 25.0,
        bottom: h as f64 - 70.0,
        x: xr,
        y: yr,
        log: log_log,
    };
    draw_axes(&mut c, &f, &xt, &yt, title, x_label, y_label);
    f.clip(&mut c);
    let mut entries = Vec::new();
    for (k, ((name, _), pts)) in series.iter().zip(&clean).enumerate() {
        let col = PALETTE[k % PALETTE.len()];
        let p: Vec<(f64, f64)> = pts.iter().map(|&(x, y)| (f.px(x), f.py(y))).collect();
        for s in p.windows(2) {
            c.line(s[0], s[1], col, 3);
        }
        for &(x, y) in &p {
            let (x, y) = (x.round() as i64, y.round() as i64);
            c.fill_rect(x - 4, y - 4, x + 4, y + 4, col);
        }
        entries.push((name.clone(), col));
    }
    c.unclip();
    if !entries.is_empty() {
        let (lw, lh) = legend_size(&entries);
        let (l, t, r, b) = (
            f.left as i64 + 10,
            f.top as i64 + 10,
            f.right as i64 - 10 - lw,
            f.bottom as i64 - 10 - lh,
        );
        let corners = [(l, t), (r, t), (r, b), (l, b)];
        // Count data samples (points and segment interiors) under each candidate box.
        let mut samples = Vec::new();
        for pts in &clean {
            let p: Vec<(f64, f64)> = pts.iter().map(|&(x, y)| (f.px(x), f.py(y))).collect();
            samples.extend(p.iter().copied());
            for s in p.windows(2) {
                samples.extend((1..20).map(|k| {
                    let t = k as f64 / 20.0;
                    (
                        s[0].0 + t * (s[1].0 - s[0].0),
                        s[0].1 + t * (s[1].1 - s[0].1),
                    )
                }));
            }
        }
        let covered = |&(x0, y0): &(i64, i64)| {
            samples
                .iter()
                .filter(|&&(x, y)| {
                    x >= x0 as f64
                        && x <= (x0 + lw) as f64
                        && y >= y0 as f64
                        && y <= (y0 + lh) as f64
                })
                .count()
        };
        let best = corners
            .iter()
            .min_by_key(|c| covered(c))
            .copied()
            .unwrap_or((l, t));
        draw_legend(&mut c, best.0, best.1, &entries);
    }
    c.png()
}

#[cfg(test)]
mod tests;
