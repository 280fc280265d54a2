//! Content-aware ("smart") crop placement, in the spirit of sharp's `attention`
//! strategy. Given RGBA8 pixels and a crop size fixed by the planner, this module
//! owns the saliency heuristic (luma edges, saturation, skin tones, weighted by
//! opacity) and the search for the window that holds the most of it. The map is
//! built on a coarse grid (longest side at most [`GRID_MAX`] cells) and searched
//! with a summed-area table, so cost is one pass over the pixels plus a search
//! bounded by the grid size. Fully deterministic: integer scores, fixed tie-break.

/// Longest side of the saliency grid; sharp uses a similar working size.
pub const GRID_MAX: u32 = 256;

/// Upper bound on sampled pixels, so huge images cost about as much as a
/// 4-megapixel one; neighbours are still read at full resolution, so fine
/// texture is not lost to the sampling.
const MAX_SAMPLES: u64 = 4_000_000;

/// Fixed-point scale for cell scores, making window sums exact integers so
/// equal-saliency windows tie exactly and the tie-break is stable.
const SCORE_SCALE: f64 = 1000.0;

const EDGE_WEIGHT: f64 = 1.0;
const SATURATION_WEIGHT: f64 = 0.35;
const SKIN_WEIGHT: f64 = 0.8;

/// Chooses the top-left corner of a `crop_w`×`crop_h` window inside the
/// `width`×`height` RGBA8 image `rgba` that keeps the most salient content.
/// Falls back to the centred window when the buffer does not match the size or
/// nothing stands out; a window covering the whole image gives `(0, 0)`.
pub fn smart_crop_origin(
    width: u32,
    height: u32,
    rgba: &[u8],
    crop_w: u32,
    crop_h: u32,
) -> (u32, u32) {
    let crop = (crop_w.min(width), crop_h.min(height));
    if crop.0 == width && crop.1 == height {
        return (0, 0);
    }
    let centre = centre_origin((width, height), crop);
    let Some(image) = Image::new(width, height, rgba) else {
        return centre;
    };
    let grid = SaliencyGrid::build(&image);
    let window = grid.window_for(crop, (width, height));
    match best_window(&grid, window) {
        Some(cell) => grid.to_image_origin(cell, window, crop, (width, height)),
        None => centre,
    }
}

fn centre_origin(image: (u32, u32), crop: (u32, u32)) -> (u32, u32) {
    (
        image.0.saturating_sub(crop.0) / 2,
        image.1.saturating_sub(crop.1) / 2,
    )
}

/// A borrowed RGBA8 image whose buffer length has been checked.
struct Image<'a> {
    width: usize,
    height: usize,
    rgba: &'a [u8],
}

impl<'a> Image<'a> {
    fn new(width: u32, height: u32, rgba: &'a [u8]) -> Option<Image<'a>> {
        let width = usize::try_from(width).ok()?;
        let height = usize::try_from(height).ok()?;
        let expected = width.checked_mul(height)?.checked_mul(4)?;
        (width > 0 && height > 0 && rgba.len() == expected).then_some(Image {
            width,
            height,
            rgba,
        })
    }

    fn pixel(&self, x: usize, y: usize) -> [u8; 4] {
        let i = (y * self.width + x) * 4;
        match self.rgba.get(i..i + 4) {
            Some(&[r, g, b, a]) => [r, g, b, a],
            _ => [0; 4],
        }
    }

    /// Luma premultiplied by alpha, so hidden detail under transparency makes
    /// no edges while the outline of an opaque shape still does.
    fn luma(&self, x: usize, y: usize) -> f64 {
        let [r, g, b, a] = self.pixel(x, y);
        let luma = 0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b);
        luma * f64::from(a) / 255.0
    }
}

/// Per-cell saliency scores on a coarse grid covering the image.
struct SaliencyGrid {
    cols: usize,
    rows: usize,
    /// Image pixels per cell along each axis (the last row/column may be partial).
    cell: usize,
    scores: Vec<u64>,
}

impl SaliencyGrid {
    fn build(image: &Image) -> SaliencyGrid {
        let longest = image.width.max(image.height);
        let grid_max = GRID_MAX as usize;
        let cell = longest.div_ceil(grid_max).max(1);
        let cols = image.width.div_ceil(cell);
        let rows = image.height.div_ceil(cell);
        let mut sums = vec![0.0f64; cols * rows];
        let mut counts = vec![0u32; cols * rows];
        let step = sample_step(image);
        for y in (0..image.height).step_by(step) {
            for x in (0..image.width).step_by(step) {
                let index = (y / cell) * cols + x / cell;
                if let (Some(sum), Some(count)) = (sums.get_mut(index), counts.get_mut(index)) {
                    *sum += pixel_saliency(image, x, y);
                    *count += 1;
                }
            }
        }
        let scores = sums
            .iter()
            .zip(&counts)
            .map(|(sum, count)| quantise(*sum, *count))
            .collect();
        SaliencyGrid {
            cols,
            rows,
            cell,
            scores,
        }
    }

