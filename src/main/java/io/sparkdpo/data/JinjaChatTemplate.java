package io.sparkdpo.data;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jinjava.javax.el.CompositeELResolver;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;

/**
 * A Hugging Face chat template (Jinja) rendered by Jinjava in a sandbox: no file includes or imports, bounded
 * output, loops and recursion, and Python string methods provided for templates that use them. Variables as in
 * transformers' apply_chat_template: {@code messages}, {@code add_generation_prompt}, {@code bos_token},
 * {@code eos_token}, and the function {@code raise_exception}.
 */
public final class JinjaChatTemplate implements ChatTemplate {
  private static final long MAX_OUTPUT_CHARS = 64L << 20;

  private final String name;
  private final String source;
  private final String bosToken;
  private final String eosToken;
  private final Jinjava jinjava;

  public JinjaChatTemplate(String name, String source, String bosToken, String eosToken) {
    this.name = name;
    this.source = source;
    this.bosToken = bosToken;
    this.eosToken = eosToken;
    CompositeELResolver resolver = new CompositeELResolver();
    resolver.add(new PythonStringMethods());
    resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
    this.jinjava = new Jinjava(JinjavaConfig.newBuilder()
        .withElResolver(resolver)
        .withMaxOutputSize(MAX_OUTPUT_CHARS)
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
    jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
        JinjaChatTemplate.class, "raiseException", String.class));
  }

  /** Called by templates to reject a conversation, as in transformers. */
  public static String raiseException(String message) {
    throw new TemplateRaised(message);
  }

  @Override
  public String templateName() {
    return name;
  }

  @Override
  public String fingerprint() {
    var md = PreferencePair.sha256();
    for (String part : new String[] {"jinja", source, bosToken, eosToken}) {
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

  private String render(List<Turn> turns, boolean addGenerationPrompt) throws BadRow {
    List<Map<String, Object>> messages = new ArrayList<>(turns.size());
    for (Turn t : turns) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("role", t.role());
      m.put("content", t.content());
      messages.add(m);
    }
    Map<String, Object> vars = new HashMap<>();
    vars.put("messages", messages);
    vars.put("add_generation_prompt", addGenerationPrompt);
    vars.put("bos_token", bosToken);
    vars.put("eos_token", eosToken);
    RenderResult result;
    try {
      result = jinjava.renderForResult(source, vars);
    } catch (RuntimeException e) {
      throw new BadRow(QuarantineReason.TEMPLATE_ERROR, null, "chat template failed: " + e.getMessage());
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
      cause = cause.getCause();
    }
    return error.getMessage() + (error.getLineno() > 0 ? " (template line " + error.getLineno() + ")" : "");
  }

  /** What {@code raise_exception} throws. */
  static final class TemplateRaised extends RuntimeException {
    TemplateRaised(String message) {
      super(message, null, false, false);
    }
  }
}
