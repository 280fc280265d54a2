//! Perceptual scoring: SSIMULACRA2 of an encoded candidate against the pixels it was made from.
//!
//! Big images are scored on a *sample*: a mosaic of 16 tiles of 256×256 taken on an even grid,
//! each tile starting on a 16-pixel boundary. Block codecs (JPEG's 8×8 blocks and 16×16 MCUs)
//! code every tile of the mosaic exactly as they code that region of the whole image, so the
//! quality search can run on ~1 MP instead of the full frame. Transparent pixels are composited
//! over mid-grey before scoring, so an error in alpha shows as an error in colour.

use std::sync::Mutex;

use fast_ssim2::{PixelDescriptor, PixelSlice, Ssimulacra2Reference};
use image::{DynamicImage, GenericImageView, ImageBuffer, Pixel, RgbImage, RgbaImage};

/// Images with more pixels than this are scored on a mosaic sample.
pub const SAMPLE_ABOVE_PIXELS: u64 = 1_500_000;
/// 16 tiles of 256 predict the whole image's score better than 64 of 128 or 256 of 64 (same
/// area): over the six corpus photos their bias against the whole image spans −0.6 to +2.4
/// points against −3.0 to +1.7, and varies less from one quality to the next.
const TILE: u32 = 256;
const TILES_PER_SIDE: u32 = 4;
/// SSIMULACRA2 is undefined below 8×8.
const MIN_SIDE: u32 = 8;
const BACKDROP: u16 = 128;

/// The pixels candidates are compared against, with the reference half of the metric
/// (colour conversion and blurs of the source) computed once for all trials.
pub struct Reference {
    precomputed: Ssimulacra2Reference,
    width: u32,
    height: u32,
    /// One comparison at a time against this reference. A comparison already spreads its
    /// blurs over every core, so two at once gain ~25 % in time but hold two sets of blur
    /// planes (about 60 bytes a pixel each): trials encode in parallel and queue here.
    comparing: Mutex<()>,
}

impl Reference {
    /// `None` when the image is too small for the metric.
    pub fn new(image: &DynamicImage) -> Option<Reference> {
        let (width, height) = image.dimensions();
        if width < MIN_SIDE || height < MIN_SIDE {
            return None;
        }
        let rgb = opaque_rgb(image);
        let precomputed = Ssimulacra2Reference::new(&slice(&rgb)?).ok()?;
        Some(Reference {
            precomputed,
            width,
            height,
            comparing: Mutex::new(()),
        })
    }

    /// SSIMULACRA2 of `distorted` (same size) against this reference: 100 is identical, 90 is
    /// visually lossless at a normal distance, 70 high quality, 50 medium.
    pub fn score(&self, distorted: &DynamicImage) -> Option<f64> {
        if distorted.dimensions() != (self.width, self.height) {
            return None;
        }
        let rgb = opaque_rgb(distorted);
        // A poisoned lock guards nothing: the comparison's state is all in the call.
        let _turn = self
            .comparing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.precomputed.compare(&slice(&rgb)?).ok()
    }
}

fn slice(rgb: &RgbImage) -> Option<PixelSlice<'_>> {
    let (width, height) = rgb.dimensions();
    PixelSlice::new(
        rgb.as_raw(),
        width,
        height,
        width as usize * 3,
        PixelDescriptor::RGB8_SRGB,
    )
    .ok()
}

/// 8-bit sRGB with any transparency composited over mid-grey.
fn opaque_rgb(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba: RgbaImage = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y);
        let a = u16::from(p[3]);
        let over = |c: u8| ((u16::from(c) * a + BACKDROP * (255 - a) + 127) / 255) as u8;
        image::Rgb([over(p[0]), over(p[1]), over(p[2])])
    })
}

/// Whether the quality search should run on [`sample`] rather than the whole image.
pub fn wants_sample(width: u32, height: u32) -> bool {
    u64::from(width) * u64::from(height) > SAMPLE_ABOVE_PIXELS
        && width >= TILE * TILES_PER_SIDE
        && height >= TILE * TILES_PER_SIDE
}

