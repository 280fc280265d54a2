// The peer of bench/thumbnail.py: sharp behind a minimal Node HTTP server, as a user who "runs
// sharp themselves" would deploy it. POST /thumbnail?width=W&quality=Q with the image as the
// body answers the JPEG (mozjpeg, like pixpress) W px wide. sharp's own defaults otherwise
// (its thread pool, its cache). Prints "listening on http://127.0.0.1:PORT" once ready.
const http = require('http');
const sharp = require('sharp');

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (req.method !== 'POST' || url.pathname !== '/thumbnail') {
    res.writeHead(404).end();
    return;
  }
  const width = parseInt(url.searchParams.get('width') || '800', 10);
  const quality = parseInt(url.searchParams.get('quality') || '80', 10);
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    sharp(Buffer.concat(chunks))
      .rotate()
      .resize({ width, withoutEnlargement: true })
      .jpeg({ quality, mozjpeg: true })
      .toBuffer()
      .then((out) => {
        res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': out.length });
        res.end(out);
      })
      .catch((err) => {
        res.writeHead(422, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: String(err) }));
      });
  });
});

server.listen(parseInt(process.argv[2] || '0', 10), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
