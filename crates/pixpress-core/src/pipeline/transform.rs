//! Step 4: follow an output's [`ResizePlan`] on the decoded pixels: choose the smart-crop origin
//! if asked, crop, resample with Lanczos3 (fast_image_resize: SIMD, alpha premultiplied during
//! filtering so transparent pixels do not bleed dark fringes, 8- and 16-bit, grey and colour),
//! then pad for `fill`; an animation gets the same on every frame. Geometry is decided before
//! this runs; this module only follows it, also on a JPEG the decode step shrank on load: the
//! plan's crop window (source pixels) is mapped onto the smaller pixels exactly, as a
//! fractional window, and resampled to the same output size.

use std::borrow::Cow;

use fast_image_resize::{CropBox, FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, GenericImageView, Rgba as ImageRgba, RgbaImage};

use super::decode::{Shrink, Source};
use super::plan::geometry::{Rect, ResizePlan};
use super::smart::smart_crop_origin;
use crate::codec::{Carried, RgbaFrame};
use crate::error::CoreError;

/// The pixels one output is encoded from: borrowed from the source when there is no resize.
pub enum Pixels<'a> {
    /// The lossless shortcut: nothing was decoded.
    Untouched,
    Still {
        image: Cow<'a, DynamicImage>,
        carried: &'a Carried,
    },
    Frames {
        frames: Cow<'a, [RgbaFrame]>,
        loops: Option<u16>,
    },
}

impl Pixels<'_> {
    /// Width and height of what will be encoded; `None` when nothing was decoded.
    pub fn dimensions(&self) -> Option<(u32, u32)> {
        match self {
            Pixels::Untouched => None,
            Pixels::Still { image, .. } => Some(image.dimensions()),
            Pixels::Frames { frames, .. } => frames.first().map(|f| f.image.dimensions()),
        }
    }
}

/// The step. `resize` is `None` for an output at the source size.
pub fn run<'a>(source: &'a Source, resize: Option<&ResizePlan>) -> Result<Pixels<'a>, CoreError> {
    Ok(match source {
        Source::Untouched => Pixels::Untouched,
        Source::Still {
            image,
            carried,
            shrink,
        } => Pixels::Still {
            image: match (resize, shrink) {
                (Some(plan), None) => Cow::Owned(apply_resize(image, plan)?),
                (Some(plan), Some(shrink)) => Cow::Owned(apply_resize_shrunk(image, plan, shrink)?),
                (None, None) => Cow::Borrowed(image),
                // The decode step shrinks only when every output is resized.
                (None, Some(_)) => return Err(shrunk_without_plan()),
            },
            carried,
        },
        Source::Frames(animation) => Pixels::Frames {
            frames: match resize {
                Some(plan) => Cow::Owned(resize_frames(&animation.frames, plan)?),
                None => Cow::Borrowed(&animation.frames),
            },
            loops: animation.loops,
        },
    })
}

/// Applies `plan` to every frame. A smart crop is placed once, on the first frame, and that
/// window used for all: a window chosen per frame would jump about as the content moves.
fn resize_frames(frames: &[RgbaFrame], plan: &ResizePlan) -> Result<Vec<RgbaFrame>, CoreError> {
    let placed;
    let plan = match (plan.smart_crop, frames.first()) {
        (Some(_), Some(first)) => {
            placed = ResizePlan {
                crop: resolve_crop(&DynamicImage::ImageRgba8(first.image.clone()), plan),
                smart_crop: None,
                ..plan.clone()
            };
            &placed
        }
        _ => plan,
    };
    frames
        .iter()
        .map(|frame| {
            let source = DynamicImage::ImageRgba8(frame.image.clone());
            let image: RgbaImage = apply_resize(&source, plan)?.to_rgba8();
            Ok(RgbaFrame {
                image,
                delay_ms: frame.delay_ms,
            })
        })
        .collect()
}

/// Crops, resamples and pads one image as `plan` says.
pub fn apply_resize(image: &DynamicImage, plan: &ResizePlan) -> Result<DynamicImage, CoreError> {
    let crop = resolve_crop(image, plan);
    let scaled = if plan.scaled == crop.size() {
        image.crop_imm(crop.x, crop.y, crop.width, crop.height)
    } else {
        resample(image, window(crop), plan.scaled)?
    };
    Ok(finish(scaled, plan))
}

/// Follows `plan` (made for the full-size source) on pixels decoded at 1/`shrink.factor`: the
/// crop window is mapped onto them without rounding and resampled to the plan's size, so the
/// output has the size, and shows the region, it has without shrink-on-load.
fn apply_resize_shrunk(
    image: &DynamicImage,
    plan: &ResizePlan,
    shrink: &Shrink,
) -> Result<DynamicImage, CoreError> {
    if plan.smart_crop.is_some() {
        // Smart crop places its window from full-size pixels; the decode step never shrinks
        // for it.
        return Err(shrunk_without_plan());
    }
    let scaled = resample(image, shrunk_window(plan.crop, shrink), plan.scaled)?;
    Ok(finish(scaled, plan))
}

