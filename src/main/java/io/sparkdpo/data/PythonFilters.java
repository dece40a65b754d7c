package io.sparkdpo.data;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.Filter;
import java.util.Collection;
import java.util.Map;

/** Jinja2 filters whose Jinjava versions count or strip differently from Python. */
final class PythonFilters {
  private PythonFilters() {}

  /** {@code length} / {@code count}: Python's len(), which counts a string's code points, not UTF-16 units. */
  static Filter length(String name) {
    return new Filter() {
      @Override
      public String getName() {
        return name;
      }

      @Override
      public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
        if (var == null) {
          return 0L;
        }
        if (var instanceof CharSequence s) {
          return (long) s.toString().codePointCount(0, s.length());
        }
        if (var instanceof Collection<?> c) {
          return (long) c.size();
        }
        if (var instanceof Map<?, ?> m) {
          return (long) m.size();
        }
        if (var.getClass().isArray()) {
          return (long) java.lang.reflect.Array.getLength(var);
        }
        throw new TemplateFunctionException(name + ": object of type " + var.getClass().getSimpleName() + " has no len()");
      }
    };
  }

  /** {@code trim}: Python's str.strip() (Unicode whitespace, or the given characters). */
  static Filter trim() {
    return new Filter() {
      @Override
      public String getName() {
        return "trim";
      }

      @Override
      public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
        if (var == null) {
          return "";
        }
        Object[] p = args.length > 0 && args[0] != null ? new Object[] {args[0]} : new Object[0];
        return PythonStringMethods.call(var.toString(), "strip", p);
      }
    };
  }
}