/// The mosaic of evenly spaced, 16-aligned tiles described in the module comment, 8-bit RGB
/// (RGBA when the image has alpha).
pub fn sample(image: &DynamicImage) -> DynamicImage {
    if image.color().has_alpha() {
        DynamicImage::ImageRgba8(mosaic(image, DynamicImage::to_rgba8))
    } else {
        DynamicImage::ImageRgb8(mosaic(image, DynamicImage::to_rgb8))
    }
}

/// The tiles of `image`, each converted on its own by `convert`, so a big image is never
/// copied whole (an RGBA copy of 12 MP is 48 MB).
fn mosaic<P: Pixel>(
    image: &DynamicImage,
    convert: impl Fn(&DynamicImage) -> ImageBuffer<P, Vec<P::Subpixel>>,
) -> ImageBuffer<P, Vec<P::Subpixel>> {
    let (width, height) = image.dimensions();
    let side = TILE * TILES_PER_SIDE;
    let mut mosaic = ImageBuffer::new(side, side);
    for (row, &y) in tile_origins(height).iter().enumerate() {
        for (col, &x) in tile_origins(width).iter().enumerate() {
            let tile = convert(&image.crop_imm(x, y, TILE, TILE));
            let (at_x, at_y) = (col as u32 * TILE, row as u32 * TILE);
            image::imageops::replace(&mut mosaic, &tile, i64::from(at_x), i64::from(at_y));
        }
    }
    mosaic
}

fn tile_origins(length: u32) -> Vec<u32> {
    let span = length - TILE;
    (0..TILES_PER_SIDE)
        .map(|i| {
            let centre = span * i / (TILES_PER_SIDE - 1);
            centre / 16 * 16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(width: u32, height: u32, seed: u32) -> DynamicImage {
        let mut state = seed;
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let n = (state >> 16) as u8 / 4;
            image::Rgb([(x % 256) as u8 / 2 + n, (y % 256) as u8 / 2 + n, 90 + n])
        }))
    }

    #[test]
    fn identical_images_score_100_and_distortion_lowers_it() {
        let image = noise(64, 48, 1);
        let reference = Reference::new(&image).expect("big enough");
        let same = reference.score(&image).expect("score");
        assert!(same > 99.9, "{same}");
        let mut blurred = image.blur(1.5);
        let lower = reference.score(&blurred).expect("score");
        assert!(lower < 90.0, "{lower}");
        blurred = image.resize_exact(32, 24, image::imageops::FilterType::Triangle);
        assert!(
            reference.score(&blurred).is_none(),
            "size mismatch is no score"
        );
    }

    #[test]
    fn tiny_images_have_no_reference() {
        assert!(Reference::new(&noise(7, 100, 1)).is_none());
    }

    #[test]
    fn the_sample_of_an_image_with_alpha_keeps_its_alpha() {
        let image = DynamicImage::ImageRgba8(RgbaImage::from_fn(1600, 1200, |x, y| {
            image::Rgba([(x % 256) as u8, (y % 256) as u8, 7, ((x + y) % 251) as u8])
        }));
        let mosaic = sample(&image);
        let DynamicImage::ImageRgba8(m) = &mosaic else {
            panic!("an RGBA sample, not {:?}", mosaic.color());
        };
        let (ox, oy) = (tile_origins(1600)[3], tile_origins(1200)[1]);
        let source = image.to_rgba8();
        assert_eq!(
            m.get_pixel(3 * TILE + 9, TILE + 4),
            source.get_pixel(ox + 9, oy + 4)
        );
    }

    #[test]
    fn sample_is_a_16_aligned_mosaic_of_the_source() {
        let image = noise(2000, 1500, 3);
        assert!(wants_sample(2000, 1500));
        assert!(!wants_sample(1200, 1000));
        let mosaic = sample(&image);
        assert_eq!(mosaic.dimensions(), (1024, 1024));
        let origins = tile_origins(2000);
        assert_eq!(origins.first(), Some(&0));
        assert!(origins.iter().all(|o| o % 16 == 0 && o + TILE <= 2000));
        let rgb = image.to_rgb8();
        let m = mosaic.to_rgb8();
        let (ox, oy) = (origins[1], tile_origins(1500)[2]);
        assert_eq!(
            m.get_pixel(TILE + 5, 2 * TILE + 7),
            rgb.get_pixel(ox + 5, oy + 7)
        );
    }
}
