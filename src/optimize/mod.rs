//! `pixpress optimize`: the pipeline run locally over files and directories, no server. This
//! module owns the run's order: check the flags, plan every input and output path (refusing to
//! overwrite inputs before any work), run a pool of `--jobs` workers with a progress bar, then
//! report. Exit status: 0 when every file succeeded, 1 when any failed (each named on stderr),
//! 2 when the run could not start (clap's code for usage errors).

mod inputs;
mod options;
mod report;
mod work;

use std::path::PathBuf;
use std::process::ExitCode;

pub use options::OptimizeArgs;

use inputs::Destination;
use report::{Progress, Summary};
use work::Context;

/// Exit status when some file failed.
const SOME_FAILED: u8 = 1;
/// Exit status when the run could not start, as clap uses for usage errors.
const CANNOT_START: u8 = 2;

pub fn run(args: OptimizeArgs) -> ExitCode {
    match prepare(&args) {
        Ok((settings, destination, files)) => execute(&args, &settings, &destination, &files),
        Err(message) => {
            eprintln!("pixpress: {message}");
            ExitCode::from(CANNOT_START)
        }
    }
}

/// Everything checked before any file is read in full: flags, inputs, output paths.
fn prepare(
    args: &OptimizeArgs,
) -> Result<(options::Settings, Destination, Vec<inputs::Planned>), String> {
    let settings = args.settings().map_err(|e| e.to_string())?;
    let destination = match &args.out {
        Some(out) => Destination::Out(inputs::out_directory(out).map_err(|e| e.to_string())?),
        None => Destination::InPlace,
    };
    let files = inputs::plan(&args.paths, &destination, settings.request.format)
        .map_err(|e| e.to_string())?;
    Ok((settings, destination, files))
}

fn execute(
    args: &OptimizeArgs,
    settings: &options::Settings,
    destination: &Destination,
    files: &[inputs::Planned],
) -> ExitCode {
    let jobs = args.jobs.map_or_else(default_jobs, |n| n.get());
    let context = Context::new(settings, destination, files);
    let mut progress = Progress::start(files.len());
    let results = work::run_pool(
        files,
        jobs,
        |file| work::process(&context, file),
        |_, result| progress.record(result),
    );
    let elapsed = progress.finish();
    let summary = Summary::of(&results, elapsed);
    let inputs: Vec<PathBuf> = files.iter().map(|f| f.input.clone()).collect();
    if args.json {
        println!("{}", report::json(&inputs, &results, &summary));
    } else {
        print!("{}", summary.table());
    }
    report::print_failures(&inputs, &results);
    if summary.failed > 0 {
        ExitCode::from(SOME_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