    /// The crop size in cells, rounded to nearest but at least one cell and
    /// never more than the grid.
    fn window_for(&self, crop: (u32, u32), image: (u32, u32)) -> (usize, usize) {
        (
            cells_for(crop.0, image.0, self.cols),
            cells_for(crop.1, image.1, self.rows),
        )
    }

    /// Maps the best cell window back to pixels by matching centres, which is
    /// robust to the cell window being a rounded version of the crop.
    fn to_image_origin(
        &self,
        cell: (usize, usize),
        window: (usize, usize),
        crop: (u32, u32),
        image: (u32, u32),
    ) -> (u32, u32) {
        (
            axis_origin(cell.0, window.0, self.cell, crop.0, image.0),
            axis_origin(cell.1, window.1, self.cell, crop.1, image.1),
        )
    }
}

fn sample_step(image: &Image) -> usize {
    let pixels = (image.width as u64).saturating_mul(image.height as u64);
    if pixels <= MAX_SAMPLES {
        return 1;
    }
    let ratio = pixels as f64 / MAX_SAMPLES as f64;
    (ratio.sqrt().ceil() as usize).max(1)
}

fn quantise(sum: f64, count: u32) -> u64 {
    if count == 0 {
        return 0;
    }
    let mean = sum / f64::from(count);
    // Scores are small non-negative numbers; the cast saturates harmlessly.
    (mean * SCORE_SCALE).round().max(0.0) as u64
}

fn cells_for(crop: u32, image: u32, cells: usize) -> usize {
    let exact = f64::from(crop) * cells as f64 / f64::from(image.max(1));
    (exact.round() as usize).clamp(1, cells.max(1))
}

fn axis_origin(cell: usize, window: usize, cell_size: usize, crop: u32, image: u32) -> u32 {
    let centre = (cell as f64 + window as f64 / 2.0) * cell_size as f64;
    let origin = (centre - f64::from(crop) / 2.0).round();
    let max = f64::from(image.saturating_sub(crop));
    origin.clamp(0.0, max) as u32
}

/// Saliency of one pixel: how much a viewer's eye is drawn to it, weighted by
/// opacity so transparent areas never attract the crop.
fn pixel_saliency(image: &Image, x: usize, y: usize) -> f64 {
    let [r, g, b, a] = image.pixel(x, y);
    let opacity = f64::from(a) / 255.0;
    if opacity == 0.0 {
        return 0.0;
    }
    let rgb = [f64::from(r), f64::from(g), f64::from(b)];
    let score = EDGE_WEIGHT * edge_strength(image, x, y)
        + SATURATION_WEIGHT * saturation(rgb)
        + SKIN_WEIGHT * skin_likeness(rgb);
    score * opacity
}

/// Forward-difference luma gradient, normalised to 0..=1 per direction.
fn edge_strength(image: &Image, x: usize, y: usize) -> f64 {
    let here = image.luma(x, y);
    let dx = if x + 1 < image.width {
        (image.luma(x + 1, y) - here).abs()
    } else {
        0.0
    };
    let dy = if y + 1 < image.height {
        (image.luma(x, y + 1) - here).abs()
    } else {
        0.0
    };
    (dx + dy) / 255.0
}

/// HSV-style saturation, discounted in the darks where it is mostly noise.
fn saturation([r, g, b]: [f64; 3]) -> f64 {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    if max < 1.0 {
        return 0.0;
    }
    let brightness = max / 255.0;
    (max - min) / max * brightness
}

/// Closeness of the pixel's chromaticity to a typical skin tone (the reference
/// sharp uses), limited to mid brightness where skin detection is meaningful.
fn skin_likeness([r, g, b]: [f64; 3]) -> f64 {
    const SKIN: [f64; 3] = [0.78, 0.57, 0.44];
    const TOLERANCE: f64 = 0.1;
    let magnitude = (r * r + g * g + b * b).sqrt();
    let brightness = magnitude / (255.0 * 3f64.sqrt());
    if !(0.2..=0.95).contains(&brightness) {
        return 0.0;
    }
    let skin_mag = (SKIN[0] * SKIN[0] + SKIN[1] * SKIN[1] + SKIN[2] * SKIN[2]).sqrt();
    let distance = [r, g, b]
        .iter()
        .zip(SKIN)
        .map(|(c, s)| c / magnitude - s / skin_mag)
        .map(|d| d * d)
        .sum::<f64>()
        .sqrt();
    (1.0 - distance / TOLERANCE).max(0.0)
}

