#!/usr/bin/env python3
"""The thumbnail job over HTTP, pixpress against sharp behind a minimal Node server, back to back
in one run (the speed issue's benchmark). Run it through `bash bench/thumbnail.sh`, which builds
the release binary and installs the peer first.

Job: each corpus photo (JPEG) -> 800 px wide -> JPEG q80. pixpress gets the seed's upload
(`POST /v1/upload`, part `image` + part `data`, answered with JSON; the hosted result is written
to its store and database as in production); sharp gets the same bytes as a raw body and answers
the JPEG itself. The same client (this script: Python's http.client, one keep-alive connection
per in-flight request) drives both.

Measured, for each side:
  - img/s with 1 and with 2 requests in flight (closed loop, --seconds each);
  - open-loop latency p50/p99 at 80 % of that side's own peak rate (Poisson arrivals with one
    seed for both; latency counts from the scheduled send time, so a backlog is not hidden);
  - the server's peak RSS (VmHWM) over the whole run;
  - bytes and SSIMULACRA2 of each photo's output, both scored with pixpress's scorer against
    the same reference: Pillow's full decode, EXIF transpose and Lanczos resize to the output's
    size;
and for pixpress alone, the automatic-quality table: each photo at full size with `lossy: true`
and no quality, against `quality: 80`, and (unless --no-oracle) the smallest quality whose
whole-image score reaches the target, found by encoding every quality near the chosen one.

Writes its section of bench/RESULTS.md (between the thumbnail markers) and prints it.
"""
import argparse
import http.client
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "..", "shared", "corpus")
BENCH = os.path.join(ROOT, "bench")
OUT = os.path.join(BENCH, "out", "thumbnail")
PEERS = os.path.join(BENCH, ".peers")
PHOTOS = ["photo_aqua.jpg", "photo_blinds.jpg", "photo_garden.jpg", "photo_storm.jpg",
          "photo_wood.jpg", "photo_elephants_art.jpg"]
WIDTH, QUALITY, TARGET = 800, 80, 80.0
START, END = "<!-- thumbnail:start -->", "<!-- thumbnail:end -->"


# ---------------------------------------------------------------------------------------------
# Servers

class Server:
    """A server process on a loopback port, and its peak RSS."""

    def __init__(self, name, cmd, env=None):
        self.name = name
        self.log = open(os.path.join(OUT, name + ".log"), "w+")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.url = self._wait_for("listening on (http://[0-9.:]+)")

    def _wait_for(self, pattern):
        for _ in range(600):
            self.log.seek(0)
            found = re.search(pattern, self.log.read())
            if found:
                return found.group(1)
            if self.proc.poll() is not None:
                sys.exit("%s exited: see %s" % (self.name, self.log.name))
            time.sleep(0.1)
        sys.exit("%s did not start" % self.name)

    def text(self):
        self.log.seek(0)
        return self.log.read()

    def peak_rss_mib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_pixpress(binary, data_dir):
    # The benchmark measures the pipeline, not the plans: lift the free plan's limits.
    config = os.path.join(OUT, "unlimited.toml")
    with open(config, "w") as f:
        f.write("[plans.free]\nrequests_per_second = 100000\nbytes_per_month = 1000000000000000\n")
    server = Server("pixpress", [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir,
                                 "--config", config])
    key = re.search(r"^\s+(pxk_\S+)", server.text(), re.M)
    if not key:
        sys.exit("pixpress printed no key: see %s" % server.log.name)
    server.key = key.group(1)
    return server


def start_sharp():
    env = dict(os.environ, NODE_PATH=os.path.join(PEERS, "node_modules"))
    return Server("sharp", ["node", os.path.join(BENCH, "sharp-server.js"), "0"], env=env)


# ---------------------------------------------------------------------------------------------
# Requests: one callable per side, (connection, photo index) -> response bytes

def multipart(fields):
    boundary = uuid.uuid4().hex
    body = b""
    for name, filename, value in fields:
        disposition = 'form-data; name="%s"' % name
        if filename:
            disposition += '; filename="%s"' % filename
        body += b"--%s\r\nContent-Disposition: %s\r\n\r\n" % (boundary.encode(), disposition.encode())
        body += value + b"\r\n"
    body += b"--%s--\r\n" % boundary.encode()
    return body, "multipart/form-data; boundary=" + boundary


