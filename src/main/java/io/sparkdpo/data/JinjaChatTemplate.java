package io.sparkdpo.data;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.el.JinjavaProcessors;
import com.hubspot.jinjava.interpret.Context;
import com.hubspot.jinjava.interpret.InterpreterFactory;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import jinjava.javax.el.CompositeELResolver;

/**
 * A Hugging Face chat template (Jinja) rendered as transformers' {@code apply_chat_template} renders it, by Jinjava
 * in a sandbox. transformers compiles templates in Jinja2's ImmutableSandboxedEnvironment with
 * {@code trim_blocks}, {@code lstrip_blocks}, loop controls and a {@code generation} block, a {@code tojson} filter
 * that is Python's json.dumps, and the globals {@code raise_exception} and {@code strftime_now}; it renders with
 * {@code messages}, {@code add_generation_prompt} and the tokenizer's special tokens ({@code bos_token},
 * {@code eos_token}, {@code unk_token}, {@code pad_token}, ...). Where Jinjava differs from Jinja2 a small adapter
 * puts it right: {@link Jinja2Whitespace} (whitespace control), {@link TemplateSandbox} (only Python's str and dict
 * methods callable, no Java method), {@link PythonJsonFilter}, {@link PythonFilters} (len and strip as Python
 * counts them), {@code PythonPrinting} (True/False), {@link GenerationTag}, {@link PythonStrftime}. Constructs Jinjava cannot parse (a slice with a step,
 * string repetition {@code 'a' * 3}) fail with a template error instead of rendering something else. The golden
 * test ChatTemplateGoldenTest holds the renderings byte-identical to Jinja2's.
 *
 * <p>Also sandboxed: no file includes or imports, bounded loops and recursion, no re-rendering of rendered values
 * (a message containing {@code {{ ... }}} is text), and each rendering within {@link TemplateLimits}: a deadline,
 * a longest string and output, and a total allocation ({@link RenderBudget}). A rendering that goes beyond them,
 * overflows the stack or runs out of memory fails with a template error, like any other template failure.
 */
public final class JinjaChatTemplate implements ChatTemplate {
  /** Template globals that are functions; also set as variables so that {@code strftime_now is defined} holds. */
  private static final List<String> FUNCTIONS = List.of("raise_exception", "strftime_now");
  /**
   * Jinjava's expression parser takes time quadratic in the nesting of brackets and recurses on it, outside any
   * deadline; real chat templates nest a few levels.
   */
  static final int MAX_NESTING = 64;

  private final String name;
  private final String source;
  private final Map<String, String> specialTokens;
  private final TemplateLimits limits;
  private final Jinjava jinjava;
  private final String jinjavaSource;
  private final String refusal;

  /** @param specialTokens tokenizer_config.json's special tokens by variable name ({@code bos_token} -> text) */
  public JinjaChatTemplate(String name, String source, Map<String, String> specialTokens) {
    this(name, source, specialTokens, TemplateLimits.DEFAULT);
  }

  public JinjaChatTemplate(String name, String source, Map<String, String> specialTokens, TemplateLimits limits) {
    this(name, source, specialTokens, Clock.systemDefaultZone(), limits);
  }

  JinjaChatTemplate(String name, String source, Map<String, String> specialTokens, Clock clock) {
    this(name, source, specialTokens, clock, TemplateLimits.DEFAULT);
  }

