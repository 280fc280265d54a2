//! Lossless JPEG re-coding, as `jpegtran -optimize -progressive -copy none` does it: the DCT
//! coefficients are read and written back with optimised Huffman tables and a progressive scan
//! script, so no pixel can change. An EXIF orientation other than 1 is applied in the DCT domain
//! the way `jpegtran -trim` does it (blocks moved, coefficients transposed and their odd
//! frequencies negated), and the partial edge blocks that cannot be moved are dropped. Every
//! output is read back and its coefficients compared with the expected ones before it is
//! returned ([`CoreError::LosslessCheckFailed`] otherwise). Metadata is dropped except the ICC
//! profile (dropping it would change colours) and what the caller keeps (EXIF, with its
//! orientation reset to 1, and XMP).
//!
//! libjpeg reports fatal errors through `error_exit`; ours unwinds (mozjpeg-sys is built with
//! "C-unwind" ABI for that), the unwind is caught here and becomes `CoreError::Corrupt`, and the
//! drop guards release libjpeg's memory on the way out.

use std::mem;
use std::os::raw::{c_int, c_uint, c_ulong};
use std::panic::AssertUnwindSafe;
use std::ptr;

use mozjpeg_sys::{
    boolean, jpeg_common_struct, jpeg_compress_struct, jpeg_copy_critical_parameters,
    jpeg_create_compress, jpeg_create_decompress, jpeg_decompress_struct, jpeg_destroy_compress,
    jpeg_destroy_decompress, jpeg_error_mgr, jpeg_finish_compress, jpeg_finish_decompress,
    jpeg_mem_dest, jpeg_mem_src, jpeg_read_coefficients, jpeg_read_header, jpeg_save_markers,
    jpeg_simple_progression, jpeg_std_error, jpeg_write_coefficients, jpeg_write_marker,
    jvirt_barray_control, JBLOCK, JDIMENSION, JPOOL_IMAGE,
};

use super::exif::{exif_subset, orientation_only_exif, reset_orientation, KeepExif};
use super::panic_text;
use crate::error::CoreError;

const APP1: c_int = 0xE1;
const APP2: c_int = 0xE2;
const ICC_SIGNATURE: &[u8] = b"ICC_PROFILE\0";
const EXIF_SIGNATURE: &[u8] = b"Exif\0\0";
const XMP_SIGNATURE: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
/// Pixels along one side of a DCT block.
const BLOCK: u32 = 8;

type CoefArrays = *mut *mut jvirt_barray_control;

/// What a re-code keeps of the input's metadata besides the ICC profile (which it always keeps).
#[derive(Clone, Copy, Debug)]
pub struct Keep {
    pub exif: KeepExif,
    pub xmp: bool,
}

/// A lossless re-code and what happened to the EXIF orientation on the way.
#[derive(Clone, Debug)]
pub struct Transcoded {
    pub bytes: Vec<u8>,
    pub rotation: Rotation,
}

/// How the EXIF orientation was honoured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The input was upright (orientation 1).
    Upright,
    /// The coefficients were turned upright and the tag reset. `trimmed_columns` and
    /// `trimmed_rows` count the stored image's right-hand columns and bottom rows dropped
    /// because their partial iMCU would have moved to the top or left; `width` × `height` is
    /// the output (upright) size.
    Applied {
        trimmed_columns: u32,
        trimmed_rows: u32,
        imcu_width: u32,
        imcu_height: u32,
        width: u32,
        height: u32,
    },
    /// The image is smaller than one iMCU along an axis the orientation reverses: nothing whole
    /// would be left to move, so the pixels stay as stored and the tag says how to show them.
    KeptAsTag,
}

/// Re-codes `input` losslessly. `orientation` is the EXIF orientation value (1 = upright).
pub fn transcode(input: &[u8], orientation: u8, keep: Keep) -> Result<Transcoded, CoreError> {
    // SAFETY: every libjpeg object is created, used and destroyed inside this call.
    with_libjpeg(input, || unsafe {
        transcode_unwinding(input, orientation, keep)
    })
}

/// What [`transcode`] will do about `orientation`, and the output size it will give, from the
/// header alone: no coefficient is read (a dry run reports it without re-coding).
pub fn planned_rotation(input: &[u8], orientation: u8) -> Result<Rotation, CoreError> {
    // SAFETY: the decompressor lives and dies inside this call.
    with_libjpeg(input, || unsafe {
        planned_rotation_unwinding(input, orientation)
    })
}

