//! Parsing of the JSON `resize` option of the API into [`ResizeSpec`]s. This
//! module owns the wire format of that option: field names, which fields each
//! strategy needs, type checking with sharp-style messages ("Expected positive
//! integer for width but received \"100\" of type string"), and the soft
//! warnings (unknown crop mode, ignored fields) returned as `(code, message)`.
//! Geometry limits that depend on the source image are the core's.

use std::collections::HashSet;

use serde_json::Value;

use pixpress_core::{parse_color, Gravity, ResizeSpec, Rgba, Strategy, MAX_DIMENSION};

use crate::http::options::fields::{expected, expected_at, FieldError, Fields};

/// Most resize variants one request may ask for.
pub const MAX_RESIZES: usize = 10;

/// Largest `scale` percentage accepted for the crop strategy.
pub const MAX_SCALE: u64 = 1000;

/// The strategy names, in the order they are listed in error messages.
pub const STRATEGIES: [&str; 8] = [
    "exact",
    "portrait",
    "landscape",
    "auto",
    "fit",
    "crop",
    "square",
    "fill",
];

/// Every field a resize object may carry.
pub(crate) const RESIZE_FIELDS: [&str; 11] = [
    "strategy",
    "width",
    "height",
    "size",
    "x",
    "y",
    "scale",
    "crop_mode",
    "background",
    "enlarge",
    "id",
];

/// A warning as `(code, message)`, e.g. `("unknown_crop_mode", "...")`.
pub type Warning = (String, String);

/// A parsed resize variant: its optional client id, the spec and its warnings.
pub type ResizeEntry = (Option<String>, ResizeSpec, Vec<Warning>);

/// Parses either one resize object or an array of 1 to [`MAX_RESIZES`] of them,
/// with unique ids. Paths in errors start at `resize`.
pub fn parse_resize_list(value: &Value) -> Result<Vec<ResizeEntry>, FieldError> {
    const ROOT: &str = "resize";
    match value {
        Value::Object(_) => Ok(vec![parse_entry(value, ROOT)?]),
        Value::Array(items) => parse_entries(items, ROOT),
        other => Err(expected_at(ROOT, "object or array of objects", other)),
    }
}

