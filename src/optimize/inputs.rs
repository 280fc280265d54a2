//! Which files a run reads and where each result goes. Directories are searched recursively
//! for image extensions (a file named on the command line is taken whatever its name, and
//! sniffed by content); each result keeps its path relative to the directory given, under
//! `--out`, with the extension of its output format. This module owns the refusal to overwrite
//! inputs: every output path a file could get is compared with every input before any work.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use pixpress_core::format::{sniff, Sniffed};
use pixpress_core::{ImageFormat, InputFormat, OutputFormat};
use thiserror::Error;

/// Extensions a directory search picks up (compared in lower case).
const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "gif", "webp", "avif"];
/// ...and those of the formats pixpress reads but does not write (BMP, TIFF, JPEG XL).
const READ_ONLY_EXTENSIONS: [&str; 5] = ["bmp", "dib", "tif", "tiff", "jxl"];

/// Every format `auto` may choose, so every path it may write.
const ALL_FORMATS: [ImageFormat; 5] = [
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::Gif,
    ImageFormat::Webp,
    ImageFormat::Avif,
];

/// How many conflicting paths a refusal lists before "and N more".
const LISTED_CONFLICTS: usize = 5;

/// Where results are written.
#[derive(Clone, Debug)]
pub enum Destination {
    /// Under this directory (absolute; resolved through symlinks when it exists).
    Out(PathBuf),
    /// Over the inputs themselves.
    InPlace,
}

/// One input and the path its result is named after.
#[derive(Clone, Debug)]
pub struct Planned {
    /// As given on the command line or found under a directory given (for messages).
    pub input: PathBuf,
    /// Absolute, symlinks resolved: what output paths are compared with.
    pub canonical: PathBuf,
    /// The result's path before its extension is chosen: `--out` joined with the path relative
    /// to the directory given, or the input itself for `--in-place`.
    pub base: PathBuf,
}

impl Planned {
    /// Where the result goes once its format is known: the input's own extension when it
    /// already names that format (`.jpeg` stays `.jpeg`), else the format's.
    pub fn output_path(&self, format: ImageFormat) -> PathBuf {
        if extension_format(&self.input) == Some(format) {
            self.base.clone()
        } else {
            self.base.with_extension(format.extension())
        }
    }
}

/// Why the run cannot start.
#[derive(Debug, Error)]
pub enum PlanError {
    #[error("{path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("searching {path}: {source}")]
    Walk {
        path: PathBuf,
        source: walkdir::Error,
    },
    #[error("--out {0} exists and is not a directory")]
    OutNotADirectory(PathBuf),
    #[error("refusing to overwrite input files (pass --in-place to replace inputs, or choose another --out): {0}")]
    WouldOverwriteInputs(String),
    #[error("two inputs would be written to the same output: {0}")]
    SameOutput(String),
}

/// The inputs of a run, in the order given (directories in file-name order), each once.
pub fn plan(
    paths: &[PathBuf],
    destination: &Destination,
    format: OutputFormat,
) -> Result<Vec<Planned>, PlanError> {
    let mut planned = Vec::new();
    let mut seen = HashSet::new();
    for path in paths {
        for (input, relative) in discover(path, destination)? {
            let canonical = canonical(&input)?;
            if !seen.insert(canonical.clone()) {
                continue;
            }
            let base = match destination {
                Destination::Out(out) => out.join(relative),
                Destination::InPlace => canonical.clone(),
            };
            planned.push(Planned {
                input,
                canonical,
                base,
            });
        }
    }
    refuse_overwriting_inputs(&planned, destination, format)?;
    refuse_shared_outputs(&planned, format)?;
    Ok(planned)
}

/// `--out` as an absolute path, checked to be (or to become) a directory.
pub fn out_directory(out: &Path) -> Result<PathBuf, PlanError> {
    if out.exists() {
        if !out.is_dir() {
            return Err(PlanError::OutNotADirectory(out.to_path_buf()));
        }
        return canonical(out);
    }
    std::path::absolute(out).map_err(|source| PlanError::Unreadable {
        path: out.to_path_buf(),
        source,
    })
}

/// The files under one command-line path, each with the path its result keeps under `--out`.
fn discover(path: &Path, destination: &Destination) -> Result<Vec<(PathBuf, PathBuf)>, PlanError> {
    let metadata = std::fs::metadata(path).map_err(|source| PlanError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    if !metadata.is_dir() {
        let name = path.file_name().map(PathBuf::from).unwrap_or_default();
        return Ok(vec![(path.to_path_buf(), name)]);
    }
    let out = match destination {
        Destination::Out(out) => Some(out.as_path()),
        Destination::InPlace => None,
    };
    let walker = walkdir::WalkDir::new(path)
        .sort_by_file_name()
        .into_iter()
        // A previous run's results under the input directory are not inputs of this one. The
        // directory given is always searched: `--out` equal to it is refused, not emptied.
        .filter_entry(|entry| {
            entry.depth() == 0 || !(entry.file_type().is_dir() && is_out_dir(entry.path(), out))
        });
    let mut found = Vec::new();
    for entry in walker {
        let entry = entry.map_err(|source| PlanError::Walk {
            path: path.to_path_buf(),
            source,
        })?;
        if !entry.file_type().is_file() || !has_image_extension(entry.path()) {
            continue;
        }
        let relative = entry
            .path()
            .strip_prefix(path)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| entry.file_name().into());
        found.push((entry.path().to_path_buf(), relative));
    }
    Ok(found)
}