/// Runs libjpeg work on `input`: refused when libjpeg cannot address it, and a fatal error,
/// which unwinds out of the C code, caught here as this input's failure.
fn with_libjpeg<T>(
    input: &[u8],
    work: impl FnOnce() -> Result<T, CoreError> + std::panic::UnwindSafe,
) -> Result<T, CoreError> {
    if input.len() > c_ulong::MAX as usize {
        return Err(CoreError::Corrupt("input too large for libjpeg".into()));
    }
    std::panic::catch_unwind(work).map_err(|panic| CoreError::Corrupt(panic_text(panic)))?
}

unsafe fn planned_rotation_unwinding(input: &[u8], orientation: u8) -> Result<Rotation, CoreError> {
    let reader = Reader::open(input, new_error_mgr(), false);
    plan(&reader.info, orientation).map(|planned| planned.rotation)
}

/// An EXIF orientation as DCT-domain steps: an optional transpose, then optional mirrors of the
/// transposed image (jpegtran's ROT_90 is transpose + mirror_x, and so on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Transform {
    transpose: bool,
    mirror_x: bool,
    mirror_y: bool,
}

impl Transform {
    /// The steps that turn an image stored with EXIF `orientation` upright (unknown values are
    /// taken as upright, as the probe does).
    fn for_orientation(orientation: u8) -> Transform {
        let (transpose, mirror_x, mirror_y) = match orientation {
            2 => (false, true, false),
            3 => (false, true, true),
            4 => (false, false, true),
            5 => (true, false, false),
            6 => (true, true, false),
            7 => (true, true, true),
            8 => (true, false, true),
            _ => (false, false, false),
        };
        Transform {
            transpose,
            mirror_x,
            mirror_y,
        }
    }

    fn is_identity(self) -> bool {
        !(self.transpose || self.mirror_x || self.mirror_y)
    }

    /// Whether the stored image's columns (x) and rows (y) come out in reverse order: those
    /// are the axes whose trailing partial iMCU would land at the top or left.
    fn reverses_stored_axes(self) -> (bool, bool) {
        if self.transpose {
            (self.mirror_y, self.mirror_x)
        } else {
            (self.mirror_x, self.mirror_y)
        }
    }

    /// The stored block that output block (`x`, `y`) of a `width` × `height`-block output
    /// comes from. Mirrored axes hold whole iMCUs only, so the mirror is exact.
    fn source_block(self, x: u32, y: u32, width: u32, height: u32) -> (u32, u32) {
        let x = if self.mirror_x { width - 1 - x } else { x };
        let y = if self.mirror_y { height - 1 - y } else { y };
        if self.transpose {
            (y, x)
        } else {
            (x, y)
        }
    }

    /// One block's coefficients (natural order: index = vertical frequency × 8 + horizontal)
    /// turned: a transpose swaps the two frequencies; a mirror negates the coefficients of odd
    /// frequency along its axis (their basis functions are odd about the block's centre).
    fn block(self, src: &JBLOCK) -> JBLOCK {
        let mut out = [0; 64];
        for v in 0..8 {
            for u in 0..8 {
                let value = if self.transpose {
                    src[u * 8 + v]
                } else {
                    src[v * 8 + u]
                };
                let negate = (self.mirror_x && u % 2 == 1) != (self.mirror_y && v % 2 == 1);
                out[v * 8 + u] = if negate { value.wrapping_neg() } else { value };
            }
        }
        out
    }

    /// A quantisation table (natural order) for the turned blocks: transposed with them.
    fn quant_table(self, table: &[u16; 64]) -> [u16; 64] {
        if !self.transpose {
            return *table;
        }
        std::array::from_fn(|i| table[(i % 8) * 8 + i / 8])
    }
}

/// Where the stored image's pixels go: the part kept and the output size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    transform: Transform,
    /// Stored width and height kept (whole iMCUs only on a reversed axis).
    kept_width: u32,
    kept_height: u32,
    trimmed_columns: u32,
    trimmed_rows: u32,
    imcu_width: u32,
    imcu_height: u32,
}

impl Geometry {
    /// `None` when a reversed axis is shorter than one iMCU (nothing whole to move).
    fn new(transform: Transform, width: u32, height: u32, imcu: (u32, u32)) -> Option<Geometry> {
        let (reverse_x, reverse_y) = transform.reverses_stored_axes();
        let whole = |size: u32, step: u32, reversed: bool| {
            if reversed {
                size / step * step
            } else {
                size
            }
        };
        let kept_width = whole(width, imcu.0, reverse_x);
        let kept_height = whole(height, imcu.1, reverse_y);
        (kept_width > 0 && kept_height > 0).then_some(Geometry {
            transform,
            kept_width,
            kept_height,
            trimmed_columns: width - kept_width,
            trimmed_rows: height - kept_height,
            imcu_width: imcu.0,
            imcu_height: imcu.1,
        })
    }

