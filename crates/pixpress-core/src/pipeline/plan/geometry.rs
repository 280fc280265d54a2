//! Resize geometry, the pure half of the plan step: turns a source size and a requested
//! [`ResizeSpec`] into a [`ResizePlan`] (which source rectangle to use, what size to resample
//! it to and how to place it on the output canvas). No pixels are touched here; the transform
//! step follows the plan, and `smart` picks the crop origin when gravity is
//! [`Gravity::Smart`]. This module owns the limits on requested dimensions and the rounding
//! rules, so every strategy agrees on them.

use thiserror::Error;

use crate::pipeline::color::Rgba;

/// Largest width or height a request may name or an output may have.
pub const MAX_DIMENSION: u32 = 16384;

/// Largest crop scale factor, in percent; beyond this a request is more likely
/// a mistake than an intent, and output limits would reject most images anyway.
pub const MAX_SCALE_PERCENT: f64 = 1000.0;

/// Which part of the image a crop window keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gravity {
    North,
    NorthWest,
    NorthEast,
    West,
    Center,
    East,
    SouthEast,
    SouthWest,
    South,
    Smart,
}

impl Gravity {
    /// Accepts the short (`n`, `tl`, ...) and long (`north`, `northwest`, ...)
    /// spellings, case-insensitive; `-`, `_` and spaces inside long names are ignored
    /// so that `north-west` and `North West` work too.
    pub fn parse(s: &str) -> Option<Gravity> {
        let key: String = s
            .trim()
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' '))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let gravity = match key.as_str() {
            "n" | "t" | "north" => Gravity::North,
            "nw" | "tl" | "northwest" => Gravity::NorthWest,
            "ne" | "tr" | "northeast" => Gravity::NorthEast,
            "w" | "l" | "west" => Gravity::West,
            "c" | "center" | "centre" => Gravity::Center,
            "e" | "r" | "east" => Gravity::East,
            "se" | "br" | "southeast" => Gravity::SouthEast,
            "sw" | "bl" | "southwest" => Gravity::SouthWest,
            "s" | "b" | "south" => Gravity::South,
            "smart" => Gravity::Smart,
            _ => return None,
        };
        Some(gravity)
    }

    /// Top-left of a `window` placed inside `outer` by this gravity. The window
    /// must not be larger than `outer` (callers clamp first). Smart falls back to
    /// centre; the real origin is chosen later from pixels.
    pub fn place(self, window: (u32, u32), outer: (u32, u32)) -> (u32, u32) {
        let slack_x = outer.0.saturating_sub(window.0);
        let slack_y = outer.1.saturating_sub(window.1);
        let (fx, fy) = self.anchor();
        (fx.offset(slack_x), fy.offset(slack_y))
    }

    fn anchor(self) -> (Anchor, Anchor) {
        use Anchor::{End, Middle, Start};
        match self {
            Gravity::North => (Middle, Start),
            Gravity::NorthWest => (Start, Start),
            Gravity::NorthEast => (End, Start),
            Gravity::West => (Start, Middle),
            Gravity::Center | Gravity::Smart => (Middle, Middle),
            Gravity::East => (End, Middle),
            Gravity::SouthEast => (End, End),
            Gravity::SouthWest => (Start, End),
            Gravity::South => (Middle, End),
        }
    }
}

/// Position along one axis.
#[derive(Clone, Copy)]
enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn offset(self, slack: u32) -> u32 {
        match self {
            Anchor::Start => 0,
            Anchor::Middle => slack / 2,
            Anchor::End => slack,
        }
    }
}

/// How the requested size relates to the source.
#[derive(Clone, Debug, PartialEq)]
pub enum Strategy {
    /// Exactly `width`×`height`, aspect ratio not kept.
    Exact { width: u32, height: u32 },
    /// Height exact, width from the aspect ratio.
    Portrait { height: u32 },
    /// Width exact, height from the aspect ratio.
    Landscape { width: u32 },
    /// Largest size fitting inside `width`×`height` keeping aspect ratio.
    Auto { width: u32, height: u32 },
    /// Cover `width`×`height` keeping aspect ratio and crop the overflow.
    Fit {
        width: u32,
        height: u32,
        gravity: Gravity,
    },
    /// Cut a window without scaling, optionally scaling the result afterwards.
    Crop {
        width: u32,
        height: u32,
        gravity: Gravity,
        origin: Option<(u32, u32)>,
        scale_percent: Option<f64>,
    },
    /// Square of the shorter side placed by gravity, resized to `size`×`size`.
    Square { size: u32, gravity: Gravity },
    /// Fit inside `width`×`height` and pad to exactly that size.
    Fill {
        width: u32,
        height: u32,
        background: Rgba,
    },
}

/// A strategy plus whether strategies that normally refuse to upscale may do so.
#[derive(Clone, Debug, PartialEq)]
pub struct ResizeSpec {
    pub strategy: Strategy,
    pub enlarge: bool,
}

/// An axis-aligned rectangle in pixel coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub const fn new(x: u32, y: u32, width: u32, height: u32) -> Rect {
        Rect {
            x,
            y,
            width,
            height,
        }
    }

    /// The whole of an image of the given size.
    pub const fn full(width: u32, height: u32) -> Rect {
        Rect::new(0, 0, width, height)
    }

    pub const fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }
}

/// Something the plan did differently from what was literally asked, worth
/// telling the client about but not worth failing the request for.
#[derive(Clone, Debug, PartialEq)]
pub enum ResizeWarning {
    NotEnlarged {
        requested: (u32, u32),
        kept: (u32, u32),
    },
    CropWindowClamped {
        requested: Rect,
        clamped: Rect,
    },
}

/// The geometry the executor follows: crop `crop` from the (oriented) source,
/// resample it to `scaled`, and place it at `offset` on a `canvas`-sized output
/// filled with `background` where not covered.
#[derive(Clone, Debug, PartialEq)]
pub struct ResizePlan {
    /// Region of the source to use; the whole image when nothing is cropped.
    pub crop: Rect,
    /// `Some((w, h))` when gravity is Smart: `crop`'s size is final but its
    /// origin must be chosen from pixels; `crop.x`/`crop.y` hold the centre
    /// placement as a fallback.
    pub smart_crop: Option<(u32, u32)>,
    /// Size the crop is resampled to (equal to the crop size when not resampled).
    pub scaled: (u32, u32),
    /// Final output size.
    pub canvas: (u32, u32),
    /// Where the scaled image sits on the canvas; non-zero only for Fill.
    pub offset: (u32, u32),
    /// Padding colour; `Some` only for Fill.
    pub background: Option<Rgba>,
    pub warnings: Vec<ResizeWarning>,
}

