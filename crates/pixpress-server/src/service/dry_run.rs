//! Dry runs (`dry_run: true`): fetch → the core's dry run → the answer, for a caller
//! [`Service::admit`] let through, so a dry run needs a valid key and counts against its
//! requests per second. No quota is reserved and nothing is encoded, hosted, exported or
//! metered; the work gate still admits it, since it decodes.

use bytes::Bytes;
use pixpress_core::warning::{self, Warning};
use pixpress_core::DryRun;

use crate::service::admission::charge_mib;
use crate::service::answer::{Answer, DryRunAnswer, DryRunOutput};
use crate::service::error::ServiceError;
use crate::service::job::Job;
use crate::service::state::Service;

impl Service {
    /// What `job` would make of `input`, in the shape of the answer it would get.
    pub(crate) async fn dry_run(&self, input: Bytes, job: Job) -> Result<Answer, ServiceError> {
        let original_size = input.len() as u64;
        let limits = self.input_limits;
        let probe = pixpress_core::inspect(&input, &limits)?;
        let request = job.request.clone();
        // A dry run decodes as the real request would, but never scores or encodes.
        let cost = charge_mib(pixpress_core::predicted_decode_memory(&probe));
        let specs = job.resize.as_ref().map(|resize| resize.specs());
        let planned = self
            .run_image_work(cost, move || {
                pixpress_core::dry_run(&input, &probe, &request, specs.as_deref(), &limits)
            })
            .await??;
        let mut warnings = job.warnings;
        if !job.stores.is_empty() {
            warnings.push(Warning::new(
                warning::IGNORED_FIELD,
                "a dry run exports nothing: the *_store options were not used",
            ));
        }
        Ok(Answer::DryRun(answer(
            original_size,
            planned,
            job.resize,
            warnings,
        )))
    }
}

/// The core's dry run in the answer's shape: one output, or `results` for a resize array.
fn answer(
    original_size: u64,
    planned: DryRun,
    resize: Option<crate::service::job::ResizeRequest>,
    mut warnings: Vec<Warning>,
) -> DryRunAnswer {
    let mut answer = DryRunAnswer {
        dry_run: true,
        original_size,
        original_width: planned.source_width,
        original_height: planned.source_height,
        original_format: planned.source_format.name(),
        original_frames: planned.frames,
        output: None,
        results: None,
        warnings: None,
    };
    let mut outputs = planned.outputs.into_iter();
    match resize {
        Some(resize) if resize.is_array => {
            let results = outputs
                .zip(resize.entries)
                .map(|(output, entry)| DryRunOutput::new(output, entry.id, entry.warnings))
                .collect();
            answer.results = Some(results);
            answer.warnings = Some(warnings);
        }
        resize => {
            warnings.extend(
                resize
                    .into_iter()
                    .flat_map(|r| r.entries)
                    .flat_map(|e| e.warnings),
            );
            answer.output = outputs
                .next()
                .map(|output| DryRunOutput::new(output, None, warnings));
        }
    }
    answer
}
