//! Lossless JPEG re-coding, as `jpegtran -optimize -progressive -copy none` does it: the DCT
//! coefficients are read and written back with optimised Huffman tables and a progressive scan
//! script, so no pixel can change. Metadata is dropped except the ICC profile (dropping it would
//! change colours), what the caller keeps (EXIF, XMP) and, when the image is not upright and
//! EXIF is not kept, a minimal EXIF block carrying only the orientation (dropping it would turn
//! the picture on its side).
//!
//! libjpeg reports fatal errors through `error_exit`; ours unwinds (mozjpeg-sys is built with
//! "C-unwind" ABI for that), the unwind is caught here and becomes `CoreError::Corrupt`, and the
//! drop guards release libjpeg's memory on the way out.

use std::mem;
use std::os::raw::{c_int, c_uint, c_ulong};
use std::ptr;

use mozjpeg_sys::{
    boolean, jpeg_common_struct, jpeg_compress_struct, jpeg_copy_critical_parameters,
    jpeg_create_compress, jpeg_create_decompress, jpeg_decompress_struct, jpeg_destroy_compress,
    jpeg_destroy_decompress, jpeg_error_mgr, jpeg_finish_compress, jpeg_finish_decompress,
    jpeg_mem_dest, jpeg_mem_src, jpeg_read_coefficients, jpeg_read_header, jpeg_save_markers,
    jpeg_simple_progression, jpeg_std_error, jpeg_write_coefficients, jpeg_write_marker,
};

use super::exif::{exif_subset, orientation_only_exif, KeepExif};
use super::panic_text;
use crate::error::CoreError;

const APP1: c_int = 0xE1;
const APP2: c_int = 0xE2;
const ICC_SIGNATURE: &[u8] = b"ICC_PROFILE\0";
const EXIF_SIGNATURE: &[u8] = b"Exif\0\0";
const XMP_SIGNATURE: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

/// What a re-code keeps of the input's metadata besides the ICC profile (which it always keeps).
#[derive(Clone, Copy, Debug)]
pub struct Keep {
    pub exif: KeepExif,
    pub xmp: bool,
}

/// Re-codes `input` losslessly. `orientation` is the EXIF orientation value (1 = upright).
pub fn transcode(input: &[u8], orientation: u8, keep: Keep) -> Result<Vec<u8>, CoreError> {
    if input.len() > c_ulong::MAX as usize {
        return Err(CoreError::Corrupt("input too large for libjpeg".into()));
    }
    // SAFETY: every libjpeg object is created, used and destroyed inside this call; fatal
    // errors unwind out of the C code and are caught right here.
    std::panic::catch_unwind(|| unsafe { transcode_unwinding(input, orientation, keep) })
        .map_err(|panic| CoreError::Corrupt(panic_text(panic)))
}

unsafe fn transcode_unwinding(input: &[u8], orientation: u8, keep: Keep) -> Vec<u8> {
    let mut derr = new_error_mgr();
    let mut dinfo: Box<jpeg_decompress_struct> = Box::new(mem::zeroed());
    dinfo.common.err = &mut *derr;
    jpeg_create_decompress(&mut *dinfo);
    let dguard = DecompressGuard(&mut *dinfo);
    let d = &mut *dguard.0;

    jpeg_mem_src(d, input.as_ptr(), input.len() as c_ulong);
    jpeg_save_markers(d, APP1, 0xFFFF);
    jpeg_save_markers(d, APP2, 0xFFFF);
    jpeg_read_header(d, 1 as boolean);
    let coefficients = jpeg_read_coefficients(d);

    let mut cerr = new_error_mgr();
    let mut cinfo: Box<jpeg_compress_struct> = Box::new(mem::zeroed());
    cinfo.common.err = &mut *cerr;
    jpeg_create_compress(&mut *cinfo);
    let mut cguard = CompressGuard {
        cinfo: &mut *cinfo,
        buffer: ptr::null_mut(),
        size: 0,
    };
    let c = &mut *cguard.cinfo;
    jpeg_mem_dest(c, &mut cguard.buffer, &mut cguard.size);
    jpeg_copy_critical_parameters(d, c);
    c.optimize_coding = 1 as boolean;
    jpeg_simple_progression(c);
    jpeg_write_coefficients(c, coefficients);

    // `copyright` / `geotag` alone: a rewritten EXIF block with just those tags (and the
    // orientation), in place of the original.
    let exif = find_marker(d, APP1, EXIF_SIGNATURE);
    let subset = match keep.exif {
        KeepExif::Subset(tags) => {
            exif.and_then(|data| exif_subset(&data[EXIF_SIGNATURE.len()..], tags))
        }
        KeepExif::Nothing | KeepExif::Whole => None,
    };
    let exif_kept = (keep.exif == KeepExif::Whole && exif.is_some()) || subset.is_some();
    if orientation != 1 && !exif_kept {
        let exif = orientation_only_exif(orientation);
        jpeg_write_marker(c, APP1, exif.as_ptr(), exif.len() as c_uint);
    }
    if let Some(tiff) = subset {
        let exif = [EXIF_SIGNATURE, &tiff].concat();
        jpeg_write_marker(c, APP1, exif.as_ptr(), exif.len() as c_uint);
    }
    copy_markers(d, c, keep);

    jpeg_finish_compress(c);
    jpeg_finish_decompress(d);
    let out = std::slice::from_raw_parts(cguard.buffer, cguard.size as usize).to_vec();
    drop(cguard);
    drop(dguard);
    drop(cinfo);
    drop(dinfo);
    drop(cerr);
    drop(derr);
    out
}

