//! The `optimize` command's flags and their translation into the core's typed options: the
//! compression [`Request`], the one optional [`ResizeSpec`] and the [`Limits`]. The flags mirror
//! the API's fields (SPEC §3–§5); everything the core would refuse for every file alike is
//! refused here, once, before any file is read.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use pixpress_core::{
    parse_color, Gravity, Limits, Metadata, OutputFormat, Request, ResizeSpec, Rgba, Strategy,
    MAX_DIMENSION,
};
use thiserror::Error;

/// `pixpress optimize FILES/DIRS… --out DIR`.
#[derive(Args, Debug)]
pub struct OptimizeArgs {
    /// Images, or directories searched recursively for .jpg/.jpeg/.png/.gif/.webp/.avif and
    /// .bmp/.dib/.tif/.tiff/.jxl files.
    #[arg(required = true, value_name = "FILES/DIRS")]
    pub paths: Vec<PathBuf>,
    /// Directory the results are written to, each under its path relative to the directory
    /// given (a file given by name goes to the top). Created when missing.
    #[arg(long, value_name = "DIR", required_unless_present = "in_place")]
    pub out: Option<PathBuf>,
    /// Replace each input with its result, atomically, and only when the result is smaller.
    #[arg(long, conflicts_with = "out")]
    pub in_place: bool,
    /// Allow lossy compression (default: lossless, not one pixel changes).
    #[arg(long)]
    pub lossy: bool,
    /// Lossy quality 0–100 (default: searched for --quality-target).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100), requires = "lossy")]
    pub quality: Option<u8>,
    /// SSIMULACRA2 score the searched quality must reach (90 visually lossless, 80 high, 70 good).
    #[arg(long, value_parser = parse_quality_target, requires = "lossy", conflicts_with = "quality")]
    pub quality_target: Option<f64>,
    /// Also measure SSIMULACRA2 of a fixed --quality (a searched quality is always scored).
    #[arg(long, requires = "lossy")]
    pub score: bool,
    /// Output format (default: the input's).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Metadata to keep: strip (default), keep, or a comma-separated list of exif, icc, xmp,
    /// copyright, geotag.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "WHAT")]
    pub metadata: Vec<MetadataArg>,
    /// Colour transparent pixels are flattened on when the output has no alpha, and the
    /// padding of --resize fill (#f60, #ff6600, rgb(…), CSS names; fill also takes
    /// transparent). Default white.
    #[arg(long, value_parser = parse_background, value_name = "COLOUR")]
    pub background: Option<Rgba>,
    #[command(flatten)]
    pub resize: ResizeArgs,
    /// Files processed at once (default: the number of CPUs).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<NonZeroUsize>,
    /// Largest input in pixels (width × height × frames).
    #[arg(long, default_value_t = Limits::default().max_pixels)]
    pub max_pixels: u64,
    /// Print a JSON report (every file and the totals) on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The `resize` object of the API, flattened into flags.
#[derive(Args, Debug)]
pub struct ResizeArgs {
    /// Resize strategy, as the API's `resize.strategy`.
    #[arg(
        long = "resize",
        visible_alias = "resize-strategy",
        value_enum,
        value_name = "STRATEGY"
    )]
    pub strategy: Option<StrategyArg>,
    /// Width in pixels (exact, landscape, auto, fit, crop, fill).
    #[arg(long, value_parser = dimension)]
    pub width: Option<u32>,
    /// Height in pixels (exact, portrait, auto, fit, crop, fill).
    #[arg(long, value_parser = dimension)]
    pub height: Option<u32>,
    /// Side of the square (square).
    #[arg(long, value_parser = dimension)]
    pub size: Option<u32>,
    /// Left edge of the crop window (crop; with --y).
    #[arg(long, value_parser = coordinate, requires = "y")]
    pub x: Option<u32>,
    /// Top edge of the crop window (crop; with --x).
    #[arg(long, value_parser = coordinate, requires = "x")]
    pub y: Option<u32>,
    /// Percent the cropped window is scaled by (crop), 1–1000.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub scale: Option<u32>,
    /// Which part a crop keeps (fit, crop, square): n, nw, ne, w, c, e, se, sw, s (or t, tl, …,
    /// north, …) or smart. Default c.
    #[arg(long, visible_alias = "crop-mode", value_parser = parse_gravity)]
    pub gravity: Option<Gravity>,
    /// Let portrait, landscape and auto scale up.
    #[arg(long)]
    pub enlarge: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Auto,
    #[value(alias = "jpg")]
    Jpeg,
    Png,
    Webp,
    Avif,
    Gif,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MetadataArg {
    Strip,
    Keep,
    Exif,
    Icc,
    Xmp,
    Copyright,
    Geotag,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StrategyArg {
    Exact,
    Portrait,
    Landscape,
    Auto,
    Fit,
    Crop,
    Square,
    Fill,
}

/// A combination of flags no file could be processed with.
#[derive(Debug, Error)]
pub enum OptionsError {
    #[error("--resize {strategy} needs --{flag}")]
    MissingResizeFlag {
        strategy: &'static str,
        flag: &'static str,
    },
    #[error("--{flag} needs --resize (one of exact, portrait, landscape, auto, fit, crop, square, fill)")]
    ResizeFlagWithoutStrategy { flag: &'static str },
    #[error("--{flag} is not used by --resize {strategy}")]
    UnusedResizeFlag {
        strategy: &'static str,
        flag: &'static str,
    },
    #[error("--background must be opaque (it is what transparent pixels are flattened on); only --resize fill pads with a transparent colour")]
    TransparentBackground,
    #[error("--metadata {0} cannot be combined with other values")]
    MetadataMixed(&'static str),
}

/// What every file is asked for.
#[derive(Clone, Debug)]
pub struct Settings {
    pub request: Request,
    pub resize: Option<ResizeSpec>,
    pub limits: Limits,
}

impl OptimizeArgs {
    /// The core's options for these flags, or why they cannot work together.
    pub fn settings(&self) -> Result<Settings, OptionsError> {
        let resize = self.resize.spec(self.background)?;
        let fills = matches!(self.resize.strategy, Some(StrategyArg::Fill));
        let background = match self.background {
            Some(colour) if colour.a < 255 && !fills => {
                return Err(OptionsError::TransparentBackground)
            }
            Some(colour) if colour.a == 255 => Some(colour.to_array()),
            _ => None,
        };
        let request = Request {
            lossy: self.lossy,
            quality: self.quality,
            quality_target: self.quality_target,
            format: self.format.map_or(OutputFormat::Same, FormatArg::to_core),
            metadata: metadata(&self.metadata)?,
            background,
            score: self.score,
            max_bytes: None,
            min_ssimulacra2: None,
        };
        let limits = Limits {
            max_pixels: self.max_pixels,
            ..Limits::default()
        };
        Ok(Settings {
            request,
            resize,
            limits,
        })
    }
}

impl FormatArg {
    fn to_core(self) -> OutputFormat {
        match self {
            FormatArg::Auto => OutputFormat::Auto,
            FormatArg::Jpeg => OutputFormat::Jpeg,
            FormatArg::Png => OutputFormat::Png,
            FormatArg::Webp => OutputFormat::Webp,
            FormatArg::Avif => OutputFormat::Avif,
            FormatArg::Gif => OutputFormat::Gif,
        }
    }
}

impl StrategyArg {
    fn name(self) -> &'static str {
        match self {
            StrategyArg::Exact => "exact",
            StrategyArg::Portrait => "portrait",
            StrategyArg::Landscape => "landscape",
            StrategyArg::Auto => "auto",
            StrategyArg::Fit => "fit",
            StrategyArg::Crop => "crop",
            StrategyArg::Square => "square",
            StrategyArg::Fill => "fill",
        }
    }

    /// The resize flags this strategy reads (the API's `fields_used_by`; `enlarge` only where
    /// the strategy would otherwise refuse to scale up).
    fn uses(self) -> &'static [&'static str] {
        match self {
            StrategyArg::Exact => &["width", "height"],
            StrategyArg::Auto => &["width", "height", "enlarge"],
            StrategyArg::Portrait => &["height", "enlarge"],
            StrategyArg::Landscape => &["width", "enlarge"],
            StrategyArg::Fit => &["width", "height", "gravity"],
            StrategyArg::Crop => &["width", "height", "gravity", "x", "y", "scale"],
            StrategyArg::Square => &["size", "gravity"],
            StrategyArg::Fill => &["width", "height"],
        }
    }
}

impl ResizeArgs {
    /// The resize flags that were given, by name.
    fn given(&self) -> Vec<&'static str> {
        [
            ("width", self.width.is_some()),
            ("height", self.height.is_some()),
            ("size", self.size.is_some()),
            ("x", self.x.is_some()),
            ("y", self.y.is_some()),
            ("scale", self.scale.is_some()),
            ("gravity", self.gravity.is_some()),
            ("enlarge", self.enlarge),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }

    /// The one resize spec, checked like the API checks `resize`: required flags present,
    /// unused ones refused (a flag that silently does nothing is worse on a command line).
    fn spec(&self, background: Option<Rgba>) -> Result<Option<ResizeSpec>, OptionsError> {
        let Some(strategy) = self.strategy else {
            return match self.given().first() {
                Some(flag) => Err(OptionsError::ResizeFlagWithoutStrategy { flag }),
                None => Ok(None),
            };
        };
        if let Some(flag) = self
            .given()
            .into_iter()
            .find(|f| !strategy.uses().contains(f))
        {
            return Err(OptionsError::UnusedResizeFlag {
                strategy: strategy.name(),
                flag,
            });
        }
        let need = |flag: &'static str, value: Option<u32>| {
            value.ok_or(OptionsError::MissingResizeFlag {
                strategy: strategy.name(),
                flag,
            })
        };
        let gravity = self.gravity.unwrap_or(Gravity::Center);
        let strategy = match strategy {
            StrategyArg::Exact => Strategy::Exact {
                width: need("width", self.width)?,
                height: need("height", self.height)?,
            },
            StrategyArg::Portrait => Strategy::Portrait {
                height: need("height", self.height)?,
            },
            StrategyArg::Landscape => Strategy::Landscape {
                width: need("width", self.width)?,
            },
            StrategyArg::Auto => Strategy::Auto {
                width: need("width", self.width)?,
                height: need("height", self.height)?,
            },
            StrategyArg::Fit => Strategy::Fit {
                width: need("width", self.width)?,
                height: need("height", self.height)?,
                gravity,
            },
            StrategyArg::Crop => Strategy::Crop {
                width: need("width", self.width)?,
                height: need("height", self.height)?,
                gravity,
                origin: self.x.zip(self.y),
                scale_percent: self.scale.map(f64::from),
            },
            StrategyArg::Square => Strategy::Square {
                size: need("size", self.size)?,
                gravity,
            },
            StrategyArg::Fill => Strategy::Fill {
                width: need("width", self.width)?,
                height: need("height", self.height)?,
                background: background.unwrap_or(Rgba::WHITE),
            },
        };
        Ok(Some(ResizeSpec {
            strategy,
            enlarge: self.enlarge,
        }))
    }
}