class Side:
    """How one server is asked for the thumbnail of photo i."""

    def __init__(self, server, photos, request_for):
        self.server = server
        self.host, self.port = server.url.split("//")[1].split(":")
        self.requests = [request_for(p) for p in photos]

    def connect(self):
        return http.client.HTTPConnection(self.host, int(self.port), timeout=300)

    def call(self, conn, i):
        path, body, content_type = self.requests[i]
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError("%s answered %d: %s" % (self.server.name, response.status, data[:300]))
        return data


def pixpress_side(server, photos, options):
    def request_for(photo):
        data = dict(options, api_key=server.key)
        body, ctype = multipart([("image", "photo.jpg", photo),
                                 ("data", None, json.dumps(data).encode())])
        return "/v1/upload", body, ctype
    return Side(server, photos, request_for)


def thumbnail_options():
    return {"lossy": True, "quality": QUALITY, "resize": {"strategy": "landscape", "width": WIDTH}}


def sharp_side(server, photos):
    return Side(server, photos,
                lambda photo: ("/thumbnail?width=%d&quality=%d" % (WIDTH, QUALITY), photo, "image/jpeg"))


def hosted_bytes(answer):
    url = json.loads(answer)["url"]
    host, rest = url.split("//")[1].split("/", 1)
    conn = http.client.HTTPConnection(*host.split(":"))
    conn.request("GET", "/" + rest)
    return conn.getresponse().read()


# ---------------------------------------------------------------------------------------------
# Load

def closed_loop(side, in_flight, seconds, count):
    """img/s with `in_flight` requests always outstanding."""
    deadline = time.perf_counter() + seconds
    done = [0] * in_flight
    start = time.perf_counter()

    def worker(slot):
        conn = side.connect()
        i = slot
        while time.perf_counter() < deadline:
            side.call(conn, i % count)
            done[slot] += 1
            i += in_flight

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(in_flight)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - start)


def open_loop(side, rate, seconds, count, seed=7):
    """Latencies (s) of Poisson arrivals at `rate`/s, from each arrival's scheduled time."""
    rng = random.Random(seed)
    arrivals, t = [], 0.0
    while t < seconds:
        t += rng.expovariate(rate)
        arrivals.append(t)
    local = threading.local()
    latencies = []
    lock = threading.Lock()
    origin = time.perf_counter() + 0.2

    def send(n, at):
        if not hasattr(local, "conn"):
            local.conn = side.connect()
        side.call(local.conn, n % count)
        with lock:
            latencies.append(time.perf_counter() - (origin + at))

    with ThreadPoolExecutor(max_workers=64) as pool:
        for n, at in enumerate(arrivals):
            delay = origin + at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, n, at)
    return latencies


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# ---------------------------------------------------------------------------------------------
# Scoring

def score(benchtool, reference, output):
    out = subprocess.run([benchtool, "score", reference, output], check=True, capture_output=True,
                         text=True).stdout
    return float(out.strip())


def resized_reference(photo_path, width, height, path):
    from PIL import Image, ImageOps
    with Image.open(photo_path) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        img.resize((width, height), Image.LANCZOS).save(path)


def jpeg_size(path):
    from PIL import Image
    with Image.open(path) as img:
        return img.size


def quality_of_outputs(benchtool, names, outputs_by_side):
    """Per photo and side: (bytes, width, height, SSIMULACRA2 against the same reference)."""
    rows = []
    for i, name in enumerate(names):
        row = {"photo": name}
        for side, outputs in outputs_by_side.items():
            path = os.path.join(OUT, "%s.%s.jpg" % (name.rsplit(".", 1)[0], side))
            with open(path, "wb") as f:
                f.write(outputs[i])
            w, h = jpeg_size(path)
            ref = os.path.join(OUT, "%s.ref-%dx%d.png" % (name.rsplit(".", 1)[0], w, h))
            if not os.path.exists(ref):
                resized_reference(os.path.join(CORPUS, name), w, h, ref)
            row[side] = (len(outputs[i]), w, h, score(benchtool, ref, path))
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# Automatic quality

def timed_upload(side, conn, i):
    start = time.perf_counter()
    answer = side.call(conn, i)
    return json.loads(answer), time.perf_counter() - start


