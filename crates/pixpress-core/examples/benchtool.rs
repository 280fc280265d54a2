//! The pixpress side of `bench/compare.py`: compresses a file exactly as the API would, or
//! scores one image against another with the SSIMULACRA2 the API reports.
//!
//! `benchtool compress IN OUT [--lossy] [--quality Q] [--target T] [--format F]` prints
//! `quality score ms format`.
//! `benchtool score SOURCE DISTORTED` prints the SSIMULACRA2 score.

use std::time::Instant;

use pixpress_core::{decode_any, inspect, optimize, Limits, OutputFormat, Reference, Request};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("compress") if args.len() >= 3 => compress(&args[1], &args[2], &args[3..]),
        Some("score") if args.len() == 3 => score(&args[1], &args[2]),
        _ => {
            eprintln!("usage: benchtool compress IN OUT [--lossy] [--quality Q] [--format F] | score SRC OUT");
            std::process::exit(2);
        }
    }
}

fn compress(input_path: &str, output_path: &str, flags: &[String]) {
    let mut request = Request::default();
    let mut flags = flags.iter();
    while let Some(flag) = flags.next() {
        match flag.as_str() {
            "--lossy" => request.lossy = true,
            "--quality" => request.quality = flags.next().and_then(|q| q.parse().ok()),
            "--target" => request.quality_target = flags.next().and_then(|t| t.parse().ok()),
            "--format" => {
                request.format = match flags.next().map(String::as_str) {
                    Some("jpeg") => OutputFormat::Jpeg,
                    Some("png") => OutputFormat::Png,
                    Some("webp") => OutputFormat::Webp,
                    Some("gif") => OutputFormat::Gif,
                    Some("avif") => OutputFormat::Avif,
                    Some("auto") => OutputFormat::Auto,
                    _ => OutputFormat::Same,
                }
            }
            other => panic!("unknown flag {other}"),
        }
    }
    let input = std::fs::read(input_path).expect("read input");
    let limits = Limits::default();
    let start = Instant::now();
    let probe = inspect(&input, &limits).expect("probe");
    let output = optimize(&input, &probe, &request, &limits).expect("optimize");
    let ms = start.elapsed().as_millis();
    std::fs::write(output_path, &output.bytes).expect("write output");
    println!(
        "{} {} {} {}",
        output.quality.map_or("-".into(), |q| q.to_string()),
        output.ssimulacra2.map_or("-".into(), |s| format!("{s:.2}")),
        ms,
        output.format.name()
    );
}

fn score(source: &str, distorted: &str) {
    // AVIF through libaom, like the API scores it; the rest through `image`.
    let open = |path: &str| decode_any(&std::fs::read(path).expect("read")).expect("decodes");
    let (source, distorted) = (open(source), open(distorted));
    let value = Reference::new(&source)
        .and_then(|r| r.score(&distorted))
        .expect("comparable images");
    println!("{value:.3}");
}
