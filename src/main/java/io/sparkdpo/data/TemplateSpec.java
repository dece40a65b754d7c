package io.sparkdpo.data;

import io.sparkdpo.io.Storage;
import java.io.Serializable;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Which chat template to use, in a form that ships to executors: a built-in name, or Jinja source with the
 * special-token strings it may reference. {@link #template()} gives the JVM-wide renderer.
 *
 * @param name {@code hh}, {@code chatml}, {@code llama3}, {@code plain}, {@code tokenizer} or a {@code .jinja} file path
 * @param jinja the template source, or null for a built-in
 * @param specialTokens the tokenizer's special tokens as template variables ({@code bos_token} -> its text); empty
 *     for a built-in
 * @param limits what one rendering of a Jinja template may spend
 */
public record TemplateSpec(String name, String jinja, TreeMap<String, String> specialTokens, TemplateLimits limits)
    implements Serializable {
  private static final Map<TemplateSpec, ChatTemplate> CACHE = new ConcurrentHashMap<>();

  public TemplateSpec(String name, String jinja, TreeMap<String, String> specialTokens) {
    this(name, jinja, specialTokens, TemplateLimits.DEFAULT);
  }

  /**
   * Resolves the {@code prepare.template} setting: {@code auto} (the tokenizer's chat_template if it has one,
   * else {@code hh}), a built-in name, {@code tokenizer} (its chat_template, required), or a {@code .jinja} file.
   */
  public static TemplateSpec resolve(String setting, TextTokenizer tokenizer, Storage storage) {
    return resolve(setting, tokenizer, storage, TemplateLimits.DEFAULT);
  }

  /**
   * {@link #resolve(String, TextTokenizer, Storage)} with these limits per rendering. The probe renders a one-turn
   * conversation here, on the driver, within the same limits: a template that hangs, loops or grows without bound
   * fails the job with a clear error before any Spark job.
   */
  public static TemplateSpec resolve(String setting, TextTokenizer tokenizer, Storage storage,
      TemplateLimits limits) {
    TemplateSpec spec = choose(setting, tokenizer, storage, limits);
    try { // a template that fails on the simplest conversation would quarantine every row: fail the job instead
      List<Turn> probe = List.of(Turn.user("Hello"));
      spec.template().renderPrompt(probe);
      spec.template().renderResponse(probe, "Hi");
    } catch (BadRow e) {
      throw new IllegalArgumentException("prepare.template: '" + spec.name()
          + "' cannot render a one-turn conversation: " + e.detail());
    }
    return spec;
  }

  private static TemplateSpec choose(String setting, TextTokenizer tokenizer, Storage storage,
      TemplateLimits limits) {
    if ("auto".equals(setting)) {
      return tokenizer.chatTemplate().map(t -> jinja("tokenizer", t, tokenizer, limits))
          .orElse(builtin(BuiltinTemplate.HH.templateName()));
    }
    if ("tokenizer".equals(setting)) {
      return jinja("tokenizer", tokenizer.chatTemplate().orElseThrow(() -> new IllegalArgumentException(
          "prepare.template: tokenizer '" + tokenizer.spec() + "' has no chat_template (use auto, hh, chatml, "
              + "llama3, plain or a .jinja file)")), tokenizer, limits);
    }
    if (BuiltinTemplate.byName(setting) != null) {
      return builtin(setting);
    }
    if (setting.endsWith(".jinja")) {
      if (!storage.exists(setting)) {
        throw new IllegalArgumentException("prepare.template: template file " + setting + " does not exist");
      }
      return jinja(setting, storage.readString(setting), tokenizer, limits);
    }
    throw new IllegalArgumentException("prepare.template: '" + setting
        + "' is not one of auto, tokenizer, hh, chatml, llama3, plain, or a .jinja file");
  }

  private static TemplateSpec jinja(String name, String source, TextTokenizer tokenizer, TemplateLimits limits) {
    return new TemplateSpec(name, source, new TreeMap<>(tokenizer.specialTokens()), limits);
  }

  private static TemplateSpec builtin(String name) {
    return new TemplateSpec(name, null, new TreeMap<>());
  }

  /** The renderer, created once per JVM. */
  public ChatTemplate template() {
    return CACHE.computeIfAbsent(this, s -> s.jinja == null ? BuiltinTemplate.byName(s.name)
        : new JinjaChatTemplate(s.name, s.jinja, s.specialTokens, s.limits));
  }
}