impl ResizePlan {
    /// True when the executor has to resample at all.
    pub fn needs_resample(&self) -> bool {
        self.scaled != self.crop.size()
    }
}

/// Why a request cannot be planned. Every variant except `EmptySource` names the
/// request field at fault so the API can point at it.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ResizeError {
    #[error("the source image has no pixels ({width}x{height})")]
    EmptySource { width: u32, height: u32 },
    #[error("{message}")]
    InvalidValue {
        field: &'static str,
        message: String,
    },
    #[error("{message}")]
    OriginOutsideImage {
        field: &'static str,
        message: String,
    },
    #[error("{message}")]
    OutputTooLarge {
        field: &'static str,
        message: String,
    },
}

impl ResizeError {
    /// The request field the error is about, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ResizeError::EmptySource { .. } => None,
            ResizeError::InvalidValue { field, .. }
            | ResizeError::OriginOutsideImage { field, .. }
            | ResizeError::OutputTooLarge { field, .. } => Some(field),
        }
    }

    /// The human-readable message (same as `Display`).
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// Plans how to turn a `source_width`×`source_height` image into what `spec`
/// asks for. Never panics; all arithmetic is widened so any `u32` input is safe.
pub fn plan_resize(
    source_width: u32,
    source_height: u32,
    spec: &ResizeSpec,
) -> Result<ResizePlan, ResizeError> {
    validate_strategy(&spec.strategy)?;
    if source_width == 0 || source_height == 0 {
        return Err(ResizeError::EmptySource {
            width: source_width,
            height: source_height,
        });
    }
    let source = (source_width, source_height);
    let plan = match &spec.strategy {
        Strategy::Exact { width, height } => Ok(resample_whole(source, (*width, *height))),
        Strategy::Portrait { height } => Ok(plan_portrait(source, *height, spec.enlarge)),
        Strategy::Landscape { width } => Ok(plan_landscape(source, *width, spec.enlarge)),
        Strategy::Auto { width, height } => Ok(plan_auto(source, (*width, *height), spec.enlarge)),
        Strategy::Fit {
            width,
            height,
            gravity,
        } => Ok(plan_fit(source, (*width, *height), *gravity)),
        Strategy::Crop {
            width,
            height,
            gravity,
            origin,
            scale_percent,
        } => plan_crop(source, (*width, *height), *gravity, *origin, *scale_percent),
        Strategy::Square { size, gravity } => Ok(plan_square(source, *size, *gravity)),
        Strategy::Fill {
            width,
            height,
            background,
        } => Ok(plan_fill(source, (*width, *height), *background)),
    }?;
    check_output(&plan, &spec.strategy)?;
    Ok(plan)
}

fn validate_strategy(strategy: &Strategy) -> Result<(), ResizeError> {
    match strategy {
        Strategy::Exact { width, height }
        | Strategy::Auto { width, height }
        | Strategy::Fit { width, height, .. }
        | Strategy::Fill { width, height, .. } => {
            check_dimension("width", *width)?;
            check_dimension("height", *height)
        }
        Strategy::Portrait { height } => check_dimension("height", *height),
        Strategy::Landscape { width } => check_dimension("width", *width),
        Strategy::Square { size, .. } => check_dimension("size", *size),
        Strategy::Crop {
            width,
            height,
            origin,
            scale_percent,
            ..
        } => {
            check_dimension("width", *width)?;
            check_dimension("height", *height)?;
            if let Some((x, y)) = origin {
                check_coordinate("x", *x)?;
                check_coordinate("y", *y)?;
            }
            scale_percent.map_or(Ok(()), check_scale)
        }
    }
}

fn check_dimension(field: &'static str, value: u32) -> Result<(), ResizeError> {
    if (1..=MAX_DIMENSION).contains(&value) {
        return Ok(());
    }
    Err(ResizeError::InvalidValue {
        field,
        message: format!(
            "{field} must be an integer from 1 to {MAX_DIMENSION}, but received {value}"
        ),
    })
}

/// Crop origins may be 0 (the image edge); only the upper limit applies here,
/// the image bounds are checked once the source size is known.
fn check_coordinate(field: &'static str, value: u32) -> Result<(), ResizeError> {
    if value <= MAX_DIMENSION {
        return Ok(());
    }
    Err(ResizeError::InvalidValue {
        field,
        message: format!(
            "{field} must be an integer from 0 to {MAX_DIMENSION}, but received {value}"
        ),
    })
}

fn check_scale(percent: f64) -> Result<(), ResizeError> {
    if percent.is_finite() && percent > 0.0 && percent <= MAX_SCALE_PERCENT {
        return Ok(());
    }
    Err(ResizeError::InvalidValue {
        field: "scale",
        message: format!(
            "scale must be a percentage above 0 and at most {MAX_SCALE_PERCENT}, but received {percent}"
        ),
    })
}

/// Rejects plans whose output would break the dimension limit, blaming the
/// field that drove the size (the caller can't change the source).
fn check_output(plan: &ResizePlan, strategy: &Strategy) -> Result<(), ResizeError> {
    let (w, h) = plan.canvas;
    if w <= MAX_DIMENSION && h <= MAX_DIMENSION {
        return Ok(());
    }
    let field = match strategy {
        Strategy::Portrait { .. } => "height",
        Strategy::Landscape { .. } => "width",
        Strategy::Crop { .. } => "scale",
        Strategy::Square { .. } => "size",
        _ => "width",
    };
    Err(ResizeError::OutputTooLarge {
        field,
        message: format!(
            "{field} would produce a {w}x{h} output, larger than the {MAX_DIMENSION} pixel limit per side"
        ),
    })
}

/// `value * num / den` rounded to the nearest integer, at least 1, saturating at
/// `u32::MAX`. Integer arithmetic keeps results exact and platform-independent.
fn scale_dim(value: u32, num: u32, den: u32) -> u32 {
    let den = u128::from(den.max(1));
    let product = u128::from(value) * u128::from(num);
    let rounded = (product * 2 + den) / (den * 2);
    u32::try_from(rounded.max(1)).unwrap_or(u32::MAX)
}

/// A plan that uses the whole source and resamples it to `target`.
fn resample_whole(source: (u32, u32), target: (u32, u32)) -> ResizePlan {
    ResizePlan {
        crop: Rect::full(source.0, source.1),
        smart_crop: None,
        scaled: target,
        canvas: target,
        offset: (0, 0),
        background: None,
        warnings: Vec::new(),
    }
}

