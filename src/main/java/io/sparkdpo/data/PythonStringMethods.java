package io.sparkdpo.data;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/**
 * Python's str methods for Jinjava. Hugging Face chat templates are written for Python's Jinja2, where
 * {@code content.startswith('x')} or {@code content.strip()} call Python string methods; Jinjava would look for
 * Java methods instead. This resolver answers those calls on strings and leaves everything else to Jinjava.
 */
final class PythonStringMethods extends ELResolver {
  @Override
  public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
    if (!(base instanceof String s) || method == null) {
      return null;
    }
    Object[] p = params == null ? new Object[0] : params;
    Object result = call(s, method.toString(), p);
    if (result != NOT_HANDLED) {
      context.setPropertyResolved(true);
      return result;
    }
    return null;
  }

  private static final Object NOT_HANDLED = new Object();

  private static Object call(String s, String name, Object[] p) {
    switch (name) {
      case "strip":
        return p.length == 0 || p[0] == null ? s.strip() : stripChars(s, p[0].toString(), true, true);
      case "lstrip":
        return p.length == 0 || p[0] == null ? s.stripLeading() : stripChars(s, p[0].toString(), true, false);
      case "rstrip":
        return p.length == 0 || p[0] == null ? s.stripTrailing() : stripChars(s, p[0].toString(), false, true);
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
        return p.length >= 2 ? s.replace(String.valueOf(p[0]), String.valueOf(p[1])) : NOT_HANDLED;
      case "split":
        return split(s, p);
      case "find":
        return p.length == 1 ? (Object) (long) s.indexOf(String.valueOf(p[0])) : NOT_HANDLED;
      case "count":
        return p.length == 1 ? (Object) count(s, String.valueOf(p[0])) : NOT_HANDLED;
      case "join":
        return p.length == 1 && p[0] instanceof Collection<?> c ? join(s, c) : NOT_HANDLED;
      case "isspace":
        return !s.isEmpty() && s.isBlank();
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
      for (String part : s.strip().split("\\s+")) {
        if (!part.isEmpty()) {
          out.add(part);
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

  private static String join(String sep, Collection<?> items) {
    java.util.StringJoiner j = new java.util.StringJoiner(sep);
    items.forEach(o -> j.add(String.valueOf(o)));
    return j.toString();
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

  // Property access is left to Jinjava's own resolvers.
  @Override
  public Class<?> getCommonPropertyType(ELContext context, Object base) {
    return null;
  }

  @Override
  public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
    return null;
  }

  @Override
  public Class<?> getType(ELContext context, Object base, Object property) {
    return null;
  }

  @Override
  public Object getValue(ELContext context, Object base, Object property) {
    return null;
  }

  @Override
  public boolean isReadOnly(ELContext context, Object base, Object property) {
    return true;
  }

  @Override
  public void setValue(ELContext context, Object base, Object property, Object value) {
    // not ours
  }
}
