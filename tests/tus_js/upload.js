// Uploads one file with tus-js-client (the library behind Uppy) and reports what happens on
// stdout, one JSON object per line. Used by tests/test_tus_js_client.py.
//
//   node upload.js '{"endpoint": ..., "path": ..., "headers": {...}, "metadata": {...},
//                    "chunkSize": N, "pauseAfter": N}'
//
// The file is read into memory first, like a browser's File: seekable, so a retry can
// go back to whatever offset the server reports. With "pauseAfter", the upload waits
// before its first request after that many bytes were accepted, prints {"paused": n}
// and goes on when a line arrives on stdin.
'use strict';
const fs = require('fs');
const readline = require('readline');
const tus = require('tus-js-client');

const options = JSON.parse(process.argv[2]);
const say = (event) => process.stdout.write(JSON.stringify(event) + '\n');
const stdin = readline.createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => stdin.once('line', resolve));

let accepted = 0;
let paused = false;
const upload = new tus.Upload(fs.readFileSync(options.path), {
  endpoint: options.endpoint,
  headers: options.headers,
  metadata: options.metadata,
  chunkSize: options.chunkSize,
  retryDelays: [250, 500, 1000, 2000, 4000, 8000],
  async onBeforeRequest() {
    if (options.pauseAfter && !paused && accepted >= options.pauseAfter) {
      paused = true;
      say({ paused: accepted });
      await nextLine();
    }
  },
  onChunkComplete(size, bytesAccepted) {
    accepted = bytesAccepted;
    say({ accepted });
  },
  onShouldRetry(error, attempt) {
    // tus-js-client's own rule: not on a 4xx answer, except 409 and 423.
    const status = error.originalResponse ? error.originalResponse.getStatus() : 0;
    say({ retry: attempt, status });
    return !(status >= 400 && status < 500) || status === 409 || status === 423;
  },
  onSuccess(payload) {
    const last = payload && payload.lastResponse;
    say({ done: upload.url, media: last ? last.getHeader('Picup-Media-Id') : null,
          duplicate: last ? last.getHeader('Picup-Duplicate') : null });
    stdin.close();
  },
  onError(error) {
    say({ error: String(error) });
    process.exitCode = 1;
    stdin.close();
  },
});
upload.start();