/// `crop` (source pixels) in the pixels of a source shrunk on load.
fn shrunk_window(crop: Rect, shrink: &Shrink) -> CropBox {
    let factor = f64::from(shrink.factor);
    // Exact in f64: the factor is a power of two and every value is far below 2^53.
    CropBox {
        left: f64::from(crop.x) / factor + shrink.origin.0,
        top: f64::from(crop.y) / factor + shrink.origin.1,
        width: f64::from(crop.width) / factor,
        height: f64::from(crop.height) / factor,
    }
}

fn window(crop: Rect) -> CropBox {
    CropBox {
        left: f64::from(crop.x),
        top: f64::from(crop.y),
        width: f64::from(crop.width),
        height: f64::from(crop.height),
    }
}

fn shrunk_without_plan() -> CoreError {
    CoreError::Encode("the source was shrunk on load for an output it does not fit".into())
}

/// Pads the resampled image onto the canvas for `fill`.
fn finish(scaled: DynamicImage, plan: &ResizePlan) -> DynamicImage {
    match plan.background {
        Some(bg) if plan.canvas != plan.scaled || bg.a < 255 => {
            pad(&scaled, plan, [bg.r, bg.g, bg.b, bg.a])
        }
        _ => scaled,
    }
}

/// The crop window in `image`'s pixels: the plan's, or for a smart crop the window of the
/// plan's size placed on these pixels.
pub fn resolve_crop(image: &DynamicImage, plan: &ResizePlan) -> Rect {
    let Some((w, h)) = plan.smart_crop else {
        return plan.crop;
    };
    let rgba = image.to_rgba8();
    let (x, y) = smart_crop_origin(image.width(), image.height(), rgba.as_raw(), w, h);
    Rect::new(x, y, w, h)
}

/// Lanczos3 from `crop` (possibly fractional; neighbours outside it still weigh in, as far
/// as the image reaches) to `width`×`height`.
fn resample(
    image: &DynamicImage,
    crop: CropBox,
    (width, height): (u32, u32),
) -> Result<DynamicImage, CoreError> {
    // fast_image_resize handles the 8/16-bit integer layouts; float images go through RGBA8.
    let converted;
    let source = match image {
        DynamicImage::ImageRgb32F(_) | DynamicImage::ImageRgba32F(_) => {
            converted = DynamicImage::ImageRgba8(image.to_rgba8());
            &converted
        }
        _ => image,
    };
    let mut target = DynamicImage::new(width, height, source.color());
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .crop(crop.left, crop.top, crop.width, crop.height);
    Resizer::new()
        .resize(source, &mut target, &options)
        .map_err(|e| CoreError::Encode(format!("resize: {e}")))?;
    Ok(target)
}

fn pad(scaled: &DynamicImage, plan: &ResizePlan, background: [u8; 4]) -> DynamicImage {
    let (cw, ch) = plan.canvas;
    let mut canvas = RgbaImage::from_pixel(cw, ch, ImageRgba(background));
    let top = scaled.to_rgba8();
    image::imageops::overlay(
        &mut canvas,
        &top,
        i64::from(plan.offset.0),
        i64::from(plan.offset.1),
    );
    if background[3] == 255 && !scaled.color().has_alpha() {
        DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(canvas).to_rgb8())
    } else {
        DynamicImage::ImageRgba8(canvas)
    }
}

