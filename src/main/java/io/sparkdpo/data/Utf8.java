package io.sparkdpo.data;

/** Strict UTF-8 validation on raw bytes (no overlong forms, no surrogates, nothing above U+10FFFF). */
final class Utf8 {
  private Utf8() {}

  /** Offset of the first byte that is not part of valid UTF-8, or -1 if all of [off, off+len) is valid. */
  static int firstInvalid(byte[] b, int off, int len) {
    int i = off;
    int end = off + len;
    while (i < end) {
      int c = b[i] & 0xff;
      if (c < 0x80) {
        i++;
        continue;
      }
      int n;
      int min;
      if (c >= 0xC2 && c <= 0xDF) {
        n = 1;
        min = 0x80;
      } else if (c >= 0xE0 && c <= 0xEF) {
        n = 2;
        min = 0x800;
      } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3;
        min = 0x10000;
      } else {
        return i - off;
      }
      if (i + n >= end) { // truncated sequence
        return i - off;
      }
      int cp = c & (0x3F >> n);
      for (int k = 1; k <= n; k++) {
        int cc = b[i + k] & 0xff;
        if ((cc & 0xC0) != 0x80) {
          return i - off;
        }
        cp = (cp << 6) | (cc & 0x3F);
      }
      if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return i - off;
      }
      i += n + 1;
    }
    return -1;
  }
}
