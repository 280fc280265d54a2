#!/usr/bin/env python3
"""Side-by-side compression benchmark (issue 4): pixpress against its peers, in one run, on the
corpus photos and PNGs. Every output is scored with the same SSIMULACRA2 implementation
(pixpress's scorer, `benchtool score`) against the decoded source, and sizes are compared as
ratios. Writes bench/RESULTS.md.

    bash bench/install-peers.sh            # sharp, cjpeg, pngquant, oxipng
    cargo build --release -p pixpress-core --example benchtool
    python3 bench/compare.py
"""
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "..", "shared", "corpus")
OUT = os.path.join(ROOT, "bench", "out")
PEERS = os.path.join(ROOT, "bench", ".peers")
# The release build by default; PIXPRESS_BENCHTOOL may name another build of the same example.
TOOL = os.environ.get("PIXPRESS_BENCHTOOL",
                      os.path.join(ROOT, "target", "release", "examples", "benchtool"))
PHOTOS = ["photo_aqua.jpg", "photo_blinds.jpg", "photo_garden.jpg", "photo_storm.jpg",
          "photo_wood.jpg", "photo_elephants_art.jpg"]
# AVIF runs on the photos up to 5 MP: each AVIF search costs seconds per megapixel.
AVIF_PHOTOS = PHOTOS[:5]
PNGS = ["png_astronaut_photo.png", "png_coffee_photo.png", "png_emerald_logo_rgba.png",
        "png_page_gray.png", "png_plasma_screenshot.png", "png_skimage_logo_rgba.png"]

SHARP_JS = """
const sharp = require('sharp');
const [,, input, output, kind] = process.argv;
const img = sharp(input);
const encoders = {
  jpeg: () => img.jpeg({quality: 80, mozjpeg: true}),
  png: () => img.png({palette: true, quality: 80}),
  avif: () => img.avif(),  // sharp's defaults: quality 50, effort 4, 4:4:4
};
encoders[kind]().toFile(output).catch(e => { console.error(e); process.exit(1); });
"""


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout.strip()


def timed(cmd, **kw):
    start = time.perf_counter()
    out = run(cmd, **kw)
    return out, (time.perf_counter() - start) * 1000


def score(source, output):
    return float(run([TOOL, "score", source, output]))


def pixpress(source, output, *flags):
    line, ms = timed([TOOL, "compress", source, output, *flags])
    quality = line.split()[0]
    return quality, ms


def sharp(source, output, kind):
    env = dict(os.environ, NODE_PATH=os.path.join(PEERS, "node_modules"))
    script = os.path.join(OUT, "sharp.js")
    with open(script, "w") as f:
        f.write(SHARP_JS)
    _, ms = timed(["node", script, source, output, kind], env=env)
    return ms


def cjpeg(source, output):
    ppm = output + ".ppm"
    run(["djpeg", "-outfile", ppm, source])
    _, ms = timed(["cjpeg", "-quality", "80", "-optimize", "-progressive", "-outfile", output, ppm])
    os.remove(ppm)
    return ms


def pngquant(source, output):
    _, ms = timed(["pngquant", "--force", "--output", output, source])
    return ms


def oxipng(source, output):
    code = ("import sys; sys.path.insert(0, %r); import oxipng; "
            "oxipng.optimize(%r, %r, level=2)") % (os.path.join(PEERS, "py"), source, output)
    _, ms = timed([sys.executable, "-c", code])
    return ms


def size(path):
    return os.path.getsize(path)