fn is_out_dir(dir: &Path, out: Option<&Path>) -> bool {
    out.is_some_and(|out| dir.canonicalize().is_ok_and(|dir| dir == out))
}

fn canonical(path: &Path) -> Result<PathBuf, PlanError> {
    path.canonicalize().map_err(|source| PlanError::Unreadable {
        path: path.to_path_buf(),
        source,
    })
}

/// Whether a directory search takes this file: an extension of a format pixpress reads.
fn has_image_extension(path: &Path) -> bool {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    ext.is_some_and(|ext| {
        IMAGE_EXTENSIONS.contains(&ext.as_str()) || READ_ONLY_EXTENSIONS.contains(&ext.as_str())
    })
}

/// The format a file name's extension names, if it is one pixpress writes.
fn extension_format(path: &Path) -> Option<ImageFormat> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    IMAGE_EXTENSIONS
        .contains(&ext.as_str())
        .then(|| ImageFormat::from_extension(&ext))
        .flatten()
}

/// Every output path a file may get: one when its format is known before encoding (a fixed
/// `--format`, or the input's own by its magic bytes), all of them for `auto`.
fn possible_outputs(file: &Planned, format: OutputFormat) -> Vec<PathBuf> {
    let formats: Vec<ImageFormat> = match format {
        OutputFormat::Auto => ALL_FORMATS.to_vec(),
        OutputFormat::Same => sniff_file(&file.input),
        // A fixed format does not depend on the input's, so any input format resolves it.
        fixed => fixed.resolve(ImageFormat::Png).into_iter().collect(),
    };
    formats.into_iter().map(|f| file.output_path(f)).collect()
}

/// The formats `format: same` may write for a file, by its first bytes: its own; PNG for BMP
/// and TIFF; PNG or JPEG for JPEG XL (the probe decides from the whole header). Empty when
/// unreadable or not an image (the file then fails on its own and writes nothing).
fn sniff_file(path: &Path) -> Vec<ImageFormat> {
    let mut head = Vec::with_capacity(256);
    let read = std::fs::File::open(path).and_then(|file| file.take(256).read_to_end(&mut head));
    match (read, sniff(&head)) {
        (Ok(_), Sniffed::Supported(InputFormat::Jxl)) => vec![ImageFormat::Png, ImageFormat::Jpeg],
        (Ok(_), Sniffed::Supported(format)) => {
            vec![format.writable().unwrap_or(ImageFormat::Png)]
        }
        _ => Vec::new(),
    }
}

/// Without `--in-place`, no result may land on an input. With it, a result may replace its own
/// input only, never another one (`a.png` → `a.webp` while `a.webp` is an input too).
fn refuse_overwriting_inputs(
    files: &[Planned],
    destination: &Destination,
    format: OutputFormat,
) -> Result<(), PlanError> {
    let inputs: HashSet<&Path> = files.iter().map(|f| f.canonical.as_path()).collect();
    let in_place = matches!(destination, Destination::InPlace);
    let conflicts: Vec<String> = files
        .iter()
        .flat_map(|file| {
            possible_outputs(file, format)
                .into_iter()
                .filter(|out| inputs.contains(out.as_path()))
                .filter(move |out| !(in_place && *out == file.canonical))
                .map(move |out| format!("{} -> {}", file.input.display(), out.display()))
        })
        .collect();
    if conflicts.is_empty() {
        return Ok(());
    }
    Err(PlanError::WouldOverwriteInputs(list(&conflicts)))
}

/// Two inputs whose results are known to share a path (`a.png` and `a.jpg` with `--format
/// webp`). Results of `auto` are checked as they are written instead.
fn refuse_shared_outputs(files: &[Planned], format: OutputFormat) -> Result<(), PlanError> {
    if format == OutputFormat::Auto {
        return Ok(());
    }
    let mut owners: HashMap<PathBuf, &Path> = HashMap::new();
    let mut conflicts = Vec::new();
    for file in files {
        for out in possible_outputs(file, format) {
            if let Some(first) = owners.get(&out) {
                conflicts.push(format!(
                    "{} and {} -> {}",
                    first.display(),
                    file.input.display(),
                    out.display()
                ));
            } else {
                owners.insert(out, &file.input);
            }
        }
    }
    if conflicts.is_empty() {
        return Ok(());
    }
    Err(PlanError::SameOutput(list(&conflicts)))
}

fn list(items: &[String]) -> String {
    let shown = items[..items.len().min(LISTED_CONFLICTS)].join(", ");
    match items.len().saturating_sub(LISTED_CONFLICTS) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(input: &str, base: &str) -> Planned {
        Planned {
            input: input.into(),
            canonical: input.into(),
            base: base.into(),
        }
    }

    #[test]
    fn outputs_take_the_format_extension_but_keep_a_matching_one() {
        let file = planned("/in/a/photo.JPEG", "/out/a/photo.JPEG");
        assert_eq!(
            file.output_path(ImageFormat::Jpeg),
            Path::new("/out/a/photo.JPEG")
        );
        assert_eq!(
            file.output_path(ImageFormat::Webp),
            Path::new("/out/a/photo.webp")
        );
        assert_eq!(extension_format(Path::new("x.txt")), None);
        assert_eq!(extension_format(Path::new("x.Png")), Some(ImageFormat::Png));
    }

    #[test]
    fn conflicts_are_listed_with_a_count_beyond_five() {
        let items: Vec<String> = (0..7).map(|i| i.to_string()).collect();
        assert_eq!(list(&items), "0, 1, 2, 3, 4 and 2 more");
        assert_eq!(list(&items[..2]), "0, 1");
    }
}