/// Uses `target` unless it would upscale and enlarging is not allowed, in which
/// case the source size is kept and the client is told why.
fn resample_unless_enlarging(
    source: (u32, u32),
    target: (u32, u32),
    enlarges: bool,
    enlarge: bool,
) -> ResizePlan {
    if !enlarges || enlarge {
        return resample_whole(source, target);
    }
    let mut plan = resample_whole(source, source);
    plan.warnings.push(ResizeWarning::NotEnlarged {
        requested: target,
        kept: source,
    });
    plan
}

fn plan_portrait(source: (u32, u32), height: u32, enlarge: bool) -> ResizePlan {
    let width = scale_dim(source.0, height, source.1);
    resample_unless_enlarging(source, (width, height), height > source.1, enlarge)
}

fn plan_landscape(source: (u32, u32), width: u32, enlarge: bool) -> ResizePlan {
    let height = scale_dim(source.1, width, source.0);
    resample_unless_enlarging(source, (width, height), width > source.0, enlarge)
}

/// True when the source is relatively wider than `box_`, i.e. width is the
/// limiting side when fitting inside the box (cross-multiplied to avoid floats).
fn wider_than(source: (u32, u32), box_: (u32, u32)) -> bool {
    u64::from(source.0) * u64::from(box_.1) >= u64::from(source.1) * u64::from(box_.0)
}

/// Largest size with the source's aspect ratio that fits inside `box_`, and
/// whether it is an upscale.
fn contain(source: (u32, u32), box_: (u32, u32)) -> ((u32, u32), bool) {
    if wider_than(source, box_) {
        let h = scale_dim(source.1, box_.0, source.0).min(box_.1);
        ((box_.0, h), box_.0 > source.0)
    } else {
        let w = scale_dim(source.0, box_.1, source.1).min(box_.0);
        ((w, box_.1), box_.1 > source.1)
    }
}

fn plan_auto(source: (u32, u32), box_: (u32, u32), enlarge: bool) -> ResizePlan {
    let (target, enlarges) = contain(source, box_);
    resample_unless_enlarging(source, target, enlarges, enlarge)
}

/// The largest window with `target`'s aspect ratio that fits in the source.
fn cover_window(source: (u32, u32), target: (u32, u32)) -> (u32, u32) {
    if wider_than(source, target) {
        let w = scale_dim(source.1, target.0, target.1).min(source.0);
        (w, source.1)
    } else {
        let h = scale_dim(source.0, target.1, target.0).min(source.1);
        (source.0, h)
    }
}

/// A crop rectangle of size `window` (already within the source) placed by gravity.
fn gravity_crop(
    source: (u32, u32),
    window: (u32, u32),
    gravity: Gravity,
) -> (Rect, Option<(u32, u32)>) {
    let (x, y) = gravity.place(window, source);
    let smart = (gravity == Gravity::Smart).then_some(window);
    (Rect::new(x, y, window.0, window.1), smart)
}

fn plan_fit(source: (u32, u32), target: (u32, u32), gravity: Gravity) -> ResizePlan {
    let window = cover_window(source, target);
    let (crop, smart_crop) = gravity_crop(source, window, gravity);
    ResizePlan {
        crop,
        smart_crop,
        ..resample_whole(source, target)
    }
}

fn plan_square(source: (u32, u32), size: u32, gravity: Gravity) -> ResizePlan {
    let side = source.0.min(source.1);
    let (crop, smart_crop) = gravity_crop(source, (side, side), gravity);
    ResizePlan {
        crop,
        smart_crop,
        ..resample_whole(source, (size, size))
    }
}

fn plan_fill(source: (u32, u32), box_: (u32, u32), background: Rgba) -> ResizePlan {
    let (scaled, _) = contain(source, box_);
    let offset = ((box_.0 - scaled.0) / 2, (box_.1 - scaled.1) / 2);
    ResizePlan {
        crop: Rect::full(source.0, source.1),
        smart_crop: None,
        scaled,
        canvas: box_,
        offset,
        background: Some(background),
        warnings: Vec::new(),
    }
}

fn plan_crop(
    source: (u32, u32),
    window: (u32, u32),
    gravity: Gravity,
    origin: Option<(u32, u32)>,
    scale_percent: Option<f64>,
) -> Result<ResizePlan, ResizeError> {
    let CropWindow {
        crop,
        smart_crop,
        requested,
    } = match origin {
        Some(origin) => origin_crop(source, window, origin)?,
        None => gravity_window_crop(source, window, gravity),
    };
    let mut warnings = Vec::new();
    if crop != requested {
        warnings.push(ResizeWarning::CropWindowClamped {
            requested,
            clamped: crop,
        });
    }
    let scaled = scale_percent.map_or(crop.size(), |p| scale_by_percent(crop.size(), p));
    Ok(ResizePlan {
        crop,
        smart_crop,
        scaled,
        canvas: scaled,
        offset: (0, 0),
        background: None,
        warnings,
    })
}

/// The window the crop strategy settled on, and what was asked for, so the
/// difference can be reported.
struct CropWindow {
    crop: Rect,
    smart_crop: Option<(u32, u32)>,
    requested: Rect,
}

fn origin_crop(
    source: (u32, u32),
    window: (u32, u32),
    (x, y): (u32, u32),
) -> Result<CropWindow, ResizeError> {
    check_inside("x", x, source.0, "width")?;
    check_inside("y", y, source.1, "height")?;
    let requested = Rect::new(x, y, window.0, window.1);
    let clamped = Rect::new(x, y, window.0.min(source.0 - x), window.1.min(source.1 - y));
    Ok(CropWindow {
        crop: clamped,
        smart_crop: None,
        requested,
    })
}

fn check_inside(
    field: &'static str,
    value: u32,
    limit: u32,
    axis: &str,
) -> Result<(), ResizeError> {
    if value < limit {
        return Ok(());
    }
    Err(ResizeError::OriginOutsideImage {
        field,
        message: format!(
            "{field} must be inside the image (less than its {axis} of {limit}), but received {value}"
        ),
    })
}

/// A window larger than the image has no meaningful position of its own, so
/// the requested rect is reported at the clamped window's origin.
fn gravity_window_crop(source: (u32, u32), window: (u32, u32), gravity: Gravity) -> CropWindow {
    let clamped_size = (window.0.min(source.0), window.1.min(source.1));
    let (crop, smart_crop) = gravity_crop(source, clamped_size, gravity);
    let requested = if clamped_size == window {
        crop
    } else {
        Rect::new(crop.x, crop.y, window.0, window.1)
    };
    CropWindow {
        crop,
        smart_crop,
        requested,
    }
}