  /** @param clock what {@code strftime_now} reads (local time in the clock's zone, as datetime.now()) */
  JinjaChatTemplate(String name, String source, Map<String, String> specialTokens, Clock clock,
      TemplateLimits limits) {
    this.name = name;
    this.source = source;
    this.specialTokens = new TreeMap<>(specialTokens);
    this.limits = limits;
    CompositeELResolver resolver = new CompositeELResolver();
    resolver.add(new TemplateSandbox());
    resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
    this.jinjava = new Jinjava(JinjavaConfig.newBuilder()
        .withElResolver(resolver)
        .withInterperterFactory(new PythonPrinting())
        .withDateTimeProvider(clock::millis)
        .withTimeZone(clock.getZone())
        .withNestedInterpretationEnabled(false)
        .withLegacyOverrides(LegacyOverrides.newBuilder()
            .withUseNaturalOperatorPrecedence(true) // '<|x|>' + content | trim: the filter binds to content
            .withUsePyishObjectMapper(true) // lists and dicts print as Python prints them
            .withEvaluateMapKeys(true) // {k: v} evaluates k, as Jinja2
            .withKeepNullableLoopValues(true)
            .build())
        .withMaxOutputSize(limits.maxChars())
        .withMaxStringLength(limits.maxChars())
        .withProcessors(JinjavaProcessors.newBuilder()
            .withNodePreProcessor((node, interpreter) -> RenderBudget.check())
            .build())
        .withMaxRenderDepth(10)
        .withRangeLimit(100_000)
        .withMaxListSize(1_000_000)
        .withMaxMapSize(100_000)
        .withEnableRecursiveMacroCalls(false)
        .withFailOnUnknownTokens(false)
        .build());
    jinjava.setResourceLocator((path, charset, interpreter) -> {
      throw new IOException("chat templates may not include or import other files ('" + path + "')");
    });
    var globals = jinjava.getGlobalContext();
    globals.registerFunction(new ELFunctionDefinition("", "raise_exception", JinjaChatTemplate.class,
        "raiseException", Object.class));
    globals.registerFunction(new ELFunctionDefinition("", "strftime_now", JinjaChatTemplate.class,
        "strftimeNow", String.class));
    globals.registerFilter(new PythonJsonFilter());
    globals.registerFilter(PythonFilters.length("length"));
    globals.registerFilter(PythonFilters.length("count"));
    globals.registerFilter(PythonFilters.trim());
    globals.registerTag(new GenerationTag());
    String translated;
    try {
      translated = Jinja2Whitespace.apply(source);
    } catch (IllegalArgumentException e) {
      translated = null; // reported at render time, like any other template error
    }
    this.jinjavaSource = translated;
    this.refusal = nesting(source) > MAX_NESTING ? "brackets nested more than " + MAX_NESTING + " deep" : null;
  }

  /** The deepest nesting of round and square brackets in the source, wherever they are. */
  private static int nesting(String source) {
    int depth = 0;
    int max = 0;
    for (int i = 0; i < source.length(); i++) {
      char c = source.charAt(i);
      if (c == '(' || c == '[') {
        max = Math.max(max, ++depth);
      } else if ((c == ')' || c == ']') && depth > 0) {
        depth--;
      }
    }
    return max;
  }

  /** Called by templates to reject a conversation, as in transformers. */
  public static String raiseException(Object message) {
    throw new TemplateRaised(String.valueOf(message));
  }

  /** transformers' {@code strftime_now(format)}: datetime.now().strftime(format). */
  public static String strftimeNow(String format) {
    JinjavaInterpreter interpreter = JinjavaInterpreter.getCurrent();
    JinjavaConfig config = interpreter.getConfig();
    LocalDateTime now = LocalDateTime.ofInstant(
        Instant.ofEpochMilli(config.getDateTimeProvider().getCurrentTimeMillis()), config.getTimeZone());
    return PythonStrftime.format(now, format);
  }

  @Override
  public String templateName() {
    return name;
  }

  @Override
  public String fingerprint() {
    var md = PreferencePair.sha256();
    List<String> parts = new ArrayList<>(List.of("jinja-v2", source));
    specialTokens.forEach((k, v) -> {
      parts.add(k);
      parts.add(v);
    });
    for (String part : parts) {
      byte[] b = part.getBytes(StandardCharsets.UTF_8);
      md.update(Integer.toString(b.length).getBytes(StandardCharsets.US_ASCII));
      md.update((byte) ':');
      md.update(b);
    }
    return HexFormat.of().formatHex(md.digest());
  }

  @Override
  public String renderPrompt(List<Turn> prompt) throws BadRow {
    return render(prompt, true);
  }

  @Override
  public String renderResponse(List<Turn> prompt, String response) throws BadRow {
    String head = render(prompt, true);
    List<Turn> all = new ArrayList<>(prompt);
    all.add(Turn.assistant(response));
    String full = render(all, false);
    if (!full.startsWith(head)) {
      throw new BadRow(QuarantineReason.TEMPLATE_ERROR, null, "the template's rendering of the conversation with "
          + "the response does not start with its rendering of the prompt, so the response cannot be separated");
    }
    return full.substring(head.length());
  }

  /** A one-turn rendering for checks and tests; null when the template fails on it. */
  String renderOrNull() {
    try {
      return render(List.of(Turn.user("Hello")), true);
    } catch (BadRow e) {
      return null;
    }
  }