fn parse_entries(items: &[Value], root: &str) -> Result<Vec<ResizeEntry>, FieldError> {
    if items.is_empty() {
        return Err(FieldError::new(
            root,
            format!("Expected 1 to {MAX_RESIZES} resize objects but received an empty array"),
        ));
    }
    if items.len() > MAX_RESIZES {
        return Err(FieldError::new(
            root,
            format!(
                "Expected at most {MAX_RESIZES} resize objects but received {}",
                items.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    let mut entries = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("{root}[{i}]");
        let entry = parse_entry(item, &prefix)?;
        let duplicate = entry.0.as_ref().filter(|id| !seen.insert((*id).clone()));
        if let Some(id) = duplicate {
            return Err(FieldError::new(
                format!("{prefix}.id"),
                format!("Expected unique id but received duplicate {id:?}"),
            ));
        }
        entries.push(entry);
    }
    Ok(entries)
}

fn parse_entry(value: &Value, prefix: &str) -> Result<ResizeEntry, FieldError> {
    let (spec, warnings) = parse_resize(value, prefix)?;
    let id = value.get("id").and_then(Value::as_str).map(str::to_owned);
    Ok((id, spec, warnings))
}

/// Parses one resize object. `prefix` is the path of the object itself
/// (`resize`, `resize[2]`) and is put in front of field names in errors and
/// warnings.
pub fn parse_resize(value: &Value, prefix: &str) -> Result<(ResizeSpec, Vec<Warning>), FieldError> {
    let Value::Object(map) = value else {
        return Err(expected_at(prefix, "object", value));
    };
    let fields = Fields::new(map, prefix);
    let mut warnings = Vec::new();
    fields.optional_str("id", "string")?;
    let strategy_name = fields.strategy_name()?;
    let strategy = parse_strategy(&fields, strategy_name, &mut warnings)?;
    let enlarge = fields.optional_bool("enlarge", "boolean")?.unwrap_or(false);
    warn_about_extra_fields(&fields, strategy_name, &mut warnings);
    Ok((ResizeSpec { strategy, enlarge }, warnings))
}

fn parse_strategy(
    fields: &Fields,
    name: &str,
    warnings: &mut Vec<Warning>,
) -> Result<Strategy, FieldError> {
    let strategy = match name {
        "exact" => Strategy::Exact {
            width: fields.dimension("width")?,
            height: fields.dimension("height")?,
        },
        "portrait" => Strategy::Portrait {
            height: fields.dimension("height")?,
        },
        "landscape" => Strategy::Landscape {
            width: fields.dimension("width")?,
        },
        "auto" => Strategy::Auto {
            width: fields.dimension("width")?,
            height: fields.dimension("height")?,
        },
        "fit" => Strategy::Fit {
            width: fields.dimension("width")?,
            height: fields.dimension("height")?,
            gravity: fields.gravity(warnings)?,
        },
        "crop" => parse_crop(fields, warnings)?,
        "square" => Strategy::Square {
            size: fields.dimension("size")?,
            gravity: fields.gravity(warnings)?,
        },
        "fill" => Strategy::Fill {
            width: fields.dimension("width")?,
            height: fields.dimension("height")?,
            background: fields.background()?,
        },
        other => return Err(unknown_strategy(fields, other)),
    };
    Ok(strategy)
}

fn parse_crop(fields: &Fields, warnings: &mut Vec<Warning>) -> Result<Strategy, FieldError> {
    let width = fields.dimension("width")?;
    let height = fields.dimension("height")?;
    let gravity = fields.gravity(warnings)?;
    let origin = fields.origin()?;
    let scale_percent = fields.scale()?;
    Ok(Strategy::Crop {
        width,
        height,
        gravity,
        origin,
        scale_percent,
    })
}

fn unknown_strategy(fields: &Fields, name: &str) -> FieldError {
    FieldError::new(
        fields.path("strategy"),
        format!(
            "Expected one of {} for strategy but received {name:?}",
            STRATEGIES.join(", ")
        ),
    )
}

/// The fields each strategy reads; anything else known is reported as ignored
/// so a client learns that e.g. `size` does nothing with `exact`.
fn fields_used_by(strategy: &str) -> &'static [&'static str] {
    match strategy {
        "exact" | "auto" => &["width", "height"],
        "portrait" => &["height"],
        "landscape" => &["width"],
        "fit" => &["width", "height", "crop_mode"],
        "crop" => &["width", "height", "crop_mode", "x", "y", "scale"],
        "square" => &["size", "crop_mode"],
        "fill" => &["width", "height", "background"],
        _ => &[],
    }
}

fn warn_about_extra_fields(fields: &Fields, strategy: &str, warnings: &mut Vec<Warning>) {
    const ALWAYS: [&str; 3] = ["strategy", "enlarge", "id"];
    let used = fields_used_by(strategy);
    for key in fields.keys() {
        if ALWAYS.contains(&key) || used.contains(&key) {
            continue;
        }
        let path = fields.path(key);
        let warning = if RESIZE_FIELDS.contains(&key) {
            (
                "ignored_field".to_owned(),
                format!("{path} is not used by the {strategy} strategy and was ignored"),
            )
        } else {
            (
                "unknown_field".to_owned(),
                format!("{path} is not a recognised resize option and was ignored"),
            )
        };
        warnings.push(warning);
    }
}

/// The resize-specific readers on top of the shared [`Fields`].
impl Fields<'_> {
    fn strategy_name(&self) -> Result<&str, FieldError> {
        let value = self.present("strategy").ok_or_else(|| {
            self.missing("strategy", &format!("one of {}", STRATEGIES.join(", ")))
        })?;
        value
            .as_str()
            .ok_or_else(|| expected_at(&self.path("strategy"), "string", value))
    }

    /// A required integer in `1..=MAX_DIMENSION`.
    fn dimension(&self, name: &str) -> Result<u32, FieldError> {
        let value = self
            .present(name)
            .ok_or_else(|| self.missing(name, "positive integer"))?;
        self.integer_in(name, value, 1, u64::from(MAX_DIMENSION), "positive integer")
    }

    /// An optional integer in `0..=MAX_DIMENSION` (crop origins may touch the edge).
    fn coordinate(&self, name: &str) -> Result<Option<u32>, FieldError> {
        self.present(name)
            .map(|value| {
                self.integer_in(
                    name,
                    value,
                    0,
                    u64::from(MAX_DIMENSION),
                    "non-negative integer",
                )
            })
            .transpose()
    }

    fn integer_in(
        &self,
        name: &str,
        value: &Value,
        min: u64,
        max: u64,
        kind: &str,
    ) -> Result<u32, FieldError> {
        let path = self.path(name);
        let number = value
            .as_u64()
            .filter(|n| *n >= min)
            .ok_or_else(|| expected(&path, name, kind, value))?;
        if number > max {
            return Err(FieldError::new(
                path,
                format!("Expected {kind} between {min} and {max} for {name} but received {number}"),
            ));
        }
        // `max` is at most MAX_DIMENSION or MAX_SCALE, so this never saturates.
        Ok(u32::try_from(number).unwrap_or(u32::MAX))
    }

    /// Both or neither of `x` and `y`: half an origin is almost certainly a
    /// client bug, so it is rejected rather than guessed.
    fn origin(&self) -> Result<Option<(u32, u32)>, FieldError> {
        match (self.coordinate("x")?, self.coordinate("y")?) {
            (Some(x), Some(y)) => Ok(Some((x, y))),
            (None, None) => Ok(None),
            (Some(_), None) => Err(self.missing("y", "non-negative integer (x was given)")),
            (None, Some(_)) => Err(self.missing("x", "non-negative integer (y was given)")),
        }
    }

    fn scale(&self) -> Result<Option<f64>, FieldError> {
        self.present("scale")
            .map(|value| {
                self.integer_in("scale", value, 1, MAX_SCALE, "positive integer percentage")
                    .map(f64::from)
            })
            .transpose()
    }

    /// `crop_mode`; an unrecognised name falls back to
    /// centre with a warning, because a slightly different crop is a better
    /// outcome for the caller than a failed request.
    fn gravity(&self, warnings: &mut Vec<Warning>) -> Result<Gravity, FieldError> {
        let Some(name) = self.optional_str("crop_mode", "string")? else {
            return Ok(Gravity::Center);
        };
        if let Some(gravity) = Gravity::parse(name) {
            return Ok(gravity);
        }
        warnings.push((
            "unknown_crop_mode".to_owned(),
            format!(
                "{} {name:?} is not a recognised crop mode; using center",
                self.path("crop_mode")
            ),
        ));
        Ok(Gravity::Center)
    }

    fn background(&self) -> Result<Rgba, FieldError> {
        match self.optional_str("background", "string")? {
            None => Ok(Rgba::WHITE),
            Some(text) => parse_color(text)
                .map_err(|e| FieldError::new(self.path("background"), e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(value: Value) -> (ResizeSpec, Vec<Warning>) {
        match parse_resize(&value, "resize") {
            Ok(parsed) => parsed,
            Err(e) => panic!("{value} should parse: {e}"),
        }
    }

    fn strategy(value: Value) -> Strategy {
        let (spec, warnings) = ok(value);
        assert!(warnings.is_empty(), "{warnings:?}");
        spec.strategy
    }

    fn err(value: Value) -> FieldError {
        match parse_resize(&value, "resize") {
            Ok(parsed) => panic!("{value} should fail, got {parsed:?}"),
            Err(e) => e,
        }
    }

    fn list_err(value: Value) -> FieldError {
        match parse_resize_list(&value) {
            Ok(parsed) => panic!("{value} should fail, got {parsed:?}"),
            Err(e) => e,
        }
    }

    // --- each strategy ---------------------------------------------------

    #[test]
    fn exact() {
        assert_eq!(
            strategy(json!({"strategy": "exact", "width": 10, "height": 20})),
            Strategy::Exact {
                width: 10,
                height: 20
            }
        );
    }

    #[test]
    fn portrait_and_landscape() {
        assert_eq!(
            strategy(json!({"strategy": "portrait", "height": 5})),
            Strategy::Portrait { height: 5 }
        );
        assert_eq!(
            strategy(json!({"strategy": "landscape", "width": 7})),
            Strategy::Landscape { width: 7 }
        );
    }

    #[test]
    fn auto() {
        assert_eq!(
            strategy(json!({"strategy": "auto", "width": 1, "height": 16384})),
            Strategy::Auto {
                width: 1,
                height: 16384
            }
        );
    }

    #[test]
    fn fit_defaults_to_centre() {
        assert_eq!(
            strategy(json!({"strategy": "fit", "width": 3, "height": 4})),
            Strategy::Fit {
                width: 3,
                height: 4,
                gravity: Gravity::Center
            }
        );
    }

    #[test]
    fn fit_with_crop_mode() {
        assert_eq!(
            strategy(json!({"strategy": "fit", "width": 3, "height": 4, "crop_mode": "smart"})),
            Strategy::Fit {
                width: 3,
                height: 4,
                gravity: Gravity::Smart
            }
        );
        assert_eq!(
            strategy(json!({"strategy": "fit", "width": 3, "height": 4, "crop_mode": "NW"})),
            Strategy::Fit {
                width: 3,
                height: 4,
                gravity: Gravity::NorthWest
            }
        );
    }

    #[test]
    fn crop_full() {
        assert_eq!(
            strategy(json!({
                "strategy": "crop", "width": 3, "height": 4,
                "x": 0, "y": 9, "scale": 50, "crop_mode": "e"
            })),
            Strategy::Crop {
                width: 3,
                height: 4,
                gravity: Gravity::East,
                origin: Some((0, 9)),
                scale_percent: Some(50.0),
            }
        );
    }

    #[test]
    fn crop_minimal() {
        assert_eq!(
            strategy(json!({"strategy": "crop", "width": 3, "height": 4})),
            Strategy::Crop {
                width: 3,
                height: 4,
                gravity: Gravity::Center,
                origin: None,
                scale_percent: None,
            }
        );
    }

    #[test]
    fn square() {
        assert_eq!(
            strategy(json!({"strategy": "square", "size": 64, "crop_mode": "south"})),
            Strategy::Square {
                size: 64,
                gravity: Gravity::South
            }
        );
    }

    #[test]
    fn fill_defaults_to_white() {
        assert_eq!(
            strategy(json!({"strategy": "fill", "width": 3, "height": 4})),
            Strategy::Fill {
                width: 3,
                height: 4,
                background: Rgba::WHITE
            }
        );
    }

    #[test]
    fn fill_with_background() {
        assert_eq!(
            strategy(json!({"strategy": "fill", "width": 3, "height": 4, "background": "#f608"})),
            Strategy::Fill {
                width: 3,
                height: 4,
                background: Rgba::new(255, 102, 0, 136)
            }
        );
    }

    #[test]
    fn enlarge_flag() {
        let (spec, _) = ok(json!({"strategy": "portrait", "height": 5, "enlarge": true}));
        assert!(spec.enlarge);
        let (spec, _) = ok(json!({"strategy": "portrait", "height": 5}));
        assert!(!spec.enlarge);
    }

    #[test]
    fn id_is_accepted_and_ignored() {
        let (spec, warnings) = ok(json!({"strategy": "portrait", "height": 5, "id": "thumb"}));
        assert_eq!(spec.strategy, Strategy::Portrait { height: 5 });
        assert!(warnings.is_empty());
    }

    // --- warnings --------------------------------------------------------

    #[test]
    fn unknown_crop_mode_warns_and_centres() {
        let (spec, warnings) = ok(json!({"strategy": "square", "size": 5, "crop_mode": "middle"}));
        assert_eq!(
            spec.strategy,
            Strategy::Square {
                size: 5,
                gravity: Gravity::Center
            }
        );
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].0, "unknown_crop_mode");
        assert!(warnings[0].1.contains("middle"), "{:?}", warnings[0]);
        assert!(
            warnings[0].1.contains("resize.crop_mode"),
            "{:?}",
            warnings[0]
        );
    }

    #[test]
    fn unknown_and_ignored_fields_warn() {
        let (_, warnings) = ok(json!({
            "strategy": "exact", "width": 1, "height": 2, "size": 3, "colour": "red"
        }));
        let codes: Vec<&str> = warnings.iter().map(|w| w.0.as_str()).collect();
        assert_eq!(codes, vec!["unknown_field", "ignored_field"]);
        assert!(warnings[0].1.contains("resize.colour"));
        assert!(warnings[1].1.contains("resize.size"));
    }

    // --- errors ----------------------------------------------------------

    #[test]
    fn not_an_object() {
        let e = err(json!("exact"));
        assert_eq!(e.field, "resize");
        assert!(e.message.contains("of type string"), "{e}");
    }

    #[test]
    fn missing_strategy() {
        let e = err(json!({"width": 5}));
        assert_eq!(e.field, "resize.strategy");
        assert!(e.message.contains("missing"), "{e}");
    }

    #[test]
    fn strategy_wrong_type() {
        let e = err(json!({"strategy": 5}));
        assert_eq!(e.field, "resize.strategy");
        assert_eq!(
            e.message,
            "Expected string for strategy but received 5 of type number"
        );
    }

    #[test]
    fn unknown_strategy_lists_valid_ones() {
        let e = err(json!({"strategy": "stretch"}));
        assert_eq!(e.field, "resize.strategy");
        for name in STRATEGIES {
            assert!(e.message.contains(name), "{e}");
        }
        assert!(e.message.contains("\"stretch\""), "{e}");
    }

    #[test]
    fn string_number_is_rejected_sharp_style() {
        let e = err(json!({"strategy": "exact", "width": "100", "height": 5}));
        assert_eq!(e.field, "resize.width");
        assert_eq!(
            e.message,
            "Expected positive integer for width but received \"100\" of type string"
        );
    }

    #[test]
    fn fractional_number_is_rejected() {
        let e = err(json!({"strategy": "exact", "width": 10, "height": 1.5}));
        assert_eq!(e.field, "resize.height");
        assert_eq!(
            e.message,
            "Expected positive integer for height but received 1.5 of type number"
        );
    }

    #[test]
    fn zero_negative_and_huge_are_rejected() {
        for (value, fragment) in [
            (json!(0), "received 0 of type number"),
            (json!(-3), "received -3 of type number"),
            (json!(16385), "between 1 and 16384"),
            (json!(true), "of type boolean"),
            (json!([1]), "of type array"),
            (json!({"a": 1}), "of type object"),
        ] {
            let e = err(json!({"strategy": "square", "size": value}));
            assert_eq!(e.field, "resize.size");
            assert!(e.message.contains(fragment), "{e}");
        }
    }

    #[test]
    fn missing_required_fields_are_named() {
        let cases = [
            (json!({"strategy": "exact", "width": 1}), "resize.height"),
            (json!({"strategy": "exact", "height": 1}), "resize.width"),
            (json!({"strategy": "portrait", "width": 1}), "resize.height"),
            (json!({"strategy": "landscape"}), "resize.width"),
            (json!({"strategy": "auto", "width": 1}), "resize.height"),
            (json!({"strategy": "fit", "height": 1}), "resize.width"),
            (json!({"strategy": "crop", "width": 1}), "resize.height"),
            (json!({"strategy": "square", "width": 1}), "resize.size"),
            (
                json!({"strategy": "fill", "width": 1, "height": null}),
                "resize.height",
            ),
        ];
        for (value, field) in cases {
            let e = err(value.clone());
            assert_eq!(e.field, field, "{value}");
            assert!(e.message.contains("missing"), "{e}");
        }
    }

    #[test]
    fn origin_errors() {
        let e = err(json!({"strategy": "crop", "width": 1, "height": 1, "x": -1, "y": 0}));
        assert_eq!(e.field, "resize.x");
        assert_eq!(
            e.message,
            "Expected non-negative integer for x but received -1 of type number"
        );
        let e = err(json!({"strategy": "crop", "width": 1, "height": 1, "x": 1, "y": 20000}));
        assert_eq!(e.field, "resize.y");
        let e = err(json!({"strategy": "crop", "width": 1, "height": 1, "x": 1}));
        assert_eq!(e.field, "resize.y");
        let e = err(json!({"strategy": "crop", "width": 1, "height": 1, "y": 1}));
        assert_eq!(e.field, "resize.x");
    }

    #[test]
    fn scale_errors() {
        for bad in [json!(0), json!(1001), json!(12.5), json!("50")] {
            let e = err(json!({"strategy": "crop", "width": 1, "height": 1, "scale": bad}));
            assert_eq!(e.field, "resize.scale", "{e}");
        }
    }

    #[test]
    fn crop_mode_wrong_type() {
        let e = err(json!({"strategy": "fit", "width": 1, "height": 1, "crop_mode": 3}));
        assert_eq!(e.field, "resize.crop_mode");
        assert!(e.message.contains("Expected string for crop_mode"), "{e}");
    }

    #[test]
    fn background_errors() {
        let e = err(json!({"strategy": "fill", "width": 1, "height": 1, "background": "nope"}));
        assert_eq!(e.field, "resize.background");
        assert!(e.message.contains("\"nope\""), "{e}");
        assert!(e.message.contains("#rrggbb"), "{e}");
        let e = err(json!({"strategy": "fill", "width": 1, "height": 1, "background": 255}));
        assert_eq!(e.field, "resize.background");
        assert!(e.message.contains("of type number"), "{e}");
    }

    #[test]
    fn enlarge_wrong_type() {
        let e = err(json!({"strategy": "auto", "width": 1, "height": 1, "enlarge": "yes"}));
        assert_eq!(e.field, "resize.enlarge");
        assert_eq!(
            e.message,
            "Expected boolean for enlarge but received \"yes\" of type string"
        );
    }

    #[test]
    fn id_wrong_type() {
        let e = err(json!({"strategy": "auto", "width": 1, "height": 1, "id": 7}));
        assert_eq!(e.field, "resize.id");
    }

    #[test]
    fn prefix_is_used() {
        let e = parse_resize(&json!({"strategy": "exact"}), "resize[2]").expect_err("missing");
        assert_eq!(e.field, "resize[2].width");
        assert_eq!(e.to_string(), format!("resize[2].width: {}", e.message));
    }

    #[test]
    fn long_values_are_shortened() {
        let long = "x".repeat(500);
        let e = err(json!({"strategy": "exact", "width": long, "height": 1}));
        assert!(e.message.len() < 200, "{e}");
    }

    // --- lists -----------------------------------------------------------

    #[test]
    fn single_object_list() {
        let parsed = parse_resize_list(&json!({"strategy": "portrait", "height": 5, "id": "a"}))
            .expect("valid");
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].0.as_deref(), Some("a"));
        assert_eq!(parsed[0].1.strategy, Strategy::Portrait { height: 5 });
    }

    #[test]
    fn array_list_keeps_order_ids_and_warnings() {
        let parsed = parse_resize_list(&json!([
            {"strategy": "portrait", "height": 5, "id": "small"},
            {"strategy": "square", "size": 9, "crop_mode": "??"},
        ]))
        .expect("valid");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].0.as_deref(), Some("small"));
        assert_eq!(parsed[1].0, None);
        assert_eq!(parsed[1].2[0].0, "unknown_crop_mode");
        assert!(parsed[1].2[0].1.contains("resize[1].crop_mode"));
    }

    #[test]
    fn ten_entries_are_allowed() {
        let items: Vec<Value> = (0..MAX_RESIZES)
            .map(|i| json!({"strategy": "square", "size": i + 1, "id": format!("s{i}")}))
            .collect();
        assert_eq!(
            parse_resize_list(&Value::Array(items))
                .expect("valid")
                .len(),
            10
        );
    }

    #[test]
    fn more_than_ten_entries_is_an_error() {
        let items: Vec<Value> = (0..=MAX_RESIZES)
            .map(|_| json!({"strategy": "square", "size": 1}))
            .collect();
        let e = list_err(Value::Array(items));
        assert_eq!(e.field, "resize");
        assert!(e.message.contains("at most 10"), "{e}");
        assert!(e.message.contains("11"), "{e}");
    }

    #[test]
    fn empty_array_is_an_error() {
        let e = list_err(json!([]));
        assert_eq!(e.field, "resize");
        assert!(e.message.contains("empty"), "{e}");
    }

    #[test]
    fn duplicate_ids_are_an_error() {
        let e = list_err(json!([
            {"strategy": "square", "size": 1, "id": "a"},
            {"strategy": "square", "size": 2, "id": "b"},
            {"strategy": "square", "size": 3, "id": "a"},
        ]));
        assert_eq!(e.field, "resize[2].id");
        assert!(e.message.contains("\"a\""), "{e}");
    }

    #[test]
    fn element_errors_carry_index() {
        let e = list_err(json!([
            {"strategy": "square", "size": 1},
            {"strategy": "square", "size": "big"},
        ]));
        assert_eq!(e.field, "resize[1].size");
        let e = list_err(json!([{"strategy": "square", "size": 1}, 5]));
        assert_eq!(e.field, "resize[1]");
        assert!(e.message.contains("Expected object"), "{e}");
    }

    #[test]
    fn list_of_wrong_type() {
        for value in [json!(null), json!("fit"), json!(3), json!(true)] {
            let e = list_err(value.clone());
            assert_eq!(e.field, "resize", "{value}");
            assert!(e.message.contains("object or array"), "{e}");
        }
    }
}
