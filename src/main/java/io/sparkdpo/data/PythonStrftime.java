package io.sparkdpo.data;

import java.time.LocalDateTime;
import java.time.format.TextStyle;
import java.util.Locale;

/**
 * Python's {@code datetime.strftime} for a naive local time in the C locale (English names), for the {@code strftime_now} global of
 * chat templates (Llama 3.x prints "Today Date: 26 Jul 2024" with {@code "%d %b %Y"}). glibc's {@code %-d} style
 * (no padding) is supported, as Python on Linux passes it through. An unknown directive is an error, not a guess.
 */
final class PythonStrftime {
  private PythonStrftime() {}

  static String format(LocalDateTime t, String format) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < format.length(); i++) {
      char c = format.charAt(i);
      if (c != '%' || i + 1 == format.length()) {
        out.append(c);
        continue;
      }
      char d = format.charAt(++i);
      boolean unpadded = d == '-' && i + 1 < format.length();
      if (unpadded) {
        d = format.charAt(++i);
      }
      out.append(directive(t, d, unpadded, format));
    }
    return out.toString();
  }

  private static String directive(LocalDateTime t, char d, boolean unpadded, String format) {
    return switch (d) {
      case 'a' -> t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.US);
      case 'A' -> t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.US);
      case 'b', 'h' -> t.getMonth().getDisplayName(TextStyle.SHORT, Locale.US);
      case 'B' -> t.getMonth().getDisplayName(TextStyle.FULL, Locale.US);
      case 'd' -> pad(t.getDayOfMonth(), 2, unpadded);
      case 'e' -> unpadded ? Integer.toString(t.getDayOfMonth()) : String.format("%2d", t.getDayOfMonth());
      case 'm' -> pad(t.getMonthValue(), 2, unpadded);
      case 'y' -> pad(t.getYear() % 100, 2, unpadded);
      case 'Y' -> Integer.toString(t.getYear());
      case 'H' -> pad(t.getHour(), 2, unpadded);
      case 'I' -> pad(t.getHour() % 12 == 0 ? 12 : t.getHour() % 12, 2, unpadded);
      case 'p' -> t.getHour() < 12 ? "AM" : "PM";
      case 'M' -> pad(t.getMinute(), 2, unpadded);
      case 'S' -> pad(t.getSecond(), 2, unpadded);
      case 'f' -> pad(t.getNano() / 1000, 6, false);
      case 'j' -> pad(t.getDayOfYear(), 3, unpadded);
      case 'w' -> Integer.toString(t.getDayOfWeek().getValue() % 7);
      case 'u' -> Integer.toString(t.getDayOfWeek().getValue());
      case 'z', 'Z' -> ""; // datetime.now() is naive: no zone
      case '%' -> "%";
      default -> throw new TemplateFunctionException("strftime_now: directive %" + (unpadded ? "-" : "") + d
          + " in '" + format + "' is not supported");
    };
  }

  private static String pad(int v, int width, boolean unpadded) {
    String s = Integer.toString(v);
    return unpadded || s.length() >= width ? s : "0".repeat(width - s.length()) + s;
  }
}
