"""Drives Kraken.io's own Python client (`krakenio` from PyPI) against a running pixpress, with
nothing changed but the client's base address. Prints one JSON object on stdout: for each call,
{"status": 200, "body": ...} or, when the client raised, the HTTP status and the JSON it got.

  kraken_client.py BASE_URL API_KEY STATIC_BASE CORPUS_DIR
"""

import io
import json
import os
import sys

import requests
from krakenio import Client


def client(base, key, secret="any-secret"):
    c = Client(key, secret)
    # The base address is the only change: the client derives its /v1/ URL from it at start.
    c.api_base_url = base.rstrip("/") + "/"
    c.api_v1_url = c.api_base_url + "v1/"
    return c


def call(fn, *args):
    try:
        return {"status": 200, "body": fn(*args)}
    except requests.HTTPError as e:
        return {"status": e.response.status_code, "body": e.response.json()}


def main():
    base, key, static, corpus = sys.argv[1:5]
    kraken = client(base, key)
    photo = os.path.join(corpus, "photo_garden.jpg")
    with open(os.path.join(corpus, "png_coffee_photo.png"), "rb") as f:
        coffee = io.BytesIO(f.read())
    coffee.name = "coffee.png"
    results = {
        "upload": call(kraken.upload, photo, {"wait": True, "lossy": True, "quality": 70}),
        "url": call(
            kraken.url,
            static + "/corpus/png_page_gray.png",
            {"wait": True, "lossy": False, "dev": True, "preserve_meta": ["date"]},
        ),
        "set": call(
            kraken.url,
            static + "/corpus/photo_aqua.jpg",
            {
                "wait": True,
                "lossy": True,
                "resize": [
                    {"id": "small", "strategy": "exact", "width": 100, "height": 75},
                    {"id": "thumb", "strategy": "square", "size": 64, "crop_mode": "c"},
                    {"id": "wide", "strategy": "landscape", "width": 300},
                ],
            },
        ),
        "convert": call(
            kraken.upload_bytesio,
            coffee,
            {"wait": True, "lossy": True, "convert": {"format": "webp"}, "auto_orient": True},
        ),
        "callback": call(
            kraken.url,
            static + "/corpus/photo_aqua.jpg",
            # Asynchronous mode is tests/callback.rs's; here only its refusal of an address the
            # policy refuses (loopback is allowed for these tests, the metadata address is not).
            {"callback_url": "http://169.254.169.254/hook"},
        ),
        "user_status": call(kraken.user_status),
        "bad_key": call(
            client(base, "pxk_00000000_not-a-key").url,
            static + "/corpus/photo_aqua.jpg",
            {"wait": True},
        ),
        "bad_key_status": call(client(base, "pxk_00000000_not-a-key").user_status),
    }
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