def jpeg_rows():
    rows = []
    for name in PHOTOS:
        src = os.path.join(CORPUS, name)
        stem = os.path.join(OUT, name.rsplit(".", 1)[0])
        q, px_ms = pixpress(src, stem + ".pixpress.jpg", "--lossy")
        sh_ms = sharp(src, stem + ".sharp.jpg", "jpeg")
        cj_ms = cjpeg(src, stem + ".cjpeg.jpg")
        px, sh, cj = (stem + ".pixpress.jpg", stem + ".sharp.jpg", stem + ".cjpeg.jpg")
        sharp_score = score(src, sh)
        # pixpress asked for exactly sharp's score: bytes at equal perceptual quality.
        mq, _ = pixpress(src, stem + ".pixpress-matched.jpg", "--lossy", "--target", "%.2f" % sharp_score)
        pm = stem + ".pixpress-matched.jpg"
        rows.append((name, size(src), q, size(px), score(src, px), px_ms,
                     size(sh), sharp_score, sh_ms, size(cj), score(src, cj), cj_ms,
                     mq, size(pm), score(src, pm)))
        print(rows[-1], flush=True)
    return rows


def avif_rows():
    rows = []
    for name in AVIF_PHOTOS:
        src = os.path.join(CORPUS, name)
        stem = os.path.join(OUT, name.rsplit(".", 1)[0])
        px, sh, pm = stem + ".pixpress.avif", stem + ".sharp.avif", stem + ".pixpress-matched.avif"
        q, px_ms = pixpress(src, px, "--lossy", "--format", "avif")
        sh_ms = sharp(src, sh, "avif")
        sharp_score = score(src, sh)
        mq, pm_ms = pixpress(src, pm, "--lossy", "--format", "avif", "--target", "%.2f" % sharp_score)
        # One encode at the quality the search found, against sharp's one encode: the encoders'
        # own speed, without the search's trials.
        _, one_ms = pixpress(src, stem + ".pixpress-one.avif", "--lossy", "--format", "avif",
                             "--quality", mq)
        rows.append((name, size(src), q, size(px), score(src, px), px_ms,
                     size(sh), sharp_score, sh_ms, mq, size(pm), score(src, pm), pm_ms, one_ms))
        print(rows[-1], flush=True)
    return rows


def png_rows():
    rows = []
    for name in PNGS:
        src = os.path.join(CORPUS, name)
        stem = os.path.join(OUT, name.rsplit(".", 1)[0])
        q, px_ms = pixpress(src, stem + ".pixpress-lossy.png", "--lossy")
        _, pl_ms = pixpress(src, stem + ".pixpress-lossless.png")
        pq_ms = pngquant(src, stem + ".pngquant.png")
        ox_ms = oxipng(src, stem + ".oxipng.png")
        px, pl = stem + ".pixpress-lossy.png", stem + ".pixpress-lossless.png"
        pq, ox = stem + ".pngquant.png", stem + ".oxipng.png"
        pq_score = score(src, pq)
        # pixpress asked for exactly pngquant's score: bytes at equal perceptual quality.
        pm = stem + ".pixpress-matched.png"
        mq, _ = pixpress(src, pm, "--lossy", "--target", "%.2f" % min(pq_score, 99.99))
        rows.append((name, size(src), q, size(px), score(src, px), px_ms, size(pq), pq_score, pq_ms,
                     size(pl), pl_ms, size(ox), ox_ms, mq, size(pm), score(src, pm)))
        print(rows[-1], flush=True)
    return rows


