//! One file through the pipeline, and the pool that runs many. Each worker reads a file, runs
//! the core on it and writes the result atomically (a temporary file in the target directory,
//! then a rename), so an interrupted run never leaves a half-written image, in `--out` or in
//! place. In place, a result replaces its input only when it is smaller.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};

use pixpress_core::{
    inspect, optimize, optimize_resized, CoreError, ImageFormat, InputFormat, Output, Warning,
};
use thiserror::Error;

use super::inputs::{Destination, Planned};
use super::options::Settings;

/// What became of one file that did not fail.
#[derive(Clone, Debug)]
pub struct Done {
    /// Where the result is: the file written, or the input when it was kept.
    pub output: PathBuf,
    pub outcome: Outcome,
    pub input_format: InputFormat,
    pub format: ImageFormat,
    pub input_bytes: u64,
    /// Bytes now on disk for this image (the input's own when it was kept).
    pub output_bytes: u64,
    pub width: u32,
    pub height: u32,
    pub quality: Option<u8>,
    pub ssimulacra2: Option<f64>,
    pub warnings: Vec<Warning>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The result was written (under `--out` this may be a copy of the input, which the
    /// never-larger rule handed back).
    Written,
    /// In place, and the result was not smaller: the input is untouched.
    KeptOriginal,
}

/// Why one file failed; the run goes on with the others.
#[derive(Debug, Error)]
pub enum FileError {
    #[error("reading: {0}")]
    Read(std::io::Error),
    #[error(transparent)]
    Pipeline(#[from] CoreError),
    #[error("the pipeline produced no output")]
    NoOutput,
    #[error("the result {} would overwrite an input; not written", .0.display())]
    OutputIsInput(PathBuf),
    #[error("the result {} is also another input's result; not written", .0.display())]
    OutputTaken(PathBuf),
    #[error("the result {} already exists beside the input; not overwritten in place", .0.display())]
    SiblingExists(PathBuf),
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("removing the original after writing {}: {source}", written.display())]
    RemoveOriginal {
        written: PathBuf,
        source: std::io::Error,
    },
}

/// What every worker shares: the options, where results go, and the paths already claimed.
pub struct Context<'a> {
    pub settings: &'a Settings,
    pub destination: &'a Destination,
    /// Canonical paths of every input: no result is written onto one (except its own, in place).
    pub inputs: HashSet<PathBuf>,
    /// Output paths written so far in this run; `auto` results can only be checked here.
    claimed: Mutex<HashSet<PathBuf>>,
}

impl<'a> Context<'a> {
    pub fn new(settings: &'a Settings, destination: &'a Destination, files: &[Planned]) -> Self {
        Context {
            settings,
            destination,
            inputs: files.iter().map(|f| f.canonical.clone()).collect(),
            claimed: Mutex::new(HashSet::new()),
        }
    }

    /// Reserves `path` for one result; false when another file's result already has it.
    fn claim(&self, path: &Path) -> bool {
        // A worker that panicked while holding the lock left the set itself intact.
        let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        claimed.insert(path.to_path_buf())
    }
}

/// Runs `work` on every item with `jobs` threads; `progress` sees each result as it arrives
/// (on the calling thread). Results come back in the order of `items`.
pub fn run_pool<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&T) -> R + Sync,
    mut progress: impl FnMut(&T, &R),
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel();
    let mut results: Vec<Option<R>> = items.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            let sender = sender.clone();
            let (next, work) = (&next, &work);
            scope.spawn(move || loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(index) else { break };
                if sender.send((index, work(item))).is_err() {
                    break;
                }
            });
        }
        drop(sender);
        for (index, result) in receiver {
            progress(&items[index], &result);
            results[index] = Some(result);
        }
    });
    results.into_iter().flatten().collect()
}

