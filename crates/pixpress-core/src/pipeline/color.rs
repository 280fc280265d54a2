//! Colour values used by the pipeline (padding backgrounds, flattening) and the
//! parser that turns the user-facing colour strings of the API into them. This
//! module owns the accepted colour syntax: hex (`#rgb`, `#rgba`, `#rrggbb`,
//! `#rrggbbaa`), `rgb()`/`rgba()` functions, `transparent` and CSS named colours.

use thiserror::Error;

/// An 8-bit-per-channel colour with straight (non-premultiplied) alpha.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rgba {
    pub r: u8,
    pub g: u8,
    pub b: u8,
    pub a: u8,
}

impl Rgba {
    pub const WHITE: Rgba = Rgba::new(255, 255, 255, 255);
    pub const BLACK: Rgba = Rgba::new(0, 0, 0, 255);
    pub const TRANSPARENT: Rgba = Rgba::new(0, 0, 0, 0);

    pub const fn new(r: u8, g: u8, b: u8, a: u8) -> Rgba {
        Rgba { r, g, b, a }
    }

    pub const fn to_array(self) -> [u8; 4] {
        [self.r, self.g, self.b, self.a]
    }
}

/// The single place that describes the accepted syntax, so every error says the same.
pub const ACCEPTED_COLOR_FORMS: &str = "#rgb, #rgba, #rrggbb, #rrggbbaa, rgb(r, g, b), \
     rgba(r, g, b, a) with a in 0..1 or 0%..100%, transparent, or a CSS colour name";

/// Why a colour string was rejected; the message repeats the input so a client
/// can see exactly what the server received.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("Expected a colour ({accepted}) but received {received:?}: {reason}")]
pub struct ColorError {
    pub received: String,
    pub reason: String,
    pub accepted: &'static str,
}

impl ColorError {
    fn new(received: &str, reason: impl Into<String>) -> ColorError {
        ColorError {
            received: received.to_owned(),
            reason: reason.into(),
            accepted: ACCEPTED_COLOR_FORMS,
        }
    }
}

/// Parses a user-supplied colour string (surrounding whitespace ignored,
/// case-insensitive).
pub fn parse_color(s: &str) -> Result<Rgba, ColorError> {
    let trimmed = s.trim();
    let lower = trimmed.to_ascii_lowercase();
    let result = if let Some(hex) = lower.strip_prefix('#') {
        parse_hex(hex)
    } else if let Some(args) = function_args(&lower, "rgba") {
        parse_rgb_args(args)
    } else if let Some(args) = function_args(&lower, "rgb") {
        parse_rgb_args(args)
    } else if lower == "transparent" {
        Ok(Rgba::TRANSPARENT)
    } else {
        parse_named(&lower)
    };
    result.map_err(|reason| ColorError::new(s, reason))
}

fn parse_hex(hex: &str) -> Result<Rgba, String> {
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("hex colours may only contain 0-9 and a-f".into());
    }
    let digits: Vec<u8> = hex.bytes().filter_map(hex_value).collect();
    match digits.as_slice() {
        [r, g, b] => Ok(Rgba::new(r * 17, g * 17, b * 17, 255)),
        [r, g, b, a] => Ok(Rgba::new(r * 17, g * 17, b * 17, a * 17)),
        [r1, r2, g1, g2, b1, b2] => Ok(Rgba::new(r1 * 16 + r2, g1 * 16 + g2, b1 * 16 + b2, 255)),
        [r1, r2, g1, g2, b1, b2, a1, a2] => Ok(Rgba::new(
            r1 * 16 + r2,
            g1 * 16 + g2,
            b1 * 16 + b2,
            a1 * 16 + a2,
        )),
        other => Err(format!(
            "hex colours need 3, 4, 6 or 8 digits, got {}",
            other.len()
        )),
    }
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Returns the text between `name(` and the closing `)` if `s` is that call.
fn function_args<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    s.strip_prefix(name)?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')
}

/// `rgb()` and `rgba()` are treated alike (as CSS Color 4 does): three channels
/// and an optional alpha.
fn parse_rgb_args(args: &str) -> Result<Rgba, String> {
    let parts: Vec<&str> = args.split(',').map(str::trim).collect();
    match parts.as_slice() {
        [r, g, b] => Ok(Rgba::new(channel(r)?, channel(g)?, channel(b)?, 255)),
        [r, g, b, a] => Ok(Rgba::new(channel(r)?, channel(g)?, channel(b)?, alpha(a)?)),
        other => Err(format!(
            "rgb()/rgba() take 3 or 4 comma-separated values, got {}",
            other.len()
        )),
    }
}

fn channel(s: &str) -> Result<u8, String> {
    s.parse::<u8>()
        .map_err(|_| format!("colour channel {s:?} is not an integer from 0 to 255"))
}

