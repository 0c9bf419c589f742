//! `preview.png`: a mosaic of axial mid-slices with the label map blended on top, for a quick
//! look at a cohort without a viewer.
//!
//! Display follows the radiological convention: anterior (+y) at the top and the patient's
//! right (+x in RAS+) on the viewer's left, as if looking up from the patient's feet.

use super::IoError;

/// One slice to show.
#[derive(Clone, Debug, PartialEq)]
pub struct PreviewTile {
    /// Not drawn (no font); kept for callers that caption the mosaic elsewhere.
    pub title: String,
    /// nx.
    pub width: usize,
    /// ny.
    pub height: usize,
    /// dy/dx voxel spacing ratio, so the tile can be shown with square pixels.
    pub pixel_aspect: f64,
    /// Row-major (y, x), as `Volume::axial_slice` returns: index = i + width·j.
    pub image: Vec<f32>,
    /// Same layout as `image`, or empty for no overlay.
    pub labels: Vec<u16>,
    /// Grey-level window (low, high) in image units, e.g. (-1000, 400) HU.
    pub window: (f32, f32),
}

/// Longest side of a tile in the mosaic.
const TILE_PX: usize = 256;
const GAP_PX: usize = 4;
const MAX_COLUMNS: usize = 4;
/// Weight of the label colour where a label covers the image.
const OVERLAY_ALPHA: f32 = 0.35;

/// Renders the tiles into one RGB8 PNG: up to 4 per row, each scaled (nearest) so its longer
/// side is 256 px with square pixels, separated by 4 px of black. Labels are blended at 35 %
/// with `colour_of(label)` and outlined in full colour at label boundaries.
pub fn render_mosaic(
    tiles: &[PreviewTile],
    colour_of: &dyn Fn(u16) -> [u8; 3],
) -> Result<Vec<u8>, IoError> {
    render_grid(tiles, colour_of, MAX_COLUMNS)
}

/// As [`render_mosaic`], with `columns` tiles per row (a table of pictures whose columns mean
/// something, e.g. real | painter | model).
pub fn render_grid(
    tiles: &[PreviewTile],
    colour_of: &dyn Fn(u16) -> [u8; 3],
    columns: usize,
) -> Result<Vec<u8>, IoError> {
    if tiles.is_empty() {
        return Err(IoError::encode("preview", "no tiles"));
    }
    let rendered: Vec<(usize, usize, Vec<u8>)> = tiles
        .iter()
        .map(|t| render_tile(t, colour_of))
        .collect::<Result<_, _>>()?;
    let cols = tiles.len().min(columns.max(1));
    let rows = tiles.len().div_ceil(cols);
    let cell_w = rendered.iter().map(|r| r.0).max().unwrap_or(1);
    let cell_h = rendered.iter().map(|r| r.1).max().unwrap_or(1);
    let width = cols * cell_w + (cols - 1) * GAP_PX;
    let height = rows * cell_h + (rows - 1) * GAP_PX;
    let mut rgb = vec![0u8; width * height * 3];
    for (n, (w, h, px)) in rendered.iter().enumerate() {
        // Centre each tile in its cell so tiles of different aspect line up.
        let x0 = (n % cols) * (cell_w + GAP_PX) + (cell_w - w) / 2;
        let y0 = (n / cols) * (cell_h + GAP_PX) + (cell_h - h) / 2;
        for r in 0..*h {
            let dst = ((y0 + r) * width + x0) * 3;
            rgb[dst..dst + w * 3].copy_from_slice(&px[r * w * 3..(r + 1) * w * 3]);
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width as u32, height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&rgb)?;
        w.finish()?;
    }
    Ok(out)
}

/// Display size (w, h) in px with square pixels and the longer side = `TILE_PX`.
fn tile_size(t: &PreviewTile) -> (usize, usize) {
    let w = t.width as f64;
    let h = t.height as f64 * t.pixel_aspect;
    let s = TILE_PX as f64 / w.max(h);
    (
        ((w * s).round() as usize).max(1),
        ((h * s).round() as usize).max(1),
    )
}

