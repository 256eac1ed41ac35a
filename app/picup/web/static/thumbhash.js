/* Picup ThumbHash decoder: paints a photo's placeholder while its thumbnail loads.
 *
 * Decodes the base64 ThumbHash stored on each photo (made by
 * app/picup/media/placeholder.py, whose decoder this mirrors) into a picture of
 * at most 32x32 pixels. Written from the public description of Evan Wallace's
 * ThumbHash format. Plain ES5 (old TV browsers), no dependencies, fetches nothing.
 *
 *   PicupThumbHash.toRGBA(b64)       -> {w, h, rgba: Uint8ClampedArray} or null
 *   PicupThumbHash.toDataURL(b64)    -> "data:image/png;base64,..." or null
 *   PicupThumbHash.averageRGBA(b64)  -> {r, g, b, a} (0-255 integers) or null
 *
 * toDataURL writes a tiny PNG by hand (uncompressed deflate blocks), so it needs
 * no <canvas> and gives the same bytes in every browser.
 * Bad input (not a string, empty, not base64, too short) gives null, never throws.
 */
(function (root) {
  "use strict";

  var B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  var B64_VALUE = {};
  (function () {
    for (var i = 0; i < 64; i++) B64_VALUE[B64.charAt(i)] = i;
    B64_VALUE["-"] = 62; // URL-safe alphabet too
    B64_VALUE["_"] = 63;
  })();

  /* Base64 text to an array of bytes; null when it is not valid base64. */
  function base64ToBytes(text) {
    if (typeof text !== "string") return null;
    text = text.replace(/[\s]+/g, "");
    var end = text.length;
    while (end > 0 && text.charAt(end - 1) === "=") end--;
    if (text.length - end > 2) return null;
    if (text.length !== end && text.length % 4 !== 0) return null;
    if (end % 4 === 1) return null;
    var bytes = [];
    var buffer = 0;
    var bits = 0;
    for (var i = 0; i < end; i++) {
      var value = B64_VALUE[text.charAt(i)];
      if (value === undefined) return null;
      buffer = ((buffer << 6) | value) & 0xffffff;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        bytes.push((buffer >> bits) & 255);
      }
    }
    return bytes;
  }

  function bytesToBase64(bytes) {
    var out = "";
    var i;
    for (i = 0; i + 2 < bytes.length; i += 3) {
      var n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
      out += B64.charAt(n >> 18) + B64.charAt((n >> 12) & 63) + B64.charAt((n >> 6) & 63) + B64.charAt(n & 63);
    }
    var rest = bytes.length - i;
    if (rest === 1) {
      var one = bytes[i] << 16;
      out += B64.charAt(one >> 18) + B64.charAt((one >> 12) & 63) + "==";
    } else if (rest === 2) {
      var two = (bytes[i] << 16) | (bytes[i + 1] << 8);
      out += B64.charAt(two >> 18) + B64.charAt((two >> 12) & 63) + B64.charAt((two >> 6) & 63) + "=";
    }
    return out;
  }

  /* The fields of a ThumbHash's 5 or 6 header bytes; null if the bytes cannot be one. */
  function readHeader(hash) {
    if (!hash || hash.length < 5) return null;
    var header24 = hash[0] | (hash[1] << 8) | (hash[2] << 16);
    var header16 = hash[3] | (hash[4] << 8);
    var hasAlpha = (header24 >> 23) & 1;
    if (hasAlpha && hash.length < 6) return null;
    var isLandscape = (header16 >> 15) & 1;
    var size = header16 & 7;
    if (size === 0) return null; // the encoder never writes 0: no aspect ratio
    var full = hasAlpha ? 5 : 7;
    return {
      lDC: (header24 & 63) / 63,
      pDC: ((header24 >> 6) & 63) / 31.5 - 1,
      qDC: ((header24 >> 12) & 63) / 31.5 - 1,
      lScale: ((header24 >> 18) & 31) / 31,
      hasAlpha: !!hasAlpha,
      pScale: ((header16 >> 3) & 63) / 63,
      qScale: ((header16 >> 9) & 63) / 63,
      isLandscape: !!isLandscape,
      // the luminance grid as written (before the minimum of 3), for the aspect ratio
      rawLx: isLandscape ? full : size,
      rawLy: isLandscape ? size : full,
      aDC: hasAlpha ? (hash[5] & 15) / 15 : 1,
      aScale: hasAlpha ? (hash[5] >> 4) / 15 : 0
    };
  }

  function clamp01(c) {
    return c < 0 ? 0 : c > 1 ? 1 : c;
  }

  function toByte(c) {
    var v = Math.round(255 * c);
    return v < 0 ? 0 : v > 255 ? 255 : v;
  }

  function decodeBytes(hash) {
    var head = readHeader(hash);
    if (!head) return null;
    var hasAlpha = head.hasAlpha;
    var lx = Math.max(3, head.rawLx);
    var ly = Math.max(3, head.rawLy);
    var start = hasAlpha ? 6 : 5;
    var position = 0;

    function channel(nx, ny, scale) {
      var factors = [];
      for (var cy = 0; cy < ny; cy++) {
        for (var cx = cy ? 0 : 1; cx * ny < nx * (ny - cy); cx++) {
          var index = start + (position >> 1);
          var packed = index < hash.length ? hash[index] : 0;
          var nibble = (packed >> ((position & 1) << 2)) & 15;
          factors.push((nibble / 7.5 - 1) * scale);
          position++;
        }
      }
      return factors;
    }

    var lAC = channel(lx, ly, head.lScale);
    var pAC = channel(3, 3, head.pScale * 1.25);
    var qAC = channel(3, 3, head.qScale * 1.25);
    var aAC = hasAlpha ? channel(5, 5, head.aScale) : [];

    var ratio = head.rawLx / head.rawLy;
    var w = Math.round(ratio > 1 ? 32 : 32 * ratio);
    var h = Math.round(ratio > 1 ? 32 / ratio : 32);
    var n = Math.max(lx, hasAlpha ? 5 : 3);
    var m = Math.max(ly, hasAlpha ? 5 : 3);
    var fxTable = [];
    var fyTable = [];
    var x, y, c;
    for (x = 0; x < w; x++) {
      var rowX = [];
      for (c = 0; c < n; c++) rowX.push(Math.cos(Math.PI / w * (x + 0.5) * c));
      fxTable.push(rowX);
    }
    for (y = 0; y < h; y++) {
      var rowY = [];
      for (c = 0; c < m; c++) rowY.push(Math.cos(Math.PI / h * (y + 0.5) * c));
      fyTable.push(rowY);
    }

    var rgba = typeof Uint8ClampedArray !== "undefined" ? new Uint8ClampedArray(w * h * 4) : new Array(w * h * 4);
    var i = 0;
    for (y = 0; y < h; y++) {
      var fy = fyTable[y];
      for (x = 0; x < w; x++) {
        var fx = fxTable[x];
        var l = head.lDC, p = head.pDC, q = head.qDC, a = head.aDC;
        var j, cy, cx, fy2, f;
        for (j = 0, cy = 0; cy < ly; cy++) {
          fy2 = fy[cy] * 2;
          for (cx = cy ? 0 : 1; cx * ly < lx * (ly - cy); cx++, j++) l += lAC[j] * fx[cx] * fy2;
        }
        for (j = 0, cy = 0; cy < 3; cy++) {
          fy2 = fy[cy] * 2;
          for (cx = cy ? 0 : 1; cx < 3 - cy; cx++, j++) {
            f = fx[cx] * fy2;
            p += pAC[j] * f;
            q += qAC[j] * f;
          }
        }
        if (hasAlpha) {
          for (j = 0, cy = 0; cy < 5; cy++) {
            fy2 = fy[cy] * 2;
            for (cx = cy ? 0 : 1; cx < 5 - cy; cx++, j++) a += aAC[j] * fx[cx] * fy2;
          }
        }
        var b = l - 2 / 3 * p;
        var r = (3 * l - b + q) / 2;
        rgba[i] = toByte(r);
        rgba[i + 1] = toByte(r - q);
        rgba[i + 2] = toByte(b);
        rgba[i + 3] = toByte(a);
        i += 4;
      }
    }
    return { w: w, h: h, rgba: rgba };
  }

  /* -- a tiny PNG, written by hand ------------------------------------------ */

  var CRC_TABLE = null;

  function crc32(bytes, from, to) {
    if (!CRC_TABLE) {
      CRC_TABLE = [];
      for (var k = 0; k < 256; k++) {
        var c = k;
        for (var bit = 0; bit < 8; bit++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        CRC_TABLE.push(c >>> 0);
      }
    }
    var crc = 0xffffffff;
    for (var i = from; i < to; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 255] ^ (crc >>> 8);
    return (crc ^ 0xffffffff) >>> 0;
  }

  function pushUint32(out, v) {
    out.push((v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
  }

  function pushChunk(out, type, data) {
    pushUint32(out, data.length);
    var typeStart = out.length;
    for (var i = 0; i < 4; i++) out.push(type.charCodeAt(i));
    for (i = 0; i < data.length; i++) out.push(data[i]);
    pushUint32(out, crc32(out, typeStart, out.length));
  }

  function pngBytes(w, h, rgba) {
    // raw scanlines: filter byte 0 (none), then the row's RGBA
    var raw = [];
    var i = 0;
    for (var y = 0; y < h; y++) {
      raw.push(0);
      for (var x = 0; x < w * 4; x++) raw.push(rgba[i++]);
    }
    // zlib stream of stored (uncompressed) deflate blocks, then Adler-32
    var zlib = [0x78, 0x01];
    for (var at = 0; at < raw.length || at === 0; ) {
      var len = Math.min(65535, raw.length - at);
      var last = at + len >= raw.length ? 1 : 0;
      zlib.push(last, len & 255, len >> 8, ~len & 255, (~len >> 8) & 255);
      for (var k = 0; k < len; k++) zlib.push(raw[at + k]);
      at += len;
      if (last) break;
    }
    var s1 = 1, s2 = 0;
    for (i = 0; i < raw.length; i++) {
      s1 = (s1 + raw[i]) % 65521;
      s2 = (s2 + s1) % 65521;
    }
    pushUint32(zlib, ((s2 << 16) | s1) >>> 0);

    var out = [137, 80, 78, 71, 13, 10, 26, 10];
    var ihdr = [];
    pushUint32(ihdr, w);
    pushUint32(ihdr, h);
    ihdr.push(8, 6, 0, 0, 0); // 8 bits, RGBA, deflate, no filter method, no interlace
    pushChunk(out, "IHDR", ihdr);
    pushChunk(out, "IDAT", zlib);
    pushChunk(out, "IEND", []);
    return out;
  }

  /* -- the public face ------------------------------------------------------- */

  function toRGBA(text) {
    try {
      return decodeBytes(base64ToBytes(text));
    } catch (e) {
      return null;
    }
  }

  function toDataURL(text) {
    var picture = toRGBA(text);
    if (!picture) return null;
    try {
      return "data:image/png;base64," + bytesToBase64(pngBytes(picture.w, picture.h, picture.rgba));
    } catch (e) {
      return null;
    }
  }

  function averageRGBA(text) {
    try {
      var head = readHeader(base64ToBytes(text));
      if (!head) return null;
      var l = head.lDC, p = head.pDC, q = head.qDC;
      var b = l - 2 / 3 * p;
      var r = (3 * l - b + q) / 2;
      return {
        r: toByte(clamp01(r)),
        g: toByte(clamp01(r - q)),
        b: toByte(clamp01(b)),
        a: toByte(head.aDC)
      };
    } catch (e) {
      return null;
    }
  }

  root.PicupThumbHash = { toRGBA: toRGBA, toDataURL: toDataURL, averageRGBA: averageRGBA };
})(typeof window !== "undefined" ? window : this);
