// Drives pixpress's Tinify dialect with Tinify's own Node.js client (npm `tinify`), changed only
// in its base URL (`Client.API_ENDPOINT`) and the CA it passes to https (`Client.CA_BUNDLE`).
// Writes each image it gets back into OUT_DIR and what the client reported into
// OUT_DIR/results.json; the Rust side (tests/tinify.rs) checks the images themselves.
//
//   node tinify_client.js TINIFY_PACKAGE BASE_URL CA_FILE KEY INPUT_DIR STATIC_URL S3_ENDPOINT BUCKET OUT_DIR

const fs = require("fs");
const path = require("path");

const [pkg, BASE, CA, KEY, INPUTS, STATIC, S3, BUCKET, OUT] = process.argv.slice(2);
const tinify = require(pkg);

tinify.Client.API_ENDPOINT = BASE;
tinify.Client.CA_BUNDLE = fs.readFileSync(CA, "utf8");

async function meta(result) {
  return {
    width: await result.width(),
    height: await result.height(),
    size: await result.size(),
    content_type: await result.contentType(),
    extension: await result.extension(),
  };
}

async function save(name, source) {
  const result = source.result();
  await result.toFile(path.join(OUT, name));
  return meta(result);
}

async function main() {
  tinify.key = KEY;
  const results = {};

  const png = tinify.fromFile(path.join(INPUTS, "png_plasma_screenshot.png"));
  results.from_file = await save("from_file.png", png);
  results.count_after_first = tinify.compressionCount;

  const jpg = tinify.fromBuffer(fs.readFileSync(path.join(INPUTS, "edge", "progressive.jpg")));
  results.from_buffer = await save("from_buffer.jpg", jpg);
  results.from_url = await save(
    "from_url.jpg",
    tinify.fromUrl(STATIC + "/corpus/edge/progressive.jpg"),
  );

  results.fit = await save("fit.jpg", jpg.resize({ method: "fit", width: 150, height: 150 }));
  results.cover = await save("cover.jpg", jpg.resize({ method: "cover", width: 100, height: 100 }));
  results.thumb = await save("thumb.jpg", jpg.resize({ method: "thumb", width: 80, height: 120 }));
  results.scale = await save("scale.jpg", jpg.resize({ method: "scale", width: 200 }));

  results.webp = await save("convert.webp", jpg.convert({ type: "image/webp" }));
  results.smallest = await save(
    "smallest.bin",
    png.convert({ type: ["image/webp", "image/png"] }),
  );

  const logo = tinify.fromFile(path.join(INPUTS, "edge", "png_gray_alpha.png"));
  results.on_black = await save(
    "on_black.jpg",
    logo.convert({ type: "image/jpeg" }).transform({ background: "black" }),
  );

  const exif = tinify.fromFile(path.join(OUT, "exif_input.jpg"));
  results.preserved = await save("preserved.jpg", exif.preserve("copyright", "creation"));
  results.stripped = await save("stripped.jpg", exif);

  const stored = jpg.resize({ method: "scale", width: 120 }).store({
    service: "s3",
    aws_access_key_id: "test",
    aws_secret_access_key: "test",
    region: "us-east-1",
    path: BUCKET + "/tinify/node.jpg",
    endpoint: S3,
  });
  results.store = {
    location: await stored.location(),
    width: await stored.width(),
    height: await stored.height(),
  };
  results.count = tinify.compressionCount;

  try {
    await tinify.fromBuffer(Buffer.from("this is not an image")).toBuffer();
    results.not_an_image = null;
  } catch (e) {
    if (!(e instanceof tinify.ClientError)) throw e;
    results.not_an_image = { status: e.status, message: e.message };
  }

  tinify.key = "pxk_00000000_not-a-real-key";
  try {
    await tinify.fromBuffer(Buffer.from("anything")).toBuffer();
    results.bad_key = null;
  } catch (e) {
    if (!(e instanceof tinify.AccountError)) throw e;
    results.bad_key = { status: e.status, message: e.message };
  }

  fs.writeFileSync(path.join(OUT, "results.json"), JSON.stringify(results, null, 1));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