  /** apply_chat_template(messages, add_generation_prompt=...) with tokenize=False. */
  String render(List<Turn> turns, boolean addGenerationPrompt) throws BadRow {
    if (refusal != null) {
      throw new BadRow(QuarantineReason.TEMPLATE_ERROR, null, "chat template failed: " + refusal);
    }
    if (jinjavaSource == null) {
      try {
        Jinja2Whitespace.apply(source);
      } catch (IllegalArgumentException e) {
        throw new BadRow(QuarantineReason.TEMPLATE_ERROR, null, "chat template failed: " + e.getMessage());
      }
    }
    List<Map<String, Object>> messages = new ArrayList<>(turns.size());
    for (Turn t : turns) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("role", t.role());
      m.put("content", t.content());
      messages.add(m);
    }
    Map<String, Object> vars = new HashMap<>();
    FUNCTIONS.forEach(f -> vars.put(f, new FunctionMarker(f)));
    vars.putAll(specialTokens);
    vars.put("messages", messages);
    vars.put("add_generation_prompt", addGenerationPrompt);
    RenderResult result;
    RenderBudget.start(limits);
    try {
      result = jinjava.renderForResult(jinjavaSource, vars);
    } catch (RuntimeException | RenderBudget.Exceeded e) {
      throw new BadRow(QuarantineReason.TEMPLATE_ERROR, null, "chat template failed: " + e.getMessage());
    } catch (StackOverflowError e) {
      throw new BadRow(QuarantineReason.TEMPLATE_ERROR, null, "chat template failed: nested too deeply (stack "
          + "overflow)");
    } catch (OutOfMemoryError e) { // one huge allocation that failed on its own: nothing else was harmed
      throw new BadRow(QuarantineReason.TEMPLATE_ERROR, null, "chat template failed: out of memory ("
          + e.getMessage() + ")");
    } finally {
      RenderBudget.end();
    }
    for (TemplateError error : result.getErrors()) {
      if (error.getSeverity() == TemplateError.ErrorType.FATAL) {
        throw new BadRow(QuarantineReason.TEMPLATE_ERROR, null, "chat template failed: " + describe(error));
      }
    }
    return result.getOutput();
  }

  private static String describe(TemplateError error) {
    Throwable cause = error.getException();
    while (cause != null) {
      if (cause instanceof TemplateRaised raised) {
        return "raise_exception('" + raised.getMessage() + "')";
      }
      if (cause instanceof TemplateFunctionException refused) {
        return refused.getMessage();
      }
      cause = cause.getCause();
    }
    return error.getMessage() + (error.getLineno() > 0 ? " (template line " + error.getLineno() + ")" : "");
  }

  /**
   * Prints an expression's value as Jinja2 does, str(value), where Jinjava differs: booleans as True/False, floats
   * as Python's repr. Lists and dicts already print as Python's with Jinjava's Pyish mapper. A None value prints as
   * empty, like an undefined one: Jinjava does not tell them apart.
   */
  private static final class PythonPrinting implements InterpreterFactory {
    @Override
    public JinjavaInterpreter newInstance(JinjavaInterpreter orig) {
      return new Interpreter(orig);
    }

    @Override
    public JinjavaInterpreter newInstance(Jinjava application, Context context, JinjavaConfig renderConfig) {
      return new Interpreter(application, context, renderConfig);
    }

    private static final class Interpreter extends JinjavaInterpreter {
      Interpreter(JinjavaInterpreter orig) {
        super(orig);
      }

      Interpreter(Jinjava application, Context context, JinjavaConfig renderConfig) {
        super(application, context, renderConfig);
      }

      @Override
      public String getAsString(Object value) {
        if (value instanceof Boolean b) {
          return b ? "True" : "False";
        }
        if (value instanceof Double || value instanceof Float) {
          return PythonJsonFilter.floatRepr(((Number) value).doubleValue());
        }
        return super.getAsString(value);
      }
    }
  }

  /** What {@code raise_exception} throws. */
  static final class TemplateRaised extends RuntimeException {
    TemplateRaised(String message) {
      super(message, null, false, false);
    }
  }

  /** The value of a function's name as a variable: defined, printed as Python prints a function. */
  private record FunctionMarker(String name) {
    @Override
    public String toString() {
      return "<function " + name + ">";
    }
  }
}