def oracle(benchtool, photo_path, chosen, name):
    """The smallest quality near `chosen` whose whole-image score reaches the target: every
    quality from chosen-8 to chosen+2 is encoded (as the API would, through benchtool) and
    scored on the whole image."""
    best = None
    for q in range(max(1, chosen - 8), min(100, chosen + 2) + 1):
        out = os.path.join(OUT, "%s.q%d.jpg" % (name.rsplit(".", 1)[0], q))
        subprocess.run([benchtool, "compress", photo_path, out, "--lossy", "--quality", str(q)],
                       check=True, capture_output=True)
        s = score(benchtool, photo_path, out)
        if s >= TARGET:
            best = (q, os.path.getsize(out), s)
            break
    return best


def auto_quality_rows(server, photos, names, benchtool, with_oracle):
    auto = pixpress_side(server, photos, {"lossy": True})
    fixed = pixpress_side(server, photos, {"lossy": True, "quality": QUALITY})
    rows = []
    for i, name in enumerate(names):
        conn = auto.connect()
        fixed.call(conn, i)  # warm the page cache and the allocator for this photo
        f_answer, f_s = timed_upload(fixed, conn, i)
        a_answer, a_s = timed_upload(auto, conn, i)
        best = oracle(benchtool, os.path.join(CORPUS, name), a_answer["quality"], name) if with_oracle else None
        rows.append((name, f_s, a_s, a_answer["quality"], a_answer["final_size"],
                     a_answer.get("ssimulacra2"), best))
        print("auto quality:", rows[-1], flush=True)
    return rows


# ---------------------------------------------------------------------------------------------
# Report

def ratio(a, b):
    return a / b if b else float("nan")