fn scale_by_percent(size: (u32, u32), percent: f64) -> (u32, u32) {
    (
        scale_by_percent_1d(size.0, percent),
        scale_by_percent_1d(size.1, percent),
    )
}

/// Float is fine here: inputs are bounded (≤ 16384 × 1000%), far inside f64's
/// exact integer range, and the result is checked against the limit later.
fn scale_by_percent_1d(value: u32, percent: f64) -> u32 {
    let scaled = (f64::from(value) * percent / 100.0).round();
    if scaled >= f64::from(u32::MAX) {
        return u32::MAX;
    }
    (scaled as u32).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    // The explicit import wins over proptest's glob-exported `Strategy` trait,
    // which stays usable for its methods through the anonymous import.
    use super::Strategy;
    use proptest::prelude::*;
    use proptest::strategy::Strategy as _;

    fn spec(strategy: Strategy) -> ResizeSpec {
        ResizeSpec {
            strategy,
            enlarge: false,
        }
    }

    fn ok(sw: u32, sh: u32, strategy: Strategy) -> ResizePlan {
        match plan_resize(sw, sh, &spec(strategy)) {
            Ok(p) => p,
            Err(e) => panic!("plan failed: {e}"),
        }
    }

    fn err(sw: u32, sh: u32, strategy: Strategy) -> ResizeError {
        match plan_resize(sw, sh, &spec(strategy)) {
            Ok(p) => panic!("expected an error, got {p:?}"),
            Err(e) => e,
        }
    }

    fn fit(width: u32, height: u32, gravity: Gravity) -> Strategy {
        Strategy::Fit {
            width,
            height,
            gravity,
        }
    }

    fn crop(width: u32, height: u32, gravity: Gravity) -> Strategy {
        Strategy::Crop {
            width,
            height,
            gravity,
            origin: None,
            scale_percent: None,
        }
    }

    fn crop_at(width: u32, height: u32, x: u32, y: u32) -> Strategy {
        Strategy::Crop {
            width,
            height,
            gravity: Gravity::Center,
            origin: Some((x, y)),
            scale_percent: None,
        }
    }

    // --- Gravity parsing -------------------------------------------------

    #[test]
    fn gravity_short_names() {
        let cases = [
            ("n", Gravity::North),
            ("t", Gravity::North),
            ("nw", Gravity::NorthWest),
            ("tl", Gravity::NorthWest),
            ("ne", Gravity::NorthEast),
            ("tr", Gravity::NorthEast),
            ("w", Gravity::West),
            ("l", Gravity::West),
            ("c", Gravity::Center),
            ("e", Gravity::East),
            ("r", Gravity::East),
            ("se", Gravity::SouthEast),
            ("br", Gravity::SouthEast),
            ("sw", Gravity::SouthWest),
            ("bl", Gravity::SouthWest),
            ("s", Gravity::South),
            ("b", Gravity::South),
            ("smart", Gravity::Smart),
        ];
        for (text, expected) in cases {
            assert_eq!(Gravity::parse(text), Some(expected), "{text}");
        }
    }

    #[test]
    fn gravity_long_names_case_insensitive() {
        let cases = [
            ("North", Gravity::North),
            ("NORTHWEST", Gravity::NorthWest),
            ("north-east", Gravity::NorthEast),
            ("west", Gravity::West),
            ("center", Gravity::Center),
            ("Centre", Gravity::Center),
            ("east", Gravity::East),
            ("south_east", Gravity::SouthEast),
            ("southwest", Gravity::SouthWest),
            ("south", Gravity::South),
            (" SMART ", Gravity::Smart),
            ("NW", Gravity::NorthWest),
        ];
        for (text, expected) in cases {
            assert_eq!(Gravity::parse(text), Some(expected), "{text}");
        }
    }

    #[test]
    fn gravity_rejects_unknown() {
        for text in ["", "middle", "x", "northnorth", "top"] {
            assert_eq!(Gravity::parse(text), None, "{text}");
        }
    }

    #[test]
    fn gravity_placement_all_directions() {
        let outer = (100, 60);
        let window = (40, 20);
        let cases = [
            (Gravity::North, (30, 0)),
            (Gravity::NorthWest, (0, 0)),
            (Gravity::NorthEast, (60, 0)),
            (Gravity::West, (0, 20)),
            (Gravity::Center, (30, 20)),
            (Gravity::Smart, (30, 20)),
            (Gravity::East, (60, 20)),
            (Gravity::SouthEast, (60, 40)),
            (Gravity::SouthWest, (0, 40)),
            (Gravity::South, (30, 40)),
        ];
        for (gravity, expected) in cases {
            assert_eq!(gravity.place(window, outer), expected, "{gravity:?}");
        }
    }

    #[test]
    fn centre_placement_floors_odd_slack() {
        assert_eq!(Gravity::Center.place((10, 10), (15, 13)), (2, 1));
    }

    // --- exact -----------------------------------------------------------

    #[test]
    fn exact_ignores_aspect_and_enlarges() {
        let p = ok(
            100,
            50,
            Strategy::Exact {
                width: 300,
                height: 300,
            },
        );
        assert_eq!(p.crop, Rect::full(100, 50));
        assert_eq!(p.scaled, (300, 300));
        assert_eq!(p.canvas, (300, 300));
        assert_eq!(p.offset, (0, 0));
        assert!(p.warnings.is_empty());
        assert!(p.background.is_none());
        assert!(p.smart_crop.is_none());
    }

    // --- portrait / landscape -------------------------------------------

    #[test]
    fn portrait_keeps_aspect() {
        let p = ok(200, 100, Strategy::Portrait { height: 50 });
        assert_eq!(p.canvas, (100, 50));
        assert_eq!(p.scaled, (100, 50));
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn portrait_rounds_to_nearest() {
        // 333 * 50 / 100 = 166.5 -> 167
        assert_eq!(
            ok(333, 100, Strategy::Portrait { height: 50 }).canvas,
            (167, 50)
        );
        // 1 * 1 / 1000 -> 0.001 -> min 1
        assert_eq!(ok(1, 1000, Strategy::Portrait { height: 1 }).canvas, (1, 1));
    }

    #[test]
    fn portrait_does_not_enlarge_by_default() {
        let p = ok(200, 100, Strategy::Portrait { height: 400 });
        assert_eq!(p.canvas, (200, 100));
        assert!(!p.needs_resample());
        assert_eq!(
            p.warnings,
            vec![ResizeWarning::NotEnlarged {
                requested: (800, 400),
                kept: (200, 100)
            }]
        );
    }

    #[test]
    fn portrait_enlarges_when_asked() {
        let s = ResizeSpec {
            strategy: Strategy::Portrait { height: 400 },
            enlarge: true,
        };
        let p = plan_resize(200, 100, &s).expect("valid");
        assert_eq!(p.canvas, (800, 400));
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn portrait_same_size_is_not_a_warning() {
        let p = ok(200, 100, Strategy::Portrait { height: 100 });
        assert_eq!(p.canvas, (200, 100));
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn landscape_keeps_aspect() {
        let p = ok(200, 100, Strategy::Landscape { width: 50 });
        assert_eq!(p.canvas, (50, 25));
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn landscape_does_not_enlarge_by_default() {
        let p = ok(200, 100, Strategy::Landscape { width: 1000 });
        assert_eq!(p.canvas, (200, 100));
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn landscape_output_over_limit_is_an_error() {
        let s = ResizeSpec {
            strategy: Strategy::Landscape { width: 16384 },
            enlarge: true,
        };
        let e = plan_resize(1, 100, &s).expect_err("too tall");
        assert_eq!(e.field(), Some("width"));
        assert!(matches!(e, ResizeError::OutputTooLarge { .. }));
    }

    #[test]
    fn portrait_output_over_limit_is_an_error() {
        let e = err(100_000, 10, Strategy::Portrait { height: 5 });
        assert_eq!(e.field(), Some("height"));
        assert!(e.to_string().contains("16384"), "{e}");
    }

    // --- auto ------------------------------------------------------------

    #[test]
    fn auto_picks_limiting_side() {
        let wide = ok(
            400,
            100,
            Strategy::Auto {
                width: 200,
                height: 200,
            },
        );
        assert_eq!(wide.canvas, (200, 50));
        let tall = ok(
            100,
            400,
            Strategy::Auto {
                width: 200,
                height: 200,
            },
        );
        assert_eq!(tall.canvas, (50, 200));
    }

    #[test]
    fn auto_does_not_enlarge_by_default() {
        let p = ok(
            100,
            50,
            Strategy::Auto {
                width: 400,
                height: 400,
            },
        );
        assert_eq!(p.canvas, (100, 50));
        assert_eq!(
            p.warnings,
            vec![ResizeWarning::NotEnlarged {
                requested: (400, 200),
                kept: (100, 50)
            }]
        );
    }

    #[test]
    fn auto_enlarges_when_asked() {
        let s = ResizeSpec {
            strategy: Strategy::Auto {
                width: 400,
                height: 400,
            },
            enlarge: true,
        };
        assert_eq!(plan_resize(100, 50, &s).expect("valid").canvas, (400, 200));
    }

    // --- fit -------------------------------------------------------------

    #[test]
    fn fit_crops_overflow_by_gravity_horizontal() {
        let cases = [
            (Gravity::West, 0),
            (Gravity::NorthWest, 0),
            (Gravity::SouthWest, 0),
            (Gravity::Center, 25),
            (Gravity::North, 25),
            (Gravity::South, 25),
            (Gravity::East, 50),
            (Gravity::NorthEast, 50),
            (Gravity::SouthEast, 50),
        ];
        for (gravity, x) in cases {
            let p = ok(100, 50, fit(50, 50, gravity));
            assert_eq!(p.crop, Rect::new(x, 0, 50, 50), "{gravity:?}");
            assert_eq!(p.scaled, (50, 50));
            assert_eq!(p.canvas, (50, 50));
            assert!(p.smart_crop.is_none());
        }
    }

    #[test]
    fn fit_crops_overflow_by_gravity_vertical() {
        let cases = [
            (Gravity::North, 0),
            (Gravity::NorthEast, 0),
            (Gravity::West, 50),
            (Gravity::Center, 50),
            (Gravity::South, 100),
            (Gravity::SouthWest, 100),
        ];
        for (gravity, y) in cases {
            let p = ok(100, 200, fit(20, 20, gravity));
            assert_eq!(p.crop, Rect::new(0, y, 100, 100), "{gravity:?}");
            assert_eq!(p.canvas, (20, 20));
        }
    }

    #[test]
    fn fit_scales_up_as_asked() {
        let p = ok(10, 10, fit(100, 50, Gravity::Center));
        assert_eq!(p.crop, Rect::new(0, 2, 10, 5));
        assert_eq!(p.canvas, (100, 50));
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn fit_smart_reports_window() {
        let p = ok(100, 50, fit(50, 50, Gravity::Smart));
        assert_eq!(p.crop, Rect::new(25, 0, 50, 50));
        assert_eq!(p.smart_crop, Some((50, 50)));
    }

    #[test]
    fn fit_same_aspect_uses_whole_image() {
        let p = ok(200, 100, fit(100, 50, Gravity::East));
        assert_eq!(p.crop, Rect::full(200, 100));
    }

    // --- crop ------------------------------------------------------------

    #[test]
    fn crop_by_gravity_without_scaling() {
        let cases = [
            (Gravity::NorthWest, (0, 0)),
            (Gravity::North, (30, 0)),
            (Gravity::NorthEast, (60, 0)),
            (Gravity::West, (0, 20)),
            (Gravity::Center, (30, 20)),
            (Gravity::East, (60, 20)),
            (Gravity::SouthWest, (0, 40)),
            (Gravity::South, (30, 40)),
            (Gravity::SouthEast, (60, 40)),
        ];
        for (gravity, (x, y)) in cases {
            let p = ok(100, 60, crop(40, 20, gravity));
            assert_eq!(p.crop, Rect::new(x, y, 40, 20), "{gravity:?}");
            assert_eq!(p.scaled, (40, 20));
            assert_eq!(p.canvas, (40, 20));
            assert!(!p.needs_resample());
            assert!(p.warnings.is_empty());
        }
    }

    #[test]
    fn crop_smart_reports_window() {
        let p = ok(100, 60, crop(40, 20, Gravity::Smart));
        assert_eq!(p.smart_crop, Some((40, 20)));
        assert_eq!(p.crop, Rect::new(30, 20, 40, 20));
    }

    #[test]
    fn crop_larger_than_image_is_clamped_with_warning() {
        let p = ok(100, 60, crop(200, 30, Gravity::South));
        assert_eq!(p.crop, Rect::new(0, 30, 100, 30));
        assert_eq!(p.canvas, (100, 30));
        assert_eq!(
            p.warnings,
            vec![ResizeWarning::CropWindowClamped {
                requested: Rect::new(0, 30, 200, 30),
                clamped: Rect::new(0, 30, 100, 30),
            }]
        );
    }

    #[test]
    fn crop_at_origin() {
        let p = ok(100, 60, crop_at(10, 20, 5, 7));
        assert_eq!(p.crop, Rect::new(5, 7, 10, 20));
        assert_eq!(p.canvas, (10, 20));
        assert!(p.warnings.is_empty());
        assert!(p.smart_crop.is_none());
    }

    #[test]
    fn crop_at_zero_origin_is_allowed() {
        let p = ok(100, 60, crop_at(10, 20, 0, 0));
        assert_eq!(p.crop, Rect::new(0, 0, 10, 20));
    }

    #[test]
    fn crop_at_origin_extending_beyond_is_clamped() {
        let p = ok(100, 60, crop_at(50, 50, 80, 40));
        assert_eq!(p.crop, Rect::new(80, 40, 20, 20));
        assert_eq!(
            p.warnings,
            vec![ResizeWarning::CropWindowClamped {
                requested: Rect::new(80, 40, 50, 50),
                clamped: Rect::new(80, 40, 20, 20),
            }]
        );
    }

    #[test]
    fn crop_origin_outside_image_is_an_error() {
        let e = err(100, 60, crop_at(10, 10, 100, 0));
        assert_eq!(e.field(), Some("x"));
        assert!(matches!(e, ResizeError::OriginOutsideImage { .. }));
        let e = err(100, 60, crop_at(10, 10, 0, 60));
        assert_eq!(e.field(), Some("y"));
    }

    #[test]
    fn crop_origin_over_limit_is_an_error() {
        let e = err(100, 60, crop_at(10, 10, 16385, 0));
        assert_eq!(e.field(), Some("x"));
        assert!(matches!(e, ResizeError::InvalidValue { .. }));
        let e = err(100, 60, crop_at(10, 10, 0, u32::MAX));
        assert_eq!(e.field(), Some("y"));
    }

    fn scaled_crop(percent: f64) -> Strategy {
        Strategy::Crop {
            width: 40,
            height: 21,
            gravity: Gravity::Center,
            origin: None,
            scale_percent: Some(percent),
        }
    }

    #[test]
    fn crop_with_scale() {
        let p = ok(100, 60, scaled_crop(50.0));
        assert_eq!(p.crop.size(), (40, 21));
        assert_eq!(p.scaled, (20, 11));
        assert_eq!(p.canvas, (20, 11));
        let p = ok(100, 60, scaled_crop(250.0));
        assert_eq!(p.canvas, (100, 53));
        let p = ok(100, 60, scaled_crop(0.01));
        assert_eq!(p.canvas, (1, 1));
    }

    #[test]
    fn crop_scale_out_of_range_is_an_error() {
        for bad in [0.0, -5.0, 1000.5, f64::NAN, f64::INFINITY] {
            let e = err(100, 60, scaled_crop(bad));
            assert_eq!(e.field(), Some("scale"), "{bad}");
        }
    }

    #[test]
    fn crop_scale_output_over_limit_is_an_error() {
        let s = Strategy::Crop {
            width: 2000,
            height: 100,
            gravity: Gravity::Center,
            origin: None,
            scale_percent: Some(1000.0),
        };
        let e = err(5000, 5000, s);
        assert_eq!(e.field(), Some("scale"));
        assert!(matches!(e, ResizeError::OutputTooLarge { .. }));
    }

    // --- square ----------------------------------------------------------

    #[test]
    fn square_crops_shorter_side_by_gravity() {
        let cases = [
            (Gravity::West, 0),
            (Gravity::Center, 50),
            (Gravity::East, 100),
        ];
        for (gravity, x) in cases {
            let p = ok(200, 100, Strategy::Square { size: 64, gravity });
            assert_eq!(p.crop, Rect::new(x, 0, 100, 100), "{gravity:?}");
            assert_eq!(p.canvas, (64, 64));
        }
        let p = ok(
            100,
            300,
            Strategy::Square {
                size: 500,
                gravity: Gravity::South,
            },
        );
        assert_eq!(p.crop, Rect::new(0, 200, 100, 100));
        assert_eq!(p.canvas, (500, 500));
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn square_smart() {
        let p = ok(
            200,
            100,
            Strategy::Square {
                size: 10,
                gravity: Gravity::Smart,
            },
        );
        assert_eq!(p.smart_crop, Some((100, 100)));
    }

    // --- fill ------------------------------------------------------------

    #[test]
    fn fill_pads_and_centres() {
        let bg = Rgba::new(1, 2, 3, 4);
        let p = ok(
            200,
            100,
            Strategy::Fill {
                width: 100,
                height: 100,
                background: bg,
            },
        );
        assert_eq!(p.crop, Rect::full(200, 100));
        assert_eq!(p.scaled, (100, 50));
        assert_eq!(p.canvas, (100, 100));
        assert_eq!(p.offset, (0, 25));
        assert_eq!(p.background, Some(bg));
    }

    #[test]
    fn fill_enlarges() {
        let p = ok(
            10,
            20,
            Strategy::Fill {
                width: 101,
                height: 100,
                background: Rgba::WHITE,
            },
        );
        assert_eq!(p.scaled, (50, 100));
        assert_eq!(p.offset, (25, 0));
        assert!(p.warnings.is_empty());
    }

    // --- validation ------------------------------------------------------

    #[test]
    fn zero_or_oversized_dimensions_name_the_field() {
        let cases = [
            (
                Strategy::Exact {
                    width: 0,
                    height: 1,
                },
                "width",
            ),
            (
                Strategy::Exact {
                    width: 1,
                    height: 16385,
                },
                "height",
            ),
            (Strategy::Portrait { height: 0 }, "height"),
            (Strategy::Landscape { width: u32::MAX }, "width"),
            (
                Strategy::Square {
                    size: 0,
                    gravity: Gravity::Center,
                },
                "size",
            ),
            (fit(16385, 10, Gravity::Center), "width"),
            (crop(10, 0, Gravity::Center), "height"),
            (
                Strategy::Fill {
                    width: 10,
                    height: 0,
                    background: Rgba::WHITE,
                },
                "height",
            ),
            (
                Strategy::Auto {
                    width: 0,
                    height: 0,
                },
                "width",
            ),
        ];
        for (strategy, field) in cases {
            let e = err(100, 100, strategy.clone());
            assert_eq!(e.field(), Some(field), "{strategy:?}");
            assert!(e.to_string().contains(field), "{e}");
        }
    }

    #[test]
    fn max_dimension_is_allowed() {
        let p = ok(
            1,
            1,
            Strategy::Exact {
                width: MAX_DIMENSION,
                height: MAX_DIMENSION,
            },
        );
        assert_eq!(p.canvas, (MAX_DIMENSION, MAX_DIMENSION));
    }

    #[test]
    fn empty_source_is_an_error() {
        for (w, h) in [(0, 10), (10, 0), (0, 0)] {
            let e = err(
                w,
                h,
                Strategy::Exact {
                    width: 5,
                    height: 5,
                },
            );
            assert_eq!(
                e,
                ResizeError::EmptySource {
                    width: w,
                    height: h
                }
            );
            assert_eq!(e.field(), None);
        }
    }

    #[test]
    fn huge_sources_do_not_overflow() {
        let p = ok(u32::MAX, u32::MAX, fit(16384, 1, Gravity::SouthEast));
        assert_eq!(p.canvas, (16384, 1));
        assert_eq!(p.crop.x.checked_add(p.crop.width), Some(u32::MAX));
        let p = ok(u32::MAX, 1, Strategy::Landscape { width: 16384 });
        assert_eq!(p.canvas, (16384, 1));
    }

    // --- properties ------------------------------------------------------

    fn dim() -> impl proptest::strategy::Strategy<Value = u32> {
        1..=MAX_DIMENSION
    }

    fn any_source() -> impl proptest::strategy::Strategy<Value = u32> {
        prop_oneof![1..=64u32, 1..=20_000u32, any::<u32>()]
    }

    fn gravity() -> impl proptest::strategy::Strategy<Value = Gravity> {
        prop_oneof![
            Just(Gravity::North),
            Just(Gravity::NorthWest),
            Just(Gravity::NorthEast),
            Just(Gravity::West),
            Just(Gravity::Center),
            Just(Gravity::East),
            Just(Gravity::SouthEast),
            Just(Gravity::SouthWest),
            Just(Gravity::South),
            Just(Gravity::Smart),
        ]
    }

    fn valid_strategy() -> impl proptest::strategy::Strategy<Value = super::Strategy> {
        prop_oneof![
            (dim(), dim()).prop_map(|(width, height)| super::Strategy::Exact { width, height }),
            dim().prop_map(|height| super::Strategy::Portrait { height }),
            dim().prop_map(|width| super::Strategy::Landscape { width }),
            (dim(), dim()).prop_map(|(width, height)| super::Strategy::Auto { width, height }),
            (dim(), dim(), gravity()).prop_map(|(width, height, gravity)| {
                super::Strategy::Fit {
                    width,
                    height,
                    gravity,
                }
            }),
            (
                dim(),
                dim(),
                gravity(),
                proptest::option::of((0..=MAX_DIMENSION, 0..=MAX_DIMENSION)),
                proptest::option::of(0.01f64..=1000.0)
            )
                .prop_map(|(width, height, gravity, origin, scale_percent)| {
                    super::Strategy::Crop {
                        width,
                        height,
                        gravity,
                        origin,
                        scale_percent,
                    }
                }),
            (dim(), gravity())
                .prop_map(|(size, gravity)| super::Strategy::Square { size, gravity }),
            (dim(), dim()).prop_map(|(width, height)| super::Strategy::Fill {
                width,
                height,
                background: Rgba::WHITE,
            }),
        ]
    }

    /// The derived width agrees with the source aspect ratio within one pixel
    /// (the lower bound of 1 px is part of the rounding rule).
    fn width_follows_aspect(source: (u32, u32), out: (u32, u32)) -> bool {
        let expected = (f64::from(source.0) * f64::from(out.1) / f64::from(source.1)).max(1.0);
        (f64::from(out.0) - expected).abs() <= 1.0
    }

    fn height_follows_aspect(source: (u32, u32), out: (u32, u32)) -> bool {
        width_follows_aspect((source.1, source.0), (out.1, out.0))
    }

    /// For box-fitting strategies whichever side was derived follows the aspect.
    fn aspect_close(source: (u32, u32), out: (u32, u32)) -> bool {
        width_follows_aspect(source, out) || height_follows_aspect(source, out)
    }

    fn check_invariants(
        source: (u32, u32),
        s: &ResizeSpec,
        p: &ResizePlan,
    ) -> Result<(), TestCaseError> {
        let (sw, sh) = source;
        prop_assert!(p.canvas.0 >= 1 && p.canvas.1 >= 1);
        prop_assert!(p.canvas.0 <= MAX_DIMENSION && p.canvas.1 <= MAX_DIMENSION);
        prop_assert!(p.scaled.0 >= 1 && p.scaled.1 >= 1);
        prop_assert!(p.crop.width >= 1 && p.crop.height >= 1);
        prop_assert!(u64::from(p.crop.x) + u64::from(p.crop.width) <= u64::from(sw));
        prop_assert!(u64::from(p.crop.y) + u64::from(p.crop.height) <= u64::from(sh));
        prop_assert!(p.offset.0 + p.scaled.0 <= p.canvas.0);
        prop_assert!(p.offset.1 + p.scaled.1 <= p.canvas.1);
        if let Some(size) = p.smart_crop {
            prop_assert_eq!(size, p.crop.size());
        }
        check_strategy_promise(source, s, p)
    }

    fn check_strategy_promise(
        source: (u32, u32),
        s: &ResizeSpec,
        p: &ResizePlan,
    ) -> Result<(), TestCaseError> {
        let not_enlarged = p
            .warnings
            .iter()
            .any(|w| matches!(w, ResizeWarning::NotEnlarged { .. }));
        if not_enlarged {
            prop_assert!(!s.enlarge);
            prop_assert_eq!(p.canvas, source);
        }
        match &s.strategy {
            super::Strategy::Exact { width, height }
            | super::Strategy::Fit { width, height, .. } => {
                prop_assert_eq!(p.canvas, (*width, *height));
                prop_assert_eq!(p.scaled, (*width, *height));
            }
            super::Strategy::Fill { width, height, .. } => {
                prop_assert_eq!(p.canvas, (*width, *height));
                prop_assert!(p.scaled.0 == *width || p.scaled.1 == *height);
                prop_assert!(aspect_close(source, p.scaled));
                prop_assert!(p.background.is_some());
            }
            super::Strategy::Square { size, .. } => {
                prop_assert_eq!(p.canvas, (*size, *size));
                prop_assert_eq!(p.crop.width, p.crop.height);
            }
            super::Strategy::Portrait { height } => {
                prop_assert!(not_enlarged || p.canvas.1 == *height);
                prop_assert!(width_follows_aspect(source, p.canvas));
            }
            super::Strategy::Landscape { width } => {
                prop_assert!(not_enlarged || p.canvas.0 == *width);
                prop_assert!(height_follows_aspect(source, p.canvas));
            }
            super::Strategy::Auto { width, height } => {
                prop_assert!(not_enlarged || p.canvas.0 == *width || p.canvas.1 == *height);
                prop_assert!(p.canvas.0 <= *width && p.canvas.1 <= *height);
                prop_assert!(aspect_close(source, p.canvas));
            }
            super::Strategy::Crop {
                width,
                height,
                scale_percent,
                ..
            } => {
                prop_assert!(p.crop.width <= *width && p.crop.height <= *height);
                if scale_percent.is_none() {
                    prop_assert_eq!(p.canvas, p.crop.size());
                }
            }
        }
        if !matches!(s.strategy, super::Strategy::Fill { .. }) {
            prop_assert_eq!(p.offset, (0, 0));
            prop_assert_eq!(p.scaled, p.canvas);
        }
        Ok(())
    }

    /// Mostly values a request can carry, so that plans succeed and their invariants are
    /// checked; sometimes zero or anything a `u32` holds, so that the refusals run too.
    fn arbitrary_size() -> impl proptest::strategy::Strategy<Value = u32> {
        prop_oneof![
            4 => 1..=64u32,
            4 => 1..=MAX_DIMENSION,
            1 => Just(0u32),
            2 => any::<u32>(),
        ]
    }

    /// Mostly scales a request can carry; sometimes any `f64` (NaN, infinities, negatives).
    fn arbitrary_percent() -> impl proptest::strategy::Strategy<Value = f64> {
        prop_oneof![
            4 => 1.0..=400.0f64,
            2 => 0.0..=2.0 * MAX_SCALE_PERCENT,
            1 => any::<f64>(),
        ]
    }

    /// Source size, two request dimensions, a crop origin, a scale and `enlarge`.
    type ArbitraryCase = (u32, u32, u32, u32, u32, u32, f64, bool);

    fn arbitrary_case() -> impl proptest::strategy::Strategy<Value = ArbitraryCase> {
        (
            any_source(),
            any_source(),
            arbitrary_size(),
            arbitrary_size(),
            prop_oneof![0..=64u32, 0..=20_000u32, any::<u32>()],
            prop_oneof![0..=64u32, 0..=20_000u32, any::<u32>()],
            arbitrary_percent(),
            any::<bool>(),
        )
    }

    /// One spec of every strategy from the same drawn values.
    fn arbitrary_specs(a: u32, b: u32, x: u32, y: u32, pct: f64, enlarge: bool) -> Vec<ResizeSpec> {
        [
            super::Strategy::Exact {
                width: a,
                height: b,
            },
            super::Strategy::Portrait { height: a },
            super::Strategy::Landscape { width: b },
            super::Strategy::Auto {
                width: a,
                height: b,
            },
            super::Strategy::Fit {
                width: a,
                height: b,
                gravity: Gravity::SouthEast,
            },
            super::Strategy::Crop {
                width: a,
                height: b,
                gravity: Gravity::Smart,
                origin: Some((x, y)),
                scale_percent: Some(pct),
            },
            super::Strategy::Square {
                size: a,
                gravity: Gravity::NorthEast,
            },
            super::Strategy::Fill {
                width: a,
                height: b,
                background: Rgba::WHITE,
            },
        ]
        .into_iter()
        .map(|strategy| ResizeSpec { strategy, enlarge })
        .collect()
    }

    /// The arbitrary-input property is only as strong as the share of its cases that plan and
    /// so reach the invariant check: drawn as the property draws them, two in five must.
    #[test]
    fn arbitrary_input_often_reaches_the_invariant_check() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let (mut planned, mut tried) = (0usize, 0usize);
        for _ in 0..500 {
            let (sw, sh, a, b, x, y, pct, enlarge) = arbitrary_case()
                .new_tree(&mut runner)
                .expect("a case")
                .current();
            for s in arbitrary_specs(a, b, x, y, pct, enlarge) {
                tried += 1;
                planned += usize::from(plan_resize(sw, sh, &s).is_ok());
            }
        }
        // 1939 of 4000 when this was written; drawn from the whole of `u32`, almost none did.
        assert!(
            planned * 5 >= tried * 2,
            "only {planned} of {tried} arbitrary specs planned"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn valid_specs_plan_within_invariants(
            sw in any_source(),
            sh in any_source(),
            strategy in valid_strategy(),
            enlarge in any::<bool>(),
        ) {
            let s = ResizeSpec { strategy, enlarge };
            match plan_resize(sw, sh, &s) {
                Ok(p) => check_invariants((sw, sh), &s, &p)?,
                Err(e) => {
                    // Only output-size and origin errors can depend on the source.
                    prop_assert!(matches!(
                        e,
                        ResizeError::OutputTooLarge { .. } | ResizeError::OriginOutsideImage { .. }
                    ), "{:?}", e);
                    prop_assert!(e.field().is_some());
                }
            }
        }

        #[test]
        fn never_panics_on_arbitrary_input(
            (sw, sh, a, b, x, y, pct, enlarge) in arbitrary_case(),
        ) {
            for s in arbitrary_specs(a, b, x, y, pct, enlarge) {
                if let Ok(p) = plan_resize(sw, sh, &s) {
                    check_invariants((sw, sh), &s, &p)?;
                }
            }
        }

        #[test]
        fn portrait_and_landscape_exact_when_shrinking(
            sw in 1..=20_000u32,
            sh in 1..=20_000u32,
            t in dim(),
        ) {
            let portrait = plan_resize(sw, sh, &spec(super::Strategy::Portrait { height: t }));
            if let (Ok(p), true) = (portrait, t <= sh) {
                prop_assert_eq!(p.canvas.1, t);
                prop_assert!(p.warnings.is_empty());
            }
            let landscape = plan_resize(sw, sh, &spec(super::Strategy::Landscape { width: t }));
            if let (Ok(p), true) = (landscape, t <= sw) {
                prop_assert_eq!(p.canvas.0, t);
                prop_assert!(p.warnings.is_empty());
            }
        }
    }
}
