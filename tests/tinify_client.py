"""Drives pixpress's Tinify dialect with Tinify's own Python client (PyPI `tinify`), changed only
in its base URL (`tinify.Client.API_ENDPOINT`) and the CA file its session trusts. Writes each
image it gets back into OUT_DIR and what the client reported into OUT_DIR/results.json; the Rust
side (tests/tinify.rs) checks the images themselves.

  tinify_client.py BASE_URL CA_FILE KEY INPUT_DIR STATIC_URL S3_ENDPOINT BUCKET OUT_DIR
"""

import json
import os
import sys

import tinify

BASE, CA, KEY, INPUTS, STATIC, S3, BUCKET, OUT = sys.argv[1:9]

tinify.Client.API_ENDPOINT = BASE


def use_key(key):
    tinify.key = key
    # The client pins its bundled CA file; trust the test server's certificate instead.
    tinify.get_client().session.verify = CA


def path(name):
    return os.path.join(OUT, name)


def meta(result):
    return {
        "width": result.width,
        "height": result.height,
        "size": result.size,
        "content_type": result.content_type,
        "extension": result.extension,
    }


def save(name, source):
    result = source.result()
    result.to_file(path(name))
    return meta(result)


use_key(KEY)
results = {}

png = tinify.from_file(os.path.join(INPUTS, "png_plasma_screenshot.png"))
results["from_file"] = save("from_file.png", png)
results["count_after_first"] = tinify.compression_count

with open(os.path.join(INPUTS, "edge", "progressive.jpg"), "rb") as f:
    jpg = tinify.from_buffer(f.read())
results["from_buffer"] = save("from_buffer.jpg", jpg)
results["from_url"] = save(
    "from_url.jpg", tinify.from_url(STATIC + "/corpus/edge/progressive.jpg")
)

results["fit"] = save("fit.jpg", jpg.resize(method="fit", width=150, height=150))
results["cover"] = save("cover.jpg", jpg.resize(method="cover", width=100, height=100))
results["thumb"] = save("thumb.jpg", jpg.resize(method="thumb", width=80, height=120))
results["scale"] = save("scale.jpg", jpg.resize(method="scale", width=200))

results["webp"] = save("convert.webp", jpg.convert(type="image/webp"))
results["smallest"] = save("smallest.bin", png.convert(type=["image/webp", "image/png"]))

logo = tinify.from_file(os.path.join(INPUTS, "edge", "png_gray_alpha.png"))
results["on_black"] = save(
    "on_black.jpg", logo.convert(type="image/jpeg").transform(background="black")
)

exif = tinify.from_file(os.path.join(OUT, "exif_input.jpg"))
results["preserved"] = save("preserved.jpg", exif.preserve("copyright", "creation"))
results["stripped"] = save("stripped.jpg", exif)

stored = jpg.resize(method="scale", width=120).store(
    service="s3",
    aws_access_key_id="test",
    aws_secret_access_key="test",
    region="us-east-1",
    path=BUCKET + "/tinify/python.jpg",
    endpoint=S3,
)
results["store"] = {"location": stored.location, "width": stored.width, "height": stored.height}
results["count"] = tinify.compression_count

try:
    tinify.from_buffer(b"this is not an image")
    results["not_an_image"] = None
except tinify.ClientError as e:
    results["not_an_image"] = {"status": e.status, "kind": e.kind, "message": e.message}

use_key("pxk_00000000_not-a-real-key")
try:
    tinify.from_buffer(b"anything")
    results["bad_key"] = None
except tinify.AccountError as e:
    results["bad_key"] = {"status": e.status, "kind": e.kind, "message": e.message}

with open(path("results.json"), "w") as f:
    json.dump(results, f, indent=1)