    /// Output width and height.
    fn output_size(&self) -> (u32, u32) {
        if self.transform.transpose {
            (self.kept_height, self.kept_width)
        } else {
            (self.kept_width, self.kept_height)
        }
    }

    fn rotation(&self) -> Rotation {
        let (width, height) = self.output_size();
        Rotation::Applied {
            trimmed_columns: self.trimmed_columns,
            trimmed_rows: self.trimmed_rows,
            imcu_width: self.imcu_width,
            imcu_height: self.imcu_height,
            width,
            height,
        }
    }
}

/// One component of the output as the encoder must see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    h_samp: c_int,
    v_samp: c_int,
    width_in_blocks: u32,
    height_in_blocks: u32,
}

/// The output components for `geometry`, from the source's sampling factors: a transpose swaps
/// them; a single component is written 1×1, as jpegtran does (its iMCU is one block).
fn output_layouts(samp: &[(c_int, c_int)], geometry: &Geometry) -> Vec<Layout> {
    let max_h = samp.iter().map(|s| s.0).max().unwrap_or(1);
    let max_v = samp.iter().map(|s| s.1).max().unwrap_or(1);
    let (width, height) = geometry.output_size();
    samp.iter()
        .map(|&(h, v)| {
            let (h, v, max_h, max_v) = if samp.len() == 1 {
                (1, 1, 1, 1)
            } else if geometry.transform.transpose {
                (v, h, max_v, max_h)
            } else {
                (h, v, max_h, max_v)
            };
            Layout {
                h_samp: h,
                v_samp: v,
                width_in_blocks: blocks(width, h, max_h),
                height_in_blocks: blocks(height, v, max_v),
            }
        })
        .collect()
}

/// libjpeg's block count for `size` pixels at sampling `samp` of `max`: rounded up.
fn blocks(size: u32, samp: c_int, max: c_int) -> u32 {
    let samp = samp.max(1) as u64;
    let max = max.max(1) as u64;
    (u64::from(size) * samp).div_ceil(max * u64::from(BLOCK)) as u32
}

/// The iMCU size of the stored image: a single component is coded in single blocks.
fn imcu_size(samp: &[(c_int, c_int)]) -> (u32, u32) {
    if samp.len() == 1 {
        return (BLOCK, BLOCK);
    }
    let max_h = samp.iter().map(|s| s.0).max().unwrap_or(1).max(1) as u32;
    let max_v = samp.iter().map(|s| s.1).max().unwrap_or(1).max(1) as u32;
    (max_h * BLOCK, max_v * BLOCK)
}

unsafe fn transcode_unwinding(
    input: &[u8],
    orientation: u8,
    keep: Keep,
) -> Result<Transcoded, CoreError> {
    let mut reader = Reader::open(input, new_error_mgr(), true);
    let d = &mut *reader.info;
    let coefficients = jpeg_read_coefficients(d);

    let Planned {
        rotation,
        geometry,
        layouts,
    } = plan(d, orientation)?;
    let turned = matches!(rotation, Rotation::Applied { .. });

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
    // Kept alive until the compressor is done: libjpeg keeps the pointer to this list.
    let mut turned_arrays = Vec::new();
    let arrays = if turned {
        set_output_parameters(c, &geometry, &layouts);
        turned_arrays = turn_coefficients(d, coefficients, c, &geometry, &layouts);
        turned_arrays.as_mut_ptr()
    } else {
        coefficients
    };
    jpeg_simple_progression(c);
    jpeg_write_coefficients(c, arrays);
    write_exif(d, c, orientation, rotation, keep);
    copy_markers(d, c, keep, rotation);

    jpeg_finish_compress(c);
    let out = std::slice::from_raw_parts(cguard.buffer, cguard.size as usize).to_vec();
    drop(cguard);
    drop(turned_arrays);
    drop(cinfo);
    drop(cerr);
    let checked = check_output(&out, d, coefficients, &geometry, &layouts);
    jpeg_finish_decompress(d);
    drop(reader);
    checked.map_err(CoreError::LosslessCheckFailed)?;
    Ok(Transcoded {
        bytes: out,
        rotation,
    })
}

/// What the output will be, decided from the source's header before anything is written.
struct Planned {
    rotation: Rotation,
    geometry: Geometry,
    layouts: Vec<Layout>,
}