/// Copies the ICC profile always, EXIF and XMP when kept, in their original order.
unsafe fn copy_markers(d: &jpeg_decompress_struct, c: &mut jpeg_compress_struct, keep: Keep) {
    let mut marker = d.marker_list;
    while let Some(m) = marker.as_ref() {
        let data = std::slice::from_raw_parts(m.data, m.data_length as usize);
        let id = c_int::from(m.marker);
        let wanted = (id == APP2 && data.starts_with(ICC_SIGNATURE))
            || (id == APP1 && keep.exif == KeepExif::Whole && data.starts_with(EXIF_SIGNATURE))
            || (id == APP1 && keep.xmp && data.starts_with(XMP_SIGNATURE));
        if wanted {
            jpeg_write_marker(c, id, m.data, m.data_length);
        }
        marker = m.next;
    }
}

/// The data of the first saved marker `id` whose payload starts with `signature`.
unsafe fn find_marker<'a>(
    d: &'a jpeg_decompress_struct,
    id: c_int,
    signature: &[u8],
) -> Option<&'a [u8]> {
    let mut marker = d.marker_list;
    while let Some(m) = marker.as_ref() {
        let data = std::slice::from_raw_parts(m.data, m.data_length as usize);
        if c_int::from(m.marker) == id && data.starts_with(signature) {
            return Some(data);
        }
        marker = m.next;
    }
    None
}

unsafe fn new_error_mgr() -> Box<jpeg_error_mgr> {
    let mut err: Box<jpeg_error_mgr> = Box::new(mem::zeroed());
    jpeg_std_error(&mut err);
    err.error_exit = Some(unwind_on_error);
    err.emit_message = Some(ignore_warning);
    err
}

extern "C-unwind" fn ignore_warning(_cinfo: &mut jpeg_common_struct, _level: c_int) {}

extern "C-unwind" fn unwind_on_error(cinfo: &mut jpeg_common_struct) {
    let message = unsafe { libjpeg_message(cinfo) };
    std::panic::resume_unwind(Box::new(message));
}

unsafe fn libjpeg_message(cinfo: &mut jpeg_common_struct) -> String {
    let Some(err) = cinfo.err.as_ref() else {
        return "libjpeg error".to_string();
    };
    let code = err.msg_code;
    let Some(format_message) = err.format_message else {
        return format!("libjpeg error {code}");
    };
    let mut buffer = [0u8; 80];
    // The binding types the buffer as shared, but libjpeg writes into it: call it as mutable.
    let format_message: unsafe extern "C-unwind" fn(&mut jpeg_common_struct, &mut [u8; 80]) =
        mem::transmute(format_message);
    format_message(cinfo, &mut buffer);
    let text = buffer.split(|&b| b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(text).into_owned()
}

struct DecompressGuard(*mut jpeg_decompress_struct);

impl Drop for DecompressGuard {
    fn drop(&mut self) {
        // SAFETY: the struct was created by jpeg_create_decompress and outlives this guard.
        unsafe { jpeg_destroy_decompress(&mut *self.0) }
    }
}

struct CompressGuard {
    cinfo: *mut jpeg_compress_struct,
    buffer: *mut u8,
    size: c_ulong,
}

impl Drop for CompressGuard {
    fn drop(&mut self) {
        // SAFETY: created by jpeg_create_compress; the buffer was malloc'd by jpeg_mem_dest.
        unsafe {
            jpeg_destroy_compress(&mut *self.cinfo);
            if !self.buffer.is_null() {
                libc::free(self.buffer.cast());
            }
        }
    }
}