def report(args, names, speed, latency, rss, quality_rows, auto_rows):
    px_bytes = sum(r["pixpress"][0] for r in quality_rows)
    sh_bytes = sum(r["sharp"][0] for r in quality_rows)
    px_score = statistics.mean(r["pixpress"][3] for r in quality_rows)
    sh_score = statistics.mean(r["sharp"][3] for r in quality_rows)
    lines = [START, "## Thumbnail job over HTTP: pixpress vs sharp behind a minimal Node server", "",
             "Generated by `bash bench/thumbnail.sh` (release build; sharp %s; both servers on "
             "loopback, driven by the same client, back to back in one run; %d s per closed-loop "
             "phase, %d s open loop). Job: %s -> %d px wide -> JPEG q%d (pixpress: "
             "`POST /v1/upload`, `resize: {strategy: landscape, width: %d}`, hosted; sharp: "
             "`resize({width: %d}).jpeg({quality: %d, mozjpeg: true})`). Scores: SSIMULACRA2 "
             "against Pillow's Lanczos resize of the full decode, both through pixpress's scorer. "
             "Machine: %d cores." % (args.sharp_version, args.seconds, args.open_seconds,
                                     ", ".join(names), WIDTH, QUALITY, WIDTH, WIDTH, QUALITY,
                                     os.cpu_count()), "",
             "| measure | pixpress | sharp | pixpress/sharp |", "|---|---:|---:|---:|"]
    for c in (1, 2):
        lines.append("| img/s, %d in flight | %.2f | %.2f | %.2f× |" % (
            c, speed["pixpress"][c], speed["sharp"][c], ratio(speed["pixpress"][c], speed["sharp"][c])))
    for p in (50, 99):
        lines.append("| open-loop p%d at 80 %% of own peak (ms) | %.0f | %.0f | %.2f× |" % (
            p, latency["pixpress"][p] * 1000, latency["sharp"][p] * 1000,
            ratio(latency["pixpress"][p], latency["sharp"][p])))
    lines.append("| open-loop rate (req/s) | %.2f | %.2f | |" % (latency["pixpress"]["rate"], latency["sharp"]["rate"]))
    lines.append("| server peak RSS (MiB) | %.0f | %.0f | %.2f× |" % (
        rss["pixpress"], rss["sharp"], ratio(rss["pixpress"], rss["sharp"])))
    lines.append("| output bytes (sum) | %d | %d | %.3f× |" % (px_bytes, sh_bytes, ratio(px_bytes, sh_bytes)))
    lines.append("| mean SSIMULACRA2 | %.2f | %.2f | %+.2f |" % (px_score, sh_score, px_score - sh_score))
    lines += ["", "| photo | pixpress bytes | size | score | sharp bytes | size | score |",
              "|---|---:|---|---:|---:|---|---:|"]
    for r in quality_rows:
        p, s = r["pixpress"], r["sharp"]
        lines.append("| %s | %d | %dx%d | %.2f | %d | %dx%d | %.2f |" % (
            r["photo"], p[0], p[1], p[2], p[3], s[0], s[1], s[2], s[3]))
    if auto_rows:
        lines += ["", "### Automatic quality (pixpress, full size, `lossy: true` without `quality`, target %.0f)" % TARGET, "",
                  "| photo | q80 (s) | auto (s) | auto/q80 | chosen q | bytes | reported score | smallest passing q (whole image) | its bytes | its score | bytes vs it |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, f_s, a_s, q, size, s, best in auto_rows:
            best_cols = ("%d | %d | %.2f | %+.1f %%" % (best[0], best[1], best[2], 100 * (size / best[1] - 1))
                         if best else "— | — | — | —")
            lines.append("| %s | %.2f | %.2f | %.1f× | %s | %d | %s | %s |" % (
                name, f_s, a_s, a_s / f_s, q, size, "%.2f" % s if s is not None else "—", best_cols))
        lines.append("| **median** | | | **%.1f×** | | | | | | | |" % statistics.median(r[2] / r[1] for r in auto_rows))
    lines.append(END)
    return "\n".join(lines)


def write_section(section):
    path = os.path.join(BENCH, "RESULTS.md")
    text = open(path).read() if os.path.exists(path) else ""
    if START in text and END in text:
        text = text[:text.index(START)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w") as f:
        f.write(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pixpress", default=os.path.join(ROOT, "target", "release", "pixpress"))
    parser.add_argument("--benchtool", default=os.path.join(ROOT, "target", "release", "examples", "benchtool"))
    parser.add_argument("--seconds", type=float, default=20, help="length of each closed-loop phase")
    parser.add_argument("--open-seconds", type=float, default=30, help="length of each open-loop phase")
    parser.add_argument("--no-auto", action="store_true", help="skip the automatic-quality table")
    parser.add_argument("--no-oracle", action="store_true", help="skip the smallest-passing-quality scan")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--sharp-version", default="?")
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)

    photos = [open(os.path.join(CORPUS, n), "rb").read() for n in PHOTOS]
    data_dir = tempfile.mkdtemp(prefix="pixpress-bench-")
    servers = {"pixpress": start_pixpress(args.pixpress, data_dir), "sharp": start_sharp()}
    try:
        sides = {"pixpress": pixpress_side(servers["pixpress"], photos, thumbnail_options()),
                 "sharp": sharp_side(servers["sharp"], photos)}
        # One pass each to warm up; its outputs are the ones scored.
        outputs = {}
        for name, side in sides.items():
            conn = side.connect()
            answers = [side.call(conn, i) for i in range(len(photos))]
            outputs[name] = [hosted_bytes(a) for a in answers] if name == "pixpress" else answers
        speed = {name: {} for name in sides}
        for c in (1, 2):
            for name, side in sides.items():
                speed[name][c] = closed_loop(side, c, args.seconds, len(photos))
                print("%s: %.2f img/s at %d in flight" % (name, speed[name][c], c), flush=True)
        latency = {}
        for name, side in sides.items():
            rate = 0.8 * max(speed[name].values())
            lat = open_loop(side, rate, args.open_seconds, len(photos))
            latency[name] = {50: percentile(lat, 50), 99: percentile(lat, 99), "rate": rate}
            print("%s: p50 %.0f ms, p99 %.0f ms at %.2f req/s" % (
                name, latency[name][50] * 1000, latency[name][99] * 1000, rate), flush=True)
        # Peak RSS of the thumbnail job itself, before the full-size automatic-quality phase.
        rss = {name: server.peak_rss_mib() for name, server in servers.items()}
        auto_rows = [] if args.no_auto else auto_quality_rows(
            servers["pixpress"], photos, PHOTOS, args.benchtool, not args.no_oracle)
    finally:
        for server in servers.values():
            server.stop()
    quality_rows = quality_of_outputs(args.benchtool, PHOTOS, outputs)
    section = report(args, PHOTOS, speed, latency, rss, quality_rows, auto_rows)
    print(section)
    if not args.no_write:
        write_section(section)


if __name__ == "__main__":
    main()
