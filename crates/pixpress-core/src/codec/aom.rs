//! AV1 still pictures through libaom's encoder (the library whose decoder already reads AVIF
//! here): planes in, one AV1 key frame (OBUs) out, for the AVIF container [`super::avif`]
//! writes. Owns every unsafe call into the encoder; knows nothing of files or quality search.
//!
//! Settings, measured on the corpus photos against sharp's AVIF (libaom through libheif) at
//! sharp's own score: the all-intra usage (libaom's mode for stills), 10-bit 4:4:4 planes
//! (rounding 8-bit YCbCr costs more than the two extra bits), quantisation matrices and the
//! perceptual (SSIM) tuning. The figures are in the issue 18 closing note.

use std::ffi::CStr;
use std::os::raw::c_int;

use libaom_sys as aom;

use crate::error::CoreError;

/// libaom's speed (`cpu-used`, 0 slowest … 9 fastest in all-intra).
pub const SPEED: c_int = 6;

/// The planes of one picture at 10 bits per sample (values 0..=1023), row-major, no padding.
/// `Color` is full-range BT.601 YCbCr at full chroma resolution; `Mono` is one plane (alpha).
pub enum Planes<'a> {
    Color {
        y: &'a [u16],
        u: &'a [u16],
        v: &'a [u16],
    },
    Mono(&'a [u16]),
}

/// Encodes one picture of `width` × `height` at libaom's constant-quality level `cq_level`
/// (0 best … 63 worst) on up to `threads` threads. Returns the AV1 OBU stream.
pub fn encode(
    planes: &Planes<'_>,
    width: u32,
    height: u32,
    cq_level: u8,
    threads: u32,
) -> Result<Vec<u8>, CoreError> {
    let mono = matches!(planes, Planes::Mono(_));
    let mut encoder = Encoder::new(width, height, cq_level, threads, mono)?;
    let mut image = Image::alloc(width, height)?;
    image.fill(planes, width as usize, height as usize)?;
    encoder.encode(&image)
}

/// An initialised encoder context; destroyed on drop.
struct Encoder {
    ctx: aom::aom_codec_ctx_t,
}

impl Encoder {
    fn new(
        width: u32,
        height: u32,
        cq_level: u8,
        threads: u32,
        mono: bool,
    ) -> Result<Self, CoreError> {
        // SAFETY: the configuration is a plain C struct that `aom_codec_enc_config_default`
        // fills completely before anything reads it.
        let mut cfg: aom::aom_codec_enc_cfg_t = unsafe { std::mem::zeroed() };
        let iface = unsafe { aom::aom_codec_av1_cx() };
        check(
            unsafe { aom::aom_codec_enc_config_default(iface, &mut cfg, aom::AOM_USAGE_ALL_INTRA) },
            "default configuration",
        )?;
        cfg.g_w = width;
        cfg.g_h = height;
        cfg.g_threads = threads.max(1);
        // Profile 1 carries 4:4:4; monochrome needs profile 0.
        cfg.g_profile = if mono { 0 } else { 1 };
        cfg.monochrome = u32::from(mono);
        cfg.g_bit_depth = aom::AOM_BITS_10;
        cfg.g_input_bit_depth = 10;
        cfg.g_limit = 1;
        cfg.g_lag_in_frames = 0;
        cfg.kf_mode = aom::AOM_KF_DISABLED;
        cfg.kf_max_dist = 0;
        cfg.rc_end_usage = aom::AOM_Q;
        cfg.rc_min_quantizer = 0;
        cfg.rc_max_quantizer = 63;
        // SAFETY: `ctx` is zeroed storage the init call fills; on failure it holds nothing to free.
        let mut ctx: aom::aom_codec_ctx_t = unsafe { std::mem::zeroed() };
        check(
            unsafe {
                aom::aom_codec_enc_init_ver(
                    &mut ctx,
                    iface,
                    &cfg,
                    aom::AOM_CODEC_USE_HIGHBITDEPTH as aom::aom_codec_flags_t,
                    aom::AOM_ENCODER_ABI_VERSION as c_int,
                )
            },
            "initialisation",
        )?;
        let mut encoder = Encoder { ctx };
        encoder.configure(cq_level, width, height)?;
        if !mono {
            encoder.describe_colour()?;
        }
        Ok(encoder)
    }

    fn configure(&mut self, cq_level: u8, width: u32, height: u32) -> Result<(), CoreError> {
        self.control(aom::AOME_SET_CPUUSED, SPEED)?;
        self.control(aom::AOME_SET_CQ_LEVEL, c_int::from(cq_level.min(63)))?;
        self.control(aom::AOME_SET_TUNING, aom::AOM_TUNE_SSIM as c_int)?;
        self.control(aom::AV1E_SET_ENABLE_QM, 1)?;
        self.control(aom::AV1E_SET_ENABLE_CHROMA_DELTAQ, 1)?;
        self.control(aom::AV1E_SET_ROW_MT, 1)?;
        // Tiles let both threads work on a small picture too; one column per 1024 px of width
        // (as log2), capped at what two threads use.
        self.control(aom::AV1E_SET_TILE_COLUMNS, c_int::from(width >= 1024))?;
        self.control(aom::AV1E_SET_TILE_ROWS, c_int::from(height >= 2048))?;
        self.control(aom::AV1E_SET_COLOR_RANGE, aom::AOM_CR_FULL_RANGE as c_int)
    }