/// Turns the image when the orientation asks for it and a whole iMCU is left to move;
/// otherwise the output has the source's geometry.
unsafe fn plan(d: &jpeg_decompress_struct, orientation: u8) -> Result<Planned, CoreError> {
    let samp = sampling(d);
    let transform = Transform::for_orientation(orientation);
    let (width, height) = (d.image_width, d.image_height);
    let turned = if transform.is_identity() {
        None
    } else {
        Geometry::new(transform, width, height, imcu_size(&samp))
    };
    if let Some(geometry) = turned {
        return Ok(Planned {
            rotation: geometry.rotation(),
            layouts: output_layouts(&samp, &geometry),
            geometry,
        });
    }
    let upright = Transform::for_orientation(1);
    let geometry = Geometry::new(upright, width, height, (BLOCK, BLOCK))
        .ok_or_else(|| CoreError::Corrupt("the image has no pixels".into()))?;
    Ok(Planned {
        rotation: if transform.is_identity() {
            Rotation::Upright
        } else {
            Rotation::KeptAsTag
        },
        geometry,
        layouts: source_layouts(d),
    })
}

/// Each component's (h, v) sampling factors.
unsafe fn sampling(d: &jpeg_decompress_struct) -> Vec<(c_int, c_int)> {
    components(d)
        .iter()
        .map(|comp| (comp.h_samp_factor, comp.v_samp_factor))
        .collect()
}

unsafe fn components(d: &jpeg_decompress_struct) -> &[mozjpeg_sys::jpeg_component_info] {
    std::slice::from_raw_parts(d.comp_info, d.num_components.max(0) as usize)
}

/// The output components when nothing moves: the source's own.
unsafe fn source_layouts(d: &jpeg_decompress_struct) -> Vec<Layout> {
    components(d)
        .iter()
        .map(|comp| Layout {
            h_samp: comp.h_samp_factor,
            v_samp: comp.v_samp_factor,
            width_in_blocks: comp.width_in_blocks,
            height_in_blocks: comp.height_in_blocks,
        })
        .collect()
}

/// The output's size, sampling factors and (when transposed) quantisation tables, set after
/// `jpeg_copy_critical_parameters` copied the source's.
unsafe fn set_output_parameters(
    c: &mut jpeg_compress_struct,
    geometry: &Geometry,
    layouts: &[Layout],
) {
    let (width, height) = geometry.output_size();
    c.image_width = width;
    c.image_height = height;
    let comps = std::slice::from_raw_parts_mut(c.comp_info, layouts.len());
    for (comp, layout) in comps.iter_mut().zip(layouts) {
        comp.h_samp_factor = layout.h_samp;
        comp.v_samp_factor = layout.v_samp;
    }
    for table in c.quant_tbl_ptrs.iter().filter_map(|t| t.as_mut()) {
        table.quantval = geometry.transform.quant_table(&table.quantval);
    }
}

/// Fresh coefficient arrays from the compressor's memory manager, filled with the source's
/// blocks moved and turned. Padding blocks past each component's edge stay zero: the encoder
/// makes its own dummy blocks there.
unsafe fn turn_coefficients(
    d: &mut jpeg_decompress_struct,
    source: CoefArrays,
    c: &mut jpeg_compress_struct,
    geometry: &Geometry,
    layouts: &[Layout],
) -> Vec<*mut jvirt_barray_control> {
    let mem = &*c.common.mem;
    let (request, realize) = match (mem.request_virt_barray, mem.realize_virt_arrays) {
        (Some(request), Some(realize)) => (request, realize),
        _ => std::panic::resume_unwind(Box::new("libjpeg memory manager incomplete".to_string())),
    };
    let arrays: Vec<_> = layouts
        .iter()
        .map(|layout| {
            let columns = layout
                .width_in_blocks
                .next_multiple_of(layout.h_samp as u32);
            let rows = layout
                .height_in_blocks
                .next_multiple_of(layout.v_samp as u32);
            request(
                &mut c.common,
                JPOOL_IMAGE,
                1 as boolean,
                columns,
                rows,
                layout.v_samp as JDIMENSION,
            )
        })
        .collect();
    realize(&mut c.common);
    let transform = geometry.transform;
    for (ci, layout) in layouts.iter().enumerate() {
        let (width, height) = (layout.width_in_blocks, layout.height_in_blocks);
        for y in 0..height {
            let row = block_row(&mut c.common, arrays[ci], y, true);
            for x in 0..width {
                let (sx, sy) = transform.source_block(x, y, width, height);
                let src = block_row(&mut d.common, *source.add(ci), sy, false);
                *row.add(x as usize) = transform.block(&*src.add(sx as usize));
            }
        }
    }
    arrays
}

/// Row `y` of a block array, through the memory manager that owns it.
unsafe fn block_row(
    common: &mut jpeg_common_struct,
    array: *mut jvirt_barray_control,
    y: u32,
    writable: bool,
) -> *mut JBLOCK {
    let Some(access) = (*common.mem).access_virt_barray else {
        std::panic::resume_unwind(Box::new("libjpeg memory manager incomplete".to_string()));
    };
    *access(common, array, y, 1, boolean::from(writable))
}