/// Pixel at (x, y) as RGBA8, for tests.
#[cfg(test)]
fn rgba_at(image: &DynamicImage, x: u32, y: u32) -> [u8; 4] {
    image.get_pixel(x, y).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::color::Rgba;
    use crate::pipeline::plan::geometry::{plan_resize, Gravity, ResizeSpec, Strategy};

    /// A 300x300 image whose nine 100x100 regions each have their own colour.
    fn nine_regions() -> DynamicImage {
        let mut img = RgbaImage::new(300, 300);
        for (x, y, p) in img.enumerate_pixels_mut() {
            let region = (y / 100) * 3 + x / 100;
            *p = ImageRgba([
                (region * 25) as u8,
                255 - (region * 25) as u8,
                (region * 10) as u8,
                255,
            ]);
        }
        DynamicImage::ImageRgba8(img)
    }

    fn region_colour(region: u32) -> [u8; 4] {
        [
            (region * 25) as u8,
            255 - (region * 25) as u8,
            (region * 10) as u8,
            255,
        ]
    }

    #[test]
    fn gravity_picks_the_right_region() {
        let img = nine_regions();
        let cases = [
            (Gravity::NorthWest, 0),
            (Gravity::North, 1),
            (Gravity::NorthEast, 2),
            (Gravity::West, 3),
            (Gravity::Center, 4),
            (Gravity::East, 5),
            (Gravity::SouthWest, 6),
            (Gravity::South, 7),
            (Gravity::SouthEast, 8),
        ];
        for (gravity, region) in cases {
            let spec = ResizeSpec {
                strategy: Strategy::Crop {
                    width: 100,
                    height: 100,
                    gravity,
                    origin: None,
                    scale_percent: None,
                },
                enlarge: false,
            };
            let p = plan_resize(300, 300, &spec).unwrap();
            let out = apply_resize(&img, &p).unwrap();
            assert_eq!(out.dimensions(), (100, 100));
            for (x, y) in [(0, 0), (99, 0), (50, 50), (0, 99), (99, 99)] {
                assert_eq!(
                    rgba_at(&out, x, y),
                    region_colour(region),
                    "{gravity:?} at ({x},{y})"
                );
            }
        }
    }

    #[test]
    fn custom_crop_returns_exactly_the_rectangle() {
        let img = nine_regions();
        let spec = ResizeSpec {
            strategy: Strategy::Crop {
                width: 37,
                height: 21,
                gravity: Gravity::Center,
                origin: Some((123, 45)),
                scale_percent: None,
            },
            enlarge: false,
        };
        let out = apply_resize(&img, &plan_resize(300, 300, &spec).unwrap()).unwrap();
        assert_eq!(out.dimensions(), (37, 21));
        for y in 0..21 {
            for x in 0..37 {
                assert_eq!(rgba_at(&out, x, y), rgba_at(&img, 123 + x, 45 + y));
            }
        }
    }

    #[test]
    fn fill_pads_with_the_background() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            200,
            100,
            image::Rgb([0, 0, 255]),
        ));
        let spec = ResizeSpec {
            strategy: Strategy::Fill {
                width: 100,
                height: 100,
                background: Rgba {
                    r: 255,
                    g: 102,
                    b: 0,
                    a: 255,
                },
            },
            enlarge: false,
        };
        let out = apply_resize(&img, &plan_resize(200, 100, &spec).unwrap()).unwrap();
        assert_eq!(out.dimensions(), (100, 100));
        assert_eq!(
            rgba_at(&out, 50, 5),
            [255, 102, 0, 255],
            "top band is padding"
        );
        assert_eq!(
            rgba_at(&out, 50, 95),
            [255, 102, 0, 255],
            "bottom band is padding"
        );
        assert_eq!(
            rgba_at(&out, 50, 50),
            [0, 0, 255, 255],
            "middle is the image"
        );
        assert!(!out.color().has_alpha());
    }

    #[test]
    fn resampling_keeps_transparent_pixels_from_darkening_edges() {
        // Half opaque white, half fully transparent black: premultiplied filtering keeps the
        // visible colour white at the boundary instead of greying it.
        let mut img = RgbaImage::new(100, 10);
        for (x, _, p) in img.enumerate_pixels_mut() {
            *p = if x < 50 {
                ImageRgba([255, 255, 255, 255])
            } else {
                ImageRgba([0, 0, 0, 0])
            };
        }
        let img = DynamicImage::ImageRgba8(img);
        let spec = ResizeSpec {
            strategy: Strategy::Exact {
                width: 33,
                height: 3,
            },
            enlarge: false,
        };
        let out = apply_resize(&img, &plan_resize(100, 10, &spec).unwrap()).unwrap();
        let row: Vec<[u8; 4]> = (0..33).map(|x| rgba_at(&out, x, 1)).collect();
        // Both sides survive, and the boundary blends: there are pixels of every kind to check.
        assert_eq!(row[0], [255, 255, 255, 255], "{row:?}");
        assert_eq!(row[32][3], 0, "{row:?}");
        let blended = row.iter().filter(|p| p[3] > 0 && p[3] < 255).count();
        assert!(
            blended >= 1,
            "no partly transparent pixel at the boundary: {row:?}"
        );
        // Every pixel that shows at all is white, however faintly it shows.
        let visible: Vec<(usize, &[u8; 4])> =
            row.iter().enumerate().filter(|(_, p)| p[3] > 0).collect();
        assert!(visible.len() >= 16, "{row:?}");
        for (x, p) in visible {
            assert!(
                p[..3].iter().all(|&c| c > 240),
                "visible pixel {x} darkened: {p:?}"
            );
        }
    }

    #[test]
    fn sixteen_bit_and_grey_resize() {
        let img = DynamicImage::ImageLuma16(image::ImageBuffer::from_pixel(
            64,
            64,
            image::Luma([40000u16]),
        ));
        let spec = ResizeSpec {
            strategy: Strategy::Exact {
                width: 10,
                height: 20,
            },
            enlarge: false,
        };
        let out = apply_resize(&img, &plan_resize(64, 64, &spec).unwrap()).unwrap();
        assert_eq!(out.dimensions(), (10, 20));
        assert!(matches!(out, DynamicImage::ImageLuma16(_)));
        assert_eq!(out.as_luma16().unwrap().get_pixel(5, 5)[0], 40000);
    }
}
