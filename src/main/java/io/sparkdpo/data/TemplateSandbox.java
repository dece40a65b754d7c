package io.sparkdpo.data;

import com.hubspot.jinjava.lib.Importable;
import com.hubspot.jinjava.lib.exptest.ExpTest;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.util.ForLoop;
import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/**
 * The first resolver of a chat template's expressions: the only methods a template can call are Python's str
 * methods ({@link PythonStringMethods}) and dict's read-only {@code get}, {@code items}, {@code keys},
 * {@code values}, as in Jinja2's ImmutableSandboxedEnvironment. Every other method call fails, so no Java method is
 * reachable ({@code 'x'.getClass()}, {@code messages.clear()}, {@code 'a'.repeat(3)}); attributes of strings,
 * numbers and lists that are not an index are undefined, as in Python, instead of Java bean getters
 * ({@code messages.size}). On Jinjava's own objects only the calls Jinjava makes itself pass (a filter's
 * {@code filter}, a test's {@code evaluate}) and {@code loop.cycle}; {@code loop.next()} is refused like any other.
 */
final class TemplateSandbox extends ELResolver {
  @Override
  public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
    if (base == null || method == null) {
      return null;
    }
    RenderBudget.check(); // every call a template makes: a loop of calls stops at the deadline
    String name = method.toString();
    if (isJinjavaCall(base, name)) {
      return null;
    }
    Object[] p = params == null ? new Object[0] : params;
    Object result = PythonStringMethods.NOT_HANDLED;
    if (base instanceof String s) {
      result = PythonStringMethods.call(s, name, p);
    } else if (base instanceof Map<?, ?> m) {
      result = dictMethod(m, name, p);
    }
    if (result == PythonStringMethods.NOT_HANDLED) {
      throw new TemplateFunctionException("chat templates may not call '" + name + "' on " + pythonType(base)
          + " (only Python's str methods and dict.get/items/keys/values are available)");
    }
    context.setPropertyResolved(true);
    return result;
  }

  @Override
  public Object getValue(ELContext context, Object base, Object property) {
    if (base == null || base instanceof Map || isJinjavaInternal(base)) {
      return null; // variables, dict keys and Jinjava's objects: Jinjava's resolver
    }
    if ((base instanceof List || base instanceof String || base.getClass().isArray()) && isIndex(property)) {
      return null; // indexing: Jinjava's resolver
    }
    context.setPropertyResolved(true); // anything else is undefined, never a Java getter
    return null;
  }

  private static Object dictMethod(Map<?, ?> m, String name, Object[] p) {
    switch (name) {
      case "get":
        if (p.length == 1 || p.length == 2) {
          Object v = m.get(p[0]);
          return v != null || m.containsKey(p[0]) ? v : (p.length == 2 ? p[1] : null);
        }
        return PythonStringMethods.NOT_HANDLED;
      case "keys":
        return p.length == 0 ? new ArrayList<>(m.keySet()) : PythonStringMethods.NOT_HANDLED;
      case "values":
        return p.length == 0 ? new ArrayList<>(m.values()) : PythonStringMethods.NOT_HANDLED;
      case "items":
        if (p.length != 0) {
          return PythonStringMethods.NOT_HANDLED;
        }
        List<List<Object>> items = new ArrayList<>(m.size());
        m.forEach((k, v) -> items.add(java.util.Arrays.asList(k, v)));
        return items;
      default:
        return PythonStringMethods.NOT_HANDLED;
    }
  }

  private static boolean isIndex(Object property) {
    if (property instanceof Number) {
      return true;
    }
    if (property instanceof String s && !s.isEmpty()) {
      return s.chars().allMatch(c -> c == '-' || Character.isDigit(c));
    }
    return false;
  }

  /** How Jinjava applies a filter or a test, and {@code loop.cycle(...)}: the only calls on its own objects. */
  private static boolean isJinjavaCall(Object base, String method) {
    if (base instanceof Filter) {
      return method.equals("filter");
    }
    if (base instanceof ExpTest) {
      return method.equals("evaluate") || method.equals("evaluateNegated");
    }
    return base instanceof ForLoop && method.equals("cycle");
  }

  /** Filters, tests, macros, the loop variable: objects Jinjava itself puts into the context, read by Jinjava. */
  private static boolean isJinjavaInternal(Object base) {
    if (base instanceof Importable) {
      return true;
    }
    return base.getClass().getName().startsWith("com.hubspot.jinjava.") && !(base instanceof Collection)
        && !(base instanceof Map); // Jinjava's own lists and dicts hold the template's data: sandboxed
  }

  private static String pythonType(Object o) {
    if (o instanceof String) {
      return "a str";
    }
    if (o instanceof Map) {
      return "a dict";
    }
    if (o instanceof Collection || o.getClass().isArray()) {
      return "a list";
    }
    if (o instanceof Boolean) {
      return "a bool";
    }
    if (o instanceof Number) {
      return "a number";
    }
    return "a " + o.getClass().getSimpleName();
  }

  // Types and writes: not ours.
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
  public boolean isReadOnly(ELContext context, Object base, Object property) {
    return false;
  }

  @Override
  public void setValue(ELContext context, Object base, Object property, Object value) {
    // not ours
  }
}
