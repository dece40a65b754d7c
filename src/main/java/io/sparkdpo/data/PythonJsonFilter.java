package io.sparkdpo.data;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.Filter;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;

/**
 * The {@code tojson} filter as transformers defines it for chat templates: Python's
 * {@code json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)}, arguments positional or
 * by name. Unlike Jinja2's own tojson it does not HTML-escape, and unlike Jinjava's it keeps Python's spacing
 * ({@code ", "} and {@code ": "}, or {@code ","} between items when indenting).
 */
final class PythonJsonFilter implements Filter {
  private static final List<String> PARAMS = List.of("ensure_ascii", "indent", "separators", "sort_keys");

  @Override
  public String getName() {
    return "tojson";
  }

  @Override
  public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
    return filter(var, interpreter, args, Map.of());
  }

  @Override
  public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
    Object[] p = new Object[PARAMS.size()];
    for (int i = 0; i < args.length; i++) {
      if (i >= p.length) {
        throw new TemplateFunctionException("tojson takes at most " + p.length + " arguments");
      }
      p[i] = args[i];
    }
    kwargs.forEach((k, v) -> {
      int i = PARAMS.indexOf(k);
      if (i < 0) {
        throw new TemplateFunctionException("tojson got an unexpected keyword argument '" + k + "'");
      }
      p[i] = v;
    });
    return dumps(var, truthy(p[0]), indent(p[1]), separators(p[2], p[1] != null), truthy(p[3]));
  }

  static String dumps(Object value, boolean ensureAscii, String indent, String[] separators, boolean sortKeys) {
    StringBuilder out = new StringBuilder();
    new Writer(ensureAscii, indent, separators[0], separators[1], sortKeys).write(out, value, 0);
    return out.toString();
  }

  private static boolean truthy(Object o) {
    return o instanceof Boolean b ? b : o instanceof Number n ? n.doubleValue() != 0 : o != null;
  }

  /** json.dumps: an int indents by that many spaces, a string by itself; null (None) puts everything on one line. */
  private static String indent(Object o) {
    if (o == null) {
      return null;
    }
    return o instanceof Number n ? " ".repeat(Math.max(0, n.intValue())) : o.toString();
  }

  private static String[] separators(Object o, boolean indented) {
    if (o == null) {
      return indented ? new String[] {",", ": "} : new String[] {", ", ": "};
    }
    if (o instanceof List<?> l && l.size() == 2) {
      return new String[] {String.valueOf(l.get(0)), String.valueOf(l.get(1))};
    }
    throw new TemplateFunctionException("tojson: separators must be a pair (item, key), got " + o);
  }

  private record Writer(boolean ensureAscii, String indent, String itemSep, String keySep, boolean sortKeys) {
    void write(StringBuilder out, Object v, int level) {
      if (v == null) {
        out.append("null");
      } else if (v instanceof Boolean b) {
        out.append(b ? "true" : "false");
      } else if (v instanceof Double || v instanceof Float) {
        out.append(floatRepr(((Number) v).doubleValue()));
      } else if (v instanceof Number n) {
        out.append(n instanceof BigDecimal d ? d.toPlainString() : Long.toString(n.longValue()));
      } else if (v instanceof CharSequence s) {
        string(out, s.toString());
      } else if (v instanceof Map<?, ?> m) {
        object(out, m, level);
      } else if (v instanceof Collection<?> c) {
        array(out, new ArrayList<>(c), level);
      } else if (v instanceof Object[] a) {
        array(out, List.of(a), level);
      } else {
        throw new TemplateFunctionException("tojson: Object of type " + v.getClass().getSimpleName()
            + " is not JSON serializable");
      }
    }

    private void array(StringBuilder out, List<?> items, int level) {
      if (items.isEmpty()) {
        out.append("[]");
        return;
      }
      out.append('[');
      for (int i = 0; i < items.size(); i++) {
        separate(out, i, level + 1);
        write(out, items.get(i), level + 1);
      }
      close(out, level).append(']');
    }

    private void object(StringBuilder out, Map<?, ?> m, int level) {
      if (m.isEmpty()) {
        out.append("{}");
        return;
      }
      List<Map.Entry<String, Object>> entries = new ArrayList<>();
      m.forEach((k, v) -> entries.add(Map.entry(key(k), v == null ? NULL : v)));
      if (sortKeys) {
        entries.sort(Map.Entry.comparingByKey());
      }
      out.append('{');
      for (int i = 0; i < entries.size(); i++) {
        separate(out, i, level + 1);
        string(out, entries.get(i).getKey());
        out.append(keySep);
        Object v = entries.get(i).getValue();
        write(out, v == NULL ? null : v, level + 1);
      }
      close(out, level).append('}');
    }

    private static final Object NULL = new Object();

    /** json.dumps turns str, int, float, bool and None keys into strings. */
    private static String key(Object k) {
      if (k == null) {
        return "null";
      }
      if (k instanceof Boolean b) {
        return b ? "true" : "false";
      }
      if (k instanceof Double || k instanceof Float) {
        return floatRepr(((Number) k).doubleValue());
      }
      return k.toString();
    }

    private void separate(StringBuilder out, int i, int level) {
      if (i > 0) {
        out.append(itemSep);
      }
      if (indent != null) {
        out.append('\n').append(indent.repeat(level));
      }
    }

    private StringBuilder close(StringBuilder out, int level) {
      if (indent != null) {
        out.append('\n').append(indent.repeat(level));
      }
      return out;
    }

    private void string(StringBuilder out, String s) {
      out.append('"');
      for (int i = 0; i < s.length(); i++) {
        char c = s.charAt(i);
        switch (c) {
          case '"' -> out.append("\\\"");
          case '\\' -> out.append("\\\\");
          case '\n' -> out.append("\\n");
          case '\r' -> out.append("\\r");
          case '\t' -> out.append("\\t");
          case '\b' -> out.append("\\b");
          case '\f' -> out.append("\\f");
          default -> {
            if (c < 0x20 || (ensureAscii && c > 0x7e)) {
              out.append(String.format("\\u%04x", (int) c)); // UTF-16 units: surrogate pairs, as Python writes them
            } else {
              out.append(c);
            }
          }
        }
      }
      out.append('"');
    }
  }

  /** Python's float repr: shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
  static String floatRepr(double d) {
    if (Double.isNaN(d)) {
      return "NaN";
    }
    if (Double.isInfinite(d)) {
      return d > 0 ? "Infinity" : "-Infinity";
    }
    if (d == 0) {
      return (1 / d < 0) ? "-0.0" : "0.0";
    }
    BigDecimal b = new BigDecimal(Double.toString(d)).stripTrailingZeros();
    int exponent = b.precision() - b.scale() - 1; // position of the leading digit
    if (exponent >= -4 && exponent < 16) {
      String plain = b.toPlainString();
      return plain.contains(".") ? plain : plain + ".0";
    }
    String digits = b.unscaledValue().abs().toString();
    String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
    return (d < 0 ? "-" : "") + mantissa + "e" + (exponent < 0 ? "-" : "+") + String.format("%02d", Math.abs(exponent));
  }
}
