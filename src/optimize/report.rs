//! What a run tells its user: the progress bar on stderr while it works (files done, files/s,
//! MB/s read, bytes saved so far; hidden when stderr is not a terminal), then the summary table
//! (or the JSON report) on stdout and each failed file, with its error, on stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use pixpress_core::Warning;
use serde::Serialize;

use super::work::{Done, FileError, Outcome};

/// How often the bar redraws, so elapsed time moves while one large file is encoding.
const TICK: Duration = Duration::from_millis(200);

pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    read: u64,
    saved: i64,
    failed: usize,
}

impl Progress {
    pub fn start(files: usize) -> Progress {
        let bar = ProgressBar::new(files as u64);
        // The template is a constant: it parses, and a bar without a style would still work.
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} files  {msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(TICK);
        Progress {
            bar,
            started: Instant::now(),
            read: 0,
            saved: 0,
            failed: 0,
        }
    }

    pub fn record(&mut self, result: &Result<Done, FileError>) {
        match result {
            Ok(done) => {
                self.read += done.input_bytes;
                self.saved += saved(done.input_bytes, done.output_bytes);
            }
            Err(_) => self.failed += 1,
        }
        self.bar.inc(1);
        self.bar.set_message(self.message());
    }

    fn message(&self) -> String {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        let files = self.bar.position() as f64 / seconds;
        let rate = HumanBytes((self.read as f64 / seconds) as u64);
        let mut message = format!(
            "{files:.1} files/s, {rate}/s, saved {}",
            signed_bytes(self.saved)
        );
        if self.failed > 0 {
            message.push_str(&format!(", {} failed", self.failed));
        }
        message
    }

    pub fn finish(self) -> Duration {
        self.bar.finish_and_clear();
        self.started.elapsed()
    }
}

/// The totals of a run.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub files: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Of the files that succeeded.
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub bytes_saved: i64,
    pub saved_percent: f64,
    pub elapsed_seconds: f64,
}

impl Summary {
    pub fn of(results: &[Result<Done, FileError>], elapsed: Duration) -> Summary {
        let done: Vec<&Done> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        let input_bytes = done.iter().map(|d| d.input_bytes).sum();
        let output_bytes = done.iter().map(|d| d.output_bytes).sum();
        let bytes_saved = saved(input_bytes, output_bytes);
        Summary {
            files: results.len(),
            succeeded: done.len(),
            failed: results.len() - done.len(),
            input_bytes,
            output_bytes,
            bytes_saved,
            saved_percent: percent(bytes_saved, input_bytes),
            elapsed_seconds: elapsed.as_secs_f64(),
        }
    }

    /// The summary table: one header line, one line of values.
    pub fn table(&self) -> String {
        let headers = ["files", "failed", "input", "output", "saved", "elapsed"];
        let values = [
            self.files.to_string(),
            self.failed.to_string(),
            HumanBytes(self.input_bytes).to_string(),
            HumanBytes(self.output_bytes).to_string(),
            format!(
                "{} ({:.1}%)",
                signed_bytes(self.bytes_saved),
                self.saved_percent
            ),
            format!("{:.1}s", self.elapsed_seconds),
        ];
        let widths: Vec<usize> = headers
            .iter()
            .zip(&values)
            .map(|(h, v)| h.len().max(v.chars().count()))
            .collect();
        let line = |cells: Vec<&str>| {
            cells
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        format!(
            "{}\n{}\n",
            line(headers.to_vec()),
            line(values.iter().map(String::as_str).collect())
        )
    }
}

/// One file in the JSON report.
#[derive(Debug, Serialize)]
struct FileReport<'a> {
    input: &'a Path,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quality: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssimulacra2: Option<f64>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    warnings: &'a [Warning],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl<'a> FileReport<'a> {
    fn new(input: &'a Path, result: &'a Result<Done, FileError>) -> Self {
        match result {
            Ok(done) => FileReport {
                input,
                status: match done.outcome {
                    Outcome::Written => "written",
                    Outcome::KeptOriginal => "kept_original",
                },
                output: Some(&done.output),
                input_format: Some(done.input_format.name()),
                format: Some(done.format.name()),
                input_bytes: Some(done.input_bytes),
                output_bytes: Some(done.output_bytes),
                width: Some(done.width),
                height: Some(done.height),
                quality: done.quality,
                ssimulacra2: done.ssimulacra2,
                warnings: &done.warnings,
                error: None,
            },
            Err(e) => FileReport {
                input,
                status: "failed",
                output: None,
                input_format: None,
                format: None,
                input_bytes: None,
                output_bytes: None,
                width: None,
                height: None,
                quality: None,
                ssimulacra2: None,
                warnings: &[],
                error: Some(e.to_string()),
            },
        }
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    files: Vec<FileReport<'a>>,
    summary: &'a Summary,
}

/// The JSON report: every file in input order, then the totals.
pub fn json(inputs: &[PathBuf], results: &[Result<Done, FileError>], summary: &Summary) -> String {
    let report = JsonReport {
        files: inputs
            .iter()
            .zip(results)
            .map(|(input, result)| FileReport::new(input, result))
            .collect(),
        summary,
    };
    // Plain data (paths, numbers, strings): serialising it cannot fail.
    serde_json::to_string_pretty(&report).unwrap_or_default()
}

/// Names each failed file with its error on stderr.
pub fn print_failures(inputs: &[PathBuf], results: &[Result<Done, FileError>]) {
    let mut stderr = std::io::stderr().lock();
    for (input, result) in inputs.iter().zip(results) {
        if let Err(e) = result {
            let _ = writeln!(stderr, "pixpress: {}: {e}", input.display());
        }
    }
}

fn saved(input: u64, output: u64) -> i64 {
    i64::try_from(input).unwrap_or(i64::MAX) - i64::try_from(output).unwrap_or(i64::MAX)
}

fn percent(saved: i64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        saved as f64 * 100.0 / of as f64
    }
}

/// Bytes saved; a run that converted to a larger format shows how much it grew.
fn signed_bytes(bytes: i64) -> String {
    let size = HumanBytes(bytes.unsigned_abs());
    if bytes < 0 {
        format!("-{size}")
    } else {
        size.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up_and_shows_growth_as_negative() {
        let summary = Summary {
            files: 3,
            succeeded: 2,
            failed: 1,
            input_bytes: 2048,
            output_bytes: 3072,
            bytes_saved: -1024,
            saved_percent: -50.0,
            elapsed_seconds: 1.5,
        };
        let table = summary.table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("files  failed  input"), "{table}");
        assert!(lines[1].contains("-1.00 KiB (-50.0%)"), "{table}");
        assert_eq!(lines[0].find("input"), lines[1].find("2.00 KiB"));
        assert!(lines[1].ends_with("1.5s"), "{table}");
    }
}
