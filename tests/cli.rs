//! `pixpress optimize` end to end: the real binary on a temporary directory holding copies of
//! corpus images (a nested directory and a corrupt PNG among them). Outputs are decoded and
//! checked for path, format, dimensions and, for lossless runs, identical pixels.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{corpus_dir, decode_rgba, BIN};
use serde_json::Value;

/// A corrupt PNG of the suite (bit depth 0), which every run must name as failed.
const CORRUPT: &str = "pngsuite/xd0n2c08.png";

/// Copies corpus files into `dir` under the given relative names (made writable, as a user's
/// own files would be).
fn copy_into(dir: &Path, files: &[(&str, &str)]) {
    for (from, to) in files {
        let target = dir.join(to);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::copy(corpus_dir().join(from), &target).expect("copy corpus file");
        let mut permissions = std::fs::metadata(&target).expect("stat").permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        permissions.set_readonly(false);
        std::fs::set_permissions(&target, permissions).expect("chmod");
    }
}

/// The standard input tree: two images at the top, two (one corrupt) in `nested/deeper`.
fn input_tree(root: &Path) -> PathBuf {
    let input = root.join("in");
    copy_into(
        &input,
        &[
            ("png_plasma_screenshot.png", "plasma.png"),
            ("edge/progressive.jpg", "progressive.jpg"),
            ("pngsuite/basi2c08.png", "nested/deeper/basi2c08.png"),
            (CORRUPT, "nested/deeper/broken.png"),
        ],
    );
    std::fs::write(input.join("notes.txt"), "not an image, not picked up").expect("write");
    input
}

fn optimize(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("optimize")
        .args(args)
        .output()
        .expect("run pixpress optimize")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json_report(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(&output.stdout)))
}

/// Every file under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("under dir");
                found.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

/// Every file's bytes under `dir`, to show that a run left them alone.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    files_under(dir)
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(dir.join(&name)).expect("read");
            (name, bytes)
        })
        .collect()
}

fn format_of(bytes: &[u8]) -> image::ImageFormat {
    image::guess_format(bytes).expect("a known image format")
}

#[test]
fn lossless_run_keeps_relative_paths_and_pixels_and_names_the_corrupt_file() {
    let temp = tempfile::tempdir().expect("tempdir");
    let input = input_tree(temp.path());
    let before = snapshot(&input);
    let out = temp.path().join("out");
    let run = optimize(&[
        input.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--json",
        "--jobs",
        "2",
    ]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("broken.png") && stderr.contains("corrupt"),
        "stderr names the corrupt file and why: {stderr}"
    );
    assert_eq!(
        files_under(&out),
        [
            "nested/deeper/basi2c08.png",
            "plasma.png",
            "progressive.jpg"
        ],
        "one result per good image, at its relative path; no temporary files left"
    );
    for name in [
        "nested/deeper/basi2c08.png",
        "plasma.png",
        "progressive.jpg",
    ] {
        let original = std::fs::read(input.join(name)).expect("input");
        let result = std::fs::read(out.join(name)).expect("output");
        assert_eq!(format_of(&result), format_of(&original), "{name}");
        assert!(result.len() <= original.len(), "{name} is never larger");
        assert_eq!(
            decode_rgba(&result),
            decode_rgba(&original),
            "{name}: a lossless run changes no pixel"
        );
    }
    assert_eq!(
        snapshot(&input),
        before,
        "inputs are untouched without --in-place"
    );

    let report = json_report(&run);
    let summary = &report["summary"];
    assert_eq!(summary["files"], 4);
    assert_eq!(summary["failed"], 1);
    assert_eq!(summary["succeeded"], 3);
    let files = report["files"].as_array().expect("files");
    let broken = files
        .iter()
        .find(|f| {
            f["input"]
                .as_str()
                .is_some_and(|p| p.ends_with("broken.png"))
        })
        .expect("the corrupt file is in the report");
    assert_eq!(broken["status"], "failed");
    let written: u64 = files
        .iter()
        .filter_map(|f| f["output_bytes"].as_u64())
        .sum();
    assert_eq!(summary["output_bytes"].as_u64(), Some(written));
    let on_disk: u64 = files_under(&out)
        .iter()
        .map(|name| std::fs::metadata(out.join(name)).expect("stat").len())
        .sum();
    assert_eq!(written, on_disk, "the report counts what was written");
}

