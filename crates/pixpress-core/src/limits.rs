//! Limits on what the pipeline will take on. Checked from headers before any pixel buffer is
//! allocated, with saturating arithmetic so hostile dimensions cannot overflow the check itself.

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Width × height × frames, counted from the header (SPEC §9). Default 100 MP.
    pub max_pixels: u64,
    /// Largest single allocation a decoder may make, in bytes.
    pub max_alloc_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: 100_000_000,
            max_alloc_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// Checks width × height × frames against `max_pixels`.
    pub fn check_pixels(
        &self,
        width: u64,
        height: u64,
        frames: u64,
    ) -> Result<(), crate::error::CoreError> {
        let pixels = width.saturating_mul(height).saturating_mul(frames.max(1));
        if pixels > self.max_pixels {
            return Err(crate::error::CoreError::TooManyPixels {
                width,
                height,
                frames,
                pixels,
                limit: self.max_pixels,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_dimensions_do_not_overflow_and_are_refused() {
        let l = Limits::default();
        assert!(l.check_pixels(u64::MAX, u64::MAX, u64::MAX).is_err());
        assert!(l.check_pixels(10_000, 10_000, 1).is_ok());
        assert!(l.check_pixels(10_000, 10_001, 1).is_err());
        assert!(l.check_pixels(1000, 1000, 101).is_err());
    }
}
