package io.sparkdpo.data;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;

/**
 * Python's str methods for chat templates. Hugging Face chat templates are written for Python's Jinja2, where
 * {@code content.startswith('x')} or {@code content.strip()} call Python string methods; {@link TemplateSandbox}
 * answers method calls on strings from here and refuses every other (Java) method.
 */
final class PythonStringMethods {
  static final Object NOT_HANDLED = new Object();

  private PythonStringMethods() {}

  /** The result of {@code s.name(*p)}, or {@link #NOT_HANDLED} if Python has no such str method (with these arguments). */
  static Object call(String s, String name, Object[] p) {
    switch (name) {
      case "strip":
        return p.length == 0 || p[0] == null ? strip(s, true, true) : stripChars(s, p[0].toString(), true, true);
      case "lstrip":
        return p.length == 0 || p[0] == null ? strip(s, true, false) : stripChars(s, p[0].toString(), true, false);
      case "rstrip":
        return p.length == 0 || p[0] == null ? strip(s, false, true) : stripChars(s, p[0].toString(), false, true);
      case "startswith":
        return p.length == 1 && anyOf(p[0], s::startsWith);
      case "endswith":
        return p.length == 1 && anyOf(p[0], s::endsWith);
      case "upper":
        return s.toUpperCase(Locale.ROOT);
      case "lower":
        return s.toLowerCase(Locale.ROOT);
      case "title":
        return title(s);
      case "capitalize":
        return s.isEmpty() ? s : s.substring(0, 1).toUpperCase(Locale.ROOT) + s.substring(1).toLowerCase(Locale.ROOT);
      case "replace":
        return p.length >= 2 ? replace(s, String.valueOf(p[0]), String.valueOf(p[1])) : NOT_HANDLED;
      case "split":
        return split(s, p);
      case "find":
        return p.length == 1 ? (Object) (long) s.indexOf(String.valueOf(p[0])) : NOT_HANDLED;
      case "count":
        return p.length == 1 ? (Object) count(s, String.valueOf(p[0])) : NOT_HANDLED;
      case "join":
        return p.length == 1 && p[0] instanceof Collection<?> c ? join(s, c) : NOT_HANDLED;
      case "isspace":
        return !s.isEmpty() && s.chars().allMatch(c -> Jinja2Whitespace.isPythonSpace((char) c));
      case "isdigit":
        return !s.isEmpty() && s.chars().allMatch(Character::isDigit);
      default:
        return NOT_HANDLED;
    }
  }

  private static boolean anyOf(Object arg, java.util.function.Predicate<String> test) {
    if (arg instanceof Collection<?> c) {
      return c.stream().anyMatch(o -> test.test(String.valueOf(o)));
    }
    return test.test(String.valueOf(arg));
  }

  /** Python's {@code str.strip()} family: Unicode whitespace as Python defines it (Java's strip() keeps NBSP). */
  static String strip(String s, boolean left, boolean right) {
    int b = 0;
    int e = s.length();
    while (left && b < e && Jinja2Whitespace.isPythonSpace(s.charAt(b))) {
      b++;
    }
    while (right && e > b && Jinja2Whitespace.isPythonSpace(s.charAt(e - 1))) {
      e--;
    }
    return s.substring(b, e);
  }

  private static String stripChars(String s, String chars, boolean left, boolean right) {
    int b = 0;
    int e = s.length();
    while (left && b < e && chars.indexOf(s.charAt(b)) >= 0) {
      b++;
    }
    while (right && e > b && chars.indexOf(s.charAt(e - 1)) >= 0) {
      e--;
    }
    return s.substring(b, e);
  }

  private static List<String> split(String s, Object[] p) {
    List<String> out = new ArrayList<>();
    if (p.length == 0 || p[0] == null) {
      int i = 0;
      while (i < s.length()) {
        while (i < s.length() && Jinja2Whitespace.isPythonSpace(s.charAt(i))) {
          i++;
        }
        int start = i;
        while (i < s.length() && !Jinja2Whitespace.isPythonSpace(s.charAt(i))) {
          i++;
        }
        if (i > start) {
          out.add(s.substring(start, i));
        }
      }
      return out;
    }
    String sep = String.valueOf(p[0]);
    long max = p.length > 1 && p[1] instanceof Number n ? n.longValue() : -1;
    int from = 0;
    int at;
    while ((max < 0 || out.size() < max) && (at = s.indexOf(sep, from)) >= 0) {
      out.add(s.substring(from, at));
      from = at + sep.length();
    }
    out.add(s.substring(from));
    return out;
  }

  private static long count(String s, String sub) {
    if (sub.isEmpty()) {
      return s.length() + 1L;
    }
    long n = 0;
    for (int i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + sub.length())) {
      n++;
    }
    return n;
  }

  /** The only str methods whose result can be much longer than their input: its length is checked first. */
  private static String replace(String s, String old, String with) {
    RenderBudget.requireLength(s.length() + count(s, old) * (with.length() - old.length()));
    return s.replace(old, with);
  }

  private static String join(String sep, Collection<?> items) {
    List<String> parts = new ArrayList<>(items.size());
    long length = Math.max(0, items.size() - 1L) * sep.length();
    for (Object o : items) {
      String part = String.valueOf(o);
      parts.add(part);
      length += part.length();
    }
    RenderBudget.requireLength(length);
    return String.join(sep, parts);
  }

  private static String title(String s) {
    StringBuilder sb = new StringBuilder(s.length());
    boolean start = true;
    for (char c : s.toCharArray()) {
      sb.append(start ? Character.toUpperCase(c) : Character.toLowerCase(c));
      start = !Character.isLetter(c);
    }
    return sb.toString();
  }
}