/// One file: read, optimise, write.
pub fn process(context: &Context<'_>, file: &Planned) -> Result<Done, FileError> {
    let input = std::fs::read(&file.input).map_err(FileError::Read)?;
    let settings = context.settings;
    let probe = inspect(&input, &settings.limits)?;
    let output = match &settings.resize {
        None => optimize(&input, &probe, &settings.request, &settings.limits)?,
        Some(spec) => optimize_resized(
            &input,
            &probe,
            &settings.request,
            std::slice::from_ref(spec),
            &settings.limits,
        )?
        .pop()
        .ok_or(FileError::NoOutput)?,
    };
    let path = file.output_path(output.format);
    let outcome = match context.destination {
        Destination::Out(_) => write_out(context, &path, &output)?,
        Destination::InPlace => replace_in_place(context, file, &path, &input, &output)?,
    };
    let (output_path, output_bytes) = match outcome {
        Outcome::Written => (path, output.bytes.len() as u64),
        Outcome::KeptOriginal => (file.input.clone(), input.len() as u64),
    };
    Ok(Done {
        output: output_path,
        outcome,
        input_format: probe.format,
        format: output.format,
        input_bytes: input.len() as u64,
        output_bytes,
        width: output.width,
        height: output.height,
        quality: output.quality,
        ssimulacra2: output.ssimulacra2,
        warnings: output.warnings,
    })
}

fn write_out(context: &Context<'_>, path: &Path, output: &Output) -> Result<Outcome, FileError> {
    if context.inputs.contains(path) {
        return Err(FileError::OutputIsInput(path.to_path_buf()));
    }
    if !context.claim(path) {
        return Err(FileError::OutputTaken(path.to_path_buf()));
    }
    write_atomically(path, &output.bytes, None)?;
    Ok(Outcome::Written)
}

/// Replaces the input when the result is smaller. A result in another format is written beside
/// the input under its own extension, and the input is removed once it is in place.
fn replace_in_place(
    context: &Context<'_>,
    file: &Planned,
    path: &Path,
    input: &[u8],
    output: &Output,
) -> Result<Outcome, FileError> {
    if output.original_returned || output.bytes.len() >= input.len() {
        return Ok(Outcome::KeptOriginal);
    }
    let replaces_itself = path == file.canonical;
    if !replaces_itself {
        if context.inputs.contains(path) {
            return Err(FileError::OutputIsInput(path.to_path_buf()));
        }
        if path.exists() {
            return Err(FileError::SiblingExists(path.to_path_buf()));
        }
    }
    if !context.claim(path) {
        return Err(FileError::OutputTaken(path.to_path_buf()));
    }
    let permissions = std::fs::metadata(&file.canonical)
        .map(|m| m.permissions())
        .map_err(FileError::Read)?;
    write_atomically(path, &output.bytes, Some(permissions))?;
    if !replaces_itself {
        std::fs::remove_file(&file.canonical).map_err(|source| FileError::RemoveOriginal {
            written: path.to_path_buf(),
            source,
        })?;
    }
    Ok(Outcome::Written)
}

/// Writes to a temporary file in the target's directory, then renames it over the target, so
/// readers see the old file or the new one, never a part. `permissions` are the replaced
/// input's; new files get the usual ones (0666 less the umask on Unix).
fn write_atomically(
    path: &Path,
    bytes: &[u8],
    permissions: Option<std::fs::Permissions>,
) -> Result<(), FileError> {
    let failed = |source| FileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(failed)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".pixpress-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder.tempfile_in(dir).map_err(failed)?;
    temp.write_all(bytes).map_err(failed)?;
    if let Some(permissions) = permissions {
        temp.as_file()
            .set_permissions(permissions)
            .map_err(failed)?;
    }
    temp.as_file().sync_all().map_err(failed)?;
    temp.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_keeps_the_order_and_sees_every_result() {
        let items: Vec<u32> = (0..50).collect();
        let mut seen = 0;
        let doubled = run_pool(&items, 4, |n| n * 2, |_, _| seen += 1);
        assert_eq!(doubled, items.iter().map(|n| n * 2).collect::<Vec<_>>());
        assert_eq!(seen, 50);
        assert!(run_pool(&[] as &[u32], 4, |n| *n, |_, _| {}).is_empty());
    }
}