def main():
    os.makedirs(OUT, exist_ok=True)
    if not os.path.exists(TOOL):
        sys.exit("build it first: cargo build --release -p pixpress-core --example benchtool")
    jrows, arows, prows = jpeg_rows(), avif_rows(), png_rows()
    lines = ["# Compression benchmark", "",
             "Generated by `python3 bench/compare.py` (after `bash bench/install-peers.sh` and "
             "`cargo build --release -p pixpress-core --example benchtool`), all tools in one run on "
             "the same machine. Scores: SSIMULACRA2 of each output against the decoded source, "
             "all with the same scorer (fast-ssim2, as pixpress reports it; AVIF decoded by libaom). "
             "Times are wall-clock per file including process start, 2 shared cores. "
             "benchtool: `%s`." % os.path.relpath(TOOL, ROOT), "",
             "## JPEG: pixpress lossy with automatic quality (target 80) vs sharp q80 (mozjpeg) and cjpeg q80", "",
             "| photo | input | pixpress q | pixpress bytes | score | ms | sharp bytes | score | ms | cjpeg bytes | score | ms | pixpress/sharp | pixpress/cjpeg | pixpress at sharp's score: q | bytes | score | /sharp |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    tot = [0, 0, 0, 0]
    for r in jrows:
        tot[0] += r[3]; tot[1] += r[6]; tot[2] += r[9]; tot[3] += r[13]
        lines.append("| %s | %d | %s | %d | %.1f | %.0f | %d | %.1f | %.0f | %d | %.1f | %.0f | %.2f | %.2f | %s | %d | %.1f | %.2f |" % (
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[3] / r[6], r[3] / r[9],
            r[12], r[13], r[14], r[13] / r[6]))
    lines.append("| **total** | | | %d | | | %d | | | %d | | | **%.2f** | **%.2f** | | %d | | **%.2f** |" % (
        tot[0], tot[1], tot[2], tot[0] / tot[1], tot[0] / tot[2], tot[3], tot[3] / tot[1]))
    lines += ["", "## AVIF: pixpress lossy AVIF with automatic quality (target 80) vs sharp's AVIF defaults (quality 50, effort 4)", "",
              "| photo | input | pixpress q | pixpress bytes | score | ms | sharp bytes | score | ms | pixpress/sharp | pixpress at sharp's score: q | bytes | score | search ms | /sharp | one encode at that q: ms | /sharp's ms |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    tot = [0, 0, 0, 0, 0]
    for r in arows:
        tot[0] += r[3]; tot[1] += r[6]; tot[2] += r[10]; tot[3] += r[13]; tot[4] += r[8]
        lines.append("| %s | %d | %s | %d | %.1f | %.0f | %d | %.1f | %.0f | %.2f | %s | %d | %.1f | %.0f | %.2f | %.0f | %.2f |" % (
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[3] / r[6], r[9], r[10], r[11], r[12], r[10] / r[6],
            r[13], r[13] / r[8]))
    lines.append("| **total** | | | %d | | | %d | | | **%.2f** | | %d | | | **%.2f** | %.0f | **%.2f** |" % (
        tot[0], tot[1], tot[0] / tot[1], tot[2], tot[2] / tot[1], tot[3], tot[3] / tot[4]))
    lines += ["", "## PNG: pixpress lossy (auto) vs pngquant (defaults); pixpress lossless vs oxipng -o 2", "",
              "| png | input | pixpress q | pixpress lossy bytes | score | ms | pngquant bytes | score | ms | pixpress lossless bytes | ms | oxipng -o2 bytes | ms | lossy ratio | lossless ratio | pixpress at pngquant's score: q | bytes | score | /pngquant |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    tot = [0, 0, 0, 0, 0]
    for r in prows:
        tot[0] += r[3]; tot[1] += r[6]; tot[2] += r[9]; tot[3] += r[11]; tot[4] += r[14]
        lines.append("| %s | %d | %s | %d | %.1f | %.0f | %d | %.1f | %.0f | %d | %.0f | %d | %.0f | %.2f | %.3f | %s | %d | %.1f | %.2f |" % (
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[3] / r[6], r[9] / r[11],
            r[13], r[14], r[15], r[14] / r[6]))
    lines.append("| **total** | | | %d | | | %d | | | %d | | %d | | **%.2f** | **%.3f** | | %d | | **%.2f** |" % (
        tot[0], tot[1], tot[2], tot[3], tot[0] / tot[1], tot[2] / tot[3], tot[4], tot[4] / tot[1]))
    write_section("\n".join([START] + lines + [END]))
    print("\n".join(lines))


START, END = "<!-- compression:start -->", "<!-- compression:end -->"


def write_section(section):
    """Replaces this script's section of RESULTS.md, leaving the others (bench/thumbnail.py's)."""
    path = os.path.join(ROOT, "bench", "RESULTS.md")
    text = open(path).read() if os.path.exists(path) else ""
    if START in text and END in text:
        text = text[:text.index(START)] + section + text[text.index(END) + len(END):]
    else:
        text = section + "\n\n" + text.lstrip("\n")
    with open(path, "w") as f:
        f.write(text.rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
