//! End-to-end byte budgets and score floors (issue 21): `max_bytes` alone lowers the quality to
//! the highest that fits (down to the codec's lowest, with a warning); `min_ssimulacra2` gives
//! the smallest output that keeps the floor and, with `max_bytes`, fails with
//! `422 budget_unreachable` naming the smallest size reached at the floor; with `format: auto`
//! the format is searched too. Sizes and scores are checked against fixed-quality requests of
//! the same image, and outputs are fetched and decoded.

mod common;

use common::*;
use serde_json::{json, Value};

const PHOTO: &str = "photo_wood.jpg";

fn thumbnail() -> Value {
    json!({"strategy": "landscape", "width": 640})
}

async fn send(server: &Server, options: Value) -> (u16, Value) {
    let mut data = options;
    data["api_key"] = json!(server.key);
    data["resize"] = thumbnail();
    json_of(upload(server, &corpus(PHOTO), "in.jpg", data).await).await
}

async fn ok(server: &Server, options: Value) -> Value {
    let (status, body) = send(server, options.clone()).await;
    assert_eq!(status, 200, "{options} → {body}");
    let bytes = client()
        .get(body["url"].as_str().expect("url"))
        .send()
        .await
        .expect("hosted")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(bytes.len() as u64, body["final_size"].as_u64().unwrap());
    let image = decode(&bytes);
    assert_eq!(
        u64::from(image.width()),
        body["final_width"].as_u64().unwrap()
    );
    assert_eq!(image.width(), 640);
    body
}

fn size(body: &Value) -> u64 {
    body["final_size"].as_u64().expect("final_size")
}

fn codes(body: &Value) -> Vec<&str> {
    body["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(|w| w["code"].as_str()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn max_bytes_alone_keeps_the_highest_quality_that_fits() {
    let server = Server::start(&[]);
    let fixed = |q: u8| json!({"lossy": true, "quality": q, "format": "jpeg"});
    let at_90 = size(&ok(&server, fixed(90)).await);
    let budget = at_90 / 2;
    let mut options = fixed(90);
    options["max_bytes"] = json!(budget);
    let fitted = ok(&server, options).await;
    let quality = fitted["quality"].as_u64().expect("quality") as u8;
    assert!(size(&fitted) <= budget, "{fitted}");
    assert!(quality < 90);
    assert!(
        fitted["ssimulacra2"].as_f64().is_some(),
        "the score is reported"
    );
    assert!(codes(&fitted).is_empty(), "{fitted}");
    // The same quality fixed gives the same bytes; one more does not fit.
    assert_eq!(size(&ok(&server, fixed(quality)).await), size(&fitted));
    assert!(size(&ok(&server, fixed(quality + 1)).await) > budget);

    // Without a quality: the searched one, lowered just as far.
    let searched = ok(
        &server,
        json!({"lossy": true, "format": "jpeg", "max_bytes": budget}),
    )
    .await;
    assert!(size(&searched) <= budget);

    // Too small for any quality: the codec's lowest, said in a warning.
    let floor = ok(
        &server,
        json!({"lossy": true, "format": "jpeg", "max_bytes": 100}),
    )
    .await;
    assert_eq!(floor["quality"], 30);
    assert_eq!(codes(&floor), ["max_bytes_not_reached"]);
    assert!(size(&floor) > 100);
}

#[tokio::test]
async fn a_score_floor_gives_the_smallest_output_that_keeps_it_or_a_422() {
    let server = Server::start(&[]);
    let kept = ok(
        &server,
        json!({"lossy": true, "format": "jpeg", "min_ssimulacra2": 70}),
    )
    .await;
    let score = kept["ssimulacra2"].as_f64().expect("score");
    assert!(score >= 70.0, "{kept}");
    let quality = kept["quality"].as_u64().unwrap();
    // The reported score is the returned output's: the same quality, scored on request.
    let again = ok(
        &server,
        json!({"lossy": true, "format": "jpeg", "quality": quality, "score": true}),
    )
    .await;
    assert_eq!(size(&again), size(&kept));
    assert!((again["ssimulacra2"].as_f64().unwrap() - score).abs() < 0.01);

    // Room for exactly that output: the same answer.
    let within = ok(
        &server,
        json!({"lossy": true, "format": "jpeg", "min_ssimulacra2": 70, "max_bytes": size(&kept)}),
    )
    .await;
    assert_eq!(size(&within), size(&kept));

    // One byte less: both cannot hold.
    let (status, body) = send(
        &server,
        json!({"lossy": true, "format": "jpeg", "min_ssimulacra2": 70, "max_bytes": size(&kept) - 1}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let error = &body["error"];
    assert_eq!(error["code"], "budget_unreachable");
    assert_eq!(
        error["details"]["smallest_bytes"].as_u64(),
        Some(size(&kept))
    );
    assert_eq!(error["details"]["reached_floor"], true);
    assert_eq!(error["details"]["format"], "jpeg");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains(&size(&kept).to_string()),
        "{error}"
    );

    // A floor no quality reaches.
    let (status, body) = send(
        &server,
        json!({"lossy": true, "format": "jpeg", "min_ssimulacra2": 99.5}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"]["reached_floor"], false);
}

#[tokio::test]
async fn with_auto_the_format_is_searched_too() {
    let server = Server::start(&[]);
    let floor = 72;
    let mut each = Vec::new();
    for format in ["jpeg", "webp", "avif"] {
        let body = ok(
            &server,
            json!({"lossy": true, "format": format, "min_ssimulacra2": floor}),
        )
        .await;
        assert!(body["ssimulacra2"].as_f64().unwrap() >= f64::from(floor));
        each.push((size(&body), format));
    }
    let auto = ok(
        &server,
        json!({"lossy": true, "format": "auto", "min_ssimulacra2": floor}),
    )
    .await;
    let smallest = each.iter().min().copied().unwrap();
    assert_eq!(
        (size(&auto), auto["format"].as_str().unwrap()),
        smallest,
        "{each:?}"
    );

    // A budget between the smallest and the next: only the smallest format fits.
    let mut sizes: Vec<u64> = each.iter().map(|e| e.0).collect();
    sizes.sort_unstable();
    let budget = (sizes[0] + sizes[1]) / 2;
    let fitted = ok(
        &server,
        json!({"lossy": true, "format": "auto", "min_ssimulacra2": floor, "max_bytes": budget}),
    )
    .await;
    assert_eq!(fitted["format"], smallest.1);
    let (status, body) = send(
        &server,
        json!({"lossy": true, "format": "auto", "min_ssimulacra2": floor, "max_bytes": sizes[0] - 1}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["error"]["details"]["smallest_bytes"].as_u64(),
        Some(sizes[0])
    );
}

#[tokio::test]
async fn budgets_refuse_what_they_cannot_do() {
    let server = Server::start(&[]);
    let (status, body) = send(&server, json!({"max_bytes": 5000})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["details"]["field"], "max_bytes");
    let data = json!({"api_key": server.key, "lossy": true, "max_bytes": 5000, "format": "webp"});
    let (status, body) =
        json_of(upload(&server, &corpus("gif_chi_anim.gif"), "a.gif", data).await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "not_supported_yet");
}