/// Summed-area table with a zero row and column in front, so any window sum
/// is four lookups.
struct Integral {
    stride: usize,
    table: Vec<u64>,
}

impl Integral {
    fn new(grid: &SaliencyGrid) -> Integral {
        let stride = grid.cols + 1;
        let mut table = vec![0u64; stride * (grid.rows + 1)];
        for row in 0..grid.rows {
            let mut running = 0u64;
            for col in 0..grid.cols {
                running = running.saturating_add(grid.scores[row * grid.cols + col]);
                let above = table[row * stride + col + 1];
                table[(row + 1) * stride + col + 1] = above.saturating_add(running);
            }
        }
        Integral { stride, table }
    }

    fn at(&self, col: usize, row: usize) -> u64 {
        self.table
            .get(row * self.stride + col)
            .copied()
            .unwrap_or(0)
    }

    fn window_sum(&self, origin: (usize, usize), size: (usize, usize)) -> u64 {
        let (x0, y0) = origin;
        let (x1, y1) = (x0 + size.0, y0 + size.1);
        (self.at(x1, y1) + self.at(x0, y0))
            .saturating_sub(self.at(x0, y1))
            .saturating_sub(self.at(x1, y0))
    }
}

/// The cell origin of the window with the greatest saliency, or `None` when
/// every position scores the same (nothing to prefer over the centre). Ties go
/// to the position nearest the centre, then top-most, then left-most.
fn best_window(grid: &SaliencyGrid, window: (usize, usize)) -> Option<(usize, usize)> {
    let integral = Integral::new(grid);
    let span_x = grid.cols.saturating_sub(window.0);
    let span_y = grid.rows.saturating_sub(window.1);
    let mut best: Option<((usize, usize), u64)> = None;
    let mut lowest = u64::MAX;
    for y in 0..=span_y {
        for x in 0..=span_x {
            let sum = integral.window_sum((x, y), window);
            lowest = lowest.min(sum);
            let better = match best {
                None => true,
                Some((pos, best_sum)) => {
                    sum > best_sum
                        || (sum == best_sum
                            && centre_distance((x, y), (span_x, span_y))
                                < centre_distance(pos, (span_x, span_y)))
                }
            };
            if better {
                best = Some(((x, y), sum));
            }
        }
    }
    best.filter(|(_, sum)| *sum > lowest).map(|(pos, _)| pos)
}

