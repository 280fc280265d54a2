//! End-to-end tests of lossless JPEG rotation (issue 20): `lossy: false` on a JPEG with an EXIF
//! orientation turns its DCT coefficients upright (trimming partial edge blocks that would move
//! to the top or left, as `jpegtran -trim` does) and resets the tag. Outputs are fetched from
//! their hosted URL and decoded; the pixels are compared with the input decoded as stored,
//! cropped and turned with the `image` crate's own `apply_orientation`.

mod common;

use common::*;
use image::metadata::Orientation;
use image::{DynamicImage, GenericImageView};
use serde_json::{json, Value};

/// 204x247, 4:2:0 (16x16 iMCUs): 12 columns and 7 rows past the last whole iMCU.
const SOURCE: &str = "edge/orientation_4_nonsquare.jpg";

/// Per orientation, the stored columns and rows that cannot move losslessly: those of an axis
/// the orientation reads backwards (2 mirrors x, 4 mirrors y, 6 = transpose then mirror x, so
/// the stored rows run backwards, and so on).
fn expected_trim(orientation: u8) -> (u32, u32) {
    match orientation {
        2 | 8 => (12, 0),
        4 | 6 => (0, 7),
        3 | 7 => (12, 7),
        _ => (0, 0),
    }
}

fn exif_orientation(jpeg: &[u8]) -> Option<u32> {
    let exif = exif::Reader::new()
        .read_from_container(&mut std::io::Cursor::new(jpeg))
        .ok()?;
    let field = exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)?;
    field.value.get_uint(0)
}

async fn optimise(server: &Server, file: &[u8], options: Value) -> (Value, Vec<u8>) {
    let mut data = options;
    data["api_key"] = json!(server.key);
    let (status, body) = json_of(upload(server, file, "o.jpg", data).await).await;
    assert_eq!(status, 200, "{body}");
    let bytes = fetch_hosted(body["url"].as_str().expect("url"), "image/jpeg").await;
    assert_eq!(bytes.len() as u64, body["final_size"].as_u64().unwrap());
    (body, bytes)
}

/// The stored pixels less the trimmed right and bottom edges, turned by `orientation`.
fn turned(input: &[u8], orientation: u8) -> DynamicImage {
    let stored = image::load_from_memory(input).expect("input decodes");
    let (columns, rows) = expected_trim(orientation);
    let (w, h) = stored.dimensions();
    let mut kept = stored.crop_imm(0, 0, w - columns, h - rows);
    kept.apply_orientation(Orientation::from_exif(orientation).unwrap());
    kept
}

/// Mean and largest difference over RGB samples of two same-sized images.
fn difference(a: &DynamicImage, b: &DynamicImage) -> (f64, u8) {
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    let diffs: Vec<u8> = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| x.abs_diff(*y))
        .collect();
    let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
    (mean, diffs.iter().copied().max().unwrap_or(0))
}

fn codes(body: &Value) -> Vec<String> {
    body["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w["code"].as_str().map(str::to_string))
        .collect()
}

fn message<'a>(body: &'a Value, code: &str) -> &'a str {
    body["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|w| w["code"] == code)
        .and_then(|w| w["message"].as_str())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_orientation_is_turned_losslessly_and_the_tag_reset() {
    let server = Server::start(&[]);
    for orientation in 1..=8u8 {
        let input = jpeg_with_orientation(SOURCE, orientation);
        let expected = turned(&input, orientation);
        for metadata in ["strip", "keep"] {
            let label = format!("orientation {orientation}, metadata {metadata}");
            let (body, bytes) = optimise(
                &server,
                &input,
                json!({"lossy": false, "metadata": metadata}),
            )
            .await;
            let warnings = codes(&body);
            assert!(
                !warnings.contains(&"original_returned_not_smaller".to_string()),
                "{label}: {body}"
            );
            let (original, fin) = (body["original_size"].as_u64(), body["final_size"].as_u64());
            assert!(fin.unwrap() <= original.unwrap(), "{label}: {body}");

            let got = image::load_from_memory(&bytes).expect("output decodes");
            assert_eq!(got.dimensions(), expected.dimensions(), "{label}");
            let reported = (body["final_width"].as_u64(), body["final_height"].as_u64());
            let size = expected.dimensions();
            assert_eq!(
                reported,
                (Some(u64::from(size.0)), Some(u64::from(size.1))),
                "{label}"
            );
            let (mean, max) = difference(&got, &expected);
            assert!(
                mean < 0.5 && max <= 40,
                "{label}: mean {mean:.3}, max {max}"
            );
            if (2..=4).contains(&orientation) {
                // The comparison can fail: the stored pixels are far from the turned ones.
                let stored = image::load_from_memory(&input).unwrap();
                let unturned = stored.crop_imm(0, 0, size.0, size.1);
                assert!(difference(&got, &unturned).0 > 2.0, "{label}: not turned");
            }

            let tag = exif_orientation(&bytes);
            if metadata == "keep" {
                assert_eq!(tag, Some(1), "{label}: kept EXIF reset");
            } else {
                assert_eq!(tag, None, "{label}: no EXIF added");
            }
            assert!(!warnings.contains(&"exif_orientation_kept_as_tag".to_string()));
            let applied = warnings.contains(&"exif_orientation_applied".to_string());
            assert_eq!(applied, orientation != 1, "{label}: {body}");
            let (columns, rows) = expected_trim(orientation);
            let trimmed = message(&body, "edge_trimmed_for_lossless_rotation");
            assert_eq!(!trimmed.is_empty(), columns + rows > 0, "{label}: {body}");
            if !trimmed.is_empty() {
                assert!(
                    trimmed.contains(&format!("{columns} pixel column"))
                        && trimmed.contains(&format!("{rows} pixel row")),
                    "{label}: {trimmed}"
                );
            }
        }
    }
}

#[tokio::test]
async fn an_image_smaller_than_one_block_group_keeps_its_orientation_as_a_tag() {
    // 2x1 with orientation 8: the axis read backwards has no whole 16-pixel iMCU to move.
    let server = Server::start(&[]);
    let input = corpus("edge/orientation_8_2x1.jpg");
    let mut data = json!({"lossy": false});
    data["api_key"] = json!(server.key);
    let (status, body) = json_of(upload(&server, &input, "t.jpg", data).await).await;
    assert_eq!(status, 200, "{body}");
    let bytes = fetch_hosted(body["url"].as_str().unwrap(), "image/jpeg").await;
    assert_eq!(exif_orientation(&bytes), Some(8), "{body}");
    assert_eq!(
        image::load_from_memory(&bytes).unwrap().dimensions(),
        (2, 1)
    );
    assert_eq!(
        (body["final_width"].as_u64(), body["final_height"].as_u64()),
        (Some(1), Some(2))
    );
    let warnings = codes(&body);
    let honest = warnings.contains(&"exif_orientation_kept_as_tag".to_string())
        || warnings.contains(&"original_returned_not_smaller".to_string());
    assert!(
        honest && !warnings.contains(&"exif_orientation_applied".to_string()),
        "{body}"
    );
}