/// Reads `out` back and compares it with what it must hold: the size, each component's
/// sampling and block counts, quantisation tables, and every coefficient of every block
/// (the source's, moved and turned by `geometry`). A libjpeg error on the way is a failed
/// check too.
unsafe fn check_output(
    out: &[u8],
    d: &mut jpeg_decompress_struct,
    source: CoefArrays,
    geometry: &Geometry,
    layouts: &[Layout],
) -> Result<(), String> {
    let read = std::panic::catch_unwind(AssertUnwindSafe(|| {
        compare_output(out, d, source, geometry, layouts)
    }));
    read.unwrap_or_else(|panic| {
        Err(format!(
            "the output does not read back: {}",
            panic_text(panic)
        ))
    })
}

unsafe fn compare_output(
    out: &[u8],
    d: &mut jpeg_decompress_struct,
    source: CoefArrays,
    geometry: &Geometry,
    layouts: &[Layout],
) -> Result<(), String> {
    let mut err = new_error_mgr();
    // Corrupt data is only a warning to libjpeg (it pads with zeros); here it fails the check.
    err.emit_message = Some(unwind_on_warning);
    let mut reader = Reader::open(out, err, false);
    let o = &mut *reader.info;
    let written = jpeg_read_coefficients(o);

    let expected = geometry.output_size();
    if (o.image_width, o.image_height) != expected {
        return Err(format!(
            "the output is {}x{}, expected {}x{}",
            o.image_width, o.image_height, expected.0, expected.1
        ));
    }
    let found = source_layouts(o);
    if found != layouts {
        return Err(format!(
            "the output's components are {found:?}, expected {layouts:?}"
        ));
    }
    let transform = geometry.transform;
    let tables: Vec<Option<[u16; 64]>> = components(d)
        .iter()
        .map(|comp| {
            comp.quant_table
                .as_ref()
                .map(|t| transform.quant_table(&t.quantval))
        })
        .collect();
    for (ci, layout) in layouts.iter().enumerate() {
        let want = tables[ci];
        let got = components(o)[ci].quant_table.as_ref().map(|t| t.quantval);
        if want.is_none() || want != got {
            return Err(format!("component {ci}: the quantisation table differs"));
        }
        let (width, height) = (layout.width_in_blocks, layout.height_in_blocks);
        for y in 0..height {
            let row = block_row(&mut o.common, *written.add(ci), y, false);
            for x in 0..width {
                let (sx, sy) = transform.source_block(x, y, width, height);
                let src = block_row(&mut d.common, *source.add(ci), sy, false);
                if *row.add(x as usize) != transform.block(&*src.add(sx as usize)) {
                    return Err(format!(
                        "component {ci}, block ({x}, {y}): coefficients differ"
                    ));
                }
            }
        }
    }
    jpeg_finish_decompress(o);
    drop(reader);
    Ok(())
}

/// The EXIF block the output starts with, when it is not copied whole by [`copy_markers`]: the
/// kept subset (orientation reset when the pixels were turned), or, when the pixels could not
/// be turned and EXIF is not kept, a minimal block with only the orientation.
unsafe fn write_exif(
    d: &jpeg_decompress_struct,
    c: &mut jpeg_compress_struct,
    orientation: u8,
    rotation: Rotation,
    keep: Keep,
) {
    let exif = find_marker(d, APP1, EXIF_SIGNATURE);
    let subset = match keep.exif {
        KeepExif::Subset(tags) => {
            exif.and_then(|data| exif_subset(&data[EXIF_SIGNATURE.len()..], tags))
        }
        KeepExif::Nothing | KeepExif::Whole => None,
    };
    let exif_kept = (keep.exif == KeepExif::Whole && exif.is_some()) || subset.is_some();
    if rotation == Rotation::KeptAsTag && !exif_kept {
        let exif = orientation_only_exif(orientation);
        jpeg_write_marker(c, APP1, exif.as_ptr(), exif.len() as c_uint);
    }
    if let Some(mut tiff) = subset {
        if rotation != Rotation::KeptAsTag {
            reset_orientation(&mut tiff);
        }
        let exif = [EXIF_SIGNATURE, &tiff].concat();
        jpeg_write_marker(c, APP1, exif.as_ptr(), exif.len() as c_uint);
    }
}