/// `strip` and `keep` stand alone; the rest add up.
fn metadata(parts: &[MetadataArg]) -> Result<Metadata, OptionsError> {
    let alone = |part: MetadataArg, name: &'static str| {
        if parts.contains(&part) && parts.len() > 1 {
            Err(OptionsError::MetadataMixed(name))
        } else {
            Ok(())
        }
    };
    alone(MetadataArg::Strip, "strip")?;
    alone(MetadataArg::Keep, "keep")?;
    let mut kept = Metadata::default();
    for part in parts {
        match part {
            MetadataArg::Strip => {}
            MetadataArg::Keep => kept = Metadata::everything(),
            MetadataArg::Exif => kept.exif = true,
            MetadataArg::Icc => kept.icc = true,
            MetadataArg::Xmp => kept.xmp = true,
            MetadataArg::Copyright => kept.copyright = true,
            MetadataArg::Geotag => kept.geotag = true,
        }
    }
    Ok(kept)
}

fn dimension(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if (1..=MAX_DIMENSION).contains(&n) => Ok(n),
        _ => Err(format!("expected an integer from 1 to {MAX_DIMENSION}")),
    }
}

fn coordinate(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if n <= MAX_DIMENSION => Ok(n),
        _ => Err(format!("expected an integer from 0 to {MAX_DIMENSION}")),
    }
}