#[test]
fn resize_and_format_flags_set_dimensions_and_extensions() {
    let temp = tempfile::tempdir().expect("tempdir");
    let input = temp.path().join("in");
    copy_into(
        &input,
        &[
            ("png_skimage_logo_rgba.png", "logo.png"),
            ("edge/progressive.jpg", "photos/progressive.jpg"),
        ],
    );
    let out = temp.path().join("out");
    let run = optimize(&[
        input.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--format",
        "webp",
        "--lossy",
        "--quality",
        "70",
        "--resize",
        "fit",
        "--width",
        "64",
        "--height",
        "48",
    ]);
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "stderr: {}", text(&run.stderr));
    assert_eq!(
        files_under(&out),
        ["logo.webp", "photos/progressive.webp"],
        "each result takes the output format's extension"
    );
    for name in ["logo.webp", "photos/progressive.webp"] {
        let bytes = std::fs::read(out.join(name)).expect("output");
        assert_eq!(format_of(&bytes), image::ImageFormat::WebP, "{name}");
        assert_eq!(decode_rgba(&bytes).dimensions(), (64, 48), "{name}");
    }
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.len() == 2 && lines[0].contains("files") && lines[0].contains("saved"),
        "the summary table is on stdout: {stdout}"
    );
    assert!(lines[1].starts_with('2'), "two files: {stdout}");
}

#[test]
fn refuses_to_write_over_inputs_before_any_work() {
    let temp = tempfile::tempdir().expect("tempdir");
    let input = input_tree(temp.path());
    let before = snapshot(&input);
    let run = optimize(&[
        input.to_str().expect("utf-8"),
        "--out",
        input.to_str().expect("utf-8"),
    ]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("refusing to overwrite") && stderr.contains("plasma.png"),
        "{stderr}"
    );
    assert_eq!(snapshot(&input), before, "nothing was written or replaced");

    // A converted result may not land on another input either: a.png -> a.webp, an input.
    copy_into(&input, &[("edge/webp_lossless.webp", "plasma.webp")]);
    let out_of_place = optimize(&[
        input.join("plasma.png").to_str().expect("utf-8"),
        input.join("plasma.webp").to_str().expect("utf-8"),
        "--in-place",
        "--format",
        "webp",
    ]);
    assert_eq!(out_of_place.status.code(), Some(2));
    assert!(text(&out_of_place.stderr).contains("plasma.webp"));

    let usage = optimize(&[
        input.to_str().expect("utf-8"),
        "--out",
        "/nonexistent-dir",
        "--resize",
        "exact",
        "--width",
        "10",
    ]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(text(&usage.stderr).contains("needs --height"));
}

#[test]
fn in_place_replaces_only_with_smaller_results() {
    let temp = tempfile::tempdir().expect("tempdir");
    let input = input_tree(temp.path());
    let before = snapshot(&input);
    let run = optimize(&[input.to_str().expect("utf-8"), "--in-place", "--json"]);
    assert_eq!(run.status.code(), Some(1), "the corrupt file still fails");
    let report = json_report(&run);
    let mut replaced = 0;
    for (name, original) in &before {
        if !name.ends_with(".png") && !name.ends_with(".jpg") {
            continue;
        }
        let now = std::fs::read(input.join(name)).expect("still there");
        let entry = report["files"]
            .as_array()
            .expect("files")
            .iter()
            .find(|f| {
                f["input"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(name.as_str()))
            })
            .expect("reported");
        match entry["status"].as_str() {
            Some("written") => {
                replaced += 1;
                assert!(
                    now.len() < original.len(),
                    "{name} replaced by a smaller file"
                );
                assert_eq!(
                    decode_rgba(&now),
                    decode_rgba(original),
                    "{name}: same pixels"
                );
            }
            Some("kept_original") | Some("failed") => {
                assert_eq!(&now, original, "{name} left as it was")
            }
            other => panic!("{name}: unexpected status {other:?}"),
        }
    }
    assert!(
        replaced >= 1,
        "some file got smaller: {}",
        text(&run.stdout)
    );
    assert_eq!(
        files_under(&input),
        before.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        "the same files, no temporary ones left"
    );
}

#[test]
fn in_place_conversion_replaces_the_file_under_the_new_extension() {
    let temp = tempfile::tempdir().expect("tempdir");
    let input = temp.path().join("in");
    copy_into(&input, &[("png_plasma_screenshot.png", "shots/plasma.png")]);
    let original = std::fs::read(input.join("shots/plasma.png")).expect("input");
    let run = optimize(&[
        input.to_str().expect("utf-8"),
        "--in-place",
        "--format",
        "webp",
    ]);
    assert!(run.status.success(), "stderr: {}", text(&run.stderr));
    assert_eq!(
        files_under(&input),
        ["shots/plasma.webp"],
        "the PNG was replaced"
    );
    let converted = std::fs::read(input.join("shots/plasma.webp")).expect("output");
    assert_eq!(format_of(&converted), image::ImageFormat::WebP);
    assert!(converted.len() < original.len());
    assert_eq!(
        decode_rgba(&converted),
        decode_rgba(&original),
        "a lossless conversion keeps every pixel"
    );

    // Two inputs whose results would share a name are refused before any work.
    copy_into(
        &input,
        &[
            ("edge/progressive.jpg", "shots/photo.jpg"),
            ("pngsuite/basi2c08.png", "shots/photo.png"),
        ],
    );
    let out = temp.path().join("out");
    let clash = optimize(&[
        input.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--format",
        "webp",
    ]);
    let stderr = text(&clash.stderr);
    assert_eq!(clash.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("same output") && stderr.contains("photo.webp"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing was written");
}