/// Squared distance from the centre of the search range, doubled to stay integral.
fn centre_distance(pos: (usize, usize), span: (usize, usize)) -> usize {
    let dx = (2 * pos.0).abs_diff(span.0);
    let dy = (2 * pos.1).abs_diff(span.1);
    dx * dx + dy * dy
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn flat(width: u32, height: u32, rgba: [u8; 4]) -> Vec<u8> {
        rgba.repeat((width * height) as usize)
    }

    fn set(buf: &mut [u8], width: u32, x: u32, y: u32, rgba: [u8; 4]) {
        let i = ((y * width + x) * 4) as usize;
        buf[i..i + 4].copy_from_slice(&rgba);
    }

    /// Flat grey with a black/white checkerboard (cells of `cell` px) in the
    /// given rectangle.
    fn grey_with_checkerboard(
        width: u32,
        height: u32,
        patch: (u32, u32, u32, u32),
        cell: u32,
    ) -> Vec<u8> {
        let mut buf = flat(width, height, [128, 128, 128, 255]);
        let (px, py, pw, ph) = patch;
        for y in py..py + ph {
            for x in px..px + pw {
                let on = ((x / cell) + (y / cell)) & 1 == 0;
                let v = if on { 255 } else { 0 };
                set(&mut buf, width, x, y, [v, v, v, 255]);
            }
        }
        buf
    }

    #[test]
    fn finds_checkerboard_in_right_third() {
        let (w, h) = (300, 100);
        let buf = grey_with_checkerboard(w, h, (200, 0, 100, 100), 4);
        let (x, y) = smart_crop_origin(w, h, &buf, 100, 100);
        assert!(x >= 195, "x = {x}");
        assert_eq!(y, 0);
    }

    #[test]
    fn finds_fine_checkerboard_on_large_image() {
        // 1-px checks would vanish if the map were built from averaged pixels.
        let (w, h) = (1200, 400);
        let buf = grey_with_checkerboard(w, h, (800, 0, 400, 400), 1);
        let (x, _) = smart_crop_origin(w, h, &buf, 400, 400);
        assert!(x >= 790, "x = {x}");
    }

    #[test]
    fn finds_patch_vertically() {
        let (w, h) = (80, 240);
        let buf = grey_with_checkerboard(w, h, (0, 0, 80, 60), 3);
        let (x, y) = smart_crop_origin(w, h, &buf, 80, 80);
        assert_eq!(x, 0);
        assert!(y <= 5, "y = {y}");
    }

    #[test]
    fn prefers_saturated_over_grey() {
        let (w, h) = (200, 50);
        let mut buf = flat(w, h, [120, 120, 120, 255]);
        for y in 0..h {
            for x in 0..50 {
                set(&mut buf, w, x, y, [250, 10, 10, 255]);
            }
        }
        let (x, _) = smart_crop_origin(w, h, &buf, 50, 50);
        assert!(x <= 5, "x = {x}");
    }

    #[test]
    fn ignores_transparent_detail() {
        let (w, h) = (300, 100);
        let mut buf = grey_with_checkerboard(w, h, (200, 0, 100, 100), 4);
        for px in buf.chunks_exact_mut(4) {
            if px[0] != 128 {
                px[3] = 0;
            }
        }
        let (x, _) = smart_crop_origin(w, h, &buf, 100, 100);
        assert!(x < 150, "x = {x}");
    }

    #[test]
    fn flat_image_gives_centre() {
        let buf = flat(301, 101, [40, 90, 200, 255]);
        assert_eq!(smart_crop_origin(301, 101, &buf, 100, 50), (100, 25));
    }

    #[test]
    fn window_covering_image_gives_zero() {
        let buf = grey_with_checkerboard(50, 40, (30, 0, 20, 40), 2);
        assert_eq!(smart_crop_origin(50, 40, &buf, 50, 40), (0, 0));
        assert_eq!(smart_crop_origin(50, 40, &buf, 500, 400), (0, 0));
    }

    #[test]
    fn mismatched_buffer_gives_centre() {
        let buf = vec![0u8; 10];
        assert_eq!(smart_crop_origin(100, 50, &buf, 50, 50), (25, 0));
        assert_eq!(smart_crop_origin(100, 50, &[], 20, 10), (40, 20));
    }

    #[test]
    fn zero_sized_inputs_do_not_panic() {
        assert_eq!(smart_crop_origin(0, 0, &[], 0, 0), (0, 0));
        assert_eq!(
            smart_crop_origin(10, 10, &flat(10, 10, [0; 4]), 0, 0),
            (5, 5)
        );
        assert_eq!(smart_crop_origin(0, 10, &[], 5, 5), (0, 2));
    }

    #[test]
    fn one_axis_full_keeps_that_axis_at_zero() {
        let buf = grey_with_checkerboard(300, 100, (200, 0, 100, 100), 4);
        let (x, y) = smart_crop_origin(300, 100, &buf, 100, 1000);
        assert_eq!(y, 0);
        assert!(x >= 195, "x = {x}");
    }

    #[test]
    fn deterministic() {
        let buf = grey_with_checkerboard(257, 131, (20, 70, 40, 40), 3);
        let first = smart_crop_origin(257, 131, &buf, 64, 64);
        for _ in 0..3 {
            assert_eq!(smart_crop_origin(257, 131, &buf, 64, 64), first);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn origin_keeps_window_inside(
            w in 1u32..300,
            h in 1u32..300,
            cw in 0u32..400,
            ch in 0u32..400,
            seed in any::<u64>(),
        ) {
            let mut state = seed;
            let buf: Vec<u8> = (0..w * h * 4)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (state >> 56) as u8
                })
                .collect();
            let (x, y) = smart_crop_origin(w, h, &buf, cw, ch);
            prop_assert!(x + cw.min(w) <= w);
            prop_assert!(y + ch.min(h) <= h);
        }

        #[test]
        fn arbitrary_buffers_never_panic(
            w in any::<u32>(),
            h in any::<u32>(),
            cw in any::<u32>(),
            ch in any::<u32>(),
            buf in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let (x, y) = smart_crop_origin(w, h, &buf, cw, ch);
            prop_assert!(x <= w && y <= h);
        }
    }
}