/// Copies the ICC profile always, EXIF and XMP when kept, in their original order. A whole
/// EXIF block has its orientation reset to 1 when the pixels were turned upright.
unsafe fn copy_markers(
    d: &jpeg_decompress_struct,
    c: &mut jpeg_compress_struct,
    keep: Keep,
    rotation: Rotation,
) {
    let mut marker = d.marker_list;
    while let Some(m) = marker.as_ref() {
        let data = std::slice::from_raw_parts(m.data, m.data_length as usize);
        let id = c_int::from(m.marker);
        let exif = id == APP1 && data.starts_with(EXIF_SIGNATURE);
        let wanted = (id == APP2 && data.starts_with(ICC_SIGNATURE))
            || (exif && keep.exif == KeepExif::Whole)
            || (id == APP1 && keep.xmp && data.starts_with(XMP_SIGNATURE));
        if exif && wanted && matches!(rotation, Rotation::Applied { .. }) {
            let mut edited = data.to_vec();
            reset_orientation(&mut edited[EXIF_SIGNATURE.len()..]);
            jpeg_write_marker(c, id, edited.as_ptr(), m.data_length);
        } else if wanted {
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

extern "C-unwind" fn unwind_on_warning(cinfo: &mut jpeg_common_struct, level: c_int) {
    if level < 0 {
        unwind_on_error(cinfo);
    }
}

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

/// A libjpeg decompressor over a byte slice with its header read, destroyed when dropped. The
/// error manager lives beside it: libjpeg keeps a pointer to it (both are boxed, so moving the
/// reader moves neither).
struct Reader {
    info: Box<jpeg_decompress_struct>,
    _err: Box<jpeg_error_mgr>,
}

impl Reader {
    /// Reads the header of `input`, keeping the APP1 (EXIF, XMP) and APP2 (ICC) markers when
    /// `save_metadata`. SAFETY: `input` must outlive the reader; a fatal error unwinds out of
    /// this call (the caller catches it), destroying what was created.
    unsafe fn open(input: &[u8], mut err: Box<jpeg_error_mgr>, save_metadata: bool) -> Reader {
        let mut info: Box<jpeg_decompress_struct> = Box::new(mem::zeroed());
        info.common.err = &mut *err;
        jpeg_create_decompress(&mut *info);
        let mut reader = Reader { info, _err: err };
        let d = &mut *reader.info;
        jpeg_mem_src(d, input.as_ptr(), input.len() as c_ulong);
        if save_metadata {
            jpeg_save_markers(d, APP1, 0xFFFF);
            jpeg_save_markers(d, APP2, 0xFFFF);
        }
        jpeg_read_header(d, 1 as boolean);
        reader
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // SAFETY: created by jpeg_create_decompress in `open`, destroyed once, here.
        unsafe { jpeg_destroy_decompress(&mut self.info) }
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

#[cfg(test)]
mod tests {
    use super::*;
    use image::metadata::Orientation;
    use image::{DynamicImage, GenericImageView};

    const NOTHING: Keep = Keep {
        exif: KeepExif::Nothing,
        xmp: false,
    };

    fn corpus(name: &str) -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/");
        std::fs::read(format!("{path}{name}")).expect("corpus file")
    }

    /// The 8×8 samples a block of coefficients (natural order) stands for: the JPEG IDCT in
    /// floating point.
    fn idct(coefficients: &JBLOCK) -> [f32; 64] {
        let scale = |k: usize| if k == 0 { 0.5f64.sqrt() } else { 1.0 };
        let basis = |k: usize, n: usize| {
            (((2 * n + 1) * k) as f64 * std::f64::consts::PI / 16.0).cos() * scale(k)
        };
        std::array::from_fn(|i| {
            let (x, y) = (i % 8, i / 8);
            let mut sum = 0.0;
            for v in 0..8 {
                for u in 0..8 {
                    sum += f64::from(coefficients[v * 8 + u]) * basis(u, x) * basis(v, y);
                }
            }
            (sum / 4.0) as f32
        })
    }

    fn as_image(samples: &[f32; 64]) -> DynamicImage {
        let data = samples.iter().flat_map(|&s| [s, s, s]).collect();
        DynamicImage::ImageRgb32F(image::Rgb32FImage::from_raw(8, 8, data).unwrap())
    }

    #[test]
    fn turned_coefficients_are_the_turned_pixels_for_every_orientation() {
        let mut state = 12345u32;
        let block: JBLOCK = std::array::from_fn(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            ((state >> 16) % 101) as i16 - 50
        });
        for orientation in 1..=8u8 {
            let mut expected = as_image(&idct(&block));
            expected.apply_orientation(Orientation::from_exif(orientation).unwrap());
            let turned = Transform::for_orientation(orientation).block(&block);
            let got = as_image(&idct(&turned));
            let worst = got
                .to_rgb32f()
                .pixels()
                .zip(expected.to_rgb32f().pixels())
                .map(|(a, b)| (a.0[0] - b.0[0]).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-3, "orientation {orientation}: off by {worst}");
        }
        // A transpose moves the quantiser of (v, u) to (u, v), with its coefficient.
        let table: [u16; 64] = std::array::from_fn(|i| i as u16);
        let transposed = Transform::for_orientation(5).quant_table(&table);
        assert_eq!((transposed[1], transposed[8]), (8, 1));
        assert_eq!(Transform::for_orientation(3).quant_table(&table), table);
    }

    #[test]
    fn only_axes_read_backwards_lose_their_partial_imcu() {
        // 204x247 in 16x16 iMCUs: 12 columns and 7 rows past the last whole one.
        let expected = [
            (1, (204, 247), (0, 0)),
            (2, (192, 247), (12, 0)),
            (3, (192, 240), (12, 7)),
            (4, (204, 240), (0, 7)),
            (5, (247, 204), (0, 0)),
            (6, (240, 204), (0, 7)),
            (7, (240, 192), (12, 7)),
            (8, (247, 192), (12, 0)),
        ];
        for (orientation, size, trimmed) in expected {
            let transform = Transform::for_orientation(orientation);
            let geometry = Geometry::new(transform, 204, 247, (16, 16)).unwrap();
            assert_eq!(geometry.output_size(), size, "orientation {orientation}");
            let got = (geometry.trimmed_columns, geometry.trimmed_rows);
            assert_eq!(got, trimmed, "orientation {orientation}");
        }
        // 2x1: nothing whole to move along a reversed axis.
        assert_eq!(
            Geometry::new(Transform::for_orientation(8), 2, 1, (16, 16)),
            None
        );
        assert!(Geometry::new(Transform::for_orientation(5), 2, 1, (16, 16)).is_some());
    }

    #[test]
    fn a_transpose_swaps_the_sampling_factors() {
        // 4:2:2 (2x1 luma), 100x50: transposed it is 1x2 luma, 50x100.
        let samp = [(2, 1), (1, 1), (1, 1)];
        let geometry = Geometry::new(Transform::for_orientation(5), 100, 50, imcu_size(&samp));
        let layouts = output_layouts(&samp, &geometry.unwrap());
        let luma = (layouts[0].h_samp, layouts[0].v_samp);
        assert_eq!(luma, (1, 2));
        assert_eq!(
            (layouts[0].width_in_blocks, layouts[0].height_in_blocks),
            (7, 13)
        );
        assert_eq!(
            (layouts[1].width_in_blocks, layouts[1].height_in_blocks),
            (7, 7)
        );
        // One component is one block per iMCU, written 1x1.
        let grey = Geometry::new(Transform::for_orientation(6), 20, 12, imcu_size(&[(2, 2)]));
        let layouts = output_layouts(&[(2, 2)], &grey.unwrap());
        assert_eq!((layouts[0].h_samp, layouts[0].width_in_blocks), (1, 1));
        assert_eq!(layouts[0].height_in_blocks, 3);
    }

    /// Mean and largest difference of two same-sized images, over RGB samples.
    fn difference(a: &DynamicImage, b: &DynamicImage) -> (f64, u8) {
        assert_eq!(a.dimensions(), b.dimensions());
        let (a, b) = (a.to_rgb8(), b.to_rgb8());
        let diffs: Vec<u8> = a
            .iter()
            .zip(b.iter())
            .map(|(x, y)| x.abs_diff(*y))
            .collect();
        let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
        (mean, diffs.iter().copied().max().unwrap_or(0))
    }

    /// The stored pixels, less the trimmed right/bottom edge, turned by `orientation`.
    fn turned_decode(input: &[u8], orientation: u8, rotation: Rotation) -> DynamicImage {
        let stored = image::load_from_memory(input).unwrap();
        let (columns, rows) = match rotation {
            Rotation::Applied {
                trimmed_columns,
                trimmed_rows,
                ..
            } => (trimmed_columns, trimmed_rows),
            Rotation::Upright | Rotation::KeptAsTag => (0, 0),
        };
        let (w, h) = stored.dimensions();
        let mut kept = stored.crop_imm(0, 0, w - columns, h - rows);
        kept.apply_orientation(Orientation::from_exif(orientation).unwrap());
        kept
    }

    #[test]
    fn every_orientation_decodes_to_the_turned_input() {
        // 4:2:0 with both sides off the iMCU grid, progressive 4:4:4 with one row over, grey,
        // and 4:2:2 (whose sampling factors swap under a transpose).
        let files = [
            ("edge/orientation_4_nonsquare.jpg", (12, 7)),
            ("edge/progressive.jpg", (0, 1)),
            ("edge/gray.jpg", (0, 0)),
            ("photo_storm.jpg", (0, 0)),
        ];
        for (name, partial) in files {
            let input = corpus(name);
            for orientation in 1..=8u8 {
                let out = transcode(&input, orientation, NOTHING).expect(name);
                let expected = turned_decode(&input, orientation, out.rotation);
                let got = image::load_from_memory(&out.bytes).unwrap();
                let (mean, max) = difference(&got, &expected);
                let label = format!("{name} orientation {orientation}: mean {mean:.3}, max {max}");
                assert!(mean < 0.5 && max <= 40, "{label}");
                if orientation == 1 {
                    assert_eq!(out.rotation, Rotation::Upright);
                    assert_eq!(got.to_rgb8(), expected.to_rgb8(), "{label}");
                    continue;
                }
                let Rotation::Applied {
                    trimmed_columns,
                    trimmed_rows,
                    ..
                } = out.rotation
                else {
                    panic!("{label}: not turned: {:?}", out.rotation);
                };
                let (reverse_x, reverse_y) =
                    Transform::for_orientation(orientation).reverses_stored_axes();
                let want = (
                    if reverse_x { partial.0 } else { 0 },
                    if reverse_y { partial.1 } else { 0 },
                );
                assert_eq!((trimmed_columns, trimmed_rows), want, "{label}");
                // The comparison can fail: the stored pixels are far from the turned ones.
                if got.dimensions() == image::load_from_memory(&input).unwrap().dimensions() {
                    let stored = image::load_from_memory(&input).unwrap();
                    assert!(difference(&got, &stored).0 > 2.0, "{label}: unchanged");
                }
            }
        }
    }

    fn exif_orientation(jpeg: &[u8]) -> Option<u32> {
        let exif = exif::Reader::new()
            .read_from_container(&mut std::io::Cursor::new(jpeg))
            .ok()?;
        let field = exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)?;
        field.value.get_uint(0)
    }

    #[test]
    fn the_orientation_tag_is_reset_in_kept_exif_and_not_added_otherwise() {
        let input = corpus("edge/orientation_4_nonsquare.jpg");
        assert_eq!(exif_orientation(&input), Some(4));
        let whole = Keep {
            exif: KeepExif::Whole,
            xmp: false,
        };
        let kept = transcode(&input, 4, whole).unwrap();
        assert_eq!(exif_orientation(&kept.bytes), Some(1));
        let stripped = transcode(&input, 4, NOTHING).unwrap();
        assert!(exif::Reader::new()
            .read_from_container(&mut std::io::Cursor::new(&stripped.bytes))
            .is_err());
        // Too small to turn (2x1, orientation 8): the tag stays, alone.
        let tiny = transcode(&corpus("edge/orientation_8_2x1.jpg"), 8, NOTHING).unwrap();
        assert_eq!(tiny.rotation, Rotation::KeptAsTag);
        assert_eq!(exif_orientation(&tiny.bytes), Some(8));
    }

    /// Runs the output check of `out` against `input` turned by `orientation`.
    fn check_against(input: &[u8], out: &[u8], orientation: u8) -> Result<(), String> {
        let run = std::panic::catch_unwind(AssertUnwindSafe(|| unsafe {
            let mut reader = Reader::open(input, new_error_mgr(), false);
            let d = &mut *reader.info;
            let coefficients = jpeg_read_coefficients(d);
            let planned = plan(d, orientation).unwrap();
            check_output(out, d, coefficients, &planned.geometry, &planned.layouts)
        }));
        run.expect("the input reads")
    }

    #[test]
    fn the_check_fails_on_coefficients_that_are_not_the_expected_ones() {
        // Square and grey: every orientation has the same size and layout, so only the
        // coefficients can tell them apart.
        let input = corpus("edge/gray.jpg");
        let mirrored = transcode(&input, 2, NOTHING).unwrap().bytes;
        assert_eq!(check_against(&input, &mirrored, 2), Ok(()));
        let wrong = check_against(&input, &mirrored, 4).unwrap_err();
        assert!(wrong.contains("coefficients differ"), "{wrong}");
        let transposed = check_against(&input, &mirrored, 6).unwrap_err();
        assert!(transposed.contains("differ"), "{transposed}");
        let upright = transcode(&input, 1, NOTHING).unwrap().bytes;
        assert!(check_against(&input, &upright, 2).is_err());
        let broken = check_against(&input, &mirrored[..mirrored.len() / 2], 2).unwrap_err();
        assert!(broken.contains("does not read back"), "{broken}");
        let other = check_against(&input, &corpus("edge/orientation_6_rot90.jpg"), 1);
        assert!(other.unwrap_err().contains("components"));
    }
}