fn alpha(s: &str) -> Result<u8, String> {
    let (text, divisor) = match s.strip_suffix('%') {
        Some(pct) => (pct.trim_end(), 100.0),
        None => (s, 1.0),
    };
    let value: f64 = text
        .parse()
        .map_err(|_| format!("alpha {s:?} is not a number"))?;
    let unit = value / divisor;
    if !(0.0..=1.0).contains(&unit) {
        return Err(format!("alpha {s:?} is outside 0..1 (or 0%..100%)"));
    }
    // Range was checked above, so the cast cannot saturate unexpectedly.
    Ok((unit * 255.0).round() as u8)
}

/// Only plain identifiers go to the CSS name table, so that the accepted syntax
/// stays what the error message documents (no hsl(), lab(), ...).
fn parse_named(name: &str) -> Result<Rgba, String> {
    let is_identifier = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphabetic());
    if !is_identifier {
        return Err("not a recognised colour form".into());
    }
    let color =
        csscolorparser::parse(name).map_err(|_| format!("{name:?} is not a CSS colour name"))?;
    let [r, g, b, a] = color.to_rgba8();
    Ok(Rgba::new(r, g, b, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Rgba {
        match parse_color(s) {
            Ok(c) => c,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    #[test]
    fn short_hex() {
        assert_eq!(ok("#f60"), Rgba::new(255, 102, 0, 255));
        assert_eq!(ok("#F60"), Rgba::new(255, 102, 0, 255));
    }

    #[test]
    fn short_hex_with_alpha() {
        assert_eq!(ok("#f608"), Rgba::new(255, 102, 0, 136));
    }

    #[test]
    fn long_hex() {
        assert_eq!(ok("#ff6600"), Rgba::new(255, 102, 0, 255));
        assert_eq!(ok("  #FF6600 "), Rgba::new(255, 102, 0, 255));
    }

    #[test]
    fn long_hex_with_alpha() {
        assert_eq!(ok("#ff660080"), Rgba::new(255, 102, 0, 128));
    }

    #[test]
    fn rgb_function() {
        assert_eq!(ok("rgb(255, 0, 0)"), Rgba::new(255, 0, 0, 255));
        assert_eq!(ok("RGB(1,2,3)"), Rgba::new(1, 2, 3, 255));
        assert_eq!(ok("rgb (1 ,2 , 3 )"), Rgba::new(1, 2, 3, 255));
    }

    #[test]
    fn rgba_function_float_alpha() {
        assert_eq!(ok("rgba(255,0,0,0.5)"), Rgba::new(255, 0, 0, 128));
        assert_eq!(ok("rgba(255,0,0,1)"), Rgba::new(255, 0, 0, 255));
        assert_eq!(ok("rgba(255,0,0,0)"), Rgba::new(255, 0, 0, 0));
    }

    #[test]
    fn rgba_function_percent_alpha() {
        assert_eq!(ok("rgba(255,0,0,50%)"), Rgba::new(255, 0, 0, 128));
        assert_eq!(ok("rgba(0,0,0,100%)"), Rgba::new(0, 0, 0, 255));
    }

    #[test]
    fn transparent_keyword() {
        assert_eq!(ok("transparent"), Rgba::TRANSPARENT);
        assert_eq!(ok("Transparent"), Rgba::TRANSPARENT);
    }

    #[test]
    fn named_colours() {
        assert_eq!(ok("white"), Rgba::WHITE);
        assert_eq!(ok("Red"), Rgba::new(255, 0, 0, 255));
        assert_eq!(ok("rebeccapurple"), Rgba::new(102, 51, 153, 255));
    }

    #[test]
    fn white_constant() {
        assert_eq!(Rgba::WHITE.to_array(), [255, 255, 255, 255]);
    }

    fn err(s: &str) -> ColorError {
        match parse_color(s) {
            Ok(c) => panic!("{s:?} should not parse, got {c:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn rejects_bad_inputs() {
        for bad in [
            "",
            "#",
            "#ff",
            "#fffff",
            "#ggg",
            "#ff66001",
            "rgb(256,0,0)",
            "rgb(-1,0,0)",
            "rgb(1,2)",
            "rgb(1,2,3,4,5)",
            "rgba(1,2,3,1.5)",
            "rgba(1,2,3,-0.1)",
            "rgba(1,2,3,101%)",
            "rgba(1,2,3,x)",
            "rgb(1.5,2,3)",
            "hsl(0,100%,50%)",
            "notacolour",
            "ff6600",
            "#ßßß",
        ] {
            let e = err(bad);
            assert_eq!(e.received, bad);
        }
    }

    #[test]
    fn error_message_lists_forms_and_input() {
        let msg = err("blurple").to_string();
        assert!(msg.contains("#rrggbb"), "{msg}");
        assert!(msg.contains("rgba("), "{msg}");
        assert!(msg.contains("transparent"), "{msg}");
        assert!(msg.contains("\"blurple\""), "{msg}");
    }
}