fn render_tile(
    t: &PreviewTile,
    colour_of: &dyn Fn(u16) -> [u8; 3],
) -> Result<(usize, usize, Vec<u8>), IoError> {
    let bad = |reason: String| IoError::encode("preview", format!("tile {:?}: {reason}", t.title));
    let n = t.width * t.height;
    if n == 0 {
        return Err(bad(format!("empty slice {}×{}", t.width, t.height)));
    }
    if t.image.len() != n {
        return Err(bad(format!(
            "{} image values for {}×{}",
            t.image.len(),
            t.width,
            t.height
        )));
    }
    if !t.labels.is_empty() && t.labels.len() != n {
        return Err(bad(format!(
            "{} label values for {}×{}",
            t.labels.len(),
            t.width,
            t.height
        )));
    }
    if !(t.pixel_aspect.is_finite() && t.pixel_aspect > 0.0) {
        return Err(bad(format!(
            "pixel aspect {} must be finite and positive",
            t.pixel_aspect
        )));
    }
    let (lo, hi) = t.window;
    if !(lo.is_finite() && hi.is_finite() && hi > lo) {
        return Err(bad(format!(
            "window ({lo}, {hi}) must be finite with high > low"
        )));
    }
    let (w, h) = tile_size(t);
    // Nearest source voxel of each display column / row; columns flipped so +x (patient
    // right) is on the left, rows flipped so +y is at the top.
    let src_i: Vec<usize> = (0..w)
        .map(|c| ((c as f64 + 0.5) / w as f64 * t.width as f64) as usize)
        .map(|i| t.width - 1 - i.min(t.width - 1))
        .collect();
    let src_j: Vec<usize> = (0..h)
        .map(|r| ((r as f64 + 0.5) / h as f64 * t.height as f64) as usize)
        .map(|j| t.height - 1 - j.min(t.height - 1))
        .collect();
    let label_at = |r: usize, c: usize| {
        if t.labels.is_empty() {
            0
        } else {
            t.labels[src_i[c] + t.width * src_j[r]]
        }
    };
    let mut px = vec![0u8; w * h * 3];
    for (r, &sj) in src_j.iter().enumerate() {
        for (c, &si) in src_i.iter().enumerate() {
            let v = t.image[si + t.width * sj];
            // NaN maps to black.
            let g = if v.is_nan() {
                0.0
            } else {
                ((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0
            };
            let mut rgb = [g; 3];
            let l = label_at(r, c);
            if l != 0 {
                let col = colour_of(l).map(|u| u as f32);
                // Outline in display space, so it stays 1 px wide whatever the zoom.
                let edge = (r > 0 && label_at(r - 1, c) != l)
                    || (r + 1 < h && label_at(r + 1, c) != l)
                    || (c > 0 && label_at(r, c - 1) != l)
                    || (c + 1 < w && label_at(r, c + 1) != l);
                let a = if edge { 1.0 } else { OVERLAY_ALPHA };
                for k in 0..3 {
                    rgb[k] = (1.0 - a) * rgb[k] + a * col[k];
                }
            }
            let o = (r * w + c) * 3;
            for k in 0..3 {
                px[o + k] = rgb[k].round() as u8;
            }
        }
    }
    Ok((w, h, px))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    /// 64×32 slice, dy = 2·dx; image ramps along x; a label square sits in the anterior-right
    /// corner (high j, high i: +x is the patient's right in RAS+).
    fn tile() -> PreviewTile {
        let (nx, ny) = (64, 32);
        let image = (0..nx * ny).map(|idx| (idx % nx) as f32).collect();
        let mut labels = vec![0u16; nx * ny];
        for j in 20..32 {
            for i in 40..64 {
                labels[i + nx * j] = 7;
            }
        }
        PreviewTile {
            title: "t".into(),
            width: nx,
            height: ny,
            pixel_aspect: 2.0,
            image,
            labels,
            window: (0.0, 63.0),
        }
    }

    #[test]
    fn mosaic_layout_orientation_and_overlay() {
        let tiles = vec![tile(); 5];
        let red = |l: u16| if l == 7 { [255, 0, 0] } else { [0, 255, 0] };
        let bytes = render_mosaic(&tiles, &red).unwrap();
        let (w, h, px) = decode(&bytes);
        // Square pixels: 64 × (32·2) → 256 × 256; 4 columns, 2 rows, 4 px gaps.
        assert_eq!((w, h), (4 * 256 + 3 * 4, 2 * 256 + 4));
        let at = |x: usize, y: usize| {
            let o = (y * w as usize + x) * 3;
            [px[o], px[o + 1], px[o + 2]]
        };
        // The label square (anterior, patient right) is top-left of the tile, as radiologists
        // view it; well inside it the grey (ramp value 55/63 of 255) is tinted 35 % towards red.
        let (x, y) = (35, 40);
        let i = 63 - x * 64 / 256;
        let g = (i as f32 / 63.0 * 255.0).round();
        let expect = [0.65 * g + 0.35 * 255.0, 0.65 * g, 0.65 * g].map(|v| v.round() as i32);
        let got = at(x, y).map(|v| v as i32);
        for k in 0..3 {
            assert!((got[k] - expect[k]).abs() <= 1, "{got:?} vs {expect:?}");
        }
        // Bottom-right is unlabelled posterior-left: pure grey.
        let p = at(245, 250);
        assert!(p[0] == p[1] && p[1] == p[2]);
        // The label edge is drawn in full colour.
        assert_eq!(at(35, 95), [255, 0, 0]);
        // Gap between tiles and the empty cells of the second row are black.
        assert_eq!(at(257, 100), [0, 0, 0]);
        assert_eq!(at(600, 400), [0, 0, 0]);
        assert_eq!(bytes, render_mosaic(&tiles, &red).unwrap(), "deterministic");
    }

    #[test]
    fn bad_tiles_are_errors() {
        let c = |_: u16| [1, 2, 3];
        assert!(render_mosaic(&[], &c).is_err());
        let mut t = tile();
        t.labels.pop();
        assert!(render_mosaic(&[t], &c).is_err());
        let mut t = tile();
        t.window = (5.0, 5.0);
        assert!(render_mosaic(&[t], &c).is_err());
        let mut t = tile();
        t.labels.clear();
        assert!(render_mosaic(&[t], &c).is_ok());
    }
}