    /// sRGB primaries and transfer, BT.601 matrix: what [`super::avif`] converts with. Alpha
    /// pictures stay unspecified: decoders read an alpha plane's samples as they are, and a
    /// matrix on a monochrome plane makes some (avif-decode) mix in chroma that is not there.
    fn describe_colour(&mut self) -> Result<(), CoreError> {
        self.control(
            aom::AV1E_SET_COLOR_PRIMARIES,
            aom::AOM_CICP_CP_BT_709 as c_int,
        )?;
        self.control(
            aom::AV1E_SET_TRANSFER_CHARACTERISTICS,
            aom::AOM_CICP_TC_SRGB as c_int,
        )?;
        self.control(
            aom::AV1E_SET_MATRIX_COEFFICIENTS,
            aom::AOM_CICP_MC_BT_601 as c_int,
        )
    }

    fn control(&mut self, id: aom::aome_enc_control_id, value: c_int) -> Result<(), CoreError> {
        // SAFETY: every control used here takes one int argument.
        let status = unsafe { aom::aom_codec_control(&mut self.ctx, id as c_int, value) };
        check(status, "control")
    }

    /// Sends the picture, flushes, and gathers the frame packets.
    fn encode(&mut self, image: &Image) -> Result<Vec<u8>, CoreError> {
        let mut out = Vec::new();
        // SAFETY: `image` is a valid allocated picture of the configured size; packet buffers
        // are copied out before the next call into the encoder.
        unsafe {
            let status = aom::aom_codec_encode(&mut self.ctx, image.raw, 0, 1, 0);
            self.check_ctx(status)?;
            self.drain(&mut out);
            let status = aom::aom_codec_encode(&mut self.ctx, std::ptr::null(), 0, 0, 0);
            self.check_ctx(status)?;
            self.drain(&mut out);
        }
        if out.is_empty() {
            return Err(CoreError::Encode("AVIF: libaom produced no frame".into()));
        }
        Ok(out)
    }

    /// # Safety
    /// Must not overlap another call into the same context.
    unsafe fn drain(&mut self, out: &mut Vec<u8>) {
        let mut iter = std::ptr::null();
        loop {
            let packet = aom::aom_codec_get_cx_data(&mut self.ctx, &mut iter);
            if packet.is_null() {
                break;
            }
            if (*packet).kind == aom::AOM_CODEC_CX_FRAME_PKT {
                let frame = (*packet).data.frame;
                out.extend_from_slice(std::slice::from_raw_parts(frame.buf as *const u8, frame.sz));
            }
        }
    }

    fn check_ctx(&self, status: aom::aom_codec_err_t) -> Result<(), CoreError> {
        if status == aom::AOM_CODEC_OK {
            return Ok(());
        }
        // SAFETY: libaom returns a static or context-owned NUL-terminated string.
        let detail = unsafe {
            let text = aom::aom_codec_error(&self.ctx);
            if text.is_null() {
                String::new()
            } else {
                CStr::from_ptr(text).to_string_lossy().into_owned()
            }
        };
        Err(CoreError::Encode(format!("AVIF: libaom: {detail}")))
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `new` and is destroyed once.
        unsafe {
            aom::aom_codec_destroy(&mut self.ctx);
        }
    }
}

/// A libaom-allocated 16-bit 4:4:4 picture; freed on drop.
struct Image {
    raw: *mut aom::aom_image_t,
}

impl Image {
    fn alloc(width: u32, height: u32) -> Result<Self, CoreError> {
        // SAFETY: a null first argument asks libaom to allocate the descriptor as well.
        let raw = unsafe {
            aom::aom_img_alloc(
                std::ptr::null_mut(),
                aom::AOM_IMG_FMT_I44416,
                width,
                height,
                16,
            )
        };
        if raw.is_null() {
            return Err(CoreError::Encode("AVIF: no memory for the picture".into()));
        }
        // SAFETY: `raw` was just allocated and is exclusively ours.
        unsafe {
            (*raw).bit_depth = 10;
            (*raw).range = aom::AOM_CR_FULL_RANGE;
        }
        Ok(Image { raw })
    }

    /// Copies the planes in. A monochrome picture's chroma planes are set to neutral grey, so
    /// the allocated picture holds no uninitialised samples whatever the encoder reads.
    fn fill(&mut self, planes: &Planes<'_>, width: usize, height: usize) -> Result<(), CoreError> {
        let neutral = vec![512u16; width];
        let sources: [&[u16]; 3] = match planes {
            Planes::Color { y, u, v } => [y, u, v],
            Planes::Mono(y) => [y, &[], &[]],
        };
        if sources[0].len() != width * height {
            return Err(CoreError::Encode(
                "AVIF: plane size does not match the picture".into(),
            ));
        }
        for (index, source) in sources.iter().enumerate() {
            // SAFETY: libaom allocated each plane with `stride` bytes per row for `height` rows
            // of at least `width` 16-bit samples; rows are written within those bounds.
            unsafe {
                let base = (*self.raw).planes[index];
                let stride = (*self.raw).stride[index] as usize;
                for row in 0..height {
                    let line = if source.is_empty() {
                        &neutral[..]
                    } else {
                        source
                            .get(row * width..(row + 1) * width)
                            .ok_or_else(|| CoreError::Encode("AVIF: short chroma plane".into()))?
                    };
                    let target = base.add(row * stride) as *mut u16;
                    std::ptr::copy_nonoverlapping(line.as_ptr(), target, width);
                }
            }
        }
        Ok(())
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        // SAFETY: allocated by `aom_img_alloc` and freed once.
        unsafe { aom::aom_img_free(self.raw) }
    }
}

fn check(status: aom::aom_codec_err_t, step: &str) -> Result<(), CoreError> {
    if status == aom::AOM_CODEC_OK {
        return Ok(());
    }
    // SAFETY: returns a static NUL-terminated string for any status.
    let text = unsafe { CStr::from_ptr(aom::aom_codec_err_to_string(status)) };
    Err(CoreError::Encode(format!(
        "AVIF: libaom {step}: {}",
        text.to_string_lossy()
    )))
}