fn parse_quality_target(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(t) if (0.0..=100.0).contains(&t) => Ok(t),
        _ => Err("expected a SSIMULACRA2 score from 0 to 100".to_string()),
    }
}

fn parse_gravity(text: &str) -> Result<Gravity, String> {
    Gravity::parse(text).ok_or_else(|| {
        "expected n, nw, ne, w, c, e, se, sw, s (or t, tl, tr, l, r, br, bl, b, north, …) or smart"
            .to_string()
    })
}

fn parse_background(text: &str) -> Result<Rgba, String> {
    parse_color(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: OptimizeArgs,
    }

    fn settings(flags: &[&str]) -> Result<Settings, String> {
        let argv = ["pixpress", "in", "--out", "out"].iter().chain(flags);
        let wrapper = Wrapper::try_parse_from(argv).map_err(|e| e.to_string())?;
        wrapper.args.settings().map_err(|e| e.to_string())
    }

    #[test]
    fn flags_become_the_core_request() {
        let s = settings(&["--lossy", "--quality", "70", "--format", "webp"]).unwrap();
        assert!(s.request.lossy);
        assert_eq!(s.request.quality, Some(70));
        assert_eq!(s.request.format, OutputFormat::Webp);
        assert!(s.resize.is_none());
        let s = settings(&["--metadata", "icc,copyright"]).unwrap();
        assert!(s.request.metadata.icc && s.request.metadata.copyright);
        assert!(!s.request.metadata.exif);
    }

    #[test]
    fn resize_flags_are_checked_against_the_strategy() {
        let s = settings(&[
            "--resize",
            "fit",
            "--width",
            "10",
            "--height",
            "20",
            "--gravity",
            "nw",
        ])
        .unwrap();
        assert_eq!(
            s.resize.unwrap().strategy,
            Strategy::Fit {
                width: 10,
                height: 20,
                gravity: Gravity::NorthWest
            }
        );
        assert!(settings(&["--resize", "exact", "--width", "10"])
            .unwrap_err()
            .contains("needs --height"));
        assert!(
            settings(&["--resize", "landscape", "--width", "10", "--size", "3"])
                .unwrap_err()
                .contains("--size is not used")
        );
        assert!(settings(&["--width", "10"])
            .unwrap_err()
            .contains("needs --resize"));
        assert!(settings(&["--resize", "exact", "--width", "0", "--height", "1"]).is_err());
        assert!(
            settings(&["--quality", "50"]).is_err(),
            "quality needs lossy"
        );
    }

    #[test]
    fn backgrounds_must_be_opaque_unless_filling() {
        assert!(settings(&["--background", "transparent"]).is_err());
        let s = settings(&[
            "--resize",
            "fill",
            "--width",
            "4",
            "--height",
            "4",
            "--background",
            "transparent",
        ])
        .unwrap();
        assert_eq!(s.request.background, None);
        assert_eq!(
            settings(&["--background", "#f00"])
                .unwrap()
                .request
                .background,
            Some([255, 0, 0, 255])
        );
        assert!(settings(&["--metadata", "strip,exif"]).is_err());
    }
}
